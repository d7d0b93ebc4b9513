/**
 * How big one MetaKV transaction may be, for every caller that writes a variable number of records.
 *
 * etcd refuses a txn of more than --max-txn-ops ops (default 128; EtcdMetaKV adds one op of its own, its
 * revision counter) and a request over --max-request-bytes (default 1.5 MiB). We stay well under both so
 * that a cluster with default settings always accepts our writes and framing overhead never matters.
 * A commit that could grow with the data (segments of a collection, checkpoints of all collections,
 * aliases) is split into txns of these bounds, in an order that keeps every intermediate state safe;
 * each call site explains its order.
 *
 * (coord/copy/copy-job-store.ts has the same two numbers for the copy job store.)
 */

import type { Op } from './meta-kv.js';

export const TXN_OPS_MAX = 64;
/** Bytes of keys and values in one txn. */
export const TXN_BYTES_MAX = 1024 * 1024;

/** Bytes an op puts on the wire (key and value; framing is covered by the margin in TXN_BYTES_MAX). */
export function opBytes(op: Op): number {
  switch (op.type) {
    case 'put':
      return Buffer.byteLength(op.key) + (typeof op.value === 'string' ? Buffer.byteLength(op.value) : op.value.byteLength);
    case 'delete':
      return Buffer.byteLength(op.key);
    case 'deletePrefix':
      return Buffer.byteLength(op.prefix);
    default: {
      const never: never = op;
      throw new Error(`assertion failed: unknown op ${JSON.stringify(never)}`);
    }
  }
}

/**
 * Splits `items` (in order) into runs of at most `opsMax` items and `bytesMax` bytes; an item alone over
 * `bytesMax` is a run of its own (the store refuses it if it is over the real limit).
 */
export function splitBySize<T>(items: readonly T[], bytesOf: (item: T) => number, opsMax = TXN_OPS_MAX, bytesMax = TXN_BYTES_MAX): T[][] {
  const out: T[][] = [];
  let cur: T[] = [];
  let bytes = 0;
  for (const item of items) {
    const b = bytesOf(item);
    if (cur.length > 0 && (cur.length >= opsMax || bytes + b > bytesMax)) {
      out.push(cur);
      cur = [];
      bytes = 0;
    }
    cur.push(item);
    bytes += b;
  }
  if (cur.length > 0) out.push(cur);
  return out;
}
