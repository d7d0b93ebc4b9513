/**
 * Search over the vector columns stored as bytes or sparse rows, dispatched by column kind:
 *   binary         → binary-index.ts (HAMMING / JACCARD); with BIN_IVF_FLAT, lists clustered once per column
 *                    (binary-ivf-index.ts, cached likewise) and `nprobe` of them scanned
 *   float16/bf16/int8 → widened to float32 once per column (cached while the column lives), then the float
 *                    flat search with L2 / IP / COSINE (with an HNSW index the runtime searches the index,
 *                    which index builds make from the same widened vectors: floatVectorsOf)
 *   sparse         → an inverted index built once per column (cached likewise), IP.
 * A flushed segment's BIN_IVF_FLAT / sparse index comes from its index file (typed-index-file.ts) as
 * `loaded`; the in-memory builds serve data that has no file yet.
 * Caches are keyed by the column object: a loaded segment's column never changes, and a growing
 * segment's merged chunk is a new column, so a stale entry is never read (and WeakMap lets it go).
 */

import { quiverError } from '../common/errors.js';
import { bytesPerRow, type ByteVectorType, type Column, type DataType, type SparseRow } from '../schema/types.js';
import { binarySearch, type BinaryMetric } from './binary-index.js';
import { BinaryIvfIndex } from './binary-ivf-index.js';
import { flatSearch } from './flat-search.js';
import { SparseInvertedIndex } from './sparse-index.js';
import type { AnyMetricType } from './typed-index-params.js';
import type { TypedVectorIndex } from './typed-index-file.js';
import type { Hits, MetricType, SearchOptions } from './types.js';
import { widenToFloat32 } from './vector-convert.js';

/** Query vectors of the byte and sparse types: one entry per query. */
export type TypedQueries =
  { readonly kind: 'bytes'; readonly rows: readonly Uint8Array[] } | { readonly kind: 'sparse'; readonly rows: readonly SparseRow[] };

const widened = new WeakMap<object, Float32Array>();
const sparseIndexes = new WeakMap<object, { index: SparseInvertedIndex; dropRatioBuild: number }>();
const binaryIvfIndexes = new WeakMap<object, BinaryIvfIndex>();

/** True when smaller scores are better (L2 and the binary distances). */
export function lowerIsBetter(metric: AnyMetricType): boolean {
  return metric === 'L2' || metric === 'HAMMING' || metric === 'JACCARD';
}

export interface TypedSearchOptions extends SearchOptions {
  readonly dropRatioSearch?: number | undefined;
  readonly dropRatioBuild?: number | undefined;
  /** BIN_IVF_FLAT: the index's nlist (undefined: the field has no BIN_IVF_FLAT index, scan exactly). */
  readonly binaryIvfNlist?: number | undefined;
  /** The segment's loaded index file (typed-index-file.ts): searched as is, never rebuilt. */
  readonly loaded?: TypedVectorIndex | undefined;
}

/** Range search bounds as Milvus orders them: distances keep range_filter <= d < radius, similarities radius < s <= range_filter. */
export function checkRange(metric: AnyMetricType, radius: number | undefined, rangeFilter: number | undefined): void {
  if (radius === undefined) {
    if (rangeFilter !== undefined) throw quiverError('ParameterInvalid', `range_filter ${rangeFilter} given without radius`);
    return;
  }
  if (rangeFilter === undefined) return;
  if (lowerIsBetter(metric) ? !(rangeFilter < radius) : !(rangeFilter > radius)) {
    throw quiverError(
      'ParameterInvalid',
      `range_filter ${rangeFilter} must be ${lowerIsBetter(metric) ? 'less' : 'greater'} than radius ${radius} for metric ${metric}`,
    );
  }
}

