/**
 * MetaKV: the metadata store contract, shaped after etcd's KV API so that an etcd backend can drop in
 * for the embedded SQLite one. Everything is async for that reason, even where a backend is synchronous.
 *
 * Semantics (the same as etcd's, and what `meta-kv.conformance.ts` checks on every backend):
 * - One global revision counter. Every write that changes something (a put, a delete of a present key,
 *   a txn with at least one effective op) bumps it by exactly one; all ops of one txn share that
 *   revision. Reads and no-op writes (deleting an absent key) do not bump it.
 * - Per key: `createRevision` (revision of the put that created it), `modRevision` (revision of the last
 *   put), `version` (number of puts since creation; deleting a key resets it, so version 0 == absent).
 * - Keys are ordered by UTF-8 bytes (code point order), as in SQLite and etcd.
 * - Unlike etcd, a txn may touch one key several times; ops then apply in order (the last put wins and
 *   each put counts towards `version`).
 */

import { quiverError } from '../common/errors.js';

export interface KvEntry {
  readonly key: string;
  readonly value: Uint8Array;
  readonly createRevision: number;
  readonly modRevision: number;
  readonly version: number;
}

export type Compare =
  /** `version == 0` holds exactly when the key is absent. */
  | { readonly key: string; readonly target: 'version'; readonly op: '=='; readonly value: number }
  /** Fails when the key is absent. */
  | { readonly key: string; readonly target: 'value'; readonly op: '=='; readonly value: Uint8Array | string }
  /** An absent key has modRevision 0. */
  | { readonly key: string; readonly target: 'modRevision'; readonly op: '==' | '<' | '>'; readonly value: number };

export type Op =
  | { readonly type: 'put'; readonly key: string; readonly value: Uint8Array | string }
  | { readonly type: 'delete'; readonly key: string }
  | { readonly type: 'deletePrefix'; readonly prefix: string };

export interface TxnResult {
  readonly succeeded: boolean;
  /** The store revision after the txn (unchanged when it wrote nothing). */
  readonly revision: number;
}

export interface ScanOptions {
  /** At most this many entries (a positive integer). */
  readonly limit?: number | undefined;
  /** Only keys strictly greater than this one: pass the last key of a page to get the next page. */
  readonly startAfter?: string | undefined;
}

export interface MetaKV {
  get(key: string): Promise<KvEntry | undefined>;
  /** Returns the revision of the write. */
  put(key: string, value: Uint8Array | string): Promise<number>;
  /** Returns whether the key existed. */
  delete(key: string): Promise<boolean>;
  /** Entries whose key starts with `prefix` ('' = all), sorted by key. */
  scan(prefix: string, opts?: ScanOptions): Promise<KvEntry[]>;
  /** Atomically: if every compare holds, apply `success`, else apply `failure`. */
  txn(compares: readonly Compare[], success: readonly Op[], failure?: readonly Op[]): Promise<TxnResult>;
  revision(): Promise<number>;
  /** Idempotent. Any other call after close rejects with ServiceNotReady. */
  close(): Promise<void>;
}

/** Longest key accepted, in UTF-16 code units; a bound so that a runaway key is caught early. */
export const KEY_LENGTH_MAX = 4096;
/** etcd's default request limit (--max-request-bytes, 1.5 MiB): a value over it would not survive a move to etcd. */
export const VALUE_BYTES_MAX_DEFAULT = 1_572_864;

const encoder = new TextEncoder();

export function toBytes(value: Uint8Array | string): Uint8Array {
  return typeof value === 'string' ? encoder.encode(value) : value;
}

export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.byteLength !== b.byteLength) return false;
  for (let i = 0; i < a.byteLength; i++) if (a[i] !== b[i]) return false;
  return true;
}

// A lone surrogate cannot be stored as UTF-8 (SQLite would silently replace it), so it is refused.
const LONE_SURROGATE = /\p{Cs}/u;

export function validateKey(key: string): void {
  if (typeof key !== 'string' || key.length === 0) {
    throw quiverError('ParameterInvalid', `meta key must be a non-empty string, got ${JSON.stringify(key)}`);
  }
  checkKeyText(key, 'key');
}

