import { quiverError } from '../common/errors.js';
import type { Column, DataType, FieldSchema, ScalarType, ScalarValue, StructRow } from '../schema/types.js';
import { DYNAMIC_FIELD_NAME, isByteVectorType, structLayout } from '../schema/types.js';
import { structArraysOutput, structColumnOf } from './struct-data.js';
import { WktCodec } from '../schema/geometry.js';
import { UTC } from '../schema/timestamptz.js';
import { geoTimeDefault, geoTimeMember, geoTimeOutput, geoTimeValue, isGeoTimeField } from './geo-time-data.js';
import { nullVectorColumn, typedVectorColumn, typedVectorOutput, validMask } from './vector-data.js';

/**
 * proto `schema.FieldData` ⇄ Column. Requests arrive decoded by protobufjs with `longs: String`,
 * `enums: String`, `defaults: true`, `oneofs: true`, so int64 values are decimal strings, bytes are Buffers
 * and each oneof names its member (`field`, `data`). Everything a user can get wrong is validated here, with
 * a reason naming the field, the row and the value.
 */

/* eslint-disable @typescript-eslint/no-explicit-any */
type ProtoFieldData = any;

export const INT_RANGE: Partial<Record<DataType, [number, number]>> = {
  Int8: [-128, 127],
  Int16: [-32768, 32767],
  Int32: [-2147483648, 2147483647],
};

function invalid(reason: string): never {
  throw quiverError('DataInvalid', reason);
}

/** Decodes a request's valid_data into a validity mask, and the mapping from row → physical index. */
function validity(fd: ProtoFieldData, numRows: number, physicalLen: number, field: FieldSchema) {
  const { valid, present } = validMask(fd, field, numRows);
  if (valid === undefined) return { valid: undefined, dense: true };
  const dense = physicalLen === numRows;
  if (!dense && physicalLen !== present) {
    invalid(`the number of values of field ${field.name} (${physicalLen}) matches neither num_rows (${numRows}) nor the number of valid rows (${present})`);
  }
  return { valid, dense };
}

export function scalarOf(dataType: DataType, v: unknown, field: string, row: number): ScalarValue {
  switch (dataType) {
    case 'Bool':
      if (typeof v !== 'boolean') invalid(`field ${field} expects Bool, got ${JSON.stringify(v)} at row ${row}`);
      return v;
    case 'Int8':
    case 'Int16':
    case 'Int32': {
      const n = typeof v === 'string' ? Number(v) : v;
      if (typeof n !== 'number' || !Number.isInteger(n)) invalid(`field ${field} expects ${dataType}, got ${JSON.stringify(v)} at row ${row}`);
      const [lo, hi] = INT_RANGE[dataType]!;
      if (n < lo || n > hi) invalid(`value ${n} of field ${field} at row ${row} is out of range for ${dataType} [${lo}, ${hi}]`);
      return n;
    }
    case 'Int64':
      try {
        if (typeof v === 'number' && !Number.isInteger(v)) throw new Error();
        return BigInt(v as string | number | bigint);
      } catch {
        return invalid(`field ${field} expects Int64, got ${JSON.stringify(v)} at row ${row}`);
      }
    case 'Float':
    case 'Double': {
      const n = typeof v === 'string' ? Number(v) : v;
      if (typeof n !== 'number' || Number.isNaN(n)) invalid(`field ${field} expects ${dataType}, got ${JSON.stringify(v)} at row ${row}`);
      return n;
    }
    case 'VarChar':
      if (typeof v !== 'string') invalid(`field ${field} expects VarChar, got ${JSON.stringify(v)} at row ${row}`);
      return v;
    default:
      return invalid(`field ${field}: ${dataType} is not a scalar type`);
  }
}

function defaultScalar(field: FieldSchema): ScalarValue | undefined {
  if (isGeoTimeField(field)) return geoTimeDefault(field);
  const d = field.defaultValue;
  if (d === undefined) return undefined;
  return field.dataType === 'Int64' ? BigInt(d as string | number | bigint) : d;
}

/** The ScalarField member a scalar type's values travel in. */
export const PROTO_MEMBER: Record<string, string> = {
  Bool: 'bool_data',
  Int8: 'int_data',
  Int16: 'int_data',
  Int32: 'int_data',
  Int64: 'long_data',
  Float: 'float_data',
  Double: 'double_data',
  VarChar: 'string_data',
  JSON: 'json_data',
  Array: 'array_data',
  Geometry: 'geometry_wkt_data',
  Timestamptz: 'string_data',
};

