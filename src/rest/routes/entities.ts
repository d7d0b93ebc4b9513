import { z } from 'zod';
import { quiverError } from '../../common/errors.js';
import type { CollectionRecord } from '../../coord/records.js';
import { RowError, rowsToRequest } from '../../import/rows-to-fields.js';
import { root } from '../../proxy/proto.js';
import { parseCollectionSchema } from '../../proxy/schema-proto.js';
import { sparseRowBytes } from '../../proxy/vector-data.js';
import { withTopLevel } from '../reply.js';
import type { RestCallContext, RestRoute } from '../types.js';
import { collectionName, dbName, int64Out, pkFilter, route, rowsOf, schemaOf } from './common.js';

/* eslint-disable @typescript-eslint/no-explicit-any */

/**
 * `/v2/vectordb/entities/*`: insert, upsert, delete, get, query, search, hybrid_search. Rows arrive as
 * JSON objects and become the `fields_data` columns a gRPC client sends (the same conversion bulk import
 * uses, so one set of insert rules judges them); search vectors become the placeholder group a gRPC client
 * encodes; results go back as arrays of row objects, as Milvus's REST answers them (int64 as strings
 * unless `Accept-Type-Allow-Int64: true`, search rows with `id` and `distance`).
 */

/** Rows per insert/upsert request (the body limit bounds the bytes; this bounds per-row work). */
const ROWS_MAX = 100_000;
const QUERY_LIMIT_DEFAULT = 100;
const placeholderGroupType = root.lookupType('milvus.proto.common.PlaceholderGroup');

const dataBody = z
  .object({ dbName, collectionName, partitionName: z.string().optional(), data: z.array(z.record(z.unknown())).min(1).max(ROWS_MAX) })
  .passthrough();
const idValue = z.union([z.number(), z.string()]);
const ids = z.union([idValue, z.array(idValue).max(16384)]);
const outputFields = z.array(z.string()).max(1024).optional();
const partitionNames = z.array(z.string()).max(4096).optional();

/** The collection record the row conversion needs, from DescribeCollection's schema (function outputs left out: the server computes them). */
function recordOf(schema: any): CollectionRecord {
  const parsed = parseCollectionSchema(schema);
  const outputs = new Set(parsed.functions.flatMap((f) => f.outputFieldNames));
  return { name: schema.name, schema: { ...parsed, fields: parsed.fields.filter((f) => !outputs.has(f.name)) } } as unknown as CollectionRecord;
}

/**
 * Geometry (WKT) and Timestamptz (ISO-8601) values are text on the wire (`string_data`, which the insert
 * rules accept for both); the shared row conversion does not carry them, so they are split off here.
 */
function textColumns(
  record: CollectionRecord,
  rows: readonly Record<string, unknown>[],
): { rest: CollectionRecord; columns: any[]; rows: Record<string, unknown>[] } {
  const text = record.schema.fields.filter((f) => f.dataType === 'Geometry' || f.dataType === 'Timestamptz');
  if (text.length === 0) return { rest: record, columns: [], rows: rows as Record<string, unknown>[] };
  const names = new Set(text.map((f) => f.name));
  const columns = text.map((f) => {
    const valid = rows.map((r) => r[f.name] !== undefined && r[f.name] !== null);
    const values = rows.filter((_r, i) => valid[i]).map((r) => r[f.name]);
    values.forEach((v, i) => {
      if (typeof v !== 'string')
        throw quiverError('DataInvalid', `field ${f.name} expects ${f.dataType} text, got ${JSON.stringify(v)?.slice(0, 64)} (value ${i})`);
    });
    return {
      field_name: f.name,
      type: f.dataType,
      valid_data: valid.every(Boolean) ? [] : valid,
      scalars: { data: 'string_data', string_data: { data: values } },
    };
  });
  const rest = { ...record, schema: { ...record.schema, fields: record.schema.fields.filter((f) => !names.has(f.name)) } } as CollectionRecord;
  const stripped = rows.map((r) => {
    const o = { ...r };
    for (const n of names) delete o[n];
    return o;
  });
  return { rest, columns, rows: stripped };
}

