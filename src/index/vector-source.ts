/**
 * Where an index finds the float rows of its column for the exact paths (small segments, selective
 * filters) and refine: a resident Float32Array, or a reader that fetches rows from the binlog on demand
 * (the query node's choice when the index is quantized, see storage/lazy-vector-column.ts).
 */

import type { VectorRowReader } from '../schema/types.js';
import { exactSearch, rowCount } from './flat-search.js';
import type { Hits, KeyRange, MetricType } from './types.js';

export type VectorSource = Float32Array | VectorRowReader;

export function sourceRowCount(src: VectorSource, dim: number): number {
  return src instanceof Float32Array ? rowCount(src, dim) : src.rows;
}

/**
 * exactSearch over `rows` (ascending offsets; undefined = every row) of a source. A reader is asked for
 * exactly those rows, so a refine of k * refine_k candidates reads k * refine_k rows.
 */
export function exactOver(
  src: VectorSource,
  dim: number,
  metric: MetricType,
  queries: Float32Array,
  nq: number,
  k: number,
  rows: Int32Array | undefined,
  range: KeyRange | undefined,
): Hits[] {
  if (src instanceof Float32Array) return exactSearch(src, dim, metric, undefined, queries, nq, k, rows, range);
  const ids = rows ?? Int32Array.from({ length: src.rows }, (_, i) => i);
  const block = src.gather(ids);
  // Positions in `block` are positions in `ids`; ascending ids keep exactSearch's ties-by-row order.
  return exactSearch(block, dim, metric, undefined, queries, nq, k, undefined, range).map((h) => ({
    rows: h.rows.map((p) => ids[p]!),
    scores: h.scores,
  }));
}
