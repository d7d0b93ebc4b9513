import { quiverError } from '../common/errors.js';
import type { Column, DataType, FieldSchema, ScalarValue, StructElement, StructRow, StructSubField } from '../schema/types.js';
import { structLayout } from '../schema/types.js';
import { INT_RANGE, PROTO_MEMBER } from './field-data.js';

/**
 * proto `schema.FieldData` with `struct_arrays` ⇄ an Array of Struct column. The SDK sends one FieldData
 * per sub-field inside `struct_arrays.fields`: scalar sub-fields as `scalars.array_data` (one array per
 * row), FloatVector sub-fields as `vectors.vector_array` (one VectorField per row holding every element's
 * vector back to back). Null rows (a nullable struct field) are left out of the sub-fields (compact) or
 * sent as empty arrays (row-dense); the outer `valid_data` says which rows are null.
 */

/* eslint-disable @typescript-eslint/no-explicit-any */

function invalid(reason: string): never {
  throw quiverError('DataInvalid', reason);
}

function subScalar(sub: StructSubField, path: string, v: unknown, row: number, el: number): ScalarValue {
  const where = `${path} at row ${row}, element ${el}`;
  switch (sub.dataType) {
    case 'Bool':
      return typeof v === 'boolean' ? v : invalid(`${where} expects Bool, got ${JSON.stringify(v)}`);
    case 'Int8':
    case 'Int16':
    case 'Int32': {
      const n = typeof v === 'string' ? Number(v) : v;
      if (typeof n !== 'number' || !Number.isInteger(n)) invalid(`${where} expects ${sub.dataType}, got ${JSON.stringify(v)}`);
      const [lo, hi] = INT_RANGE[sub.dataType as DataType]!;
      if (n < lo || n > hi) invalid(`value ${n} of ${where} is out of range for ${sub.dataType} [${lo}, ${hi}]`);
      return n;
    }
    case 'Int64':
      try {
        if (typeof v === 'number' && !Number.isInteger(v)) throw new Error();
        return BigInt(v as string | number | bigint);
      } catch {
        return invalid(`${where} expects Int64, got ${JSON.stringify(v)}`);
      }
    case 'Float':
    case 'Double': {
      const n = typeof v === 'string' ? Number(v) : v;
      if (typeof n !== 'number' || Number.isNaN(n)) invalid(`${where} expects ${sub.dataType}, got ${JSON.stringify(v)}`);
      return n;
    }
    case 'VarChar': {
      if (typeof v !== 'string') return invalid(`${where} expects VarChar, got ${JSON.stringify(v)}`);
      const bytes = Buffer.byteLength(v, 'utf8');
      if (sub.maxLength !== undefined && bytes > sub.maxLength) {
        invalid(`length of varchar ${where} exceeds max length, length: ${bytes}, max length: ${sub.maxLength}`);
      }
      return v;
    }
    case 'FloatVector':
      return invalid(`${where}: FloatVector is not a scalar`);
  }
}

/** One sub-field's values per present row: arrays of scalars or of vectors. */
function subRows(sub: StructSubField, path: string, fd: any): unknown[][] {
  if (sub.dataType === 'FloatVector') {
    const va = fd.vectors?.vector_array;
    if (!va)
      invalid(
        `${path} expects FloatVector embedding lists (vectors.vector_array), got ${fd.field === 'scalars' ? `scalars.${fd.scalars?.data}` : (fd.vectors?.data ?? 'nothing')}`,
      );
    const dim = sub.dim!;
    return (va.data ?? []).map((vf: any, row: number) => {
      const got = Number(vf?.dim ?? va.dim);
      const member = vf?.data ?? (vf?.float_vector ? 'float_vector' : undefined);
      if (member !== 'float_vector') invalid(`${path} expects FloatVector data (float_vector) at row ${row}, got ${member}`);
      const raw: ArrayLike<number> = vf.float_vector?.data ?? [];
      if (raw.length > 0 && got !== dim)
        throw quiverError('DimensionMismatch', `the dim (${got}) of ${path} at row ${row} is not equal to schema dim (${dim})`);
      if (raw.length % dim !== 0) {
        throw quiverError(
          'DimensionMismatch',
          `the length (${raw.length}) of ${path} at row ${row} is not a multiple of its dim (${dim}); every vector must have dim ${dim}`,
        );
      }
      const out: Float32Array[] = [];
      for (let k = 0; k < raw.length / dim; k++) {
        const vec = Float32Array.from({ length: dim }, (_, j) => raw[k * dim + j]!);
        const bad = vec.findIndex((x) => !Number.isFinite(x));
        if (bad >= 0) invalid(`${path} contains ${Number.isNaN(vec[bad]) ? 'NaN' : 'Inf'} at row ${row}, element ${k}, position ${bad}`);
        out.push(vec);
      }
      return out;
    });
  }
  const ad = fd.scalars?.array_data;
  if (!ad)
    invalid(
      `${path} expects ${sub.dataType} arrays (scalars.array_data), got ${fd.field === 'vectors' ? `vectors.${fd.vectors?.data}` : (fd.scalars?.data ?? 'nothing')}`,
    );
  const member = PROTO_MEMBER[sub.dataType]!;
  return (ad.data ?? []).map((sf: any, row: number) => {
    const got = sf?.data ?? Object.keys(sf ?? {}).find((k) => k !== 'data' && sf[k]);
    if (got !== undefined && got !== member) invalid(`${path} expects ${sub.dataType} elements (${member}) at row ${row}, got ${got}`);
    return (sf?.[member]?.data ?? []) as unknown[];
  });
}

