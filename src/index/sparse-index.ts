/**
 * SPARSE_INVERTED_INDEX and SPARSE_WAND over SparseFloatVector rows, metric IP: an inverted index
 * (dimension → postings of (row, value), rows ascending) in typed arrays, built at index-build time and
 * stored in an index file (index-file.ts container, kind 'sparse'); loading it needs no rebuild.
 *
 * Both return the IP top-k over rows sharing at least one dimension with the query (a row with no overlap
 * has no score, as in Milvus). `drop_ratio_build` drops each row's smallest-|value| fraction at build time;
 * `drop_ratio_search` drops the query's smallest fraction at search time.
 *
 * SPARSE_INVERTED_INDEX accumulates every posting of every query dimension (term at a time). SPARSE_WAND
 * walks the query's posting lists document at a time and skips rows that cannot enter the top-k (WAND:
 * each list's largest contribution bounds what a row can score, and a row is only scored once the bounds of
 * the lists positioned at or before it reach the current k-th score). A row is scored by the same sum in the
 * same (query-dimension) order as the exhaustive path and only rows whose bound is below the k-th score are
 * skipped, so at drop_ratio_search 0 both give the same hits as exact search.
 */

import { quiverError } from '../common/errors.js';
import type { SparseRow } from '../schema/types.js';
import { decodeIndexFile, encodeIndexFile, sectionAs } from './index-file.js';
import { type Hits, type SearchOptions, emptyHits } from './types.js';

export type SparseAlgorithm = 'SPARSE_INVERTED_INDEX' | 'SPARSE_WAND';

/** Relative slack on WAND's bound test: a bound summed in another order than the score may round below it. */
const BOUND_SLACK = 1e-6;

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

interface Lists {
  /** Distinct dimensions, ascending. */
  readonly dims: Uint32Array;
  /** dims.length + 1 positions into rows / values. */
  readonly offsets: Int32Array;
  readonly rows: Int32Array;
  readonly values: Float32Array;
  /** Per list: its largest and smallest value (WAND's bounds for a positive or negative query weight). */
  readonly maxes: Float32Array;
  readonly mins: Float32Array;
}

export class SparseInvertedIndex {
  readonly type: SparseAlgorithm;
  readonly metric = 'IP' as const;
  readonly size: number;
  readonly dropRatioBuild: number;
  readonly #l: Lists;

  private constructor(type: SparseAlgorithm, size: number, dropRatioBuild: number, lists: Lists) {
    this.type = type;
    this.size = size;
    this.dropRatioBuild = dropRatioBuild;
    this.#l = lists;
  }

  static build(rows: readonly SparseRow[], opts: { type?: SparseAlgorithm; dropRatioBuild?: number } = {}): SparseInvertedIndex {
    const dropRatioBuild = opts.dropRatioBuild ?? 0;
    const kept = rows.map((r) => dropSmallest(r, dropRatioBuild));
    // Count per dimension, then fill: rows are visited in order, so every list is ascending by row.
    const counts = new Map<number, number>();
    for (const r of kept) for (let i = 0; i < r.indices.length; i++) counts.set(r.indices[i]!, (counts.get(r.indices[i]!) ?? 0) + 1);
    const dims = Uint32Array.from(counts.keys()).sort();
    const slot = new Map<number, number>();
    const offsets = new Int32Array(dims.length + 1);
    for (let d = 0; d < dims.length; d++) {
      slot.set(dims[d]!, d);
      offsets[d + 1] = offsets[d]! + counts.get(dims[d]!)!;
    }
    const total = offsets[dims.length]!;
    const out = new Int32Array(total);
    const values = new Float32Array(total);
    const fill = offsets.slice(0, dims.length);
    kept.forEach((r, row) => {
      for (let i = 0; i < r.indices.length; i++) {
        const p = fill[slot.get(r.indices[i]!)!]!++;
        out[p] = row;
        values[p] = r.values[i]!;
      }
    });
    const maxes = new Float32Array(dims.length);
    const mins = new Float32Array(dims.length);
    for (let d = 0; d < dims.length; d++) {
      let hi = -Infinity;
      let lo = Infinity;
      for (let p = offsets[d]!; p < offsets[d + 1]!; p++) {
        hi = Math.max(hi, values[p]!);
        lo = Math.min(lo, values[p]!);
      }
      maxes[d] = hi;
      mins[d] = lo;
    }
    return new SparseInvertedIndex(opts.type ?? 'SPARSE_INVERTED_INDEX', rows.length, dropRatioBuild, { dims, offsets, rows: out, values, maxes, mins });
  }

