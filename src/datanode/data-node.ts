import type { Logger } from 'pino';
import type { Clock } from '../common/clock.js';
import { assert, quiverError } from '../common/errors.js';
import { attachVectors, hasIndexFiles, type VectorIndex } from '../index/index.js';
import type { CollectionRecord, IndexRecord, SegmentIndexFile, SegmentRecord } from '../coord/records.js';
import type { CatalogReader, CollectionEvents, IdSource, SegmentCoordinator, TsSource } from '../coord/types.js';
import { compileFilter, extractPkValues, parseExpr, type ExprSchema, type TemplateValues } from '../expr/index.js';
import type { LoadedSegments } from '../querynode/types.js';
import type { Column, FieldSchema } from '../schema/types.js';
import { CollectionRuntime, gatherColumn } from '../segcore/collection-runtime.js';
import { exprSchema, partitionOf } from '../segcore/collection-helpers.js';
import { mergeChunks, segmentBytes, stripToPk, type Chunk, type Segment } from '../segcore/segment.js';
import { writeDeltaFile, writeInsertFiles } from '../segcore/segment-io.js';
import type { ObjectStore } from '../storage/object-store.js';
import type { Wal, WalPosition } from '../wal/wal.js';
import type { CompactionMergeParams } from '../taskrpc/protocol.js';
import { Compactor, type CompactionPlanner, type CompactionTaskInfo } from './compactor.js';
import { IndexBuildExecutor } from './index-build-executor.js';
import { IndexBuildPool } from './index-builder.js';
import { TaskService } from './task-service.js';
import type { DataNodeApi, DataNodeTasks, GrowingStats, SegmentsView } from './types.js';
import { decodeWalEntry, encodeWalEntry, type WalEntry } from './wal-records.js';
import { DurableApply, takeDeletesBefore } from './durable-apply.js';
import { floatMetric } from '../index/typed-index-params.js';
import { isScalarIndexType, scalarIndexKey } from '../index/scalar/scalar-index-params.js';
import { ScalarIndex } from '../index/scalar/scalar-index.js';
import { hasTypedIndexFile, openTypedIndex } from '../index/typed-index-file.js';

/**
 * The data node: the write path (WAL → growing segments), flush (sealed segments → immutable binlogs,
 * committed by the coordinator's segment manager), WAL replay and truncation, and the task executors the
 * coordinator hands work to (index builds through the task service, compaction merges). It owns the
 * in-memory collections of the process; the query node reads and loads them through `SegmentsView`.
 */

export interface DataNodeDeps {
  readonly store: ObjectStore;
  readonly wal: Wal;
  readonly clock: Clock;
  readonly log: Logger;
  readonly catalog: CatalogReader;
  readonly tso: TsSource;
  readonly ids: IdSource;
  readonly segments: SegmentCoordinator;
  readonly loaded: LoadedSegments;
  readonly planCompaction: CompactionPlanner;
  /** Flushed segments landed: the index-build scheduler has work. */
  readonly onFlushed: (collectionId: number) => void;
}

export interface DataNodeOptions {
  /** Compaction targets about this many rows (the seal size); segments under half of it are "small". */
  readonly sealRows: number;
  /** Deleted fraction at which a segment is rewritten. */
  readonly compactionDeleteRatio: number;
  /** Scratch directory for index builds. */
  readonly tmpDir: string;
  /** Build indexes and merges on the calling thread (tests); default: a worker thread. */
  readonly indexBuildInline: boolean;
  readonly indexBuildThreads?: number | undefined;
  /**
   * Where flushes, compactions and imports build full-text index files: a worker thread (default), or
   * 'main' (the serving thread, which every request then waits behind: for comparison in bench/ only).
   */
  readonly textIndexBuild?: 'worker' | 'main' | undefined;
}

