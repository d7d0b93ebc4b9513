/**
 * A MetaKV wrapper that refuses what a default etcd cluster refuses, as EtcdMetaKV does before sending
 * (ParameterTooLarge): a txn of more than 127 ops (etcd's --max-txn-ops 128 minus EtcdMetaKV's own
 * revision-counter put) or over 1.5 MiB of keys and values. Lets unit tests prove that a commit path
 * fits a real cluster without starting etcd. It can also fail the Nth txn (a crash between two
 * batches of a split commit, seen from the meta store).
 */

import { quiverError } from '../common/errors.js';
import type { Compare, KvEntry, MetaKV, Op, ScanOptions, TxnResult } from '../meta/meta-kv.js';
import { opBytes } from '../meta/txn-limits.js';

export const ETCD_CATALOG_OPS_MAX = 127;
export const ETCD_REQUEST_BYTES_MAX = 1_572_864;

export class LimitedMetaKV implements MetaKV {
  readonly #inner: MetaKV;
  #txns = 0;
  /** 1-based number of the txn that fails (IoFailed, nothing written); undefined = none. */
  failTxnAt: number | undefined;
  /** Largest txn seen so far, in ops and bytes. */
  maxOps = 0;
  maxBytes = 0;

  constructor(inner: MetaKV) {
    this.#inner = inner;
  }

  get txnCount(): number {
    return this.#txns;
  }

  get(key: string): Promise<KvEntry | undefined> {
    return this.#inner.get(key);
  }
  put(key: string, value: Uint8Array | string): Promise<number> {
    this.#check([{ type: 'put', key, value }]);
    return this.#inner.put(key, value);
  }
  delete(key: string): Promise<boolean> {
    return this.#inner.delete(key);
  }
  scan(prefix: string, opts?: ScanOptions): Promise<KvEntry[]> {
    return this.#inner.scan(prefix, opts);
  }
  async txn(compares: readonly Compare[], success: readonly Op[], failure: readonly Op[] = []): Promise<TxnResult> {
    this.#check(success);
    this.#check(failure);
    this.#txns += 1;
    if (this.#txns === this.failTxnAt) throw quiverError('IoFailed', `injected: txn ${this.#txns} failed`);
    return this.#inner.txn(compares, success, failure);
  }
  revision(): Promise<number> {
    return this.#inner.revision();
  }
  close(): Promise<void> {
    return this.#inner.close();
  }

  #check(ops: readonly Op[]): void {
    const bytes = ops.reduce((n, op) => n + opBytes(op), 0);
    this.maxOps = Math.max(this.maxOps, ops.length);
    this.maxBytes = Math.max(this.maxBytes, bytes);
    if (ops.length > ETCD_CATALOG_OPS_MAX) throw quiverError('ParameterTooLarge', `txn of ${ops.length} ops, over etcd's max-txn-ops`);
    if (bytes > ETCD_REQUEST_BYTES_MAX) throw quiverError('ParameterTooLarge', `txn of ${bytes} bytes, over etcd's max-request-bytes`);
  }
}
