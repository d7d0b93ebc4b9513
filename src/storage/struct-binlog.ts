/**
 * Arrow mapping of Array of Struct columns (binlog.ts delegates here):
 *   struct → List<Struct<sub-field...>>, one list per row, one Arrow child per sub-field, flat over all
 *            elements of the batch: Bool / Int32 (Int8, Int16, Int32) / Int64 / Float32 / Float64 / Utf8, and
 *            FixedSizeList<Float32>(dim) for a FloatVector sub-field (an "embedding list").
 * Each child carries the usual quiver.kind and quiver.crc32 (checked by the child's own decode) plus
 * quiver.subType (the sub-field's data type, so Int8 and Int32 stay distinct) and quiver.dim for vectors.
 * The list's own checksum covers the validity bitmap and the offsets. A null row is an empty list with
 * its validity bit clear.
 */

import { Field, List, makeData, Struct, Type, type Data } from 'apache-arrow';
import { quiverError } from '../common/errors.js';
import type { Column, ColumnKind, ScalarType, ScalarValue, StructElement, StructLayoutField, StructRow } from '../schema/types.js';
import { columnKindOf } from '../schema/types.js';
import { crc32 } from './checksum.js';

export const STRUCT_FORMAT_VERSION = '1';
const META_FORMAT = 'quiver.structFormat';
const META_SUBTYPE = 'quiver.subType';
const META_DIM = 'quiver.dim';
const META_KIND = 'quiver.kind';

const SUB_TYPES: readonly StructLayoutField['dataType'][] = ['Bool', 'Int8', 'Int16', 'Int32', 'Int64', 'Float', 'Double', 'VarChar', 'FloatVector'];

interface Common {
  readonly length: number;
  readonly nullCount: number;
  readonly nullBitmap: Uint8Array | undefined;
}

type StructColumn = Column & { kind: 'struct' };
type EncodeField = (name: string, column: Column, meta: ReadonlyMap<string, string>) => { readonly field: Field; readonly data: Data };
type DecodeField = (field: Field, data: Data | undefined, length: number, kind: ColumnKind) => Column;

function bad(reason: string): never {
  throw quiverError('DataInvalid', `binlog: ${reason}`);
}

/** The flat column of one sub-field over every element of every row. */
function childColumn(sub: StructLayoutField, rows: readonly StructRow[], total: number): Column {
  const at = (i: number, j: number): ScalarValue | Float32Array => {
    const v = rows[i]![j]![sub.name];
    if (v === undefined) bad(`struct row ${i} element ${j} has no value for sub-field ${sub.name}`);
    return v;
  };
  const fill = <T extends { [k: number]: unknown }>(out: T, conv: (v: ScalarValue | Float32Array, i: number, j: number) => unknown): T => {
    let k = 0;
    for (let i = 0; i < rows.length; i++) for (let j = 0; j < rows[i]!.length; j++) out[k++] = conv(at(i, j), i, j);
    return out;
  };
  const num = (v: ScalarValue | Float32Array, i: number, j: number): number =>
    typeof v === 'number' ? v : bad(`struct row ${i} element ${j} sub-field ${sub.name} is not a number`);
  switch (sub.dataType) {
    case 'Bool':
      return { kind: 'bool', data: fill(new Uint8Array(total), (v) => (v === true ? 1 : 0)) };
    case 'Int8':
    case 'Int16':
    case 'Int32':
      return { kind: 'int32', data: fill(new Int32Array(total), num) };
    case 'Int64':
      return { kind: 'int64', data: fill(new BigInt64Array(total), (v) => BigInt(v as bigint)) };
    case 'Float':
      return { kind: 'float', data: fill(new Float32Array(total), num) };
    case 'Double':
      return { kind: 'double', data: fill(new Float64Array(total), num) };
    case 'VarChar':
      return {
        kind: 'string',
        data: fill(new Array<string>(total), (v, i, j) =>
          typeof v === 'string' ? v : bad(`struct row ${i} element ${j} sub-field ${sub.name} is not a string`),
        ),
      };
    case 'FloatVector': {
      const dim = sub.dim ?? 0;
      if (!Number.isSafeInteger(dim) || dim <= 0) bad(`struct sub-field ${sub.name} has dim ${dim}`);
      const data = new Float32Array(total * dim);
      let k = 0;
      for (let i = 0; i < rows.length; i++)
        for (let j = 0; j < rows[i]!.length; j++) {
          const v = at(i, j);
          if (!(v instanceof Float32Array) || v.length !== dim) bad(`struct row ${i} element ${j} sub-field ${sub.name} is not a vector of dim ${dim}`);
          data.set(v, k * dim);
          k++;
        }
      return { kind: 'vector', dim, data };
    }
  }
}

