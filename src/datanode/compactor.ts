import { segmentIndexFileOf } from '../taskrpc/protocol.js';
import type { Logger } from 'pino';
import type { Clock } from '../common/clock.js';
import { KeyedMutex } from '../common/mutex.js';
import { TIMESTAMP_FIELD_ID, type IndexRecord, type SegmentIndexFile, type SegmentRecord } from '../coord/records.js';
import type { CatalogReader, CompactionPlan, CompactionPolicy, IdSource, SegmentStat, TsSource } from '../coord/types.js';
import type { VectorIndex } from '../index/index.js';
import { concatColumns, takeRows } from '../schema/columns.js';
import { columnKindOf, type Column, type FieldSchema } from '../schema/types.js';
import { decodeColumn } from '../storage/binlog.js';
import type { ObjectStore } from '../storage/object-store.js';
import { fillMissingColumns, type CollectionRuntime } from '../segcore/collection-runtime.js';
import { ttlCutTs } from '../segcore/collection-ttl.js';
import type { MergeResult, MergeTask } from './merge-task.js';
import { newChunk, recountDeleted, stripToPk, type Chunk, type Segment } from '../segcore/segment.js';
import { readSegment, writeDeltaFile, writeEncodedInsertFiles, writeInsertFiles, type TextIndexBuilds } from '../segcore/segment-io.js';
import type { CompactionTaskInfo } from './types.js';
import type { CompactionMergeParams, WireMerged } from '../taskrpc/protocol.js';
import { insertLogKey, parseSegmentKey } from '../storage/paths.js';
import { rangesOfRows } from './remote/merge-runner.js';

/** Kept-row range numbers of one key merge: beyond this (heavily fragmented deletes) the merge runs here. */
const KEY_MERGE_RANGE_NUMBERS_MAX = 65_536;
import { floatVectorsOf, isFloatIndexable } from '../index/typed-search.js';
import { isScalarIndexType } from '../index/scalar/scalar-index-params.js';
import { hasTypedIndexFile } from '../index/typed-index-file.js';

export type { CompactionTaskInfo };

/** The compaction planner (coord/compaction-planner.ts), injected: the coordinator plans, the data node executes. */
export type CompactionPlanner = (
  stats: readonly SegmentStat[],
  policy: CompactionPolicy,
  guarded: (segmentId: number) => boolean,
  opts: { force: boolean },
) => CompactionPlan[];

/**
 * The compaction executor of the data node (issue 3): asks the coordinator's planner for plans, runs one
 * plan at a time per collection (the merge on the build worker), and has the coordinator publish each
 * result atomically. What it needs is this host interface, nothing else.
 */
export interface CompactorHost {
  readonly store: ObjectStore;
  readonly ids: IdSource;
  readonly tso: TsSource;
  readonly catalog: CatalogReader;
  readonly plan: CompactionPlanner;
  commitCompaction(collectionId: number, target: SegmentRecord | undefined, dropped: readonly SegmentRecord[]): Promise<void>;
  readonly clock: Clock;
  readonly log: Logger;
  /** The live runtime of a collection (undefined once dropped). */
  runtime(collectionId: number): CollectionRuntime | undefined;
  withCollectionLock<T>(collectionId: number, fn: () => Promise<T>): Promise<T>;
  buildIndexFile(
    vectors: Float32Array,
    idx: IndexRecord,
    field: FieldSchema,
    partitionId: number,
    segmentId: number,
    open: boolean,
  ): Promise<{ file: SegmentIndexFile; built?: VectorIndex }>;
  /**
   * Builds a scalar / BIN_IVF_FLAT / sparse index file over the target's column (on the build worker);
   * with `into` (a loaded collection's target chunk), also opens it there.
   */
  buildColumnIndexFile(
    column: Column,
    idx: IndexRecord,
    field: FieldSchema,
    partitionId: number,
    segmentId: number,
    into: Chunk | undefined,
  ): Promise<SegmentIndexFile>;
  /** Opens such a file built elsewhere (a data node's merge) into a loaded collection's target chunk. */
  openColumnIndexFile(file: SegmentIndexFile, idx: IndexRecord, field: FieldSchema, into: Chunk): Promise<void>;
  registerLoaded(rec: SegmentRecord, chunk: Chunk): void;
  /** Where the target's full-text index files are built (a worker); undefined: on the main thread. */
  readonly textBuilds?: TextIndexBuilds | undefined;
  /** Runs the read-filter-concat-encode half of a merge off the main thread. */
  merge(task: Omit<MergeTask, 'id'>): Promise<MergeResult>;
  /** The in-memory index of a file built elsewhere (a data node's merge), for a loaded collection. */
  openIndexFile(file: SegmentIndexFile, vectors: Float32Array, idx: IndexRecord, field: FieldSchema): Promise<VectorIndex | undefined>;
  /**
   * The same over object keys, writing the merged columns to their output keys and building the target's
   * indexes listed in the params: on a registered data node (cluster). Undefined when there is none to
   * use: the merge then runs here. `params` is what ran: after a coordinator restart, a merge of the same
   * inputs adopted from the previous process (its target id, output keys and build ids).
   */
  keyMerge?: ((params: CompactionMergeParams) => Promise<{ merged: WireMerged; params: CompactionMergeParams }>) | undefined;
  /** Work close() must wait for. */
  inBackground(p: Promise<unknown>): void;
  /** True once shutdown began: a failure then is cancelled work, logged at debug. */
  isClosing(): boolean;
}

