/**
 * The naive exact search the fast paths are checked against: every score computed directly, every row
 * sorted (ties by row offset), then the Milvus range and allow-list rules applied literally.
 */

import type { Hits, MetricType, SearchOptions } from './types.js';

export function naiveScore(metric: MetricType, a: Float32Array, ao: number, b: Float32Array, bo: number, dim: number): number {
  let dot = 0;
  let aa = 0;
  let bb = 0;
  let l2 = 0;
  for (let j = 0; j < dim; j++) {
    const x = a[ao + j]!;
    const y = b[bo + j]!;
    dot += x * y;
    aa += x * x;
    bb += y * y;
    l2 += (x - y) * (x - y);
  }
  if (metric === 'L2') return l2;
  if (metric === 'IP') return dot;
  return aa === 0 || bb === 0 ? 0 : dot / Math.sqrt(aa * bb);
}

export function naiveSearch(vectors: Float32Array, dim: number, metric: MetricType, queries: Float32Array, nq: number, opts: SearchOptions): Hits[] {
  const n = vectors.length / dim;
  const out: Hits[] = [];
  for (let qi = 0; qi < nq; qi++) {
    const all: { row: number; score: number }[] = [];
    for (let i = 0; i < n; i++) {
      if (opts.allow !== undefined && opts.allow[i] === 0) continue;
      const score = naiveScore(metric, queries, qi * dim, vectors, i * dim, dim);
      if (opts.radius !== undefined) {
        const f = Math.fround(score);
        if (metric === 'L2') {
          if (!(f < opts.radius && (opts.rangeFilter === undefined || f >= opts.rangeFilter))) continue;
        } else if (!(f > opts.radius && (opts.rangeFilter === undefined || f <= opts.rangeFilter))) continue;
      }
      all.push({ row: i, score });
    }
    all.sort((a, b) => (metric === 'L2' ? a.score - b.score : b.score - a.score) || a.row - b.row);
    const top = all.slice(0, opts.k);
    out.push({ rows: Int32Array.from(top.map((h) => h.row)), scores: Float32Array.from(top.map((h) => h.score)) });
  }
  return out;
}
