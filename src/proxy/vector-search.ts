import { refuseStructPath } from './struct-schema.js';
import { quiverError } from '../common/errors.js';
import { NPROBE_MAX, REFINE_K_MAX } from '../index/index.js';
import type { CollectionRecord, IndexRecord } from '../coord/records.js';
import type { TemplateValues } from '../expr/index.js';
import { checkMetricFor, checkTypedSearchParams, type AnyMetricType } from '../index/typed-index-params.js';
import type { TypedQueries } from '../index/typed-search.js';
import type { QueryNodeApi, SearchParams } from '../querynode/types.js';
import { bytesPerRow, isByteVectorType, isVectorType, type Column, type FieldSchema, type SparseRow } from '../schema/types.js';
import { gatherColumn, type SearchHit } from '../segcore/collection-runtime.js';
import { columnToFieldData } from './field-data.js';
import { decodePlaceholderGroup } from './proto.js';
import { parseSparseRow } from './vector-data.js';
import { bm25QueriesOf, checkBm25Search } from './text-service.js';

/**
 * Search request parsing for every vector type, search by primary keys (`ids`), and grouping search
 * (`group_by_field`, `group_size`, `strict_group_size`). The same parser serves each sub-request of a
 * hybrid search (hybrid-search.ts). Bounds are Milvus's: topk in [1, 16384], topk + offset <= 16384,
 * and for grouping (topk + offset) * group_size <= 16384.
 */

/* eslint-disable @typescript-eslint/no-explicit-any */

export const TOPK_LIMIT = 16384;
export const GROUP_SIZE_MAX = 1024;
/** Grouping ranks at most this many candidates per query (the nearest ones). */
export const GROUP_CANDIDATES_MAX = 100_000;

/** What the proxy's output helpers provide (they live with the other handlers). */
export interface SearchEnv {
  readonly query: QueryNodeApi;
  indexes(collectionId: number): readonly IndexRecord[];
  /** Builds the SearchResults reply for hits (already cut to the page). */
  results(coll: CollectionRecord, hits: SearchHit[][], outputFields: readonly string[], topk: number): any;
}

export interface GroupBy {
  readonly field: FieldSchema;
  readonly size: number;
  readonly strict: boolean;
}

export interface ParsedSearch {
  readonly params: SearchParams;
  readonly groupBy?: GroupBy | undefined;
  readonly roundDecimal: number;
  /** Primary keys to search with, in request order (search by ids); the vectors are looked up first. */
  readonly ids?: readonly (bigint | string)[] | undefined;
}

export function kvList(list: any[] | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const kv of list ?? []) if (kv && typeof kv.key === 'string') out[kv.key] = String(kv.value ?? '');
  return out;
}

export function intParam(v: string | undefined, name: string, def: number, lo: number, hi: number): number {
  if (v === undefined || v === '') return def;
  const n = Number(v);
  if (!Number.isInteger(n) || n < lo || n > hi) throw quiverError('ParameterInvalid', `${name} ${v} is invalid: must be an integer in [${lo}, ${hi}]`);
  return n;
}

const PLACEHOLDER_NUM: Record<string, string> = {
  '100': 'BinaryVector',
  '101': 'FloatVector',
  '102': 'Float16Vector',
  '103': 'BFloat16Vector',
  '104': 'SparseFloatVector',
  '105': 'Int8Vector',
};

