import { quiverError } from '../common/errors.js';
import type { CollectionRecord } from '../coord/records.js';
import type { QueryNodeApi } from '../querynode/types.js';
import type { FieldSchema, StructSubField } from '../schema/types.js';
import type { SearchHit } from '../segcore/collection-runtime.js';
import { decodePlaceholderGroup } from './proto.js';
import type { TemplateValues } from '../expr/index.js';

/**
 * Embedding-list search over a FloatVector sub-field of an Array of Struct field (`chunks[emb]`): each
 * query is a list of vectors, each row's candidates are the vectors of its struct elements, and the score
 * is Milvus's MAX_SIM family: for every query vector the best match among the row's vectors, summed.
 * MAX_SIM_COSINE / MAX_SIM_IP (and MAX_SIM, read as COSINE) keep the largest similarity, higher is better;
 * MAX_SIM_L2 keeps the smallest squared L2 distance, lower is better. Rows whose struct array is null or
 * empty have no score and are not returned. This is an exact scan of the filtered rows (no index).
 */

/* eslint-disable @typescript-eslint/no-explicit-any */

export type MaxSimMetric = 'MAX_SIM_COSINE' | 'MAX_SIM_IP' | 'MAX_SIM_L2';
const METRICS: Record<string, MaxSimMetric> = {
  MAX_SIM: 'MAX_SIM_COSINE',
  MAX_SIM_COSINE: 'MAX_SIM_COSINE',
  MAX_SIM_IP: 'MAX_SIM_IP',
  MAX_SIM_L2: 'MAX_SIM_L2',
};
const EMB_LIST_PLACEHOLDERS = new Set(['301', 'EmbListFloatVector']);
const TOPK_MAX = 16384;

/** The struct field and sub-field a `struct[sub]` anns_field names, when it names one. */
export function embListTarget(coll: CollectionRecord, annsField: string | undefined): { struct: FieldSchema; sub: StructSubField } | undefined {
  const m = /^([A-Za-z_][A-Za-z0-9_]*)\[([A-Za-z_][A-Za-z0-9_]*)\]$/.exec(annsField ?? '');
  if (!m) return undefined;
  const struct = coll.schema.fields.find((f) => f.dataType === 'ArrayOfStruct' && f.name === m[1]);
  const sub = struct?.structFields?.find((s) => s.name === m[2]);
  if (!struct || !sub) return undefined;
  if (sub.dataType !== 'FloatVector') {
    throw quiverError('ParameterInvalid', `anns field ${annsField} is a ${sub.dataType} sub-field: only FloatVector sub-fields can be searched`);
  }
  return { struct, sub };
}

function dot(a: Float32Array, ao: number, b: Float32Array, dim: number): number {
  let s = 0;
  for (let j = 0; j < dim; j++) s += a[ao + j]! * b[j]!;
  return s;
}

/** MAX_SIM score of one row's vectors against one query's vectors (undefined: the row has no vectors). */
export function maxSim(metric: MaxSimMetric, query: Float32Array, rowVecs: readonly Float32Array[], dim: number): number | undefined {
  if (rowVecs.length === 0) return undefined;
  const nq = query.length / dim;
  const norm = (v: Float32Array, o: number): number => Math.sqrt(dot(v, o, v.subarray(o, o + dim), dim));
  let total = 0;
  for (let q = 0; q < nq; q++) {
    const o = q * dim;
    const qn = metric === 'MAX_SIM_COSINE' ? norm(query, o) : 1;
    let best = metric === 'MAX_SIM_L2' ? Infinity : -Infinity;
    for (const v of rowVecs) {
      if (metric === 'MAX_SIM_L2') {
        let d = 0;
        for (let j = 0; j < dim; j++) {
          const x = query[o + j]! - v[j]!;
          d += x * x;
        }
        if (d < best) best = d;
      } else {
        let s = dot(query, o, v, dim);
        if (metric === 'MAX_SIM_COSINE') {
          const den = qn * norm(v, 0);
          s = den === 0 ? 0 : s / den;
        }
        if (s > best) best = s;
      }
    }
    total += best;
  }
  return total;
}

export interface EmbListEnv {
  readonly query: QueryNodeApi;
  results(coll: CollectionRecord, hits: SearchHit[][], outputFields: readonly string[], topk: number): any;
}

