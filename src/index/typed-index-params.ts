/**
 * Index and search parameters for the vector types beyond FloatVector. Binary vectors take BIN_FLAT /
 * BIN_IVF_FLAT with HAMMING or JACCARD; sparse vectors take SPARSE_INVERTED_INDEX / SPARSE_WAND with IP.
 * Float16 / BFloat16 / Int8 vectors use the float index types and metrics (parseIndexParams).
 */

import { quiverError } from '../common/errors.js';
import type { DataType } from '../schema/types.js';
import { parseIndexParams, type IndexParams } from './index-params.js';
import type { ScalarIndexType } from './scalar/scalar-index-params.js';
import type { IndexType, MetricType } from './types.js';

export type BinaryIndexType = 'BIN_FLAT' | 'BIN_IVF_FLAT';
export type SparseIndexType = 'SPARSE_INVERTED_INDEX' | 'SPARSE_WAND';
/** Every index type a vector field can have. */
export type AnyIndexType = IndexType | BinaryIndexType | SparseIndexType | ScalarIndexType;
/** Every metric a vector field can have. */
/** BM25: a BM25 function output field (text/bm25.ts scores it with collection statistics). */
export type AnyMetricType = MetricType | 'HAMMING' | 'JACCARD' | 'BM25';

export const BINARY_METRICS: readonly AnyMetricType[] = ['HAMMING', 'JACCARD'];
export const SPARSE_METRICS: readonly AnyMetricType[] = ['IP', 'BM25'];
export const FLOAT_METRICS: readonly AnyMetricType[] = ['L2', 'IP', 'COSINE'];

export interface TypedIndexParams extends Omit<IndexParams, 'type' | 'metric'> {
  readonly type: AnyIndexType;
  readonly metric: AnyMetricType;
  /** IVF_* / BIN_IVF_FLAT cluster count (BIN_IVF_FLAT: kept for describe; its search is exact). */
  readonly nlist?: number | undefined;
  /** Sparse: fraction of each row's smallest values dropped at build. */
  readonly dropRatioBuild?: number | undefined;
}

/** Metrics a field of this type can be searched with. */
export function metricsFor(t: DataType): readonly AnyMetricType[] {
  if (t === 'BinaryVector') return BINARY_METRICS;
  if (t === 'SparseFloatVector') return SPARSE_METRICS;
  return FLOAT_METRICS;
}

/** The metric a search or index uses when none is named: Milvus' AUTOINDEX defaults per type. */
export function defaultMetricFor(t: DataType): AnyMetricType {
  if (t === 'BinaryVector') return 'HAMMING';
  if (t === 'SparseFloatVector') return 'IP';
  return 'COSINE';
}

/** Checks a metric name against a field type; undefined/empty → undefined (use the index's or the default). */
export function checkMetricFor(t: DataType, field: string, raw: string | number | undefined): AnyMetricType | undefined {
  if (raw === undefined || String(raw).trim() === '') return undefined;
  const m = String(raw).trim().toUpperCase();
  const ok = metricsFor(t);
  if (!(ok as readonly string[]).includes(m)) {
    throw quiverError('ParameterInvalid', `metric type ${String(raw)} is not supported for ${t} field ${field}; supported: ${ok.join(', ')}`);
  }
  return m as AnyMetricType;
}

function num(params: Readonly<Record<string, string | number>>, key: string): number | undefined {
  const v = params[key];
  if (v === undefined || v === '') return undefined;
  const n = Number(v);
  if (!Number.isFinite(n)) throw quiverError('ParameterInvalid', `index param ${key} ${String(v)} is not a number`);
  return n;
}

