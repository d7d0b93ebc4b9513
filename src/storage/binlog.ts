/**
 * Binlog formats: insert binlogs (one column per file) and deltalogs, as Arrow IPC *files*
 * (apache-arrow 18.1.0), so that any Arrow reader can open them and a vector column maps straight into a
 * `Float32Array` without touching each element.
 *
 * Column mapping (one field per file, one record batch):
 *   bool   → Bool                 int32 → Int32     int64 → Int64 (BigInt64Array)
 *   float  → Float32              double → Float64  string → Utf8
 *   vector → FixedSizeList<Float32>(dim)
 *   bytevec, sparse (the other vector types) → see vector-binlog.ts
 *   struct (Array of Struct) → List<Struct<sub-fields>>, see struct-binlog.ts
 *   json   → Utf8, JSON.stringify per row; a present row whose value is undefined is '' (so it stays
 *            distinct from a null row, which is an Arrow null).
 *   array  → Utf8, one JSON array per row. Int64 elements are written as decimal strings ("-9223…")
 *            so they round-trip exactly; Float/Double elements that JSON cannot hold (NaN, ±Infinity)
 *            are written as the strings "NaN", "Infinity", "-Infinity". The element type is in the field
 *            metadata, so the reader knows which strings to turn back into bigint or number.
 * Nullable columns (`valid` present) carry the Arrow validity bitmap; null slots keep zero/empty values.
 *
 * Field metadata: quiver.kind, quiver.nullable, quiver.fieldId, quiver.elementType (array), and
 * quiver.crc32, a CRC-32 of the column content (valid bytes, values, string offsets and bytes). Arrow
 * has no checksums of its own, so without it a flipped bit in a vector would load silently; with it a
 * damaged file fails with SegmentLoadFailed. Schema metadata: quiver.format (version) and quiver.file.
 *
 * Decoding never copies per element for numeric and vector columns: the typed array is a view of the
 * file bytes when they are 8-byte aligned, else the whole file is copied once to align it.
 */

import {
  Bool,
  Field,
  FixedSizeList,
  Float32,
  Float64,
  Int32,
  Int64,
  makeData,
  Precision,
  RecordBatch,
  Schema,
  Struct,
  Table,
  tableFromIPC,
  tableToIPC,
  Type,
  Utf8,
  type Data,
} from 'apache-arrow';
import { isQuiverError, quiverError } from '../common/errors.js';
import { columnLength, type Column, type ColumnKind, type ScalarType, type ScalarValue } from '../schema/types.js';
import { crc32 } from './checksum.js';
import { decodeStructColumn, encodeStructColumn } from './struct-binlog.js';
import { decodeVectorColumn, encodeVectorColumn } from './vector-binlog.js';

export const BINLOG_FORMAT_VERSION = '1';

const META = {
  format: 'quiver.format',
  file: 'quiver.file',
  kind: 'quiver.kind',
  nullable: 'quiver.nullable',
  fieldId: 'quiver.fieldId',
  elementType: 'quiver.elementType',
  crc: 'quiver.crc32',
} as const;

type FileKind = 'column' | 'deltalog';

const SCALAR_TYPES: readonly ScalarType[] = ['Bool', 'Int8', 'Int16', 'Int32', 'Int64', 'Float', 'Double', 'VarChar'];
const COLUMN_KINDS: readonly ColumnKind[] = [
  'bool',
  'int32',
  'int64',
  'float',
  'double',
  'string',
  'json',
  'array',
  'vector',
  'bytevec',
  'sparse',
  'struct',
];
const ARROW_MAGIC = [0x41, 0x52, 0x52, 0x4f, 0x57, 0x31]; // "ARROW1"
/** Utf8 offsets are int32. */
const UTF8_BYTES_MAX = 0x7fffffff;

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true });

// ---------------------------------------------------------------------------------------------------
// Public API

