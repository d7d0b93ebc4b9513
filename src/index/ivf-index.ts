/**
 * IVF_FLAT, IVF_SQ8 and IVF_PQ in typed arrays (no native library ships IVF for Node): a k-means coarse
 * quantizer splits rows into `nlist` lists; a search scans the `nprobe` lists whose centroids are nearest
 * the query. Lists store, per row, its full float vector (FLAT), one byte per dimension scaled between the
 * column's per-dimension min and max (SQ8), or `m` codes of `nbits` into per-subspace codebooks (PQ,
 * asymmetric distance: the query stays exact and a table of query-to-codeword partial scores is summed).
 *
 * Everything is reduced to one "smaller is better" key as in flat-search.ts: L2 -> d, IP -> -q·x, COSINE ->
 * -q̂·x̂ (rows and query normalised at build and search, so cosine is an inner product). Scores of SQ8 and PQ
 * come from the codes (approximate, as in Milvus).
 *
 * Training is bounded and reproducible: a seeded sample of at most TRAIN_SAMPLE_MAX rows, at most
 * KMEANS_ITERATIONS_MAX Lloyd iterations, centroids seeded from distinct sample rows.
 */

import { assert, quiverError } from '../common/errors.js';
import { allowedCount, allowedList, rowCount } from './flat-search.js';
import { type IndexFileHeader, decodeIndexFile, encodeIndexFile, sectionAs } from './index-file.js';
import { IVF_NPROBE_DEFAULT } from './index-params.js';
import { type Hits, type KeyRange, type MetricType, type SearchOptions, type VectorIndex, emptyHits, inKeyRange, validateSearch } from './types.js';
import { type VectorSource, exactOver, sourceRowCount } from './vector-source.js';

export type IvfCoding = 'FLAT' | 'SQ8' | 'PQ';

export interface IvfParams {
  readonly coding: IvfCoding;
  readonly nlist: number;
  /** PQ only. */
  readonly m?: number | undefined;
  readonly nbits?: number | undefined;
}

const TRAIN_SAMPLE_MAX = 65_536;
/** Training rows per list: enough for stable centroids (faiss warns below 39), few enough to train in seconds. */
const TRAIN_ROWS_PER_LIST = 100;
/** Codebook training rows: 32 per codeword (the faiss minimum is 39 per centroid for a warning; PQ tolerates less). */
const PQ_TRAIN_ROWS_PER_CODE = 32;
const KMEANS_ITERATIONS_MAX = 12;
const KMEANS_SEED = 0x5eed;
export const NPROBE_MAX = 65_536;
/** Allow-lists this selective are searched exactly when the raw column is at hand. */
const EXACT_ALLOWED_MAX = 2000;

/** mulberry32: tiny seeded generator, so a build is reproducible without a global Random. */
export function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** `count` distinct row offsets out of n (all of them when count >= n), seeded. */
export function sampleRows(n: number, count: number, rand: () => number): Int32Array {
  if (count >= n) return Int32Array.from({ length: n }, (_, i) => i);
  const picked = new Set<number>();
  while (picked.size < count) picked.add(Math.floor(rand() * n));
  return Int32Array.from([...picked].sort((a, b) => a - b));
}

/**
 * Lloyd's k-means over rows `rows` of `data` restricted to columns [col, col + width). Returns k centroids of
 * `width` floats. Empty clusters are reseeded from a random sample row.
 */
export function kmeans(data: Float32Array, dim: number, col: number, width: number, rows: Int32Array, k: number, rand: () => number): Float32Array {
  const n = rows.length;
  assert(n >= 1 && k >= 1, 'k-means needs rows and clusters');
  const cents = new Float32Array(k * width);
  const seeds = sampleRows(n, Math.min(k, n), rand);
  for (let c = 0; c < k; c++) {
    const r = rows[seeds[c % seeds.length]!]!;
    cents.set(data.subarray(r * dim + col, r * dim + col + width), c * width);
  }
  const assign = new Int32Array(n);
  const sums = new Float64Array(k * width);
  const counts = new Int32Array(k);
  const norms = new Float64Array(k);
  for (let it = 0; it < KMEANS_ITERATIONS_MAX; it++) {
    for (let c = 0; c < k; c++) {
      let s = 0;
      for (let j = 0; j < width; j++) s += cents[c * width + j]! ** 2;
      norms[c] = s;
    }
    let moved = 0;
    for (let i = 0; i < n; i++) {
      const o = rows[i]! * dim + col;
      const best = nearestCentroid(data, o, cents, norms, k, width);
      if (best !== assign[i] || it === 0) moved++;
      assign[i] = best;
    }
    if (it > 0 && moved === 0) break;
    sums.fill(0);
    counts.fill(0);
    for (let i = 0; i < n; i++) {
      const c = assign[i]!;
      const o = rows[i]! * dim + col;
      counts[c]!++;
      for (let j = 0; j < width; j++) sums[c * width + j]! += data[o + j]!;
    }
    for (let c = 0; c < k; c++) {
      const cnt = counts[c]!;
      if (cnt === 0) {
        const r = rows[Math.floor(rand() * n)]!;
        cents.set(data.subarray(r * dim + col, r * dim + col + width), c * width);
        continue;
      }
      for (let j = 0; j < width; j++) cents[c * width + j] = sums[c * width + j]! / cnt;
    }
  }
  return cents;
}

