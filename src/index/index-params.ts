/**
 * Index parameters as Milvus clients send them (`index_type` plus key/value `params`, numbers often as
 * strings), validated into what FlatIndex / HnswIndex need.
 */

import { quiverError } from '../common/errors.js';
import { type IndexType, type MetricType, METRIC_TYPES } from './types.js';

export interface HnswParams {
  readonly M: number;
  readonly efConstruction: number;
}

export interface IndexParams {
  readonly type: IndexType;
  readonly metric: MetricType;
  readonly M?: number;
  readonly efConstruction?: number;
}

export const HNSW_M_DEFAULT = 16;
export const HNSW_EF_CONSTRUCTION_DEFAULT = 200;
export const HNSW_M_MIN = 2;
export const HNSW_M_MAX = 2048;
export const HNSW_EF_CONSTRUCTION_MAX = 2_147_483_647;

/** Milvus' default metric for AUTOINDEX, used whenever the request names none. */
export const METRIC_DEFAULT: MetricType = 'COSINE';

const SUPPORTED_INDEX_TYPES = 'FLAT, HNSW, AUTOINDEX';

/**
 * @param indexType `index_type` as sent; undefined or empty means AUTOINDEX (which is HNSW here).
 * @param params the remaining key/value params; a JSON `params` entry (as older SDKs send) is merged in,
 *   top-level keys taking precedence.
 */
export function parseIndexParams(indexType: string | undefined, params: Readonly<Record<string, string | number>>): IndexParams {
  const type = parseIndexType(indexType);
  const merged = mergeNestedParams(params);
  const metric = parseMetric(merged['metric_type']);
  if (type === 'FLAT') return { type, metric };
  const M = parseIntParam('M', merged['M'], HNSW_M_DEFAULT, HNSW_M_MIN, HNSW_M_MAX);
  const efConstruction = parseIntParam('efConstruction', merged['efConstruction'], HNSW_EF_CONSTRUCTION_DEFAULT, 1, HNSW_EF_CONSTRUCTION_MAX);
  return { type, metric, M, efConstruction };
}

function parseIndexType(indexType: string | undefined): IndexType {
  const t = (indexType ?? '').trim().toUpperCase();
  switch (t) {
    case '':
    case 'AUTOINDEX':
    case 'HNSW':
      return 'HNSW';
    case 'FLAT':
      return 'FLAT';
    default:
      throw quiverError('IndexNotSupported', `index type ${indexType} is not supported; supported: ${SUPPORTED_INDEX_TYPES}`);
  }
}

/** Case-insensitive metric name; undefined or empty means the default (COSINE). */
export function parseMetric(value: string | number | undefined): MetricType {
  if (value === undefined || (typeof value === 'string' && value.trim() === '')) return METRIC_DEFAULT;
  const upper = String(value).trim().toUpperCase();
  const metric = METRIC_TYPES.find((m) => m === upper);
  if (metric === undefined) {
    throw quiverError('MetricNotFound', `metric type ${String(value)} is not supported; supported: ${METRIC_TYPES.join(', ')}`);
  }
  return metric;
}

/** Checks HnswIndex.build's parameters with the same bounds as parseIndexParams. */
export function validateHnswParams(params: HnswParams): void {
  parseIntParam('M', params.M, HNSW_M_DEFAULT, HNSW_M_MIN, HNSW_M_MAX);
  parseIntParam('efConstruction', params.efConstruction, HNSW_EF_CONSTRUCTION_DEFAULT, 1, HNSW_EF_CONSTRUCTION_MAX);
}

function mergeNestedParams(params: Readonly<Record<string, string | number>>): Readonly<Record<string, string | number>> {
  const nested = params['params'];
  if (typeof nested !== 'string' || nested.trim() === '') return params;
  let parsed: unknown;
  try {
    parsed = JSON.parse(nested);
  } catch (e) {
    throw quiverError('ParameterInvalid', `index params ${nested} are not valid JSON`, e);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw quiverError('ParameterInvalid', `index params ${nested} must be a JSON object`);
  }
  const out: Record<string, string | number> = {};
  for (const [key, value] of Object.entries(parsed)) {
    if (typeof value === 'string' || typeof value === 'number') out[key] = value;
  }
  for (const [key, value] of Object.entries(params)) if (key !== 'params') out[key] = value;
  return out;
}

const INTEGER_TEXT = /^\s*[+-]?\d+\s*$/;

function parseIntParam(name: string, value: string | number | undefined, fallback: number, min: number, max: number): number {
  if (value === undefined) return fallback;
  const n = typeof value === 'number' ? value : INTEGER_TEXT.test(value) ? Number(value) : Number.NaN;
  if (!Number.isInteger(n) || n < min || n > max) {
    throw quiverError('ParameterInvalid', `${name} must be an integer in [${min}, ${max}], got ${JSON.stringify(value)}`);
  }
  return n;
}
