/**
 * Exact (brute-force) top-k search over a row-major Float32Array of vectors.
 *
 * Why it is shaped like this (measured in bench/index/index-bench.ts):
 * - Every metric is reduced to one "smaller is better" key: L2 -> ||q||² + ||x||² - 2 q·x, IP -> -q·x,
 *   COSINE -> -(q̂·x)/||x|| with the query normalised once. The hot loop therefore only computes dot products.
 * - Rows are visited in blocks small enough to stay in L2 cache; a block's dot products are computed for four
 *   queries x two rows per step (eight independent sums, every load feeding several of them), then selected.
 *   The column is read from memory once however many queries there are.
 * - Top-k is a bounded max-heap per query in typed arrays; almost every row is rejected by one comparison
 *   against the heap root. Nothing is allocated per row.
 * - JS numbers are doubles, so the norm expansion of L2 loses no useful precision for float32 inputs.
 * Ties are broken by the smaller row offset, which makes results deterministic.
 */

import { quiverError } from '../common/errors.js';
import { type Hits, type KeyRange, type MetricType, type SearchOptions, emptyHits, inKeyRange, validateSearch } from './types.js';

/** Floats per row block: 32k floats = 128 KiB, well inside a per-core L2 cache. */
const BLOCK_FLOATS = 32_768;

const METRIC_L2 = 0;
const METRIC_IP = 1;
const METRIC_COSINE = 2;
type MetricCode = typeof METRIC_L2 | typeof METRIC_IP | typeof METRIC_COSINE;

function metricCode(metric: MetricType): MetricCode {
  switch (metric) {
    case 'L2':
      return METRIC_L2;
    case 'IP':
      return METRIC_IP;
    case 'COSINE':
      return METRIC_COSINE;
    default: {
      const never: never = metric;
      throw quiverError('MetricNotFound', `metric type ${String(never)} is not supported; supported: L2, IP, COSINE`);
    }
  }
}

export function rowCount(vectors: Float32Array, dim: number): number {
  if (!Number.isInteger(dim) || dim < 1) throw quiverError('ParameterInvalid', `dim must be an integer >= 1, got ${dim}`);
  if (vectors.length % dim !== 0) {
    throw quiverError('DimensionMismatch', `vector column holds ${vectors.length} floats, not a multiple of dim ${dim}`);
  }
  return vectors.length / dim;
}

/**
 * Per-row values the kernel needs besides the dot product: ||x||² for L2, 1/||x|| (0 for a zero vector)
 * for COSINE, nothing for IP. FlatIndex computes them once; flatSearch computes them per row block.
 */
export function rowNorms(vectors: Float32Array, dim: number, metric: MetricType): Float64Array | undefined {
  const m = metricCode(metric);
  if (m === METRIC_IP) return undefined;
  const n = rowCount(vectors, dim);
  const out = new Float64Array(n);
  const all = new Int32Array(n);
  for (let i = 0; i < n; i++) all[i] = i;
  fillListNorms(vectors, dim, m, all, n, out);
  return out;
}

/** Exact search straight over a vector column (no build step). */
export function flatSearch(vectors: Float32Array, dim: number, metric: MetricType, queries: Float32Array, nq: number, opts: SearchOptions): Hits[] {
  const n = rowCount(vectors, dim);
  const range = validateSearch(dim, metric, n, queries, nq, opts);
  const rows = allowedList(opts, allowedCount(opts, n));
  return exactSearch(vectors, dim, metric, undefined, queries, nq, opts.k, rows, range);
}

/**
 * The validated core, shared by FlatIndex (with precomputed `norms` from rowNorms) and by HnswIndex's exact
 * path for selective allow-lists. `rows` (ascending row offsets, from allowedRows) restricts the search;
 * undefined searches every row.
 */
