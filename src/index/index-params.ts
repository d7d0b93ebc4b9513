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
  /** HNSW_SQ: how graph vectors are coded. */
  readonly sqType?: SqType;
  /** HNSW_SQ: re-rank candidates from the exact vectors (search param refine_k). */
  readonly refine?: boolean;
  readonly refineType?: RefineType;
  /** IVF_*: number of k-means clusters. */
  readonly nlist?: number;
  /** IVF_PQ, HNSW_PQ, HNSW_PRQ: sub-quantizers (must divide dim) and bits per code. */
  readonly m?: number;
  readonly nbits?: number;
  /** HNSW_PRQ: residual quantization stages. */
  readonly nrq?: number;
}

export type SqType = 'SQ8' | 'FP16' | 'BF16';
export type RefineType = SqType | 'FP32';
/** Precision order: refine_type must be more precise than sq_type (Milvus' rule). */
const PRECISION: Readonly<Record<RefineType, number>> = { SQ8: 1, BF16: 2, FP16: 3, FP32: 4 };
export const SQ_TYPES: readonly SqType[] = ['SQ8', 'FP16', 'BF16'];
export const REFINE_TYPES: readonly RefineType[] = ['SQ8', 'FP16', 'BF16', 'FP32'];
export const IVF_NLIST_DEFAULT = 128;
export const IVF_NLIST_MIN = 1;
export const IVF_NLIST_MAX = 65_536;
export const IVF_NPROBE_DEFAULT = 8;
export const IVF_PQ_NBITS_DEFAULT = 8;
export const IVF_PQ_NBITS_MIN = 1;
/** Codebooks of 2^nbits centroids per sub-quantizer are trained in JS; 16 bits is already 65k centroids. */
export const IVF_PQ_NBITS_MAX = 16;

/** HNSW_PQ / HNSW_PRQ (Milvus's defaults: m 32 for PQ; m 2 and nrq 2 for PRQ; nbits 8). */
export const HNSW_PQ_M_DEFAULT = 32;
export const HNSW_PRQ_M_DEFAULT = 2;
export const HNSW_PRQ_NRQ_DEFAULT = 2;
export const HNSW_PRQ_NRQ_MAX = 16;
/** Codes of up to 8 bits take one byte, up to 16 two (Milvus allows up to 24 bits, trained natively). */
export const HNSW_PQ_NBITS_MAX = 16;

export const HNSW_M_DEFAULT = 16;
export const HNSW_EF_CONSTRUCTION_DEFAULT = 200;
export const HNSW_M_MIN = 2;
export const HNSW_M_MAX = 2048;
export const HNSW_EF_CONSTRUCTION_MAX = 2_147_483_647;

/** Milvus' default metric for AUTOINDEX, used whenever the request names none. */
export const METRIC_DEFAULT: MetricType = 'COSINE';

const SUPPORTED_INDEX_TYPES = 'FLAT, HNSW, HNSW_SQ, HNSW_PQ, HNSW_PRQ, IVF_FLAT, IVF_SQ8, IVF_PQ, AUTOINDEX';

/**
 * @param indexType `index_type` as sent; undefined or empty means AUTOINDEX (which is HNSW here).
 * @param params the remaining key/value params; a JSON `params` entry (as older SDKs send) is merged in,
 *   top-level keys taking precedence.
 */