/** '' is a valid scan prefix (everything); deletePrefix refuses it, see `validateDeletePrefix`. */
export function validatePrefix(prefix: string): void {
  if (typeof prefix !== 'string') {
    throw quiverError('ParameterInvalid', `meta prefix must be a string, got ${String(prefix)}`);
  }
  checkKeyText(prefix, 'prefix');
}

/** Deleting the '' prefix would wipe the whole store; that is never what a caller meant. */
export function validateDeletePrefix(prefix: string): void {
  validatePrefix(prefix);
  if (prefix.length === 0) throw quiverError('ParameterInvalid', 'meta deletePrefix refuses the empty prefix');
}

function checkKeyText(text: string, what: string): void {
  if (text.length > KEY_LENGTH_MAX) {
    throw quiverError('ParameterInvalid', `meta ${what} ${JSON.stringify(text.slice(0, 64))}... is ${text.length} chars, over ${KEY_LENGTH_MAX}`);
  }
  if (LONE_SURROGATE.test(text)) {
    throw quiverError('ParameterInvalid', `meta ${what} ${JSON.stringify(text)} holds a lone surrogate`);
  }
}

export function validateValue(key: string, value: Uint8Array, valueBytesMax: number): void {
  if (!(value instanceof Uint8Array)) {
    throw quiverError('ParameterInvalid', `meta value for ${JSON.stringify(key)} must be a Uint8Array or string`);
  }
  if (value.byteLength > valueBytesMax) {
    throw quiverError('ParameterTooLarge', `meta value for ${JSON.stringify(key)} is ${value.byteLength} bytes, over ${valueBytesMax}`);
  }
}

export function validateScanOptions(opts: ScanOptions | undefined): void {
  if (opts?.limit !== undefined && (!Number.isSafeInteger(opts.limit) || opts.limit <= 0)) {
    throw quiverError('ParameterInvalid', `meta scan limit must be a positive integer, got ${opts.limit}`);
  }
  if (opts?.startAfter !== undefined) validatePrefix(opts.startAfter);
}

/** Checks every key of a txn before anything applies, so a bad op cannot leave a txn half done. */
export function validateTxn(compares: readonly Compare[], ops: readonly (readonly Op[])[], valueBytesMax: number): void {
  for (const c of compares) {
    validateKey(c.key);
    if (c.target === 'value') {
      if (typeof c.value !== 'string' && !(c.value instanceof Uint8Array)) {
        throw quiverError('ParameterInvalid', `meta txn compare on ${JSON.stringify(c.key)}: value must be bytes or string`);
      }
    } else if (!Number.isSafeInteger(c.value)) {
      throw quiverError('ParameterInvalid', `meta txn compare on ${JSON.stringify(c.key)}: ${c.target} must be an integer, got ${String(c.value)}`);
    }
  }
  for (const list of ops) {
    for (const op of list) {
      switch (op.type) {
        case 'put':
          validateKey(op.key);
          validateValue(op.key, toBytes(op.value), valueBytesMax);
          break;
        case 'delete':
          validateKey(op.key);
          break;
        case 'deletePrefix':
          validateDeletePrefix(op.prefix);
          break;
        default: {
          const never: never = op;
          throw quiverError('ParameterInvalid', `meta txn: unknown op ${JSON.stringify(never)}`);
        }
      }
    }
  }
}

/** Evaluates one compare against the current entry of its key (undefined = absent). */
export function compareHolds(c: Compare, entry: KvEntry | undefined): boolean {
  switch (c.target) {
    case 'version':
      return (entry?.version ?? 0) === c.value;
    case 'value':
      return entry !== undefined && bytesEqual(entry.value, toBytes(c.value));
    case 'modRevision': {
      const actual = entry?.modRevision ?? 0;
      if (c.op === '==') return actual === c.value;
      if (c.op === '<') return actual < c.value;
      return actual > c.value;
    }
    default: {
      const never: never = c;
      throw quiverError('ParameterInvalid', `meta txn: unknown compare ${JSON.stringify(never)}`);
    }
  }
}

export function closedError(backend: string): Error {
  return quiverError('ServiceNotReady', `meta kv (${backend}) is closed`);
}
