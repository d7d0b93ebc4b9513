/**
 * Time only through an injected Clock, so that state machines can be driven by a fake one in tests:
 * reading it (`nowMs`) and waiting on it (`sleep`).
 */
export interface Clock {
  nowMs(): number;
  /**
   * Resolves once `ms` have passed on this clock (a fake clock: once `advance` moved it that far), or
   * early when `signal` aborts (a timeout that is no longer needed must not hold a timer).
   */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

export const systemClock: Clock = {
  nowMs: () => Date.now(),
  sleep: (ms, signal) =>
    new Promise((resolve) => {
      if (signal?.aborted) return resolve();
      const timer = setTimeout(done, Math.max(0, ms));
      function done(): void {
        clearTimeout(timer);
        signal?.removeEventListener('abort', done);
        resolve();
      }
      signal?.addEventListener('abort', done, { once: true });
    }),
};

export class FakeClock implements Clock {
  #now: number;
  /** Sleepers by wake-up time; `advance`/`set` wake the due ones. */
  #sleepers: { atMs: number; wake: () => void }[] = [];

  constructor(startMs = 1_700_000_000_000) {
    this.#now = startMs;
  }
  nowMs(): number {
    return this.#now;
  }
  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    if (ms <= 0 || signal?.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      const sleeper = { atMs: this.#now + ms, wake: resolve };
      this.#sleepers.push(sleeper);
      signal?.addEventListener(
        'abort',
        () => {
          this.#sleepers = this.#sleepers.filter((s) => s !== sleeper);
          resolve();
        },
        { once: true },
      );
    });
  }
  advance(ms: number): void {
    this.set(this.#now + ms);
  }
  set(ms: number): void {
    this.#now = ms;
    const due = this.#sleepers.filter((s) => s.atMs <= ms);
    this.#sleepers = this.#sleepers.filter((s) => s.atMs > ms);
    for (const s of due) s.wake();
  }
  /** Sleepers not woken yet (tests: "something is waiting on the clock"). */
  sleeping(): number {
    return this.#sleepers.length;
  }
}