/** Encode one column as an Arrow IPC file with one field; nullable columns carry the validity bitmap. */
export function encodeColumn(column: Column, meta?: { readonly fieldId?: number | undefined }): Uint8Array {
  const fieldId = meta?.fieldId;
  if (fieldId !== undefined && !Number.isSafeInteger(fieldId)) {
    throw quiverError('ParameterInvalid', `binlog: field id must be an integer, got ${fieldId}`);
  }
  const extra = new Map<string, string>();
  if (fieldId !== undefined) extra.set(META.fieldId, String(fieldId));
  const name = fieldId === undefined ? 'column' : `field_${fieldId}`;
  const encoded = encodeField(name, column, extra);
  return writeFile('column', [encoded], encoded.data.length);
}

/** Decode a file written by `encodeColumn`. Corrupt or mismatched input is QuiverError('SegmentLoadFailed'). */
export function decodeColumn(bytes: Uint8Array, expectKind: ColumnKind): Column {
  return guardDecode(`${expectKind} column`, bytes, () => {
    const file = readFile(bytes, 'column');
    if (file.fields.length !== 1) throw corrupt(`has ${file.fields.length} fields, expected 1`);
    const field = file.fields[0];
    if (field === undefined) throw corrupt('has no field');
    return decodeField(field, file.children[0], file.length, expectKind);
  });
}

/** Deltalog: deleted primary keys and their delete timestamps. */
export function encodeDeltas(pks: BigInt64Array | readonly string[], ts: BigInt64Array): Uint8Array {
  if (!(ts instanceof BigInt64Array)) throw quiverError('ParameterInvalid', 'deltalog: ts must be a BigInt64Array');
  if (pks.length !== ts.length) {
    throw quiverError('ParameterInvalid', `deltalog: ${pks.length} primary keys but ${ts.length} timestamps`);
  }
  const pkColumn: Column = pks instanceof BigInt64Array ? { kind: 'int64', data: pks } : { kind: 'string', data: pks };
  const fields = [encodeField('pk', pkColumn, new Map()), encodeField('ts', { kind: 'int64', data: ts }, new Map())];
  return writeFile('deltalog', fields, ts.length);
}

export function decodeDeltas(bytes: Uint8Array): { pks: BigInt64Array | string[]; ts: BigInt64Array } {
  return guardDecode('deltalog', bytes, () => {
    const file = readFile(bytes, 'deltalog');
    const [pkField, tsField] = file.fields;
    if (file.fields.length !== 2 || pkField?.name !== 'pk' || tsField?.name !== 'ts') {
      throw corrupt(`has fields [${file.fields.map((f) => f.name).join(', ')}], expected [pk, ts]`);
    }
    const pkKind: ColumnKind = pkField.type.typeId === Type.Utf8 ? 'string' : 'int64';
    const pk = decodeField(pkField, file.children[0], file.length, pkKind);
    const ts = decodeField(tsField, file.children[1], file.length, 'int64');
    if (ts.kind !== 'int64') throw corrupt('ts is not int64');
    if (pk.kind === 'int64') return { pks: pk.data, ts: ts.data };
    if (pk.kind === 'string') return { pks: [...pk.data], ts: ts.data };
    throw corrupt(`pk has kind ${pk.kind}`);
  });
}

// ---------------------------------------------------------------------------------------------------
// Encoding

interface EncodedField {
  readonly field: Field;
  readonly data: Data;
}