/** max_length counts UTF-8 bytes, as Milvus does (a string's `length` counts UTF-16 units). */
function checkLength(field: FieldSchema, s: string, row: number): void {
  if (field.maxLength === undefined || s.length * 3 <= field.maxLength) return; // cannot exceed: skip counting
  const bytes = Buffer.byteLength(s, 'utf8');
  if (bytes > field.maxLength) {
    invalid(`length of varchar field ${field.name} exceeds max length, row number: ${row}, length: ${bytes}, max length: ${field.maxLength}`);
  }
}

/**
 * Converts one request column to a Column of `numRows` rows, validating every value. `timezone` reads
 * Timestamptz strings that carry no offset (the collection's `collection.timezone`, else UTC).
 */
export function fieldDataToColumn(fd: ProtoFieldData | undefined, field: FieldSchema, numRows: number, timezone: string = UTC): Column {
  if (field.dataType === 'FloatVector') return vectorColumn(fd, field, numRows);
  if (isByteVectorType(field.dataType) || field.dataType === 'SparseFloatVector') return typedVectorColumn(fd, field, numRows);
  if (field.dataType === 'ArrayOfStruct') return structColumnOf(fd, field, numRows);
  const member = PROTO_MEMBER[field.dataType]!;
  const scalars = fd?.scalars;
  let values: any[] = [];
  let micros = false;
  if (fd) {
    if (!scalars) invalid(`field ${field.name} expects ${field.dataType} data, got ${fd.field ?? 'nothing'}`);
    const got = scalars.data ?? Object.keys(scalars).find((k) => scalars[k] && k !== 'data');
    const sent = isGeoTimeField(field) ? geoTimeMember(field, got) : member;
    if (got !== sent) invalid(`field ${field.name} expects ${field.dataType} data (${member}), got ${got}`);
    values = scalars[sent]?.data ?? [];
    micros = sent === 'timestamptz_data';
  }
  if (!fd || (values.length === 0 && numRows > 0 && !(fd.valid_data?.length > 0))) {
    // Missing column: allowed only when every row can be filled.
    const def = defaultScalar(field);
    if (def === undefined && !field.nullable) {
      invalid(`fieldSchema(${field.name}) has no corresponding fieldData pass in`);
    }
    return fillColumn(field, numRows, def);
  }
  const { valid, dense } = validity(fd, numRows, values.length, field);
  if (!valid && values.length !== numRows) {
    invalid(`the num_rows (${numRows}) of field data does not match the number of values of field ${field.name} (${values.length})`);
  }
  const def = defaultScalar(field);
  // A null row gets the default when there is one (and is then not null), else stays null.
  const finalValid = valid && field.nullable ? new Uint8Array(numRows) : undefined;
  if (valid && !field.nullable && def === undefined && valid.some((v) => v === 0)) {
    invalid(`field ${field.name} is not nullable but null values were given`);
  }
  let phys = 0;
  const rowValue = (i: number): { v: unknown; present: boolean } => {
    if (!valid) return { v: values[i], present: true };
    if (valid[i]) return { v: values[dense ? i : phys++], present: true };
    if (dense) phys++;
    return { v: undefined, present: false };
  };
  switch (field.dataType) {
    case 'JSON': {
      const data = new Array<unknown>(numRows);
      for (let i = 0; i < numRows; i++) {
        const { v, present } = rowValue(i);
        if (!present) {
          data[i] = undefined;
          continue;
        }
        if (finalValid) finalValid[i] = 1;
        data[i] = parseJson(v, field.name, i);
      }
      return { kind: 'json', data, valid: finalValid };
    }
    case 'Array': {
      const et = field.elementType!;
      const data = new Array<ScalarValue[]>(numRows);
      for (let i = 0; i < numRows; i++) {
        const { v, present } = rowValue(i);
        if (!present) {
          data[i] = [];
          continue;
        }
        if (finalValid) finalValid[i] = 1;
        const elems: any[] = (v as any)?.[PROTO_MEMBER[et]!]?.data ?? [];
        if (field.maxCapacity !== undefined && elems.length > field.maxCapacity) {
          invalid(`array length ${elems.length} of field ${field.name} at row ${i} exceeds max capacity ${field.maxCapacity}`);
        }
        // Array.from, not elems.map: a Float element array arrives as a Float32Array (proto.ts decodes packed
        // floats into one), whose map would give a Float32Array instead of a row of values.
        data[i] = Array.from(elems, (e) => {
          const s = scalarOf(et, e, field.name, i);
          if (et === 'VarChar') checkLength(field, s as string, i);
          return s;
        });
      }
      return { kind: 'array', elementType: et, data, valid: finalValid };
    }
    default: {
      const col = fillColumn(field, numRows, undefined, !!finalValid);
      const out = col.data as any;
      const codec = field.dataType === 'Geometry' ? new WktCodec() : undefined;
      for (let i = 0; i < numRows; i++) {
        const { v, present } = rowValue(i);
        if (!present) {
          if (def !== undefined) {
            // Milvus: a null row of a field with a default takes the default, and is then not null.
            out[i] = toStored(field.dataType, def);
            if (finalValid) finalValid[i] = 1;
          }
          continue;
        }
        if (finalValid) finalValid[i] = 1;
        if (isGeoTimeField(field)) {
          out[i] = geoTimeValue(field, v, i, { codec: codec ?? new WktCodec(), timezone, micros });
          continue;
        }
        const s = scalarOf(field.dataType, v, field.name, i);
        if (field.dataType === 'VarChar') checkLength(field, s as string, i);
        out[i] = toStored(field.dataType, s);
      }
      return { ...col, valid: finalValid } as Column;
    }
  }
}