/** argmin_c ||x - c||² via ||c||² - 2 x·c (||x||² is the same for every c). */
export function nearestCentroid(data: Float32Array, o: number, cents: Float32Array, norms: Float64Array, k: number, width: number): number {
  let best = 0;
  let bestKey = Infinity;
  for (let c = 0; c < k; c++) {
    const co = c * width;
    let dot = 0;
    for (let j = 0; j < width; j++) dot += data[o + j]! * cents[co + j]!;
    const key = norms[c]! - 2 * dot;
    if (key < bestKey) {
      bestKey = key;
      best = c;
    }
  }
  return best;
}

function normalizedCopy(vectors: Float32Array, dim: number): Float32Array {
  const out = new Float32Array(vectors.length);
  const n = vectors.length / dim;
  for (let i = 0; i < n; i++) {
    const o = i * dim;
    let s = 0;
    for (let j = 0; j < dim; j++) s += vectors[o + j]! ** 2;
    const inv = s === 0 ? 0 : 1 / Math.sqrt(s);
    for (let j = 0; j < dim; j++) out[o + j] = vectors[o + j]! * inv;
  }
  return out;
}

/** Bounded top-k of (key, row), smallest keys kept; a max-heap on key. */
class TopK {
  readonly keys: Float64Array;
  readonly rows: Int32Array;
  size = 0;
  constructor(readonly k: number) {
    this.keys = new Float64Array(k);
    this.rows = new Int32Array(k);
  }
  get worst(): number {
    return this.size < this.k ? Infinity : this.keys[0]!;
  }
  push(key: number, row: number): void {
    const { keys, rows } = this;
    if (this.size < this.k) {
      let i = this.size++;
      while (i > 0) {
        const p = (i - 1) >> 1;
        if (keys[p]! >= key) break;
        keys[i] = keys[p]!;
        rows[i] = rows[p]!;
        i = p;
      }
      keys[i] = key;
      rows[i] = row;
      return;
    }
    if (!(key < keys[0]!)) return;
    let i = 0;
    const n = this.size;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const r = l + 1;
      const c = r < n && keys[r]! > keys[l]! ? r : l;
      if (keys[c]! <= key) break;
      keys[i] = keys[c]!;
      rows[i] = rows[c]!;
      i = c;
    }
    keys[i] = key;
    rows[i] = row;
  }
  /** Best first; ties by row offset. */
  sorted(): { keys: Float64Array; rows: Int32Array } {
    const order = Array.from({ length: this.size }, (_, i) => i).sort((a, b) => this.keys[a]! - this.keys[b]! || this.rows[a]! - this.rows[b]!);
    return { keys: Float64Array.from(order, (i) => this.keys[i]!), rows: Int32Array.from(order, (i) => this.rows[i]!) };
  }
}

interface IvfData {
  readonly centroids: Float32Array;
  /** offsets[l]..offsets[l+1] index `ids` and the codes of list l. */
  readonly offsets: Int32Array;
  readonly ids: Int32Array;
  /** FLAT: dim floats per row (normalised for COSINE). */
  readonly flat?: Float32Array | undefined;
  /** SQ8: dim bytes per row; value = min[j] + code * scale[j]. */
  readonly codes?: Uint8Array | undefined;
  readonly sqMin?: Float32Array | undefined;
  readonly sqScale?: Float32Array | undefined;
  /** PQ: m codes per row (Uint8 when nbits <= 8, else Uint16 stored as pairs of bytes) and m * 2^nbits * dsub codewords. */
  readonly pqCodes?: Uint8Array | undefined;
  readonly codebooks?: Float32Array | undefined;
}

