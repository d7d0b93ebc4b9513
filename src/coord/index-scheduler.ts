import type { Logger } from 'pino';
import { quiverError } from '../common/errors.js';
import { LoopRunner } from '../common/loop.js';
import { Mutex } from '../common/mutex.js';
import type { DataNodeTasks } from '../datanode/types.js';
import type { LoadedSegments } from '../querynode/types.js';
import type { Catalog } from './catalog.js';
import type { IndexRecord, SegmentRecord } from './records.js';
import type { CollectionEvents, IndexProgress, IndexSchedulerApi } from './types.js';
import { floatMetric } from '../index/typed-index-params.js';
import { isFloatIndexable } from '../index/typed-search.js';
import { isScalarIndexType } from '../index/scalar/scalar-index-params.js';
import { hasTypedIndexFile } from '../index/typed-index-file.js';

/**
 * The index-build scheduler (Milvus DataCoord's index builder): finds every (flushed segment, index) pair
 * without an index file, hands the build to a data node task, and commits the returned file list to the
 * segment record. A build whose segment was compacted away or dropped meanwhile is not committed; its
 * file is an orphan for GC. Kicked when a flush lands, an index is created or a restore is published;
 * the data coordinator's periodic pass is the fallback.
 */
export class IndexScheduler implements IndexSchedulerApi {
  readonly #catalog: Catalog;
  readonly #locks: { withCollectionLock<T>(collectionId: number, fn: () => Promise<T>): Promise<T> };
  readonly #tasks: DataNodeTasks;
  readonly #loaded: LoadedSegments;
  readonly #events: Pick<CollectionEvents, 'segmentsCommitted'>;
  readonly #log: Logger;
  /** One buildMissing at a time; inside it, up to `#concurrency()` builds run at once. */
  readonly #buildLock = new Mutex();
  /**
   * Builds dispatched at once: 1 for the in-process data node (one build worker), the data nodes' slots
   * when builds run there (two nodes build two segments at a time).
   */
  readonly #concurrency: () => number;
  readonly #pending = new Set<number>();
  readonly #loop: LoopRunner;

  constructor(
    deps: {
      catalog: Catalog;
      locks: { withCollectionLock<T>(collectionId: number, fn: () => Promise<T>): Promise<T> };
      tasks: DataNodeTasks;
      loaded: LoadedSegments;
      events: Pick<CollectionEvents, 'segmentsCommitted'>;
      log: Logger;
    },
    opts: { intervalMs: number; concurrency?: (() => number) | undefined },
  ) {
    this.#concurrency = opts.concurrency ?? (() => 1);
    this.#catalog = deps.catalog;
    this.#locks = deps.locks;
    this.#tasks = deps.tasks;
    this.#loaded = deps.loaded;
    this.#events = deps.events;
    this.#log = deps.log;
    this.#loop = new LoopRunner('index-builds', opts.intervalMs, () => this.#pass(), deps.log, { immediate: false });
  }

  get loop(): LoopRunner {
    return this.#loop;
  }

