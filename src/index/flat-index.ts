/**
 * FLAT: exact search over the vector column, with the per-row norms that L2 and COSINE need computed once at
 * construction instead of on every search.
 */

import { allowedCount, allowedList, exactSearch, rowCount, rowNorms } from './flat-search.js';
import { type Hits, type MetricType, type SearchOptions, type VectorIndex, validateSearch } from './types.js';

export class FlatIndex implements VectorIndex {
  readonly type = 'FLAT' as const;
  readonly dim: number;
  readonly metric: MetricType;
  readonly size: number;
  readonly #vectors: Float32Array;
  readonly #norms: Float64Array | undefined;

  /** Keeps a reference to `vectors` (no copy): the caller must not mutate it while the index is in use. */
  constructor(vectors: Float32Array, dim: number, metric: MetricType) {
    this.size = rowCount(vectors, dim);
    this.dim = dim;
    this.metric = metric;
    this.#vectors = vectors;
    this.#norms = rowNorms(vectors, dim, metric);
  }

  search(queries: Float32Array, nq: number, opts: SearchOptions): Hits[] {
    const range = validateSearch(this.dim, this.metric, this.size, queries, nq, opts);
    const rows = allowedList(opts, allowedCount(opts, this.size));
    return exactSearch(this.#vectors, this.dim, this.metric, this.#norms, queries, nq, opts.k, rows, range);
  }
}
