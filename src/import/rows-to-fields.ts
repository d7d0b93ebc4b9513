import { quiverError } from '../common/errors.js';
import type { CollectionRecord } from '../coord/records.js';
import type { FieldSchema } from '../schema/types.js';
import { bytesPerRow, DYNAMIC_FIELD_NAME, isByteVectorType, type ByteVectorType } from '../schema/types.js';
import { sparseRowBytes } from '../proxy/vector-data.js';

/* eslint-disable @typescript-eslint/no-explicit-any */

/**
 * File rows (plain objects keyed by field name, as the JSON, Parquet and NumPy readers produce them) →
 * the `fields_data` of an Insert request, so that the insert validation (proxy/write-columns.ts) judges
 * them. This layer only checks what the request shape cannot express per row (a vector of the wrong
 * length would otherwise only show as a wrong total), and names the row in the file when it does.
 *
 * Value forms accepted, as Milvus's import readers and BulkWriter produce them: vectors as number arrays
 * (Float16/BFloat16 as floats, BinaryVector as packed uint8 bytes, Int8Vector as ints) or raw bytes;
 * sparse vectors as `{"indices": [...], "values": [...]}` or `{"<index>": value}`; JSON fields as
 * objects or JSON text; the dynamic field as `$meta` (object or JSON text) and/or keys outside the schema.
 */

export class RowError extends Error {
  constructor(
    readonly row: number,
    reason: string,
  ) {
    super(reason);
  }
}

const SCALAR_MEMBER: Record<string, string> = {
  Bool: 'bool_data',
  Int8: 'int_data',
  Int16: 'int_data',
  Int32: 'int_data',
  Int64: 'long_data',
  Float: 'float_data',
  Double: 'double_data',
  VarChar: 'string_data',
};

const VECTOR_MEMBER: Record<ByteVectorType, string> = {
  BinaryVector: 'binary_vector',
  Float16Vector: 'float16_vector',
  BFloat16Vector: 'bfloat16_vector',
  Int8Vector: 'int8_vector',
};

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

function toBf16(x: number): number {
  f32[0] = x;
  const b = u32[0]!;
  // Round to nearest even on the dropped 16 bits (NaN stays NaN).
  return ((b + 0x7fff + ((b >> 16) & 1)) >>> 16) & 0xffff;
}

