/**
 * Object keys: '/'-separated relative paths, the common ground of S3 keys and local file paths.
 * Validation is strict so that a key always maps to one file under the store root and never escapes
 * it: no '', '.' or '..' segments, no leading '/', no backslash or NUL, bounded lengths.
 */

import { quiverError } from '../common/errors.js';

/** S3's limit on a key, in UTF-8 bytes. */
export const OBJECT_KEY_BYTES_MAX = 1024;
/** Most file systems' limit on one path component, in bytes. */
export const OBJECT_KEY_SEGMENT_BYTES_MAX = 255;
/** First segment reserved by LocalObjectStore for in-flight writes. */
export const RESERVED_TMP_SEGMENT = '.quiver-tmp';

const encoder = new TextEncoder();
const BAD_CHARS = /[\\\0]|\p{Cs}/u;

export function validateObjectKey(key: string): void {
  if (typeof key !== 'string' || key.length === 0) {
    throw quiverError('ParameterInvalid', `object key must be a non-empty string, got ${JSON.stringify(key)}`);
  }
  checkPath(key, 'key');
  if (key.endsWith('/')) {
    throw quiverError('ParameterInvalid', `object key ${JSON.stringify(key)} must not end with '/'`);
  }
}

/**
 * A list/delete prefix is a key prefix in the S3 sense (plain string prefix, '' = everything); it may end
 * in '/' or in the middle of a segment, but its complete segments follow the key rules.
 */
export function validateObjectPrefix(prefix: string): void {
  if (typeof prefix !== 'string') {
    throw quiverError('ParameterInvalid', `object prefix must be a string, got ${String(prefix)}`);
  }
  if (prefix.length === 0) return;
  if (prefix.endsWith('/')) checkPath(prefix.slice(0, -1), 'prefix', prefix, false);
  else checkPath(prefix, 'prefix', prefix, true);
}

/** `lastPartial`: the last segment of a prefix may be the start of a name ('.' could start '.x'). */
function checkPath(path: string, what: string, shown = path, lastPartial = false): void {
  const bytes = encoder.encode(path).byteLength;
  if (bytes > OBJECT_KEY_BYTES_MAX) {
    throw quiverError('ParameterInvalid', `object ${what} ${JSON.stringify(shown.slice(0, 80))}... is ${bytes} bytes, over ${OBJECT_KEY_BYTES_MAX}`);
  }
  if (BAD_CHARS.test(path)) {
    throw quiverError('ParameterInvalid', `object ${what} ${JSON.stringify(shown)} holds a backslash, NUL or lone surrogate`);
  }
  if (path.startsWith('/')) {
    throw quiverError('ParameterInvalid', `object ${what} ${JSON.stringify(shown)} must be relative`);
  }
  const segments = path.split('/');
  for (const [i, s] of segments.entries()) {
    const partial = lastPartial && i === segments.length - 1;
    if (s === '' || (!partial && (s === '.' || s === '..'))) {
      throw quiverError('ParameterInvalid', `object ${what} ${JSON.stringify(shown)} has an empty, '.' or '..' segment`);
    }
    if (encoder.encode(s).byteLength > OBJECT_KEY_SEGMENT_BYTES_MAX) {
      throw quiverError('ParameterInvalid', `object ${what} ${JSON.stringify(shown)} has a segment over ${OBJECT_KEY_SEGMENT_BYTES_MAX} bytes`);
    }
  }
  if (segments[0] === RESERVED_TMP_SEGMENT && !(lastPartial && segments.length === 1)) {
    throw quiverError('ParameterInvalid', `object ${what} ${JSON.stringify(shown)} uses the reserved ${RESERVED_TMP_SEGMENT} directory`);
  }
}

/**
 * Keys are listed in UTF-8 byte order (code point order), as S3 lists them. JavaScript's `<` compares
 * UTF-16 code units, which disagrees above U+FFFF, hence this comparator.
 */
export function compareObjectKeys(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x !== y) return rank(x) - rank(y);
  }
  return a.length - b.length;
}

function rank(c: number): number {
  if (c >= 0xd800 && c <= 0xdfff) return c + 0x2000;
  if (c >= 0xe000) return c - 0x800;
  return c;
}

/** getRange arguments: non-negative safe integers. */
export function validateRange(key: string, offset: number, length: number): void {
  if (!Number.isSafeInteger(offset) || offset < 0 || !Number.isSafeInteger(length) || length < 0) {
    throw quiverError('ParameterInvalid', `object ${JSON.stringify(key)}: bad range offset=${offset} length=${length}`);
  }
}
