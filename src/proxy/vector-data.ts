import { quiverError } from '../common/errors.js';
import { firstNonFinite } from '../index/vector-convert.js';
import { bytesPerRow, type ByteVectorType, type Column, type FieldSchema, type SparseRow } from '../schema/types.js';

/**
 * proto `schema.FieldData` ⇄ Column for the vector types other than FloatVector: BinaryVector,
 * Float16Vector, BFloat16Vector, Int8Vector (fixed-size byte rows) and SparseFloatVector (rows of
 * uint32 index + float32 value pairs, little-endian). The SDK converts every user form (number arrays,
 * typed arrays, the sparse dict/coo/csr/array forms) into these bytes, so the server sees one encoding.
 * Nullable fields arrive compact (only the present rows) or row-dense; both are accepted.
 */

/* eslint-disable @typescript-eslint/no-explicit-any */

/** The proto VectorField member each type travels in. */
export const VECTOR_MEMBER: Record<ByteVectorType | 'SparseFloatVector', string> = {
  BinaryVector: 'binary_vector',
  Float16Vector: 'float16_vector',
  BFloat16Vector: 'bfloat16_vector',
  Int8Vector: 'int8_vector',
  SparseFloatVector: 'sparse_float_vector',
};

/** Sparse indices are uint32 below this (Milvus reserves 2^32-1). */
export const SPARSE_INDEX_LIMIT = 0xffffffff;

function invalid(reason: string): never {
  throw quiverError('DataInvalid', reason);
}

function asBytes(v: unknown): Uint8Array {
  if (v instanceof Uint8Array) return v;
  if (Array.isArray(v)) return Uint8Array.from(v as number[]);
  return new Uint8Array(0);
}

/** A request's valid_data as a mask (undefined: every row present) and the number of present rows. */
export function validMask(fd: any, field: FieldSchema, numRows: number): { valid: Uint8Array | undefined; present: number } {
  const vd: boolean[] = fd?.valid_data ?? [];
  if (vd.length === 0) return { valid: undefined, present: numRows };
  if (vd.length !== numRows) invalid(`the length of valid_data of field ${field.name} (${vd.length}) is not equal to num_rows (${numRows})`);
  const valid = new Uint8Array(numRows);
  let present = 0;
  for (let i = 0; i < numRows; i++)
    if (vd[i]) {
      valid[i] = 1;
      present++;
    }
  return { valid, present };
}

/** Validity of a vector field; a non-nullable field must hold a vector in every row. */
function validityOf(fd: any, field: FieldSchema, numRows: number): { valid: Uint8Array | undefined; present: number } {
  const { valid, present } = validMask(fd, field, numRows);
  if (!field.nullable && present !== numRows) invalid(`field ${field.name} is not nullable but ${numRows - present} null vectors were given`);
  return { valid, present };
}

/** Parses one sparse row in wire form, checking what Milvus checks: index range, order, uniqueness, finite values. */
export function parseSparseRow(bytes: Uint8Array, where: string): SparseRow {
  if (bytes.length % 8 !== 0) invalid(`sparse vector ${where} has ${bytes.length} bytes, not a multiple of 8 (uint32 index + float32 value)`);
  const n = bytes.length / 8;
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const indices = new Uint32Array(n);
  const values = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const idx = dv.getUint32(8 * i, true);
    const val = dv.getFloat32(8 * i + 4, true);
    if (idx >= SPARSE_INDEX_LIMIT) {
      invalid(`sparse vector ${where} has index ${idx} (${idx | 0} as a signed int32): indices must be in [0, ${SPARSE_INDEX_LIMIT - 1}]`);
    }
    if (!Number.isFinite(val)) invalid(`sparse vector ${where} has value ${val} at index ${idx}: values must be finite`);
    if (i > 0 && idx <= indices[i - 1]!) {
      invalid(
        idx === indices[i - 1]
          ? `sparse vector ${where} has duplicate index ${idx}`
          : `sparse vector ${where} has unsorted indices (${indices[i - 1]} before ${idx}): indices must be strictly increasing`,
      );
    }
    indices[i] = idx;
    values[i] = val;
  }
  return { indices, values };
}

export function sparseRowBytes(row: SparseRow): Buffer {
  const out = Buffer.alloc(row.indices.length * 8);
  for (let i = 0; i < row.indices.length; i++) {
    out.writeUInt32LE(row.indices[i]!, 8 * i);
    out.writeFloatLE(row.values[i]!, 8 * i + 4);
  }
  return out;
}

const EMPTY_SPARSE: SparseRow = { indices: new Uint32Array(0), values: new Float32Array(0) };

/** A column of n null (or, for a non-nullable field, empty) vectors. */
export function nullVectorColumn(field: FieldSchema, n: number): Column {
  const valid = new Uint8Array(n);
  if (field.dataType === 'SparseFloatVector') return { kind: 'sparse', data: new Array<SparseRow>(n).fill(EMPTY_SPARSE), valid };
  const vtype = field.dataType as ByteVectorType;
  return { kind: 'bytevec', vtype, dim: field.dim!, data: new Uint8Array(n * bytesPerRow(vtype, field.dim!)), valid };
}