  static fromBytes(bytes: Uint8Array, source: string, expect: { rows: number; type: SparseAlgorithm }): SparseInvertedIndex {
    // The container checks rows (and that this is a vector index file) against the segment's record first.
    const { header, sections } = decodeIndexFile(bytes, source, { dim: 0, metric: 'IP', rows: expect.rows });
    const bad = (why: string): never => {
      throw quiverError('SegmentLoadFailed', `index file ${source} is not usable: ${why}`);
    };
    if (header.kind !== 'sparse') bad(`it holds a ${header.kind} index, not a sparse inverted index`);
    const sec = (name: string): Uint8Array => sections.get(name) ?? bad(`it has no ${name} section`);
    const dims = sectionAs(sec('dims'), Uint32Array);
    const offsets = sectionAs(sec('offsets'), Int32Array);
    const rows = sectionAs(sec('rows'), Int32Array);
    const values = sectionAs(sec('values'), Float32Array);
    const maxes = sectionAs(sec('maxes'), Float32Array);
    const mins = sectionAs(sec('mins'), Float32Array);
    const d = dims.length;
    if (offsets.length !== d + 1 || maxes.length !== d || mins.length !== d) bad(`${d} dimensions but ${offsets.length} offsets, ${maxes.length} bounds`);
    if (offsets[0] !== 0 || offsets[d] !== rows.length || values.length !== rows.length) bad('posting offsets do not add up to the postings');
    for (let i = 0; i < rows.length; i++) if (rows[i]! < 0 || rows[i]! >= expect.rows) bad(`posting row ${rows[i]} is outside the ${expect.rows} rows`);
    const dropRatioBuild = Number(header.params['dropRatioBuild'] ?? 0);
    return new SparseInvertedIndex(expect.type, expect.rows, dropRatioBuild, { dims, offsets, rows, values, maxes, mins });
  }

  toBytes(): Uint8Array {
    const l = this.#l;
    const bytes = (a: ArrayBufferView): Uint8Array => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
    return encodeIndexFile(
      { kind: 'sparse', dim: 0, metric: 'IP', rows: this.size, params: { dropRatioBuild: this.dropRatioBuild } },
      new Map([
        ['dims', bytes(l.dims)],
        ['offsets', bytes(l.offsets)],
        ['rows', bytes(l.rows)],
        ['values', bytes(l.values)],
        ['maxes', bytes(l.maxes)],
        ['mins', bytes(l.mins)],
      ]),
    );
  }

  /** Postings held (after drop_ratio_build). */
  get postings(): number {
    return this.#l.rows.length;
  }

  /**
   * IP top-k per query (higher first, ties by row). Range search keeps radius < s <= rangeFilter.
   * `scored` (tests, benchmarks) receives how many rows each query fully scored.
   */
  search(queries: readonly SparseRow[], opts: SearchOptions & { dropRatioSearch?: number | undefined; scored?: (rows: number) => void }): Hits[] {
    return queries.map((raw) => {
      const q = dropSmallest(raw, opts.dropRatioSearch ?? 0);
      // The query's dimensions that have postings, in query order (the order scores are summed in).
      const terms: { list: number; weight: number }[] = [];
      for (let i = 0; i < q.indices.length; i++) {
        const list = this.#listOf(q.indices[i]!);
        if (list >= 0) terms.push({ list, weight: q.values[i]! });
      }
      if (terms.length === 0 || opts.k < 1) return emptyHits();
      const top = new TopK(opts.k);
      const inRange = (s: number): boolean => opts.radius === undefined || (s > opts.radius && s <= (opts.rangeFilter ?? Infinity));
      const scored = this.type === 'SPARSE_WAND' ? this.#wand(terms, opts.allow, inRange, top) : this.#exhaustive(terms, opts.allow, inRange, top);
      opts.scored?.(scored);
      return top.drain();
    });
  }