export class Compactor {
  readonly #host: CompactorHost;
  readonly #policy: CompactionPolicy;
  readonly #tasks = new Map<number, CompactionTaskInfo>();
  /** Segments a running compaction reads: never planned twice. */
  readonly #busy = new Set<number>();
  /** Extra "do not compact" rules (a snapshot's compaction protection). */
  readonly #guards: ((collectionId: number, segmentId: number) => boolean)[] = [];
  readonly #locks = new KeyedMutex<number>();

  constructor(host: CompactorHost, policy: CompactionPolicy) {
    this.#host = host;
    this.#policy = policy;
  }

  addGuard(guard: (collectionId: number, segmentId: number) => boolean): void {
    this.#guards.push(guard);
  }

  isBusy(segmentId: number): boolean {
    return this.#busy.has(segmentId);
  }

  task(id: number): CompactionTaskInfo | undefined {
    return this.#tasks.get(id);
  }

  /**
   * Plans and runs compaction of a collection. Returns at once unless `wait`; with `force` (a manual
   * `compact`) every flushed segment is a merge candidate, not only small ones.
   */
  async compact(rt: CollectionRuntime, opts: { force: boolean; wait: boolean }): Promise<CompactionTaskInfo> {
    const collectionId = rt.record.id;
    const stats: SegmentStat[] = [];
    // Expired rows (collection TTL) count as deleted: the delete-ratio trigger then rewrites them away.
    const expiredBefore = ttlCutTs(rt.record, this.#host.clock.nowMs());
    for (const seg of rt.segments.values()) {
      if (seg.phase !== 'flushed' || !seg.record || seg.error) continue;
      // Only deletes already in a deltalog count: a compaction cannot drop rows whose delete is pending
      // (see #execute), so counting those would rewrite the same rows again at every pass until a flush.
      const pending = seg.pendingDeletes.pks.length;
      // recordBytes bounds the plan's one commit (compaction-planner.ts).
      const recordBytes = Buffer.byteLength(JSON.stringify(seg.record));
      stats.push({
        id: seg.id,
        partitionId: seg.partitionId,
        numRows: seg.numRows,
        deletedRows: Math.min(seg.numRows, Math.max(0, (seg.chunks[0]?.deletedCount ?? 0) - pending) + expiredRows(seg, expiredBefore)),
        recordBytes,
      });
    }
    const guarded = (segId: number) => this.#busy.has(segId) || this.#guards.some((g) => g(collectionId, segId));
    const plans = this.#host.plan(stats, this.#policy, guarded, { force: opts.force });
    const id = await this.#host.ids.alloc();
    const task: CompactionTaskInfo = {
      id,
      collectionId,
      state: plans.length === 0 ? 'Completed' : 'Executing',
      plans: plans.map((p) => ({ sources: p.sources, target: 0, state: 'Executing' as const })),
    };
    if (opts.force || plans.length > 0) this.#tasks.set(id, task);
    for (const p of plans) for (const sid of p.sources) this.#busy.add(sid);
    const run = this.#locks.run(collectionId, async () => {
      for (let i = 0; i < plans.length; i++) {
        const info = task.plans[i]!;
        try {
          info.target = await this.#execute(rt, plans[i]!);
          info.state = 'Completed';
        } catch (err) {
          info.state = 'Failed';
          info.error = (err as Error).message;
          if (this.#host.isClosing())
            this.#host.log.debug({ err, collection: rt.record.name, sources: plans[i]!.sources }, 'compaction cancelled by shutdown');
          else this.#host.log.error({ err, collection: rt.record.name, sources: plans[i]!.sources }, 'compaction failed; sources stay as they are');
        } finally {
          for (const sid of plans[i]!.sources) this.#busy.delete(sid);
        }
      }
      task.state = 'Completed';
    });
    if (opts.wait) await run;
    else this.#host.inBackground(run);
    return task;
  }