export class IvfIndex implements VectorIndex {
  readonly type: 'IVF_FLAT' | 'IVF_SQ8' | 'IVF_PQ';
  readonly dim: number;
  readonly metric: MetricType;
  readonly size: number;
  readonly params: IvfParams;
  readonly #d: IvfData;
  readonly #centNorms: Float64Array;
  #vectors: VectorSource | undefined;

  private constructor(dim: number, metric: MetricType, size: number, params: IvfParams, data: IvfData, vectors: Float32Array | undefined) {
    this.type = params.coding === 'FLAT' ? 'IVF_FLAT' : params.coding === 'SQ8' ? 'IVF_SQ8' : 'IVF_PQ';
    this.dim = dim;
    this.metric = metric;
    this.size = size;
    this.params = params;
    this.#d = data;
    this.#vectors = vectors;
    const nlist = data.offsets.length - 1;
    this.#centNorms = new Float64Array(nlist);
    for (let c = 0; c < nlist; c++) {
      let s = 0;
      for (let j = 0; j < dim; j++) s += data.centroids[c * dim + j]! ** 2;
      this.#centNorms[c] = s;
    }
  }

  static build(
    vectors: Float32Array,
    dim: number,
    metric: MetricType,
    params: IvfParams,
    opts: { shouldStop?: (() => boolean) | undefined } = {},
  ): IvfIndex {
    const n = rowCount(vectors, dim);
    const m = params.m ?? 0;
    const nbits = params.nbits ?? 8;
    if (params.coding === 'PQ' && (m < 1 || dim % m !== 0)) throw quiverError('ParameterInvalid', `IVF_PQ m ${m} must divide the dimension ${dim}`);
    const rand = seeded(KMEANS_SEED);
    const data = metric === 'COSINE' ? normalizedCopy(vectors, dim) : vectors;
    // Never more lists than rows; an empty segment still gets one (empty) list.
    const nlist = Math.max(1, Math.min(params.nlist, n));
    const centroids =
      n === 0
        ? new Float32Array(dim)
        : kmeans(data, dim, 0, dim, sampleRows(n, Math.min(TRAIN_SAMPLE_MAX, nlist * TRAIN_ROWS_PER_LIST), rand), nlist, rand);
    if (opts.shouldStop?.()) throw new Error('IVF build cancelled after training');
    const norms = new Float64Array(nlist);
    for (let c = 0; c < nlist; c++) {
      let s = 0;
      for (let j = 0; j < dim; j++) s += centroids[c * dim + j]! ** 2;
      norms[c] = s;
    }
    const assign = new Int32Array(n);
    const counts = new Int32Array(nlist + 1);
    for (let i = 0; i < n; i++) {
      const c = nearestCentroid(data, i * dim, centroids, norms, nlist, dim);
      assign[i] = c;
      counts[c + 1]!++;
    }
    const offsets = new Int32Array(nlist + 1);
    for (let c = 0; c < nlist; c++) offsets[c + 1] = offsets[c]! + counts[c + 1]!;
    const ids = new Int32Array(n);
    const fill = offsets.slice(0, nlist);
    for (let i = 0; i < n; i++) ids[fill[assign[i]!]!++] = i;
    // PQ codes the residual to the row's list centroid: the centroid already carries most of a clustered
    // row, so the codebooks spend their bits on what distinguishes rows within a list.
    const coded = params.coding === 'PQ' ? residuals(data, dim, centroids, assign) : data;
    const stored: IvfData = { centroids, offsets, ids, ...encodeLists(coded, dim, ids, params.coding, m, nbits, rand) };
    return new IvfIndex(dim, metric, n, { ...params, nlist }, stored, vectors);
  }

