/**
 * The write-ahead log of growing (not yet flushed) data. Deliberately small: the distributed deployment
 * will implement it over an existing replicated log service, the embedded one over local files
 * (`LocalWal`).
 */

/**
 * Position of a record: monotonically increasing across the whole log and across restarts. In `LocalWal`
 * it is the record's byte offset in the logical concatenation of all segment files.
 */
export type WalPosition = number;

export interface WalRecord {
  readonly position: WalPosition;
  readonly payload: Uint8Array;
}

/**
 * When an append is acknowledged:
 * - `always`: after fdatasync of the write that holds it (group commit: appends arriving while an fsync is
 *   in flight share the next one). Survives power loss.
 * - `batch`: same guarantee, but fsyncs are spaced at least `batchWindowMs` apart, trading latency for
 *   fewer fsyncs. Survives power loss.
 * - `none`: after write(2) returned. Survives a process crash (the data is in the OS page cache), NOT a
 *   power loss or kernel crash; after one the tail may be lost or, if a segment had been rotated, the log
 *   may refuse to open until the damaged file is dealt with.
 */
export type FsyncPolicy = 'always' | 'batch' | 'none';

export interface Wal {
  /**
   * Appends records in order; resolves only when they are durable per the fsync policy, with the position
   * of each record. Appends are ordered by call order. Payloads larger than 64 KiB are written from the
   * caller's buffer: do not mutate them until the promise settles.
   */
  append(payloads: readonly Uint8Array[]): Promise<WalPosition[]>;
  /**
   * Acknowledged records with position >= from, in order, streamed (replaying a big log does not load it
   * all). `from` need not be a record boundary. Throws `IoKeyNotFound` if `from` lies before the oldest
   * retained record (it was truncated away) and `IoFailed` on a corrupt record.
   */
  read(from: WalPosition): AsyncIterable<WalRecord>;
  /** Everything before `position` is no longer needed (it has been checkpointed into immutable files). */
  truncateBefore(position: WalPosition): Promise<void>;
  /** Position the next record will get. */
  endPosition(): WalPosition;
  /** Oldest position still retained (everything before it was truncated away). */
  startPosition(): WalPosition;
  /** Idempotent; waits for pending appends. */
  close(): Promise<void>;
}

export { LocalWal, openLocalWal, type LocalWalOptions, type LocalWalStats } from './local-wal.js';
