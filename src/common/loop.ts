/**
 * The lifecycle shared by the checker and the inspector: `tick()` runs one pass (passes never overlap),
 * `start()` ticks once right away and then every `intervalMs` as a fallback, `kick()` asks for a pass
 * soon (used on events: job created, task done), coalescing kicks that arrive before that pass starts,
 * `stop()` is idempotent and waits for the pass in flight.
 *
 * Timers are real (setTimeout, unref'd so that a loop never keeps a process alive); logic never reads
 * them, so tests drive the loops with `await loop.tick()` and a FakeClock instead.
 */

import { Mutex } from './mutex.js';
import type { CopyLogger } from '../coord/copy/types.js';

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
  readonly #log: CopyLogger;
  readonly #mutex = new Mutex();
  #started = false;
  #stopped = false;
  #periodic: ReturnType<typeof setTimeout> | undefined;
  /** The kicked pass not yet started, shared by every kick that arrives before it starts. */
  #soon: Deferred | undefined;

  constructor(name: string, intervalMs: number, body: () => Promise<void>, log: CopyLogger) {
    if (!Number.isFinite(intervalMs) || intervalMs <= 0) throw new Error(`assertion failed: ${name} interval ${intervalMs} ms must be > 0`);
    this.#name = name;
    this.#intervalMs = intervalMs;
    this.#body = body;
    this.#log = log;
  }

  /** One pass; waits for a pass in flight first. Errors propagate to the caller. */
  tick(): Promise<void> {
    return this.#mutex.run(this.#body);
  }

  /** Idempotent; a stopped loop cannot be restarted. */
  start(): void {
    if (this.#started || this.#stopped) return;
    this.#started = true;
    void this.kick();
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
    if (this.#soon === d) this.#soon = undefined;
    try {
      if (!this.#stopped) await this.#guarded();
    } finally {
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
  async #guarded(): Promise<void> {
    try {
      await this.tick();
    } catch (e) {
      this.#log.error({ loop: this.#name, err: e }, `${this.#name} pass failed`);
    }
  }
}
