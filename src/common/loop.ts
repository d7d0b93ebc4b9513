/**
 * The one background-loop primitive. Every periodic job (the data coordinator's seal/flush, index and
 * compaction steps, WAL truncation, GC, snapshot housekeeping, the copy checker and inspector) is a
 * `LoopRunner`:
 *
 * - `tick()` runs one pass; passes never overlap (a tick waits for the pass in flight).
 * - `start()` schedules passes every `intervalMs` (measured from the end of one pass to the start of the
 *   next) and, unless `immediate: false`, one right away. Idempotent; a stopped loop stays stopped.
 * - `kick()` asks for a pass soon (on events: job created, task done, segment flushed), coalescing kicks
 *   that arrive before that pass starts.
 * - `stop()` is idempotent and waits for the pass in flight; a body may read `stopping` to bail out
 *   between units of work.
 *
 * Timers are real (setTimeout, unref'd so that a loop never keeps a process alive); logic never reads
 * them, so tests drive loops with `await loop.tick()` and a FakeClock. A failed background pass is
 * logged and the next pass retries from persisted state; one that fails while the loop is stopping was
 * cancelled by shutdown, which is not an error, so it is logged at debug.
 */

import { Mutex } from './mutex.js';

export interface LoopLogger {
  error(fields: object, msg: string): void;
  debug?(fields: object, msg: string): void;
}

export interface LoopOptions {
  /** Run a pass as soon as the loop starts (default true). */
  readonly immediate?: boolean;
}

interface Deferred {
  readonly promise: Promise<void>;
  readonly resolve: () => void;
}

function deferred(): Deferred {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

export class LoopRunner {
  readonly #name: string;
  readonly #intervalMs: number;
  readonly #body: () => Promise<void>;
  readonly #log: LoopLogger;
  readonly #immediate: boolean;
  readonly #mutex = new Mutex();
  #started = false;
  #stopped = false;
  #periodic: ReturnType<typeof setTimeout> | undefined;
  /** The kicked pass not yet started, shared by every kick that arrives before it starts. */
  #soon: Deferred | undefined;

  constructor(name: string, intervalMs: number, body: () => Promise<void>, log: LoopLogger, options: LoopOptions = {}) {
    if (!Number.isFinite(intervalMs) || intervalMs <= 0) throw new Error(`assertion failed: ${name} interval ${intervalMs} ms must be > 0`);
    this.#name = name;
    this.#intervalMs = intervalMs;
    this.#body = body;
    this.#log = log;
    this.#immediate = options.immediate ?? true;
  }

  get name(): string {
    return this.#name;
  }

  /** True once `stop()` was called: a long pass checks it between units of work. */
  get stopping(): boolean {
    return this.#stopped;
  }

  /** One pass; waits for a pass in flight first. Errors propagate to the caller. */
  tick(): Promise<void> {
    return this.#mutex.run(this.#body);
  }

  /** Idempotent; a stopped loop cannot be restarted. */
  start(): void {
    if (this.#started || this.#stopped) return;
    this.#started = true;
    if (this.#immediate) void this.kick();
    this.#schedulePeriodic();
  }

  /**
   * Runs a pass soon (only while started). The promise resolves after a pass that started after this
   * kick has finished (or at stop); callers on the hot path ignore it.
   */
  kick(): Promise<void> {
    if (!this.#started || this.#stopped) return Promise.resolve();
    if (this.#soon !== undefined) return this.#soon.promise;
    const d = deferred();
    this.#soon = d;
    setImmediate(() => void this.#runKicked(d));
    return d.promise;
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#periodic !== undefined) clearTimeout(this.#periodic);
    this.#periodic = undefined;
    this.#soon?.resolve();
    this.#soon = undefined;
    await this.#mutex.run(async () => {});
  }

  async #runKicked(d: Deferred): Promise<void> {
    // Kicks keep joining `d` until its pass holds the mutex: kicks that arrive while another pass runs
    // (a burst of finished tasks) queue one pass after it, not one each.
    const started = (): void => {
      if (this.#soon === d) this.#soon = undefined;
    };
    try {
      if (!this.#stopped) await this.#guarded(started);
    } finally {
      started();
      d.resolve();
    }
  }

  #schedulePeriodic(): void {
    if (this.#stopped) return;
    this.#periodic = setTimeout(() => {
      this.#periodic = undefined;
      void this.#guarded().finally(() => this.#schedulePeriodic());
    }, this.#intervalMs);
    this.#periodic.unref?.();
  }

  /** A background pass: an error is logged and the next pass retries from persisted state. */
  async #guarded(onStart?: () => void): Promise<void> {
    try {
      await this.#mutex.run(async () => {
        onStart?.();
        await this.#body();
      });
    } catch (e) {
      if (this.#stopped) this.#log.debug?.({ loop: this.#name, err: e }, `${this.#name} pass cancelled by shutdown`);
      else this.#log.error({ loop: this.#name, err: e }, `${this.#name} pass failed`);
    }
  }
}
