/**
 * HNSW_PQ and HNSW_PRQ: an HNSW graph whose search compares the query with PQ / PRQ codes instead of float
 * vectors, so what stays resident is the graph plus nrq * m bytes per row (residual-pq.ts).
 *
 * The graph is built by usearch over the float rows (native, multi-threaded: the build has the floats at
 * hand, and a graph built on exact distances navigates better than one built on codes), then read out of
 * usearch's serialized form into typed arrays with rows as node ids; the floats are dropped. Searches walk
 * it here: greedy descent through the upper levels, then a best-first beam of `ef` on level 0, every
 * distance an asymmetric table lookup. With `refine` the best refine_k * k candidates are re-ranked by exact
 * distance from the float column (attached by the query node, usually read on demand from the binlog).
 *
 * usearch's serialized index (include/usearch/index_dense.hpp, index.hpp; read, never written here):
 *   u32 rows, u32 bytes per vector, rows * bytes of vectors      (skipped)
 *   64-byte head: "usearch", u16 x3 version, u8 metric, u8 scalar, u8 key kind, u8 slot kind, ...
 *   u64 x5: size, connectivity, connectivity_base, max_level, entry_slot
 *   i16 level per node
 *   per node: u64 key, i16 level, then for each level 0..level: u32 count + connectivity(_base at 0) slots
 * Slots are u32 (slot kind 15) or u40 (kind 2). Everything is checked against the file length.
 */

import { assert, quiverError } from '../common/errors.js';
import { allowedCount, allowedList } from './flat-search.js';
import { type IndexFileHeader, decodeIndexFile, encodeIndexFile, sectionAs } from './index-file.js';
import { seeded } from './ivf-index.js';
import { PQ_NBITS_MAX, type ResidualPqShape, innerProductTable, trainAndEncode } from './residual-pq.js';
import { DEFAULT_EF, type Hits, type MetricType, type SearchOptions, type VectorIndex, emptyHits, inKeyRange, validateSearch } from './types.js';
import { UsearchHnswIndex } from './usearch-hnsw-index.js';
import { type VectorSource, exactOver, sourceRowCount } from './vector-source.js';

export type PqQuantizer = 'PQ' | 'PRQ';

export interface HnswPqParams {
  readonly M: number;
  readonly efConstruction: number;
  readonly quantizer: PqQuantizer;
  readonly m: number;
  readonly nbits: number;
  /** PRQ stages (1 for PQ). */
  readonly nrq: number;
  readonly refine: boolean;
}

/** The graph with rows as node ids. */
interface Graph {
  /** size * (1 + Mb): count, then up to Mb neighbours, per row. */
  readonly base: Int32Array;
  readonly Mb: number;
  readonly M: number;
  /** Level of each row. */
  readonly levels: Uint8Array;
  /** Start in `upper` of a row's level-1 block, -1 for rows on level 0 only; level l is at start + (l - 1) * (1 + M). */
  readonly upperStart: Int32Array;
  readonly upper: Int32Array;
  readonly entry: number;
  readonly maxLevel: number;
}

const KMEANS_SEED = 0x9e37;
/** As the other indexes: small segments and selective allow-lists are searched exactly when the column is at hand. */
const SMALL_INDEX_EXACT_ROWS = 1024;
const EXACT_ALLOWED_MAX = 2000;
const EXACT_ALLOWED_FRACTION = 0.05;
export const PQ_REFINE_K_MAX = 64;

export class HnswPqIndex implements VectorIndex {
  readonly type: 'HNSW_PQ' | 'HNSW_PRQ';
  readonly dim: number;
  readonly metric: MetricType;
  readonly size: number;
  readonly params: HnswPqParams;
  readonly #g: Graph;
  readonly #shape: ResidualPqShape;
  readonly #codebooks: Float32Array;
  readonly #codes: Uint8Array | Uint16Array;
  readonly #norms: Float32Array;
  readonly #mean: Float32Array;
  #vectors: VectorSource | undefined;
  // Search scratch, reused (searches are synchronous).
  #visited: Uint32Array;
  #epoch = 0;
  readonly #table: Float32Array;