function encodeField(name: string, column: Column, extraMeta: ReadonlyMap<string, string>): EncodedField {
  const n = checkedLength(column);
  const meta = new Map(extraMeta);
  meta.set(META.kind, column.kind);
  meta.set(META.nullable, String(column.valid !== undefined));

  let crc = 0;
  let nullCount = 0;
  let nullBitmap: Uint8Array | undefined;
  if (column.valid !== undefined) {
    if (!(column.valid instanceof Uint8Array) || column.valid.length !== n) {
      throw quiverError('ParameterInvalid', `binlog: ${column.kind} column has ${n} rows but ${column.valid.length} valid flags`);
    }
    const packed = packBits(column.valid, n);
    nullCount = n - packed.setCount;
    if (nullCount > 0) nullBitmap = packed.bits;
    crc = crc32(packed.normalized, crc);
  }
  const common = { length: n, nullCount, nullBitmap };

  let data: Data;
  switch (column.kind) {
    case 'bool': {
      // Arrow's IPC writer drops the values bitmap of an all-null Bool column, so the checksum covers
      // what the reader will see: all zeros.
      const packed = packBits(n > 0 && nullCount === n ? new Uint8Array(n) : column.data, n);
      crc = crc32(packed.normalized, crc);
      data = makeData({ type: new Bool(), ...common, data: packed.bits });
      break;
    }
    case 'int32':
      requireArray(column, Int32Array);
      crc = crc32(column.data, crc);
      data = makeData({ type: new Int32(), ...common, data: column.data });
      break;
    case 'int64':
      requireArray(column, BigInt64Array);
      crc = crc32(column.data, crc);
      data = makeData({ type: new Int64(), ...common, data: column.data });
      break;
    case 'float':
      requireArray(column, Float32Array);
      crc = crc32(column.data, crc);
      data = makeData({ type: new Float32(), ...common, data: column.data });
      break;
    case 'double':
      requireArray(column, Float64Array);
      crc = crc32(column.data, crc);
      data = makeData({ type: new Float64(), ...common, data: column.data });
      break;
    case 'string':
    case 'json':
    case 'array': {
      const texts = rowTexts(column, n);
      const { offsets, bytes } = encodeUtf8(texts, column.kind);
      crc = crc32(bytes, crc32(offsets, crc));
      if (column.kind === 'array') meta.set(META.elementType, checkElementType(column.elementType));
      data = makeData({ type: new Utf8(), ...common, valueOffsets: offsets, data: bytes });
      break;
    }
    case 'vector': {
      requireArray(column, Float32Array);
      crc = crc32(column.data, crc);
      const child = makeData({ type: new Float32(), length: column.data.length, nullCount: 0, data: column.data });
      data = makeData({ type: vectorType(column.dim), ...common, child });
      break;
    }
    case 'bytevec':
    case 'sparse': {
      const enc = encodeVectorColumn(column, common, crc, meta);
      data = enc.data;
      crc = enc.crc;
      break;
    }
    case 'struct': {
      const enc = encodeStructColumn(column, common, crc, meta, encodeField);
      data = enc.data;
      crc = enc.crc;
      break;
    }
    default: {
      const never: never = column;
      throw quiverError('ParameterInvalid', `binlog: unknown column kind ${String((never as Column).kind)}`);
    }
  }
  meta.set(META.crc, String(crc));
  return { field: new Field(name, data.type, column.valid !== undefined, meta), data };
}

function checkedLength(column: Column): number {
  if (!COLUMN_KINDS.includes(column.kind)) {
    throw quiverError('ParameterInvalid', `binlog: unknown column kind ${String(column.kind)}`);
  }
  if (column.kind === 'vector') {
    if (!Number.isSafeInteger(column.dim) || column.dim <= 0) {
      throw quiverError('ParameterInvalid', `binlog: vector dim must be a positive integer, got ${column.dim}`);
    }
    if (column.data.length % column.dim !== 0) {
      throw quiverError('ParameterInvalid', `binlog: vector data length ${column.data.length} is not a multiple of dim ${column.dim}`);
    }
  }
  return columnLength(column);
}

function requireArray(column: Column, ctor: { readonly name: string; prototype: unknown }): void {
  if (!(column.data instanceof (ctor as unknown as new () => object))) {
    throw quiverError('ParameterInvalid', `binlog: ${column.kind} column data must be a ${ctor.name}`);
  }
}

function vectorType(dim: number): FixedSizeList<Float32> {
  return new FixedSizeList(dim, new Field('item', new Float32(), false));
}

/** The Utf8 text of each row; null rows are ''. */
function rowTexts(column: Column & { kind: 'string' | 'json' | 'array' }, n: number): readonly string[] {
  const valid = column.valid;
  switch (column.kind) {
    case 'string':
      for (let i = 0; i < n; i++) {
        if (typeof column.data[i] !== 'string') {
          throw quiverError('DataInvalid', `binlog: string column row ${i} is ${typeof column.data[i]}, not a string`);
        }
      }
      return column.data;
    case 'json': {
      const out = new Array<string>(n);
      for (let i = 0; i < n; i++) {
        const v = column.data[i];
        out[i] = (valid !== undefined && valid[i] === 0) || v === undefined ? '' : jsonText(v, i);
      }
      return out;
    }
    case 'array': {
      const elementType = checkElementType(column.elementType);
      const out = new Array<string>(n);
      for (let i = 0; i < n; i++) {
        const row = column.data[i];
        if (valid !== undefined && valid[i] === 0) {
          out[i] = '';
          continue;
        }
        if (!Array.isArray(row)) throw quiverError('DataInvalid', `binlog: array column row ${i} is not an array`);
        out[i] = JSON.stringify(row.map((el: ScalarValue, j) => encodeElement(el, elementType, i, j)));
      }
      return out;
    }
  }
}

