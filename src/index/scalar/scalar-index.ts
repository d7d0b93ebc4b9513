/**
 * A scalar index over one sealed segment's column: a sorted dictionary of the distinct values (terms) with
 * the rows holding each (postings), as an inverted index keeps them. One structure serves every scalar
 * index type Milvus names (INVERTED, STL_SORT, BITMAP, Trie, JSON path): equality and `in` are term
 * lookups, ranges are a slice of the sorted terms, a VarChar prefix is the contiguous run of terms
 * starting with it, and an Array (or a JSON array cast) posts each row under every element it holds.
 *
 * Answers are candidate row sets that contain every row the predicate is TRUE for; the filter is then
 * evaluated on those rows only (expr/index-plan.ts), so an index never changes a result, only how many rows
 * the scan touches. That is what lets numeric bounds widen by a rounding margin (int64 and big JSON
 * numbers are keyed as doubles) and NaN rows join every candidate set.
 *
 * File (the versioned container of index-file.ts, kind "scalar"): sections `keys` (Float64 sorted terms,
 * or UTF-8 JSON of the sorted string terms), `offsets` (Int32, terms + 1), `rows` (Int32 postings, sorted
 * per term), `nan` (Int32 rows whose value is NaN).
 */

import { quiverError } from '../../common/errors.js';
import type { Column } from '../../schema/types.js';
import { decodeIndexFile, encodeIndexFile, sectionAs } from '../index-file.js';
import type { RangeBound, ScalarIndexReader } from '../../expr/index-plan.js';
import type { JsonCastType, ScalarIndexType } from './scalar-index-params.js';
import { RTreeIndex } from './rtree-index.js';

/** What a segment's scalar index file holds: the sorted-terms index, or the RTREE of a Geometry field. */
export type SegmentScalarIndex = ScalarIndex | RTreeIndex;

/** How terms are typed: the constants a predicate compares with must be of the same kind. */
export type TermKind = 'number' | 'bool' | 'string';

/** Relative margin by which numeric bounds widen (int64 and JSON numbers keyed as doubles round by < 2^-52). */
const ROUNDING_MARGIN = 2 ** -48;

export interface ScalarIndexMeta {
  readonly indexType: ScalarIndexType;
  readonly termKind: TermKind;
  /** Rows are posted under each element they hold (Array fields, ARRAY_* JSON casts). */
  readonly elements: boolean;
  readonly jsonPath?: readonly (string | number)[] | undefined;
  readonly jsonCastType?: JsonCastType | undefined;
}

export class ScalarIndex implements ScalarIndexReader {
  readonly meta: ScalarIndexMeta;
  /** Rows of the segment (not only the indexed ones). */
  readonly rows: number;
  readonly #numKeys: Float64Array | undefined;
  readonly #strKeys: readonly string[] | undefined;
  readonly #offsets: Int32Array;
  readonly #postings: Int32Array;
  readonly #nan: Int32Array;

  private constructor(
    meta: ScalarIndexMeta,
    rows: number,
    keys: Float64Array | readonly string[],
    offsets: Int32Array,
    postings: Int32Array,
    nan: Int32Array,
  ) {
    this.meta = meta;
    this.rows = rows;
    if (keys instanceof Float64Array) this.#numKeys = keys;
    else this.#strKeys = keys;
    this.#offsets = offsets;
    this.#postings = postings;
    this.#nan = nan;
    const terms = keys.length;
    if (offsets.length !== terms + 1 || offsets[terms] !== postings.length) {
      throw quiverError('SegmentLoadFailed', `scalar index is inconsistent: ${terms} terms, ${offsets.length} offsets, ${postings.length} postings`);
    }
  }

  get elements(): boolean {
    return this.meta.elements;
  }

  get terms(): number {
    return this.#numKeys?.length ?? this.#strKeys!.length;
  }

