import type { Column, ScalarValue, SparseRow, StructRow } from './types.js';
import { bytesPerRow, columnLength } from './types.js';

/** Column algebra used by the write path (concat chunks into a segment) and the read path (gather hits). */

function concatValid(parts: readonly Column[], total: number): Uint8Array | undefined {
  if (!parts.some((p) => p.valid)) return undefined;
  const out = new Uint8Array(total);
  let off = 0;
  for (const p of parts) {
    const n = columnLength(p);
    if (p.valid) out.set(p.valid, off);
    else out.fill(1, off, off + n);
    off += n;
  }
  return out;
}

/** A FloatVector column's rows as one array: the resident data, or a transient read of a lazy column. */
export function residentVectors(c: Column & { kind: 'vector' }): Float32Array {
  return c.lazy ? c.lazy.readAll() : c.data;
}

/** Concatenates columns of one kind. */
export function concatColumns(parts: readonly Column[]): Column {
  if (parts.length === 1) return parts[0]!;
  const first = parts[0];
  if (!first) throw new Error('concatColumns needs at least one part');
  const total = parts.reduce((s, p) => s + columnLength(p), 0);
  const valid = concatValid(parts, total);
  const typed = <T extends { set(a: ArrayLike<unknown>, o: number): void }>(out: T, per = 1): T => {
    let off = 0;
    for (const p of parts) {
      out.set((p.kind === 'vector' ? residentVectors(p) : p.data) as unknown as ArrayLike<unknown>, off);
      off += columnLength(p) * per;
    }
    return out;
  };
  switch (first.kind) {
    case 'bool':
      return { kind: 'bool', data: typed(new Uint8Array(total)), valid };
    case 'int32':
      return { kind: 'int32', data: typed(new Int32Array(total)), valid };
    case 'int64':
      return { kind: 'int64', data: typed(new BigInt64Array(total) as unknown as Uint8Array) as unknown as BigInt64Array, valid };
    case 'float':
      return { kind: 'float', data: typed(new Float32Array(total)), valid };
    case 'double':
      return { kind: 'double', data: typed(new Float64Array(total)), valid };
    case 'vector':
      return { kind: 'vector', dim: first.dim, data: typed(new Float32Array(total * first.dim), first.dim), valid };
    case 'bytevec': {
      const w = bytesPerRow(first.vtype, first.dim);
      return { kind: 'bytevec', vtype: first.vtype, dim: first.dim, data: typed(new Uint8Array(total * w), w), valid };
    }
    case 'sparse':
      return { kind: 'sparse', data: parts.flatMap((p) => p.data as SparseRow[]), valid };
    case 'string':
      return { kind: 'string', data: parts.flatMap((p) => p.data as string[]), valid };
    case 'json':
      return { kind: 'json', data: parts.flatMap((p) => p.data as unknown[]), valid };
    case 'array':
      return { kind: 'array', elementType: first.elementType, data: parts.flatMap((p) => p.data as ScalarValue[][]), valid };
    case 'struct':
      return { kind: 'struct', layout: first.layout, data: parts.flatMap((p) => p.data as StructRow[]), valid };
  }
}

/** Gathers the given rows of a column (in the given order). */
export function takeRows(c: Column, rows: ArrayLike<number>): Column {
  const n = rows.length;
  let valid: Uint8Array | undefined;
  if (c.valid) {
    valid = new Uint8Array(n);
    for (let i = 0; i < n; i++) valid[i] = c.valid[rows[i]!]!;
  }
  const gather = <T extends { [i: number]: unknown }>(src: T, out: T): T => {
    for (let i = 0; i < n; i++) out[i] = src[rows[i]!];
    return out;
  };
  switch (c.kind) {
    case 'bool':
      return { kind: 'bool', data: gather(c.data, new Uint8Array(n)), valid };
    case 'int32':
      return { kind: 'int32', data: gather(c.data, new Int32Array(n)), valid };
    case 'int64':
      return { kind: 'int64', data: gather(c.data, new BigInt64Array(n)), valid };
    case 'float':
      return { kind: 'float', data: gather(c.data, new Float32Array(n)), valid };
    case 'double':
      return { kind: 'double', data: gather(c.data, new Float64Array(n)), valid };
    case 'string':
      return { kind: 'string', data: Array.from(rows, (r) => c.data[r]!), valid };
    case 'json':
      return { kind: 'json', data: Array.from(rows, (r) => c.data[r]), valid };
    case 'array':
      return { kind: 'array', elementType: c.elementType, data: Array.from(rows, (r) => c.data[r]!), valid };
    case 'vector': {
      if (c.lazy) return { kind: 'vector', dim: c.dim, data: c.lazy.gather(rows), valid };
      const out = new Float32Array(n * c.dim);
      for (let i = 0; i < n; i++) {
        const r = rows[i]!;
        out.set(c.data.subarray(r * c.dim, (r + 1) * c.dim), i * c.dim);
      }
      return { kind: 'vector', dim: c.dim, data: out, valid };
    }
    case 'bytevec': {
      const w = bytesPerRow(c.vtype, c.dim);
      const out = new Uint8Array(n * w);
      for (let i = 0; i < n; i++) {
        const r = rows[i]!;
        out.set(c.data.subarray(r * w, (r + 1) * w), i * w);
      }
      return { kind: 'bytevec', vtype: c.vtype, dim: c.dim, data: out, valid };
    }
    case 'sparse':
      return { kind: 'sparse', data: Array.from(rows, (r) => c.data[r]!), valid };
    case 'struct':
      return { kind: 'struct', layout: c.layout, data: Array.from(rows, (r) => c.data[r]!), valid };
  }
}
