import type { Clock } from './clock.js';

/**
 * Hybrid timestamps: physical milliseconds << 18 | logical counter, as in Milvus. The allocator persists an
 * upper bound of the physical part ("window") before handing out timestamps under it, so that after a crash
 * a restarted allocator never goes back in time even if the wall clock did.
 */
export const LOGICAL_BITS = 18n;
const LOGICAL_MAX = (1 << 18) - 1;

export function composeTs(physicalMs: number, logical: number): bigint {
  return (BigInt(physicalMs) << LOGICAL_BITS) | BigInt(logical);
}

export function physicalMsOf(ts: bigint): number {
  return Number(ts >> LOGICAL_BITS);
}

export interface BoundStore {
  load(): Promise<number>;
  save(bound: number): Promise<void>;
}

export class TsoAllocator {
  readonly #clock: Clock;
  readonly #store: BoundStore;
  readonly #windowMs: number;
  #lastPhysical = 0;
  #logical = 0;
  #bound = 0;
  #saving: Promise<void> | undefined;

  constructor(clock: Clock, store: BoundStore, windowMs = 3000) {
    this.#clock = clock;
    this.#store = store;
    this.#windowMs = windowMs;
  }

  async init(): Promise<void> {
    const saved = await this.#store.load();
    this.#lastPhysical = Math.max(saved, this.#clock.nowMs());
    this.#bound = this.#lastPhysical + this.#windowMs;
    await this.#store.save(this.#bound);
  }

  /**
   * Synchronous so that a caller can allocate a timestamp and apply a write in the same turn of the event
   * loop (that is what orders writes). The persisted window is extended in the background well before it
   * runs out; if it did run out we keep handing out logical ticks of the last physical ms under the bound.
   */
  next(): bigint {
    const now = this.#clock.nowMs();
    if (now > this.#lastPhysical && now < this.#bound) {
      this.#lastPhysical = now;
      this.#logical = 0;
    } else {
      this.#logical++;
      if (this.#logical > LOGICAL_MAX) {
        this.#lastPhysical++;
        this.#logical = 0;
      }
    }
    // Also when the clock has passed the window (idle longer than it, or a jump): else the physical part
    // would stall at the window's start and every later write would look that old (collection TTL).
    if (now >= this.#bound || this.#bound - this.#lastPhysical < this.#windowMs / 2) this.#extend();
    return composeTs(this.#lastPhysical, this.#logical);
  }

  #extend(): void {
    if (this.#saving) return;
    const bound = Math.max(this.#clock.nowMs(), this.#lastPhysical) + this.#windowMs;
    this.#saving = this.#store.save(bound).then(
      () => {
        this.#bound = bound;
        this.#saving = undefined;
      },
      () => {
        this.#saving = undefined;
      },
    );
  }

  /** Await any in-flight window extension (tests, shutdown). */
  async flush(): Promise<void> {
    await this.#saving;
  }
}

/**
 * Unique int64 ids (collections, segments, logs, jobs...). Hands out ids from a persisted range; a restart
 * starts above the last persisted bound, so ids are never reused even after kill -9.
 */
export class IdAllocator {
  readonly #store: BoundStore;
  readonly #batch: number;
  #next = 0;
  #bound = 0;
  #pending: Promise<void> | undefined;

  constructor(store: BoundStore, batch = 10_000) {
    this.#store = store;
    this.#batch = batch;
  }

  async init(): Promise<void> {
    const saved = await this.#store.load();
    // Start above 2^16 so ids never look like small counters users may confuse with row numbers.
    this.#next = Math.max(saved, 100_000);
    this.#bound = this.#next + this.#batch;
    await this.#store.save(this.#bound);
  }

  /** Allocates `count` consecutive ids; returns the first. */
  async alloc(count = 1): Promise<number> {
    while (this.#next + count > this.#bound) {
      if (!this.#pending) {
        const bound = Math.max(this.#bound, this.#next + count) + this.#batch;
        // A failed save (disk full) fails this call only: the next alloc tries again.
        this.#pending = this.#store.save(bound).then(
          () => {
            this.#bound = bound;
            this.#pending = undefined;
          },
          (e: unknown) => {
            this.#pending = undefined;
            throw e;
          },
        );
      }
      await this.#pending;
    }
    const first = this.#next;
    this.#next += count;
    return first;
  }
}