export class DataNode implements DataNodeApi, SegmentsView, CollectionEvents {
  readonly #store: ObjectStore;
  readonly #wal: Wal;
  readonly #clock: Clock;
  readonly #log: Logger;
  readonly #catalog: CatalogReader;
  readonly #tso: TsSource;
  readonly #ids: IdSource;
  readonly #segmentsCoord: SegmentCoordinator;
  readonly #loaded: LoadedSegments;
  readonly #onFlushed: (collectionId: number) => void;
  readonly #runtimes = new Map<number, CollectionRuntime>();
  /** Applies each write to memory once its WAL append is durable, in WAL order (durable-apply.ts). */
  readonly #durable = new DurableApply();
  /** Appends per collection: tells a flush whether anything arrived after its seal. */
  readonly #appendSeq = new Map<number, number>();
  /** Physical time of the oldest unflushed write per collection. */
  readonly #dirtySinceMs = new Map<number, number>();
  readonly #builds: IndexBuildPool;
  /** A second worker for compaction merges, so a long index build never delays a merge. */
  readonly #merges: IndexBuildPool;
  /**
   * A third worker for full-text index files: a flush holds its collection's lock while they build, so
   * they must not queue behind a long vector build or a merge. Undefined: built on the main thread.
   */
  readonly #texts: IndexBuildPool | undefined;
  readonly #compactor: Compactor;
  readonly tasks: DataNodeTasks;
  /** Where key merges go (the cluster wiring's router: registered data nodes); unset = merges run here. */
  #keyMergeTasks: DataNodeTasks | undefined;
  /** Background work the shutdown drains (compactions not awaited). */
  readonly #background = new Set<Promise<unknown>>();
  #closing = false;

