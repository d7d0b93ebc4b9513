/**
 * SPARSE_INVERTED_INDEX and SPARSE_WAND over SparseFloatVector rows, metric IP. Both are an inverted
 * index (dimension → postings of (row, value)) held in memory and built from the loaded column the first
 * time a search needs it; WAND differs only in how a real engine prunes, so both return the exact IP
 * top-k over rows sharing at least one dimension with the query (a row with no overlap has no score, as
 * in Milvus). `drop_ratio_build` drops each row's smallest-|value| fraction at build time;
 * `drop_ratio_search` drops the query's smallest fraction at search time.
 */

import type { SparseRow } from '../schema/types.js';
import { type Hits, type SearchOptions, emptyHits } from './types.js';

interface Postings {
  rows: number[];
  values: number[];
}

/** Keeps the largest-|value| (1 - ratio) share of a row's entries, in index order. */
export function dropSmallest(row: SparseRow, ratio: number): SparseRow {
  if (ratio <= 0 || row.indices.length === 0) return row;
  const drop = Math.floor(row.indices.length * ratio);
  if (drop === 0) return row;
  const order = Array.from(row.indices, (_, i) => i).sort((a, b) => Math.abs(row.values[a]!) - Math.abs(row.values[b]!) || a - b);
  const keep = new Set(order.slice(drop));
  const idx: number[] = [];
  const val: number[] = [];
  for (let i = 0; i < row.indices.length; i++) {
    if (!keep.has(i)) continue;
    idx.push(row.indices[i]!);
    val.push(row.values[i]!);
  }
  return { indices: Uint32Array.from(idx), values: Float32Array.from(val) };
}

export class SparseInvertedIndex {
  readonly size: number;
  readonly #postings = new Map<number, Postings>();

  constructor(rows: readonly SparseRow[], dropRatioBuild = 0) {
    this.size = rows.length;
    rows.forEach((raw, r) => {
      const row = dropSmallest(raw, dropRatioBuild);
      for (let i = 0; i < row.indices.length; i++) {
        const d = row.indices[i]!;
        let p = this.#postings.get(d);
        if (!p) this.#postings.set(d, (p = { rows: [], values: [] }));
        p.rows.push(r);
        p.values.push(row.values[i]!);
      }
    });
  }

  /** Exact IP top-k per query (higher first, ties by row). Range search keeps radius < s <= rangeFilter. */
  search(queries: readonly SparseRow[], opts: SearchOptions & { dropRatioSearch?: number | undefined }): Hits[] {
    return queries.map((raw) => {
      const q = dropSmallest(raw, opts.dropRatioSearch ?? 0);
      const acc = new Map<number, number>();
      for (let i = 0; i < q.indices.length; i++) {
        const p = this.#postings.get(q.indices[i]!);
        if (!p) continue;
        const qv = q.values[i]!;
        for (let j = 0; j < p.rows.length; j++) {
          const r = p.rows[j]!;
          if (opts.allow && opts.allow[r] === 0) continue;
          acc.set(r, (acc.get(r) ?? 0) + qv * p.values[j]!);
        }
      }
      if (acc.size === 0) return emptyHits();
      const lo = opts.radius ?? -Infinity;
      const hi = opts.rangeFilter ?? Infinity;
      const hits = [...acc].map(([r, s]) => [r, Math.fround(s)] as const).filter(([, s]) => opts.radius === undefined || (s > lo && s <= hi));
      hits.sort((a, b) => b[1] - a[1] || a[0] - b[0]);
      const k = Math.min(opts.k, hits.length);
      const out = { rows: new Int32Array(k), scores: new Float32Array(k) };
      for (let i = 0; i < k; i++) {
        out.rows[i] = hits[i]![0];
        out.scores[i] = hits[i]![1];
      }
      return out;
    });
  }
}