function jsonText(value: unknown, row: number): string {
  let text: string | undefined;
  try {
    text = JSON.stringify(value);
  } catch (e) {
    throw quiverError('DataInvalid', `binlog: json column row ${row} cannot be serialised: ${errText(e)}`, e);
  }
  if (text === undefined) throw quiverError('DataInvalid', `binlog: json column row ${row} (${typeof value}) has no JSON form`);
  return text;
}

function encodeElement(el: ScalarValue, elementType: ScalarType, row: number, index: number): boolean | number | string {
  const bad = (): never => {
    throw quiverError('DataInvalid', `binlog: array<${elementType}> row ${row} element ${index} is ${typeof el} ${String(el)}`);
  };
  switch (elementType) {
    case 'Bool':
      return typeof el === 'boolean' ? el : bad();
    case 'Int8':
    case 'Int16':
    case 'Int32':
      return typeof el === 'number' && Number.isInteger(el) ? el : bad();
    case 'Int64':
      if (typeof el === 'bigint') return el.toString();
      return typeof el === 'number' && Number.isSafeInteger(el) ? String(el) : bad();
    case 'Float':
    case 'Double':
      if (typeof el !== 'number') return bad();
      return Number.isFinite(el) ? el : String(el); // 'NaN' | 'Infinity' | '-Infinity'
    case 'VarChar':
      return typeof el === 'string' ? el : bad();
  }
}

function checkElementType(t: unknown): ScalarType {
  if (!SCALAR_TYPES.includes(t as ScalarType)) {
    throw quiverError('ParameterInvalid', `binlog: array element type ${String(t)} is not a scalar type`);
  }
  return t as ScalarType;
}

/** One UTF-8 buffer plus int32 offsets. A UTF-16 unit never needs more than 3 UTF-8 bytes. */
function encodeUtf8(texts: readonly string[], kind: ColumnKind): { offsets: Int32Array; bytes: Uint8Array } {
  let units = 0;
  for (const t of texts) units += t.length;
  const buf = new Uint8Array(Math.min(units * 3, UTF8_BYTES_MAX));
  const offsets = new Int32Array(texts.length + 1);
  let pos = 0;
  for (let i = 0; i < texts.length; i++) {
    const text = texts[i] ?? '';
    const { read, written } = encoder.encodeInto(text, buf.subarray(pos));
    if (read !== text.length) {
      throw quiverError('ParameterTooLarge', `binlog: ${kind} column exceeds ${UTF8_BYTES_MAX} UTF-8 bytes at row ${i}`);
    }
    pos += written;
    offsets[i + 1] = pos;
  }
  return { offsets, bytes: buf.subarray(0, pos) };
}

/** Packs one byte per row (non-zero = set) into an LSB-first bitmap; unused tail bits stay 0. */
function packBits(bytes: Uint8Array, n: number): { bits: Uint8Array; normalized: Uint8Array; setCount: number } {
  const bits = new Uint8Array((n + 7) >> 3);
  const normalized = new Uint8Array(n);
  let setCount = 0;
  for (let i = 0; i < n; i++) {
    if (bytes[i] !== 0) {
      bits[i >> 3] = (bits[i >> 3] ?? 0) | (1 << (i & 7));
      normalized[i] = 1;
      setCount += 1;
    }
  }
  return { bits, normalized, setCount };
}

function writeFile(file: FileKind, fields: readonly EncodedField[], length: number): Uint8Array {
  const schema = new Schema(
    fields.map((f) => f.field),
    new Map([
      [META.format, BINLOG_FORMAT_VERSION],
      [META.file, file],
    ]),
  );
  const struct = makeData({ type: new Struct(schema.fields), length, nullCount: 0, children: fields.map((f) => f.data) });
  return tableToIPC(new Table([new RecordBatch(schema, struct)]), 'file');
}

