/**
 * The vector index contract shared by the exact (FLAT) and approximate (HNSW) indexes. Scores follow Milvus:
 * L2 is the squared Euclidean distance (smaller is better), IP the inner product and COSINE the cosine
 * similarity (larger is better). Rows are offsets into the indexed vector column.
 */

import { quiverError } from '../common/errors.js';

export type MetricType = 'L2' | 'IP' | 'COSINE';
export type IndexType = 'FLAT' | 'HNSW' | 'HNSW_SQ' | 'HNSW_PQ' | 'HNSW_PRQ' | 'IVF_FLAT' | 'IVF_SQ8' | 'IVF_PQ';

export const METRIC_TYPES: readonly MetricType[] = ['L2', 'IP', 'COSINE'];

export interface SearchOptions {
  /** Hits per query (top-k). */
  readonly k: number;
  /** Optional allow-list over row offsets (1 = row may be returned); length = number of indexed rows. */
  readonly allow?: Uint8Array | undefined;
  /**
   * The same allow-list as ascending row offsets, when the caller already has them (a scalar index found the
   * candidate rows): must equal allowedRows(allow). Spares a pass over the whole mask per segment, which is
   * what a selective indexed filter otherwise spends most of its search time on.
   */
  readonly allowRows?: Int32Array | undefined;
  /** HNSW only: size of the dynamic candidate list. The effective ef is max(ef ?? default, k). */
  readonly ef?: number | undefined;
  /** IVF only: clusters probed per query (default 8, clamped to nlist). */
  readonly nprobe?: number | undefined;
  /** HNSW_SQ / HNSW_PQ / HNSW_PRQ with refine: exact re-ranking of refineK * k candidates (default 1). */
  readonly refineK?: number | undefined;
  /**
   * Range search (Milvus semantics). L2 keeps rangeFilter <= d < radius; IP and COSINE keep
   * radius < s <= rangeFilter. At most k hits are returned either way.
   */
  readonly radius?: number | undefined;
  readonly rangeFilter?: number | undefined;
}

/** Hits of one query, best first, at most k of them. */
export interface Hits {
  readonly rows: Int32Array;
  readonly scores: Float32Array;
}

export interface VectorIndex {
  readonly type: IndexType;
  readonly dim: number;
  readonly metric: MetricType;
  /** Rows indexed. */
  readonly size: number;
  search(queries: Float32Array, nq: number, opts: SearchOptions): Hits[];
}

/** HNSW search list size when the request names none; recall@10 stays above 0.95 on clustered data. */
export const DEFAULT_EF = 64;

/** Upper bound on ef, so one request cannot make the native candidate list unbounded. */
export const EF_MAX = 32_768;

/**
 * The accepted [lo, hi) interval of the internal "smaller is better" key (L2: d, IP/COSINE: -s), or
 * undefined when the search is not a range search.
 */
export interface KeyRange {
  readonly lo: number;
  readonly hi: number;
}

/** Checks what every index checks before a search; returns the range in key space. */
export function validateSearch(
  dim: number,
  metric: MetricType,
  size: number,
  queries: Float32Array,
  nq: number,
  opts: SearchOptions,
): KeyRange | undefined {
  if (!Number.isInteger(nq) || nq < 0) throw quiverError('ParameterInvalid', `nq must be a non-negative integer, got ${nq}`);
  if (queries.length !== nq * dim) {
    throw quiverError('DimensionMismatch', `queries hold ${queries.length} floats, expected nq * dim = ${nq} * ${dim} = ${nq * dim}`);
  }
  if (!Number.isInteger(opts.k) || opts.k < 1) {
    throw quiverError('ParameterInvalid', `topk must be an integer >= 1, got ${opts.k}`);
  }
  if (opts.ef !== undefined && (!Number.isInteger(opts.ef) || opts.ef < 1 || opts.ef > EF_MAX)) {
    throw quiverError('ParameterInvalid', `ef must be an integer in [1, ${EF_MAX}], got ${opts.ef}`);
  }
  if (opts.allow !== undefined && opts.allow.length !== size) {
    throw quiverError('ParameterInvalid', `allow-list covers ${opts.allow.length} rows, index holds ${size}`);
  }
  // A row list stands for its mask (the caller built both from the same rows); a longer one cannot.
  if (opts.allowRows !== undefined && (opts.allow === undefined || opts.allowRows.length > size)) {
    throw new Error(`assertion failed: allowRows (${opts.allowRows.length} rows) without an allow-list of ${size} rows`);
  }
  return keyRange(metric, opts.radius, opts.rangeFilter);
}

function keyRange(metric: MetricType, radius: number | undefined, rangeFilter: number | undefined): KeyRange | undefined {
  if (radius === undefined) {
    if (rangeFilter !== undefined) {
      throw quiverError('ParameterInvalid', `range_filter ${rangeFilter} given without radius`);
    }
    return undefined;
  }
  if (Number.isNaN(radius)) throw quiverError('ParameterInvalid', `radius must be a number, got ${radius}`);
  if (rangeFilter !== undefined && Number.isNaN(rangeFilter)) {
    throw quiverError('ParameterInvalid', `range_filter must be a number, got ${rangeFilter}`);
  }
  if (metric === 'L2') {
    if (rangeFilter !== undefined && !(rangeFilter < radius)) {
      throw quiverError('ParameterInvalid', `range_filter ${rangeFilter} must be less than radius ${radius} for metric L2`);
    }
    return { lo: rangeFilter ?? -Infinity, hi: radius };
  }
  if (rangeFilter !== undefined && !(rangeFilter > radius)) {
    throw quiverError('ParameterInvalid', `range_filter ${rangeFilter} must be greater than radius ${radius} for metric ${metric}`);
  }
  return { lo: rangeFilter === undefined ? -Infinity : -rangeFilter, hi: -radius };
}

/**
 * Range bounds are compared against the float32 score that is reported, so a returned score never appears to
 * break the bounds the caller gave.
 */
export function inKeyRange(range: KeyRange, key: number): boolean {
  const f = Math.fround(key);
  return f >= range.lo && f < range.hi;
}

export function emptyHits(): Hits {
  return { rows: new Int32Array(0), scores: new Float32Array(0) };
}