export function exactSearch(
  vectors: Float32Array,
  dim: number,
  metric: MetricType,
  norms: Float64Array | undefined,
  queries: Float32Array,
  nq: number,
  k: number,
  rows: Int32Array | undefined,
  range: KeyRange | undefined,
): Hits[] {
  const m = metricCode(metric);
  const n = vectors.length / dim;
  const cap = Math.min(k, rows === undefined ? n : rows.length);
  const out: Hits[] = [];
  if (cap === 0) {
    for (let qi = 0; qi < nq; qi++) out.push(emptyHits());
    return out;
  }

  // Queries are padded to whole groups of four lanes (a lone leftover query gets the one-query kernel): a
  // padding lane is all zeros, computed by the four-query kernel (cheaper than a narrower kernel), never selected.
  const lanes = nq % 4 === 1 ? nq : Math.ceil(nq / 4) * 4;
  const q = new Float64Array(lanes * dim);
  const qq = new Float64Array(lanes);
  prepareQueries(queries, nq, dim, m, q, qq);
  // Per query, the key a row must beat: the heap root once the heap is full.
  const thr = new Float64Array(nq).fill(Infinity);
  const heap: Heap = {
    keys: new Float64Array(nq * cap),
    rows: new Int32Array(nq * cap),
    sizes: new Int32Array(nq),
    cap,
  };

  scanBlocks(vectors, dim, m, norms, rows, q, qq, nq, lanes, heap, thr, range);
  for (let qi = 0; qi < nq; qi++) out.push(drain(heap, qi, m));
  return out;
}

/**
 * The pass over the column, one cache-sized block of rows at a time: first the block's dot products for a
 * group of queries (tight arithmetic loops with nothing else in them, which V8 compiles to the best code),
 * then the top-k selection over those dot products.
 *
 * It is its own function because V8 compiles a long first call on-stack (OSR) and reuses that code: had the
 * hit collection that follows lived in exactSearch too, it would have been compiled without type feedback
 * and deoptimised on every call.
 */
function scanBlocks(
  vectors: Float32Array,
  dim: number,
  m: MetricCode,
  norms: Float64Array | undefined,
  rows: Int32Array | undefined,
  q: Float64Array,
  qq: Float64Array,
  nq: number,
  lanes: number,
  heap: Heap,
  thr: Float64Array,
  range: KeyRange | undefined,
): void {
  const n = vectors.length / dim;
  const blockRows = Math.max(2, Math.floor(BLOCK_FLOATS / dim));
  const list = new Int32Array(blockRows);
  // Per listed row: ||x||² (L2), 1/||x|| (COSINE), 0 (IP).
  const xn = new Float64Array(blockRows);
  const dots = new Float64Array(blockRows * 4);
  // A single query computes ||x||² in the same pass as the dot product instead of a separate pass.
  const fused = nq === 1 && norms === undefined && m !== METRIC_IP;
  const total = rows === undefined ? n : rows.length;
  for (let start = 0; start < total; start += blockRows) {
    const cnt = Math.min(blockRows, total - start);
    if (rows === undefined) {
      for (let p = 0; p < cnt; p++) list[p] = start + p;
    } else {
      for (let p = 0; p < cnt; p++) list[p] = rows[start + p]!;
    }
    if (fused) {
      dotsAndNorms1(vectors, dim, list, cnt, q, dots, xn);
      for (let p = 0; p < cnt; p++) xn[p] = normValue(m, xn[p]!);
      select(dots, 1, 0, list, cnt, xn, m, qq, 0, heap, thr, range);
      continue;
    }
    if (m !== METRIC_IP) {
      if (norms !== undefined) {
        for (let p = 0; p < cnt; p++) xn[p] = norms[list[p]!]!;
      } else {
        fillListNorms(vectors, dim, m, list, cnt, xn);
      }
    }
    let g = 0;
    for (; g + 3 < lanes; g += 4) {
      dots4(vectors, dim, list, cnt, q, g * dim, dots);
      for (let lane = 0; lane < 4 && g + lane < nq; lane++) select(dots, 4, lane, list, cnt, xn, m, qq, g + lane, heap, thr, range);
    }
    if (g < lanes) {
      dots1(vectors, dim, list, cnt, q, g * dim, dots);
      select(dots, 1, 0, list, cnt, xn, m, qq, g, heap, thr, range);
    }
  }
}

/** Offers the block's rows to query qi's heap; dots[p * stride + lane] is row list[p]'s dot product. */
function select(
  dots: Float64Array,
  stride: number,
  lane: number,
  list: Int32Array,
  cnt: number,
  xn: Float64Array,
  m: MetricCode,
  qq: Float64Array,
  qi: number,
  heap: Heap,
  thr: Float64Array,
  range: KeyRange | undefined,
): void {
  const qqi = qq[qi]!;
  let t = thr[qi]!;
  for (let p = 0; p < cnt; p++) {
    const key = keyOf(m, dots[p * stride + lane]!, qqi, xn[p]!);
    if (key < t && (range === undefined || inKeyRange(range, key))) t = offer(heap, qi, key, list[p]!);
  }
  thr[qi] = t;
}

