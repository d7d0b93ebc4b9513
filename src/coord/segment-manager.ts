import { KeyedMutex } from '../common/mutex.js';
import type { Catalog, CatalogChange } from './catalog.js';
import type { SegmentRecord } from './records.js';
import type { GrowingStats, IdSource, SegmentCoordinator } from './types.js';

/**
 * The segment manager (Milvus DataCoord's SegmentManager and its SaveBinlogPaths side): hands out segment
 * ids, decides when growing data must be sealed and flushed, and commits what flushes and compactions
 * wrote. Every commit of a segment record runs under the collection's lock, so a flush, a compaction
 * publish, an index commit and a snapshot's segment listing never interleave.
 */

export interface SealPolicy {
  /** A growing segment is sealed once it holds this many rows... */
  readonly sealRows: number;
  /** ...or about this many bytes in memory. */
  readonly sealBytes: number;
  /** Unflushed data older than this is flushed (bounds WAL replay time). */
  readonly flushIdleMs: number;
}

/** How many ids one allocator round trip reserves for segments, and the low-water mark that refills. */
const SEGMENT_IDS_BATCH = 16;
const SEGMENT_IDS_LOW = 4;

export class SegmentManager implements SegmentCoordinator {
  readonly #catalog: Catalog;
  readonly #ids: IdSource;
  readonly #policy: SealPolicy;
  readonly #locks = new KeyedMutex<number>();
  readonly #spareSegmentIds: number[] = [];

  constructor(deps: { catalog: Catalog; ids: IdSource }, policy: SealPolicy) {
    this.#catalog = deps.catalog;
    this.#ids = deps.ids;
    this.#policy = policy;
  }

  async segmentIds(): Promise<() => number> {
    if (this.#spareSegmentIds.length < SEGMENT_IDS_LOW) {
      const first = await this.#ids.alloc(SEGMENT_IDS_BATCH);
      for (let i = 0; i < SEGMENT_IDS_BATCH; i++) this.#spareSegmentIds.push(first + i);
    }
    return () => this.#spareSegmentIds.shift()!;
  }

  withCollectionLock<T>(collectionId: number, fn: () => Promise<T>): Promise<T> {
    return this.#locks.run(collectionId, fn);
  }

  /** Sealing decision: full (rows or bytes) or idle for longer than `flushIdleMs`. */
  shouldFlush(stats: GrowingStats, nowMs: number): boolean {
    const full = stats.maxRows >= this.#policy.sealRows || stats.maxBytes >= this.#policy.sealBytes;
    const idle = stats.dirtySinceMs !== undefined && nowMs - stats.dirtySinceMs >= this.#policy.flushIdleMs;
    return full || idle;
  }

  /**
   * Commits what a flush wrote: the flushed segments (new ones, and existing ones with a new deltalog)
   * and then the collection's WAL checkpoint. A flush of many segments (many partitions, or a delete that
   * touched many flushed segments) does not fit one etcd txn, so it goes in batches, records first and
   * the checkpoint in the last batch. Every prefix is safe because WAL replay is idempotent against
   * committed segments: until the checkpoint moves, a restart replays the WAL from the old checkpoint,
   * and replay skips the inserts of a segment that is already Flushed and re-applies a delete only to rows
   * not already deleted by a committed deltalog. A segment whose batch did not commit is replayed into
   * memory and flushed again; its first files are orphans that GC reclaims. The data node updates its
   * in-memory segments only after the whole commit, so a failed flush is retried as a whole.
   */
  async commitFlush(collectionId: number, segments: readonly SegmentRecord[], checkpoint: number | undefined): Promise<boolean> {
    const coll = this.#catalog.collection(collectionId);
    if (!coll || coll.state !== 'Created') return false;
    // A flush with nothing to write and the checkpoint where it is already commits nothing (on etcd a
    // commit is a round trip, and a snapshot create flushes first).
    if (segments.length === 0 && (checkpoint === undefined || checkpoint === this.#catalog.checkpoint(collectionId))) return true;
    const changes: CatalogChange[] = segments.map((record) => ({ type: 'putSegment', record }));
    if (checkpoint !== undefined) changes.push({ type: 'putCheckpoint', collectionId, position: checkpoint });
    await this.#catalog.commitInBatches(changes);
    return true;
  }

  /**
   * One txn, because the target's Flushed and the sources' Dropped must become true together (else rows
   * would be visible twice or not at all). It is bounded by the planner: at most
   * `COMPACTION_SOURCES_MAX` sources of at most `COMPACTION_RECORD_BYTES_MAX` record bytes in all
   * (compaction-planner.ts), plus the target.
   */
  async commitCompaction(_collectionId: number, target: SegmentRecord | undefined, dropped: readonly SegmentRecord[]): Promise<void> {
    const changes: CatalogChange[] = [];
    if (target) changes.push({ type: 'putSegment', record: target });
    for (const d of dropped) changes.push({ type: 'putSegment', record: d });
    await this.#catalog.commit(changes);
  }

  /**
   * One checkpoint per loaded collection, so in batches; each checkpoint is independent of the others, and
   * the WAL is truncated only after all of them committed (a stale checkpoint of a clean collection is
   * harmless: replay starts at the WAL's first retained record).
   */
  async raiseCheckpoints(collectionIds: readonly number[], position: number): Promise<void> {
    const bump: CatalogChange[] = [];
    for (const id of collectionIds) {
      const ckpt = this.#catalog.checkpoint(id);
      if (ckpt === undefined || ckpt < position) bump.push({ type: 'putCheckpoint', collectionId: id, position });
    }
    await this.#catalog.commitInBatches(bump);
  }
}
