/**
 * HNSW through hnswlib-node (hnswlib 0.8 compiled as a Node addon). Labels are row offsets.
 *
 * What the binding dictates (node_modules/hnswlib-node/src/addon.cc):
 * - Points and queries must be plain JS arrays (it checks IsArray; a Float32Array is rejected), so one
 *   number[] of length dim is kept per index and overwritten for every point/query.
 * - Distances: 'l2' is squared L2 (= Milvus L2), 'ip' is 1 - q·x, 'cosine' normalises points and queries
 *   (a zero vector stays zero) and returns 1 - cos. Milvus scores are recovered as 1 - d.
 * - The filter callback is called through N-API for every candidate the graph walk touches, and a very
 *   selective filter starves the walk (fewer than k hits). Below EXACT_ALLOWED_MAX rows (or
 *   EXACT_ALLOWED_FRACTION of the index) the allowed rows are searched exactly instead: that is both
 *   faster and exact.
 * - The file format is hnswlib's own (saveIndex): a 96-byte header, the level-0 block, then the upper-level
 *   link lists. It records neither the metric nor the dimension explicitly, so load checks the header
 *   against the expected dimension and row count before the native loader trusts it.
 */

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import hnswlib from 'hnswlib-node';

import { assert, isQuiverError, quiverError } from '../common/errors.js';
import { allowedCount, allowedList, exactSearch, rowCount } from './flat-search.js';
import { type HnswParams, validateHnswParams } from './index-params.js';
import {
  DEFAULT_EF,
  type Hits,
  type KeyRange,
  type MetricType,
  type SearchOptions,
  type VectorIndex,
  emptyHits,
  inKeyRange,
  validateSearch,
} from './types.js';

type NativeHnsw = InstanceType<typeof hnswlib.HierarchicalNSW>;
type SpaceName = 'l2' | 'ip' | 'cosine';

/** Allow-lists with fewer allowed rows than this are searched exactly. */
export const EXACT_ALLOWED_MAX = 2000;
/** ... and so are allow-lists that keep less than this fraction of the index. */
export const EXACT_ALLOWED_FRACTION = 0.05;

/** hnswlib's level generator seed: fixed so that a build is reproducible. */
const RANDOM_SEED = 100;

/** Range search asks the graph for this many times more candidates each round until the range is covered. */
const RANGE_GROWTH = 4;

function spaceOf(metric: MetricType): SpaceName {
  switch (metric) {
    case 'L2':
      return 'l2';
    case 'IP':
      return 'ip';
    case 'COSINE':
      return 'cosine';
    default: {
      const never: never = metric;
      throw quiverError('MetricNotFound', `metric type ${String(never)} is not supported; supported: L2, IP, COSINE`);
    }
  }
}

export class HnswIndex implements VectorIndex {
  readonly type = 'HNSW' as const;
  readonly dim: number;
  readonly metric: MetricType;
  readonly size: number;
  #native: NativeHnsw | undefined;
  /** The one JS array the binding reads points and queries from. */
  readonly #point: number[];
  #ef = 0;
  /** Raw rows for the exact path; kept from build, given to load, or copied out of the graph on first use. */
  #vectors: Float32Array | undefined;

  private constructor(native: NativeHnsw, dim: number, metric: MetricType, size: number, vectors: Float32Array | undefined) {
    this.#native = native;
    this.dim = dim;
    this.metric = metric;
    this.size = size;
    this.#point = new Array<number>(dim).fill(0);
    this.#vectors = vectors;
  }

  /**
   * Builds the graph, one addPoint per row (label = row offset). Keeps a reference to `vectors` (no copy)
   * for the exact path of selective allow-lists; the caller must not mutate it.
   */
  /**
   * `shouldStop` is polled every 256 points: a build can be abandoned cooperatively (a worker thread must
   * never be terminated while native code runs, which aborts the process).
   */
  static build(vectors: Float32Array, dim: number, metric: MetricType, params: HnswParams, opts: { shouldStop?: () => boolean } = {}): HnswIndex {
    const n = rowCount(vectors, dim);
    validateHnswParams(params);
    const native = new hnswlib.HierarchicalNSW(spaceOf(metric), dim);
    // hnswlib cannot allocate an index of zero elements; one slot of room costs nothing.
    native.initIndex(Math.max(1, n), params.M, params.efConstruction, RANDOM_SEED);
    const index = new HnswIndex(native, dim, metric, n, vectors);
    const point = index.#point;
    for (let i = 0; i < n; i++) {
      if ((i & 255) === 0 && opts.shouldStop?.()) {
        index.dispose();
        throw new Error(`HNSW build cancelled after ${i} of ${n} points`);
      }
      const o = i * dim;
      for (let j = 0; j < dim; j++) point[j] = vectors[o + j]!;
      native.addPoint(point, i);
    }
    return index;
  }