/** Decodes the placeholder group into query vectors of the field's type, checking type and dims. */
export function queriesOf(field: FieldSchema, placeholder: Uint8Array): { nq: number; queries: Float32Array; typed?: TypedQueries } {
  const group = decodePlaceholderGroup(placeholder)[0];
  if (!group || group.values.length === 0) throw quiverError('ParameterInvalid', 'search requires at least one query vector');
  const type = PLACEHOLDER_NUM[group.type] ?? group.type;
  if (type !== field.dataType) {
    throw quiverError('ParameterInvalid', `query vectors of type ${type} cannot search field ${field.name}, which is a ${field.dataType}`);
  }
  const nq = group.values.length;
  if (field.dataType === 'SparseFloatVector') {
    const rows = group.values.map((b, q) => parseSparseRow(b, `${q} of the query`));
    return { nq, queries: new Float32Array(0), typed: { kind: 'sparse', rows } };
  }
  const dim = field.dim!;
  if (isByteVectorType(field.dataType)) {
    const w = bytesPerRow(field.dataType, dim);
    const rows = group.values.map((b, q) => {
      if (b.byteLength !== w) {
        const got = field.dataType === 'BinaryVector' ? b.byteLength * 8 : field.dataType === 'Int8Vector' ? b.byteLength : b.byteLength / 2;
        throw quiverError(
          'DimensionMismatch',
          `the dim (${got}) of query vector ${q} is not equal to the dim (${dim}) of ${field.dataType} field ${field.name}`,
        );
      }
      return Uint8Array.from(b);
    });
    return { nq, queries: new Float32Array(0), typed: { kind: 'bytes', rows } };
  }
  const queries = new Float32Array(nq * dim);
  group.values.forEach((b, q) => {
    if (b.byteLength !== dim * 4) {
      throw quiverError('DimensionMismatch', `the dim (${b.byteLength / 4}) of query vector ${q} is not equal to the dim (${dim}) of field ${field.name}`);
    }
    const v = new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
    for (let i = 0; i < dim; i++) {
      if (!Number.isFinite(v[i]!)) throw quiverError('DataInvalid', `query vector ${q} contains NaN or Inf at position ${i}`);
    }
    queries.set(v, q * dim);
  });
  return { nq, queries };
}

const GROUPABLE = new Set(['Bool', 'Int8', 'Int16', 'Int32', 'Int64', 'VarChar']);

/** Parses one SearchRequest (a plain search or one sub-request of a hybrid search). */
function boundedInt(name: string, v: number | undefined, max: number): number | undefined {
  if (v !== undefined && (!Number.isInteger(v) || v < 1 || v > max)) {
    throw quiverError('ParameterInvalid', `${name} ${v} is invalid: must be an integer in [1, ${max}]`);
  }
  return v;
}