export function parseIndexParams(indexType: string | undefined, params: Readonly<Record<string, string | number>>): IndexParams {
  const type = parseIndexType(indexType);
  const merged = mergeNestedParams(params);
  const metric = parseMetric(merged['metric_type']);
  switch (type) {
    case 'FLAT':
      return { type, metric };
    case 'HNSW':
    case 'HNSW_SQ': {
      const M = parseIntParam('M', merged['M'], HNSW_M_DEFAULT, HNSW_M_MIN, HNSW_M_MAX);
      const efConstruction = parseIntParam('efConstruction', merged['efConstruction'], HNSW_EF_CONSTRUCTION_DEFAULT, 1, HNSW_EF_CONSTRUCTION_MAX);
      if (type === 'HNSW') return { type, metric, M, efConstruction };
      const sqType = parseEnumParam('sq_type', merged['sq_type'], SQ_TYPES, 'SQ8');
      const refine = parseBoolParam('refine', merged['refine'], false);
      const refineType = parseEnumParam('refine_type', merged['refine_type'], REFINE_TYPES, 'FP32');
      if (refine && PRECISION[refineType] <= PRECISION[sqType]) {
        throw quiverError(
          'ParameterInvalid',
          `refine_type ${refineType} must be more precise than sq_type ${sqType}; valid: ${REFINE_TYPES.filter((t) => PRECISION[t] > PRECISION[sqType]).join(', ')}`,
        );
      }
      return { type, metric, M, efConstruction, sqType, refine, refineType };
    }
    case 'HNSW_PQ':
    case 'HNSW_PRQ': {
      const M = parseIntParam('M', merged['M'], HNSW_M_DEFAULT, HNSW_M_MIN, HNSW_M_MAX);
      const efConstruction = parseIntParam('efConstruction', merged['efConstruction'], HNSW_EF_CONSTRUCTION_DEFAULT, 1, HNSW_EF_CONSTRUCTION_MAX);
      const m = parseIntParam('m', merged['m'], type === 'HNSW_PQ' ? HNSW_PQ_M_DEFAULT : HNSW_PRQ_M_DEFAULT, 1, 65_536);
      const nbits = parseIntParam('nbits', merged['nbits'], IVF_PQ_NBITS_DEFAULT, 1, HNSW_PQ_NBITS_MAX);
      const refine = parseBoolParam('refine', merged['refine'], false);
      // Every refine type is more precise than PQ codes; refine re-ranks from the float column.
      const refineType = parseEnumParam('refine_type', merged['refine_type'], REFINE_TYPES, 'FP32');
      if (type === 'HNSW_PQ') return { type, metric, M, efConstruction, m, nbits, refine, refineType };
      const nrq = parseIntParam('nrq', merged['nrq'], HNSW_PRQ_NRQ_DEFAULT, 1, HNSW_PRQ_NRQ_MAX);
      return { type, metric, M, efConstruction, m, nbits, nrq, refine, refineType };
    }
    case 'IVF_FLAT':
    case 'IVF_SQ8':
    case 'IVF_PQ': {
      const nlist = parseIntParam('nlist', merged['nlist'], IVF_NLIST_DEFAULT, IVF_NLIST_MIN, IVF_NLIST_MAX);
      if (type !== 'IVF_PQ') return { type, metric, nlist };
      const nbits = parseIntParam('nbits', merged['nbits'], IVF_PQ_NBITS_DEFAULT, IVF_PQ_NBITS_MIN, IVF_PQ_NBITS_MAX);
      if (merged['m'] === undefined)
        throw quiverError('ParameterInvalid', 'IVF_PQ needs m, the number of sub-quantizers: an integer >= 1 that divides the dimension');
      const m = parseIntParam('m', merged['m'], 0, 1, 65_536);
      return { type, metric, nlist, m, nbits };
    }
    default: {
      const never: never = type;
      throw quiverError('IndexNotSupported', `index type ${String(never)} is not supported; supported: ${SUPPORTED_INDEX_TYPES}`);
    }
  }
}

/** What an index record keeps to rebuild the same index later (type and metric are stored beside it). */
export function buildParamsOf(p: IndexParams): Omit<IndexParams, 'type' | 'metric'> {
  const { type: _type, metric: _metric, ...rest } = p;
  return rest;
}

/** Checks the parameters that depend on the field (IVF_PQ's m must divide dim). */
export function validateForDim(params: Pick<IndexParams, 'm'> & { readonly type: string }, dim: number): void {
  const pq = params.type === 'IVF_PQ' || params.type === 'HNSW_PQ' || params.type === 'HNSW_PRQ';
  if (pq && params.m !== undefined && dim % params.m !== 0) {
    throw quiverError('ParameterInvalid', `${params.type} m ${params.m} must divide the dimension ${dim}; valid: ${divisors(dim).join(', ')}`);
  }
}

function divisors(n: number): number[] {
  const out: number[] = [];
  for (let d = 1; d <= n; d++) if (n % d === 0) out.push(d);
  return out;
}

function parseEnumParam<T extends string>(name: string, value: string | number | undefined, valid: readonly T[], fallback: T): T {
  if (value === undefined || (typeof value === 'string' && value.trim() === '')) return fallback;
  const upper = String(value).trim().toUpperCase();
  const found = valid.find((v) => v === upper);
  if (found === undefined) throw quiverError('ParameterInvalid', `${name} must be one of ${valid.join(', ')}, got ${JSON.stringify(value)}`);
  return found;
}

function parseBoolParam(name: string, value: string | number | undefined, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  const text = String(value).trim().toLowerCase();
  if (text === 'true' || text === '1') return true;
  if (text === 'false' || text === '0') return false;
  throw quiverError('ParameterInvalid', `${name} must be true or false, got ${JSON.stringify(value)}`);
}

function parseIndexType(indexType: string | undefined): IndexType {
  const t = (indexType ?? '').trim().toUpperCase();
  switch (t) {
    case '':
    case 'AUTOINDEX':
    case 'HNSW':
      return 'HNSW';
    case 'FLAT':
    case 'HNSW_SQ':
    case 'HNSW_PQ':
    case 'HNSW_PRQ':
    case 'IVF_FLAT':
    case 'IVF_SQ8':
    case 'IVF_PQ':
      return t;
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
