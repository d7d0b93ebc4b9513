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

interface Postings {
  readonly rows: number[];
  readonly tfs: number[];
}

/**
 * The inverted index of one column of term-frequency rows (one per chunk, built once: a chunk's column
 * never changes). Liveness is applied per search through a mask, since deletes arrive later.
 */
export class Bm25ColumnIndex {
  readonly numRows: number;
  readonly docLen: Float32Array;
  readonly #postings = new Map<number, Postings>();

  constructor(rows: readonly SparseRow[]) {
    this.numRows = rows.length;
    this.docLen = new Float32Array(rows.length);
    rows.forEach((row, r) => {
      let len = 0;
      for (let i = 0; i < row.indices.length; i++) {
        const d = row.indices[i]!;
        const tf = row.values[i]!;
        len += tf;
        let p = this.#postings.get(d);
        if (!p) this.#postings.set(d, (p = { rows: [], tfs: [] }));
        p.rows.push(r);
        p.tfs.push(tf);
      }
      this.docLen[r] = len;
    });
  }

  /** Adds this column's live rows to running totals (rows, total length, df of `terms`). */
  addStats(live: Uint8Array | undefined, terms: readonly number[], acc: { n: number; totalLen: number; df: Map<number, number> }): void {
    for (let r = 0; r < this.numRows; r++) {
      if (live && live[r] === 0) continue;
      acc.n++;
      acc.totalLen += this.docLen[r]!;
    }
    for (const t of terms) {
      const p = this.#postings.get(t);
      if (!p) continue;
      let c = 0;
      for (const r of p.rows) if (!live || live[r] === 1) c++;
      acc.df.set(t, (acc.df.get(t) ?? 0) + c);
    }
  }

  /** Scores of the rows `allow` admits that share a term with the weighted query (weights = qtf · idf). */
  score(query: SparseRow, stats: Bm25Stats, params: Bm25Params, allow: Uint8Array | undefined): Map<number, number> {
    const acc = new Map<number, number>();
    const { k1, b } = params;
    const avgdl = stats.avgdl > 0 ? stats.avgdl : 1;
    for (let i = 0; i < query.indices.length; i++) {
      const p = this.#postings.get(query.indices[i]!);
      if (!p) continue;
      const w = query.values[i]!;
      for (let j = 0; j < p.rows.length; j++) {
        const r = p.rows[j]!;
        if (allow && allow[r] === 0) continue;
        const tf = p.tfs[j]!;
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
    idx = new Bm25ColumnIndex(rows);
    columnIndexes.set(column, idx);
  }
  return idx;
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