  /** The sources of a key merge, or undefined when it does not fit one (several binlogs per field, fragmented rows). */
  #keyMergeOf(
    sources: readonly Segment[],
    allFields: readonly { fieldId: number }[],
    keeps: readonly ArrayLike<number>[],
  ): CompactionMergeParams['sources'] | undefined {
    if (this.#host.keyMerge === undefined) return undefined;
    const out: { binlogs: Record<string, string>; keep_ranges: number[] }[] = [];
    let numbers = 0;
    for (let i = 0; i < sources.length; i++) {
      const binlogs: Record<string, string> = {};
      for (const f of allFields) {
        const logs = sources[i]!.record!.binlogs[String(f.fieldId)] ?? [];
        if (logs.length !== 1) return undefined;
        binlogs[String(f.fieldId)] = logs[0]!.path;
      }
      const keep_ranges = rangesOfRows(keeps[i]!);
      numbers += keep_ranges.length;
      if (numbers > KEY_MERGE_RANGE_NUMBERS_MAX) return undefined;
      out.push({ binlogs, keep_ranges });
    }
    return out;
  }

  /**
   * Rewrites the rows of the source segments into one new segment (binlogs and index files written
   * first), then publishes it and drops the sources in one meta transaction, so a crash at any point
   * leaves either the old set or the new set visible, never both or neither.
   *
   * Persisted state must stay a consistent cut: a delete may reach the files (a deltalog, or a row left
   * out of the target) only together with or after every write of the same or an earlier ts. An upsert
   * applies its delete to a flushed segment (a *pending* delete) and its insert to a growing segment; the
   * next flush writes both in one commit. If a compaction left that row out of the target (or wrote its
   * delete to the target's deltalog) before that flush, the files would say "key gone" while its new
   * version lived only in memory, and a snapshot taken from the flushed segments in that window lost the
   * key. So a compaction drops only rows whose delete is already in a deltalog; rows with a pending delete
   * go into the target, their deletes stay pending there (original ts) and the next flush writes them.
   */
  async #execute(rt: CollectionRuntime, plan: CompactionPlan): Promise<number> {
    const coll = rt.record;
    const fields = coll.schema.fields;
    const pkName = rt.pkField.name;
    // 1. Freeze the rows to copy under the collection lock: no flush is half done then, so a segment's
    //    pending deletes are exactly its deletes that are not in a deltalog yet.
    const { sources, keeps } = await this.#host.withCollectionLock(coll.id, async () => {
      const segs: Segment[] = [];
      for (const sid of plan.sources) {
        const seg = rt.segments.get(sid);
        if (!seg || seg.phase !== 'flushed' || !seg.record) throw new Error(`segment ${sid} is no longer flushed`);
        segs.push(seg);
      }
      const expiredBefore = ttlCutTs(coll, this.#host.clock.nowMs());
      return { sources: segs, keeps: segs.map((seg) => rowsNotDeletedOnDisk(seg, pkName, expiredBefore)) };
    });
    const srcOf: number[] = [];
    const rowOf: number[] = [];
    keeps.forEach((keep, si) => {
      for (const r of keep) {
        srcOf.push(si);
        rowOf.push(r);
      }
    });
    const rows = srcOf.length;
    let targetId = await this.#host.ids.alloc();
    let target: Segment | undefined;
    let record: SegmentRecord | undefined;
    const now = this.#host.clock.nowMs();
    if (rows > 0) {
      // 2. Merge. With local files the read-filter-concat-encode work runs on a worker thread, so the
      //    main thread keeps serving inserts and searches; the result comes back as encoded binlogs.
      const allFields = [
        ...fields.map((f) => ({ fieldId: f.fieldId, kind: columnKindOf(f.dataType) })),
        { fieldId: TIMESTAMP_FIELD_ID, kind: 'int64' as const },
      ];
      const localFiles = sources.map((seg) => {
        const files: Record<string, string> = {};
        for (const f of allFields) {
          const logs = seg.record!.binlogs[String(f.fieldId)] ?? [];
          const path = logs.length === 1 ? this.#host.store.localPath?.(logs[0]!.path) : undefined;
          if (!path) return undefined;
          files[String(f.fieldId)] = path;
        }
        return files;
      });
      let encoded: Map<number, Uint8Array> | undefined;
      /** Set when the binlogs are already stored under log ids first.. (a key merge wrote them). */
      let binlogsFrom: number | undefined;
      /** Index files a data node built over the merged output, by index id. */
      const builtRemotely = new Map<number, SegmentIndexFile>();
      const columns = new Map<string, Column>();
      let ts: BigInt64Array;
      // A clustering key orders the target's rows by its value, so the merge runs here (the worker
      // concatenates sources in order).
      const clustering = fields.find((f) => f.isClusteringKey);
      const keyMerge = clustering || localFiles.every((f) => f !== undefined) ? undefined : this.#keyMergeOf(sources, allFields, keeps);
      if (keyMerge && this.#host.keyMerge) {
        // 2'. On a data node: it reads the source binlogs and writes the merged ones under the target's
        //     final keys (log ids allocated here); we read them back for the in-memory target and the index.
        const first = await this.#host.ids.alloc(fields.length + 2);
        const outputs = allFields.map((f, i) => insertLogKey(coll.id, plan.partitionId, targetId, f.fieldId, first + i));
        // The target's indexes are built by the node from the merged columns it holds anyway.
        const remoteIndexes: { index_id: number; build_id: number }[] = [];
        for (const idx of this.#host.catalog.indexes(coll.id)) {
          const field = fields.find((f) => f.fieldId === idx.fieldId);
          if (field && indexBuildOf(idx, field) !== undefined) remoteIndexes.push({ index_id: idx.id, build_id: await this.#host.ids.alloc() });
        }
        const ran = await this.#host.keyMerge({
          collection_id: coll.id,
          source_segment_ids: plan.sources,
          target_segment_id: targetId,
          fields: allFields.map((f, i) => ({ field_id: f.fieldId, kind: f.kind, output_key: outputs[i]! })),
          sources: keyMerge,
          partition_id: plan.partitionId,
          indexes: remoteIndexes,
        });
        const merged = ran.merged;
        if (merged.rows !== rows) throw new Error(`merge into segment ${targetId}: data node wrote ${merged.rows} rows, expected ${rows}`);
        // An adopted run (coordinator restart) wrote under its own target id and log ids: use those.
        targetId = ran.params.target_segment_id;
        const ranOutputs = ran.params.fields.map((f) => f.output_key);
        const firstLog = parseSegmentKey(ranOutputs[0] ?? '');
        if (ranOutputs.length !== allFields.length || firstLog?.kind !== 'insert' || firstLog.segmentId !== targetId) {
          throw new Error(`assertion failed: merge into segment ${targetId} answered for other outputs`);
        }
        outputs.splice(0, outputs.length, ...ranOutputs);
        for (const b of merged.built_indexes ?? []) {
          builtRemotely.set(b.index_id, segmentIndexFileOf(b));
        }
        encoded = new Map(await Promise.all(allFields.map(async (f, i) => [f.fieldId, await this.#host.store.get(outputs[i]!)] as const)));
        binlogsFrom = firstLog.logId;
        for (const f of fields) columns.set(f.name, decodeColumn(encoded.get(f.fieldId)!, columnKindOf(f.dataType)));
        ts = (decodeColumn(encoded.get(TIMESTAMP_FIELD_ID)!, 'int64') as { data: BigInt64Array }).data;
      } else if (!clustering && localFiles.every((f) => f !== undefined)) {
        const merged = await this.#host.merge({ fields: allFields, sources: sources.map((_, i) => ({ files: localFiles[i]!, keep: keeps[i]! })) });
        encoded = new Map(Object.entries(merged.encoded).map(([k, v]) => [Number(k), v]));
        // Decoding is zero-copy: the in-memory columns are views of the bytes we are about to write.
        for (const f of fields) columns.set(f.name, decodeColumn(encoded.get(f.fieldId)!, columnKindOf(f.dataType)));
        ts = (decodeColumn(encoded.get(TIMESTAMP_FIELD_ID)!, 'int64') as { data: BigInt64Array }).data;
      } else {
        const parts: Chunk[] = [];
        for (const seg of sources) parts.push(seg.loaded ? seg.chunks[0]! : await readSegment(this.#host.store, coll, seg.record!, fields));
        for (const f of fields) columns.set(f.name, concatColumns(parts.map((p, i) => takeRows(p.columns.get(f.name)!, keeps[i]!))));
        ts = new BigInt64Array(rows);
        let off = 0;
        parts.forEach((p, i) => {
          for (const r of keeps[i]!) ts[off++] = p.ts[r]!;
        });
        if (clustering) ts = clusterRows(columns, clustering.name, ts, srcOf, rowOf);
      }
      const chunk = newChunk(rows, columns, ts);
      // 3. Files first: binlogs, then every index, so the target is published complete.
      const files = encoded
        ? await writeEncodedInsertFiles(
            this.#host.store,
            this.#host.ids,
            coll,
            targetId,
            plan.partitionId,
            chunk,
            encoded,
            binlogsFrom,
            this.#host.textBuilds,
          )
        : await writeInsertFiles(this.#host.store, this.#host.ids, coll, targetId, plan.partitionId, chunk, this.#host.textBuilds);
      const indexes: SegmentIndexFile[] = [];
      for (const idx of this.#host.catalog.indexes(coll.id)) {
        const field = fields.find((f) => f.fieldId === idx.fieldId);
        const how = field && indexBuildOf(idx, field);
        if (!field || how === undefined) continue;
        if (how === 'column') {
          // Scalar, BIN_IVF_FLAT and sparse indexes: built here (on the worker) or by the data node's merge.
          // Opened into the target's chunk whether or not the collection was loaded when the merge was
          // planned: the chunk is what the runtime serves from, and a load that lands while the merge runs
          // would otherwise find the target published with its file but without the index open (cheap to
          // open: these indexes are a fraction of the column's size).
          const into = chunk;
          const remote = builtRemotely.get(idx.id);
          if (remote && into) await this.#host.openColumnIndexFile(remote, idx, field, into);
          indexes.push(remote ?? (await this.#host.buildColumnIndexFile(columns.get(field.name)!, idx, field, plan.partitionId, targetId, into)));
          continue;
        }
        const vectors = floatVectorsOf(columns.get(field.name))!;
        const remote = builtRemotely.get(idx.id);
        const { file, built } = remote
          ? { file: remote, built: coll.loaded ? await this.#host.openIndexFile(remote, vectors, idx, field) : undefined }
          : await this.#host.buildIndexFile(vectors, idx, field, plan.partitionId, targetId, coll.loaded);
        indexes.push(file);
        if (built) {
          chunk.indexes.set(field.name, built);
          chunk.indexBuilds.set(field.name, file.buildId);
        }
      }
      record = {
        id: targetId,
        collectionId: coll.id,
        partitionId: plan.partitionId,
        state: 'Flushed',
        numRows: rows,
        binlogs: files.binlogs,
        deltalogs: [],
        statslogs: files.statslogs,
        indexes,
        compactedFrom: plan.sources,
        createdTs: this.#host.tso.next().toString(),
      };
      target = {
        id: targetId,
        partitionId: plan.partitionId,
        phase: 'flushed',
        chunks: [chunk],
        numRows: rows,
        record,
        loaded: true,
        pendingDeletes: { pks: [], ts: [] },
      };
    }
    /** Target rows deleted in their source since the freeze, split by whether the delete is persisted. */
    const lateRows = (): { persisted: number[]; pending: { row: number; ts: bigint }[] } => {
      const pendingTs = sources.map((seg) => pendingDeleteTs(seg));
      const persisted: number[] = [];
      const pending: { row: number; ts: bigint }[] = [];
      for (let i = 0; i < rows; i++) {
        const src = sources[srcOf[i]!]!.chunks[0]!;
        const r = rowOf[i]!;
        if (src.deleted[r] !== 1) continue;
        const pk = (src.columns.get(pkName)!.data as ArrayLike<bigint | string>)[r]!;
        const ts = pendingTs[srcOf[i]!]!.get(pk);
        if (ts !== undefined && ts > src.ts[r]!) pending.push({ row: i, ts });
        else persisted.push(i);
      }
      return { persisted, pending };
    };
    // 4. Publish under the collection lock (flush and index commits also rewrite segment records).
    await this.#host.withCollectionLock(coll.id, async () => {
      for (const seg of sources) {
        if (rt.segments.get(seg.id) !== seg || seg.record?.state !== 'Flushed') throw new Error(`segment ${seg.id} changed while compacting`);
      }
      if (this.#host.runtime(coll.id) !== rt) throw new Error(`collection ${coll.name} was dropped while compacting`);
      // Deletes a flush wrote to a source's deltalog since the freeze go to the target's deltalog (their
      // paired writes were flushed with them); no flush can run until the lock is released.
      const { persisted } = lateRows();
      if (target && record && persisted.length > 0) {
        const pkCol = target.chunks[0]!.columns.get(pkName)!.data as ArrayLike<bigint | string>;
        const dts = this.#host.tso.next();
        const log = await writeDeltaFile(this.#host.store, this.#host.ids, coll, targetId, plan.partitionId, rt.pkField, {
          pks: persisted.map((i) => pkCol[i]!),
          ts: persisted.map(() => dts),
        });
        record = { ...record, deltalogs: [log] };
        target.record = record;
        for (const i of persisted) target.chunks[0]!.deleted[i] = 1;
      }
      const dropped: SegmentRecord[] = sources.map((seg) => ({
        ...seg.record!,
        state: 'Dropped',
        droppedAtMs: now,
        compactedTo: record ? targetId : undefined,
      }));
      await this.#host.commitCompaction(coll.id, record, dropped);
      // 5. Swap in memory, synchronously: pending deletes (also those that arrived during the commit) move
      //    to the target with their own ts, for the next flush to write together with their paired writes.
      if (target) {
        const chunk = target.chunks[0]!;
        const pkCol = chunk.columns.get(pkName)!.data as ArrayLike<bigint | string>;
        for (const { row, ts } of lateRows().pending) {
          if (chunk.deleted[row] === 1) continue;
          chunk.deleted[row] = 1;
          target.pendingDeletes.pks.push(pkCol[row]!);
          target.pendingDeletes.ts.push(ts);
        }
        recountDeleted(chunk);
        // The target was written with the schema of the compaction's start: a field added since reads as
        // its default/null (no binlog), and the in-memory chunk gets that column now.
        fillMissingColumns(rt.record.schema, chunk.columns, chunk.numRows);
        if (!rt.record.loaded) stripToPk(target, pkName);
        else if (record) this.#host.registerLoaded(record, chunk);
        rt.segments.set(targetId, target);
      }
      sources.forEach((seg, i) => {
        seg.record = dropped[i];
        stripToPk(seg, pkName);
        rt.segments.delete(seg.id);
      });
    });
    this.#host.log.info({ collection: coll.name, sources: plan.sources, target: record ? targetId : null, rows, reason: plan.reason }, 'compacted');
    return record ? targetId : 0;
  }
}

/**
 * How a compaction target gets an index's file (as the index scheduler builds them): from the float
 * vectors, from the column (scalar, BIN_IVF_FLAT, sparse), or not at all (BIN_FLAT, BM25: nothing to build).
 */
function indexBuildOf(idx: IndexRecord, field: FieldSchema): 'vectors' | 'column' | undefined {
  if (isScalarIndexType(idx.indexType) || hasTypedIndexFile(idx)) return 'column';
  return isFloatIndexable(field.dataType) ? 'vectors' : undefined;
}

/**
 * Reorders a compaction target's rows by the clustering key (stable; nulls first), in place for the
 * columns and the row → source maps, and returns the reordered timestamps.
 */
function clusterRows(columns: Map<string, Column>, key: string, ts: BigInt64Array, srcOf: number[], rowOf: number[]): BigInt64Array {
  const col = columns.get(key)!;
  const values = col.data as ArrayLike<number | bigint | string>;
  const valid = col.valid;
  const order = Array.from({ length: ts.length }, (_, i) => i);
  order.sort((a, b) => {
    const na = valid ? valid[a] === 0 : false;
    const nb = valid ? valid[b] === 0 : false;
    if (na || nb) return na === nb ? a - b : na ? -1 : 1;
    const x = values[a]!;
    const y = values[b]!;
    return x < y ? -1 : x > y ? 1 : a - b;
  });
  const rows = Int32Array.from(order);
  for (const [name, c] of columns) columns.set(name, takeRows(c, rows));
  const src = order.map((i) => srcOf[i]!);
  const row = order.map((i) => rowOf[i]!);
  src.forEach((v, i) => (srcOf[i] = v));
  row.forEach((v, i) => (rowOf[i] = v));
  const out = new BigInt64Array(ts.length);
  for (let i = 0; i < order.length; i++) out[i] = ts[order[i]!]!;
  return out;
}

/** Latest pending (not yet in a deltalog) delete ts per pk of a segment. */
function pendingDeleteTs(seg: Segment): Map<bigint | string, bigint> {
  const out = new Map<bigint | string, bigint>();
  const { pks, ts } = seg.pendingDeletes;
  for (let i = 0; i < pks.length; i++) {
    const prev = out.get(pks[i]!);
    if (prev === undefined || ts[i]! > prev) out.set(pks[i]!, ts[i]!);
  }
  return out;
}

/** Rows of a segment inserted before `expiredBefore` (collection TTL); 0 without a TTL. */
function expiredRows(seg: Segment, expiredBefore: bigint | undefined): number {
  const ts = seg.chunks[0]?.ts;
  if (expiredBefore === undefined || !ts) return 0;
  let n = 0;
  for (let i = 0; i < ts.length; i++) if (ts[i]! < expiredBefore) n++;
  return n;
}

/**
 * Rows of a flushed segment that no deltalog deletes: live rows and rows whose delete is still pending.
 * Rows expired by the collection TTL are left out: they are invisible already, and stay so.
 */
function rowsNotDeletedOnDisk(seg: Segment, pkName: string, expiredBefore: bigint | undefined): Int32Array {
  const chunk = seg.chunks[0]!;
  const pending = pendingDeleteTs(seg);
  const pks = chunk.columns.get(pkName)!.data as ArrayLike<bigint | string>;
  const keep: number[] = [];
  for (let i = 0; i < seg.numRows; i++) {
    if (expiredBefore !== undefined && chunk.ts[i]! < expiredBefore) continue;
    if (chunk.deleted[i] === 0) keep.push(i);
    else {
      const ts = pending.get(pks[i]!);
      if (ts !== undefined && ts > chunk.ts[i]!) keep.push(i);
    }
  }
  return Int32Array.from(keep);
}