/** Converts one request column of a byte or sparse vector field to a Column of `numRows` rows. */
export function typedVectorColumn(fd: any, field: FieldSchema, numRows: number): Column {
  if (!fd) {
    if (field.nullable) return nullVectorColumn(field, numRows);
    invalid(`fieldSchema(${field.name}) has no corresponding fieldData pass in`);
  }
  const v = fd.vectors;
  const member = VECTOR_MEMBER[field.dataType as ByteVectorType | 'SparseFloatVector'];
  const got = v?.data ?? (v ? Object.keys(v).find((k) => k.endsWith('_vector') && v[k]) : undefined);
  if (got !== member) invalid(`field ${field.name} expects ${field.dataType} data (${member}), got ${got ?? fd.field ?? 'nothing'}`);
  const { valid, present } = validityOf(fd, field, numRows);
  const outValid = field.nullable ? (valid ?? new Uint8Array(numRows).fill(1)) : undefined;

  if (field.dataType === 'SparseFloatVector') {
    const contents: unknown[] = v.sparse_float_vector?.contents ?? [];
    const dense = valid !== undefined && contents.length === numRows && present !== numRows;
    if (contents.length !== present && !dense) {
      invalid(
        `the number of sparse vectors of field ${field.name} (${contents.length}) matches neither num_rows (${numRows}) nor the valid rows (${present})`,
      );
    }
    const rows = new Array<SparseRow>(numRows);
    let p = 0;
    for (let i = 0; i < numRows; i++) {
      if (valid && !valid[i]) {
        rows[i] = EMPTY_SPARSE;
        if (dense) p++;
        continue;
      }
      rows[i] = parseSparseRow(asBytes(contents[p++]), `of field ${field.name} at row ${i}`);
    }
    return { kind: 'sparse', data: rows, valid: outValid };
  }

  const vtype = field.dataType as ByteVectorType;
  const dim = field.dim!;
  const gotDim = Number(v.dim);
  if (gotDim !== dim) {
    throw quiverError('DimensionMismatch', `the dim (${gotDim}) of field data(${field.name}) is not equal to schema dim (${dim})`);
  }
  const w = bytesPerRow(vtype, dim);
  const raw = asBytes(v[member]);
  if (raw.length % w !== 0) {
    throw quiverError(
      'DimensionMismatch',
      `the length (${raw.length} bytes) of ${vtype} field ${field.name} is not a multiple of its row size (${w} bytes for dim ${dim}); every vector must have dim ${dim}`,
    );
  }
  const rowsGiven = raw.length / w;
  const dense = valid !== undefined && rowsGiven === numRows && present !== numRows;
  if (rowsGiven !== present && !dense) {
    throw quiverError(
      'DimensionMismatch',
      `the num_rows (${numRows}) of field data does not match the number of vectors of field ${field.name} (${rowsGiven})`,
    );
  }
  let data: Uint8Array;
  if (rowsGiven === numRows) data = Uint8Array.from(raw);
  else {
    data = new Uint8Array(numRows * w);
    let p = 0;
    for (let i = 0; i < numRows; i++) {
      if (!valid![i]) continue;
      data.set(raw.subarray(p * w, (p + 1) * w), i * w);
      p++;
    }
  }
  if (vtype === 'Float16Vector' || vtype === 'BFloat16Vector') {
    const bad = firstNonFinite(vtype, data);
    if (bad >= 0) invalid(`${vtype} field ${field.name} contains NaN or Inf at row ${Math.floor(bad / dim)}, position ${bad % dim}`);
  }
  if (valid && dense) for (let i = 0; i < numRows; i++) if (!valid[i]) data.fill(0, i * w, (i + 1) * w);
  return { kind: 'bytevec', vtype, dim, data, valid: outValid };
}

/** The proto `vectors` member for output; nullable columns send only the present rows (as Milvus does). */
export function typedVectorOutput(c: Column & { kind: 'bytevec' | 'sparse' }, n: number): Record<string, unknown> {
  const present = (i: number): boolean => !c.valid || c.valid[i] === 1;
  if (c.kind === 'sparse') {
    const contents: Buffer[] = [];
    let maxNnz = 0;
    for (let i = 0; i < n; i++) {
      if (!present(i)) continue;
      const row = c.data[i]!;
      contents.push(sparseRowBytes(row));
      if (row.indices.length > maxNnz) maxNnz = row.indices.length;
    }
    return { dim: String(maxNnz), sparse_float_vector: { dim: String(maxNnz), contents } };
  }
  const w = bytesPerRow(c.vtype, c.dim);
  let bytes: Uint8Array;
  if (!c.valid) bytes = c.data.subarray(0, n * w);
  else {
    const parts: Uint8Array[] = [];
    for (let i = 0; i < n; i++) if (present(i)) parts.push(c.data.subarray(i * w, (i + 1) * w));
    bytes = Buffer.concat(parts);
  }
  return { dim: String(c.dim), [VECTOR_MEMBER[c.vtype]]: Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength) };
}