/** Runs one embedding-list Search request (see the file comment). */
export async function embListSearch(
  env: EmbListEnv,
  coll: CollectionRecord,
  req: any,
  target: { struct: FieldSchema; sub: StructSubField },
  sp: Readonly<Record<string, string>>,
  templates: TemplateValues | undefined,
): Promise<any> {
  const path = `${target.struct.name}[${target.sub.name}]`;
  const dim = target.sub.dim!;
  const rawMetric = (sp['metric_type'] ?? '').toUpperCase();
  const metric = rawMetric === '' ? 'MAX_SIM_COSINE' : METRICS[rawMetric];
  if (!metric) {
    throw quiverError(
      'ParameterInvalid',
      `metric type ${sp['metric_type']} cannot search ${path}: embedding lists take ${Object.keys(METRICS).join(', ')}`,
    );
  }
  const int = (k: string, dflt: number, lo: number): number => {
    const v = sp[k];
    if (v === undefined || v === '') return dflt;
    const n = Number(v);
    if (!Number.isInteger(n) || n < lo || n > TOPK_MAX)
      throw quiverError('ParameterInvalid', `${k} ${v} is invalid: must be an integer in [${lo}, ${TOPK_MAX}]`);
    return n;
  };
  const k = int('topk', int('limit', 10, 1), 1);
  const offset = int('offset', 0, 0);
  let nested: Record<string, unknown> = {};
  try {
    nested = sp['params'] ? (JSON.parse(sp['params']) as Record<string, unknown>) : {};
  } catch {
    throw quiverError('ParameterInvalid', `search params is not valid JSON: ${sp['params']}`);
  }
  for (const key of ['iterator', 'radius', 'range_filter', 'group_by_field']) {
    const v = sp[key] ?? nested[key];
    if (v !== undefined && v !== '' && v !== null && String(v).toLowerCase() !== 'false') {
      throw quiverError('ParameterInvalid', `${key === 'iterator' ? 'a search iterator' : key} is not supported with an embedding-list search on ${path}`);
    }
  }
  const group = decodePlaceholderGroup(req.placeholder_group ?? Buffer.alloc(0))[0];
  if (!group || group.values.length === 0) throw quiverError('ParameterInvalid', 'search requires at least one query embedding list');
  if (!EMB_LIST_PLACEHOLDERS.has(group.type)) {
    throw quiverError('ParameterInvalid', `${path} is searched with embedding lists (EmbListFloatVector), got placeholder type ${group.type}`);
  }
  const queries = group.values.map((b, q) => {
    if (b.byteLength === 0 || b.byteLength % (dim * 4) !== 0) {
      throw quiverError('DimensionMismatch', `embedding list ${q} has ${b.byteLength / 4} floats, not a multiple of the dim (${dim}) of ${path}`);
    }
    const v = new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
    const bad = v.findIndex((x) => !Number.isFinite(x));
    if (bad >= 0) throw quiverError('DataInvalid', `embedding list ${q} contains NaN or Inf at position ${bad}`);
    return v;
  });
  const refs = await env.query.query(coll.id, {
    filter: String(req.dsl ?? ''),
    templates,
    partitionNames: req.partition_names ?? [],
    offset: 0,
    limit: undefined,
  });
  const pk = coll.schema.fields.find((f) => f.isPrimaryKey)!;
  const hits = queries.map((query) => {
    const scored: (SearchHit & { key: bigint | string })[] = [];
    for (const ref of refs) {
      const col = ref.chunk.columns.get(target.struct.name);
      if (!col || col.kind !== 'struct' || (col.valid && !col.valid[ref.row])) continue;
      const vecs = (col.data[ref.row] ?? []).map((el) => el[target.sub.name] as Float32Array);
      const score = maxSim(metric, query, vecs, dim);
      if (score === undefined) continue;
      const pkCol = ref.chunk.columns.get(pk.name)!;
      scored.push({ chunk: ref.chunk, row: ref.row, score, key: pkCol.data[ref.row] as bigint | string });
    }
    const sign = metric === 'MAX_SIM_L2' ? 1 : -1;
    scored.sort((a, b) => sign * (a.score - b.score) || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    return scored.slice(offset, offset + k).map(({ chunk, row, score }) => ({ chunk, row, score }));
  });
  return env.results(coll, hits, req.output_fields ?? [], k);
}