export function parseSearch(
  coll: CollectionRecord,
  req: any,
  indexes: readonly IndexRecord[],
  templates: (m: any) => TemplateValues | undefined,
  opts: { hybridSub?: boolean } = {},
): ParsedSearch {
  const sp = kvList(req.search_params);
  let params: Record<string, unknown> = {};
  if (sp['params']) {
    try {
      params = JSON.parse(sp['params']) as Record<string, unknown>;
    } catch {
      throw quiverError('ParameterInvalid', `search params is not valid JSON: ${sp['params']}`);
    }
  }
  const get = (k: string): string | undefined => (params[k] !== undefined ? String(params[k]) : sp[k]);
  const vectorFields = coll.schema.fields.filter((f) => isVectorType(f.dataType));
  const annsName = sp['anns_field'];
  let field: FieldSchema | undefined;
  if (annsName) {
    refuseStructPath(coll.schema.fields, annsName, 'this search');
    field = vectorFields.find((f) => f.name === annsName);
    if (!field) throw quiverError('FieldNotFound', `anns field ${annsName} is not a vector field of collection ${coll.name}`);
  } else {
    if (vectorFields.length > 1)
      throw quiverError('ParameterInvalid', `collection ${coll.name} has ${vectorFields.length} vector fields: anns_field must be specified`);
    field = vectorFields[0];
  }
  if (!field) throw quiverError('ParameterInvalid', `collection ${coll.name} has no vector field`);
  const topk = intParam(sp['topk'] ?? sp['limit'], 'topk', 10, 1, TOPK_LIMIT);
  const offset = opts.hybridSub ? 0 : intParam(sp['offset'], 'offset', 0, 0, TOPK_LIMIT);
  if (topk + offset > TOPK_LIMIT)
    throw quiverError('TopKTooLarge', `topk + offset (${topk} + ${offset} = ${topk + offset}) should be in range [1, ${TOPK_LIMIT}]`);
  const num = (k: string): number | undefined => {
    const v = get(k);
    if (v === undefined || v === '') return undefined;
    const n = Number(v);
    if (!Number.isFinite(n)) throw quiverError('ParameterInvalid', `search param ${k} ${v} is not a number`);
    return n;
  };
  const ef = num('ef');
  if (ef !== undefined && (!Number.isInteger(ef) || ef < 1 || ef > 32768))
    throw quiverError('ParameterInvalid', `ef ${ef} is invalid: must be an integer in [1, 32768]`);
  const idx = indexes.find((i) => i.fieldId === field.fieldId);
  let metric: AnyMetricType | undefined = checkMetricFor(field.dataType, field.name, sp['metric_type']);
  // A BM25 output field is searched with text, scored by BM25 (text-service.ts).
  const bm25Input = checkBm25Search(coll.schema, field, metric);
  if (bm25Input) metric = 'BM25';
  const { dropRatioSearch } = checkTypedSearchParams(idx?.indexType, get);
  const roundDecimal = intParam(sp['round_decimal'], 'round_decimal', -1, -1, 6);

  let groupBy: GroupBy | undefined;
  const groupName = sp['group_by_field'] ?? (params['group_by_field'] as string | undefined);
  if (groupName) {
    if (opts.hybridSub) throw quiverError('ParameterInvalid', 'group_by_field is not supported in the sub-requests of a hybrid search');
    const gf = coll.schema.fields.find((f) => f.name === groupName && !f.isDynamic);
    if (!gf) throw quiverError('FieldNotFound', `group_by_field ${groupName} not found in collection ${coll.name}`);
    if (!GROUPABLE.has(gf.dataType)) {
      throw quiverError(
        'ParameterInvalid',
        `group_by_field ${groupName} is a ${gf.dataType}; grouping supports Bool, Int8, Int16, Int32, Int64 and VarChar fields`,
      );
    }
    const size = intParam(get('group_size'), 'group_size', 1, 1, GROUP_SIZE_MAX);
    if ((topk + offset) * size > TOPK_LIMIT) {
      throw quiverError('ParameterInvalid', `(topk + offset) * group_size = (${topk} + ${offset}) * ${size} exceeds ${TOPK_LIMIT}`);
    }
    groupBy = { field: gf, size, strict: get('strict_group_size') === 'true' };
  }

  let ids: (bigint | string)[] | undefined;
  let q: { nq: number; queries: Float32Array; typed?: TypedQueries | undefined };
  const byIds = req.search_input === 'ids' || ((req.ids?.int_id || req.ids?.str_id) && !(req.placeholder_group?.length > 0));
  if (byIds) {
    // A BM25 field's stored rows are term counts, not a query: Milvus searches it with text only.
    if (bm25Input) throw quiverError('ParameterInvalid', `field ${field.name} is the output of a BM25 function: search it with text, not by ids`);
    const pk = coll.schema.fields.find((f) => f.isPrimaryKey)!;
    if (req.ids?.int_id) {
      if (pk.dataType !== 'Int64') throw quiverError('ParameterInvalid', `ids are integers but primary key ${pk.name} is ${pk.dataType}`);
      ids = (req.ids.int_id.data ?? []).map((x: string) => BigInt(x));
    } else {
      if (pk.dataType !== 'VarChar') throw quiverError('ParameterInvalid', `ids are strings but primary key ${pk.name} is ${pk.dataType}`);
      ids = [...(req.ids?.str_id?.data ?? [])];
    }
    if (ids!.length === 0) throw quiverError('ParameterInvalid', 'search by ids requires at least one primary key');
    if (new Set(ids!.map(String)).size !== ids!.length)
      throw quiverError('ParameterInvalid', `search by ids got a primary key twice: ${ids!.map(String).join(', ')}`);
    q = { nq: ids!.length, queries: new Float32Array(0) };
  } else if (bm25Input) {
    const t = bm25QueriesOf(bm25Input, field, req.placeholder_group ?? Buffer.alloc(0), get('analyzer_name') || undefined);
    q = { nq: t.nq, queries: new Float32Array(0), typed: { kind: 'sparse', rows: t.rows } };
  } else {
    q = queriesOf(field, req.placeholder_group ?? Buffer.alloc(0));
  }
  return {
    params: {
      field,
      queries: q.queries,
      typedQueries: q.typed,
      nq: q.nq,
      k: topk,
      offset,
      metric,
      filter: String(req.dsl ?? ''),
      templates: templates(req.expr_template_values),
      partitionNames: req.partition_names ?? [],
      ef,
      radius: num('radius'),
      rangeFilter: num('range_filter'),
      ignoreGrowing: sp['ignore_growing'] === 'true',
      dropRatioSearch,
      nprobe: boundedInt('nprobe', num('nprobe'), NPROBE_MAX),
      refineK: boundedInt('refine_k', num('refine_k'), REFINE_K_MAX),
    },
    groupBy,
    roundDecimal,
    ids,
  };
}