/**
 * Four queries x two rows per step: each q[j] and x[j] load feeds two or four of eight independent sums,
 * which is what lets V8's scalar code approach two multiply-adds per cycle (measured 2.3x the one-query loop).
 */
function dots4(v: Float32Array, dim: number, list: Int32Array, cnt: number, q: Float64Array, o0: number, out: Float64Array): void {
  const o1 = o0 + dim;
  const o2 = o1 + dim;
  const o3 = o2 + dim;
  let p = 0;
  for (; p + 1 < cnt; p += 2) {
    const xo = list[p]! * dim;
    const yo = list[p + 1]! * dim;
    let a0 = 0;
    let a1 = 0;
    let a2 = 0;
    let a3 = 0;
    let b0 = 0;
    let b1 = 0;
    let b2 = 0;
    let b3 = 0;
    for (let j = 0; j < dim; j++) {
      const x = v[xo + j]!;
      const y = v[yo + j]!;
      const q0 = q[o0 + j]!;
      const q1 = q[o1 + j]!;
      const q2 = q[o2 + j]!;
      const q3 = q[o3 + j]!;
      a0 += q0 * x;
      a1 += q1 * x;
      a2 += q2 * x;
      a3 += q3 * x;
      b0 += q0 * y;
      b1 += q1 * y;
      b2 += q2 * y;
      b3 += q3 * y;
    }
    const w = p * 4;
    out[w] = a0;
    out[w + 1] = a1;
    out[w + 2] = a2;
    out[w + 3] = a3;
    out[w + 4] = b0;
    out[w + 5] = b1;
    out[w + 6] = b2;
    out[w + 7] = b3;
  }
  if (p < cnt) {
    const xo = list[p]! * dim;
    let a0 = 0;
    let a1 = 0;
    let a2 = 0;
    let a3 = 0;
    for (let j = 0; j < dim; j++) {
      const x = v[xo + j]!;
      a0 += q[o0 + j]! * x;
      a1 += q[o1 + j]! * x;
      a2 += q[o2 + j]! * x;
      a3 += q[o3 + j]! * x;
    }
    const w = p * 4;
    out[w] = a0;
    out[w + 1] = a1;
    out[w + 2] = a2;
    out[w + 3] = a3;
  }
}

/** One query, dot product unrolled over eight accumulators to break the add dependency chain. */
function dots1(v: Float32Array, dim: number, list: Int32Array, cnt: number, q: Float64Array, o: number, out: Float64Array): void {
  for (let p = 0; p < cnt; p++) {
    const xo = list[p]! * dim;
    let s0 = 0;
    let s1 = 0;
    let s2 = 0;
    let s3 = 0;
    let s4 = 0;
    let s5 = 0;
    let s6 = 0;
    let s7 = 0;
    let j = 0;
    for (; j + 7 < dim; j += 8) {
      const qo = o + j;
      const x = xo + j;
      s0 += q[qo]! * v[x]!;
      s1 += q[qo + 1]! * v[x + 1]!;
      s2 += q[qo + 2]! * v[x + 2]!;
      s3 += q[qo + 3]! * v[x + 3]!;
      s4 += q[qo + 4]! * v[x + 4]!;
      s5 += q[qo + 5]! * v[x + 5]!;
      s6 += q[qo + 6]! * v[x + 6]!;
      s7 += q[qo + 7]! * v[x + 7]!;
    }
    for (; j < dim; j++) s0 += q[o + j]! * v[xo + j]!;
    out[p] = s0 + s1 + (s2 + s3) + (s4 + s5 + (s6 + s7));
  }
}