  private constructor(
    dim: number,
    metric: MetricType,
    size: number,
    params: HnswPqParams,
    g: Graph,
    pq: { codebooks: Float32Array; codes: Uint8Array | Uint16Array; norms: Float32Array; mean: Float32Array },
    vectors: VectorSource | undefined,
  ) {
    this.type = params.quantizer === 'PQ' ? 'HNSW_PQ' : 'HNSW_PRQ';
    this.dim = dim;
    this.metric = metric;
    this.size = size;
    this.params = params;
    this.#g = g;
    this.#shape = { dim, m: params.m, nbits: params.nbits, nrq: params.nrq };
    this.#codebooks = pq.codebooks;
    this.#codes = pq.codes;
    this.#norms = pq.norms;
    this.#mean = pq.mean;
    this.#vectors = vectors;
    this.#visited = new Uint32Array(size);
    this.#table = new Float32Array(params.nrq * params.m * (1 << params.nbits));
  }

  static build(
    vectors: Float32Array,
    dim: number,
    metric: MetricType,
    params: HnswPqParams,
    opts: { threads: number; shouldStop?: (() => boolean) | undefined },
  ): HnswPqIndex {
    assert(dim % params.m === 0, `HNSW_PQ m ${params.m} must divide dim ${dim}`);
    assert(params.nbits >= 1 && params.nbits <= PQ_NBITS_MAX, `HNSW_PQ nbits ${params.nbits} out of [1, ${PQ_NBITS_MAX}]`);
    const n = vectors.length / dim;
    const native = UsearchHnswIndex.build(
      vectors,
      dim,
      metric,
      { M: params.M, efConstruction: params.efConstruction, quantization: 'f32', refine: false },
      opts,
    );
    let g: Graph;
    try {
      const graph = decodeIndexFile(native.toBytes(), 'usearch build', { dim, metric, rows: n }).sections.get('graph')!;
      g = readUsearchGraph(graph, n, 'usearch build');
    } finally {
      native.dispose();
    }
    // Cosine is an inner product of unit vectors: code the normalised rows.
    const coded = metric === 'COSINE' ? normalizedRows(vectors, dim) : vectors;
    const pq = trainAndEncode(coded, { dim, m: params.m, nbits: params.nbits, nrq: params.nrq }, seeded(KMEANS_SEED), opts.shouldStop);
    return new HnswPqIndex(dim, metric, n, params, g, pq, vectors);
  }