  static fromBytes(bytes: Uint8Array, source: string, expect: { dim: number; metric: MetricType; rows: number }): IvfIndex {
    const { header, sections } = decodeIndexFile(bytes, source, expect);
    if (header.kind !== 'ivf') throw quiverError('SegmentLoadFailed', `index file ${source} holds a ${header.kind} index, not IVF`);
    const p = header.params;
    const coding = p['coding'];
    if ((coding !== 'FLAT' && coding !== 'SQ8' && coding !== 'PQ') || typeof p['nlist'] !== 'number') {
      throw quiverError('SegmentLoadFailed', `index file ${source} has malformed IVF params ${JSON.stringify(p)}`);
    }
    const params: IvfParams = { coding, nlist: p['nlist'], m: p['m'] as number | undefined, nbits: p['nbits'] as number | undefined };
    const get = (name: string): Uint8Array | undefined => sections.get(name);
    const need = (name: string): Uint8Array => get(name) ?? bad(source, `section ${name} is missing`);
    const f32 = (name: string): Float32Array | undefined => {
      const s = get(name);
      return s === undefined ? undefined : sectionAs(s, Float32Array);
    };
    const data: IvfData = {
      centroids: sectionAs(need('centroids'), Float32Array),
      offsets: sectionAs(need('offsets'), Int32Array),
      ids: sectionAs(need('ids'), Int32Array),
      flat: f32('flat'),
      codes: get('codes'),
      sqMin: f32('sqMin'),
      sqScale: f32('sqScale'),
      pqCodes: get('pqCodes'),
      codebooks: f32('codebooks'),
    };
    const nlist = data.offsets.length - 1;
    if (nlist !== params.nlist || data.centroids.length !== nlist * header.dim || data.ids.length !== header.rows || data.offsets[nlist] !== header.rows) {
      bad(source, 'list layout does not match its header');
    }
    const codeBytes = coding === 'FLAT' ? data.flat?.length : coding === 'SQ8' ? data.codes?.length : data.pqCodes?.length;
    const expected =
      coding === 'FLAT'
        ? header.rows * header.dim
        : coding === 'SQ8'
          ? header.rows * header.dim
          : header.rows * (params.m ?? 0) * ((params.nbits ?? 8) > 8 ? 2 : 1);
    if (codeBytes !== expected) bad(source, `codes hold ${String(codeBytes)} entries, expected ${expected}`);
    return new IvfIndex(header.dim, header.metric, header.rows, params, data, undefined);
  }

  toBytes(): Uint8Array {
    const d = this.#d;
    const sections = new Map<string, Uint8Array>();
    const add = (name: string, a: Float32Array | Int32Array | Uint8Array | undefined): void => {
      if (a !== undefined) sections.set(name, new Uint8Array(a.buffer, a.byteOffset, a.byteLength));
    };
    add('centroids', d.centroids);
    add('offsets', d.offsets);
    add('ids', d.ids);
    add('flat', d.flat);
    add('codes', d.codes);
    add('sqMin', d.sqMin);
    add('sqScale', d.sqScale);
    add('pqCodes', d.pqCodes);
    add('codebooks', d.codebooks);
    const header: IndexFileHeader = { kind: 'ivf', dim: this.dim, metric: this.metric, rows: this.size, params: { ...this.params } };
    return encodeIndexFile(header, sections);
  }

  attachVectors(vectors: VectorSource): void {
    const rows = sourceRowCount(vectors, this.dim);
    if (rows !== this.size) throw quiverError('DimensionMismatch', `vectors hold ${rows} rows, index holds ${this.size}`);
    this.#vectors = vectors;
  }

  dispose(): void {
    this.#vectors = undefined;
  }