function toF16(x: number): number {
  f32[0] = x;
  const b = u32[0]!;
  const sign = (b >>> 16) & 0x8000;
  const exp = ((b >>> 23) & 0xff) - 127 + 15;
  const mant = b & 0x7fffff;
  if (((b >>> 23) & 0xff) === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  if (exp >= 0x1f) return sign | 0x7c00;
  if (exp <= 0) {
    if (exp < -10) return sign;
    const m = (mant | 0x800000) >> (1 - exp);
    return sign | ((m + 0x1000) >> 13);
  }
  return (sign | (exp << 10) | (mant >> 13)) + ((mant >> 12) & 1);
}

function isNullish(v: unknown): boolean {
  return v === null || v === undefined;
}

function numberList(v: unknown): ArrayLike<number> | undefined {
  if (Array.isArray(v)) return v as number[];
  if (ArrayBuffer.isView(v) && !(v instanceof DataView) && !(v instanceof BigInt64Array) && !(v instanceof BigUint64Array))
    return v as unknown as ArrayLike<number>;
  return undefined;
}

function byteVector(f: FieldSchema & { dataType: ByteVectorType }, v: unknown, row: number): Uint8Array {
  const dim = f.dim!;
  const w = bytesPerRow(f.dataType, dim);
  if (v instanceof Uint8Array && f.dataType !== 'Int8Vector') {
    if (v.length !== w) throw new RowError(row, `${f.dataType} field ${f.name} needs ${w} bytes for dim ${dim}, got ${v.length}`);
    return v;
  }
  const list = numberList(v);
  if (!list) throw new RowError(row, `field ${f.name} expects a ${f.dataType} (an array), got ${JSON.stringify(v)?.slice(0, 64)}`);
  const out = new Uint8Array(w);
  switch (f.dataType) {
    case 'BinaryVector':
      if (list.length !== w) throw new RowError(row, `BinaryVector field ${f.name} of dim ${dim} needs ${w} uint8 values, got ${list.length}`);
      for (let i = 0; i < w; i++) {
        const b = list[i]!;
        if (!Number.isInteger(b) || b < 0 || b > 255) throw new RowError(row, `BinaryVector field ${f.name}: byte ${JSON.stringify(b)} is not a uint8`);
        out[i] = b;
      }
      return out;
    case 'Int8Vector': {
      if (list.length !== dim) throw new RowError(row, `the dim (${list.length}) of Int8Vector field ${f.name} is not equal to schema dim (${dim})`);
      const i8 = new Int8Array(out.buffer);
      for (let i = 0; i < dim; i++) {
        const b = list[i]!;
        if (!Number.isInteger(b) || b < -128 || b > 127) throw new RowError(row, `Int8Vector field ${f.name}: value ${JSON.stringify(b)} is not an int8`);
        i8[i] = b;
      }
      return out;
    }
    case 'Float16Vector':
    case 'BFloat16Vector': {
      if (list.length !== dim) throw new RowError(row, `the dim (${list.length}) of ${f.dataType} field ${f.name} is not equal to schema dim (${dim})`);
      const dv = new DataView(out.buffer);
      for (let i = 0; i < dim; i++) {
        const x = list[i]!;
        if (typeof x !== 'number') throw new RowError(row, `${f.dataType} field ${f.name}: ${JSON.stringify(x)} is not a number`);
        dv.setUint16(2 * i, f.dataType === 'Float16Vector' ? toF16(x) : toBf16(x), true);
      }
      return out;
    }
  }
}

function sparseBytes(f: FieldSchema, v: unknown, row: number): Buffer {
  if (typeof v === 'string') {
    const text = v;
    try {
      v = JSON.parse(text);
    } catch {
      throw new RowError(row, `sparse vector field ${f.name}: ${JSON.stringify(text.slice(0, 64))} is not JSON`);
    }
  }
  if (v === null || typeof v !== 'object' || Array.isArray(v))
    throw new RowError(row, `field ${f.name} expects a sparse vector (an object), got ${JSON.stringify(v)?.slice(0, 64)}`);
  const o = v as Record<string, unknown>;
  let pairs: [number, number][];
  if ('indices' in o || 'values' in o) {
    const idx = numberList(o['indices']);
    const val = numberList(o['values']);
    if (!idx || !val || idx.length !== val.length)
      throw new RowError(row, `sparse vector field ${f.name}: "indices" and "values" must be arrays of one length`);
    pairs = Array.from({ length: idx.length }, (_, i) => [Number(idx[i]), Number(val[i])]);
  } else {
    pairs = Object.entries(o).map(([k, x]) => [Number(k), Number(x)]);
    // The dict form has no order; the wire form needs increasing indices (duplicates cannot occur).
    pairs.sort((a, b) => a[0] - b[0]);
  }
  for (const [i, x] of pairs) {
    if (!Number.isInteger(i) || i < 0) throw new RowError(row, `sparse vector field ${f.name}: index ${i} must be a non-negative integer`);
    if (!Number.isFinite(x)) throw new RowError(row, `sparse vector field ${f.name}: value ${x} at index ${i} must be finite`);
  }
  return sparseRowBytes({ indices: Uint32Array.from(pairs.map((p) => p[0])), values: Float32Array.from(pairs.map((p) => p[1])) });
}

function jsonText(f: FieldSchema, v: unknown, row: number): Buffer {
  if (typeof v === 'string') return Buffer.from(v, 'utf8');
  const text = JSON.stringify(v, (_k, x: unknown) => (typeof x === 'bigint' ? Number(x) : x));
  if (text === undefined) throw new RowError(row, `field ${f.name}: ${String(v)} is not JSON`);
  return Buffer.from(text, 'utf8');
}

function scalarValue(f: FieldSchema, v: unknown): unknown {
  // Parquet and NumPy hand int64 as bigint; the request shape carries int64 as decimal strings.
  if (typeof v === 'bigint') return f.dataType === 'Int64' ? v.toString() : Number(v);
  return v;
}

/**
 * The request (`fields_data`, `num_rows`) for rows `rows` of a file whose first row is `firstRow`.
 * Throws RowError for a row-level problem found here.
 */
export function rowsToRequest(
  coll: CollectionRecord,
  rows: readonly Record<string, unknown>[],
  firstRow: number,
): { fields_data: any[]; num_rows: number } {
  const n = rows.length;
  const fields = coll.schema.fields;
  const names = new Set(fields.map((f) => f.name));
  const dynamicOn = coll.schema.enableDynamicField;
  const out: any[] = [];
  for (const f of fields) {
    if (f.isDynamic) continue;
    if (f.isPrimaryKey && f.autoId && !rows.some((r) => r[f.name] !== undefined)) continue;
    const valid: boolean[] = [];
    let anyNull = false;
    const present: unknown[] = [];
    for (let i = 0; i < n; i++) {
      const v = rows[i]![f.name];
      if (isNullish(v)) {
        if (v === undefined && !f.nullable && f.defaultValue === undefined && !(f.isPrimaryKey && f.autoId)) {
          throw new RowError(firstRow + i, `field ${f.name} is missing (the row has no value for it and the field is neither nullable nor has a default)`);
        }
        valid.push(false);
        anyNull = true;
        continue;
      }
      valid.push(true);
      present.push(v);
    }
    const fd: any = { field_name: f.name, type: f.dataType, valid_data: anyNull ? valid : [] };
    const rowOf = (k: number): number => {
      // Row number (in the file) of the k-th present value.
      let seen = -1;
      for (let i = 0; i < n; i++) if (valid[i] && ++seen === k) return firstRow + i;
      return firstRow;
    };
    if (f.dataType === 'FloatVector') {
      const dim = f.dim!;
      const flat = new Float32Array(present.length * dim);
      present.forEach((v, k) => {
        const list = numberList(v);
        if (!list)
          throw new RowError(rowOf(k), `field ${f.name} expects a FloatVector (an array of ${dim} numbers), got ${JSON.stringify(v)?.slice(0, 64)}`);
        if (list.length !== dim) throw new RowError(rowOf(k), `the dim (${list.length}) of field ${f.name} is not equal to schema dim (${dim})`);
        for (let j = 0; j < dim; j++) {
          const x = list[j];
          if (typeof x !== 'number') throw new RowError(rowOf(k), `field ${f.name} expects FloatVector numbers, got ${JSON.stringify(x)} at position ${j}`);
          flat[k * dim + j] = x;
        }
      });
      fd.vectors = { dim, data: 'float_vector', float_vector: { data: flat } };
    } else if (isByteVectorType(f.dataType)) {
      const w = bytesPerRow(f.dataType, f.dim!);
      const buf = Buffer.alloc(present.length * w);
      present.forEach((v, k) => buf.set(byteVector(f as FieldSchema & { dataType: ByteVectorType }, v, rowOf(k)), k * w));
      const member = VECTOR_MEMBER[f.dataType];
      fd.vectors = { dim: f.dim, data: member, [member]: buf };
    } else if (f.dataType === 'SparseFloatVector') {
      const contents = present.map((v, k) => sparseBytes(f, v, rowOf(k)));
      fd.vectors = { dim: 0, data: 'sparse_float_vector', sparse_float_vector: { dim: 0, contents } };
    } else if (f.dataType === 'JSON') {
      fd.scalars = { data: 'json_data', json_data: { data: present.map((v, k) => jsonText(f, v, rowOf(k))) } };
    } else if (f.dataType === 'Array') {
      const member = SCALAR_MEMBER[f.elementType!]!;
      fd.scalars = {
        data: 'array_data',
        array_data: {
          element_type: f.elementType,
          data: present.map((v, k) => {
            let list: unknown = v;
            if (ArrayBuffer.isView(v)) list = Array.from(v as unknown as ArrayLike<unknown>);
            if (!Array.isArray(list))
              throw new RowError(rowOf(k), `field ${f.name} expects an Array of ${f.elementType}, got ${JSON.stringify(v)?.slice(0, 64)}`);
            return { [member]: { data: list.map((x) => scalarValue({ ...f, dataType: f.elementType! }, x)) } };
          }),
        },
      };
    } else {
      const member = SCALAR_MEMBER[f.dataType];
      if (!member) throw quiverError('DataInvalid', `bulk import does not support field ${f.name} of type ${f.dataType}`);
      fd.scalars = { data: member, [member]: { data: present.map((v) => scalarValue(f, v)) } };
    }
    out.push(fd);
  }
  // The dynamic field: `$meta` and every key outside the schema, per row.
  let dynamic: Buffer[] | undefined;
  for (let i = 0; i < n; i++) {
    const r = rows[i]!;
    let meta: Record<string, unknown> | undefined;
    for (const [k, v] of Object.entries(r)) {
      if (names.has(k) && k !== DYNAMIC_FIELD_NAME) continue;
      if (!dynamicOn) {
        throw new RowError(firstRow + i, `field ${k} is not in the schema of collection ${coll.name} (dynamic field is disabled)`);
      }
      if (k === DYNAMIC_FIELD_NAME) {
        let o: unknown = v;
        if (typeof v === 'string') {
          try {
            o = v === '' ? {} : JSON.parse(v);
          } catch {
            throw new RowError(firstRow + i, `${DYNAMIC_FIELD_NAME} is not JSON: ${v.slice(0, 64)}`);
          }
        }
        if (o === null || o === undefined) continue;
        if (typeof o !== 'object' || Array.isArray(o)) throw new RowError(firstRow + i, `${DYNAMIC_FIELD_NAME} must be a JSON object`);
        meta = { ...(o as Record<string, unknown>), ...meta };
      } else {
        (meta ??= {})[k] = typeof v === 'bigint' ? Number(v) : v;
      }
    }
    if (dynamicOn) (dynamic ??= new Array<Buffer>(n).fill(Buffer.from('{}')))[i] = Buffer.from(JSON.stringify(meta ?? {}), 'utf8');
  }
  if (dynamic)
    out.push({
      field_name: DYNAMIC_FIELD_NAME,
      is_dynamic: true,
      type: 'JSON',
      scalars: { data: 'json_data', json_data: { data: dynamic } },
      valid_data: [],
    });
  return { fields_data: out, num_rows: n };
}
