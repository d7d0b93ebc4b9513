/**
 * CRC-32 (IEEE, the zlib one) over byte views. Node >= 20.15 has a native `zlib.crc32` (several GB/s);
 * older Node 20 releases fall back to a table-driven loop so that files stay readable everywhere.
 */

import * as zlib from 'node:zlib';

type Crc32 = (data: Uint8Array, value: number) => number;

const nativeCrc32 = (zlib as { crc32?: Crc32 }).crc32;

export function crc32(data: ArrayBufferView, value = 0): number {
  // zlib's crc32 returns 0 for a NULL buffer, which is what an empty ArrayBuffer can hand it.
  if (data.byteLength === 0) return value >>> 0;
  const bytes = data instanceof Uint8Array ? data : new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  return nativeCrc32 !== undefined ? nativeCrc32(bytes, value) : crc32Js(bytes, value);
}

const TABLE = ((): Uint32Array => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

/** Exported for the test that pins it to the native implementation. */
export function crc32Js(bytes: Uint8Array, value = 0): number {
  let c = ~value >>> 0;
  for (let i = 0; i < bytes.length; i++) c = (TABLE[(c ^ (bytes[i] ?? 0)) & 0xff] ?? 0) ^ (c >>> 8);
  return ~c >>> 0;
}