function toStored(t: DataType, v: ScalarValue): unknown {
  if (t === 'Bool') return v ? 1 : 0;
  return v;
}

function parseJson(v: unknown, field: string, row: number): unknown {
  const text = Buffer.isBuffer(v) || v instanceof Uint8Array ? Buffer.from(v).toString('utf8') : String(v ?? '');
  if (text === '') return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return invalid(`invalid JSON in field ${field} at row ${row}: ${text.slice(0, 64)}`);
  }
}

/** A column of n rows all equal to `value` (or null when value is undefined and the field is nullable). */
export function fillColumn(field: FieldSchema, n: number, value: ScalarValue | undefined, forceValid = false): Column {
  const nullable = field.nullable;
  const valid = nullable || forceValid ? new Uint8Array(n).fill(value === undefined ? 0 : 1) : undefined;
  switch (field.dataType) {
    case 'Bool':
      return { kind: 'bool', data: new Uint8Array(n).fill(value ? 1 : 0), valid };
    case 'Int8':
    case 'Int16':
    case 'Int32':
      return { kind: 'int32', data: new Int32Array(n).fill(Number(value ?? 0)), valid };
    case 'Int64':
      return { kind: 'int64', data: new BigInt64Array(n).fill(BigInt((value as bigint | number | undefined) ?? 0)), valid };
    case 'Float':
      return { kind: 'float', data: new Float32Array(n).fill(Number(value ?? 0)), valid };
    case 'Double':
      return { kind: 'double', data: new Float64Array(n).fill(Number(value ?? 0)), valid };
    case 'VarChar':
    case 'Geometry':
      return { kind: 'string', data: new Array<string>(n).fill(String(value ?? '')), valid };
    case 'Timestamptz':
      return { kind: 'int64', data: new BigInt64Array(n).fill(BigInt((value as bigint | undefined) ?? 0)), valid };
    case 'JSON':
      return { kind: 'json', data: new Array<unknown>(n).fill(undefined), valid: valid ?? new Uint8Array(n) };
    case 'Array':
      return { kind: 'array', elementType: field.elementType!, data: new Array(n).fill([]), valid: valid ?? new Uint8Array(n) };
    case 'FloatVector':
      return { kind: 'vector', dim: field.dim!, data: new Float32Array(n * field.dim!), valid: valid ?? new Uint8Array(n) };
    case 'BinaryVector':
    case 'Float16Vector':
    case 'BFloat16Vector':
    case 'Int8Vector':
    case 'SparseFloatVector':
      return nullVectorColumn(field, n);
    case 'ArrayOfStruct':
      return { kind: 'struct', layout: structLayout(field), data: new Array<StructRow>(n).fill([]), valid: valid ?? new Uint8Array(n) };
  }
}