/** One query under L2/COSINE without precomputed norms: ||x||² rides along in the same pass. */
function dotsAndNorms1(v: Float32Array, dim: number, list: Int32Array, cnt: number, q: Float64Array, out: Float64Array, xx: Float64Array): void {
  for (let p = 0; p < cnt; p++) {
    const xo = list[p]! * dim;
    let s0 = 0;
    let s1 = 0;
    let s2 = 0;
    let s3 = 0;
    let n0 = 0;
    let n1 = 0;
    let n2 = 0;
    let n3 = 0;
    let j = 0;
    for (; j + 3 < dim; j += 4) {
      const x0 = v[xo + j]!;
      const x1 = v[xo + j + 1]!;
      const x2 = v[xo + j + 2]!;
      const x3 = v[xo + j + 3]!;
      s0 += q[j]! * x0;
      s1 += q[j + 1]! * x1;
      s2 += q[j + 2]! * x2;
      s3 += q[j + 3]! * x3;
      n0 += x0 * x0;
      n1 += x1 * x1;
      n2 += x2 * x2;
      n3 += x3 * x3;
    }
    for (; j < dim; j++) {
      const x0 = v[xo + j]!;
      s0 += q[j]! * x0;
      n0 += x0 * x0;
    }
    out[p] = s0 + s1 + (s2 + s3);
    xx[p] = n0 + n1 + (n2 + n3);
  }
}

/** How many rows a search may return: every row, or those its allow-list admits (its row list when given). */
export function allowedCount(opts: SearchOptions, size: number): number {
  if (opts.allow === undefined) return size;
  return opts.allowRows?.length ?? countAllowed(opts.allow);
}

/** The allowed rows, ascending (undefined: every row); `count` from allowedCount. */
export function allowedList(opts: SearchOptions, count: number): Int32Array | undefined {
  if (opts.allow === undefined) return undefined;
  return opts.allowRows ?? allowedRows(opts.allow, count);
}

/** Rows with a nonzero allow byte. Sparse lists are common (filters, deletes), so zero words are skipped. */
export function countAllowed(allow: Uint8Array): number {
  const words = wordView(allow);
  let c = 0;
  let i = 0;
  if (words !== undefined) {
    for (let w = 0; w < words.length; w++) {
      const x = words[w]!;
      if (x === 0) continue;
      // One bit per nonzero byte, then a multiply sums the four bytes into the top one.
      let y = x | (x >>> 4);
      y |= y >>> 2;
      y |= y >>> 1;
      c += Math.imul(y & 0x01010101, 0x01010101) >>> 24;
    }
    i = words.length * 4;
  }
  for (; i < allow.length; i++) if (allow[i] !== 0) c++;
  return c;
}

/** Ascending offsets of the allowed rows: the candidate list exactSearch scans. */
export function allowedRows(allow: Uint8Array, count = countAllowed(allow)): Int32Array {
  const out = new Int32Array(count);
  const words = wordView(allow);
  let c = 0;
  let i = 0;
  if (words !== undefined) {
    for (let w = 0; w < words.length; w++) {
      if (words[w] === 0) continue;
      const b = w * 4;
      if (allow[b] !== 0) out[c++] = b;
      if (allow[b + 1] !== 0) out[c++] = b + 1;
      if (allow[b + 2] !== 0) out[c++] = b + 2;
      if (allow[b + 3] !== 0) out[c++] = b + 3;
    }
    i = words.length * 4;
  }
  for (; i < allow.length; i++) if (allow[i] !== 0) out[c++] = i;
  return out;
}

/** The allow-list as 32-bit words when its buffer offset allows it (one view per call, not per row). */
function wordView(allow: Uint8Array): Uint32Array | undefined {
  if (allow.byteOffset % 4 !== 0 || allow.length < 4) return undefined;
  return new Uint32Array(allow.buffer, allow.byteOffset, allow.length >>> 2);
}

function fillListNorms(v: Float32Array, dim: number, m: MetricCode, list: Int32Array, cnt: number, xn: Float64Array): void {
  for (let p = 0; p < cnt; p++) {
    const xo = list[p]! * dim;
    let s0 = 0;
    let s1 = 0;
    let s2 = 0;
    let s3 = 0;
    let j = 0;
    for (; j + 3 < dim; j += 4) {
      const a = v[xo + j]!;
      const b = v[xo + j + 1]!;
      const c = v[xo + j + 2]!;
      const d = v[xo + j + 3]!;
      s0 += a * a;
      s1 += b * b;
      s2 += c * c;
      s3 += d * d;
    }
    for (; j < dim; j++) {
      const a = v[xo + j]!;
      s0 += a * a;
    }
    xn[p] = normValue(m, s0 + s1 + (s2 + s3));
  }
}

