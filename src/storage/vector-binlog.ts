/**
 * Arrow mapping of the vector columns other than FloatVector (binlog.ts delegates here):
 *   bytevec → FixedSizeBinary(bytesPerRow): the row bytes exactly as the wire carries them (binary: dim/8
 *             bytes, MSB first; Float16/BFloat16: 2 little-endian bytes per element; Int8: one byte each).
 *             Field metadata quiver.vtype and quiver.dim say how to read a row.
 *   sparse  → List<Struct<index: Uint32, value: Float32>>, one list per row, indices increasing.
 * Both carry quiver.vectorFormat; a reader refuses a version it does not know, so a later layout change
 * fails loudly instead of being misread.
 */

import { Field, FixedSizeBinary, Float32, List, makeData, Struct, Type, Uint32, type Data } from 'apache-arrow';
import { quiverError } from '../common/errors.js';
import { BYTE_VECTOR_TYPES, bytesPerRow, type ByteVectorType, type Column, type SparseRow } from '../schema/types.js';
import { crc32 } from './checksum.js';

export const VECTOR_FORMAT_VERSION = '1';
const META_VTYPE = 'quiver.vtype';
const META_DIM = 'quiver.dim';
const META_FORMAT = 'quiver.vectorFormat';

interface Common {
  readonly length: number;
  readonly nullCount: number;
  readonly nullBitmap: Uint8Array | undefined;
}

type VecColumn = Column & { kind: 'bytevec' | 'sparse' };

export function sparseStructType(): Struct {
  return new Struct([new Field('index', new Uint32(), false), new Field('value', new Float32(), false)]);
}

/** Encodes a bytevec or sparse column; returns the Arrow data and the running CRC. */
export function encodeVectorColumn(column: VecColumn, common: Common, crc: number, meta: Map<string, string>): { data: Data; crc: number } {
  meta.set(META_FORMAT, VECTOR_FORMAT_VERSION);
  if (column.kind === 'bytevec') {
    if (!(column.data instanceof Uint8Array)) throw quiverError('ParameterInvalid', 'binlog: bytevec column data must be a Uint8Array');
    const w = bytesPerRow(column.vtype, column.dim);
    if (!Number.isInteger(w) || w <= 0) throw quiverError('ParameterInvalid', `binlog: ${column.vtype} dim ${column.dim} gives ${w} bytes per row`);
    if (column.data.length !== common.length * w) {
      throw quiverError('ParameterInvalid', `binlog: ${column.vtype} column holds ${column.data.length} bytes, expected ${common.length} rows * ${w}`);
    }
    meta.set(META_VTYPE, column.vtype);
    meta.set(META_DIM, String(column.dim));
    crc = crc32(column.data, crc);
    return { data: makeData({ type: new FixedSizeBinary(w), ...common, data: column.data }), crc };
  }
  const offsets = new Int32Array(common.length + 1);
  let total = 0;
  for (let i = 0; i < common.length; i++) {
    const row = column.data[i];
    if (!row || row.indices.length !== row.values.length) throw quiverError('DataInvalid', `binlog: sparse row ${i} is malformed`);
    total += row.indices.length;
    offsets[i + 1] = total;
  }
  const indices = new Uint32Array(total);
  const values = new Float32Array(total);
  for (let i = 0; i < common.length; i++) {
    const row = column.data[i]!;
    indices.set(row.indices, offsets[i]!);
    values.set(row.values, offsets[i]!);
  }
  crc = crc32(values, crc32(indices, crc32(offsets, crc)));
  const struct = makeData({
    type: sparseStructType(),
    length: total,
    nullCount: 0,
    children: [
      makeData({ type: new Uint32(), length: total, nullCount: 0, data: indices }),
      makeData({ type: new Float32(), length: total, nullCount: 0, data: values }),
    ],
  });
  const type = new List(new Field('item', struct.type, false));
  return { data: makeData({ type, ...common, valueOffsets: offsets, child: struct }), crc };
}

/** Decodes a bytevec or sparse field; `fail` builds the corrupt-file error. Returns the column (no validity) and CRC. */
export function decodeVectorColumn(
  kind: 'bytevec' | 'sparse',
  field: Field,
  data: Data | undefined,
  n: number,
  crc: number,
  fail: (what: string) => Error,
): { column: VecColumn; crc: number } {
  const meta = field.metadata;
  const format = meta.get(META_FORMAT);
  if (format !== VECTOR_FORMAT_VERSION) throw fail(`field ${field.name} has vector format ${String(format)}, expected ${VECTOR_FORMAT_VERSION}`);
  if (kind === 'bytevec') {
    const vtype = meta.get(META_VTYPE) as ByteVectorType | undefined;
    if (!vtype || !BYTE_VECTOR_TYPES.includes(vtype)) throw fail(`field ${field.name} has vector type ${String(vtype)}`);
    const dim = Number(meta.get(META_DIM));
    const w = bytesPerRow(vtype, dim);
    if (!Number.isInteger(w) || w <= 0) throw fail(`field ${field.name} has dim ${String(meta.get(META_DIM))} for ${vtype}`);
    if (field.type.typeId !== Type.FixedSizeBinary || (field.type as FixedSizeBinary).byteWidth !== w) {
      throw fail(`field ${field.name} has Arrow type ${String(field.type)}, expected FixedSizeBinary(${w})`);
    }
    let bytes: Uint8Array = new Uint8Array(0);
    if (data !== undefined && n > 0) {
      const v: unknown = data.values;
      if (!(v instanceof Uint8Array) || v.length < n * w) throw fail(`field ${field.name} holds fewer than ${n * w} bytes`);
      bytes = v.subarray(0, n * w);
    }
    crc = crc32(bytes, crc);
    return { column: { kind: 'bytevec', vtype, dim, data: bytes }, crc };
  }
  if (field.type.typeId !== Type.List) throw fail(`field ${field.name} has Arrow type ${String(field.type)}, expected List<Struct<index, value>>`);
  const rows = new Array<SparseRow>(n);
  if (data === undefined || n === 0) return { column: { kind: 'sparse', data: [] }, crc: crc32(new Int32Array(n + 1), crc) };
  const offsets: unknown = data.valueOffsets;
  const struct = data.children[0];
  const idx: unknown = struct?.children[0]?.values;
  const val: unknown = struct?.children[1]?.values;
  if (!(offsets instanceof Int32Array) || !(idx instanceof Uint32Array) || !(val instanceof Float32Array))
    throw fail(`field ${field.name}: sparse buffers missing`);
  const off = offsets.subarray(0, n + 1);
  const total = off[n]!;
  if (off[0] !== 0 || total > idx.length || total > val.length) throw fail(`field ${field.name}: sparse offsets out of range`);
  const indices = idx.subarray(0, total);
  const values = val.subarray(0, total);
  crc = crc32(values, crc32(indices, crc32(off, crc)));
  for (let i = 0; i < n; i++) {
    const a = off[i]!;
    const b = off[i + 1]!;
    if (b < a) throw fail(`field ${field.name}: sparse offsets decrease at row ${i}`);
    // Copies: rows outlive the file buffer in the loaded segment and must not pin it per row.
    rows[i] = { indices: indices.slice(a, b), values: values.slice(a, b) };
  }
  return { column: { kind: 'sparse', data: rows }, crc };
}