/** Encodes a struct column as List<Struct<...>>; returns the Arrow data and the running CRC. */
export function encodeStructColumn(
  column: StructColumn,
  common: Common,
  crc: number,
  meta: Map<string, string>,
  encodeField: EncodeField,
): { data: Data; crc: number } {
  meta.set(META_FORMAT, STRUCT_FORMAT_VERSION);
  if (column.layout.length === 0) bad('struct column has no sub-fields');
  const offsets = new Int32Array(common.length + 1);
  let total = 0;
  for (let i = 0; i < common.length; i++) {
    const row = column.data[i];
    if (!Array.isArray(row)) bad(`struct row ${i} is not an array`);
    total += row.length;
    offsets[i + 1] = total;
  }
  crc = crc32(offsets, crc);
  const children = column.layout.map((sub) => {
    if (!SUB_TYPES.includes(sub.dataType)) bad(`struct sub-field ${sub.name} has type ${String(sub.dataType)}`);
    const m = new Map<string, string>([[META_SUBTYPE, sub.dataType]]);
    if (sub.dataType === 'FloatVector') m.set(META_DIM, String(sub.dim));
    return encodeField(sub.name, childColumn(sub, column.data, total), m);
  });
  const struct = makeData({ type: new Struct(children.map((c) => c.field)), length: total, nullCount: 0, children: children.map((c) => c.data) });
  const type = new List(new Field('item', struct.type, false));
  return { data: makeData({ type, ...common, valueOffsets: offsets, child: struct }), crc };
}

/** Decodes a struct field (validity is the caller's); `fail` builds the corrupt-file error. */
export function decodeStructColumn(
  field: Field,
  data: Data | undefined,
  n: number,
  crc: number,
  fail: (what: string) => Error,
  decodeField: DecodeField,
): { column: StructColumn; crc: number } {
  const format = field.metadata.get(META_FORMAT);
  if (format !== STRUCT_FORMAT_VERSION) throw fail(`struct format ${String(format)}, expected ${STRUCT_FORMAT_VERSION}`);
  const type = field.type as unknown as { typeId: Type; children?: Field[] };
  const itemType = type.children?.[0]?.type as unknown as { typeId: Type; children?: Field[] } | undefined;
  if (type.typeId !== Type.List || itemType?.typeId !== Type.Struct) throw fail(`field ${field.name} is not a List<Struct>`);
  const subFields = itemType.children ?? [];
  const layout: StructLayoutField[] = subFields.map((f) => {
    const dataType = f.metadata.get(META_SUBTYPE) as StructLayoutField['dataType'] | undefined;
    if (dataType === undefined || !SUB_TYPES.includes(dataType)) throw fail(`struct sub-field ${f.name} has type ${String(dataType)}`);
    return { name: f.name, dataType, dim: dataType === 'FloatVector' ? Number(f.metadata.get(META_DIM)) : undefined };
  });
  let offsets: Int32Array = new Int32Array(n + 1);
  if (data !== undefined && n > 0) {
    const raw: unknown = data.valueOffsets;
    if (!(raw instanceof Int32Array) || raw.length < n + 1) throw fail('struct offsets missing');
    offsets = raw.subarray(0, n + 1);
  }
  for (let i = 0; i < n; i++) if (offsets[i + 1]! < offsets[i]!) throw fail(`struct offsets decrease at row ${i}`);
  if (offsets[0] !== 0) throw fail(`struct offsets start at ${offsets[0]}`);
  crc = crc32(offsets, crc);
  const total = offsets[n] ?? 0;
  const structData = data?.children[0];
  if (data !== undefined && n > 0 && (structData === undefined || structData.length < total)) throw fail('struct child data missing');
  const columns = subFields.map((f, j) => {
    const kind = f.metadata.get(META_KIND) as ColumnKind | undefined;
    if (kind !== columnKindOf(layout[j]!.dataType)) throw fail(`struct sub-field ${f.name} holds ${String(kind)}`);
    return decodeField(f, structData?.children[j], total, kind);
  });
  const rows = new Array<StructRow>(n);
  for (let i = 0; i < n; i++) {
    const elems: StructElement[] = [];
    for (let k = offsets[i]!; k < offsets[i + 1]!; k++) {
      const el: Record<string, ScalarValue | Float32Array> = {};
      layout.forEach((sub, j) => {
        el[sub.name] = elementOf(columns[j]!, sub.dataType, k);
      });
      elems.push(el);
    }
    rows[i] = elems;
  }
  return { column: { kind: 'struct', layout, data: rows }, crc };
}

function elementOf(c: Column, t: StructLayoutField['dataType'], k: number): ScalarValue | Float32Array {
  switch (c.kind) {
    case 'bool':
      return c.data[k] === 1;
    case 'int32':
    case 'float':
    case 'double':
      return c.data[k]!;
    case 'int64':
      return c.data[k]!;
    case 'string':
      return c.data[k]!;
    case 'vector':
      return c.data.slice(k * c.dim, (k + 1) * c.dim);
    default:
      throw quiverError('SegmentLoadFailed', `binlog: struct sub-field of type ${t as ScalarType | 'FloatVector'} decoded as ${c.kind}`);
  }
}
