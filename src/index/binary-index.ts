/**
 * Exact search over binary vectors (BIN_FLAT, and BIN_IVF_FLAT, which Quiver serves exactly: a
 * segment is scanned in full, so recall is 1). Milvus metrics, both "smaller is better":
 *   HAMMING = number of differing bits; JACCARD = 1 - |a AND b| / |a OR b| (0 when both are all zeros).
 * Rows are `bytesPerRow` bytes each; popcounts come from a 256-entry table.
 */

import { type Hits, type SearchOptions, emptyHits } from './types.js';

export type BinaryMetric = 'HAMMING' | 'JACCARD';

const POPCOUNT = new Uint8Array(256);
for (let i = 1; i < 256; i++) POPCOUNT[i] = (i & 1) + POPCOUNT[i >> 1]!;

export function hammingDistance(a: Uint8Array, aOff: number, b: Uint8Array, bOff: number, w: number): number {
  let d = 0;
  for (let i = 0; i < w; i++) d += POPCOUNT[a[aOff + i]! ^ b[bOff + i]!]!;
  return d;
}

export function jaccardDistance(a: Uint8Array, aOff: number, b: Uint8Array, bOff: number, w: number): number {
  let inter = 0;
  let union = 0;
  for (let i = 0; i < w; i++) {
    const x = a[aOff + i]!;
    const y = b[bOff + i]!;
    inter += POPCOUNT[x & y]!;
    union += POPCOUNT[x | y]!;
  }
  return union === 0 ? 0 : 1 - inter / union;
}

/**
 * Top-k (smallest distance first, ties by row) of each query. Range search keeps rangeFilter <= d < radius,
 * as for L2.
 */
export function binarySearch(data: Uint8Array, w: number, metric: BinaryMetric, queries: readonly Uint8Array[], opts: SearchOptions): Hits[] {
  const n = data.length / w;
  const dist = metric === 'HAMMING' ? hammingDistance : jaccardDistance;
  const lo = opts.rangeFilter ?? -Infinity;
  const hi = opts.radius ?? Infinity;
  return queries.map((q) => {
    if (n === 0) return emptyHits();
    const rows: number[] = [];
    const scores: number[] = [];
    for (let r = 0; r < n; r++) {
      if (opts.allow && opts.allow[r] === 0) continue;
      const d = Math.fround(dist(q, 0, data, r * w, w));
      if (d < lo || d >= hi) continue;
      rows.push(r);
      scores.push(d);
    }
    const order = rows.map((_, i) => i).sort((a, b) => scores[a]! - scores[b]! || rows[a]! - rows[b]!);
    const k = Math.min(opts.k, order.length);
    const out = { rows: new Int32Array(k), scores: new Float32Array(k) };
    for (let i = 0; i < k; i++) {
      out.rows[i] = rows[order[i]!]!;
      out.scores[i] = scores[order[i]!]!;
    }
    return out;
  });
}