  /**
   * Loads a file written by save (no rebuild). The file does not record the metric: pass the one it was
   * built with. `vectors`, when the caller has the raw column at hand, spares copying rows out of the graph
   * the first time a selective allow-list needs them.
   */
  static load(filePath: string, dim: number, metric: MetricType, size: number, vectors?: Float32Array): HnswIndex {
    if (vectors !== undefined && rowCount(vectors, dim) !== size) {
      throw quiverError('DimensionMismatch', `vectors hold ${vectors.length / dim} rows, index ${filePath} expects ${size}`);
    }
    checkHeader(filePath, dim, size);
    const native = new hnswlib.HierarchicalNSW(spaceOf(metric), dim);
    try {
      native.readIndexSync(filePath);
    } catch (e) {
      throw quiverError('SegmentLoadFailed', `cannot load HNSW index ${filePath}: ${errorText(e)}`, e);
    }
    const count = native.getCurrentCount();
    if (count !== size) {
      throw quiverError('SegmentLoadFailed', `HNSW index ${filePath} holds ${count} rows, expected ${size}`);
    }
    return new HnswIndex(native, dim, metric, size, vectors);
  }

  static fromBytes(bytes: Uint8Array, dim: number, metric: MetricType, size: number, vectors?: Float32Array): HnswIndex {
    return withTempFile((file) => {
      fs.writeFileSync(file, bytes);
      return HnswIndex.load(file, dim, metric, size, vectors);
    });
  }

  /**
   * Writes hnswlib's own format. The native writer does not report I/O errors, so it writes a sibling
   * temporary file whose header is checked before it is renamed over `filePath`.
   */
  save(filePath: string): void {
    const native = this.#live();
    const tmp = `${filePath}.${process.pid}.tmp`;
    try {
      native.writeIndexSync(tmp);
      checkHeader(tmp, this.dim, this.size);
      fs.renameSync(tmp, filePath);
    } catch (e) {
      fs.rmSync(tmp, { force: true });
      if (isQuiverError(e)) throw e;
      throw quiverError('IoFailed', `cannot save HNSW index to ${filePath}: ${errorText(e)}`, e);
    }
  }

  toBytes(): Uint8Array {
    return withTempFile((file) => {
      this.save(file);
      const buf = fs.readFileSync(file);
      return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
    });
  }

  /**
   * Frees the native graph now rather than whenever the GC collects the small JS wrapper (V8 does not know
   * how much native memory hides behind it). Idempotent; the index cannot be searched afterwards.
   */
  dispose(): void {
    const native = this.#native;
    if (native === undefined) return;
    this.#native = undefined;
    this.#vectors = undefined;
    // initIndex deletes the current graph before allocating the new (one-slot) one.
    native.initIndex(1);
  }

  search(queries: Float32Array, nq: number, opts: SearchOptions): Hits[] {
    const native = this.#live();
    const range = validateSearch(this.dim, this.metric, this.size, queries, nq, opts);
    const { k, allow } = opts;
    const allowed = allowedCount(opts, this.size);
    const out: Hits[] = [];
    if (allowed === 0) {
      for (let qi = 0; qi < nq; qi++) out.push(emptyHits());
      return out;
    }
    if (allow !== undefined && (allowed < EXACT_ALLOWED_MAX || allowed < EXACT_ALLOWED_FRACTION * this.size)) {
      return exactSearch(this.#rawVectors(), this.dim, this.metric, undefined, queries, nq, k, allowedList(opts, allowed), range);
    }

    const ef = Math.max(opts.ef ?? DEFAULT_EF, k);
    if (ef !== this.#ef) {
      native.setEf(ef);
      this.#ef = ef;
    }
    const filter = allow === undefined ? undefined : (label: number): boolean => allow[label] !== 0;
    const want = Math.min(k, allowed);
    const point = this.#point;
    const dim = this.dim;
    for (let qi = 0; qi < nq; qi++) {
      const o = qi * dim;
      for (let j = 0; j < dim; j++) point[j] = queries[o + j]!;
      let hits = range === undefined ? this.#toHits(native.searchKnn(point, want, filter)) : this.#rangeSearch(native, point, k, ef, range, filter);
      // A filtered graph walk can run dry before it finds k allowed rows; exact search cannot.
      if (range === undefined && hits.rows.length < want) {
        const rows = allowedList(opts, allowed);
        hits = exactSearch(this.#rawVectors(), dim, this.metric, undefined, queries.subarray(o, o + dim), 1, k, rows, range)[0]!;
      }
      out.push(hits);
    }
    return out;
  }

  #live(): NativeHnsw {
    const native = this.#native;
    assert(native !== undefined, 'HnswIndex used after dispose()');
    return native;
  }

  #score(distance: number): number {
    return this.metric === 'L2' ? distance : 1 - distance;
  }

