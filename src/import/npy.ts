import { quiverError } from '../common/errors.js';

/**
 * A reader of NumPy `.npy` files (format versions 1.0-3.0, as numpy.lib.format documents them): the
 * magic `\x93NUMPY`, a major and minor version byte, the header length (uint16 LE in 1.0, uint32 LE
 * after), then an ASCII (3.0: UTF-8) Python dict literal with `descr`, `fortran_order` and `shape`, padded
 * so the data starts 64-byte aligned. The data is the C-order array. Milvus's BulkWriter writes one such
 * file per field: scalars as 1-D arrays, vectors as 2-D (rows, dim), strings as fixed-width `<U` arrays.
 */

export type NpyDtype = 'bool' | 'i1' | 'u1' | 'i2' | 'i4' | 'i8' | 'f2' | 'f4' | 'f8' | 'unicode' | 'bytes';

export interface NpyArray {
  readonly dtype: NpyDtype;
  /** Bytes per element (for `unicode`: 4 × the fixed length; `bytes`: the fixed length). */
  readonly itemSize: number;
  readonly shape: readonly number[];
  /** Rows (the first dimension). */
  readonly rows: number;
  /** Elements per row (the product of the other dimensions; 1 for a 1-D array). */
  readonly perRow: number;
  readonly data: Uint8Array;
}

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59];
/** A header longer than this is not something BulkWriter writes; refuse it rather than parse anything. */
const HEADER_BYTES_MAX = 65536;

function bad(where: string, reason: string): never {
  throw quiverError('DataInvalid', `${where} is not a valid .npy file: ${reason}`);
}

export function parseNpy(bytes: Uint8Array, where: string): NpyArray {
  if (bytes.length < 10 || MAGIC.some((b, i) => bytes[i] !== b)) bad(where, 'missing the \\x93NUMPY magic');
  const major = bytes[6]!;
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let headerLen: number;
  let start: number;
  if (major === 1) {
    headerLen = dv.getUint16(8, true);
    start = 10;
  } else if (major === 2 || major === 3) {
    if (bytes.length < 12) bad(where, 'truncated header');
    headerLen = dv.getUint32(8, true);
    start = 12;
  } else return bad(where, `unsupported format version ${major}`);
  if (headerLen > HEADER_BYTES_MAX || start + headerLen > bytes.length) bad(where, `header length ${headerLen} is out of bounds`);
  const header = new TextDecoder().decode(bytes.subarray(start, start + headerLen));
  const descr = /'descr'\s*:\s*'([^']*)'/.exec(header)?.[1];
  const fortran = /'fortran_order'\s*:\s*(True|False)/.exec(header)?.[1];
  const shapeText = /'shape'\s*:\s*\(([^)]*)\)/.exec(header)?.[1];
  if (descr === undefined || fortran === undefined || shapeText === undefined)
    bad(where, `header ${JSON.stringify(header.trim())} lacks descr, fortran_order or shape`);
  if (fortran === 'True') bad(where, 'Fortran-order arrays are not supported; save with numpy.ascontiguousarray');
  const shape = shapeText
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '')
    .map((s) => {
      const n = Number(s.replace(/L$/, ''));
      if (!Number.isSafeInteger(n) || n < 0) bad(where, `bad shape (${shapeText})`);
      return n;
    });
  if (shape.length === 0) bad(where, 'a 0-d array has no rows');
  const { dtype, itemSize } = dtypeOf(descr, where);
  const rows = shape[0]!;
  const perRow = shape.slice(1).reduce((a, b) => a * b, 1);
  const dataStart = start + headerLen;
  const need = rows * perRow * itemSize;
  if (bytes.length - dataStart < need) bad(where, `data holds ${bytes.length - dataStart} bytes, shape (${shape.join(', ')}) of ${descr} needs ${need}`);
  // Copy to an aligned buffer: typed-array views need their element alignment.
  const data = bytes.slice(dataStart, dataStart + need);
  return { dtype, itemSize, shape, rows, perRow, data };
}

