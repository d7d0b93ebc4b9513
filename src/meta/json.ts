/**
 * JSON values in MetaKV. Metadata holds hybrid timestamps (physical ms << 18 | logical, about 2^59),
 * which do not fit a double, so bigints are encoded as `{"$bigint":"<decimal>"}` and decoded back to
 * bigint; every other value is plain JSON.
 */

import { quiverError } from '../common/errors.js';
import type { KvEntry } from './meta-kv.js';

const BIGINT_TAG = '$bigint';
const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true });

export function encodeJson(value: unknown): Uint8Array {
  const text = JSON.stringify(value, (_key, v: unknown) => (typeof v === 'bigint' ? { [BIGINT_TAG]: v.toString() } : v));
  if (text === undefined) {
    throw quiverError('ParameterInvalid', `meta value ${String(value)} has no JSON encoding`);
  }
  return encoder.encode(text);
}

/** Parses an entry written by `encodeJson`. A value that is not valid JSON is corrupt metadata. */
export function decodeJson<T>(entry: KvEntry | Uint8Array): T {
  const bytes = entry instanceof Uint8Array ? entry : entry.value;
  const where = entry instanceof Uint8Array ? 'meta value' : `meta key ${JSON.stringify(entry.key)}`;
  let text: string;
  try {
    text = decoder.decode(bytes);
    return JSON.parse(text, reviveBigint) as T;
  } catch (e) {
    throw quiverError('ServiceInternal', `${where} is not valid JSON: ${e instanceof Error ? e.message : String(e)}`, e);
  }
}

export function decodeString(entry: KvEntry | Uint8Array): string {
  const bytes = entry instanceof Uint8Array ? entry : entry.value;
  try {
    return decoder.decode(bytes);
  } catch (e) {
    const where = entry instanceof Uint8Array ? 'meta value' : `meta key ${JSON.stringify(entry.key)}`;
    throw quiverError('ServiceInternal', `${where} is not valid UTF-8`, e);
  }
}

function reviveBigint(_key: string, v: unknown): unknown {
  if (typeof v === 'object' && v !== null && !Array.isArray(v)) {
    const keys = Object.keys(v);
    const tagged = (v as Record<string, unknown>)[BIGINT_TAG];
    if (keys.length === 1 && typeof tagged === 'string' && /^-?\d+$/.test(tagged)) return BigInt(tagged);
  }
  return v;
}