function columnsOf(schema: any, rows: readonly Record<string, unknown>[]): { fields_data: any[]; num_rows: number } {
  try {
    const split = textColumns(recordOf(schema), rows);
    const req = rowsToRequest(split.rest, split.rows, 0);
    return { fields_data: [...req.fields_data, ...split.columns], num_rows: req.num_rows };
  } catch (e) {
    if (e instanceof RowError) throw quiverError('DataInvalid', `invalid data at row ${e.row}: ${e.message}`);
    throw e;
  }
}

/** Milvus's `exprParams` (filter template values) → the request's `expr_template_values`. */
function templateValue(v: unknown, where: string): Record<string, unknown> {
  if (typeof v === 'boolean') return { bool_val: v };
  if (typeof v === 'number') return Number.isInteger(v) ? { int64_val: String(v) } : { float_val: v };
  if (typeof v === 'string') return { string_val: v };
  if (Array.isArray(v)) return { array_val: templateArray(v, where) };
  throw quiverError('ParameterInvalid', `exprParams ${where}: ${JSON.stringify(v)?.slice(0, 64)} is not a bool, number, string or array`);
}

function templateArray(list: readonly unknown[], where: string): Record<string, unknown> {
  if (list.every((x) => typeof x === 'boolean')) return { bool_data: { data: list } };
  if (list.every((x) => typeof x === 'number' && Number.isInteger(x))) return { long_data: { data: list.map(String) } };
  if (list.every((x) => typeof x === 'number')) return { double_data: { data: list } };
  if (list.every((x) => typeof x === 'string')) return { string_data: { data: list } };
  if (list.every((x) => Array.isArray(x))) return { array_data: { data: list.map((x) => templateArray(x as unknown[], where)) } };
  return { json_data: { data: list.map((x) => Buffer.from(JSON.stringify(x), 'utf8')) } };
}

function templatesOf(params: Record<string, unknown> | undefined): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(params ?? {})) out[k] = templateValue(v, k);
  return out;
}

const exprParams = z.record(z.unknown()).optional();

function idsOut(idsReply: any, ctx: RestCallContext): unknown[] {
  if (idsReply?.int_id) return (idsReply.int_id.data ?? []).map((v: string) => int64Out(v, ctx));
  return idsReply?.str_id?.data ?? [];
}

async function write(
  kind: 'Insert' | 'Upsert',
  b: z.infer<typeof dataBody>,
  call: Parameters<RestRoute['run']>[1],
  ctx: RestCallContext,
): Promise<unknown> {
  const schema = await schemaOf(call, ctx.dbName, b.collectionName);
  const cols = columnsOf(schema, b.data);
  const r = await call(kind, { db_name: ctx.dbName, collection_name: b.collectionName, partition_name: b.partitionName ?? '', ...cols });
  return kind === 'Insert'
    ? { insertCount: Number(r.insert_cnt), insertIds: idsOut(r.IDs, ctx) }
    : { upsertCount: Number(r.upsert_cnt), upsertIds: idsOut(r.IDs, ctx) };
}

// ---------------------------------------------------------------------------------------------- search

const VECTOR_TYPES = new Set(['FloatVector', 'BinaryVector', 'Float16Vector', 'BFloat16Vector', 'SparseFloatVector', 'Int8Vector']);

function vectorField(schema: any, annsField: string | undefined): any {
  const fields: any[] = schema.fields ?? [];
  if (annsField) {
    const f = fields.find((x) => x.name === annsField && VECTOR_TYPES.has(x.data_type));
    if (!f) throw quiverError('ParameterInvalid', `cannot find a vector field named ${annsField}`);
    return f;
  }
  const vectors = fields.filter((x) => VECTOR_TYPES.has(x.data_type));
  if (vectors.length !== 1)
    throw quiverError(
      'ParameterInvalid',
      `annsField is required: the collection has ${vectors.length} vector fields (${vectors.map((v) => v.name).join(', ')})`,
    );
  return vectors[0];
}

