import { z } from 'zod';
import { quiverError } from '../../common/errors.js';
import { DYNAMIC_FIELD_NAME } from '../../schema/types.js';
import { parseSparseRow } from '../../proxy/vector-data.js';
import type { RestCall, RestCallContext, RestRoute } from '../types.js';

/* eslint-disable @typescript-eslint/no-explicit-any */

/** Shared pieces of the RESTful API v2 routes (request fields as Milvus's request_v2.go names them). */

export const dbName = z.string().optional();
export const collectionName = z.string({ required_error: 'collectionName is required' });
export const withCollection = z.object({ dbName, collectionName }).passthrough();
/** A JSON object of properties: values sent as text, as Milvus formats them (`%v`). */
export const properties = z.record(z.union([z.string(), z.number(), z.boolean()])).optional();

export function route<B>(path: string, body: z.ZodType<B>, run: (body: B, call: RestCall, ctx: RestCallContext) => Promise<unknown>): RestRoute<B> {
  return { path, body, run };
}

export function kvs(obj: Readonly<Record<string, unknown>> | undefined): { key: string; value: string }[] {
  return Object.entries(obj ?? {}).map(([key, value]) => ({
    key,
    value: typeof value === 'object' && value !== null ? JSON.stringify(value) : String(value),
  }));
}

export function kvObject(list: readonly { key: string; value: string }[] | undefined): { key: string; value: string }[] {
  return (list ?? []).map((p) => ({ key: p.key, value: p.value }));
}

/** int64 values: JSON numbers when the client allows them (Accept-Type-Allow-Int64), else decimal strings. */
export function int64Out(v: string | number | bigint, ctx: RestCallContext): number | string {
  return ctx.int64AsNumber ? Number(v) : String(v);
}

/** The collection's schema as DescribeCollection answers it (decoded proto), looked up for a data call. */
export async function schemaOf(call: RestCall, db: string, name: string): Promise<any> {
  return (await call('DescribeCollection', { db_name: db, collection_name: name }, { internal: true })).schema;
}

export function primaryOf(schema: any): any {
  const pk = (schema?.fields ?? []).find((f: any) => f.is_primary_key);
  if (!pk) throw quiverError('ParameterInvalid', 'the collection has no primary key');
  return pk;
}

/** A filter selecting primary keys `ids` (Milvus's `id` request field: one key or a list). */
export function pkFilter(schema: any, ids: unknown): string {
  const pk = primaryOf(schema);
  const list = Array.isArray(ids) ? ids : [ids];
  if (list.length === 0) throw quiverError('ParameterInvalid', 'id must name at least one primary key');
  const isInt = pk.data_type === 'Int64';
  const values = list.map((v) => {
    if (isInt) {
      if (!((typeof v === 'number' && Number.isSafeInteger(v)) || (typeof v === 'string' && /^-?\d{1,19}$/.test(v))))
        throw quiverError('ParameterInvalid', `id ${JSON.stringify(v)} is not an Int64 primary key`);
      return String(v);
    }
    if (typeof v !== 'string') throw quiverError('ParameterInvalid', `id ${JSON.stringify(v)} is not a VarChar primary key`);
    return JSON.stringify(v);
  });
  return `${pk.name} in [${values.join(',')}]`;
}

function scalarValues(fd: any): any[] {
  const s = fd.scalars;
  if (!s) return [];
  const member = s.data as string | undefined;
  return member ? ((s[member]?.data as any[] | undefined) ?? []) : [];
}

function rowCountOf(fd: any): number {
  if (fd.scalars) return scalarValues(fd).length;
  const v = fd.vectors;
  if (!v) return 0;
  const dim = Number(v.dim ?? 0);
  switch (v.data) {
    case 'float_vector':
      return dim > 0 ? v.float_vector.data.length / dim : 0;
    case 'sparse_float_vector':
      return v.sparse_float_vector.contents.length;
    case 'binary_vector':
      return dim > 0 ? v.binary_vector.length / (dim / 8) : 0;
    case 'float16_vector':
    case 'bfloat16_vector':
      return dim > 0 ? v[v.data].length / (dim * 2) : 0;
    case 'int8_vector':
      return dim > 0 ? v.int8_vector.length / dim : 0;
    default:
      return 0;
  }
}

function cell(fd: any, i: number, ctx: RestCallContext): unknown {
  if (fd.scalars) {
    const values = scalarValues(fd);
    const v = values[i];
    switch (fd.scalars.data) {
      case 'long_data':
        return int64Out(v as string, ctx);
      case 'json_data':
        return JSON.parse(Buffer.from(v as Uint8Array).toString('utf8'));
      case 'array_data': {
        const inner = scalarValues({ scalars: v });
        return v?.data === 'long_data' ? inner.map((x) => int64Out(x as string, ctx)) : inner;
      }
      case 'bytes_data':
        return Buffer.from(v as Uint8Array).toString('base64');
      default:
        return v;
    }
  }
  const vec = fd.vectors;
  const dim = Number(vec.dim ?? 0);
  switch (vec.data) {
    case 'float_vector':
      return Array.from((vec.float_vector.data as Float32Array).subarray(i * dim, (i + 1) * dim));
    case 'sparse_float_vector': {
      const row = parseSparseRow(vec.sparse_float_vector.contents[i] as Uint8Array, fd.field_name);
      const out: Record<string, number> = {};
      row.indices.forEach((idx, k) => (out[String(idx)] = row.values[k]!));
      return out;
    }
    default: {
      // Byte vectors (binary, float16, bfloat16, int8) as base64, as Milvus's JSON encoding of []byte.
      const bytes = vec[vec.data] as Uint8Array;
      const w = vec.data === 'binary_vector' ? dim / 8 : vec.data === 'int8_vector' ? dim : dim * 2;
      return Buffer.from(bytes.subarray(i * w, (i + 1) * w)).toString('base64');
    }
  }
}

/**
 * Columns (decoded `fields_data`) → row objects, as Milvus's REST answers query/get/search: one key per
 * output field, null where a nullable value is missing, the dynamic field's keys spread into the row.
 */
export function rowsOf(fieldsData: readonly any[], ctx: RestCallContext, n?: number): Record<string, unknown>[] {
  const count = n ?? (fieldsData.length > 0 ? rowCountOf(fieldsData[0]) : 0);
  const rows: Record<string, unknown>[] = Array.from({ length: count }, () => ({}));
  for (const fd of fieldsData) {
    const valid: boolean[] = fd.valid_data ?? [];
    // Values of a nullable column are dense over the valid rows or full-length with placeholders; the
    // handlers write full-length columns, so row i is value i.
    for (let i = 0; i < count; i++) {
      const row = rows[i]!;
      if (valid.length > 0 && !valid[i]) {
        if (!fd.is_dynamic) row[fd.field_name] = null;
        continue;
      }
      const v = cell(fd, i, ctx);
      if (fd.is_dynamic || fd.field_name === DYNAMIC_FIELD_NAME) {
        if (v && typeof v === 'object') for (const [k, x] of Object.entries(v)) if (!(k in row)) row[k] = x;
      } else row[fd.field_name] = v;
    }
  }
  return rows;
}
