/**
 * BM25 as Milvus defines it for a `BM25` function (VarChar → SparseFloatVector):
 *
 * - Insert: the input text is analyzed; each token becomes the dimension `hashToken(token)` (CRC-32/IEEE
 *   of the token's first 100 UTF-8 bytes, mod 2^32 - 1, as Milvus's HashString2LessUint32) and the value
 *   is how often it occurs. That term-frequency row is what the output field stores, in the WAL, the
 *   binlogs and snapshots; a row's document length is the sum of its values.
 * - Search: the query text is turned into a term-frequency row the same way, then each row scores
 *     Σ_t  qtf(t) · idf(t) · tf(t) · (k1 + 1) / (tf(t) + k1 · (1 − b + b · dl / avgdl))
 *   with idf(t) = ln(1 + (N − df(t) + 0.5) / (df(t) + 0.5)). N, df and avgdl are the collection
 *   statistics: see `Bm25Stats` for what they cover. Rows sharing no term with the query get no score.
 */

import * as zlib from 'node:zlib';
import { quiverError } from '../common/errors.js';
import type { SparseRow } from '../schema/types.js';
import type { Analyzer } from './analyzer.js';
import { textIndexCounters } from './index-counters.js';

export const BM25_K1_DEFAULT = 1.2;
export const BM25_B_DEFAULT = 0.75;
/** Milvus's accepted ranges for the index params `bm25_k1` and `bm25_b`. */
export const BM25_K1_RANGE: readonly [number, number] = [1.2, 2.0];
export const BM25_B_RANGE: readonly [number, number] = [0, 1];

const HASH_PREFIX_BYTES = 100;
const UINT32_MAX = 0xffffffff;

/** A token's sparse dimension: stable across processes and versions (it is persisted). */
export function hashToken(token: string): number {
  const bytes = Buffer.from(token, 'utf8');
  const crc = zlib.crc32(bytes.length > HASH_PREFIX_BYTES ? bytes.subarray(0, HASH_PREFIX_BYTES) : bytes) >>> 0;
  return crc % UINT32_MAX;
}

/** The BM25 function's output for one text: term hash → occurrences, indices ascending. */
export function termFrequencies(analyzer: Analyzer, text: string): SparseRow {
  const counts = new Map<number, number>();
  for (const t of analyzer.terms(text)) {
    const h = hashToken(t);
    counts.set(h, (counts.get(h) ?? 0) + 1);
  }
  const indices = Uint32Array.from(counts.keys()).sort();
  const values = new Float32Array(indices.length);
  for (let i = 0; i < indices.length; i++) values[i] = counts.get(indices[i]!)!;
  return { indices, values };
}

export interface Bm25Params {
  readonly k1: number;
  readonly b: number;
}

function rangeParam(params: Readonly<Record<string, unknown>>, key: string, def: number, [lo, hi]: readonly [number, number]): number {
  const raw = params[key];
  if (raw === undefined || raw === '') return def;
  const v = Number(raw);
  if (!Number.isFinite(v) || v < lo || v > hi) throw quiverError('ParameterInvalid', `${key} ${String(raw)} is invalid: must be in [${lo}, ${hi}]`);
  return v;
}

/**
 * k1 and b of a BM25 index from its params (top-level keys, or inside the `params` JSON string as the SDK
 * sends them); the defaults when the field has no index.
 */
export function bm25ParamsOf(userParams: Readonly<Record<string, string | number>> | undefined): Bm25Params {
  let p: Record<string, unknown> = { ...(userParams ?? {}) };
  const nested = p['params'];
  if (typeof nested === 'string' && nested !== '') {
    try {
      p = { ...p, ...(JSON.parse(nested) as Record<string, unknown>) };
    } catch {
      throw quiverError('ParameterInvalid', `index params is not valid JSON: ${nested}`);
    }
  }
  return { k1: rangeParam(p, 'bm25_k1', BM25_K1_DEFAULT, BM25_K1_RANGE), b: rangeParam(p, 'bm25_b', BM25_B_DEFAULT, BM25_B_RANGE) };
}