  constructor(deps: DataNodeDeps, opts: DataNodeOptions) {
    this.#store = deps.store;
    this.#wal = deps.wal;
    this.#clock = deps.clock;
    this.#log = deps.log;
    this.#catalog = deps.catalog;
    this.#tso = deps.tso;
    this.#ids = deps.ids;
    this.#segmentsCoord = deps.segments;
    this.#loaded = deps.loaded;
    this.#onFlushed = deps.onFlushed;
    this.#builds = new IndexBuildPool({ inline: opts.indexBuildInline, threads: opts.indexBuildThreads });
    this.#merges = new IndexBuildPool({ inline: opts.indexBuildInline });
    this.#texts = opts.textIndexBuild === 'main' ? undefined : new IndexBuildPool({ inline: opts.indexBuildInline, threads: 1 });
    const executor = new IndexBuildExecutor({ store: deps.store, ids: deps.ids, pool: this.#builds }, { tmpDir: opts.tmpDir });
    this.tasks = new TaskService({ store: deps.store, builds: executor, merges: this.#merges });
    // eslint-disable-next-line @typescript-eslint/no-this-alias -- the compactor host's getter reads a private field of this node
    const self = this;
    /** The in-memory index of a built file (a loaded collection's compaction target searches it at once). */
    const openIndexFile = async (file: SegmentIndexFile, vectors: Float32Array, idx: IndexRecord, field: FieldSchema): Promise<VectorIndex | undefined> => {
      if (!hasIndexFiles(idx.indexType) || file.files.length === 0) return undefined;
      const built = await deps.loaded.openIndex(file.files[0]!, field.dim!, floatMetric(idx.metric), vectors.length / field.dim!);
      attachVectors(built, vectors);
      return built;
    };
    this.#compactor = new Compactor(
      {
        store: deps.store,
        ids: deps.ids,
        tso: deps.tso,
        catalog: deps.catalog,
        clock: deps.clock,
        log: deps.log,
        plan: deps.planCompaction,
        commitCompaction: (id, target, dropped) => deps.segments.commitCompaction(id, target, dropped),
        runtime: (id) => this.#runtimes.get(id),
        withCollectionLock: (id, fn) => deps.segments.withCollectionLock(id, fn),
        buildIndexFile: async (vectors, idx, field, partitionId, segmentId, open) => {
          const file = await executor.build(vectors, idx, field, partitionId, segmentId);
          return { file, built: open ? await openIndexFile(file, vectors, idx, field) : undefined };
        },
        openIndexFile: (file, vectors, idx, field) => openIndexFile(file, vectors, idx, field),
        buildColumnIndexFile: async (column, idx, field, partitionId, segmentId, into) => {
          const { file, bytes } = await executor.buildColumnAs(column, idx, partitionId, segmentId, await deps.ids.alloc(), 1);
          if (into) attachColumnIndex(into, idx, field, file, bytes);
          return file;
        },
        openColumnIndexFile: async (file, idx, field, into) => {
          if (file.files.length === 0) return;
          attachColumnIndex(into, idx, field, file, await deps.store.get(file.files[0]!));
        },
        registerLoaded: (rec, chunk) => deps.loaded.registerLoaded(rec, chunk),
        textBuilds: this.#texts,
        merge: async (task) => {
          const id = await this.tasks.createTask({ kind: 'merge', merge: task });
          const outcome = await this.tasks.waitTask(id);
          this.tasks.dropTask(id);
          if (outcome.state === 'Failed') throw new Error(outcome.reason);
          if (outcome.state !== 'Finished' || outcome.result.kind !== 'merge') throw new Error(`merge task ${id} ended ${outcome.state}`);
          return outcome.result.result;
        },
        // A getter: the cluster wiring sets the tasks after construction (useKeyMerges).
        get keyMerge() {
          const tasks = self.#keyMergeTasks;
          if (tasks === undefined) return undefined;
          return async (params: CompactionMergeParams) => {
            const id = await tasks.createTask({ kind: 'keyMerge', merge: params });
            const outcome = await tasks.waitTask(id);
            tasks.dropTask(id);
            if (outcome.state === 'Failed') throw new Error(outcome.reason);
            if (outcome.state !== 'Finished' || outcome.result.kind !== 'keyMerge') throw new Error(`merge task ${id} ended ${outcome.state}`);
            return { merged: outcome.result.merged, params: outcome.result.params ?? params };
          };
        },
        inBackground: (p) => this.#inBackground(p),
        isClosing: () => this.#closing,
      },
      {
        smallRowsMax: Math.max(1, Math.floor(opts.sealRows / 2)),
        targetRows: opts.sealRows,
        deleteRatioMin: opts.compactionDeleteRatio,
      },
    );
  }

  // ------------------------------------------------------------------ in-memory collections

  runtime(collectionId: number): CollectionRuntime | undefined {
    return this.#runtimes.get(collectionId);
  }

  #live(collectionId: number): CollectionRuntime {
    const rt = this.#runtimes.get(collectionId);
    if (!rt) throw quiverError('CollectionNotFound', `collection not found[collectionID=${collectionId}]`);
    return rt;
  }

  collectionIds(): number[] {
    return [...this.#runtimes.keys()];
  }

  /**
   * Sets up the runtime of a collection committed to the catalog (at recovery, or when a restore made it
   * visible): its flushed segments as shells, which `prepare` (the query node's loader) reads into before
   * the runtime becomes visible. Idempotent: false if the collection already has a runtime.
   */
  async openCollection(record: CollectionRecord, prepare: (rt: CollectionRuntime) => Promise<void>): Promise<boolean> {
    if (this.#runtimes.has(record.id)) return false;
    const rt = new CollectionRuntime(record);
    for (const rec of this.#catalog.segments(record.id)) {
      if (rec.state !== 'Flushed') continue;
      rt.segments.set(rec.id, {
        id: rec.id,
        partitionId: rec.partitionId,
        phase: 'flushed',
        chunks: [],
        numRows: rec.numRows,
        record: rec,
        loaded: false,
        pendingDeletes: { pks: [], ts: [] },
      });
    }
    await prepare(rt);
    if (this.#runtimes.has(record.id)) return false;
    this.#runtimes.set(record.id, rt);
    return true;
  }

  growingStats(collectionId: number): GrowingStats {
    const rt = this.#live(collectionId);
    let maxRows = 0;
    let maxBytes = 0;
    for (const seg of rt.growing.values()) {
      maxRows = Math.max(maxRows, seg.numRows);
      maxBytes = Math.max(maxBytes, segmentBytes(seg));
    }
    return { maxRows, maxBytes, dirtySinceMs: this.#dirtySinceMs.get(collectionId) };
  }

  segmentPhases(): Map<string, number> {
    const out = new Map<string, number>();
    for (const rt of this.#runtimes.values()) for (const s of rt.segments.values()) out.set(s.phase, (out.get(s.phase) ?? 0) + 1);
    return out;
  }

  /** Flushed segments of a collection right now (call under the collection lock for a stable set). */
  flushedSegments(collectionId: number): SegmentRecord[] {
    const rt = this.#live(collectionId);
    return [...rt.segments.values()]
      .filter((s) => s.phase === 'flushed' && s.record?.state === 'Flushed')
      .map((s) => s.record!)
      .sort((a, b) => a.id - b.id);
  }

  // ------------------------------------------------------------------ catalog events (CollectionEvents)

  /** Compaction merges over a store without local paths go through `tasks` (the cluster's data nodes). */
  useKeyMerges(tasks: DataNodeTasks): void {
    this.#keyMergeTasks = tasks;
  }

  collectionCreated(record: CollectionRecord): void {
    this.#runtimes.set(record.id, new CollectionRuntime(record));
  }

  collectionChanged(record: CollectionRecord): void {
    const rt = this.#runtimes.get(record.id);
    if (rt) rt.record = record;
  }

  collectionDropped(record: CollectionRecord): void {
    const rt = this.#runtimes.get(record.id);
    if (rt) for (const seg of rt.segments.values()) stripToPk(seg, rt.pkField.name);
    this.#runtimes.delete(record.id);
    this.#dirtySinceMs.delete(record.id);
    this.#durable.forget(record.id);
  }

  partitionDropped(collectionId: number, partitionId: number): void {
    const rt = this.#runtimes.get(collectionId);
    if (!rt) return;
    for (const seg of [...rt.segments.values()]) if (seg.partitionId === partitionId) rt.segments.delete(seg.id);
    rt.growing.delete(partitionId);
  }

  segmentsCommitted(collectionId: number, records: readonly SegmentRecord[]): void {
    const rt = this.#runtimes.get(collectionId);
    if (!rt) return;
    for (const r of records) {
      const seg = rt.segments.get(r.id);
      if (seg) seg.record = r;
    }
  }

  /**
   * Publishes sealed segments written outside the write path (bulk import): `prepare` reads them into
   * memory first, outside the lock (they are invisible until the commit, and a big import would
   * otherwise hold off the collection's flushes while it loads), then every record is committed in one
   * catalog transaction under the collection lock and the segments join the runtime. False (nothing
   * committed) when the collection or a target partition is gone.
   */
  async publishSegments(
    collectionId: number,
    records: readonly SegmentRecord[],
    prepare: (rt: CollectionRuntime, segments: readonly Segment[]) => Promise<void>,
  ): Promise<boolean> {
    const rt = this.#runtimes.get(collectionId);
    if (!rt) return false;
    const segs: Segment[] = records.map((rec) => ({
      id: rec.id,
      partitionId: rec.partitionId,
      phase: 'flushed',
      chunks: [],
      numRows: rec.numRows,
      record: rec,
      loaded: false,
      pendingDeletes: { pks: [], ts: [] },
    }));
    await prepare(rt, segs);
    const done = await this.#segmentsCoord.withCollectionLock(collectionId, async () => {
      if (this.#runtimes.get(collectionId) !== rt) return false;
      if (!records.every((r) => rt.record.partitions.some((p) => p.id === r.partitionId))) return false;
      // One transaction: the records appear together or not at all (the compaction publish does the same).
      await this.#segmentsCoord.commitCompaction(collectionId, undefined, records);
      for (const seg of segs) rt.segments.set(seg.id, seg);
      return true;
    });
    if (done && records.length > 0) this.#onFlushed(collectionId);
    return done;
  }

  // ------------------------------------------------------------------ WAL replay

  async replayWal(): Promise<void> {
    const live = [...this.#runtimes.keys()];
    if (live.length === 0) return;
    let from = Infinity;
    for (const id of live) from = Math.min(from, this.#catalog.checkpoint(id) ?? 0);
    // Records before the oldest retained one were truncated only once every collection that had any was
    // checkpointed past them; a stale checkpoint of a clean collection may still point before it.
    from = Math.max(from, this.#wal.startPosition());
    let records = 0;
    let maxSeg = 0;
    for await (const r of this.#wal.read(from)) {
      const e = decodeWalEntry(r.payload);
      const rt = this.#runtimes.get(e.collectionId);
      if (!rt || r.position < (this.#catalog.checkpoint(e.collectionId) ?? 0)) continue;
      records++;
      if (e.type === 'insert' || e.type === 'inserts') {
        const parts = e.type === 'insert' ? [e] : e.parts;
        if (e.upsert) {
          // The delete half first, as the live write path applied it (idempotent: already-deleted rows are skipped).
          const pks = new Set<bigint | string>();
          for (const p of parts) for (const v of Array.from((p.columns.get(rt.pkField.name)?.data ?? []) as ArrayLike<bigint | string>)) pks.add(v);
          if (pks.size > 0) rt.applyDelete(pks, e.ts);
        }
        for (const p of parts) {
          if (rt.segments.get(p.segmentId)?.phase === 'flushed') continue;
          // Rows of a partition dropped after they were written died with it.
          if (!rt.record.partitions.some((x) => x.id === p.partitionId)) continue;
          // Replayed rows go back to the segment they were acknowledged in.
          const seg = rt.segments.get(p.segmentId);
          if (seg && rt.growing.get(p.partitionId) !== seg) rt.growing.set(p.partitionId, seg);
          rt.applyInsert(p.partitionId, () => p.segmentId, p.columns, e.ts, p.numRows);
          maxSeg = Math.max(maxSeg, p.segmentId);
        }
      } else {
        rt.applyDelete(new Set(e.pks), e.ts, e.partitionId);
      }
      if (!this.#dirtySinceMs.has(e.collectionId)) this.#dirtySinceMs.set(e.collectionId, this.#clock.nowMs());
      this.#durable.replayed(e.collectionId, r.position);
    }
    if (records > 0) this.#log.info({ records, from }, 'replayed WAL');
  }

  // ------------------------------------------------------------------ compaction (compactor.ts)

  /** Registers a rule that keeps segments out of compaction (e.g. a snapshot's compaction protection). */
  addCompactionGuard(guard: (collectionId: number, segmentId: number) => boolean): void {
    this.#compactor.addGuard(guard);
  }

  compact(collectionId: number, opts: { force: boolean; wait: boolean }): Promise<CompactionTaskInfo> {
    return this.#compactor.compact(this.#live(collectionId), opts);
  }

  compactionTask(id: number): CompactionTaskInfo | undefined {
    return this.#compactor.task(id);
  }

  isSegmentBusy(_collectionId: number, segmentId: number): boolean {
    return this.#compactor.isBusy(segmentId);
  }

  // ------------------------------------------------------------------ shutdown

  #inBackground(p: Promise<unknown>): void {
    const tracked = p.catch(() => undefined).finally(() => this.#background.delete(tracked));
    this.#background.add(tracked);
  }

  /**
   * Shutdown began: builds in flight are cancelled (they fail at their next check; a long HNSW build
   * would otherwise hold the shutdown), and work that fails from now on was cancelled, not broken.
   */
  beginShutdown(): void {
    this.#closing = true;
    this.#builds.cancel();
  }

  /** Waits for background work in flight (compactions, WAL appends) to finish. */
  async drain(): Promise<void> {
    this.#closing = true;
    await this.#durable.settledAll();
    while (this.#background.size > 0) await Promise.allSettled([...this.#background]);
  }

  /** Where this node builds full-text index files (imports use it too); undefined: on the main thread. */
  get textIndexBuilds(): IndexBuildPool | undefined {
    return this.#texts;
  }

  /** Stops the build, merge and text workers (after `drain`). */
  async closePools(): Promise<void> {
    await Promise.all([this.#builds.close(), this.#merges.close(), this.#texts?.close()]);
  }

  // ------------------------------------------------------------------ writes

  /** One append for all of a write's records: they are durable together or fail together. */
  #append(collectionId: number, entries: readonly WalEntry[]): Promise<WalPosition> {
    const p = this.#wal.append(entries.map(encodeWalEntry)).then((pos) => pos[pos.length - 1]!);
    this.#appendSeq.set(collectionId, (this.#appendSeq.get(collectionId) ?? 0) + 1);
    if (!this.#dirtySinceMs.has(collectionId)) this.#dirtySinceMs.set(collectionId, this.#clock.nowMs());
    return p;
  }

  /**
   * Inserts validated columns. With `upsert`, rows with the same pks are deleted at the same timestamp
   * (the insert shares the ts, so it survives its own delete).
   */
  async insert(
    collectionId: number,
    partitionName: string | undefined,
    columns: Map<string, Column>,
    numRows: number,
    upsert: boolean,
  ): Promise<{ pks: BigInt64Array | string[]; ts: bigint }> {
    const rt = this.#live(collectionId);
    const coll = rt.record;
    const part = partitionOf(coll, partitionName);
    const pk = rt.pkField;
    if (pk.autoId && !upsert && !columns.has(pk.name)) {
      const first = await this.#ids.alloc(numRows);
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
    const nextSeg = await this.#segmentsCoord.segmentIds();
    if (this.#runtimes.get(collectionId) !== rt) throw quiverError('CollectionNotFound', `collection not found[collection=${coll.name}]`);
    if (!rt.record.partitions.some((p) => p.id === part.id)) throw quiverError('PartitionNotFound', `partition not found[partition=${part.name}]`);
    // From here to the WAL append call everything is synchronous: ts order = WAL order = apply order.
    // Nothing is visible until the append is durable; a failed append is never applied (durable-apply.ts).
    const ts = this.#tso.next();
    const seg = rt.reserveGrowing(part.id, nextSeg);
    const set = upsert ? new Set<bigint | string>(Array.from(pks as ArrayLike<bigint | string>)) : undefined;
    // An upsert is one record (its delete is implied by the rows' pks): durable, torn or lost as a whole.
    const entries: WalEntry[] = [
      { type: 'insert', collectionId, partitionId: part.id, segmentId: seg.id, ts, numRows, columns, upsert: set !== undefined },
    ];
    await this.#durable.run(collectionId, this.#append(collectionId, entries), () => {
      if (this.#runtimes.get(collectionId) !== rt) return; // dropped meanwhile
      if (set) rt.applyDelete(set, ts);
      if (rt.segments.get(seg.id) === seg) rt.appendRows(seg, columns, ts, numRows); // else its partition was dropped
    });
    return { pks, ts };
  }

  /**
   * Inserts one batch split across several partitions (a partition-key insert) as ONE WAL record at one
   * ts: durable, torn or lost as a whole, so a crash never keeps some partitions of a batch. Returns each
   * part's pks in part order.
   */
  async insertParts(
    collectionId: number,
    parts: readonly { readonly partitionName: string; readonly columns: Map<string, Column>; readonly numRows: number }[],
    upsert: boolean,
  ): Promise<{ pks: (BigInt64Array | string[])[]; ts: bigint }> {
    if (parts.length === 1) {
      const only = parts[0]!;
      const r = await this.insert(collectionId, only.partitionName, only.columns, only.numRows, upsert);
      return { pks: [r.pks], ts: r.ts };
    }
    const rt = this.#live(collectionId);
    const coll = rt.record;
    const pk = rt.pkField;
    const resolved = parts.map((p) => ({ ...p, part: partitionOf(coll, p.partitionName) }));
    for (const p of resolved) {
      if (pk.autoId && !upsert && !p.columns.has(pk.name)) {
        const first = await this.#ids.alloc(p.numRows);
        p.columns.set(pk.name, { kind: 'int64', data: BigInt64Array.from({ length: p.numRows }, (_, i) => BigInt(first + i)) });
      }
      if (!p.columns.has(pk.name)) throw quiverError('DataInvalid', `fieldSchema(${pk.name}) has no corresponding fieldData pass in`);
    }
    const pks = resolved.map((p) => p.columns.get(pk.name)!.data as BigInt64Array | string[]);
    let set: Set<bigint | string> | undefined;
    if (upsert) {
      set = new Set();
      for (const list of pks) {
        for (const v of Array.from(list as ArrayLike<bigint | string>)) {
          if (set.has(v)) throw quiverError('DataInvalid', `duplicate primary keys are not allowed in the same batch: ${String(v)}`);
          set.add(v);
        }
      }
    }
    // Each part may need a new growing segment: take enough ids before the synchronous section.
    const spare: number[] = [];
    for (let i = 0; i < resolved.length; i++) spare.push((await this.#segmentsCoord.segmentIds())());
    const nextSeg = (): number => {
      const id = spare.shift();
      assert(id !== undefined, 'assertion failed: a segment id was reserved for every part');
      return id;
    };
    if (this.#runtimes.get(collectionId) !== rt) throw quiverError('CollectionNotFound', `collection not found[collection=${coll.name}]`);
    for (const p of resolved) {
      if (!rt.record.partitions.some((x) => x.id === p.part.id)) throw quiverError('PartitionNotFound', `partition not found[partition=${p.part.name}]`);
    }
    // As in insert(): synchronous from here to the append (ts order = WAL order = apply order).
    const ts = this.#tso.next();
    const segs = resolved.map((p) => rt.reserveGrowing(p.part.id, nextSeg));
    const entry: WalEntry = {
      type: 'inserts',
      collectionId,
      ts,
      upsert: set !== undefined,
      parts: resolved.map((p, i) => ({ partitionId: p.part.id, segmentId: segs[i]!.id, numRows: p.numRows, columns: p.columns })),
    };
    await this.#durable.run(collectionId, this.#append(collectionId, [entry]), () => {
      if (this.#runtimes.get(collectionId) !== rt) return; // dropped meanwhile
      if (set) rt.applyDelete(set, ts);
      resolved.forEach((p, i) => {
        const seg = segs[i]!;
        if (rt.segments.get(seg.id) === seg) rt.appendRows(seg, p.columns, ts, p.numRows); // else its partition was dropped
      });
    });
    return { pks, ts };
  }

  /** Deletes by filter; a pk filter takes the fast path and needs no loaded data. */
  async delete(
    collectionId: number,
    partitionName: string | undefined,
    expr: string,
    templates: TemplateValues | undefined,
  ): Promise<{ count: number; ts: bigint; pks: (bigint | string)[] }> {
    const rt = this.#live(collectionId);
    const coll = rt.record;
    const part = partitionName ? partitionOf(coll, partitionName) : undefined;
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
    const ts = this.#tso.next();
    if (pks.length === 0) return { count: 0, ts, pks };
    const set = new Set(pks);
    // Applied once durable, in WAL order; a failed append is never applied (durable-apply.ts).
    const entry: WalEntry = { type: 'delete', collectionId, partitionId: part?.id, ts, pks };
    const count = await this.#durable.run(collectionId, this.#append(collectionId, [entry]), () =>
      this.#runtimes.get(collectionId) === rt ? rt.applyDelete(set, ts, part?.id) : 0,
    );
    return { count, ts, pks };
  }

  /**
   * Seals every growing segment and writes it (and every pending delete) to immutable files, then
   * commits segment records and the new WAL checkpoint in one meta transaction. Returns the flushed
   * segment ids.
   */
  async flush(collectionId: number): Promise<{ segmentIds: number[]; flushTs: bigint }> {
    const { segmentIds, flushTs } = await this.#flush(collectionId, undefined);
    return { segmentIds, flushTs };
  }

  /**
   * A flush, then `inLock(flushTs)` in the same hold of the collection lock. The flush covers exactly the
   * writes with ts < flushTs (a write takes its ts and reserves its growing segment in one synchronous
   * step, the seal is synchronous with flushTs, and pending deletes are split at flushTs), and no flush,
   * compaction or index commit can run before `inLock` returns: the flushed segments it sees are the
   * collection at flushTs and nothing later (a snapshot's exact point in time). CollectionNotFound if the
   * flush could not commit (the collection is being dropped).
   */
  async flushThen<T>(collectionId: number, inLock: (flushTs: bigint) => Promise<T>): Promise<T> {
    let value: { v: T } | undefined;
    await this.#flush(collectionId, async (flushTs) => {
      value = { v: await inLock(flushTs) };
    });
    if (!value) throw quiverError('CollectionNotFound', `collection ${collectionId} was dropped during its flush`);
    return value.v;
  }

  async #flush(
    collectionId: number,
    inLock: ((flushTs: bigint) => Promise<void>) | undefined,
  ): Promise<{ segmentIds: number[]; flushTs: bigint; committed: boolean }> {
    let flushed: { segmentIds: number[]; flushTs: bigint; committed: boolean } | undefined;
    try {
      return await this.#segmentsCoord.withCollectionLock(collectionId, async () => {
        flushed = await this.#flushLocked(collectionId);
        if (flushed.committed && inLock) await inLock(flushed.flushTs);
        return flushed;
      });
    } finally {
      // Index builds are kicked for what was flushed even when `inLock` failed: the flush itself committed.
      if (flushed && this.#runtimes.has(collectionId) && flushed.segmentIds.length > 0) this.#onFlushed(collectionId);
    }
  }

  async #flushLocked(collectionId: number): Promise<{ segmentIds: number[]; flushTs: bigint; committed: boolean }> {
    const rt = this.#live(collectionId);
    const coll = rt.record;
    // Synchronous seal: the set of rows and deletes this flush covers is fixed here.
    const flushTs = this.#tso.next();
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
        const merged = mergeChunks(
          seg.chunks,
          coll.schema.fields.map((f) => f.name),
        );
        seg.chunks = [merged];
      }
    }
    const deletes = takeDeletesBefore(rt.segments.values(), flushTs);
    try {
      const changes: SegmentRecord[] = [];
      const createdTs = flushTs.toString();
      const pkField = rt.pkField;
      for (const seg of sealed) {
        const chunk = seg.chunks[0];
        if (!chunk || chunk.numRows === 0) continue;
        const files = await writeInsertFiles(this.#store, this.#ids, coll, seg.id, seg.partitionId, chunk, this.#texts);
        const d = deletes.get(seg.id);
        const deltalogs = d ? [await writeDeltaFile(this.#store, this.#ids, coll, seg.id, seg.partitionId, pkField, d)] : [];
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
        changes.push(record);
      }
      for (const [segId, d] of deletes) {
        const seg = rt.segments.get(segId);
        if (!seg?.record) continue;
        const log = await writeDeltaFile(this.#store, this.#ids, coll, segId, seg.partitionId, pkField, d);
        changes.push({ ...seg.record, deltalogs: [...seg.record.deltalogs, log] });
      }
      if (!this.#runtimes.has(collectionId)) return { segmentIds: [], flushTs, committed: false };
      if (!(await this.#segmentsCoord.commitFlush(collectionId, changes, lastPos === undefined ? undefined : lastPos + 1)))
        return { segmentIds: [], flushTs, committed: false };
      if ((this.#appendSeq.get(collectionId) ?? 0) === seqAtSeal) this.#dirtySinceMs.delete(collectionId);
      else this.#dirtySinceMs.set(collectionId, this.#clock.nowMs());
      const ids: number[] = [];
      for (const record of changes) {
        const seg = rt.segments.get(record.id);
        if (!seg) continue;
        seg.record = record;
        if (seg.phase !== 'flushed') {
          seg.phase = 'flushed';
          ids.push(seg.id);
          if (!rt.record.loaded) stripToPk(seg, rt.pkField.name);
          else if (seg.chunks[0]) this.#loaded.registerLoaded(record, seg.chunks[0]);
        }
      }
      for (const seg of sealed) if (seg.numRows === 0) rt.segments.delete(seg.id);
      return { segmentIds: ids, flushTs, committed: true };
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
  }

  async truncateWal(): Promise<void> {
    let min = this.#wal.endPosition();
    for (const id of this.#runtimes.keys()) {
      if (!this.#dirtySinceMs.has(id)) continue;
      min = Math.min(min, this.#catalog.checkpoint(id) ?? 0);
    }
    // Clean collections have nothing before `min`: move their checkpoints up so that no checkpoint points
    // into the part of the log we are about to delete (any later write lands at or after `min`).
    await this.#segmentsCoord.raiseCheckpoints(
      [...this.#runtimes.keys()].filter((id) => !this.#dirtySinceMs.has(id)),
      min,
    );
    await this.#wal.truncateBefore(min);
  }
}

/** `pk in [...]` / `pk == v` fast path (no column scan); compileFilter already validated the text. */
function extractPkValuesFromText(text: string, schema: ExprSchema, templates: TemplateValues | undefined): (bigint | string)[] | null {
  return extractPkValues(parseExpr(text, templates), schema);
}

/** Opens a scalar / BIN_IVF_FLAT / sparse index file into a chunk, as the query node's loader does. */
function attachColumnIndex(chunk: Chunk, idx: IndexRecord, field: FieldSchema, file: SegmentIndexFile, bytes: Uint8Array): void {
  const source = file.files[0]!;
  if (hasTypedIndexFile(idx)) {
    chunk.typedIndexes.set(field.name, openTypedIndex(bytes, source, idx, { rows: chunk.numRows, dim: field.dim ?? 0 }));
    chunk.indexBuilds.set(field.name, file.buildId);
    return;
  }
  if (!isScalarIndexType(idx.indexType)) throw new Error(`assertion failed: ${idx.indexType} is not a column index type`);
  const key = scalarIndexKey(field.name, idx.buildParams.jsonPath);
  chunk.scalarIndexes.set(key, ScalarIndex.fromBytes(bytes, source, { rows: chunk.numRows, indexType: idx.indexType }));
  chunk.indexBuilds.set(key, file.buildId);
}
