import { quiverError } from '../common/errors.js';
import type { CollectionRecord } from '../coord/records.js';

/**
 * Collection TTL (`collection.ttl.seconds`, Milvus's property): a row whose insert timestamp is older than
 * the TTL is expired. Expired rows are invisible to search, query and count at once (the read path masks
 * them), and compaction drops them from the files. Time comes from the injected clock; row timestamps
 * are hybrid TSO values (physical ms << 18 | logical), so the cut is a hybrid timestamp too.
 */

export const TTL_PROPERTY = 'collection.ttl.seconds';
const LOGICAL_BITS = 18n;

/** Validates a TTL property value as Milvus does: a non-negative integer number of seconds (0 = no TTL). */
export function parseTtlSeconds(raw: string | undefined): number | undefined {
  if (raw === undefined) return undefined;
  const n = Number(raw);
  if (raw.trim() === '' || !Number.isInteger(n) || n < 0) {
    throw quiverError('ParameterInvalid', `${TTL_PROPERTY} ${JSON.stringify(raw)} is invalid: must be a non-negative integer number of seconds`);
  }
  return n === 0 ? undefined : n;
}

/**
 * Rows with an insert ts below the returned hybrid ts are expired at `nowMs`; undefined when the collection
 * has no TTL. A stored value that no longer parses (written before validation existed) means no TTL.
 */
export function ttlCutTs(coll: CollectionRecord, nowMs: number): bigint | undefined {
  const raw = coll.properties[TTL_PROPERTY];
  if (raw === undefined) return undefined;
  const n = Number(raw);
  if (!Number.isInteger(n) || n <= 0) return undefined;
  const cutMs = nowMs - n * 1000;
  return cutMs <= 0 ? undefined : BigInt(cutMs) << LOGICAL_BITS;
}