function dimOf(f: any): number {
  return Number((f.type_params ?? []).find((p: any) => p.key === 'dim')?.value ?? 0);
}

function bytesOf(v: unknown, what: string): Buffer {
  if (typeof v === 'string') return Buffer.from(v, 'base64');
  if (Array.isArray(v) && v.every((x) => Number.isInteger(x) && x >= 0 && x <= 255)) return Buffer.from(v as number[]);
  throw quiverError('ParameterInvalid', `${what}: expected base64 text or an array of bytes`);
}

/** The placeholder group bytes of search vectors `data` for field `f`, as a gRPC client encodes them. */
function placeholderOf(schema: any, f: any, data: readonly unknown[]): Uint8Array {
  const bm25Input = (schema.functions ?? []).some((fn: any) => fn.type === 'BM25' && (fn.output_field_names ?? []).includes(f.name));
  const dim = dimOf(f);
  let type: string;
  let values: Buffer[];
  if (bm25Input) {
    type = 'VarChar';
    values = data.map((t, i) => {
      if (typeof t !== 'string') throw quiverError('ParameterInvalid', `data[${i}]: full-text search takes query text`);
      return Buffer.from(t, 'utf8');
    });
  } else if (f.data_type === 'FloatVector') {
    type = 'FloatVector';
    values = data.map((v, i) => {
      if (!Array.isArray(v) || v.length !== dim || v.some((x) => typeof x !== 'number'))
        throw quiverError('ParameterInvalid', `data[${i}]: field ${f.name} needs a vector of ${dim} numbers`);
      const a = Float32Array.from(v as number[]);
      return Buffer.from(a.buffer, a.byteOffset, a.byteLength);
    });
  } else if (f.data_type === 'SparseFloatVector') {
    type = 'SparseFloatVector';
    values = data.map((v, i) => {
      if (!v || typeof v !== 'object' || Array.isArray(v))
        throw quiverError('ParameterInvalid', `data[${i}]: field ${f.name} needs a sparse vector object`);
      const o = v as Record<string, unknown>;
      const pairs: [number, number][] =
        'indices' in o
          ? (o['indices'] as number[]).map((idx, k) => [Number(idx), Number((o['values'] as number[])[k])])
          : Object.entries(o).map(([k, x]) => [Number(k), Number(x)]);
      pairs.sort((a, c) => a[0] - c[0]);
      if (pairs.some(([idx, x]) => !Number.isInteger(idx) || idx < 0 || !Number.isFinite(x)))
        throw quiverError('ParameterInvalid', `data[${i}]: sparse indices must be non-negative integers and values finite`);
      return sparseRowBytes({ indices: Uint32Array.from(pairs.map((p) => p[0])), values: Float32Array.from(pairs.map((p) => p[1])) });
    });
  } else if (f.data_type === 'Int8Vector' && data.every((v) => Array.isArray(v))) {
    type = 'Int8Vector';
    values = data.map((v) => Buffer.from(Int8Array.from(v as number[]).buffer));
  } else {
    type = f.data_type;
    values = data.map((v, i) => bytesOf(v, `data[${i}]`));
  }
  return placeholderGroupType.encode(placeholderGroupType.fromObject({ placeholders: [{ tag: '$0', type, values }] })).finish();
}

const searchParamsSpec = z
  .object({
    metricType: z.string().optional(),
    params: z.record(z.unknown()).optional(),
    ignoreGrowing: z.boolean().optional(),
    hints: z.string().optional(),
  })
  .passthrough()
  .optional();

