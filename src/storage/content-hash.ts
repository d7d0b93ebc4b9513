/**
 * SHA-256 of bytes a writer holds in memory, recorded with the file (Binlog.sha256,
 * SegmentIndexFile.filesSha256) so that an export names its blob without reading the file again.
 * Large inputs go through WebCrypto's digest, which Node runs on its libuv thread pool: a 100 MB
 * binlog costs the event loop a copy, not the ~60 ms of hashing. Small inputs hash inline (a pool
 * round trip would cost more than the hash).
 */

import { createHash, webcrypto } from 'node:crypto';

/** Below this many bytes the hash runs inline. */
const INLINE_BYTES_MAX = 64 * 1024;

export async function sha256Of(bytes: Uint8Array): Promise<string> {
  if (bytes.byteLength <= INLINE_BYTES_MAX) return createHash('sha256').update(bytes).digest('hex');
  const digest = await webcrypto.subtle.digest('SHA-256', bytes);
  return Buffer.from(digest).toString('hex');
}

/** Hex SHA-256 as recorded: 64 lowercase hex digits. */
export function isSha256Hex(s: unknown): s is string {
  return typeof s === 'string' && /^[0-9a-f]{64}$/.test(s);
}
