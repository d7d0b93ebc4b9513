/**
 * CRC-32 (IEEE 802.3, reflected polynomial 0xEDB88320, the zlib/PNG/Ethernet variant), table-driven with
 * "slicing-by-8": eight 256-entry tables let the loop consume 8 bytes per iteration, which is about 4x
 * faster in V8 than the classic byte-at-a-time loop. That matters because the WAL checksums every byte it
 * writes and replays (multi-megabyte payloads), on the append path.
 */

import * as zlib from 'node:zlib';

const nativeCrc32 = (zlib as { crc32?: (data: Uint8Array, value: number) => number }).crc32;

const POLYNOMIAL = 0xedb88320;
const SLICES = 8;

/** TABLES[k * 256 + b]: CRC contribution of byte b followed by k zero bytes. Never written after build. */
const TABLES: Uint32Array = buildTables();

function buildTables(): Uint32Array {
  const t = new Uint32Array(SLICES * 256);
  for (let b = 0; b < 256; b++) {
    let c = b;
    for (let bit = 0; bit < 8; bit++) c = c & 1 ? POLYNOMIAL ^ (c >>> 1) : c >>> 1;
    t[b] = c >>> 0;
  }
  for (let k = 1; k < SLICES; k++) {
    for (let b = 0; b < 256; b++) {
      const prev = t[(k - 1) * 256 + b]!;
      t[k * 256 + b] = (t[prev & 0xff]! ^ (prev >>> 8)) >>> 0;
    }
  }
  return t;
}

/**
 * CRC-32 of `data`. Pass the previous result as `seed` to continue a checksum over several chunks:
 * `crc32(b, crc32(a)) === crc32(concat(a, b))`.
 */
export function crc32(data: Uint8Array, seed = 0): number {
  // Node >= 20.15 has zlib's native crc32 (several GB/s, same polynomial and chaining): the WAL checksums
  // every byte it appends, so this is on the insert path.
  if (nativeCrc32 !== undefined && data.length > 0) return nativeCrc32(data, seed);
  return crc32Portable(data, seed);
}

/** The portable slicing-by-8 implementation (older Node 20 releases; pinned to zlib's by the tests). */
export function crc32Portable(data: Uint8Array, seed = 0): number {
  const t = TABLES;
  let crc = ~seed >>> 0;
  let i = 0;
  const n = data.length;
  const n8 = n - (n % 8);
  while (i < n8) {
    const lo = (crc ^ (data[i]! | (data[i + 1]! << 8) | (data[i + 2]! << 16) | (data[i + 3]! << 24))) >>> 0;
    crc =
      t[7 * 256 + (lo & 0xff)]! ^
      t[6 * 256 + ((lo >>> 8) & 0xff)]! ^
      t[5 * 256 + ((lo >>> 16) & 0xff)]! ^
      t[4 * 256 + (lo >>> 24)]! ^
      t[3 * 256 + data[i + 4]!]! ^
      t[2 * 256 + data[i + 5]!]! ^
      t[256 + data[i + 6]!]! ^
      t[data[i + 7]!]!;
    i += 8;
  }
  while (i < n) {
    crc = t[(crc ^ data[i]!) & 0xff]! ^ (crc >>> 8);
    i++;
  }
  return ~crc >>> 0;
}