// ---------------------------------------------------------------------------------------------------
// Decoding

class CorruptBinlog extends Error {}

function corrupt(what: string): CorruptBinlog {
  return new CorruptBinlog(what);
}

function guardDecode<T>(what: string, bytes: Uint8Array, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    if (isQuiverError(e)) throw e;
    const size = bytes instanceof Uint8Array ? `${bytes.byteLength} bytes` : typeof bytes;
    throw quiverError('SegmentLoadFailed', `binlog: cannot decode ${what} (${size}): ${errText(e)}`, e);
  }
}

interface ArrowFile {
  readonly fields: readonly Field[];
  /** Column data of the single record batch; absent when the file has no batch (0 rows). */
  readonly children: readonly (Data | undefined)[];
  readonly length: number;
}

function readFile(bytes: Uint8Array, expectFile: FileKind): ArrowFile {
  if (!(bytes instanceof Uint8Array)) throw corrupt('input is not a Uint8Array');
  const n = bytes.byteLength;
  // Arrow happily returns an empty table for random bytes, so check the file framing ourselves.
  const framed = n >= 2 * ARROW_MAGIC.length + 4 && ARROW_MAGIC.every((b, i) => bytes[i] === b && bytes[n - ARROW_MAGIC.length + i] === b);
  if (!framed) throw corrupt('not an Arrow IPC file (ARROW1 magic missing)');
  // Typed-array views need aligned offsets: copy the whole file once if the caller's view is not.
  const aligned = bytes.byteOffset % 8 === 0 ? bytes : bytes.slice();
  const table = tableFromIPC(aligned);
  const format = table.schema.metadata.get(META.format);
  if (format !== undefined && format !== BINLOG_FORMAT_VERSION) throw corrupt(`has format version ${format}, expected ${BINLOG_FORMAT_VERSION}`);
  const file = table.schema.metadata.get(META.file);
  if (file !== undefined && file !== expectFile) throw corrupt(`is a ${file} file, expected a ${expectFile} file`);
  if (table.batches.length > 1) throw corrupt(`has ${table.batches.length} record batches, expected 1`);
  const batch = table.batches[0];
  const fields = table.schema.fields;
  if (batch === undefined) return { fields, children: fields.map(() => undefined), length: 0 };
  if (batch.data.children.length !== fields.length) throw corrupt('record batch does not match the schema');
  return { fields, children: batch.data.children, length: batch.numRows };
}