/**
 * Collection statistics of one search. They cover the rows the search could see if it had no filter:
 * every live row (not deleted, not expired) of the segments searched (the partitions named, growing
 * segments unless ignore_growing), counted at search time. So a deleted row stops counting as soon as
 * its delete is applied, not only after compaction, and the filter does not change the scores.
 */
export interface Bm25Stats {
  /** Live rows. */
  readonly n: number;
  /** Average document length (sum of term frequencies) over those rows. */
  readonly avgdl: number;
  /** Rows containing each query term. */
  readonly df: ReadonlyMap<number, number>;
}

export interface Bm25Arrays {
  /** Term hashes, ascending. */
  readonly terms: Uint32Array;
  /** Postings of terms[i] are rows/tfs[termStarts[i] .. termStarts[i + 1]). */
  readonly termStarts: Uint32Array;
  readonly rows: Uint32Array;
  readonly tfs: Float32Array;
  readonly docLen: Float32Array;
}

/** The flat postings of term-frequency rows: terms ascending, each term's rows ascending. */
function arraysOf(rows: readonly SparseRow[]): Bm25Arrays {
  const docLen = new Float32Array(rows.length);
  const counts = new Map<number, number>();
  let total = 0;
  rows.forEach((row, r) => {
    let len = 0;
    for (let i = 0; i < row.indices.length; i++) {
      const d = row.indices[i]!;
      len += row.values[i]!;
      counts.set(d, (counts.get(d) ?? 0) + 1);
    }
    total += row.indices.length;
    docLen[r] = len;
  });
  const terms = Uint32Array.from(counts.keys()).sort();
  const termStarts = new Uint32Array(terms.length + 1);
  const fill = new Map<number, number>();
  let at = 0;
  terms.forEach((t, i) => {
    termStarts[i] = at;
    fill.set(t, at);
    at += counts.get(t)!;
  });
  termStarts[terms.length] = at;
  const postRows = new Uint32Array(total);
  const tfs = new Float32Array(total);
  rows.forEach((row, r) => {
    for (let i = 0; i < row.indices.length; i++) {
      const d = row.indices[i]!;
      const k = fill.get(d)!;
      postRows[k] = r;
      tfs[k] = row.values[i]!;
      fill.set(d, k + 1);
    }
  });
  return { terms, termStarts, rows: postRows, tfs, docLen };
}

/**
 * The inverted index of one column of term-frequency rows (one per chunk, built once: a chunk's column
 * never changes; a sealed segment's is opened from its index file, text/text-index-file.ts). Liveness is
 * applied per search through a mask, since deletes arrive later.
 */
export class Bm25ColumnIndex {
  readonly numRows: number;
  readonly docLen: Float32Array;
  readonly #arrays: Bm25Arrays;
  /** Term hash → its slot in `terms`. */
  readonly #slots = new Map<number, number>();