  #listOf(dim: number): number {
    const dims = this.#l.dims;
    let lo = 0;
    let hi = dims.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const v = dims[mid]!;
      if (v === dim) return mid;
      if (v < dim) lo = mid + 1;
      else hi = mid - 1;
    }
    return -1;
  }

  /** Term at a time over every posting; returns the rows scored. */
  #exhaustive(terms: readonly { list: number; weight: number }[], allow: Uint8Array | undefined, inRange: (s: number) => boolean, top: TopK): number {
    const { offsets, rows, values } = this.#l;
    const acc = new Map<number, number>();
    for (const { list, weight } of terms) {
      for (let p = offsets[list]!; p < offsets[list + 1]!; p++) {
        const r = rows[p]!;
        if (allow && allow[r] === 0) continue;
        acc.set(r, (acc.get(r) ?? 0) + weight * values[p]!);
      }
    }
    for (const [r, s] of acc) {
      const f = Math.fround(s);
      if (inRange(f)) top.offer(r, f);
    }
    return acc.size;
  }

  /** Document at a time with WAND pivoting; returns the rows scored. */
  #wand(terms: readonly { list: number; weight: number }[], allow: Uint8Array | undefined, inRange: (s: number) => boolean, top: TopK): number {
    const { offsets, rows, values, maxes, mins } = this.#l;
    const n = terms.length;
    // Cursor per term: position in its list (end = exhausted) and the most it can add to a row's score.
    const pos = new Int32Array(n);
    const end = new Int32Array(n);
    const bound = new Float64Array(n);
    for (let t = 0; t < n; t++) {
      const { list, weight } = terms[t]!;
      pos[t] = offsets[list]!;
      end[t] = offsets[list + 1]!;
      // A row without this dimension gains 0 from it, so a bound is never below 0.
      bound[t] = Math.max(0, weight * maxes[list]!, weight * mins[list]!);
    }
    const rowAt = (t: number): number => (pos[t]! < end[t]! ? rows[pos[t]!]! : Infinity);
    const order = Array.from({ length: n }, (_, t) => t);
    let scored = 0;
    for (;;) {
      order.sort((a, b) => rowAt(a) - rowAt(b));
      // The pivot: the first cursor at which the summed bounds of it and every cursor before it could beat
      // the k-th score; rows before the pivot's row cannot (only the lists before it hold them).
      const theta = top.threshold();
      const need = theta - Math.abs(theta) * BOUND_SLACK;
      let acc = 0;
      let p = -1;
      for (let i = 0; i < n; i++) {
        if (rowAt(order[i]!) === Infinity) break;
        acc += bound[order[i]!]!;
        if (acc >= need) {
          p = i;
          break;
        }
      }
      if (p < 0) break;
      const pivot = rowAt(order[p]!);
      if (rowAt(order[0]!) === pivot) {
        // Every list holding the pivot row is positioned on it: score it in query order, then step past it.
        if (!allow || allow[pivot] !== 0) {
          let s = 0;
          let hit = false;
          for (let t = 0; t < n; t++) {
            if (rowAt(t) !== pivot) continue;
            s += terms[t]!.weight * values[pos[t]!]!;
            hit = true;
          }
          if (hit) {
            scored++;
            const f = Math.fround(s);
            if (inRange(f)) top.offer(pivot, f);
          }
        }
        for (let t = 0; t < n; t++) if (rowAt(t) === pivot) pos[t]!++;
      } else {
        // Lists before the pivot jump to the pivot row (binary search: postings are ascending by row).
        for (let i = 0; i < p; i++) {
          const t = order[i]!;
          let lo = pos[t]!;
          let hi = end[t]!;
          while (lo < hi) {
            const mid = (lo + hi) >>> 1;
            if (rows[mid]! < pivot) lo = mid + 1;
            else hi = mid;
          }
          pos[t] = lo;
        }
      }
    }
    return scored;
  }
}

/** The k best (score desc, row asc) seen so far, as a bounded min-heap on (score, -row). */
class TopK {
  readonly #k: number;
  readonly #rows: number[] = [];
  readonly #scores: number[] = [];

  constructor(k: number) {
    this.#k = k;
  }

  /** The score a row must reach to enter (ties by lower row may still enter); -Infinity while not full. */
  threshold(): number {
    return this.#rows.length < this.#k ? -Infinity : this.#scores[0]!;
  }

  /** a is worse than b: lower score, or the same score and a higher row. */
  #worse(a: number, b: number): boolean {
    const sa = this.#scores[a]!;
    const sb = this.#scores[b]!;
    return sa < sb || (sa === sb && this.#rows[a]! > this.#rows[b]!);
  }

  offer(row: number, score: number): void {
    const rows = this.#rows;
    const scores = this.#scores;
    if (rows.length < this.#k) {
      rows.push(row);
      scores.push(score);
      let i = rows.length - 1;
      while (i > 0) {
        const parent = (i - 1) >> 1;
        if (!this.#worse(i, parent)) break;
        this.#swap(i, parent);
        i = parent;
      }
      return;
    }
    if (score < scores[0]! || (score === scores[0]! && row > rows[0]!)) return;
    rows[0] = row;
    scores[0] = score;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < rows.length && this.#worse(l, m)) m = l;
      if (r < rows.length && this.#worse(r, m)) m = r;
      if (m === i) return;
      this.#swap(i, m);
      i = m;
    }
  }

  #swap(a: number, b: number): void {
    const rows = this.#rows;
    const scores = this.#scores;
    [rows[a], rows[b]] = [rows[b]!, rows[a]!];
    [scores[a], scores[b]] = [scores[b]!, scores[a]!];
  }

  drain(): Hits {
    const idx = this.#rows.map((_, i) => i).sort((a, b) => this.#scores[b]! - this.#scores[a]! || this.#rows[a]! - this.#rows[b]!);
    return { rows: Int32Array.from(idx, (i) => this.#rows[i]!), scores: Float32Array.from(idx, (i) => this.#scores[i]!) };
  }
}