function dtypeOf(descr: string, where: string): { dtype: NpyDtype; itemSize: number } {
  const order = descr[0];
  if (order === '>' && !/^>(i1|u1|b1|S\d+)$/.test(descr)) bad(where, `big-endian dtype ${descr} is not supported`);
  const body = order === '<' || order === '|' || order === '=' || order === '>' ? descr.slice(1) : descr;
  switch (body) {
    case '?':
    case 'b1':
      return { dtype: 'bool', itemSize: 1 };
    case 'i1':
      return { dtype: 'i1', itemSize: 1 };
    case 'u1':
      return { dtype: 'u1', itemSize: 1 };
    case 'i2':
      return { dtype: 'i2', itemSize: 2 };
    case 'i4':
      return { dtype: 'i4', itemSize: 4 };
    case 'i8':
      return { dtype: 'i8', itemSize: 8 };
    case 'f2':
      return { dtype: 'f2', itemSize: 2 };
    case 'f4':
      return { dtype: 'f4', itemSize: 4 };
    case 'f8':
      return { dtype: 'f8', itemSize: 8 };
  }
  const u = /^U(\d+)$/.exec(body);
  if (u) return { dtype: 'unicode', itemSize: 4 * Number(u[1]) };
  const s = /^S(\d+)$/.exec(body);
  if (s) return { dtype: 'bytes', itemSize: Number(s[1]) };
  return bad(where, `dtype ${descr} is not supported (bool, int8-64, uint8, float16-64, <U, S)`);
}

function halfToFloat(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const f = h & 0x3ff;
  if (e === 0) return s * 2 ** -14 * (f / 1024);
  if (e === 31) return f ? NaN : s * Infinity;
  return s * 2 ** (e - 15) * (1 + f / 1024);
}

/** Element `k` of the flat array as a JS value (int64 as bigint, strings decoded, trailing NULs cut). */
export function npyElement(a: NpyArray, k: number): number | bigint | boolean | string {
  const off = k * a.itemSize;
  const dv = new DataView(a.data.buffer, a.data.byteOffset, a.data.byteLength);
  switch (a.dtype) {
    case 'bool':
      return a.data[off] !== 0;
    case 'i1':
      return dv.getInt8(off);
    case 'u1':
      return a.data[off]!;
    case 'i2':
      return dv.getInt16(off, true);
    case 'i4':
      return dv.getInt32(off, true);
    case 'i8':
      return dv.getBigInt64(off, true);
    case 'f2':
      return halfToFloat(dv.getUint16(off, true));
    case 'f4':
      return dv.getFloat32(off, true);
    case 'f8':
      return dv.getFloat64(off, true);
    case 'unicode': {
      let s = '';
      for (let i = 0; i < a.itemSize; i += 4) {
        const cp = dv.getUint32(off + i, true);
        if (cp === 0) break;
        s += String.fromCodePoint(cp);
      }
      return s;
    }
    case 'bytes': {
      let end = off + a.itemSize;
      while (end > off && a.data[end - 1] === 0) end--;
      return new TextDecoder().decode(a.data.subarray(off, end));
    }
  }
}

/** Row `i`: a scalar for a 1-D array, an array of the row's elements otherwise. */
export function npyRow(a: NpyArray, i: number): unknown {
  if (a.shape.length === 1) return npyElement(a, i);
  const out = new Array<unknown>(a.perRow);
  for (let j = 0; j < a.perRow; j++) out[j] = npyElement(a, i * a.perRow + j);
  return out;
}

/** Writes an .npy (version 1.0) file: test fixtures and tools. */
export function writeNpy(descr: string, shape: readonly number[], data: Uint8Array): Uint8Array {
  const shapeText = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
  let header = `{'descr': '${descr}', 'fortran_order': False, 'shape': ${shapeText}, }`;
  const total = 10 + header.length + 1;
  header += ' '.repeat((64 - (total % 64)) % 64) + '\n';
  const out = new Uint8Array(10 + header.length + data.length);
  out.set(MAGIC, 0);
  out[6] = 1;
  out[7] = 0;
  new DataView(out.buffer).setUint16(8, header.length, true);
  out.set(new TextEncoder().encode(header), 10);
  out.set(data, 10 + header.length);
  return out;
}
