import { quiverError } from '../common/errors.js';
import type { ObjectInfo, ObjectStore } from './object-store.js';

/**
 * A read/write view of another store under a key prefix (`prefix` ends with '/'): key `k` of the view is
 * key `prefix + k` of the base. An external restore stages a bundle's files at their original keys under
 * `imports/{jobId}/`, and the snapshot reader reads them through this view exactly as it reads a local
 * snapshot. Closing the view does not close the base (the view does not own it).
 */
export class PrefixedObjectStore implements ObjectStore {
  readonly name: string;
  readonly #base: ObjectStore;
  readonly #prefix: string;

  constructor(base: ObjectStore, prefix: string) {
    if (prefix === '' || !prefix.endsWith('/')) throw quiverError('ParameterInvalid', `store view prefix ${JSON.stringify(prefix)} must end with '/'`);
    this.#base = base;
    this.#prefix = prefix;
    this.name = `${base.name}:${prefix}`;
  }

  put(key: string, data: Uint8Array): Promise<void> {
    return this.#base.put(this.#prefix + key, data);
  }
  get(key: string): Promise<Uint8Array> {
    return this.#base.get(this.#prefix + key);
  }
  getRange(key: string, offset: number, length: number): Promise<Uint8Array> {
    return this.#base.getRange(this.#prefix + key, offset, length);
  }
  async stat(key: string): Promise<ObjectInfo | undefined> {
    const info = await this.#base.stat(this.#prefix + key);
    return info === undefined ? undefined : { ...info, key };
  }
  async list(prefix: string): Promise<ObjectInfo[]> {
    const n = this.#prefix.length;
    return (await this.#base.list(this.#prefix + prefix)).map((o) => ({ ...o, key: o.key.slice(n) }));
  }
  delete(key: string): Promise<void> {
    return this.#base.delete(this.#prefix + key);
  }
  deletePrefix(prefix: string): Promise<number> {
    if (prefix === '') throw quiverError('ParameterInvalid', 'deletePrefix refuses the empty prefix');
    return this.#base.deletePrefix(this.#prefix + prefix);
  }
  copy(srcKey: string, dstKey: string): Promise<void> {
    return this.#base.copy(this.#prefix + srcKey, this.#prefix + dstKey);
  }
  localPath(key: string): string | undefined {
    return this.#base.localPath?.(this.#prefix + key);
  }
  async close(): Promise<void> {}
}