function vectorColumn(fd: ProtoFieldData | undefined, field: FieldSchema, numRows: number): Column {
  const dim = field.dim!;
  if (!fd) {
    if (field.nullable) return fillColumn(field, numRows, undefined);
    invalid(`fieldSchema(${field.name}) has no corresponding fieldData pass in`);
  }
  const v = fd.vectors;
  if (!v) invalid(`field ${field.name} expects FloatVector data, got ${fd.field ?? 'nothing'}`);
  const member = v.data ?? (v.float_vector ? 'float_vector' : undefined);
  if (member !== 'float_vector') invalid(`field ${field.name} expects FloatVector data (float_vector), got ${member}`);
  const gotDim = Number(v.dim);
  if (gotDim !== dim) {
    throw quiverError('DimensionMismatch', `the dim (${gotDim}) of field data(${field.name}) is not equal to schema dim (${dim})`);
  }
  const raw: ArrayLike<number> = v.float_vector?.data ?? [];
  const vd: boolean[] = fd.valid_data ?? [];
  let valid: Uint8Array | undefined;
  let present = numRows;
  if (vd.length > 0) {
    if (vd.length !== numRows) invalid(`the length of valid_data of field ${field.name} (${vd.length}) is not equal to num_rows (${numRows})`);
    valid = new Uint8Array(numRows);
    present = 0;
    for (let i = 0; i < numRows; i++)
      if (vd[i]) {
        valid[i] = 1;
        present++;
      }
    if (!field.nullable && present !== numRows) invalid(`field ${field.name} is not nullable but null vectors were given`);
  }
  if (raw.length !== present * dim) {
    if (raw.length % dim === 0) {
      throw quiverError(
        'DimensionMismatch',
        `the num_rows (${numRows}) of field data does not match the number of vectors of field ${field.name} (${raw.length / dim})`,
      );
    }
    throw quiverError(
      'DimensionMismatch',
      `the length (${raw.length}) of float vector field ${field.name} is not a multiple of its dim (${dim}); every vector must have dim ${dim}`,
    );
  }
  const data = new Float32Array(numRows * dim);
  if (!valid || present === numRows) {
    data.set(raw as ArrayLike<number>);
  } else {
    let p = 0;
    for (let i = 0; i < numRows; i++) {
      if (!valid[i]) continue;
      for (let j = 0; j < dim; j++) data[i * dim + j] = raw[p * dim + j]!;
      p++;
    }
  }
  for (let i = 0; i < data.length; i++) {
    const x = data[i]!;
    if (!Number.isFinite(x)) {
      invalid(`float vector field ${field.name} contains ${Number.isNaN(x) ? 'NaN' : 'Inf'} at row ${Math.floor(i / dim)}, position ${i % dim}`);
    }
  }
  return { kind: 'vector', dim, data, valid: field.nullable ? (valid ?? new Uint8Array(numRows).fill(1)) : undefined };
}

// ---------------------------------------------------------------- output

function validData(c: Column, n: number): boolean[] {
  if (!c.valid) return [];
  const out = new Array<boolean>(n);
  for (let i = 0; i < n; i++) out[i] = c.valid[i] === 1;
  return out;
}

function scalarArrayMember(et: ScalarType, values: readonly ScalarValue[]): Record<string, unknown> {
  const member = PROTO_MEMBER[et]!;
  const data = et === 'Int64' ? values.map((v) => String(v)) : values;
  return { [member]: { data } };
}

/** Builds a proto FieldData for output (query/search results), rows already gathered. */
export function columnToFieldData(field: FieldSchema, c: Column, n: number, dynamicKeys?: readonly string[]): Record<string, unknown> {
  const base = { type: field.dataType, field_name: field.name, field_id: String(field.fieldId), is_dynamic: field.isDynamic, valid_data: validData(c, n) };
  if (isGeoTimeField(field)) return { ...base, scalars: geoTimeOutput(field, c, n) };
  switch (c.kind) {
    case 'vector':
      return { ...base, vectors: { dim: String(c.dim), float_vector: { data: c.data } } };
    case 'bytevec':
    case 'sparse':
      return { ...base, vectors: typedVectorOutput(c, n) };
    case 'bool':
      return { ...base, scalars: { bool_data: { data: Array.from(c.data, (x) => x === 1) } } };
    case 'int32':
      return { ...base, scalars: { int_data: { data: Array.from(c.data) } } };
    case 'int64': {
      const data = new Array<string>(n);
      for (let i = 0; i < n; i++) data[i] = c.data[i]!.toString();
      return { ...base, scalars: { long_data: { data } } };
    }
    case 'float':
      return { ...base, scalars: { float_data: { data: Array.from(c.data) } } };
    case 'double':
      return { ...base, scalars: { double_data: { data: Array.from(c.data) } } };
    case 'string':
      return { ...base, scalars: { string_data: { data: c.data.slice(0, n) } } };
    case 'json': {
      const data = c.data.slice(0, n).map((v) => {
        if (v === undefined) return Buffer.alloc(0);
        if (dynamicKeys && field.name === DYNAMIC_FIELD_NAME && v !== null && typeof v === 'object') {
          const picked: Record<string, unknown> = {};
          for (const k of dynamicKeys) if (k in (v as object)) picked[k] = (v as Record<string, unknown>)[k];
          return Buffer.from(JSON.stringify(picked));
        }
        return Buffer.from(JSON.stringify(v));
      });
      return { ...base, scalars: { json_data: { data } } };
    }
    case 'array':
      return {
        ...base,
        scalars: { array_data: { element_type: c.elementType, data: c.data.slice(0, n).map((row) => scalarArrayMember(c.elementType, row)) } },
      };
    case 'struct':
      return { ...base, struct_arrays: structArraysOutput(field, c, n) };
  }
}