/** Parses `index_type` + params for a field of type `t` (the dispatch point for every vector type). */
export function parseFieldIndexParams(
  t: DataType,
  field: string,
  indexType: string | undefined,
  params: Readonly<Record<string, string | number>>,
): TypedIndexParams {
  const it = (indexType ?? '').trim().toUpperCase();
  if (t === 'BinaryVector') {
    const type: BinaryIndexType | undefined =
      it === '' || it === 'AUTOINDEX' || it === 'BIN_FLAT' ? 'BIN_FLAT' : it === 'BIN_IVF_FLAT' ? 'BIN_IVF_FLAT' : undefined;
    if (!type)
      throw quiverError(
        'IndexNotSupported',
        `index type ${indexType} is not supported for BinaryVector field ${field}; supported: BIN_FLAT, BIN_IVF_FLAT, AUTOINDEX`,
      );
    const metric = checkMetricFor(t, field, params['metric_type']) ?? 'HAMMING';
    let nlist: number | undefined;
    if (type === 'BIN_IVF_FLAT') {
      nlist = num(params, 'nlist') ?? 128;
      if (!Number.isInteger(nlist) || nlist < 1 || nlist > 65536)
        throw quiverError('ParameterInvalid', `nlist ${nlist} is invalid: must be an integer in [1, 65536]`);
    }
    return { type, metric, nlist };
  }
  if (t === 'SparseFloatVector') {
    const type: SparseIndexType | undefined =
      it === '' || it === 'AUTOINDEX' || it === 'SPARSE_INVERTED_INDEX' ? 'SPARSE_INVERTED_INDEX' : it === 'SPARSE_WAND' ? 'SPARSE_WAND' : undefined;
    if (!type) {
      throw quiverError(
        'IndexNotSupported',
        `index type ${indexType} is not supported for SparseFloatVector field ${field}; supported: SPARSE_INVERTED_INDEX, SPARSE_WAND, AUTOINDEX`,
      );
    }
    const metric = checkMetricFor(t, field, params['metric_type']) ?? 'IP';
    const dropRatioBuild = num(params, 'drop_ratio_build') ?? 0;
    if (dropRatioBuild < 0 || dropRatioBuild >= 1)
      throw quiverError('ParameterInvalid', `drop_ratio_build ${dropRatioBuild} is invalid: must be in [0, 1)`);
    return { type, metric, dropRatioBuild };
  }
  if (it.startsWith('BIN_') || it.startsWith('SPARSE_')) {
    throw quiverError('IndexNotSupported', `index type ${indexType} is not supported for ${t} field ${field}; supported: FLAT, HNSW, AUTOINDEX`);
  }
  checkMetricFor(t, field, params['metric_type']);
  if (t === 'Int8Vector' && it !== '' && it !== 'AUTOINDEX' && it !== 'HNSW') {
    throw quiverError('IndexNotSupported', `index type ${indexType} is not supported for Int8Vector field ${field}; supported: HNSW, AUTOINDEX`);
  }
  return parseIndexParams(indexType, params);
}

/** What an index record keeps for its builds: the validated parameters without type and metric. */
export function buildParamsOfTyped(p: TypedIndexParams): Omit<TypedIndexParams, 'type' | 'metric'> {
  const { type: _type, metric: _metric, ...rest } = p;
  return rest;
}

/** Search-time params per index: nprobe (BIN_IVF_FLAT), drop_ratio_search (sparse). Returns the sparse drop ratio. */
export function checkTypedSearchParams(
  indexType: AnyIndexType | undefined,
  get: (k: string) => string | undefined,
): { dropRatioSearch?: number | undefined } {
  const n = (k: string): number | undefined => {
    const v = get(k);
    if (v === undefined || v === '') return undefined;
    const x = Number(v);
    if (!Number.isFinite(x)) throw quiverError('ParameterInvalid', `search param ${k} ${v} is not a number`);
    return x;
  };
  const nprobe = n('nprobe');
  if (nprobe !== undefined && (!Number.isInteger(nprobe) || nprobe < 1 || nprobe > 65536)) {
    throw quiverError('ParameterInvalid', `nprobe ${nprobe} is invalid: must be an integer in [1, 65536]`);
  }
  const drop = n('drop_ratio_search');
  if (drop !== undefined && (drop < 0 || drop >= 1)) throw quiverError('ParameterInvalid', `drop_ratio_search ${drop} is invalid: must be in [0, 1)`);
  void indexType;
  return { dropRatioSearch: drop };
}

/** Narrows a metric to the float metrics (for code paths that only float indexes reach: HNSW builds and loads). */
export function floatMetric(m: AnyMetricType | ''): MetricType {
  if (m === 'HAMMING' || m === 'JACCARD' || m === 'BM25' || m === '')
    throw quiverError('ParameterInvalid', `metric type ${m} is not a float vector metric`);
  return m;
}