  static fromBytes(bytes: Uint8Array, source: string, expect: { dim: number; metric: MetricType; rows: number }): HnswPqIndex {
    const { header, sections } = decodeIndexFile(bytes, source, expect);
    if (header.kind !== 'hnsw-pq') throw quiverError('SegmentLoadFailed', `index file ${source} holds a ${header.kind} index, not HNSW_PQ`);
    const p = header.params;
    const num = (k: string): number => {
      const v = p[k];
      if (typeof v !== 'number' || !Number.isInteger(v))
        throw quiverError('SegmentLoadFailed', `index file ${source} has a malformed ${k}: ${JSON.stringify(v)}`);
      return v;
    };
    const quantizer = p['quantizer'];
    if ((quantizer !== 'PQ' && quantizer !== 'PRQ') || typeof p['refine'] !== 'boolean') {
      throw quiverError('SegmentLoadFailed', `index file ${source} has malformed HNSW_PQ params ${JSON.stringify(p)}`);
    }
    const params: HnswPqParams = {
      M: num('M'),
      efConstruction: num('efConstruction'),
      quantizer,
      m: num('m'),
      nbits: num('nbits'),
      nrq: num('nrq'),
      refine: p['refine'],
    };
    if (params.nbits < 1 || params.nbits > PQ_NBITS_MAX) {
      throw quiverError('SegmentLoadFailed', `index file ${source} has nbits ${params.nbits}, outside [1, ${PQ_NBITS_MAX}]`);
    }
    const sec = (name: string): Uint8Array => {
      const s = sections.get(name);
      if (s === undefined) throw quiverError('SegmentLoadFailed', `index file ${source} has no ${name} section`);
      return s;
    };
    const n = header.rows;
    const Mb = num('Mb');
    const g: Graph = {
      base: sectionAs(sec('base'), Int32Array),
      Mb,
      M: params.M,
      levels: sec('levels'),
      upperStart: sectionAs(sec('upperStart'), Int32Array),
      upper: sectionAs(sec('upper'), Int32Array),
      entry: num('entry'),
      maxLevel: num('maxLevel'),
    };
    const ksub = 1 << params.nbits;
    const pq = {
      codebooks: sectionAs(sec('codebooks'), Float32Array),
      codes: params.nbits > 8 ? sectionAs(sec('codes'), Uint16Array) : sec('codes'),
      norms: sectionAs(sec('norms'), Float32Array),
      mean: sectionAs(sec('mean'), Float32Array),
    };
    // Assert after read: every section has the length the header implies, and the entry is a row.
    const sizes: [string, number, number][] = [
      ['base', g.base.length, n * (1 + Mb)],
      ['levels', g.levels.length, n],
      ['upperStart', g.upperStart.length, n],
      ['codebooks', pq.codebooks.length, params.nrq * params.m * ksub * (header.dim / params.m)],
      ['codes', pq.codes.length, n * params.nrq * params.m],
      ['norms', pq.norms.length, n],
      ['mean', pq.mean.length, header.dim],
    ];
    for (const [name, got, want] of sizes) {
      if (got !== want) throw quiverError('SegmentLoadFailed', `index file ${source}: section ${name} holds ${got} values, expected ${want}`);
    }
    if (n > 0 && (g.entry < 0 || g.entry >= n)) throw quiverError('SegmentLoadFailed', `index file ${source}: entry row ${g.entry} out of [0, ${n})`);
    return new HnswPqIndex(header.dim, header.metric, n, params, g, pq, undefined);
  }