function decodeField(field: Field, data: Data | undefined, length: number, expectKind: ColumnKind): Column {
  const meta = field.metadata;
  const storedKind = meta.get(META.kind);
  if (storedKind !== undefined && storedKind !== expectKind) throw corrupt(`holds a ${storedKind} column, expected ${expectKind}`);
  const n = data?.length ?? 0;
  if (n !== length) throw corrupt(`field ${field.name} has ${n} rows, the batch ${length}`);
  if (data !== undefined && data.offset !== 0) throw corrupt(`field ${field.name} data starts at offset ${data.offset}`);
  const type = field.type;
  const nullCount = data?.nullCount ?? 0;
  const nullableMeta = meta.get(META.nullable);
  const nullable = nullableMeta === undefined ? nullCount > 0 : nullableMeta === 'true';
  if (!nullable && nullCount > 0) throw corrupt(`non-nullable field ${field.name} has ${nullCount} nulls`);

  let crc = 0;
  let valid: Uint8Array | undefined;
  if (nullable) {
    valid = unpackBits(data?.nullBitmap, n, true);
    crc = crc32(valid, crc);
  }
  const checkCrc = (): void => {
    const stored = meta.get(META.crc);
    if (stored !== undefined && Number(stored) !== crc) {
      throw corrupt(`checksum mismatch in field ${field.name}: stored ${stored}, computed ${crc}`);
    }
  };
  const requireType = (ok: boolean, expected: string): void => {
    if (!ok) throw corrupt(`field ${field.name} has Arrow type ${String(type)}, expected ${expected} for ${expectKind}`);
  };
  const int = type as unknown as { bitWidth?: number; isSigned?: boolean; precision?: Precision };

  switch (expectKind) {
    case 'bool': {
      requireType(type.typeId === Type.Bool, 'Bool');
      // An all-null Bool column has no values bitmap (see encodeField); its values are all zero.
      const values = nullCount === n ? new Uint8Array(n) : unpackBits(data?.values as Uint8Array | undefined, n, false);
      crc = crc32(values, crc);
      checkCrc();
      return { kind: 'bool', data: values, valid };
    }
    case 'int32': {
      requireType(type.typeId === Type.Int && int.bitWidth === 32 && int.isSigned === true, 'Int32');
      const values = fixedValues(data, Int32Array, n);
      crc = crc32(values, crc);
      checkCrc();
      return { kind: 'int32', data: values, valid };
    }
    case 'int64': {
      requireType(type.typeId === Type.Int && int.bitWidth === 64 && int.isSigned === true, 'Int64');
      const values = fixedValues(data, BigInt64Array, n);
      crc = crc32(values, crc);
      checkCrc();
      return { kind: 'int64', data: values, valid };
    }
    case 'float': {
      requireType(type.typeId === Type.Float && int.precision === Precision.SINGLE, 'Float32');
      const values = fixedValues(data, Float32Array, n);
      crc = crc32(values, crc);
      checkCrc();
      return { kind: 'float', data: values, valid };
    }
    case 'double': {
      requireType(type.typeId === Type.Float && int.precision === Precision.DOUBLE, 'Float64');
      const values = fixedValues(data, Float64Array, n);
      crc = crc32(values, crc);
      checkCrc();
      return { kind: 'double', data: values, valid };
    }
    case 'vector': {
      requireType(type.typeId === Type.FixedSizeList, 'FixedSizeList<Float32>');
      const list = type as unknown as FixedSizeList;
      const childType = list.valueType as { typeId: Type; precision?: Precision };
      requireType(childType.typeId === Type.Float && childType.precision === Precision.SINGLE, 'FixedSizeList<Float32>');
      const dim = list.listSize;
      if (!Number.isSafeInteger(dim) || dim <= 0) throw corrupt(`vector dim ${dim}`);
      const child = data?.children[0];
      if (data !== undefined && (child === undefined || child.offset !== 0)) throw corrupt('vector child data missing');
      const values = fixedValues(child, Float32Array, n * dim);
      crc = crc32(values, crc);
      checkCrc();
      return { kind: 'vector', dim, data: values, valid };
    }
    case 'bytevec':
    case 'sparse': {
      const dec = decodeVectorColumn(expectKind, field, data, n, crc, corrupt);
      crc = dec.crc;
      checkCrc();
      return { ...dec.column, valid };
    }
    case 'struct': {
      const dec = decodeStructColumn(field, data, n, crc, corrupt, decodeField);
      crc = dec.crc;
      checkCrc();
      return { ...dec.column, valid };
    }
    case 'string':
    case 'json':
    case 'array': {
      requireType(type.typeId === Type.Utf8, 'Utf8');
      const { offsets, bytes } = utf8Buffers(data, n);
      crc = crc32(bytes, crc32(offsets, crc));
      checkCrc();
      const text = (i: number): string => decoder.decode(bytes.subarray(offsets[i], offsets[i + 1]));
      const isNull = (i: number): boolean => valid !== undefined && valid[i] === 0;
      if (expectKind === 'string') {
        const rows = new Array<string>(n);
        for (let i = 0; i < n; i++) rows[i] = text(i);
        return { kind: 'string', data: rows, valid };
      }
      if (expectKind === 'json') {
        const rows = new Array<unknown>(n);
        for (let i = 0; i < n; i++) {
          const t = isNull(i) ? '' : text(i);
          rows[i] = t === '' ? undefined : JSON.parse(t);
        }
        return { kind: 'json', data: rows, valid };
      }
      const elementType = meta.get(META.elementType);
      if (!SCALAR_TYPES.includes(elementType as ScalarType)) throw corrupt(`array element type ${String(elementType)}`);
      const et = elementType as ScalarType;
      const rows = new Array<readonly ScalarValue[]>(n);
      for (let i = 0; i < n; i++) {
        if (isNull(i)) {
          rows[i] = [];
          continue;
        }
        const parsed: unknown = JSON.parse(text(i));
        if (!Array.isArray(parsed)) throw corrupt(`array row ${i} is not a JSON array`);
        rows[i] = parsed.map((el: unknown, j) => decodeElement(el, et, i, j));
      }
      return { kind: 'array', elementType: et, data: rows, valid };
    }
    default: {
      const never: never = expectKind;
      throw corrupt(`unknown column kind ${String(never)}`);
    }
  }
}