  /** Builds the index of term-frequency rows, or wraps arrays already checked by `fromArrays`. */
  constructor(source: readonly SparseRow[] | Bm25Arrays) {
    const a = Array.isArray(source) ? arraysOf(source as readonly SparseRow[]) : (source as Bm25Arrays);
    this.numRows = a.docLen.length;
    this.docLen = a.docLen;
    this.#arrays = a;
    a.terms.forEach((t, i) => this.#slots.set(t, i));
  }

  /** An index over arrays read from a file, checked before use (a torn file must not index out of bounds). */
  static fromArrays(a: Bm25Arrays): Bm25ColumnIndex {
    const bad = (why: string): never => {
      throw quiverError('SegmentLoadFailed', `BM25 index arrays are inconsistent: ${why}`);
    };
    if (a.termStarts.length !== a.terms.length + 1) bad(`${a.termStarts.length} term starts for ${a.terms.length} terms`);
    if (a.rows.length !== a.tfs.length) bad(`${a.rows.length} postings but ${a.tfs.length} term frequencies`);
    if (a.termStarts[0] !== 0 || a.termStarts[a.terms.length] !== a.rows.length) bad('term starts do not cover the postings');
    for (let i = 0; i < a.terms.length; i++) if (a.termStarts[i + 1]! < a.termStarts[i]!) bad(`term starts decrease at term ${i}`);
    for (let i = 0; i < a.rows.length; i++) if (a.rows[i]! >= a.docLen.length) bad(`posting ${i} names row ${a.rows[i]} of ${a.docLen.length}`);
    return new Bm25ColumnIndex(a);
  }

  toArrays(): Bm25Arrays {
    return this.#arrays;
  }

  /** Adds this column's live rows to running totals (rows, total length, df of `terms`). */
  addStats(live: Uint8Array | undefined, terms: readonly number[], acc: { n: number; totalLen: number; df: Map<number, number> }): void {
    for (let r = 0; r < this.numRows; r++) {
      if (live && live[r] === 0) continue;
      acc.n++;
      acc.totalLen += this.docLen[r]!;
    }
    const { termStarts, rows } = this.#arrays;
    for (const t of terms) {
      const slot = this.#slots.get(t);
      if (slot === undefined) continue;
      let c = 0;
      const to = termStarts[slot + 1]!;
      for (let j = termStarts[slot]!; j < to; j++) if (!live || live[rows[j]!] === 1) c++;
      acc.df.set(t, (acc.df.get(t) ?? 0) + c);
    }
  }

  /** Scores of the rows `allow` admits that share a term with the weighted query (weights = qtf · idf). */
  score(query: SparseRow, stats: Bm25Stats, params: Bm25Params, allow: Uint8Array | undefined): Map<number, number> {
    const acc = new Map<number, number>();
    const { k1, b } = params;
    const avgdl = stats.avgdl > 0 ? stats.avgdl : 1;
    const { termStarts, rows, tfs } = this.#arrays;
    for (let i = 0; i < query.indices.length; i++) {
      const slot = this.#slots.get(query.indices[i]!);
      if (slot === undefined) continue;
      const w = query.values[i]!;
      const to = termStarts[slot + 1]!;
      for (let j = termStarts[slot]!; j < to; j++) {
        const r = rows[j]!;
        if (allow && allow[r] === 0) continue;
        const tf = tfs[j]!;
        const s = (w * tf * (k1 + 1)) / (tf + k1 * (1 - b + (b * this.docLen[r]!) / avgdl));
        acc.set(r, (acc.get(r) ?? 0) + s);
      }
    }
    return acc;
  }
}

const columnIndexes = new WeakMap<object, Bm25ColumnIndex>();

/** The cached index of a column (keyed by the column object, which a loaded chunk never replaces). */
export function bm25IndexOf(column: object, rows: readonly SparseRow[]): Bm25ColumnIndex {
  let idx = columnIndexes.get(column);
  if (!idx) {
    textIndexCounters.builtOnFirstUse++;
    idx = new Bm25ColumnIndex(rows);
    columnIndexes.set(column, idx);
  }
  return idx;
}

/** Attaches a column's index built elsewhere (a sealed segment's index file, or the flush that wrote it). */
export function attachBm25Index(column: object, index: Bm25ColumnIndex): void {
  if (index.numRows !== (column as { data: unknown[] }).data.length) throw new Error('assertion failed: BM25 index and column differ in rows');
  columnIndexes.set(column, index);
}

export function idf(n: number, df: number): number {
  return Math.log(1 + (n - df + 0.5) / (df + 0.5));
}

/** A term-frequency query row weighted by idf: the vector each row's BM25 terms are multiplied with. */
export function weightQuery(query: SparseRow, stats: Bm25Stats): SparseRow {
  const values = new Float32Array(query.values.length);
  for (let i = 0; i < query.indices.length; i++) values[i] = query.values[i]! * idf(stats.n, stats.df.get(query.indices[i]!) ?? 0);
  return { indices: query.indices, values };
}