  toBytes(): Uint8Array {
    const g = this.#g;
    const header: IndexFileHeader = {
      kind: 'hnsw-pq',
      dim: this.dim,
      metric: this.metric,
      rows: this.size,
      params: { ...this.params, Mb: g.Mb, entry: g.entry, maxLevel: g.maxLevel },
    };
    const bytes = (a: ArrayBufferView): Uint8Array => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
    return encodeIndexFile(
      header,
      new Map([
        ['base', bytes(g.base)],
        ['levels', g.levels],
        ['upperStart', bytes(g.upperStart)],
        ['upper', bytes(g.upper)],
        ['codebooks', bytes(this.#codebooks)],
        ['codes', bytes(this.#codes)],
        ['norms', bytes(this.#norms)],
        ['mean', bytes(this.#mean)],
      ]),
    );
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
    const { k, allow } = opts;
    const refineK = opts.refineK ?? 1;
    if (!Number.isInteger(refineK) || refineK < 1 || refineK > PQ_REFINE_K_MAX) {
      throw quiverError('ParameterInvalid', `refine_k must be an integer in [1, ${PQ_REFINE_K_MAX}], got ${refineK}`);
    }
    const allowed = allowedCount(opts, this.size);
    const out: Hits[] = [];
    if (allowed === 0 || this.size === 0) {
      for (let qi = 0; qi < nq; qi++) out.push(emptyHits());
      return out;
    }
    const vectors = this.#vectors;
    const dim = this.dim;
    if (vectors !== undefined && this.size <= SMALL_INDEX_EXACT_ROWS) {
      return exactOver(vectors, dim, this.metric, queries, nq, k, allowedList(opts, allowed), range);
    }
    if (vectors !== undefined && allow !== undefined && (allowed < EXACT_ALLOWED_MAX || allowed < EXACT_ALLOWED_FRACTION * this.size)) {
      return exactOver(vectors, dim, this.metric, queries, nq, k, allowedList(opts, allowed), range);
    }
    const refine = this.params.refine && vectors !== undefined;
    const want = Math.min(allowed, refine ? k * refineK : k);
    const ef = Math.max(opts.ef ?? DEFAULT_EF, want);
    const q = new Float32Array(dim);
    for (let qi = 0; qi < nq; qi++) {
      q.set(queries.subarray(qi * dim, (qi + 1) * dim));
      if (this.metric === 'COSINE') normalizeInPlace(q);
      const found = this.#beam(q, ef, allow);
      if (refine) {
        const rows = found.rows.slice(0, want).sort();
        out.push(exactOver(vectors, dim, this.metric, queries.subarray(qi * dim, (qi + 1) * dim), 1, k, rows, range)[0]!);
        continue;
      }
      // Keys are "smaller is better": L2 distance, or minus the inner product.
      const rows: number[] = [];
      const scores: number[] = [];
      for (let i = 0; i < found.rows.length && rows.length < k; i++) {
        const key = found.keys[i]!;
        if (range !== undefined && !inKeyRange(range, key)) continue;
        rows.push(found.rows[i]!);
        scores.push(this.metric === 'L2' ? key : -key);
      }
      if (range === undefined && rows.length < Math.min(k, allowed) && vectors !== undefined) {
        // A filtered walk can miss allowed rows that exact search cannot.
        const rowsAllowed = allowedList(opts, allowed);
        out.push(exactOver(vectors, dim, this.metric, queries.subarray(qi * dim, (qi + 1) * dim), 1, k, rowsAllowed, range)[0]!);
        continue;
      }
      out.push({ rows: Int32Array.from(rows), scores: Float32Array.from(scores) });
    }
    return out;
  }

  /** Best-first search; returns up to ef allowed rows, best first, with their keys. */
  #beam(q: Float32Array, ef: number, allow: Uint8Array | undefined): { rows: Int32Array; keys: Float32Array } {
    const g = this.#g;
    const table = this.#table;
    innerProductTable(q, this.#shape, this.#codebooks, table);
    let qNorm = 0;
    let qMean = 0;
    for (let t = 0; t < q.length; t++) {
      qNorm += q[t]! * q[t]!;
      qMean += q[t]! * this.#mean[t]!;
    }
    const codes = this.#codes;
    const norms = this.#norms;
    const width = this.#shape.nrq * this.#shape.m;
    const ksub = 1 << this.#shape.nbits;
    const l2 = this.metric === 'L2';
    const key = (row: number): number => {
      let ip = qMean;
      const o = row * width;
      for (let p = 0; p < width; p++) ip += table[p * ksub + codes[o + p]!]!;
      return l2 ? qNorm - 2 * ip + norms[row]! : -ip;
    };
    // Greedy descent through the upper levels.
    let cur = g.entry;
    let curKey = key(cur);
    const step = 1 + g.M;
    for (let level = g.maxLevel; level >= 1; level--) {
      for (let changed = true; changed;) {
        changed = false;
        if (g.levels[cur]! < level) break;
        const at = g.upperStart[cur]! + (level - 1) * step;
        const count = g.upper[at]!;
        for (let i = 1; i <= count; i++) {
          const nb = g.upper[at + i]!;
          const d = key(nb);
          if (d < curKey) {
            curKey = d;
            cur = nb;
            changed = true;
          }
        }
      }
    }
    // Level 0: candidates (min-heap) and the ef best allowed results (max-heap).
    if (++this.#epoch === 0xffffffff) {
      this.#visited.fill(0);
      this.#epoch = 1;
    }
    const epoch = this.#epoch;
    const visited = this.#visited;
    const cand = new Heap(false);
    const best = new Heap(true);
    // The walk's frontier bound: the ef-th best key over every visited row, allowed or not (hnswlib's rule
    // for filtered search keeps walking through rows it may not return).
    const frontier = new Heap(true);
    visited[cur] = epoch;
    cand.push(curKey, cur);
    frontier.push(curKey, cur);
    if (allow === undefined || allow[cur] === 1) best.push(curKey, cur);
    const Mb1 = 1 + g.Mb;
    while (cand.size > 0) {
      const ck = cand.topKey();
      if (frontier.size >= ef && ck > frontier.topKey()) break;
      const c = cand.pop();
      const at = c * Mb1;
      const count = g.base[at]!;
      for (let i = 1; i <= count; i++) {
        const nb = g.base[at + i]!;
        if (visited[nb] === epoch) continue;
        visited[nb] = epoch;
        const d = key(nb);
        if (frontier.size < ef || d < frontier.topKey()) {
          cand.push(d, nb);
          frontier.push(d, nb);
          if (frontier.size > ef) frontier.pop();
          if (allow === undefined || allow[nb] === 1) {
            best.push(d, nb);
            if (best.size > ef) best.pop();
          }
        }
      }
    }
    const n = best.size;
    const rows = new Int32Array(n);
    const keys = new Float32Array(n);
    for (let i = n - 1; i >= 0; i--) {
      keys[i] = best.topKey();
      rows[i] = best.pop();
    }
    return { rows, keys };
  }
}

/** Binary heap of (key, row); a max-heap when `max`, else a min-heap. */
class Heap {
  #keys = new Float64Array(64);
  #rows = new Int32Array(64);
  size = 0;
  readonly #max: boolean;

  constructor(max: boolean) {
    this.#max = max;
  }

  #before(a: number, b: number): boolean {
    const ka = this.#keys[a]!;
    const kb = this.#keys[b]!;
    return this.#max ? ka > kb || (ka === kb && this.#rows[a]! > this.#rows[b]!) : ka < kb || (ka === kb && this.#rows[a]! < this.#rows[b]!);
  }

  #swap(a: number, b: number): void {
    const k = this.#keys[a]!;
    this.#keys[a] = this.#keys[b]!;
    this.#keys[b] = k;
    const r = this.#rows[a]!;
    this.#rows[a] = this.#rows[b]!;
    this.#rows[b] = r;
  }

  push(key: number, row: number): void {
    if (this.size === this.#keys.length) {
      const keys = new Float64Array(this.size * 2);
      keys.set(this.#keys);
      this.#keys = keys;
      const rows = new Int32Array(this.size * 2);
      rows.set(this.#rows);
      this.#rows = rows;
    }
    let i = this.size++;
    this.#keys[i] = key;
    this.#rows[i] = row;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.#before(i, p)) break;
      this.#swap(i, p);
      i = p;
    }
  }

  topKey(): number {
    return this.#keys[0]!;
  }

  /** Removes the top; returns its row. */
  pop(): number {
    const row = this.#rows[0]!;
    const last = --this.size;
    if (last > 0) {
      this.#keys[0] = this.#keys[last]!;
      this.#rows[0] = this.#rows[last]!;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < last && this.#before(l, m)) m = l;
        if (r < last && this.#before(r, m)) m = r;
        if (m === i) break;
        this.#swap(i, m);
        i = m;
      }
    }
    return row;
  }
}

/** Reads usearch's serialized graph (see the header) into row-indexed typed arrays. */
export function readUsearchGraph(bytes: Uint8Array, rows: number, source: string): Graph {
  const bad = (why: string): never => {
    throw quiverError('SegmentLoadFailed', `usearch graph of ${source} is not usable: ${why}`);
  };
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const need = (at: number, len: number): void => {
    if (at + len > bytes.byteLength) bad(`it ends at ${bytes.byteLength} bytes, needed ${at + len}`);
  };
  need(0, 8);
  const matrixRows = view.getUint32(0, true);
  const vectorBytes = view.getUint32(4, true);
  let at = 8 + matrixRows * vectorBytes;
  need(at, 64);
  const magic = Buffer.from(bytes.buffer, bytes.byteOffset + at, 7).toString('latin1');
  if (magic !== 'usearch') bad(`head magic is ${JSON.stringify(magic)}`);
  const slotKind = bytes[at + 16]!;
  const slotBytes = slotKind === 15 ? 4 : slotKind === 2 ? 5 : bad(`slot kind ${slotKind} is not u32 or u40`);
  at += 64;
  need(at, 40);
  const u64 = (o: number): number => {
    const v = view.getBigUint64(o, true);
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) bad(`value ${v} at ${o} is too large`);
    return Number(v);
  };
  const size = u64(at);
  const M = u64(at + 8);
  const Mb = u64(at + 16);
  const maxLevel = u64(at + 24);
  const entrySlot = u64(at + 32);
  at += 40;
  if (size !== rows) bad(`it holds ${size} nodes, expected ${rows}`);
  if (M < 1 || Mb < M || maxLevel > 255) bad(`connectivity ${M}/${Mb}, max level ${maxLevel}`);
  need(at, size * 2);
  at += size * 2; // levels again in the node heads
  const slotAt = (o: number): number => (slotBytes === 4 ? view.getUint32(o, true) : view.getUint32(o, true) + bytes[o + 4]! * 2 ** 32);
  const keyOfSlot = new Int32Array(size);
  const levels = new Uint8Array(size);
  const base = new Int32Array(size * (1 + Mb));
  // Node heads first (keys of slots), then the lists, rewritten from slots to rows.
  const nodeAt = new Float64Array(size);
  let upperLen = 0;
  for (let s = 0; s < size; s++) {
    need(at, 10);
    nodeAt[s] = at;
    const key = u64(at);
    const level = view.getInt16(at + 8, true);
    if (key >= size) bad(`node ${s} has key ${key}, not a row of ${size}`);
    if (level < 0 || level > maxLevel) bad(`node ${s} has level ${level}`);
    keyOfSlot[s] = key;
    levels[key] = level;
    upperLen += level * (1 + M);
    at += 10 + 4 + Mb * slotBytes + level * (4 + M * slotBytes);
  }
  if (at !== bytes.byteLength) bad(`${bytes.byteLength - at} bytes left after the last node`);
  const upperStart = new Int32Array(size).fill(-1);
  const upper = new Int32Array(upperLen);
  let up = 0;
  for (let s = 0; s < size; s++) {
    const row = keyOfSlot[s]!;
    let o = nodeAt[s]! + 10;
    const list = (cap: number, out: Int32Array, outAt: number): void => {
      const count = view.getUint32(o, true);
      if (count > cap) bad(`node ${s} lists ${count} neighbours, capacity ${cap}`);
      out[outAt] = count;
      for (let i = 0; i < count; i++) {
        const slot = slotAt(o + 4 + i * slotBytes);
        if (slot >= size) bad(`node ${s} links slot ${slot}`);
        out[outAt + 1 + i] = keyOfSlot[slot]!;
      }
      o += 4 + cap * slotBytes;
    };
    list(Mb, base, row * (1 + Mb));
    const level = levels[row]!;
    if (level > 0) upperStart[row] = up;
    for (let l = 1; l <= level; l++) {
      list(M, upper, up);
      up += 1 + M;
    }
  }
  if (size > 0 && entrySlot >= size) bad(`entry slot ${entrySlot}`);
  return { base, Mb, M, levels, upperStart, upper, entry: size > 0 ? keyOfSlot[entrySlot]! : 0, maxLevel };
}

function normalizedRows(vectors: Float32Array, dim: number): Float32Array {
  const out = Float32Array.from(vectors);
  for (let o = 0; o < out.length; o += dim) normalizeInPlace(out.subarray(o, o + dim));
  return out;
}

function normalizeInPlace(v: Float32Array): void {
  let s = 0;
  for (let j = 0; j < v.length; j++) s += v[j]! * v[j]!;
  const inv = s === 0 ? 0 : 1 / Math.sqrt(s);
  for (let j = 0; j < v.length; j++) v[j] = v[j]! * inv;
}