  search(queries: Float32Array, nq: number, opts: SearchOptions): Hits[] {
    const range = validateSearch(this.dim, this.metric, this.size, queries, nq, opts);
    const nlist = this.#d.offsets.length - 1;
    const nprobe = opts.nprobe ?? IVF_NPROBE_DEFAULT;
    if (!Number.isInteger(nprobe) || nprobe < 1 || nprobe > NPROBE_MAX) {
      throw quiverError('ParameterInvalid', `nprobe must be an integer in [1, ${NPROBE_MAX}], got ${nprobe}`);
    }
    const { k, allow } = opts;
    const allowed = allowedCount(opts, this.size);
    const out: Hits[] = [];
    if (allowed === 0 || this.size === 0) {
      for (let qi = 0; qi < nq; qi++) out.push(emptyHits());
      return out;
    }
    if (this.#vectors !== undefined && allow !== undefined && allowed < EXACT_ALLOWED_MAX) {
      return exactOver(this.#vectors, this.dim, this.metric, queries, nq, k, allowedList(opts, allowed), range);
    }
    const dim = this.dim;
    const q = new Float32Array(dim);
    for (let qi = 0; qi < nq; qi++) {
      q.set(queries.subarray(qi * dim, (qi + 1) * dim));
      if (this.metric === 'COSINE') normalizeInPlace(q);
      const lists = this.#probe(q, Math.min(nprobe, nlist));
      const top = new TopK(Math.min(k, allowed));
      this.#scan(q, lists, top, allow, range);
      const { keys, rows } = top.sorted();
      const scores = new Float32Array(keys.length);
      for (let i = 0; i < keys.length; i++) scores[i] = this.metric === 'L2' ? keys[i]! : -keys[i]!;
      out.push({ rows, scores });
    }
    return out;
  }

  /** The lists to scan: nearest centroids by the metric's key. */
  #probe(q: Float32Array, nprobe: number): Int32Array {
    const { centroids } = this.#d;
    const dim = this.dim;
    const nlist = this.#centNorms.length;
    const top = new TopK(nprobe);
    for (let c = 0; c < nlist; c++) {
      let dot = 0;
      const o = c * dim;
      for (let j = 0; j < dim; j++) dot += q[j]! * centroids[o + j]!;
      top.push(this.metric === 'L2' ? this.#centNorms[c]! - 2 * dot : -dot, c);
    }
    return top.sorted().rows;
  }

  #scan(q: Float32Array, lists: Int32Array, top: TopK, allow: Uint8Array | undefined, range: KeyRange | undefined): void {
    const d = this.#d;
    const dim = this.dim;
    const l2 = this.metric === 'L2';
    const push = (key: number, row: number): void => {
      if (range !== undefined && !inKeyRange(range, key)) return;
      if (key < top.worst) top.push(key, row);
    };
    switch (this.params.coding) {
      case 'FLAT': {
        const flat = d.flat!;
        for (const l of lists) {
          for (let p = d.offsets[l]!; p < d.offsets[l + 1]!; p++) {
            const row = d.ids[p]!;
            if (allow !== undefined && allow[row] === 0) continue;
            const o = p * dim;
            let s = 0;
            if (l2) {
              for (let j = 0; j < dim; j++) {
                const t = q[j]! - flat[o + j]!;
                s += t * t;
              }
              push(s, row);
            } else {
              for (let j = 0; j < dim; j++) s += q[j]! * flat[o + j]!;
              push(-s, row);
            }
          }
        }
        return;
      }
      case 'SQ8': {
        const codes = d.codes!;
        const min = d.sqMin!;
        const scale = d.sqScale!;
        // L2: sum (q - min - c*s)²; IP: q·min + sum (q*s)*c. Both precomputed per query.
        const a = new Float64Array(dim);
        let base = 0;
        for (let j = 0; j < dim; j++) {
          if (l2) a[j] = q[j]! - min[j]!;
          else {
            a[j] = q[j]! * scale[j]!;
            base += q[j]! * min[j]!;
          }
        }
        for (const l of lists) {
          for (let p = d.offsets[l]!; p < d.offsets[l + 1]!; p++) {
            const row = d.ids[p]!;
            if (allow !== undefined && allow[row] === 0) continue;
            const o = p * dim;
            let s = 0;
            if (l2) {
              for (let j = 0; j < dim; j++) {
                const t = a[j]! - codes[o + j]! * scale[j]!;
                s += t * t;
              }
              push(s, row);
            } else {
              for (let j = 0; j < dim; j++) s += a[j]! * codes[o + j]!;
              push(-(base + s), row);
            }
          }
        }
        return;
      }
      case 'PQ': {
        const m = this.params.m!;
        const ksub = 1 << (this.params.nbits ?? 8);
        const dsub = dim / m;
        const books = d.codebooks!;
        // Rows are centroid + residual. L2: a table of ||(q - c_l) - y||² per list; IP: q·c_l per list plus
        // one table of -q·y for all lists.
        const table = new Float64Array(m * ksub);
        const t = new Float32Array(dim);
        const fillTable = (target: Float32Array): void => {
          for (let s = 0; s < m; s++) {
            for (let c = 0; c < ksub; c++) {
              const bo = (s * ksub + c) * dsub;
              let v = 0;
              for (let j = 0; j < dsub; j++) {
                const x = target[s * dsub + j]!;
                const y = books[bo + j]!;
                v += l2 ? (x - y) * (x - y) : -x * y;
              }
              table[s * ksub + c] = v;
            }
          }
        };
        if (!l2) fillTable(q);
        const wide = ksub > 256;
        const codes = d.pqCodes!;
        for (const l of lists) {
          let listBase = 0;
          if (l2) {
            for (let j = 0; j < dim; j++) t[j] = q[j]! - d.centroids[l * dim + j]!;
            fillTable(t);
          } else {
            for (let j = 0; j < dim; j++) listBase -= q[j]! * d.centroids[l * dim + j]!;
          }
          for (let p = d.offsets[l]!; p < d.offsets[l + 1]!; p++) {
            const row = d.ids[p]!;
            if (allow !== undefined && allow[row] === 0) continue;
            let key = listBase;
            if (wide) {
              const o = p * m * 2;
              for (let s = 0; s < m; s++) key += table[s * ksub + (codes[o + 2 * s]! | (codes[o + 2 * s + 1]! << 8))]!;
            } else {
              const o = p * m;
              for (let s = 0; s < m; s++) key += table[s * ksub + codes[o + s]!]!;
            }
            push(key, row);
          }
        }
        return;
      }
      default: {
        const never: never = this.params.coding;
        throw new Error(`assertion failed: unknown IVF coding ${String(never)}`);
      }
    }
  }
}