function searchKvs(o: {
  limit: number;
  offset?: number | undefined;
  annsField: string;
  searchParams?: z.infer<typeof searchParamsSpec>;
  metricType?: string | undefined;
  params?: Record<string, unknown> | undefined;
  groupingField?: string | undefined;
  groupSize?: number | undefined;
}): { key: string; value: string }[] {
  const sp = o.searchParams ?? {};
  const metric = o.metricType ?? sp.metricType;
  const out = [
    { key: 'topk', value: String(o.limit) },
    { key: 'offset', value: String(o.offset ?? 0) },
    { key: 'anns_field', value: o.annsField },
    { key: 'params', value: JSON.stringify({ ...(sp.params ?? {}), ...(o.params ?? {}) }) },
    { key: 'round_decimal', value: '-1' },
    { key: 'ignore_growing', value: String(Boolean(sp.ignoreGrowing)) },
  ];
  if (metric) out.push({ key: 'metric_type', value: metric });
  if (o.groupingField) out.push({ key: 'group_by_field', value: o.groupingField });
  if (o.groupingField && o.groupSize) out.push({ key: 'group_size', value: String(o.groupSize) });
  return out;
}

/** Search results → rows with `id` and `distance`, and `topks` for the client to split several queries. */
function searchRows(r: any, ctx: RestCallContext): unknown {
  const res = r.results ?? {};
  const pks = idsOut(res.ids, ctx);
  const rows = rowsOf(res.fields_data ?? [], ctx, pks.length);
  const scores: number[] = Array.from(res.scores ?? []);
  rows.forEach((row, i) => {
    row['id'] = pks[i];
    row['distance'] = scores[i];
  });
  return withTopLevel(rows, { topks: (res.topks ?? []).map(Number) });
}

const searchBody = z
  .object({
    dbName,
    collectionName,
    data: z.array(z.unknown()).min(1).max(16384),
    annsField: z.string().optional(),
    filter: z.string().optional(),
    limit: z.number().int().optional(),
    offset: z.number().int().optional(),
    outputFields,
    partitionNames,
    groupingField: z.string().optional(),
    groupSize: z.number().int().optional(),
    consistencyLevel: z.string().optional(),
    searchParams: searchParamsSpec,
    exprParams,
  })
  .passthrough();

const subSearch = z
  .object({
    data: z.array(z.unknown()).min(1).max(16384),
    annsField: z.string().optional(),
    filter: z.string().optional(),
    limit: z.number().int().optional(),
    offset: z.number().int().optional(),
    metricType: z.string().optional(),
    params: z.record(z.unknown()).optional(),
    searchParams: searchParamsSpec,
    ignoreGrowing: z.boolean().optional(),
    exprParams,
  })
  .passthrough();

const hybridBody = z
  .object({
    dbName,
    collectionName,
    search: z.array(subSearch).min(1).max(1024),
    rerank: z.object({ strategy: z.string(), params: z.record(z.unknown()).optional() }).passthrough(),
    limit: z.number().int().optional(),
    outputFields,
    partitionNames,
    consistencyLevel: z.string().optional(),
  })
  .passthrough();

const queryBody = z
  .object({
    dbName,
    collectionName,
    filter: z.string().optional(),
    outputFields,
    partitionNames,
    limit: z.number().int().optional(),
    offset: z.number().int().optional(),
    consistencyLevel: z.string().optional(),
    exprParams,
  })
  .passthrough();

