import type { Logger } from 'pino';
import type { Clock } from '../common/clock.js';
import { LoopRunner } from '../common/loop.js';
import type { DataNodeApi } from '../datanode/types.js';
import type { Catalog } from './catalog.js';
import type { IndexScheduler } from './index-scheduler.js';
import type { SegmentManager } from './segment-manager.js';

/**
 * The data coordinator's periodic pass (Milvus DataCoord runs these as separate loops; here they are the
 * steps of one loop, so that on a small machine they never compete with each other):
 *
 *   1. seal/flush   the segment manager decides which collections are full or idle; the data node flushes
 *   2. index builds build every missing index file (the kicked index loop does this sooner)
 *   3. compaction   plan and run compactions of small or delete-heavy segments (if enabled)
 *   4. WAL          truncate the log before the oldest checkpoint still needed
 *
 * A step's failure for one collection is logged and the pass goes on; the next pass retries from
 * persisted state. Once the loop is stopping the pass stops between collections.
 */
export class DataCoord {
  readonly #catalog: Catalog;
  readonly #segments: SegmentManager;
  readonly #indexes: IndexScheduler;
  readonly #data: DataNodeApi;
  readonly #clock: Clock;
  readonly #log: Logger;
  readonly #autoCompaction: boolean;
  readonly loop: LoopRunner;

  constructor(
    deps: { catalog: Catalog; segments: SegmentManager; indexes: IndexScheduler; data: DataNodeApi; clock: Clock; log: Logger },
    opts: { intervalMs: number; autoCompaction: boolean },
  ) {
    this.#catalog = deps.catalog;
    this.#segments = deps.segments;
    this.#indexes = deps.indexes;
    this.#data = deps.data;
    this.#clock = deps.clock;
    this.#log = deps.log;
    this.#autoCompaction = opts.autoCompaction;
    this.loop = new LoopRunner('data-coord', opts.intervalMs, () => this.tick(), deps.log, { immediate: false });
  }

  /** One pass of every step. */
  async tick(): Promise<void> {
    const now = this.#clock.nowMs();
    for (const id of this.#data.collectionIds()) {
      if (this.loop.stopping) return;
      // Dropped during this pass: nothing left to flush, index or compact.
      if (this.#catalog.collection(id)?.state !== 'Created') continue;
      const name = this.#catalog.collection(id)?.name;
      try {
        if (this.#segments.shouldFlush(this.#data.growingStats(id), now)) await this.#data.flush(id);
        await this.#indexes.buildMissing(id);
        if (this.#autoCompaction) await this.#data.compact(id, { force: false, wait: true });
      } catch (err) {
        if (this.loop.stopping) this.#log.debug({ err, collection: name }, 'background work cancelled by shutdown');
        else this.#log.error({ err, collection: name }, 'background work failed');
      }
    }
    await this.#data.truncateWal();
  }
}
