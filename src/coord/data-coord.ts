import type { Logger } from 'pino';
import type { Clock } from '../common/clock.js';
import { isQuiverError } from '../common/errors.js';
import { LoopRunner } from '../common/loop.js';
import type { DataNodeApi } from '../datanode/types.js';
import type { Catalog } from './catalog.js';
import type { IndexScheduler } from './index-scheduler.js';
import type { SegmentManager } from './segment-manager.js';

/**
 * The data coordinator's periodic pass (Milvus DataCoord runs these as separate loops; here they are the
 * steps of one loop, in this order, so that on a small machine they never compete with each other):
 *
 *   1. seal/flush   the segment manager decides which collections are full or idle; the data node flushes
 *   2. index builds build every missing index file (the kicked index loop does this sooner)
 *   3. compaction   plan and run compactions of small or delete-heavy segments (if enabled)
 *   4. WAL          truncate the log before the oldest checkpoint still needed
 *
 * A step's failure for one collection is logged and the step goes on; the next pass retries from
 * persisted state. Once the loop is stopping the pass stops between collections (and skips the WAL).
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

  /** One pass: every step in order. */
  async tick(): Promise<void> {
    await this.sealAndFlush();
    await this.buildIndexes();
    if (this.#autoCompaction) await this.compact();
    if (this.loop.stopping) return;
    await this.#data.truncateWal();
  }

  /** Step 1: flush every collection the segment manager finds full or idle. */
  async sealAndFlush(): Promise<void> {
    const now = this.#clock.nowMs();
    await this.#eachCollection('flush', async (id) => {
      if (this.#segments.shouldFlush(this.#data.growingStats(id), now)) await this.#data.flush(id);
    });
  }

  /** Step 2: build every missing index file. */
  async buildIndexes(): Promise<void> {
    await this.#eachCollection('index build', (id) => this.#indexes.buildMissing(id));
  }

  /** Step 3: plan and run compactions. */
  async compact(): Promise<void> {
    await this.#eachCollection('compaction', async (id) => {
      await this.#data.compact(id, { force: false, wait: true });
    });
  }

  /** Kind of the last failure per (collection, step): logged at error once, then at debug until it clears. */
  readonly #failures = new Map<string, string>();

  /** Runs one step for each live collection; a failure is logged and the step goes on. */
  async #eachCollection(step: string, fn: (collectionId: number) => Promise<void>): Promise<void> {
    for (const id of this.#data.collectionIds()) {
      if (this.loop.stopping) return;
      // Dropped during this pass: nothing left to do for it.
      const coll = this.#catalog.collection(id);
      if (coll?.state !== 'Created') continue;
      const key = `${id}/${step}`;
      try {
        await fn(id);
        this.#failures.delete(key);
      } catch (err) {
        if (this.loop.stopping) {
          this.#log.debug({ err, collection: coll.name, step }, 'background work cancelled by shutdown');
          continue;
        }
        // Retried every pass: say it at error level once per kind of failure (a full disk would otherwise log
        // one error a second per collection until space is freed; its messages differ only by file name).
        const kind = isQuiverError(err) ? err.kind : (err as Error).message;
        const repeated = this.#failures.get(key) === kind;
        this.#failures.set(key, kind);
        this.#log[repeated ? 'debug' : 'error']({ err, collection: coll.name, step }, 'background work failed');
      }
    }
  }
}