export const entityRoutes: readonly RestRoute[] = [
  route('entities/insert', dataBody, (b, call, ctx) => write('Insert', b, call, ctx)),
  route('entities/upsert', dataBody, (b, call, ctx) => write('Upsert', b, call, ctx)),
  route(
    'entities/delete',
    z.object({ dbName, collectionName, filter: z.string().optional(), id: ids.optional(), partitionName: z.string().optional(), exprParams }).passthrough(),
    async (b, call, ctx) => {
      let expr = b.filter ?? '';
      if (!expr) {
        if (b.id === undefined) throw quiverError('ParameterMissing', 'delete needs a filter or id');
        expr = pkFilter(await schemaOf(call, ctx.dbName, b.collectionName), b.id);
      }
      const r = await call('Delete', {
        db_name: ctx.dbName,
        collection_name: b.collectionName,
        partition_name: b.partitionName ?? '',
        expr,
        expr_template_values: templatesOf(b.exprParams),
      });
      return { deleteCount: Number(r.delete_cnt ?? 0) };
    },
  ),
  route('entities/get', z.object({ dbName, collectionName, id: ids, outputFields, partitionNames }).passthrough(), async (b, call, ctx) => {
    const schema = await schemaOf(call, ctx.dbName, b.collectionName);
    const r = await call('Query', {
      db_name: ctx.dbName,
      collection_name: b.collectionName,
      expr: pkFilter(schema, b.id),
      output_fields: b.outputFields ?? ['*'],
      partition_names: b.partitionNames ?? [],
    });
    return rowsOf(r.fields_data ?? [], ctx);
  }),
  route('entities/query', queryBody, async (b, call, ctx) => {
    const fields = b.outputFields ?? ['*'];
    const count = fields.length === 1 && fields[0]!.replace(/\s/g, '').toLowerCase() === 'count(*)';
    const qp: { key: string; value: string }[] = [];
    if (b.offset && b.offset > 0) qp.push({ key: 'offset', value: String(b.offset) });
    const limit = b.limit ?? QUERY_LIMIT_DEFAULT;
    if (limit > 0 && !count) qp.push({ key: 'limit', value: String(limit) });
    const r = await call('Query', {
      db_name: ctx.dbName,
      collection_name: b.collectionName,
      expr: b.filter ?? '',
      output_fields: fields,
      partition_names: b.partitionNames ?? [],
      query_params: qp,
      expr_template_values: templatesOf(b.exprParams),
    });
    return rowsOf(r.fields_data ?? [], ctx);
  }),
  route('entities/search', searchBody, async (b, call, ctx) => {
    const schema = await schemaOf(call, ctx.dbName, b.collectionName);
    const f = vectorField(schema, b.annsField);
    const r = await call('Search', {
      db_name: ctx.dbName,
      collection_name: b.collectionName,
      dsl: b.filter ?? '',
      dsl_type: 'BoolExprV1',
      expr_template_values: templatesOf(b.exprParams),
      output_fields: b.outputFields ?? [],
      partition_names: b.partitionNames ?? [],
      placeholder_group: placeholderOf(schema, f, b.data),
      nq: String(b.data.length),
      search_params: searchKvs({
        limit: b.limit ?? QUERY_LIMIT_DEFAULT,
        offset: b.offset,
        annsField: f.name,
        searchParams: b.searchParams,
        groupingField: b.groupingField,
        groupSize: b.groupSize,
      }),
    });
    return searchRows(r, ctx);
  }),
  route('entities/hybrid_search', hybridBody, async (b, call, ctx) => {
    const schema = await schemaOf(call, ctx.dbName, b.collectionName);
    const limit = b.limit ?? QUERY_LIMIT_DEFAULT;
    const requests = b.search.map((s) => {
      const f = vectorField(schema, s.annsField);
      return {
        db_name: ctx.dbName,
        collection_name: b.collectionName,
        dsl: s.filter ?? '',
        dsl_type: 'BoolExprV1',
        expr_template_values: templatesOf(s.exprParams),
        placeholder_group: placeholderOf(schema, f, s.data),
        nq: String(s.data.length),
        output_fields: b.outputFields ?? [],
        partition_names: b.partitionNames ?? [],
        search_params: searchKvs({
          limit: s.limit ?? limit,
          offset: s.offset,
          annsField: f.name,
          searchParams: { ...(s.searchParams ?? {}), ...(s.ignoreGrowing !== undefined ? { ignoreGrowing: s.ignoreGrowing } : {}) },
          metricType: s.metricType,
          params: s.params,
        }),
      };
    });
    const r = await call('HybridSearch', {
      db_name: ctx.dbName,
      collection_name: b.collectionName,
      requests,
      output_fields: b.outputFields ?? [],
      partition_names: b.partitionNames ?? [],
      rank_params: [
        { key: 'strategy', value: b.rerank.strategy },
        { key: 'params', value: JSON.stringify(b.rerank.params ?? {}) },
        { key: 'limit', value: String(limit) },
        { key: 'round_decimal', value: '-1' },
      ],
    });
    return searchRows(r, ctx);
  }),
];
