/**
 * An ObjectStore wrapper that fails chosen calls with QuiverError('IoFailed'), for fault tests: a crash
 * halfway through a flush, a copy job whose worker loses its disk, GC meeting a flaky store.
 *
 * `when: 'before'` (default) fails a call without performing it. `when: 'after'` performs it and then
 * fails: the caller cannot tell whether the write happened, which is what idempotent retries must handle.
 * The predicate runs exactly once per call (so counting predicates like `failNth` are exact); for
 * `copy` it sees the destination key, for `list`/`deletePrefix` the prefix.
 */

import { quiverError } from '../common/errors.js';
import type { ObjectInfo, ObjectStore, ObjectStoreOp } from './object-store.js';

export type FaultPredicate = (op: ObjectStoreOp, key: string) => boolean;

export interface FaultyObjectStoreOptions {
  readonly failOn: FaultPredicate;
  readonly when?: 'before' | 'after' | undefined;
}

export class FaultyObjectStore implements ObjectStore {
  readonly name: string;
  readonly #inner: ObjectStore;
  #failOn: FaultPredicate;
  #when: 'before' | 'after';
  #injected = 0;

  constructor(inner: ObjectStore, options: FaultyObjectStoreOptions) {
    this.name = `faulty(${inner.name})`;
    this.#inner = inner;
    this.#failOn = options.failOn;
    this.#when = options.when ?? 'before';
  }

  /** Replaces the predicate (e.g. `() => false` to heal the store mid-test). */
  setFailOn(failOn: FaultPredicate, when: 'before' | 'after' = this.#when): void {
    this.#failOn = failOn;
    this.#when = when;
  }

  /** How many calls have been failed so far. */
  get injectedFailures(): number {
    return this.#injected;
  }

  put(key: string, data: Uint8Array): Promise<void> {
    return this.#run('put', key, () => this.#inner.put(key, data));
  }
  get(key: string): Promise<Uint8Array> {
    return this.#run('get', key, () => this.#inner.get(key));
  }
  getRange(key: string, offset: number, length: number): Promise<Uint8Array> {
    return this.#run('getRange', key, () => this.#inner.getRange(key, offset, length));
  }
  stat(key: string): Promise<ObjectInfo | undefined> {
    return this.#run('stat', key, () => this.#inner.stat(key));
  }
  list(prefix: string): Promise<ObjectInfo[]> {
    return this.#run('list', prefix, () => this.#inner.list(prefix));
  }
  delete(key: string): Promise<void> {
    return this.#run('delete', key, () => this.#inner.delete(key));
  }
  deletePrefix(prefix: string): Promise<number> {
    return this.#run('deletePrefix', prefix, () => this.#inner.deletePrefix(prefix));
  }
  copy(srcKey: string, dstKey: string): Promise<void> {
    return this.#run('copy', dstKey, () => this.#inner.copy(srcKey, dstKey));
  }
  localPath(key: string): string | undefined {
    return this.#inner.localPath?.(key);
  }
  close(): Promise<void> {
    return this.#inner.close();
  }

  async #run<T>(op: ObjectStoreOp, key: string, call: () => Promise<T>): Promise<T> {
    const fail = this.#failOn(op, key);
    const when = this.#when;
    if (fail && when === 'before') throw this.#fault(op, key, when);
    const result = await call();
    if (fail) throw this.#fault(op, key, when);
    return result;
  }

  #fault(op: ObjectStoreOp, key: string, when: 'before' | 'after'): Error {
    this.#injected += 1;
    const done = when === 'after' ? ' (after the call took effect)' : '';
    return quiverError('IoFailed', `object store ${this.name}: injected fault on ${op} ${JSON.stringify(key)}${done}`);
  }
}

/** Fails only the nth call (1-based) of `op`; other ops and calls pass. */
export function failNth(op: ObjectStoreOp, n: number): FaultPredicate {
  let seen = 0;
  return (o) => {
    if (o !== op) return false;
    seen += 1;
    return seen === n;
  };
}

/** Fails every call of `op` ('any' = every op) whose key (or prefix) starts with `prefix`. */
export function failKeysWithPrefix(op: ObjectStoreOp | 'any', prefix: string): FaultPredicate {
  return (o, key) => (op === 'any' || o === op) && key.startsWith(prefix);
}

/** Fails every call of `op` from the nth on (1-based): a disk that dies and stays dead. */
export function failFromNth(op: ObjectStoreOp | 'any', n: number): FaultPredicate {
  let seen = 0;
  return (o) => {
    if (op !== 'any' && o !== op) return false;
    seen += 1;
    return seen >= n;
  };
}

/** Fails a call when any predicate says so (each predicate still sees every call). */
export function anyFault(...predicates: readonly FaultPredicate[]): FaultPredicate {
  return (op, key) => predicates.map((p) => p(op, key)).some(Boolean);
}