type FixedCtor<T> = { new (length: number): T; readonly name: string };

/** The first `count` values as a view of the Arrow buffer (no per-element work). */
function fixedValues<T extends Int32Array | BigInt64Array | Float32Array | Float64Array>(data: Data | undefined, ctor: FixedCtor<T>, count: number): T {
  if (data === undefined) return new ctor(0);
  const values: unknown = data.values;
  if (!(values instanceof (ctor as unknown as new () => object))) throw corrupt(`values are not a ${ctor.name}`);
  const v = values as T;
  if (v.length < count) throw corrupt(`${ctor.name} buffer holds ${v.length} values, expected ${count}`);
  return (v.length === count ? v : v.subarray(0, count)) as T;
}

function utf8Buffers(data: Data | undefined, n: number): { offsets: Int32Array; bytes: Uint8Array } {
  if (data === undefined || n === 0) return { offsets: new Int32Array(n + 1), bytes: new Uint8Array(0) };
  const rawOffsets: unknown = data.valueOffsets;
  const rawBytes: unknown = data.values;
  if (!(rawOffsets instanceof Int32Array) || !(rawBytes instanceof Uint8Array)) throw corrupt('Utf8 buffers missing');
  if (rawOffsets.length < n + 1) throw corrupt(`Utf8 offsets hold ${rawOffsets.length} entries, expected ${n + 1}`);
  const offsets = rawOffsets.subarray(0, n + 1);
  if (offsets[0] !== 0) throw corrupt(`Utf8 offsets start at ${offsets[0]}`);
  for (let i = 0; i < n; i++) {
    if ((offsets[i + 1] ?? -1) < (offsets[i] ?? 0)) throw corrupt(`Utf8 offsets decrease at row ${i}`);
  }
  const end = offsets[n] ?? 0;
  if (end > rawBytes.length) throw corrupt(`Utf8 offsets reach byte ${end} of ${rawBytes.length}`);
  return { offsets, bytes: rawBytes.subarray(0, end) };
}

/** One byte (0/1) per row from an LSB-first bitmap. An absent bitmap means "all set" for validity. */
function unpackBits(bits: Uint8Array | undefined, n: number, absentMeansAllSet: boolean): Uint8Array {
  const out = new Uint8Array(n);
  if (n === 0) return out;
  if (bits === undefined || bits.length === 0) {
    if (absentMeansAllSet) return out.fill(1);
    throw corrupt('bitmap missing');
  }
  if (bits.length < (n + 7) >> 3) throw corrupt(`bitmap holds ${bits.length * 8} bits, expected ${n}`);
  for (let i = 0; i < n; i++) out[i] = ((bits[i >> 3] ?? 0) >> (i & 7)) & 1;
  return out;
}

function decodeElement(el: unknown, elementType: ScalarType, row: number, index: number): ScalarValue {
  const bad = (): never => {
    throw corrupt(`array<${elementType}> row ${row} element ${index} is ${JSON.stringify(el)}`);
  };
  switch (elementType) {
    case 'Bool':
      return typeof el === 'boolean' ? el : bad();
    case 'Int8':
    case 'Int16':
    case 'Int32':
      return typeof el === 'number' && Number.isInteger(el) ? el : bad();
    case 'Int64':
      return typeof el === 'string' && /^-?\d+$/.test(el) ? BigInt(el) : bad();
    case 'Float':
    case 'Double':
      if (typeof el === 'number') return el;
      return el === 'NaN' || el === 'Infinity' || el === '-Infinity' ? Number(el) : bad();
    case 'VarChar':
      return typeof el === 'string' ? el : bad();
  }
}

function errText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