  #toHits(result: { distances: number[]; neighbors: number[] }): Hits {
    const n = result.neighbors.length;
    const rows = new Int32Array(n);
    const scores = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      rows[i] = result.neighbors[i]!;
      scores[i] = this.#score(result.distances[i]!);
    }
    return { rows, scores };
  }

  /**
   * The graph has no range query: ask for more and more neighbours (best first) until k of them fall in
   * range, the candidates run past the outer bound, or the index is exhausted.
   */
  #rangeSearch(native: NativeHnsw, point: number[], k: number, ef: number, range: KeyRange, filter: ((label: number) => boolean) | undefined): Hits {
    const sign = this.metric === 'L2' ? 1 : -1;
    let want = Math.min(this.size, Math.max(k, ef));
    for (;;) {
      const result = native.searchKnn(point, want, filter);
      const rows = new Int32Array(k);
      const scores = new Float32Array(k);
      let found = 0;
      let pastOuter = false;
      const n = result.neighbors.length;
      for (let i = 0; i < n && found < k; i++) {
        const score = this.#score(result.distances[i]!);
        const key = sign * score;
        if (Math.fround(key) >= range.hi) {
          pastOuter = true;
          break;
        }
        if (!inKeyRange(range, key)) continue;
        rows[found] = result.neighbors[i]!;
        scores[found] = score;
        found++;
      }
      if (found === k || pastOuter || n < want || want >= this.size) {
        return { rows: rows.slice(0, found), scores: scores.slice(0, found) };
      }
      want = Math.min(this.size, want * RANGE_GROWTH);
    }
  }

  #rawVectors(): Float32Array {
    const cached = this.#vectors;
    if (cached !== undefined) return cached;
    // Loaded without the column: copy the rows out of the graph once (COSINE rows come back normalised,
    // which leaves cosine scores unchanged).
    const native = this.#live();
    const dim = this.dim;
    const out = new Float32Array(this.size * dim);
    for (let i = 0; i < this.size; i++) out.set(native.getPoint(i), i * dim);
    this.#vectors = out;
    return out;
  }
}

function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

function withTempFile<T>(fn: (file: string) => T): T {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'quiver-hnsw-'));
  try {
    return fn(path.join(dir, 'index.bin'));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

function readHead(filePath: string, header: Buffer): { fileBytes: number; read: number } {
  try {
    const fd = fs.openSync(filePath, 'r');
    try {
      return { fileBytes: fs.fstatSync(fd).size, read: fs.readSync(fd, header, 0, header.length, 0) };
    } finally {
      fs.closeSync(fd);
    }
  } catch (e) {
    throw quiverError('SegmentLoadFailed', `cannot read HNSW index ${filePath}: ${errorText(e)}`, e);
  }
}

/** hnswlib's header: six size_t, int maxlevel, uint enterpoint, three size_t, double mult, size_t efC. */
const HEADER_BYTES = 96;
const LABEL_BYTES = 8;
const LINK_BYTES = 4;

/**
 * The native loader checks only that the link lists add up to the file length; a file built for another
 * dimension would load and then read vectors at the wrong offsets. So the header is checked here first.
 */
function checkHeader(filePath: string, dim: number, size: number): void {
  const header = Buffer.alloc(HEADER_BYTES);
  const { fileBytes, read } = readHead(filePath, header);
  const bad = (why: string): never => {
    throw quiverError('SegmentLoadFailed', `HNSW index ${filePath} is not usable: ${why}`);
  };
  if (read < HEADER_BYTES) bad(`file is ${fileBytes} bytes, shorter than the ${HEADER_BYTES}-byte header`);
  const u64 = (offset: number): number => Number(header.readBigUInt64LE(offset));
  const offsetLevel0 = u64(0);
  const count = u64(16);
  const bytesPerElement = u64(24);
  const labelOffset = u64(32);
  const offsetData = u64(40);
  const maxM0 = u64(64);
  if (offsetLevel0 !== 0) bad(`level-0 offset ${offsetLevel0} is not 0`);
  if (count !== size) bad(`it holds ${count} rows, expected ${size}`);
  if (labelOffset - offsetData !== dim * 4) {
    bad(`its vectors are ${(labelOffset - offsetData) / 4} floats wide, expected dim ${dim}`);
  }
  if (offsetData !== maxM0 * LINK_BYTES + LINK_BYTES || bytesPerElement !== labelOffset + LABEL_BYTES) {
    bad(`inconsistent element layout (maxM0 ${maxM0}, data offset ${offsetData}, element ${bytesPerElement} bytes)`);
  }
  if (HEADER_BYTES + count * bytesPerElement > fileBytes) {
    bad(`file is ${fileBytes} bytes, too short for ${count} elements of ${bytesPerElement} bytes`);
  }
}