/** Looks up the vectors of `ids` (search by primary keys) and returns params that search with them. */
export async function resolveIds(query: QueryNodeApi, coll: CollectionRecord, p: ParsedSearch): Promise<SearchParams> {
  if (!p.ids) return p.params;
  const pk = coll.schema.fields.find((f) => f.isPrimaryKey)!;
  const field = p.params.field;
  const refs = await query.query(coll.id, {
    filter: `${pk.name} in {__ids}`,
    templates: { __ids: [...p.ids] },
    partitionNames: p.params.partitionNames,
    offset: 0,
    limit: undefined,
  });
  const rowOf = new Map<string, number>();
  const pkCol = refs.length > 0 ? gatherColumn(refs, pk.name) : undefined;
  const vecCol = refs.length > 0 ? gatherColumn(refs, field.name) : undefined;
  if (pkCol) for (let i = 0; i < refs.length; i++) rowOf.set(String(pkCol.data[i]), i);
  const rows = p.ids.map((id) => {
    const r = rowOf.get(String(id));
    if (r === undefined) throw quiverError('ParameterInvalid', `search by ids: primary key ${String(id)} not found in collection ${coll.name}`);
    if (vecCol?.valid && vecCol.valid[r] === 0)
      throw quiverError('ParameterInvalid', `search by ids: the ${field.name} vector of primary key ${String(id)} is null`);
    return r;
  });
  const col = vecCol as Column;
  if (col.kind === 'vector') {
    const out = new Float32Array(rows.length * col.dim);
    rows.forEach((r, i) => out.set(col.data.subarray(r * col.dim, (r + 1) * col.dim), i * col.dim));
    return { ...p.params, queries: out };
  }
  if (col.kind === 'bytevec') {
    const w = bytesPerRow(col.vtype, col.dim);
    return { ...p.params, typedQueries: { kind: 'bytes', rows: rows.map((r) => col.data.slice(r * w, (r + 1) * w)) } };
  }
  if (col.kind === 'sparse') return { ...p.params, typedQueries: { kind: 'sparse', rows: rows.map((r) => col.data[r] as SparseRow) } };
  throw quiverError('ParameterInvalid', `field ${field.name} is not a vector field`);
}

function roundScores(hits: SearchHit[][], decimals: number): SearchHit[][] {
  if (decimals < 0) return hits;
  const f = 10 ** decimals;
  return hits.map((list) => list.map((h) => ({ ...h, score: Math.round(h.score * f) / f })));
}

/** Groups ranked candidates: the best `k` groups (after `offset`), each with its best `size` hits, group after group. */
export function groupHits(candidates: readonly SearchHit[], values: readonly unknown[], k: number, offset: number, size: number): SearchHit[] {
  const groups = new Map<string, SearchHit[]>();
  for (let i = 0; i < candidates.length; i++) {
    const key = values[i] === undefined ? '\u0000null' : typeof values[i] + ':' + String(values[i]);
    let g = groups.get(key);
    if (!g) {
      if (groups.size >= k + offset) continue;
      groups.set(key, (g = []));
    }
    if (g.length < size) g.push(candidates[i]!);
  }
  return [...groups.values()].slice(offset).flat();
}

function groupValues(field: FieldSchema, hits: readonly SearchHit[]): unknown[] {
  if (hits.length === 0) return [];
  const col = gatherColumn(hits, field.name)!;
  const out = new Array<unknown>(hits.length);
  for (let i = 0; i < hits.length; i++) out[i] = col.valid && col.valid[i] === 0 ? undefined : (col.data as ArrayLike<unknown>)[i];
  return out;
}

/** Runs a parsed plain search (with ids resolved, grouping applied) and builds the reply. */
export async function runSearch(env: SearchEnv, coll: CollectionRecord, p: ParsedSearch, outputFields: readonly string[]): Promise<any> {
  const params = await resolveIds(env.query, coll, p);
  if (!p.groupBy) {
    const { hits } = await env.query.search(coll.id, params);
    return env.results(coll, roundScores(hits, p.roundDecimal), outputFields, params.k);
  }
  const g = p.groupBy;
  // Grouping needs the candidates beyond the top k (a group's members can rank far down): rank them all.
  const k = Math.max(1, Math.min(env.query.rowCount(coll.id), GROUP_CANDIDATES_MAX));
  const { hits } = await env.query.search(coll.id, { ...params, k, offset: 0 });
  const grouped = hits.map((list) => groupHits(list, groupValues(g.field, list), params.k, params.offset, g.size));
  const reply = env.results(coll, roundScores(grouped, p.roundDecimal), outputFields, params.k);
  const flat = grouped.flat();
  const col = flat.length > 0 ? gatherColumn(flat, g.field.name)! : undefined;
  reply.results.group_by_field_values = col ? [columnToFieldData(g.field, col, flat.length)] : [];
  return reply;
}
