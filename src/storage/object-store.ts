/**
 * ObjectStore: the file store contract, shaped after S3 so that an S3/MinIO backend can drop in for the
 * local directory one. Objects are immutable by convention (a new version is a new key), which is what
 * lets `copy` be a hardlink and snapshots share files; `put` on an existing key still replaces it
 * atomically, as S3 does.
 *
 * Portability rule: a key must not also be a directory of other keys ('a' and 'a/b' cannot coexist),
 * because a local disk cannot hold both; S3 could, but Quiver's layout never needs it. The local
 * backend refuses such a put with ParameterInvalid.
 *
 * Every backend runs `object-store.conformance.ts`.
 */

export interface ObjectInfo {
  readonly key: string;
  readonly size: number;
  readonly lastModifiedMs: number;
}

export type ObjectStoreOp = 'put' | 'get' | 'getRange' | 'stat' | 'list' | 'delete' | 'deletePrefix' | 'copy';

export interface ObjectStore {
  /** 'local' | 'memory' | ... */
  readonly name: string;
  /** Atomic: readers see the old object or all of the new one, never a part. */
  put(key: string, data: Uint8Array): Promise<void>;
  /** Rejects with QuiverError('IoKeyNotFound') naming the key when absent. */
  get(key: string): Promise<Uint8Array>;
  /**
   * Bytes [offset, min(offset + length, size)). Reading past the end returns the bytes that exist;
   * an offset beyond the size is ParameterInvalid. IoKeyNotFound when absent.
   */
  getRange(key: string, offset: number, length: number): Promise<Uint8Array>;
  stat(key: string): Promise<ObjectInfo | undefined>;
  /** Every object whose key starts with `prefix` (a plain string prefix, '' = all), sorted by key. */
  list(prefix: string): Promise<ObjectInfo[]>;
  /** Idempotent: deleting an absent key succeeds. */
  delete(key: string): Promise<void>;
  /** Deletes every object under `prefix` and returns how many. The empty prefix is refused. */
  deletePrefix(prefix: string): Promise<number>;
  /**
   * Makes `dstKey` an independent object with the bytes of `srcKey` (replacing any `dstKey`); deleting
   * or replacing either afterwards leaves the other intact. IoKeyNotFound when `srcKey` is absent.
   */
  copy(srcKey: string, dstKey: string): Promise<void>;
  /** Local path of the object when the backend is a local disk (lets native libs read files directly), else undefined. */
  localPath?(key: string): string | undefined;
  /** Idempotent; later calls reject with ServiceNotReady. */
  close(): Promise<void>;
}