  /**
   * Builds the index of a column; `jsonPath`/`jsonCastType` select and cast the values of a JSON column.
   * RTREE (Geometry) is its own structure, built here too so that callers handle one scalar index kind.
   */
  /**
   * `jsonWalked`: a JSON column whose rows are already the values at `meta.jsonPath` (walkPath), as the data
   * node sends them to its build worker (far cheaper to copy across threads than whole documents).
   */
  static build(column: Column, meta: Omit<ScalarIndexMeta, 'termKind' | 'elements'>, opts: { jsonWalked?: boolean } = {}): SegmentScalarIndex {
    if (meta.indexType === 'RTREE') return RTreeIndex.build(column);
    const values = extractValues(column, meta, opts.jsonWalked ?? false);
    const termKind = values.kind;
    const pairs = values.pairs;
    const elements = column.kind === 'array' || (meta.jsonCastType?.startsWith('ARRAY_') ?? false);
    const full: ScalarIndexMeta = { ...meta, termKind, elements };
    if (termKind === 'string') {
      const vals = pairs.vals as string[];
      const order = Array.from(pairs.rows.keys()).sort((a, b) => {
        const x = vals[a]!;
        const y = vals[b]!;
        return x < y ? -1 : x > y ? 1 : pairs.rows[a]! - pairs.rows[b]!;
      });
      const keys: string[] = [];
      const offsets: number[] = [];
      const postings = new Int32Array(order.length);
      let last: string | undefined;
      let prevRow = -1;
      let n = 0;
      for (const i of order) {
        const v = vals[i]!;
        if (v !== last || keys.length === 0) {
          keys.push(v);
          offsets.push(n);
          last = v;
          prevRow = -1;
        }
        const row = pairs.rows[i]!;
        if (row === prevRow) continue; // an array holding the same element twice posts its row once
        postings[n++] = row;
        prevRow = row;
      }
      offsets.push(n);
      return new ScalarIndex(full, column.data.length, keys, Int32Array.from(offsets), postings.slice(0, n), new Int32Array(0));
    }
    const vals = pairs.vals as number[];
    const nan: number[] = [];
    const idx: number[] = [];
    for (let i = 0; i < vals.length; i++) {
      if (Number.isNaN(vals[i])) nan.push(pairs.rows[i]!);
      else idx.push(i);
    }
    const keyOf = new Float64Array(idx.length);
    const rowOf = new Int32Array(idx.length);
    for (let j = 0; j < idx.length; j++) {
      keyOf[j] = vals[idx[j]!]!;
      rowOf[j] = pairs.rows[idx[j]!]!;
    }
    const order = new Uint32Array(idx.length);
    for (let j = 0; j < order.length; j++) order[j] = j;
    order.sort((a, b) => keyOf[a]! - keyOf[b]! || rowOf[a]! - rowOf[b]!);
    const keys: number[] = [];
    const offsets: number[] = [];
    const postings = new Int32Array(order.length);
    let n = 0;
    let prevRow = -1;
    for (let j = 0; j < order.length; j++) {
      const o = order[j]!;
      const k = keyOf[o]!;
      // -0 and 0 are one term (they compare equal).
      if (keys.length === 0 || k !== keys[keys.length - 1]) {
        keys.push(k);
        offsets.push(n);
        prevRow = -1;
      }
      const row = rowOf[o]!;
      if (row === prevRow) continue;
      postings[n++] = row;
      prevRow = row;
    }
    offsets.push(n);
    const uniqNan = [...new Set(nan)].sort((a, b) => a - b);
    return new ScalarIndex(full, column.data.length, Float64Array.from(keys), Int32Array.from(offsets), postings.slice(0, n), Int32Array.from(uniqNan));
  }

  // ------------------------------------------------------------------ queries (candidate rows, unsorted, may repeat across terms)

