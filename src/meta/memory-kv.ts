/**
 * In-memory MetaKV for tests and ephemeral runs. Same semantics as the SQLite backend (both run the
 * conformance suite). Values are copied on the way in and out so that a caller mutating its buffer can
 * never change what is stored.
 */

import { compareKeys, prefixUpperBound } from './key-order.js';
import {
  closedError,
  compareHolds,
  toBytes,
  validateKey,
  validatePrefix,
  validateScanOptions,
  validateTxn,
  validateValue,
  VALUE_BYTES_MAX_DEFAULT,
  type Compare,
  type KvEntry,
  type MetaKV,
  type Op,
  type ScanOptions,
  type TxnResult,
} from './meta-kv.js';

export interface MemoryMetaKVOptions {
  readonly valueBytesMax?: number | undefined;
}

export class MemoryMetaKV implements MetaKV {
  readonly #entries = new Map<string, KvEntry>();
  /** All keys in `compareKeys` order, kept sorted so a scan is a binary search plus a slice. */
  readonly #sortedKeys: string[] = [];
  readonly #valueBytesMax: number;
  #revision = 0;
  #closed = false;

  constructor(options: MemoryMetaKVOptions = {}) {
    this.#valueBytesMax = options.valueBytesMax ?? VALUE_BYTES_MAX_DEFAULT;
  }

  async get(key: string): Promise<KvEntry | undefined> {
    this.#checkOpen();
    validateKey(key);
    const entry = this.#entries.get(key);
    return entry === undefined ? undefined : copyEntry(entry);
  }

  async put(key: string, value: Uint8Array | string): Promise<number> {
    this.#checkOpen();
    validateKey(key);
    const bytes = toBytes(value);
    validateValue(key, bytes, this.#valueBytesMax);
    this.#revision += 1;
    this.#applyPut(key, bytes, this.#revision);
    return this.#revision;
  }

  async delete(key: string): Promise<boolean> {
    this.#checkOpen();
    validateKey(key);
    if (!this.#entries.has(key)) return false;
    this.#revision += 1;
    this.#applyDelete(key);
    return true;
  }

  async scan(prefix: string, opts?: ScanOptions): Promise<KvEntry[]> {
    this.#checkOpen();
    validatePrefix(prefix);
    validateScanOptions(opts);
    const keys = this.#keysInRange(prefix, opts?.startAfter);
    const limited = opts?.limit === undefined ? keys : keys.slice(0, opts.limit);
    return limited.map((k) => copyEntry(this.#mustGet(k)));
  }

  async txn(compares: readonly Compare[], success: readonly Op[], failure: readonly Op[] = []): Promise<TxnResult> {
    this.#checkOpen();
    validateTxn(compares, [success, failure], this.#valueBytesMax);
    const succeeded = compares.every((c) => compareHolds(c, this.#entries.get(c.key)));
    const ops = succeeded ? success : failure;
    const revision = this.#revision + 1;
    let changed = false;
    for (const op of ops) {
      switch (op.type) {
        case 'put':
          this.#applyPut(op.key, toBytes(op.value), revision);
          changed = true;
          break;
        case 'delete':
          if (this.#entries.has(op.key)) {
            this.#applyDelete(op.key);
            changed = true;
          }
          break;
        case 'deletePrefix':
          for (const k of this.#keysInRange(op.prefix, undefined)) {
            this.#applyDelete(k);
            changed = true;
          }
          break;
      }
    }
    if (changed) this.#revision = revision;
    return { succeeded, revision: this.#revision };
  }

  async revision(): Promise<number> {
    this.#checkOpen();
    return this.#revision;
  }

  async close(): Promise<void> {
    this.#closed = true;
  }

  #checkOpen(): void {
    if (this.#closed) throw closedError('memory');
  }

  #mustGet(key: string): KvEntry {
    const e = this.#entries.get(key);
    if (e === undefined) throw new Error(`assertion failed: sorted key ${key} missing from map`);
    return e;
  }

  #applyPut(key: string, value: Uint8Array, revision: number): void {
    const prev = this.#entries.get(key);
    if (prev === undefined) {
      this.#sortedKeys.splice(this.#lowerBound(key), 0, key);
    }
    this.#entries.set(key, {
      key,
      value: value.slice(),
      createRevision: prev?.createRevision ?? revision,
      modRevision: revision,
      version: (prev?.version ?? 0) + 1,
    });
  }

  #applyDelete(key: string): void {
    if (!this.#entries.delete(key)) return;
    const i = this.#lowerBound(key);
    if (this.#sortedKeys[i] !== key) throw new Error(`assertion failed: key ${key} missing from sorted index`);
    this.#sortedKeys.splice(i, 1);
  }

  /** Keys starting with `prefix` and greater than `startAfter`, in order. Returns a fresh array. */
  #keysInRange(prefix: string, startAfter: string | undefined): string[] {
    let from = this.#lowerBound(prefix);
    if (startAfter !== undefined && compareKeys(startAfter, prefix) >= 0) {
      from = this.#lowerBound(startAfter);
      if (this.#sortedKeys[from] === startAfter) from += 1;
    }
    const upper = prefixUpperBound(prefix);
    const to = upper === undefined ? this.#sortedKeys.length : this.#lowerBound(upper);
    return from < to ? this.#sortedKeys.slice(from, to) : [];
  }

  /** First index whose key is >= `key`. */
  #lowerBound(key: string): number {
    let lo = 0;
    let hi = this.#sortedKeys.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (compareKeys(this.#sortedKeys[mid] ?? '', key) < 0) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}

function copyEntry(e: KvEntry): KvEntry {
  return { ...e, value: e.value.slice() };
}
