import type { Logger } from 'pino';
import type { Clock } from './clock.js';
import { isQuiverError } from './errors.js';

/**
 * Whether the stores this server writes to accept writes. A full disk or a failing device makes writes
 * fail (`IoFailed`) while reads keep working; each store recovers by itself on its next write once the
 * cause is gone (the WAL repairs itself, SQLite rolls the failed transaction back, object puts are
 * independent). This tracks the state operators need meanwhile: /healthz answers 503 with the reason, a
 * counter counts failures, and the log says it once at error level when a store starts failing and once
 * at info when a write to it succeeds again (not once per failed request: a client retrying in a loop
 * must not flood the log).
 */

export type WriteTarget = 'wal' | 'meta' | 'objects';

export interface WriteFault {
  readonly target: WriteTarget;
  /** The latest failure's message. */
  readonly reason: string;
  readonly sinceMs: number;
  readonly failures: number;
}

export interface WriteHealthDeps {
  readonly log: Logger;
  readonly clock: Clock;
  /** Called on every failed write (the metric). */
  readonly countFailure?: (target: WriteTarget) => void;
}

export class WriteHealth {
  readonly #log: Logger;
  readonly #clock: Clock;
  readonly #countFailure: (target: WriteTarget) => void;
  readonly #faults = new Map<WriteTarget, WriteFault>();

  constructor(deps: WriteHealthDeps) {
    this.#log = deps.log;
    this.#clock = deps.clock;
    this.#countFailure = deps.countFailure ?? (() => undefined);
  }

  failed(target: WriteTarget, err: unknown): void {
    this.#countFailure(target);
    const reason = err instanceof Error ? err.message : String(err);
    const prev = this.#faults.get(target);
    if (prev) {
      this.#faults.set(target, { ...prev, reason, failures: prev.failures + 1 });
      return;
    }
    this.#faults.set(target, { target, reason, sinceMs: this.#clock.nowMs(), failures: 1 });
    this.#log.error({ err, target }, `${target} writes are failing; reads keep working, writes are refused until it recovers`);
  }

  succeeded(target: WriteTarget): void {
    const prev = this.#faults.get(target);
    if (!prev) return;
    this.#faults.delete(target);
    this.#log.info({ target, failures: prev.failures, downMs: this.#clock.nowMs() - prev.sinceMs }, `${target} writes recovered`);
  }

  get healthy(): boolean {
    return this.#faults.size === 0;
  }

  faults(): WriteFault[] {
    return [...this.#faults.values()];
  }
}

/**
 * `obj` with its `methods` reporting to `health`: an `IoFailed` rejection marks `target` failing, a
 * success clears it. Other errors (bad input, a lost CAS) say nothing about the store. Every other
 * property is the target's own, bound to it (classes with #private fields cannot run on a Proxy).
 */
export function monitorWrites<T extends object>(obj: T, target: WriteTarget, methods: readonly (keyof T & string)[], health: WriteHealth): T {
  const watched = new Set<string | symbol>(methods);
  return new Proxy(obj, {
    get(t, prop) {
      const v = Reflect.get(t, prop, t) as unknown;
      if (typeof v !== 'function') return v;
      const fn = v as (...a: unknown[]) => unknown;
      if (!watched.has(prop)) return fn.bind(t);
      return (...args: unknown[]) => {
        const out = fn.apply(t, args) as Promise<unknown>;
        return out.then(
          (r) => {
            health.succeeded(target);
            return r;
          },
          (e: unknown) => {
            if (isQuiverError(e, 'IoFailed')) health.failed(target, e);
            throw e;
          },
        );
      };
    },
  });
}