  /** Asks for the collection's missing indexes to be built soon (coalesced). */
  schedule(collectionId: number): void {
    if (this.#loop.stopping) return;
    this.#pending.add(collectionId);
    void this.#loop.kick();
  }

  async #pass(): Promise<void> {
    const ids = [...this.#pending];
    this.#pending.clear();
    for (const id of ids) {
      if (this.#loop.stopping) return;
      // Dropped since it was scheduled: nothing to build (its files are GC's).
      if (this.#catalog.collection(id)?.state !== 'Created') continue;
      try {
        await this.buildMissing(id);
      } catch (err) {
        const coll = this.#catalog.collection(id);
        if (this.#loop.stopping) this.#log.debug({ err, collection: coll?.name }, 'index build cancelled by shutdown');
        else this.#log.error({ err, collection: coll?.name }, 'index build failed');
      }
    }
  }

  /** Builds every (flushed segment, index) pair of the collection that has no index file yet. */
  async buildMissing(collectionId: number): Promise<void> {
    const coll = this.#catalog.collection(collectionId);
    if (!coll || coll.state !== 'Created') throw quiverError('CollectionNotFound', `collection not found[collectionID=${collectionId}]`);
    await this.#buildLock.run(async () => {
      const todo: { seg: SegmentRecord; idx: IndexRecord }[] = [];
      for (const idx of this.#catalog.indexes(collectionId)) {
        const field = coll.schema.fields.find((f) => f.fieldId === idx.fieldId);
        if (!field || !(isFloatIndexable(field.dataType) || isScalarIndexType(idx.indexType) || hasTypedIndexFile(idx))) continue;
        for (const seg of this.#catalog.segments(collectionId)) {
          if (seg.state !== 'Flushed' || seg.indexes.some((i) => i.indexId === idx.id)) continue;
          todo.push({ seg, idx });
        }
      }
      // Workers take the next pair until none is left; the first failure stops the others from taking
      // more and is rethrown (the next pass retries what is still missing).
      let next = 0;
      let failure: unknown;
      const worker = async (): Promise<void> => {
        while (next < todo.length && failure === undefined) {
          const { seg, idx } = todo[next++]!;
          if (this.#loop.stopping || this.#catalog.collection(collectionId)?.state !== 'Created') return;
          if (this.#catalog.indexes(collectionId).every((i) => i.id !== idx.id)) continue;
          // Re-read: a compaction may have dropped the segment since the list was made.
          const cur = this.#catalog.segment(collectionId, seg.id);
          if (cur?.state !== 'Flushed' || cur.indexes.some((i) => i.indexId === idx.id)) continue;
          try {
            await this.#buildSegmentIndex(collectionId, cur, idx);
          } catch (e) {
            failure ??= e;
          }
        }
      };
      const n = Math.max(1, Math.min(todo.length, Math.floor(this.#concurrency())));
      await Promise.all(Array.from({ length: n }, worker));
      if (failure !== undefined) throw failure;
    });
  }

  async #buildSegmentIndex(collectionId: number, seg: SegmentRecord, idx: IndexRecord): Promise<void> {
    const coll = this.#catalog.collection(collectionId)!;
    const field = coll.schema.fields.find((f) => f.fieldId === idx.fieldId)!;
    // Scalar, BIN_IVF_FLAT and sparse indexes are built from the column (on the data node), not from float vectors.
    const scalar = isScalarIndexType(idx.indexType) || hasTypedIndexFile(idx);
    const vectors = scalar ? undefined : this.#loaded.loadedVectors(collectionId, seg.id, field.name);
    const taskId = await this.#tasks.createTask({ kind: 'indexBuild', collection: coll, segment: seg, index: idx, field, vectors });
    const outcome = await this.#tasks.waitTask(taskId);
    this.#tasks.dropTask(taskId);
    if (outcome.state === 'Failed') throw new Error(outcome.reason);
    if (outcome.state !== 'Finished' || outcome.result.kind !== 'indexBuild') throw new Error(`index build task ${taskId} ended ${outcome.state}`);
    const file = outcome.result.file;
    const attach = scalar
      ? await this.#loaded.prepareScalarIndex(collectionId, seg.id, idx, field, file)
      : await this.#loaded.prepareIndex(collectionId, seg.id, field, floatMetric(idx.metric), file);
    await this.#locks.withCollectionLock(collectionId, async () => {
      // The segment may have been compacted away or dropped meanwhile: then the file is an orphan for GC.
      const current = this.#catalog.segment(collectionId, seg.id);
      if (this.#catalog.collection(collectionId)?.state !== 'Created' || current?.state !== 'Flushed') return;
      if (this.#catalog.indexes(collectionId).every((i) => i.id !== idx.id)) return;
      const record: SegmentRecord = { ...current, indexes: [...current.indexes.filter((i) => i.indexId !== idx.id), file] };
      await this.#catalog.commit([{ type: 'putSegment', record }]);
      this.#events.segmentsCommitted(collectionId, [record]);
      attach?.();
    });
  }

  progress(collectionId: number, idx: IndexRecord): IndexProgress {
    const coll = this.#catalog.collection(collectionId);
    if (!coll || coll.state !== 'Created') throw quiverError('CollectionNotFound', `collection not found[collectionID=${collectionId}]`);
    let indexed = 0;
    let total = 0;
    // Float (also Float16/BFloat16/Int8, widened), scalar, BIN_IVF_FLAT and sparse indexes are built into
    // files; BIN_FLAT and BM25 have nothing to build, so every flushed row counts as indexed for them.
    const fieldType = coll.schema.fields.find((f) => f.fieldId === idx.fieldId)?.dataType;
    const inMemory = fieldType === undefined || !(isFloatIndexable(fieldType) || isScalarIndexType(idx.indexType) || hasTypedIndexFile(idx));
    for (const seg of this.#catalog.segments(collectionId)) {
      if (seg.state !== 'Flushed') continue;
      total += seg.numRows;
      if (inMemory || seg.indexes.some((i) => i.indexId === idx.id)) indexed += seg.numRows;
    }
    return { indexedRows: indexed, totalRows: total, pendingRows: total - indexed };
  }
}
