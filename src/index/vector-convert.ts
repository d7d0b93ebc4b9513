/**
 * Element conversions for the vector types stored as raw bytes. Float16 / BFloat16 / Int8 vectors are
 * searched with the float machinery (flat search, HNSW) after widening to float32, as Milvus does for
 * its float indexes over these types.
 */

import type { ByteVectorType } from '../schema/types.js';

const F16_EXP_TABLE = new Float64Array(32);
for (let e = 0; e < 32; e++) F16_EXP_TABLE[e] = Math.pow(2, e - 15);

/** IEEE 754 half (binary16) → number. */
export function f16ToF32(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * frac * Math.pow(2, -24);
  if (exp === 31) return frac === 0 ? sign * Infinity : NaN;
  return sign * F16_EXP_TABLE[exp]! * (1 + frac / 1024);
}

const bf16Scratch = new Float32Array(1);
const bf16Bits = new Uint32Array(bf16Scratch.buffer);

/** bfloat16 (the upper 16 bits of a float32) → number. */
export function bf16ToF32(h: number): number {
  bf16Bits[0] = (h & 0xffff) << 16;
  return bf16Scratch[0]!;
}

/**
 * Widens `rows` rows of a Float16/BFloat16/Int8 byte column to float32 (row-major, dim per row).
 * Little-endian byte order, as the wire and the binlogs carry them.
 */
export function widenToFloat32(vtype: Exclude<ByteVectorType, 'BinaryVector'>, bytes: Uint8Array, dim: number): Float32Array {
  if (vtype === 'Int8Vector') {
    const out = new Float32Array(bytes.length);
    for (let i = 0; i < bytes.length; i++) out[i] = (bytes[i]! << 24) >> 24;
    return out;
  }
  const n = bytes.length >> 1;
  const out = new Float32Array(n);
  const conv = vtype === 'Float16Vector' ? f16ToF32 : bf16ToF32;
  for (let i = 0; i < n; i++) out[i] = conv(bytes[2 * i]! | (bytes[2 * i + 1]! << 8));
  void dim;
  return out;
}

/** The first non-finite element of a Float16/BFloat16 byte row block, or -1. */
export function firstNonFinite(vtype: 'Float16Vector' | 'BFloat16Vector', bytes: Uint8Array): number {
  const n = bytes.length >> 1;
  for (let i = 0; i < n; i++) {
    const h = bytes[2 * i]! | (bytes[2 * i + 1]! << 8);
    // All-ones exponent = Inf or NaN in both formats (5 bits for f16, 8 bits for bf16).
    if (vtype === 'Float16Vector' ? (h & 0x7c00) === 0x7c00 : (h & 0x7f80) === 0x7f80) return i;
  }
  return -1;
}