  /** Rows whose value may equal one of `values` (constants of another kind than the terms match nothing). */
  equalAny(values: readonly (bigint | number | string | boolean)[]): Int32Array | undefined {
    const parts: Int32Array[] = [];
    for (const v of values) {
      if (this.#strKeys) {
        if (typeof v !== 'string') return undefined;
        const at = lowerBoundStr(this.#strKeys, v);
        if (at < this.#strKeys.length && this.#strKeys[at] === v) parts.push(this.#postingsOf(at, at + 1));
      } else {
        const x = this.#numeric(v);
        if (x === undefined) return undefined;
        parts.push(this.#numRange(x, x));
      }
    }
    return concat(parts);
  }

  /** Rows whose value may lie within the bounds (an absent bound is open). */
  range(lower: RangeBound | undefined, upper: RangeBound | undefined): Int32Array | undefined {
    if (this.#strKeys) {
      if ((lower && typeof lower.value !== 'string') || (upper && typeof upper.value !== 'string')) return undefined;
      const keys = this.#strKeys;
      const from = lower ? (lower.inclusive ? lowerBoundStr(keys, lower.value as string) : upperBoundStr(keys, lower.value as string)) : 0;
      const to = upper ? (upper.inclusive ? upperBoundStr(keys, upper.value as string) : lowerBoundStr(keys, upper.value as string)) : keys.length;
      return from < to ? this.#postingsOf(from, to) : new Int32Array(0);
    }
    const lo = lower ? this.#numeric(lower.value) : -Infinity;
    const hi = upper ? this.#numeric(upper.value) : Infinity;
    // Booleans have no order the scan would honour with an index.
    if (lo === undefined || hi === undefined || this.meta.termKind === 'bool') return undefined;
    return this.#numRange(lo, hi);
  }

  /** Rows whose (string) value starts with `prefix`. */
  prefix(prefix: string): Int32Array | undefined {
    const keys = this.#strKeys;
    if (!keys) return undefined;
    const from = lowerBoundStr(keys, prefix);
    let to = from;
    while (to < keys.length && keys[to]!.startsWith(prefix)) to++;
    return from < to ? this.#postingsOf(from, to) : new Int32Array(0);
  }

  /** The constant as a double key, or undefined when it cannot equal any term of this index. */
  #numeric(v: bigint | number | string | boolean): number | undefined {
    if (this.meta.termKind === 'bool') return typeof v === 'boolean' ? (v ? 1 : 0) : undefined;
    if (typeof v === 'bigint') return Number(v);
    if (typeof v === 'number') return v;
    return undefined;
  }

  /** Postings of every term in [lo, hi] widened by the rounding margin, plus the NaN rows. */
  #numRange(lo: number, hi: number): Int32Array {
    const keys = this.#numKeys!;
    if (Number.isNaN(lo) || Number.isNaN(hi)) return this.#nan.slice();
    // Infinite bounds stay as they are (widening them would make NaN and lose the infinite terms).
    const wlo = Number.isFinite(lo) ? lo - Math.abs(lo) * ROUNDING_MARGIN : lo;
    const whi = Number.isFinite(hi) ? hi + Math.abs(hi) * ROUNDING_MARGIN : hi;
    let a = 0;
    let b = keys.length;
    while (a < b) {
      const m = (a + b) >>> 1;
      if (keys[m]! < wlo) a = m + 1;
      else b = m;
    }
    const from = a;
    b = keys.length;
    while (a < b) {
      const m = (a + b) >>> 1;
      if (keys[m]! <= whi) a = m + 1;
      else b = m;
    }
    const got = from < a ? this.#postingsOf(from, a) : new Int32Array(0);
    return this.#nan.length === 0 ? got : concat([got, this.#nan]);
  }

  #postingsOf(fromTerm: number, toTerm: number): Int32Array {
    return this.#postings.subarray(this.#offsets[fromTerm]!, this.#offsets[toTerm]!);
  }

  // ------------------------------------------------------------------ persistence