export function searchTypedColumn(
  col: Column & { kind: 'bytevec' | 'sparse' },
  metric: AnyMetricType,
  queries: TypedQueries,
  opts: TypedSearchOptions,
): Hits[] {
  checkRange(metric, opts.radius, opts.rangeFilter);
  if (col.kind === 'sparse') {
    if (queries.kind !== 'sparse') throw quiverError('ParameterInvalid', 'a sparse vector field is searched with sparse query vectors');
    if (metric !== 'IP') throw quiverError('ParameterInvalid', `metric type ${metric} is not supported for SparseFloatVector; supported: IP`);
    if (opts.loaded instanceof SparseInvertedIndex) return opts.loaded.search(queries.rows, opts);
    // No file yet (growing data, a segment whose build is pending): an exact inverted index in memory.
    const build = opts.dropRatioBuild ?? 0;
    let cached = sparseIndexes.get(col);
    if (!cached || cached.dropRatioBuild !== build) {
      cached = { index: SparseInvertedIndex.build(col.data, { dropRatioBuild: build }), dropRatioBuild: build };
      sparseIndexes.set(col, cached);
    }
    return cached.index.search(queries.rows, opts);
  }
  if (queries.kind !== 'bytes') throw quiverError('ParameterInvalid', `a ${col.vtype} field is searched with ${col.vtype} query vectors`);
  const w = bytesPerRow(col.vtype, col.dim);
  for (const [i, q] of queries.rows.entries()) {
    if (q.length !== w) {
      throw quiverError('DimensionMismatch', `query vector ${i} has ${q.length} bytes, a ${col.vtype} of dim ${col.dim} has ${w}`);
    }
  }
  if (col.vtype === 'BinaryVector') {
    if (metric !== 'HAMMING' && metric !== 'JACCARD') {
      throw quiverError('ParameterInvalid', `metric type ${metric} is not supported for BinaryVector; supported: HAMMING, JACCARD`);
    }
    if (opts.loaded instanceof BinaryIvfIndex && opts.loaded.metric === metric) return opts.loaded.search(queries.rows, opts);
    if (opts.binaryIvfNlist !== undefined) {
      let index = binaryIvfIndexes.get(col);
      if (!index || index.nlist !== Math.min(opts.binaryIvfNlist, index.size) || index.metric !== metric) {
        index = BinaryIvfIndex.build(col.data, w, metric as BinaryMetric, opts.binaryIvfNlist);
        binaryIvfIndexes.set(col, index);
      }
      return index.search(queries.rows, opts);
    }
    return binarySearch(col.data, w, metric as BinaryMetric, queries.rows, opts);
  }
  if (metric === 'HAMMING' || metric === 'JACCARD') {
    throw quiverError('ParameterInvalid', `metric type ${metric} is not supported for ${col.vtype}; supported: L2, IP, COSINE`);
  }
  const data = floatVectorsOf(col)!;
  const q = widenQueries(col.vtype, queries.rows, col.dim);
  return flatSearch(data, col.dim, metric as MetricType, q, queries.rows.length, opts);
}

/** Field types whose vectors the float indexes (FLAT, HNSW) hold, widened to float32 where needed. */
export function isFloatIndexable(t: DataType): boolean {
  return t === 'FloatVector' || t === 'Float16Vector' || t === 'BFloat16Vector' || t === 'Int8Vector';
}

/**
 * A column's vectors as float32 for the float indexes: FloatVector data as is, Float16 / BFloat16 / Int8
 * widened once per column (cached). Undefined for binary and sparse columns and for lazy FloatVector columns.
 */
export function floatVectorsOf(col: Column | undefined): Float32Array | undefined {
  if (!col) return undefined;
  // A lazy column has no resident rows: callers read it through takeRows or its reader.
  if (col.kind === 'vector') return col.lazy ? undefined : col.data;
  if (col.kind !== 'bytevec' || col.vtype === 'BinaryVector') return undefined;
  let data = widened.get(col);
  if (!data) {
    data = widenToFloat32(col.vtype, col.data, col.dim);
    widened.set(col, data);
  }
  return data;
}

/** Float16 / BFloat16 / Int8 query rows widened to one float32 block (nq * dim). */
export function widenQueries(vtype: Exclude<ByteVectorType, 'BinaryVector'>, rows: readonly Uint8Array[], dim: number): Float32Array {
  const q = new Float32Array(rows.length * dim);
  rows.forEach((r, i) => q.set(widenToFloat32(vtype, r, dim), i * dim));
  return q;
}
