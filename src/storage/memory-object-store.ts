/**
 * In-memory ObjectStore for tests and ephemeral runs. Bytes are copied on put and on get, so callers can
 * never change stored objects; `copy` shares the stored bytes, which is safe for the same reason.
 */

import { systemClock, type Clock } from '../common/clock.js';
import { quiverError } from '../common/errors.js';
import { compareObjectKeys, validateObjectKey, validateObjectPrefix, validateRange } from './object-key.js';
import type { ObjectInfo, ObjectStore, ObjectStoreOp } from './object-store.js';

export interface MemoryObjectStoreOptions {
  /** Source of `lastModifiedMs`. */
  readonly clock?: Clock | undefined;
}

interface StoredObject {
  readonly bytes: Uint8Array;
  readonly lastModifiedMs: number;
}

export class MemoryObjectStore implements ObjectStore {
  readonly name = 'memory';
  readonly #objects = new Map<string, StoredObject>();
  readonly #clock: Clock;
  #closed = false;

  constructor(options: MemoryObjectStoreOptions = {}) {
    this.#clock = options.clock ?? systemClock;
  }

  async put(key: string, data: Uint8Array): Promise<void> {
    this.#checkOpen();
    validateObjectKey(key);
    if (!(data instanceof Uint8Array)) {
      throw quiverError('ParameterInvalid', `object store memory: put ${JSON.stringify(key)}: data must be a Uint8Array`);
    }
    this.#objects.set(key, { bytes: data.slice(), lastModifiedMs: this.#clock.nowMs() });
  }

  async get(key: string): Promise<Uint8Array> {
    this.#checkOpen();
    validateObjectKey(key);
    return this.#mustGet('get', key).bytes.slice();
  }

  async getRange(key: string, offset: number, length: number): Promise<Uint8Array> {
    this.#checkOpen();
    validateObjectKey(key);
    validateRange(key, offset, length);
    const { bytes } = this.#mustGet('getRange', key);
    if (offset > bytes.byteLength) {
      throw quiverError('ParameterInvalid', `object ${JSON.stringify(key)}: range offset ${offset} is beyond its size ${bytes.byteLength}`);
    }
    return bytes.slice(offset, Math.min(offset + length, bytes.byteLength));
  }

  async stat(key: string): Promise<ObjectInfo | undefined> {
    this.#checkOpen();
    validateObjectKey(key);
    const o = this.#objects.get(key);
    return o === undefined ? undefined : { key, size: o.bytes.byteLength, lastModifiedMs: o.lastModifiedMs };
  }

  async list(prefix: string): Promise<ObjectInfo[]> {
    this.#checkOpen();
    validateObjectPrefix(prefix);
    const out: ObjectInfo[] = [];
    for (const [key, o] of this.#objects) {
      if (key.startsWith(prefix)) out.push({ key, size: o.bytes.byteLength, lastModifiedMs: o.lastModifiedMs });
    }
    return out.sort((a, b) => compareObjectKeys(a.key, b.key));
  }

  async delete(key: string): Promise<void> {
    this.#checkOpen();
    validateObjectKey(key);
    this.#objects.delete(key);
  }

  async deletePrefix(prefix: string): Promise<number> {
    this.#checkOpen();
    validateObjectPrefix(prefix);
    if (prefix.length === 0) throw quiverError('ParameterInvalid', 'object store memory: deletePrefix refuses the empty prefix');
    let removed = 0;
    for (const key of [...this.#objects.keys()]) {
      if (key.startsWith(prefix) && this.#objects.delete(key)) removed += 1;
    }
    return removed;
  }

  async copy(srcKey: string, dstKey: string): Promise<void> {
    this.#checkOpen();
    validateObjectKey(srcKey);
    validateObjectKey(dstKey);
    const src = this.#mustGet('copy', srcKey);
    this.#objects.set(dstKey, { bytes: src.bytes, lastModifiedMs: this.#clock.nowMs() });
  }

  localPath(_key: string): string | undefined {
    return undefined;
  }

  async close(): Promise<void> {
    this.#closed = true;
  }

  #checkOpen(): void {
    if (this.#closed) throw quiverError('ServiceNotReady', 'object store memory is closed');
  }

  #mustGet(op: ObjectStoreOp, key: string): StoredObject {
    const o = this.#objects.get(key);
    if (o === undefined) throw quiverError('IoKeyNotFound', `object store memory: ${op}: no object ${JSON.stringify(key)}`);
    return o;
  }
}