  toBytes(): Uint8Array {
    const sections = new Map<string, Uint8Array>();
    sections.set('keys', this.#numKeys ? bytesOf(this.#numKeys) : new Uint8Array(Buffer.from(JSON.stringify(this.#strKeys), 'utf8')));
    sections.set('offsets', bytesOf(this.#offsets));
    sections.set('rows', bytesOf(this.#postings));
    sections.set('nan', bytesOf(this.#nan));
    const params: Record<string, unknown> = { indexType: this.meta.indexType, termKind: this.meta.termKind };
    if (this.meta.jsonPath !== undefined) params['jsonPath'] = this.meta.jsonPath;
    if (this.meta.jsonCastType !== undefined) params['jsonCastType'] = this.meta.jsonCastType;
    params['elements'] = this.meta.elements;
    return encodeIndexFile({ kind: 'scalar', dim: 0, metric: '', rows: this.rows, params }, sections);
  }

  static fromBytes(bytes: Uint8Array, source: string, expect: { rows: number; indexType: ScalarIndexType }): SegmentScalarIndex {
    if (expect.indexType === 'RTREE') return RTreeIndex.fromBytes(bytes, source, expect.rows);
    const { header, sections } = decodeIndexFile(bytes, source, { dim: 0, metric: '', rows: expect.rows, kind: 'scalar' });
    const p = header.params;
    const bad = (why: string): never => {
      throw quiverError('SegmentLoadFailed', `scalar index file ${source} is not usable: ${why}`);
    };
    if (p['indexType'] !== expect.indexType) bad(`it was built as ${String(p['indexType'])}, expected ${expect.indexType}`);
    const termKind = p['termKind'];
    if (termKind !== 'number' && termKind !== 'bool' && termKind !== 'string') return bad(`unknown term kind ${String(termKind)}`);
    const need = (name: string): Uint8Array => sections.get(name) ?? bad(`section ${name} is missing`);
    let keys: Float64Array | string[];
    if (termKind === 'string') {
      const parsed: unknown = JSON.parse(Buffer.from(need('keys')).toString('utf8'));
      if (!Array.isArray(parsed) || !parsed.every((k) => typeof k === 'string')) return bad('string terms are malformed');
      keys = parsed as string[];
    } else {
      keys = sectionAs(need('keys'), Float64Array);
    }
    const meta: ScalarIndexMeta = {
      indexType: expect.indexType,
      termKind,
      elements: p['elements'] === true,
      jsonPath: p['jsonPath'] as (string | number)[] | undefined,
      jsonCastType: p['jsonCastType'] as JsonCastType | undefined,
    };
    return new ScalarIndex(
      meta,
      header.rows,
      keys,
      sectionAs(need('offsets'), Int32Array),
      sectionAs(need('rows'), Int32Array),
      sectionAs(need('nan'), Int32Array),
    );
  }
}

// ------------------------------------------------------------------ value extraction

interface Pairs {
  /** Row of each indexed value (a row appears once per array element it holds). */
  readonly rows: number[];
  readonly vals: (number | string)[];
}

function extractValues(column: Column, meta: Omit<ScalarIndexMeta, 'termKind' | 'elements'>, jsonWalked: boolean): { kind: TermKind; pairs: Pairs } {
  const rows: number[] = [];
  const vals: (number | string)[] = [];
  const valid = column.valid;
  const n = column.data.length;
  const present = (i: number): boolean => valid === undefined || valid[i] === 1;
  const add = (row: number, v: number | string): void => {
    rows.push(row);
    vals.push(v);
  };
  switch (column.kind) {
    case 'bool':
    case 'int32':
    case 'float':
    case 'double':
      for (let i = 0; i < n; i++) if (present(i)) add(i, column.data[i]!);
      return { kind: column.kind === 'bool' ? 'bool' : 'number', pairs: { rows, vals } };
    case 'int64':
      for (let i = 0; i < n; i++) if (present(i)) add(i, Number(column.data[i]!));
      return { kind: 'number', pairs: { rows, vals } };
    case 'string':
      for (let i = 0; i < n; i++) if (present(i)) add(i, column.data[i]!);
      return { kind: 'string', pairs: { rows, vals } };
    case 'array': {
      const kind: TermKind = column.elementType === 'VarChar' ? 'string' : column.elementType === 'Bool' ? 'bool' : 'number';
      for (let i = 0; i < n; i++) {
        if (!present(i)) continue;
        for (const e of column.data[i]!) {
          const v = kind === 'string' ? String(e) : typeof e === 'boolean' ? (e ? 1 : 0) : Number(e);
          rows.push(i);
          vals.push(v);
        }
      }
      return { kind, pairs: { rows, vals } };
    }
    case 'json': {
      const cast = meta.jsonCastType;
      if (cast === undefined) throw quiverError('ParameterInvalid', 'an index on a JSON field needs json_cast_type');
      const kind: TermKind = cast.endsWith('VARCHAR') ? 'string' : cast.endsWith('BOOL') ? 'bool' : 'number';
      const isArray = cast.startsWith('ARRAY_');
      const path = meta.jsonPath ?? [];
      for (let i = 0; i < n; i++) {
        if (!present(i)) continue;
        const v = jsonWalked ? column.data[i] : walkPath(column.data[i], path);
        if (isArray) {
          if (!Array.isArray(v)) continue;
          for (const e of v) {
            const c = castJson(e, kind);
            if (c !== undefined) add(i, c);
          }
        } else {
          const c = castJson(v, kind);
          if (c !== undefined) add(i, c);
        }
      }
      return { kind, pairs: { rows, vals } };
    }
    default:
      throw quiverError('IndexNotSupported', `a scalar index cannot be built over a ${column.kind} column`);
  }
}

/** The value at a JSON key path, or undefined when the path does not exist. */
export function walkPath(v: unknown, path: readonly (string | number)[]): unknown {
  let cur = v;
  for (const p of path) {
    if (cur === null || cur === undefined) return undefined;
    if (typeof p === 'number') {
      if (!Array.isArray(cur)) return undefined;
      cur = cur[p];
    } else {
      if (typeof cur !== 'object' || Array.isArray(cur)) return undefined;
      cur = (cur as Record<string, unknown>)[p];
    }
  }
  return cur;
}

function castJson(v: unknown, kind: TermKind): number | string | undefined {
  switch (kind) {
    case 'string':
      return typeof v === 'string' ? v : undefined;
    case 'bool':
      return typeof v === 'boolean' ? (v ? 1 : 0) : undefined;
    case 'number':
      return typeof v === 'number' ? v : typeof v === 'bigint' ? Number(v) : undefined;
  }
}

// ------------------------------------------------------------------ helpers

function bytesOf(a: Float64Array | Int32Array): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

function concat(parts: readonly Int32Array[]): Int32Array {
  if (parts.length === 1) return parts[0]!;
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Int32Array(n);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

function lowerBoundStr(keys: readonly string[], v: string): number {
  let a = 0;
  let b = keys.length;
  while (a < b) {
    const m = (a + b) >>> 1;
    if (keys[m]! < v) a = m + 1;
    else b = m;
  }
  return a;
}

function upperBoundStr(keys: readonly string[], v: string): number {
  let a = 0;
  let b = keys.length;
  while (a < b) {
    const m = (a + b) >>> 1;
    if (keys[m]! <= v) a = m + 1;
    else b = m;
  }
  return a;
}
