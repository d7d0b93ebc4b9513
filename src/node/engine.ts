import { mkdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { Clock } from '../common/clock.js';
import { isQuiverError, quiverError } from '../common/errors.js';
import { KeyedMutex, Mutex } from '../common/mutex.js';
import { IdAllocator, TsoAllocator, type BoundStore } from '../common/tso.js';
import { Catalog, DEFAULT_DB, type CatalogChange } from '../coord/catalog.js';
import type {
  CollectionRecord,
  DatabaseRecord,
  IndexRecord,
  PartitionRecord,
  SegmentIndexFile,
  SegmentRecord,
} from '../coord/records.js';
import { compileFilter, extractPkValues, parseExpr, type ExprSchema, type TemplateValues } from '../expr/index.js';
import { HnswIndex, type MetricType, type VectorIndex } from '../index/index.js';
import type { MetaKV } from '../meta/meta-kv.js';
import type { ObjectStore } from '../storage/object-store.js';
import { indexFileKey } from '../storage/paths.js';
import type { Wal, WalPosition } from '../wal/wal.js';
import type { Column, FieldSchema } from '../schema/types.js';
import { CollectionRuntime, gatherColumn, type RowRef, type SearchHit } from './collection-runtime.js';
import { IndexBuildPool } from './index-builder.js';
import { mergeChunks, newChunk, recountDeleted, segmentBytes, stripToPk, type Chunk, type Segment } from './segment.js';
import { Compactor, type CompactionTaskInfo } from './compactor.js';
export type { CompactionTaskInfo } from './compactor.js';
import { applyDeltalogs, readSegment, writeDeltaFile, writeInsertFiles } from './segment-io.js';
import { TIMESTAMP_FIELD_ID } from '../coord/records.js';
import { decodeWalEntry, encodeWalEntry, type WalEntry } from './wal-records.js';
import { DurableApply, takeDeletesBefore } from './durable-apply.js';

export interface EngineOptions {
  /** A growing segment is sealed and flushed in the background once it holds this many rows... */
  readonly sealRows: number;
  /** ...or about this many bytes in memory (default 256 MiB). */
  readonly sealBytes?: number;
  /** Unflushed data older than this is flushed in the background (bounds WAL replay time). */
  readonly flushIdleMs: number;
  /** Period of the background loop (sealing, index builds, WAL truncation). */
  readonly backgroundIntervalMs: number;
  /** Scratch directory for index builds. */
  readonly tmpDir: string;
  /** Build indexes on the calling thread (tests); default: a worker thread. */
  readonly indexBuildInline?: boolean;
  /** Background compaction (manual `compact` works either way). */
  readonly autoCompaction?: boolean;
  /** Deleted fraction at which a segment is rewritten. */
  readonly compactionDeleteRatio?: number;
}


export interface EngineDeps {
  readonly kv: MetaKV;
  readonly store: ObjectStore;
  readonly wal: Wal;
  readonly clock: Clock;
  readonly log: Logger;
}

export const DEFAULT_PARTITION = '_default';
const enc = new TextEncoder();
const dec = new TextDecoder();

function kvBound(kv: MetaKV, key: string): BoundStore {
  return {
    load: async () => {
      const e = await kv.get(key);
      return e ? Number(dec.decode(e.value)) : 0;
    },
    save: async (bound) => {
      await kv.put(key, enc.encode(String(bound)));
    },
  };
}

export interface LoadProgress {
  readonly state: 'NotLoad' | 'Loading' | 'Loaded';
  readonly progress: number;
}

export interface SearchParams {
  readonly field: FieldSchema;
  readonly queries: Float32Array;
  readonly nq: number;
  readonly k: number;
  readonly offset: number;
  readonly metric: MetricType | undefined;
  readonly filter: string;
  readonly templates?: TemplateValues | undefined;
  readonly partitionNames: readonly string[];
  readonly ef?: number | undefined;
  readonly radius?: number | undefined;
  readonly rangeFilter?: number | undefined;
  readonly ignoreGrowing?: boolean | undefined;
}

/**
 * The embedded database: catalog, write path (WAL → growing segments → flushed binlogs), index builds,
 * load state and the read path. One instance owns one data dir.
 */
export class Engine {
  readonly catalog: Catalog;
  readonly store: ObjectStore;
  readonly wal: Wal;
  readonly tso: TsoAllocator;
  readonly ids: IdAllocator;
  readonly #clock: Clock;
  readonly #log: Logger;
  readonly #opts: EngineOptions;
  readonly #runtimes = new Map<number, CollectionRuntime>();
  readonly #ddl = new Mutex();
  readonly #collLocks = new KeyedMutex<number>();
  /** Applies each write to memory once its WAL append is durable, in WAL order (durable-apply.ts). */
  readonly #durable = new DurableApply();
  /** Appends per collection: tells a flush whether anything arrived after its seal. */
  readonly #appendSeq = new Map<number, number>();
  /** Physical time of the oldest unflushed write per collection. */
  readonly #dirtySinceMs = new Map<number, number>();
  readonly #spareSegmentIds: number[] = [];
  readonly #builds: IndexBuildPool;
  /** A second worker for compaction merges, so a long index build never delays a merge. */
  readonly #merges: IndexBuildPool;
  readonly #loading = new Map<number, Promise<void>>();
  #timer: NodeJS.Timeout | undefined;
  #tick: Promise<void> | undefined;
  #closed = false;
  readonly #compactor: Compactor;
  /** Called after a collection was dropped (snapshots of it are dropped by their manager). */
  readonly #dropHooks: ((coll: CollectionRecord) => Promise<void>)[] = [];

  private constructor(deps: EngineDeps, opts: EngineOptions) {
    this.catalog = new Catalog(deps.kv);
    this.store = deps.store;
    this.wal = deps.wal;
    this.#clock = deps.clock;
    this.#log = deps.log;
    this.#opts = opts;
    this.tso = new TsoAllocator(deps.clock, kvBound(deps.kv, 'quiver/alloc/tso'));
    this.ids = new IdAllocator(kvBound(deps.kv, 'quiver/alloc/id'));
    this.#builds = new IndexBuildPool({ inline: opts.indexBuildInline ?? false });
    this.#merges = new IndexBuildPool({ inline: opts.indexBuildInline ?? false });
    this.#compactor = new Compactor(
      {
        store: this.store,
        ids: this.ids,
        tso: this.tso,
        catalog: this.catalog,
        clock: this.#clock,
        log: this.#log,
        runtime: (id) => this.#runtimes.get(id),
        withCollectionLock: (id, fn) => this.#collLocks.run(id, fn),
        buildIndexFile: (vectors, idx, field, partitionId, segmentId, open) => this.#buildIndexFile(vectors, idx, field, partitionId, segmentId, open),
        registerLoaded: (rec, chunk) => this.#registerLoaded(rec, chunk),
        merge: (task) => this.#merges.merge(task),
        inBackground: (p) => this.#inBackground(p),
      },
      {
        smallRowsMax: Math.max(1, Math.floor(opts.sealRows / 2)),
        targetRows: opts.sealRows,
        deleteRatioMin: opts.compactionDeleteRatio ?? 0.2,
      },
    );
  }

  static async open(deps: EngineDeps, opts: EngineOptions): Promise<Engine> {
    const e = new Engine(deps, opts);
    await e.#recover();
    return e;
  }

  // ------------------------------------------------------------------ recovery

  async #recover(): Promise<void> {
    const started = this.#clock.nowMs();
    await mkdir(this.#opts.tmpDir, { recursive: true });
    await this.tso.init();
    await this.ids.init();
    await this.catalog.load();
    if (!this.catalog.database(DEFAULT_DB)) {
      const id = await this.ids.alloc();
      await this.catalog.commit([{ type: 'putDatabase', record: { id, name: DEFAULT_DB, createdTs: this.tso.next().toString(), properties: {} } }]);
    }
    // Flushed segments: pk + ts always (deletes match on them); everything for loaded collections.
    for (const coll of this.catalog.allCollections()) {
      if (coll.state !== 'Created') continue;
      const rt = new CollectionRuntime(coll);
      this.#runtimes.set(coll.id, rt);
      await Promise.all(
        this.catalog
          .segments(coll.id)
          .filter((s) => s.state === 'Flushed')
          .map(async (rec) => {
            const seg = this.#flushedSegment(rec);
            rt.segments.set(rec.id, seg);
            try {
              await this.#readSegmentInto(rt, seg, coll.loaded);
            } catch (err) {
              seg.error = (err as Error).message;
              this.#log.error({ err, segment: rec.id, collection: coll.name }, 'segment failed to load');
            }
          }),
      );
    }
    await this.#replayWal();
    this.#log.info({ ms: this.#clock.nowMs() - started, collections: this.#runtimes.size }, 'recovered');
  }

  #flushedSegment(rec: SegmentRecord): Segment {
    return { id: rec.id, partitionId: rec.partitionId, phase: 'flushed', chunks: [], numRows: rec.numRows, record: rec, loaded: false, pendingDeletes: { pks: [], ts: [] } };
  }

  async #readSegmentInto(rt: CollectionRuntime, seg: Segment, full: boolean): Promise<void> {
    const coll = rt.record;
    const rec = seg.record!;
    const fields = full ? coll.schema.fields : coll.schema.fields.filter((f) => f.isPrimaryKey);
    const chunk = (full ? await this.#shareLoaded(coll, rec) : undefined) ?? (await this.#readChunk(coll, rec, fields, full));
    // Deletes applied while we were reading are in the old chunk's bitmap: keep them.
    const old = seg.chunks[0];
    if (old) for (let i = 0; i < chunk.numRows; i++) if (old.deleted[i] === 1) chunk.deleted[i] = 1;
    recountDeleted(chunk);
    seg.chunks = [chunk];
    seg.loaded = full;
    seg.error = undefined;
    if (full) this.#registerLoaded(rec, chunk);
  }

  async #readChunk(coll: CollectionRecord, rec: SegmentRecord, fields: readonly FieldSchema[], withIndexes: boolean): Promise<Chunk> {
    // Binlog reads run on libuv threads while the (synchronous, native) index load runs here.
    const reading = readSegment(this.store, coll, rec, fields);
    reading.catch(() => undefined);
    const indexes = withIndexes ? await this.#loadSegmentIndexes(coll, rec) : new Map<string, { index: VectorIndex; buildId: number }>();
    const chunk = await reading;
    for (const [name, { index, buildId }] of indexes) {
      chunk.indexes.set(name, index);
      chunk.indexBuilds.set(name, buildId);
    }
    return chunk;
  }

  /**
   * Loaded segment data by content: the binlog of a segment's row timestamps (field 1) has a log id no
   * other flush ever reuses, and a restore copies files keeping their log ids and index build ids. So a
   * segment whose timestamp log id matches a loaded chunk holds byte-identical columns, and identical
   * index files where the build ids match: loading a restored collection while its source is loaded
   * shares that memory instead of reading it again (deletes are the segment's own, from its deltalogs).
   * Weak references: this index never keeps data alive.
   */
  readonly #loadedContent = new Map<number, WeakRef<Chunk>[]>();

  #registerLoaded(rec: SegmentRecord, chunk: Chunk): void {
    const key = rec.binlogs[String(TIMESTAMP_FIELD_ID)]?.[0]?.logId;
    if (key === undefined) return;
    // Several segments (a source and its restores) may hold the same content; any loaded one will do.
    const live = (this.#loadedContent.get(key) ?? []).filter((r) => r.deref() !== undefined);
    live.push(new WeakRef(chunk));
    this.#loadedContent.set(key, live);
  }

  async #shareLoaded(coll: CollectionRecord, rec: SegmentRecord): Promise<Chunk | undefined> {
    const key = rec.binlogs[String(TIMESTAMP_FIELD_ID)]?.[0]?.logId;
    // A candidate released since (its columns stripped) or collected does not count: read the files.
    const donor = (key === undefined ? [] : (this.#loadedContent.get(key) ?? []))
      .map((r) => r.deref())
      .find((c) => c !== undefined && c.numRows === rec.numRows && coll.schema.fields.every((f) => c.columns.has(f.name)));
    if (!donor) return undefined;
    const columns = new Map<string, Column>();
    for (const f of coll.schema.fields) columns.set(f.name, donor.columns.get(f.name)!);
    const chunk = newChunk(rec.numRows, columns, donor.ts);
    await applyDeltalogs(this.store, coll, rec, chunk);
    for (const si of rec.indexes) {
      const idx = this.catalog.indexes(coll.id).find((i) => i.id === si.indexId);
      const field = idx && coll.schema.fields.find((f) => f.fieldId === idx.fieldId);
      if (!idx || !field || idx.indexType !== 'HNSW' || si.files.length === 0) continue;
      const shared = donor.indexBuilds.get(field.name) === si.buildId ? donor.indexes.get(field.name) : undefined;
      chunk.indexes.set(field.name, shared ?? (await this.#openHnsw(si.files[0]!, field.dim!, idx.metric, rec.numRows)));
      chunk.indexBuilds.set(field.name, si.buildId);
    }
    return chunk;
  }

  async #loadSegmentIndexes(coll: CollectionRecord, rec: SegmentRecord): Promise<Map<string, { index: VectorIndex; buildId: number }>> {
    const out = new Map<string, { index: VectorIndex; buildId: number }>();
    for (const si of rec.indexes) {
      const idx = this.catalog.indexes(coll.id).find((i) => i.id === si.indexId);
      if (!idx) continue;
      const field = coll.schema.fields.find((f) => f.fieldId === idx.fieldId);
      if (!field || idx.indexType !== 'HNSW' || si.files.length === 0) continue;
      out.set(field.name, { index: await this.#openHnsw(si.files[0]!, field.dim!, idx.metric, rec.numRows), buildId: si.buildId });
    }
    return out;
  }

  async #openHnsw(key: string, dim: number, metric: MetricType, rows: number): Promise<VectorIndex> {
    const local = this.store.localPath?.(key);
    if (local) return HnswIndex.load(local, dim, metric, rows);
    return HnswIndex.fromBytes(await this.store.get(key), dim, metric, rows);
  }

  async #replayWal(): Promise<void> {
    const live = [...this.#runtimes.keys()];
    if (live.length === 0) return;
    let from = Infinity;
    for (const id of live) from = Math.min(from, this.catalog.checkpoint(id) ?? 0);
    // Records before the oldest retained one were truncated only once every collection that had any was
    // checkpointed past them; a stale checkpoint of a clean collection may still point before it.
    from = Math.max(from, this.wal.startPosition());
    let records = 0;
    let maxSeg = 0;
    for await (const r of this.wal.read(from)) {
      const e = decodeWalEntry(r.payload);
      const rt = this.#runtimes.get(e.collectionId);
      if (!rt || r.position < (this.catalog.checkpoint(e.collectionId) ?? 0)) continue;
      records++;
      if (e.type === 'insert') {
        if (rt.segments.get(e.segmentId)?.phase === 'flushed') continue;
        // Rows of a partition dropped after they were written died with it.
        if (!rt.record.partitions.some((p) => p.id === e.partitionId)) continue;
        // Replayed rows go back to the segment they were acknowledged in.
        const seg = rt.segments.get(e.segmentId);
        if (seg && rt.growing.get(e.partitionId) !== seg) rt.growing.set(e.partitionId, seg);
        rt.applyInsert(e.partitionId, () => e.segmentId, e.columns, e.ts, e.numRows);
        maxSeg = Math.max(maxSeg, e.segmentId);
      } else {
        rt.applyDelete(new Set(e.pks), e.ts, e.partitionId);
      }
      if (!this.#dirtySinceMs.has(e.collectionId)) this.#dirtySinceMs.set(e.collectionId, this.#clock.nowMs());
      this.#durable.replayed(e.collectionId, r.position);
    }
    if (records > 0) this.#log.info({ records, from }, 'replayed WAL');
  }

  // ------------------------------------------------------------------ lifecycle

  start(): void {
    if (this.#timer || this.#closed) return;
    this.#timer = setInterval(() => {
      if (!this.#tick) this.#tick = this.backgroundTick().finally(() => (this.#tick = undefined));
    }, this.#opts.backgroundIntervalMs);
    this.#timer.unref();
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#timer) clearInterval(this.#timer);
    // Cancel the workers first (a build stops at its next check and fails), so that the tick and the
    // background tasks waiting on them unwind at once; then wait for all of them, so nothing writes to
    // the store or the meta after close() resolved.
    await Promise.all([this.#builds.close(), this.#merges.close()]);
    await this.#tick;
    await this.#durable.settledAll();
    await Promise.allSettled([...this.#background]);
    await this.tso.flush();
  }

  /** Background work that close() must wait for (scheduled index builds, compactions not awaited). */
  readonly #background = new Set<Promise<unknown>>();

  #inBackground(p: Promise<unknown>): void {
    const tracked = p.catch(() => undefined).finally(() => this.#background.delete(tracked));
    this.#background.add(tracked);
  }

  /** Kind of the last background failure per collection (logged at error once, then at debug). */
  readonly #backgroundFailure = new Map<number, string>();

  /** One pass of background work: seal full/idle segments, build missing indexes, truncate the WAL. */
  async backgroundTick(): Promise<void> {
    const now = this.#clock.nowMs();
    for (const rt of [...this.#runtimes.values()]) {
      if (this.#closed) return;
      const id = rt.record.id;
      let full = false;
      const sealBytes = this.#opts.sealBytes ?? 256 * 1024 * 1024;
      for (const seg of rt.growing.values()) if (seg.numRows >= this.#opts.sealRows || segmentBytes(seg) >= sealBytes) full = true;
      const since = this.#dirtySinceMs.get(id);
      const idle = since !== undefined && now - since >= this.#opts.flushIdleMs;
      try {
        if (full || idle) await this.flushCollection(id);
        await this.#buildMissingIndexes(rt);
        if (this.#opts.autoCompaction ?? true) await this.compact(id, { force: false, wait: true });
        this.#backgroundFailure.delete(id);
      } catch (err) {
        // Retried every tick: say it at error level once per kind of failure (a full disk would otherwise
        // log one error a second per collection until space is freed; its messages differ by file name).
        const kind = isQuiverError(err) ? err.kind : (err as Error).message;
        const repeated = this.#backgroundFailure.get(id) === kind;
        this.#backgroundFailure.set(id, kind);
        this.#log[repeated ? 'debug' : 'error']({ err, collection: rt.record.name }, 'background work failed');
      }
    }
    await this.#truncateWal();
  }

  async #truncateWal(): Promise<void> {
    let min = this.wal.endPosition();
    for (const id of this.#runtimes.keys()) {
      if (!this.#dirtySinceMs.has(id)) continue;
      min = Math.min(min, this.catalog.checkpoint(id) ?? 0);
    }
    // Clean collections have nothing before `min`: move their checkpoints up so that no checkpoint points
    // into the part of the log we are about to delete (any later write lands at or after `min`).
    const bump: CatalogChange[] = [];
    for (const id of this.#runtimes.keys()) {
      if (this.#dirtySinceMs.has(id)) continue;
      const ckpt = this.catalog.checkpoint(id);
      if (ckpt === undefined || ckpt < min) bump.push({ type: 'putCheckpoint', collectionId: id, position: min });
    }
    await this.catalog.commit(bump);
    await this.wal.truncateBefore(min);
  }

  // ------------------------------------------------------------------ catalog helpers

  runtime(collectionId: number): CollectionRuntime {
    const rt = this.#runtimes.get(collectionId);
    if (!rt) throw quiverError('CollectionNotFound', `collection not found[collectionID=${collectionId}]`);
    return rt;
  }

  resolve(dbName: string, name: string): CollectionRuntime {
    return this.runtime(this.catalog.resolveCollection(dbName, name).id);
  }

  #partition(coll: CollectionRecord, name: string | undefined): PartitionRecord {
    const n = name || DEFAULT_PARTITION;
    const p = coll.partitions.find((x) => x.name === n);
    if (!p) throw quiverError('PartitionNotFound', `partition not found[partition=${n}][collection=${coll.name}]`);
    return p;
  }

  async #putCollection(rec: CollectionRecord, extra: CatalogChange[] = []): Promise<void> {
    await this.catalog.commit([{ type: 'putCollection', record: rec }, ...extra]);
    const rt = this.#runtimes.get(rec.id);
    if (rt) rt.record = rec;
  }

  // ------------------------------------------------------------------ databases

  async createDatabase(name: string, properties: Record<string, string>): Promise<void> {
    await this.#ddl.run(async () => {
      if (this.catalog.database(name)) throw quiverError('ParameterInvalid', `database already exist: ${name}`);
      if (this.catalog.databases().length >= 64) throw quiverError('ParameterInvalid', `database number (64) exceeds max configuration`);
      const id = await this.ids.alloc();
      await this.catalog.commit([{ type: 'putDatabase', record: { id, name, createdTs: this.tso.next().toString(), properties } }]);
    });
  }

  async dropDatabase(name: string): Promise<void> {
    await this.#ddl.run(async () => {
      if (name === DEFAULT_DB) throw quiverError('ParameterInvalid', 'can not drop default database');
      const db = this.catalog.database(name);
      if (!db) return;
      if (this.catalog.collections(db.id).length > 0) {
        throw quiverError('ParameterInvalid', `database:${name} not empty, must drop all collections before drop database`);
      }
      await this.catalog.commit([{ type: 'deleteDatabase', name }]);
    });
  }

  async alterDatabase(name: string, set: Record<string, string>, deleteKeys: readonly string[]): Promise<void> {
    await this.#ddl.run(async () => {
      const db = this.catalog.requireDatabase(name);
      const properties = { ...db.properties, ...set };
      for (const k of deleteKeys) delete properties[k];
      const record: DatabaseRecord = { ...db, properties };
      await this.catalog.commit([{ type: 'putDatabase', record }]);
    });
  }

  // ------------------------------------------------------------------ collections

  async createCollection(input: {
    dbName: string;
    name: string;
    fields: Omit<FieldSchema, 'fieldId'>[];
    description: string;
    enableDynamicField: boolean;
    autoId: boolean;
    shardsNum: number;
    consistencyLevel: string;
    properties: Record<string, string>;
    numPartitions: number;
  }): Promise<CollectionRecord> {
    return this.#ddl.run(async () => {
      const db = this.catalog.requireDatabase(input.dbName);
      const existing = this.catalog.collectionByName(db.id, input.name);
      if (existing || this.catalog.nameTaken(db.id, input.name) && !this.catalog.alias(db.id, input.name)) {
        throw quiverError('ParameterInvalid', `collection already exists: ${input.name}`);
      }
      if (this.catalog.alias(db.id, input.name)) {
        throw quiverError('ParameterInvalid', `collection name [${input.name}] conflicts with an existing alias, please choose a unique name`);
      }
      const id = await this.ids.alloc();
      const partId = await this.ids.alloc();
      const ts = this.tso.next().toString();
      const fields: FieldSchema[] = input.fields.map((f, i) => ({ ...f, fieldId: 100 + i }));
      const record: CollectionRecord = {
        id,
        dbId: db.id,
        name: input.name,
        schema: { name: input.name, description: input.description, autoId: input.autoId, enableDynamicField: input.enableDynamicField, fields },
        shardsNum: input.shardsNum,
        consistencyLevel: input.consistencyLevel,
        properties: input.properties,
        partitions: [{ id: partId, name: DEFAULT_PARTITION, createdTs: ts }],
        createdTs: ts,
        updateTs: ts,
        state: 'Created',
        loaded: false,
      };
      await this.catalog.commit([
        { type: 'putCollection', record },
        { type: 'putCheckpoint', collectionId: id, position: this.wal.endPosition() },
      ]);
      this.#runtimes.set(id, new CollectionRuntime(record));
      return record;
    });
  }

  async dropCollection(dbName: string, name: string): Promise<void> {
    let dropped: CollectionRecord | undefined;
    await this.#ddl.run(async () => {
      const db = this.catalog.requireDatabase(dbName);
      const coll = this.catalog.collectionByName(db.id, name);
      if (!coll) throw quiverError('CollectionNotFound', `collection not found[database=${dbName}][collection=${name}]`);
      await this.#collLocks.run(coll.id, async () => {
        dropped = { ...coll, state: 'Dropped', droppedAtMs: this.#clock.nowMs(), loaded: false };
        const changes: CatalogChange[] = [
          { type: 'putCollection', record: dropped },
          { type: 'deleteCheckpoint', collectionId: coll.id },
        ];
        for (const a of this.catalog.aliasesIn(db.id)) if (a.collectionId === coll.id) changes.push({ type: 'deleteAlias', dbId: db.id, alias: a.alias });
        await this.catalog.commit(changes);
        // Drop the in-memory data now (and make it unusable as a sharing donor).
        const rt = this.#runtimes.get(coll.id);
        if (rt) for (const seg of rt.segments.values()) stripToPk(seg, rt.pkField.name);
        this.#runtimes.delete(coll.id);
        this.#dirtySinceMs.delete(coll.id);
        this.#durable.forget(coll.id);
      });
    });
    const d = dropped;
    if (d) for (const hook of this.#dropHooks) await hook(d).catch((err: Error) => this.#log.error({ err }, 'drop hook failed'));
  }

  onCollectionDropped(hook: (coll: CollectionRecord) => Promise<void>): void {
    this.#dropHooks.push(hook);
  }

  /** Runs `fn` while no flush, compaction commit or index commit of the collection can run. */
  withCollectionLock<T>(collectionId: number, fn: () => Promise<T>): Promise<T> {
    return this.#collLocks.run(collectionId, fn);
  }

  /** Flushed segments of a collection right now (call under `withCollectionLock` for a stable set). */
  flushedSegments(collectionId: number): SegmentRecord[] {
    const rt = this.runtime(collectionId);
    return [...rt.segments.values()]
      .filter((s) => s.phase === 'flushed' && s.record?.state === 'Flushed')
      .map((s) => s.record!)
      .sort((a, b) => a.id - b.id);
  }

  /**
   * Creates a restore target: the collection (state Restoring: its name is reserved, it is not visible),
   * its indexes and its segments (state Importing, no files yet), in one transaction.
   */
  async createRestoreTarget(input: {
    dbName: string;
    name: string;
    source: CollectionRecord;
    partitions: readonly { name: string }[];
    indexes: readonly IndexRecord[];
    segments: readonly { sourceId: number; partitionName: string; numRows: number }[];
  }): Promise<{ collection: CollectionRecord; segmentIds: Map<number, { targetId: number; partitionId: number }> }> {
    return this.#ddl.run(async () => {
      const db = this.catalog.requireDatabase(input.dbName);
      if (this.catalog.nameTaken(db.id, input.name)) {
        throw quiverError('ParameterInvalid', `collection already exists: ${input.name} (restore target must be a new collection)`);
      }
      const id = await this.ids.alloc();
      const ts = this.tso.next().toString();
      const partitions: PartitionRecord[] = [];
      for (const p of input.partitions) partitions.push({ id: await this.ids.alloc(), name: p.name, createdTs: ts });
      if (!partitions.some((p) => p.name === DEFAULT_PARTITION)) partitions.unshift({ id: await this.ids.alloc(), name: DEFAULT_PARTITION, createdTs: ts });
      const collection: CollectionRecord = {
        ...input.source,
        id,
        dbId: db.id,
        name: input.name,
        schema: { ...input.source.schema, name: input.name },
        partitions,
        createdTs: ts,
        updateTs: ts,
        state: 'Restoring',
        droppedAtMs: undefined,
        loaded: false,
        loadedPartitions: undefined,
      };
      const changes: CatalogChange[] = [{ type: 'putCollection', record: collection }];
      for (const idx of input.indexes) changes.push({ type: 'putIndex', record: { ...idx, collectionId: id } });
      const segmentIds = new Map<number, { targetId: number; partitionId: number }>();
      for (const s of input.segments) {
        const targetId = await this.ids.alloc();
        const partitionId = partitions.find((p) => p.name === s.partitionName)?.id ?? partitions[0]!.id;
        segmentIds.set(s.sourceId, { targetId, partitionId });
        changes.push({
          type: 'putSegment',
          record: { id: targetId, collectionId: id, partitionId, state: 'Importing', numRows: s.numRows, binlogs: {}, deltalogs: [], statslogs: [], indexes: [], createdTs: ts },
        });
      }
      changes.push({ type: 'putCheckpoint', collectionId: id, position: this.wal.endPosition() });
      await this.catalog.commit(changes);
      return { collection, segmentIds };
    });
  }

  /**
   * Publishes a restore: every target segment becomes Flushed (with its copied files) and the collection
   * visible, in one transaction. Idempotent.
   */
  async completeRestore(collectionId: number, segments: readonly SegmentRecord[]): Promise<void> {
    await this.#ddl.run(async () => {
      const coll = this.catalog.collectionIncludingDropped(collectionId);
      if (!coll) throw quiverError('CollectionNotFound', `restore target collection ${collectionId} no longer exists`);
      if (coll.state === 'Created') return;
      if (coll.state !== 'Restoring') throw quiverError('ServiceInternal', `restore target ${coll.name} is ${coll.state}`);
      const changes: CatalogChange[] = segments.map((r) => ({ type: 'putSegment', record: { ...r, collectionId, state: 'Flushed' } }));
      const visible: CollectionRecord = { ...coll, state: 'Created', updateTs: this.tso.next().toString() };
      changes.push({ type: 'putCollection', record: visible });
      await this.catalog.commit(changes);
      const rt = new CollectionRuntime(visible);
      for (const rec of this.catalog.segments(collectionId)) {
        if (rec.state !== 'Flushed') continue;
        const seg = this.#flushedSegment(rec);
        rt.segments.set(rec.id, seg);
        try {
          await this.#readSegmentInto(rt, seg, false);
        } catch (err) {
          seg.error = (err as Error).message;
        }
      }
      this.#runtimes.set(collectionId, rt);
      this.#scheduleIndexBuild(rt);
    });
  }

  /** Rolls a restore back: its segments and the invisible collection disappear (files are the caller's). */
  async abortRestore(collectionId: number): Promise<void> {
    await this.#ddl.run(async () => {
      const coll = this.catalog.collectionIncludingDropped(collectionId);
      if (!coll || coll.state !== 'Restoring') return;
      const changes: CatalogChange[] = [];
      for (const s of this.catalog.segments(collectionId)) changes.push({ type: 'deleteSegment', collectionId, segmentId: s.id });
      for (const i of this.catalog.indexes(collectionId)) changes.push({ type: 'deleteIndex', collectionId, indexId: i.id });
      changes.push({ type: 'deleteCheckpoint', collectionId }, { type: 'deleteCollection', id: collectionId });
      await this.catalog.commit(changes);
    });
  }

  async renameCollection(dbName: string, oldName: string, newName: string, newDbName: string): Promise<void> {
    await this.#ddl.run(async () => {
      const db = this.catalog.requireDatabase(dbName);
      const coll = this.catalog.collectionByName(db.id, oldName);
      if (!coll) throw quiverError('CollectionNotFound', `collection not found[database=${dbName}][collection=${oldName}]`);
      const target = this.catalog.requireDatabase(newDbName || dbName);
      if (this.catalog.collectionByName(target.id, newName) || (this.catalog.nameTaken(target.id, newName) && !this.catalog.alias(target.id, newName))) {
        throw quiverError('ParameterInvalid', `duplicated new collection name ${newName} in database ${target.name}`);
      }
      if (this.catalog.alias(target.id, newName)) throw quiverError('ParameterInvalid', `cannot rename collection to an existing alias: ${newName}`);
      if (target.id !== db.id && this.catalog.aliasesOf(coll.id).length > 0) {
        throw quiverError('ParameterInvalid', `fail to rename collection to different database, must drop all aliases of collection ${oldName} first`);
      }
      const record: CollectionRecord = { ...coll, name: newName, dbId: target.id, schema: { ...coll.schema, name: newName }, updateTs: this.tso.next().toString() };
      await this.#putCollection(record);
    });
  }

  async alterCollection(dbName: string, name: string, set: Record<string, string>, deleteKeys: readonly string[]): Promise<void> {
    await this.#ddl.run(async () => {
      const coll = this.catalog.resolveCollection(dbName, name);
      const properties = { ...coll.properties, ...set };
      for (const k of deleteKeys) delete properties[k];
      await this.#putCollection({ ...coll, properties, updateTs: this.tso.next().toString() });
    });
  }

  async alterCollectionField(dbName: string, name: string, fieldName: string, set: Record<string, string>, deleteKeys: readonly string[]): Promise<void> {
    await this.#ddl.run(async () => {
      const coll = this.catalog.resolveCollection(dbName, name);
      const field = coll.schema.fields.find((f) => f.name === fieldName && !f.isDynamic);
      if (!field) throw quiverError('FieldNotFound', `field not found[field=${fieldName}][collection=${name}]`);
      const typeParams = { ...field.typeParams, ...set };
      for (const k of deleteKeys) delete typeParams[k];
      let maxLength = field.maxLength;
      if (set['max_length'] !== undefined) {
        const n = Number(set['max_length']);
        if (field.dataType !== 'VarChar' && !(field.dataType === 'Array' && field.elementType === 'VarChar')) {
          throw quiverError('ParameterInvalid', `max_length can only be altered on VarChar fields, ${fieldName} is ${field.dataType}`);
        }
        if (!Number.isInteger(n) || n < (field.maxLength ?? 0) || n > 65535) {
          throw quiverError('ParameterInvalid', `invalid max_length ${set['max_length']} for field ${fieldName}: must be an integer in [${field.maxLength}, 65535]`);
        }
        maxLength = n;
      }
      const fields = coll.schema.fields.map((f) => (f === field ? { ...f, typeParams, maxLength } : f));
      await this.#putCollection({ ...coll, schema: { ...coll.schema, fields }, updateTs: this.tso.next().toString() });
    });
  }

  // ------------------------------------------------------------------ partitions

  async createPartition(dbName: string, collName: string, name: string): Promise<void> {
    await this.#ddl.run(async () => {
      const coll = this.catalog.resolveCollection(dbName, collName);
      if (coll.partitions.some((p) => p.name === name)) throw quiverError('ParameterInvalid', `partition already exists: ${name}`);
      if (coll.partitions.length >= 1024) throw quiverError('ParameterInvalid', `partition number (1024) exceeds max configuration, collection: ${collName}`);
      const id = await this.ids.alloc();
      await this.#putCollection({ ...coll, partitions: [...coll.partitions, { id, name, createdTs: this.tso.next().toString() }] });
    });
  }

  async dropPartition(dbName: string, collName: string, name: string): Promise<void> {
    await this.#ddl.run(async () => {
      const coll = this.catalog.resolveCollection(dbName, collName);
      if (name === DEFAULT_PARTITION) throw quiverError('ParameterInvalid', 'default partition cannot be deleted');
      const p = coll.partitions.find((x) => x.name === name);
      if (!p) return;
      if (coll.loaded && (coll.loadedPartitions === undefined || coll.loadedPartitions.includes(p.id))) {
        throw quiverError('ParameterInvalid', `partition ${name} cannot be dropped, release it first`);
      }
      await this.#collLocks.run(coll.id, async () => {
        const rt = this.runtime(coll.id);
        const changes: CatalogChange[] = [];
        const now = this.#clock.nowMs();
        for (const seg of [...rt.segments.values()]) {
          if (seg.partitionId !== p.id) continue;
          if (seg.record) changes.push({ type: 'putSegment', record: { ...seg.record, state: 'Dropped', droppedAtMs: now } });
        }
        const record: CollectionRecord = { ...coll, partitions: coll.partitions.filter((x) => x.id !== p.id) };
        await this.#putCollection(record, changes);
        // Unflushed rows of the partition die with it; the WAL copies are skipped at replay because the
        // partition no longer exists.
        for (const seg of [...rt.segments.values()]) if (seg.partitionId === p.id) rt.segments.delete(seg.id);
        rt.growing.delete(p.id);
      });
    });
  }

  // ------------------------------------------------------------------ aliases

  async createAlias(dbName: string, collName: string, alias: string): Promise<void> {
    await this.#ddl.run(async () => {
      const db = this.catalog.requireDatabase(dbName);
      const coll = this.catalog.collectionByName(db.id, collName);
      if (!coll) throw quiverError('CollectionNotFound', `collection not found[database=${dbName}][collection=${collName}]`);
      if (this.catalog.collectionByName(db.id, alias)) throw quiverError('AliasCollectionNameConflict', `alias ${alias} conflicts with an existing collection name`);
      const existing = this.catalog.alias(db.id, alias);
      if (existing) {
        if (existing.collectionId === coll.id) return;
        throw quiverError('AliasAlreadyExist', `alias ${alias} already exists and points to another collection`);
      }
      await this.catalog.commit([{ type: 'putAlias', record: { dbId: db.id, alias, collectionId: coll.id } }]);
    });
  }

  async alterAlias(dbName: string, collName: string, alias: string): Promise<void> {
    await this.#ddl.run(async () => {
      const db = this.catalog.requireDatabase(dbName);
      const coll = this.catalog.collectionByName(db.id, collName);
      if (!coll) throw quiverError('CollectionNotFound', `collection not found[database=${dbName}][collection=${collName}]`);
      if (!this.catalog.alias(db.id, alias)) throw quiverError('AliasNotFound', `alias not found[database=${dbName}][alias=${alias}]`);
      await this.catalog.commit([{ type: 'putAlias', record: { dbId: db.id, alias, collectionId: coll.id } }]);
    });
  }

  async dropAlias(dbName: string, alias: string): Promise<void> {
    await this.#ddl.run(async () => {
      const db = this.catalog.requireDatabase(dbName);
      if (!this.catalog.alias(db.id, alias)) return;
      await this.catalog.commit([{ type: 'deleteAlias', dbId: db.id, alias }]);
    });
  }

  // ------------------------------------------------------------------ writes

  async #segmentId(): Promise<() => number> {
    if (this.#spareSegmentIds.length < 4) {
      const first = await this.ids.alloc(16);
      for (let i = 0; i < 16; i++) this.#spareSegmentIds.push(first + i);
    }
    return () => this.#spareSegmentIds.shift()!;
  }

  /** One append for all of a write's records: they are durable together or fail together. */
  #append(collectionId: number, entries: readonly WalEntry[]): Promise<WalPosition> {
    const p = this.wal.append(entries.map(encodeWalEntry)).then((pos) => pos[pos.length - 1]!);
    this.#appendSeq.set(collectionId, (this.#appendSeq.get(collectionId) ?? 0) + 1);
    if (!this.#dirtySinceMs.has(collectionId)) this.#dirtySinceMs.set(collectionId, this.#clock.nowMs());
    return p;
  }

  /**
   * Inserts validated columns. With `upsert`, rows with the same pks are deleted at the same timestamp
   * (the insert shares the ts, so it survives its own delete).
   */
  async insert(collectionId: number, partitionName: string | undefined, columns: Map<string, Column>, numRows: number, upsert: boolean): Promise<{ pks: BigInt64Array | string[]; ts: bigint }> {
    const rt = this.runtime(collectionId);
    const coll = rt.record;
    const part = this.#partition(coll, partitionName);
    const pk = rt.pkField;
    if (pk.autoId && !upsert && !columns.has(pk.name)) {
      const first = await this.ids.alloc(numRows);
      const data = new BigInt64Array(numRows);
      for (let i = 0; i < numRows; i++) data[i] = BigInt(first + i);
      columns.set(pk.name, { kind: 'int64', data });
    }
    const pkCol = columns.get(pk.name);
    if (!pkCol) throw quiverError('DataInvalid', `fieldSchema(${pk.name}) has no corresponding fieldData pass in`);
    const pks = pkCol.data as BigInt64Array | string[];
    if (upsert) {
      const seen = new Set<bigint | string>();
      for (let i = 0; i < numRows; i++) {
        const v = pks[i]!;
        if (seen.has(v)) throw quiverError('DataInvalid', `duplicate primary keys are not allowed in the same batch: ${String(v)}`);
        seen.add(v);
      }
    }
    const nextSeg = await this.#segmentId();
    if (this.#runtimes.get(collectionId) !== rt) throw quiverError('CollectionNotFound', `collection not found[collection=${coll.name}]`);
    if (!rt.record.partitions.some((p) => p.id === part.id)) throw quiverError('PartitionNotFound', `partition not found[partition=${part.name}]`);
    // From here to the WAL append call everything is synchronous: ts order = WAL order = apply order.
    // Nothing is visible until the append is durable; a failed append is never applied (durable-apply.ts).
    const ts = this.tso.next();
    const seg = rt.reserveGrowing(part.id, nextSeg);
    const set = upsert ? new Set<bigint | string>(Array.from(pks as ArrayLike<bigint | string>)) : undefined;
    const entries: WalEntry[] = set ? [{ type: 'delete', collectionId, ts, pks: [...set] }] : [];
    entries.push({ type: 'insert', collectionId, partitionId: part.id, segmentId: seg.id, ts, numRows, columns });
    await this.#durable.run(collectionId, this.#append(collectionId, entries), () => {
      if (this.#runtimes.get(collectionId) !== rt) return; // dropped meanwhile
      if (set) rt.applyDelete(set, ts);
      if (rt.segments.get(seg.id) === seg) rt.appendRows(seg, columns, ts, numRows); // else its partition was dropped
    });
    return { pks, ts };
  }

  /** Deletes by filter; a pk filter takes the fast path and needs no loaded data. */
  async delete(collectionId: number, partitionName: string | undefined, expr: string, templates: TemplateValues | undefined): Promise<{ count: number; ts: bigint; pks: (bigint | string)[] }> {
    const rt = this.runtime(collectionId);
    const coll = rt.record;
    const part = partitionName ? this.#partition(coll, partitionName) : undefined;
    const schema = exprSchema(coll);
    if (!expr.trim()) throw quiverError('ParameterInvalid', 'delete requires a filter expression; use `pk in [...]` or a condition, not an empty string');
    const compiled = compileFilter(expr, schema, templates);
    let pks = compiled ? extractPkValuesFromText(expr, schema, templates) : null;
    if (!pks) {
      const parts = part ? new Set([part.id]) : null;
      const refs = rt.query(compiled, parts, 0, undefined);
      const col = gatherColumn(refs, rt.pkField.name);
      pks = col ? Array.from(col.data as ArrayLike<bigint | string>) : [];
    }
    const ts = this.tso.next();
    if (pks.length === 0) return { count: 0, ts, pks };
    const set = new Set(pks);
    // Applied once durable, in WAL order; a failed append is never applied (durable-apply.ts).
    const entry: WalEntry = { type: 'delete', collectionId, partitionId: part?.id, ts, pks };
    const count = await this.#durable.run(collectionId, this.#append(collectionId, [entry]), () =>
      this.#runtimes.get(collectionId) === rt ? rt.applyDelete(set, ts, part?.id) : 0,
    );
    return { count, ts, pks };
  }

  // ------------------------------------------------------------------ flush

  /**
   * Seals every growing segment and writes it (and every pending delete) to immutable files, then
   * commits segment records and the new WAL checkpoint in one meta transaction. Returns the flushed
   * segment ids.
   */
  async flushCollection(collectionId: number): Promise<{ segmentIds: number[]; flushTs: bigint }> {
    return this.#collLocks.run(collectionId, async () => {
      const rt = this.runtime(collectionId);
      const coll = rt.record;
      // Synchronous seal: the set of rows and deletes this flush covers is fixed here.
      const flushTs = this.tso.next();
      rt.sealAll();
      // Every sealed segment, including ones a failed earlier flush left behind.
      const sealed = [...rt.segments.values()].filter((s) => s.phase === 'sealed');
      // The collection stays "dirty" (its checkpoint protects its WAL records from truncation) until the
      // flush has committed, and after it if anything was appended since the seal.
      const seqAtSeal = this.#appendSeq.get(collectionId) ?? 0;
      // Writes issued before the seal land in the sealed segments once durable: wait for them. The
      // checkpoint is the last durable one; later deletes (ts > flushTs) stay for the next flush.
      const lastPos = await this.#durable.settled(collectionId);
      for (const seg of sealed) {
        if (seg.chunks.length > 1) {
          const merged = mergeChunks(seg.chunks, coll.schema.fields.map((f) => f.name));
          seg.chunks = [merged];
        }
      }
      const deletes = takeDeletesBefore(rt.segments.values(), flushTs);
      try {
        const changes: CatalogChange[] = [];
        const createdTs = flushTs.toString();
        const pkField = rt.pkField;
        for (const seg of sealed) {
          const chunk = seg.chunks[0];
          if (!chunk || chunk.numRows === 0) continue;
          const files = await writeInsertFiles(this.store, this.ids, coll, seg.id, seg.partitionId, chunk);
          const d = deletes.get(seg.id);
          const deltalogs = d ? [await writeDeltaFile(this.store, this.ids, coll, seg.id, seg.partitionId, pkField, d)] : [];
          deletes.delete(seg.id);
          const record: SegmentRecord = {
            id: seg.id,
            collectionId,
            partitionId: seg.partitionId,
            state: 'Flushed',
            numRows: chunk.numRows,
            binlogs: files.binlogs,
            deltalogs,
            statslogs: files.statslogs,
            indexes: [],
            createdTs,
          };
          changes.push({ type: 'putSegment', record });
        }
        for (const [segId, d] of deletes) {
          const seg = rt.segments.get(segId);
          if (!seg?.record) continue;
          const log = await writeDeltaFile(this.store, this.ids, coll, segId, seg.partitionId, pkField, d);
          changes.push({ type: 'putSegment', record: { ...seg.record, deltalogs: [...seg.record.deltalogs, log] } });
        }
        if (lastPos !== undefined) changes.push({ type: 'putCheckpoint', collectionId, position: lastPos + 1 });
        if (!this.#runtimes.has(collectionId)) return { segmentIds: [], flushTs };
        await this.catalog.commit(changes);
        if ((this.#appendSeq.get(collectionId) ?? 0) === seqAtSeal) this.#dirtySinceMs.delete(collectionId);
        else this.#dirtySinceMs.set(collectionId, this.#clock.nowMs());
        const ids: number[] = [];
        for (const c of changes) {
          if (c.type !== 'putSegment') continue;
          const seg = rt.segments.get(c.record.id);
          if (!seg) continue;
          seg.record = c.record;
          if (seg.phase !== 'flushed') {
            seg.phase = 'flushed';
            ids.push(seg.id);
            if (!rt.record.loaded) stripToPk(seg, rt.pkField.name);
            else if (seg.chunks[0]) this.#registerLoaded(c.record, seg.chunks[0]);
          }
        }
        for (const seg of sealed) if (seg.numRows === 0) rt.segments.delete(seg.id);
        return { segmentIds: ids, flushTs };
      } catch (err) {
        // Nothing was committed: put the deletes back and keep the collection dirty so a later flush retries.
        for (const [segId, d] of deletes) {
          const seg = rt.segments.get(segId);
          if (!seg) continue;
          seg.pendingDeletes.pks.unshift(...d.pks);
          seg.pendingDeletes.ts.unshift(...d.ts);
        }
        throw err;
      }
    }).then(async (r) => {
      const rt = this.#runtimes.get(collectionId);
      if (rt && r.segmentIds.length > 0) this.#scheduleIndexBuild(rt);
      return r;
    });
  }


  // ------------------------------------------------------------------ indexes

  async createIndex(collectionId: number, field: FieldSchema, name: string, def: Omit<IndexRecord, 'id' | 'collectionId' | 'fieldId' | 'name' | 'createdTs'>): Promise<void> {
    await this.#ddl.run(async () => {
      const rt = this.runtime(collectionId);
      const existing = this.catalog.indexes(collectionId);
      const sameField = existing.find((i) => i.fieldId === field.fieldId);
      if (sameField) {
        const same = sameField.name === name && sameField.indexType === def.indexType && sameField.metric === def.metric &&
          JSON.stringify(sameField.buildParams) === JSON.stringify(def.buildParams);
        if (same) return;
        throw quiverError('IndexDuplicate', `at most one distinct index is allowed per field; field ${field.name} already has index ${sameField.name} (${sameField.indexType}, ${sameField.metric})`);
      }
      if (existing.some((i) => i.name === name)) throw quiverError('IndexDuplicate', `index name ${name} is already used in collection ${rt.record.name}`);
      const id = await this.ids.alloc();
      await this.catalog.commit([{ type: 'putIndex', record: { ...def, id, collectionId, fieldId: field.fieldId, name, createdTs: this.tso.next().toString() } }]);
    });
    this.#scheduleIndexBuild(this.runtime(collectionId));
  }

  async dropIndex(collectionId: number, index: IndexRecord): Promise<void> {
    await this.#ddl.run(async () => {
      const rt = this.runtime(collectionId);
      if (rt.record.loaded) throw quiverError('ParameterInvalid', `index cannot be dropped, collection is loaded, please release it first`);
      await this.#collLocks.run(collectionId, async () => {
        const changes: CatalogChange[] = [{ type: 'deleteIndex', collectionId, indexId: index.id }];
        for (const seg of rt.segments.values()) {
          if (!seg.record || !seg.record.indexes.some((i) => i.indexId === index.id)) continue;
          const record = { ...seg.record, indexes: seg.record.indexes.filter((i) => i.indexId !== index.id) };
          changes.push({ type: 'putSegment', record });
        }
        await this.catalog.commit(changes);
        for (const c of changes) if (c.type === 'putSegment') rt.segments.get(c.record.id)!.record = c.record;
      });
    });
  }

  readonly #buildScheduled = new Set<number>();

  #scheduleIndexBuild(rt: CollectionRuntime): void {
    if (this.#buildScheduled.has(rt.record.id) || this.#closed) return;
    this.#buildScheduled.add(rt.record.id);
    this.#inBackground(
      new Promise<void>((resolve) => setImmediate(resolve))
        .then(() => this.#buildMissingIndexes(rt))
        .catch((err) => {
          if (!this.#closed) this.#log.error({ err, collection: rt.record.name }, 'index build failed');
        })
        .finally(() => this.#buildScheduled.delete(rt.record.id)),
    );
  }

  readonly #buildLock = new Mutex();

  /** Builds every (flushed segment, index) pair that has no index file yet. */
  async #buildMissingIndexes(rt: CollectionRuntime): Promise<void> {
    await this.#buildLock.run(async () => {
      for (const idx of this.catalog.indexes(rt.record.id)) {
        const field = rt.record.schema.fields.find((f) => f.fieldId === idx.fieldId);
        if (!field || field.dataType !== 'FloatVector') continue;
        for (const seg of [...rt.segments.values()]) {
          if (this.#closed || this.#runtimes.get(rt.record.id) !== rt) return;
          if (seg.phase !== 'flushed' || !seg.record || seg.record.indexes.some((i) => i.indexId === idx.id)) continue;
          if (this.catalog.indexes(rt.record.id).every((i) => i.id !== idx.id)) return;
          await this.#buildSegmentIndex(rt, seg, idx, field);
        }
      }
    });
  }

  /** Builds one index's files for a segment's vectors (HNSW on the worker thread); FLAT has no files. */
  async #buildIndexFile(vectors: Float32Array, idx: IndexRecord, field: FieldSchema, partitionId: number, segmentId: number, open: boolean): Promise<{ file: SegmentIndexFile; built?: VectorIndex }> {
    const buildId = await this.ids.alloc();
    if (idx.indexType !== 'HNSW') return { file: { indexId: idx.id, buildId, version: 1, files: [], size: 0 } };
    const tmp = join(this.#opts.tmpDir, `build-${buildId}.hnsw`);
    try {
      await this.#builds.build({ vectors, dim: field.dim!, metric: idx.metric, M: idx.buildParams.M ?? 16, efConstruction: idx.buildParams.efConstruction ?? 200, outPath: tmp });
      const bytes = await readFile(tmp);
      const key = indexFileKey(buildId, 1, partitionId, segmentId, 'hnsw.bin');
      await this.store.put(key, bytes);
      const file: SegmentIndexFile = { indexId: idx.id, buildId, version: 1, files: [key], size: bytes.byteLength };
      const rows = vectors.length / field.dim!;
      return open ? { file, built: await this.#openHnsw(key, field.dim!, idx.metric, rows) } : { file };
    } finally {
      await rm(tmp, { force: true });
    }
  }

  async #buildSegmentIndex(rt: CollectionRuntime, seg: Segment, idx: IndexRecord, field: FieldSchema): Promise<void> {
    const rec = seg.record!;
    let vectors = seg.loaded ? (seg.chunks[0]?.columns.get(field.name)?.data as Float32Array | undefined) : undefined;
    if (!vectors) {
      const chunk = await readSegment(this.store, rt.record, rec, [field]);
      vectors = chunk.columns.get(field.name)!.data as Float32Array;
    }
    const { file, built } = await this.#buildIndexFile(vectors, idx, field, seg.partitionId, seg.id, seg.loaded);
    await this.#collLocks.run(rt.record.id, async () => {
      // The segment may have been compacted away or dropped meanwhile: then the file is an orphan for GC.
      if (rt.segments.get(seg.id) !== seg || seg.record?.state !== 'Flushed') return;
      const current = seg.record;
      if (this.catalog.indexes(rt.record.id).every((i) => i.id !== idx.id)) return;
      const record: SegmentRecord = { ...current, indexes: [...current.indexes.filter((i) => i.indexId !== idx.id), file] };
      await this.catalog.commit([{ type: 'putSegment', record }]);
      seg.record = record;
      if (built && seg.loaded && seg.chunks[0]) {
        seg.chunks[0].indexes.set(field.name, built);
        seg.chunks[0].indexBuilds.set(field.name, file.buildId);
      }
    });
  }

  indexProgress(collectionId: number, idx: IndexRecord): { indexedRows: number; totalRows: number; pendingRows: number } {
    const rt = this.runtime(collectionId);
    let indexed = 0;
    let total = 0;
    for (const seg of rt.segments.values()) {
      if (seg.phase !== 'flushed' || !seg.record) continue;
      total += seg.numRows;
      if (seg.record.indexes.some((i) => i.indexId === idx.id)) indexed += seg.numRows;
    }
    return { indexedRows: indexed, totalRows: total, pendingRows: total - indexed };
  }

  /** Awaits index builds (tests and benchmarks). */
  async waitForIndexes(collectionId: number): Promise<void> {
    await this.#buildMissingIndexes(this.runtime(collectionId));
  }

  // ------------------------------------------------------------------ compaction (src/node/compactor.ts)

  /** Registers a rule that keeps segments out of compaction (e.g. a snapshot's compaction protection). */
  addCompactionGuard(guard: (collectionId: number, segmentId: number) => boolean): void {
    this.#compactor.addGuard(guard);
  }

  compact(collectionId: number, opts: { force: boolean; wait: boolean }): Promise<CompactionTaskInfo> {
    return this.#compactor.compact(this.runtime(collectionId), opts);
  }

  compactionTask(id: number): CompactionTaskInfo | undefined {
    return this.#compactor.task(id);
  }

  /** A compaction is reading the segment (GC must not reclaim it yet). */
  isSegmentBusy(_collectionId: number, segmentId: number): boolean {
    return this.#compactor.isBusy(segmentId);
  }

  // ------------------------------------------------------------------ load / release

  async load(collectionId: number, partitionNames: readonly string[] | undefined): Promise<void> {
    const rt = this.runtime(collectionId);
    const coll = rt.record;
    let loadedPartitions: number[] | undefined;
    if (partitionNames && partitionNames.length > 0) {
      const ids = partitionNames.map((n) => this.#partition(coll, n).id);
      const prev = coll.loaded ? (coll.loadedPartitions ?? coll.partitions.map((p) => p.id)) : [];
      loadedPartitions = [...new Set([...prev, ...ids])];
      if (loadedPartitions.length === coll.partitions.length) loadedPartitions = undefined;
    }
    await this.#putCollection({ ...coll, loaded: true, loadedPartitions });
    this.#startLoading(rt);
  }

  #startLoading(rt: CollectionRuntime): void {
    if (this.#loading.has(rt.record.id)) return;
    const p = (async () => {
      for (const seg of [...rt.segments.values()]) {
        if (seg.phase !== 'flushed' || seg.loaded || !rt.record.loaded) continue;
        try {
          await this.#readSegmentInto(rt, seg, true);
        } catch (err) {
          seg.error = (err as Error).message;
          this.#log.error({ err, segment: seg.id }, 'segment load failed');
        }
      }
    })().finally(() => this.#loading.delete(rt.record.id));
    this.#loading.set(rt.record.id, p);
  }

  async waitLoaded(collectionId: number): Promise<void> {
    await this.#loading.get(collectionId);
  }

  async release(collectionId: number, partitionNames?: readonly string[]): Promise<void> {
    const rt = this.runtime(collectionId);
    const coll = rt.record;
    if (partitionNames && partitionNames.length > 0) {
      const ids = new Set(partitionNames.map((n) => this.#partition(coll, n).id));
      const prev = coll.loaded ? (coll.loadedPartitions ?? coll.partitions.map((p) => p.id)) : [];
      const rest = prev.filter((id) => !ids.has(id));
      await this.#putCollection({ ...coll, loaded: rest.length > 0, loadedPartitions: rest.length > 0 ? rest : undefined });
      return;
    }
    await this.#loading.get(collectionId);
    await this.#putCollection({ ...coll, loaded: false, loadedPartitions: undefined });
    for (const seg of rt.segments.values()) if (seg.phase === 'flushed') stripToPk(seg, rt.pkField.name);
  }

  loadProgress(collectionId: number, partitionNames?: readonly string[]): LoadProgress {
    const rt = this.runtime(collectionId);
    const coll = rt.record;
    if (!coll.loaded) return { state: 'NotLoad', progress: 0 };
    if (partitionNames && partitionNames.length > 0) {
      const loaded = coll.loadedPartitions ?? coll.partitions.map((p) => p.id);
      for (const n of partitionNames) {
        if (!loaded.includes(this.#partition(coll, n).id)) return { state: 'NotLoad', progress: 0 };
      }
    }
    let total = 0;
    let done = 0;
    for (const seg of rt.segments.values()) {
      if (seg.phase !== 'flushed') continue;
      total++;
      if (seg.loaded || seg.error) done++;
    }
    const progress = total === 0 ? 100 : Math.floor((done * 100) / total);
    return { state: progress >= 100 ? 'Loaded' : 'Loading', progress };
  }

  #readablePartitions(coll: CollectionRecord, names: readonly string[]): Set<number> | null {
    if (!coll.loaded) throw quiverError('CollectionNotLoaded', `collection not loaded[collection=${coll.name}]`);
    const loaded = coll.loadedPartitions;
    if (names.length === 0) return loaded ? new Set(loaded) : null;
    const ids = new Set<number>();
    for (const n of names) {
      const p = this.#partition(coll, n);
      if (loaded && !loaded.includes(p.id)) throw quiverError('PartitionNotLoaded', `partition not loaded[partition=${n}]`);
      ids.add(p.id);
    }
    return ids;
  }

  async #ensureReadable(rt: CollectionRuntime): Promise<void> {
    const pending = this.#loading.get(rt.record.id);
    if (pending) await pending;
  }

  // ------------------------------------------------------------------ reads

  async search(collectionId: number, p: SearchParams): Promise<{ hits: SearchHit[][]; metric: MetricType }> {
    const rt = this.runtime(collectionId);
    const coll = rt.record;
    const parts = this.#readablePartitions(coll, p.partitionNames);
    await this.#ensureReadable(rt);
    const idx = this.catalog.indexes(collectionId).find((i) => i.fieldId === p.field.fieldId);
    let metric = p.metric;
    if (idx && metric && metric !== idx.metric) {
      throw quiverError('ParameterInvalid', `metric type not match: invalid parameter[expected=${idx.metric}][actual=${metric}]`);
    }
    metric = metric ?? idx?.metric ?? 'COSINE';
    const filter = compileFilter(p.filter, exprSchema(coll), p.templates);
    const hits = rt.search({
      field: p.field,
      queries: p.queries,
      nq: p.nq,
      k: p.k,
      offset: p.offset,
      metric,
      filter,
      partitionIds: parts,
      ef: p.ef,
      radius: p.radius,
      rangeFilter: p.rangeFilter,
      ignoreGrowing: p.ignoreGrowing,
    });
    return { hits, metric };
  }

  async query(collectionId: number, q: { filter: string; templates?: TemplateValues | undefined; partitionNames: readonly string[]; offset: number; limit: number | undefined }): Promise<RowRef[]> {
    const rt = this.runtime(collectionId);
    const parts = this.#readablePartitions(rt.record, q.partitionNames);
    await this.#ensureReadable(rt);
    const filter = compileFilter(q.filter, exprSchema(rt.record), q.templates);
    return rt.query(filter, parts, q.offset, q.limit);
  }

  async count(collectionId: number, q: { filter: string; templates?: TemplateValues | undefined; partitionNames: readonly string[] }): Promise<number> {
    const rt = this.runtime(collectionId);
    const parts = this.#readablePartitions(rt.record, q.partitionNames);
    await this.#ensureReadable(rt);
    const filter = compileFilter(q.filter, exprSchema(rt.record), q.templates);
    return rt.count(filter, parts);
  }

  /** Row count of the collection (or partition) as statistics report it: live rows, loaded or not. */
  rowCount(collectionId: number, partitionName?: string): number {
    const rt = this.runtime(collectionId);
    const parts = partitionName ? new Set([this.#partition(rt.record, partitionName).id]) : undefined;
    return rt.liveRowCount(parts);
  }


}

export function exprSchema(coll: CollectionRecord): ExprSchema {
  return {
    fields: coll.schema.fields
      .filter((f) => !f.isDynamic)
      .map((f) => ({ name: f.name, dataType: f.dataType, elementType: f.elementType, nullable: f.nullable, isPrimaryKey: f.isPrimaryKey })),
    dynamicField: coll.schema.enableDynamicField,
  };
}

/** `pk in [...]` / `pk == v` fast path (no column scan); compileFilter already validated the text. */
function extractPkValuesFromText(text: string, schema: ExprSchema, templates: TemplateValues | undefined): (bigint | string)[] | null {
  return extractPkValues(parseExpr(text, templates), schema);
}