function normValue(m: MetricCode, xx: number): number {
  if (m === METRIC_COSINE) return xx > 0 ? 1 / Math.sqrt(xx) : 0;
  return xx;
}

/** Queries go to doubles once; COSINE queries are normalised (zero stays zero), L2 keeps ||q||². */
function prepareQueries(queries: Float32Array, nq: number, dim: number, m: MetricCode, q: Float64Array, qq: Float64Array): void {
  for (let qi = 0; qi < nq; qi++) {
    const o = qi * dim;
    let s = 0;
    for (let j = 0; j < dim; j++) {
      const a = queries[o + j]!;
      q[o + j] = a;
      s += a * a;
    }
    qq[qi] = s;
    if (m === METRIC_COSINE && s > 0) {
      const inv = 1 / Math.sqrt(s);
      for (let j = 0; j < dim; j++) q[o + j]! *= inv;
    }
  }
}

function keyOf(m: MetricCode, dot: number, qq: number, xn: number): number {
  if (m === METRIC_L2) {
    const d = qq + xn - 2 * dot;
    return d > 0 ? d : 0;
  }
  return m === METRIC_IP ? -dot : -dot * xn;
}

/**
 * One bounded max-heap per query over (key, row), stored side by side in typed arrays. The root is the worst
 * hit kept, so a candidate only has to beat the root.
 */
interface Heap {
  readonly keys: Float64Array;
  readonly rows: Int32Array;
  readonly sizes: Int32Array;
  readonly cap: number;
}

/** "a ranks after b": larger key, or equal key and larger row. */
function worse(ak: number, ar: number, bk: number, br: number): boolean {
  return ak > bk || (ak === bk && ar > br);
}

/**
 * Adds a candidate that beat the threshold and returns the new threshold (Infinity while the heap has room).
 * Rows arrive in increasing order, so a candidate equal to the root's key ranks after it and is already
 * rejected by the strict `<` at the call site.
 */
function offer(heap: Heap, qi: number, key: number, row: number): number {
  const { keys, rows, sizes, cap } = heap;
  const base = qi * cap;
  const size = sizes[qi]!;
  if (size < cap) {
    let i = size;
    while (i > 0) {
      const p = (i - 1) >> 1;
      const pk = keys[base + p]!;
      const pr = rows[base + p]!;
      if (!worse(key, row, pk, pr)) break;
      keys[base + i] = pk;
      rows[base + i] = pr;
      i = p;
    }
    keys[base + i] = key;
    rows[base + i] = row;
    sizes[qi] = size + 1;
    return size + 1 === cap ? keys[base]! : Infinity;
  }
  siftDown(keys, rows, base, size, key, row);
  return keys[base]!;
}

/** Places (key, row) at the root and sinks it; the heap holds `size` entries. */
function siftDown(keys: Float64Array, rows: Int32Array, base: number, size: number, key: number, row: number): void {
  let i = 0;
  for (;;) {
    const l = 2 * i + 1;
    if (l >= size) break;
    let c = l;
    const r = l + 1;
    if (r < size && worse(keys[base + r]!, rows[base + r]!, keys[base + l]!, rows[base + l]!)) c = r;
    const ck = keys[base + c]!;
    const cr = rows[base + c]!;
    if (!worse(ck, cr, key, row)) break;
    keys[base + i] = ck;
    rows[base + i] = cr;
    i = c;
  }
  keys[base + i] = key;
  rows[base + i] = row;
}

/** Pops the heap worst-first into best-first arrays and converts keys back to Milvus scores. */
function drain(heap: Heap, qi: number, m: MetricCode): Hits {
  const { keys, rows, sizes, cap } = heap;
  const base = qi * cap;
  let size = sizes[qi]!;
  const outRows = new Int32Array(size);
  const outScores = new Float32Array(size);
  while (size > 0) {
    const last = size - 1;
    const key = keys[base]!;
    outRows[last] = rows[base]!;
    // `+ 0` turns the -0 of an IP/COSINE zero score into 0.
    outScores[last] = (m === METRIC_L2 ? key : -key) + 0;
    if (last > 0) siftDown(keys, rows, base, last, keys[base + last]!, rows[base + last]!);
    size = last;
  }
  sizes[qi] = 0;
  return { rows: outRows, scores: outScores };
}