function residuals(data: Float32Array, dim: number, centroids: Float32Array, assign: Int32Array): Float32Array {
  const out = new Float32Array(data.length);
  for (let i = 0; i < assign.length; i++) {
    const o = i * dim;
    const c = assign[i]! * dim;
    for (let j = 0; j < dim; j++) out[o + j] = data[o + j]! - centroids[c + j]!;
  }
  return out;
}

function normalizeInPlace(v: Float32Array): void {
  let s = 0;
  for (const x of v) s += x * x;
  if (s === 0) return;
  const inv = 1 / Math.sqrt(s);
  for (let j = 0; j < v.length; j++) v[j] = v[j]! * inv;
}

function bad(source: string, why: string): never {
  throw quiverError('SegmentLoadFailed', `index file ${source} is not usable: ${why}`);
}

/** Codes rows in list order (`ids`). */
function encodeLists(data: Float32Array, dim: number, ids: Int32Array, coding: IvfCoding, m: number, nbits: number, rand: () => number): Partial<IvfData> {
  const n = ids.length;
  switch (coding) {
    case 'FLAT': {
      const flat = new Float32Array(n * dim);
      for (let p = 0; p < n; p++) flat.set(data.subarray(ids[p]! * dim, (ids[p]! + 1) * dim), p * dim);
      return { flat };
    }
    case 'SQ8': {
      const min = new Float32Array(dim).fill(Infinity);
      const max = new Float32Array(dim).fill(-Infinity);
      for (let i = 0; i < n; i++) {
        for (let j = 0; j < dim; j++) {
          const x = data[i * dim + j]!;
          if (x < min[j]!) min[j] = x;
          if (x > max[j]!) max[j] = x;
        }
      }
      const scale = new Float32Array(dim);
      for (let j = 0; j < dim; j++) {
        if (n === 0) min[j] = 0;
        scale[j] = n === 0 || max[j]! <= min[j]! ? 0 : (max[j]! - min[j]!) / 255;
      }
      const codes = new Uint8Array(n * dim);
      for (let p = 0; p < n; p++) {
        const o = ids[p]! * dim;
        for (let j = 0; j < dim; j++) {
          const s = scale[j]!;
          codes[p * dim + j] = s === 0 ? 0 : Math.max(0, Math.min(255, Math.round((data[o + j]! - min[j]!) / s)));
        }
      }
      return { codes, sqMin: min, sqScale: scale };
    }
    case 'PQ': {
      const ksub = 1 << nbits;
      const dsub = dim / m;
      const codebooks = new Float32Array(m * ksub * dsub);
      const wide = ksub > 256;
      const pqCodes = new Uint8Array(n * m * (wide ? 2 : 1));
      if (n === 0) return { codebooks, pqCodes };
      const sample = sampleRows(n, ksub * PQ_TRAIN_ROWS_PER_CODE, rand);
      for (let s = 0; s < m; s++) {
        const book = kmeans(data, dim, s * dsub, dsub, sample, ksub, rand);
        codebooks.set(book, s * ksub * dsub);
        const norms = new Float64Array(ksub);
        for (let c = 0; c < ksub; c++) {
          let v = 0;
          for (let j = 0; j < dsub; j++) v += book[c * dsub + j]! ** 2;
          norms[c] = v;
        }
        for (let p = 0; p < n; p++) {
          const c = nearestCentroid(data, ids[p]! * dim + s * dsub, book, norms, ksub, dsub);
          if (wide) {
            pqCodes[(p * m + s) * 2] = c & 255;
            pqCodes[(p * m + s) * 2 + 1] = c >> 8;
          } else pqCodes[p * m + s] = c;
        }
      }
      return { codebooks, pqCodes };
    }
    default: {
      const never: never = coding;
      throw new Error(`assertion failed: unknown IVF coding ${String(never)}`);
    }
  }
}