/** Converts a request's struct-array column to a Column of `numRows` rows, validating every element. */
export function structColumnOf(fd: any, field: FieldSchema, numRows: number): Column {
  const subs = field.structFields ?? [];
  const layout = structLayout(field);
  if (!fd) {
    if (!field.nullable) invalid(`fieldSchema(${field.name}) has no corresponding fieldData pass in`);
    return { kind: 'struct', layout, data: new Array<StructRow>(numRows).fill([]), valid: new Uint8Array(numRows) };
  }
  const sa = fd.struct_arrays;
  if (!sa) invalid(`field ${field.name} expects Array of Struct data (struct_arrays), got ${fd.field ?? 'nothing'}`);
  const vd: boolean[] = fd.valid_data ?? [];
  let valid: Uint8Array | undefined;
  let present = numRows;
  if (vd.length > 0) {
    if (vd.length !== numRows) invalid(`the length of valid_data of field ${field.name} (${vd.length}) is not equal to num_rows (${numRows})`);
    valid = Uint8Array.from(vd, (b) => (b ? 1 : 0));
    present = valid.reduce((s, b) => s + b, 0);
    if (!field.nullable && present !== numRows) invalid(`field ${field.name} is not nullable but ${numRows - present} null rows were given`);
  }
  const byName = new Map<string, any>();
  for (const sfd of sa.fields ?? []) {
    const name = String(sfd.field_name ?? '');
    if (!subs.some((s) => s.name === name))
      invalid(`sub-field ${name} is not in struct field ${field.name} (sub-fields: ${subs.map((s) => s.name).join(', ')})`);
    if (byName.has(name)) invalid(`duplicated sub-field ${name} in struct field ${field.name}`);
    byName.set(name, sfd);
  }
  const perSub = subs.map((sub) => {
    const path = `${field.name}[${sub.name}]`;
    const sfd = byName.get(sub.name);
    if (!sfd) {
      if (present === 0) return { sub, rows: [] as unknown[][], dense: false };
      invalid(`struct field ${field.name} has no data for sub-field ${sub.name}`);
    }
    const rows = subRows(sub, path, sfd);
    const dense = rows.length === numRows;
    if (!dense && rows.length !== present) {
      invalid(`the number of rows of ${path} (${rows.length}) matches neither num_rows (${numRows}) nor the number of non-null rows (${present})`);
    }
    return { sub, rows, dense };
  });
  const data = new Array<StructRow>(numRows);
  let phys = 0;
  for (let i = 0; i < numRows; i++) {
    if (valid && !valid[i]) {
      data[i] = [];
      for (const p of perSub) if (p.dense && (p.rows[i]?.length ?? 0) > 0) invalid(`${field.name}[${p.sub.name}] has elements at null row ${i}`);
      continue;
    }
    const at = phys++;
    let count = -1;
    const lists = perSub.map((p) => {
      const list = p.rows[p.dense ? i : at] ?? [];
      if (count === -1) count = list.length;
      else if (list.length !== count) {
        invalid(
          `sub-fields of struct field ${field.name} have different element counts at row ${i} (${perSub[0]!.sub.name}: ${count}, ${p.sub.name}: ${list.length})`,
        );
      }
      return list;
    });
    if (field.maxCapacity !== undefined && count > field.maxCapacity) {
      invalid(`array length ${count} of struct field ${field.name} at row ${i} exceeds max capacity ${field.maxCapacity}`);
    }
    const elems: StructElement[] = [];
    for (let k = 0; k < Math.max(count, 0); k++) {
      const el: Record<string, ScalarValue | Float32Array> = {};
      perSub.forEach((p, j) => {
        const v = lists[j]![k];
        el[p.sub.name] = p.sub.dataType === 'FloatVector' ? (v as Float32Array) : subScalar(p.sub, `${field.name}[${p.sub.name}]`, v, i, k);
      });
      elems.push(el);
    }
    data[i] = elems;
  }
  return { kind: 'struct', layout, data, valid: field.nullable ? (valid ?? new Uint8Array(numRows).fill(1)) : undefined };
}

/** The struct_arrays member of an output FieldData (rows already gathered; null rows as empty arrays). */
export function structArraysOutput(field: FieldSchema, c: Column & { kind: 'struct' }, n: number): Record<string, unknown> {
  const subs = field.structFields ?? [];
  const rows = c.data.slice(0, n);
  const fields = subs.map((sub) => {
    const base = { field_name: sub.name, field_id: String(sub.fieldId), is_dynamic: false, valid_data: [] };
    if (sub.dataType === 'FloatVector') {
      const dim = String(sub.dim);
      const data = rows.map((row) => {
        const flat = new Float32Array(row.length * sub.dim!);
        row.forEach((el, k) => flat.set(el[sub.name] as Float32Array, k * sub.dim!));
        return { dim, float_vector: { data: flat } };
      });
      return { ...base, type: 'ArrayOfVector', vectors: { dim, vector_array: { dim, element_type: 'FloatVector', data } } };
    }
    const member = PROTO_MEMBER[sub.dataType]!;
    const data = rows.map((row) => ({
      [member]: { data: row.map((el) => (sub.dataType === 'Int64' ? String(el[sub.name]) : el[sub.name])) },
    }));
    return { ...base, type: 'Array', scalars: { array_data: { element_type: sub.dataType, data } } };
  });
  return { fields };
}
