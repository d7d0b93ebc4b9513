import type { Clock } from '../common/clock.js';
import { assert } from '../common/errors.js';

/**
 * Failed-login rate limiting per (user, address): a password guesser gets `failuresFree` tries, then
 * waits `lockoutBaseMs`, then twice that after each further failure, up to `lockoutMaxMs`. A success
 * clears the pair; a pair with no failure for `forgetAfterMs` is forgotten. Keyed by address too, so a
 * guesser on one host cannot lock the real user out from another.
 *
 * Time only through the injected Clock (unit tests drive it with a FakeClock). The table is bounded
 * (`entriesMax`): when full, the pair that failed longest ago is dropped first (a Map keeps insertion
 * order, and every failure re-inserts its pair at the end).
 */

export interface LoginRateLimitOptions {
  /** Failures in a row allowed before the first lockout. */
  readonly failuresFree: number;
  readonly lockoutBaseMs: number;
  readonly lockoutMaxMs: number;
  readonly forgetAfterMs: number;
  readonly entriesMax: number;
}

export const LOGIN_RATE_LIMIT_DEFAULTS: LoginRateLimitOptions = {
  failuresFree: 5,
  lockoutBaseMs: 30_000,
  lockoutMaxMs: 15 * 60_000,
  forgetAfterMs: 60 * 60_000,
  entriesMax: 100_000,
};

interface Entry {
  failures: number;
  lastFailureMs: number;
  lockedUntilMs: number;
}

export class LoginRateLimiter {
  readonly #clock: Clock;
  readonly #options: LoginRateLimitOptions;
  readonly #entries = new Map<string, Entry>();

  constructor(clock: Clock, options: LoginRateLimitOptions = LOGIN_RATE_LIMIT_DEFAULTS) {
    assert(options.failuresFree >= 1 && options.lockoutBaseMs >= 0 && options.lockoutMaxMs >= options.lockoutBaseMs, 'login rate limit options');
    assert(options.entriesMax >= 1, 'login rate limit entriesMax');
    this.#clock = clock;
    this.#options = options;
  }

  /** Milliseconds until (user, address) may try again; 0 when it may try now. */
  lockedForMs(user: string, address: string): number {
    const e = this.#entries.get(pairKey(user, address));
    if (e === undefined) return 0;
    const now = this.#clock.nowMs();
    if (now - e.lastFailureMs >= this.#options.forgetAfterMs && now >= e.lockedUntilMs) {
      this.#entries.delete(pairKey(user, address));
      return 0;
    }
    return Math.max(0, e.lockedUntilMs - now);
  }

  recordFailure(user: string, address: string): void {
    const key = pairKey(user, address);
    const now = this.#clock.nowMs();
    const prev = this.#entries.get(key);
    const fresh = prev === undefined || now - prev.lastFailureMs >= this.#options.forgetAfterMs;
    const failures = fresh ? 1 : prev.failures + 1;
    const over = failures - this.#options.failuresFree;
    // 2^over overflows to Infinity long before it matters; Math.min caps it.
    const lockMs = over < 0 ? 0 : Math.min(this.#options.lockoutMaxMs, this.#options.lockoutBaseMs * 2 ** over);
    this.#entries.delete(key);
    this.#entries.set(key, { failures, lastFailureMs: now, lockedUntilMs: now + lockMs });
    while (this.#entries.size > this.#options.entriesMax) {
      const oldest = this.#entries.keys().next().value as string;
      this.#entries.delete(oldest);
    }
  }

  recordSuccess(user: string, address: string): void {
    this.#entries.delete(pairKey(user, address));
  }

  /** Pairs tracked now (tests, metrics). */
  get size(): number {
    return this.#entries.size;
  }
}

function pairKey(user: string, address: string): string {
  // JSON keeps "a" + "b:c" apart from "a:b" + "c".
  return JSON.stringify([user, address]);
}
