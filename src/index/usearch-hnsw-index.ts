/**
 * HNSW and HNSW_SQ through usearch (a native HNSW with SIMD distances and multi-threaded construction).
 * Labels (usearch keys) are row offsets. Replaces hnswlib-node for new builds because hnswlib-node adds one
 * point per call on one thread, so a build used one core of the machine; usearch's `add` spreads a batch
 * over `threads` native threads (the caller's thread blocks, which is why builds run in the build worker).
 *
 * What the binding dictates (node_modules/usearch/javascript/lib.cpp):
 * - Distances: 'l2sq' is squared L2 (= Milvus L2), 'ip' is 1 - q·x, 'cos' is 1 - cos; scores are 1 - d.
 * - There is no per-search ef setter, but a search for `count` results walks with
 *   max(expansion_search, count) candidates. The index is opened with expansion_search = 1 and asked for
 *   max(ef, k) results, which is exactly hnswlib's ef (then cut to k).
 * - There is no filter callback: an allow-list asks for more and more results until k allowed ones are
 *   found, and a selective allow-list is searched exactly over the raw column (as HnswIndex does).
 * - No vector read-back: the exact paths and refine need the raw column, given at build or attached after
 *   load (`attachVectors`); without it a filtered search stays on the graph.
 * - i8 quantization normalises every vector (it is meant for cosine): IP recall@10 fell to 0.19 on clustered
 *   data. So SQ8 (one byte per dimension) is usearch's 8-bit float e4m3, which keeps magnitudes; measured on
 *   20k x 128 clustered, ef 64: recall@10 0.88 (L2), 0.86 (IP), 0.89 (COSINE) alone, 1.0 with refine_k 2+.
 */

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import usearch, { type MetricKind, type ScalarKind } from 'usearch';

import { assert, quiverError } from '../common/errors.js';
import { allowedCount, allowedList, rowCount } from './flat-search.js';
import { type IndexFileHeader, decodeIndexFile, encodeIndexFile } from './index-file.js';
import {
  DEFAULT_EF,
  type Hits,
  type IndexType,
  type MetricType,
  type SearchOptions,
  type VectorIndex,
  emptyHits,
  inKeyRange,
  validateSearch,
} from './types.js';
import { type VectorSource, exactOver, sourceRowCount } from './vector-source.js';

/** How vectors are stored in the graph. */
export type HnswQuantization = 'f32' | 'f16' | 'bf16' | 'e4m3';

export interface UsearchHnswParams {
  readonly M: number;
  readonly efConstruction: number;
  readonly quantization: HnswQuantization;
  /** HNSW_SQ: re-rank candidates with the exact vectors (search param refine_k). */
  readonly refine: boolean;
}

export interface BuildOptions {
  /** Native threads for `add` (>= 1). */
  readonly threads: number;
  /** Polled between batches; a true answer abandons the build. */
  readonly shouldStop?: (() => boolean) | undefined;
}

/** Rows per `add` call: small enough to poll for cancellation often, large enough to keep threads busy. */
const ADD_BATCH_ROWS = 8192;
/** Allow-lists with fewer allowed rows than this (or this fraction) are searched exactly when the column is at hand. */
const EXACT_ALLOWED_MAX = 2000;
const EXACT_ALLOWED_FRACTION = 0.05;
/** A filtered or range search asks for this many times more results each round. */
const GROWTH = 4;
/** refine_k when the request names none. */
export const REFINE_K_DEFAULT = 1;
export const REFINE_K_MAX = 64;

type UsearchIndex = InstanceType<typeof usearch.Index>;

function metricKind(metric: MetricType): MetricKind {
  switch (metric) {
    case 'L2':
      return usearch.MetricKind.L2sq;
    case 'IP':
      return usearch.MetricKind.IP;
    case 'COSINE':
      return usearch.MetricKind.Cos;
    default: {
      const never: never = metric;
      throw quiverError('MetricNotFound', `metric type ${String(never)} is not supported; supported: L2, IP, COSINE`);
    }
  }
}

function newNative(dim: number, metric: MetricType, p: UsearchHnswParams): UsearchIndex {
  return new usearch.Index({
    dimensions: dim,
    metric: metricKind(metric),
    quantization: p.quantization as ScalarKind,
    connectivity: p.M,
    expansion_add: p.efConstruction,
    // See the header: every search names its own count, which sets the effective ef.
    expansion_search: 1,
    multi: false,
  });
}

/** Segments up to this many rows are searched exactly when their vectors are attached. */
export const SMALL_INDEX_EXACT_ROWS = 1024;

export class UsearchHnswIndex implements VectorIndex {
  readonly type: IndexType;
  readonly dim: number;
  readonly metric: MetricType;
  readonly size: number;
  readonly params: UsearchHnswParams;
  #native: UsearchIndex | undefined;
  #vectors: VectorSource | undefined;

  private constructor(native: UsearchIndex, dim: number, metric: MetricType, size: number, params: UsearchHnswParams, vectors: Float32Array | undefined) {
    this.type = params.quantization === 'f32' && !params.refine ? 'HNSW' : 'HNSW_SQ';
    this.#native = native;
    this.dim = dim;
    this.metric = metric;
    this.size = size;
    this.params = params;
    this.#vectors = vectors;
  }

  /** Builds the graph over `vectors` (row i = key i) with `threads` native threads. Keeps a reference to `vectors`. */
  static build(vectors: Float32Array, dim: number, metric: MetricType, params: UsearchHnswParams, opts: BuildOptions): UsearchHnswIndex {
    const n = rowCount(vectors, dim);
    assert(Number.isInteger(opts.threads) && opts.threads >= 1, `build threads must be an integer >= 1, got ${opts.threads}`);
    const native = newNative(dim, metric, params);
    for (let start = 0; start < n; start += ADD_BATCH_ROWS) {
      if (opts.shouldStop?.()) throw new Error(`HNSW build cancelled after ${start} of ${n} points`);
      const end = Math.min(n, start + ADD_BATCH_ROWS);
      const keys = new BigUint64Array(end - start);
      for (let i = start; i < end; i++) keys[i - start] = BigInt(i);
      native.add(keys, vectors.subarray(start * dim, end * dim), opts.threads);
    }
    return new UsearchHnswIndex(native, dim, metric, n, params, vectors);
  }

  /** Reads a container written by `toBytes` (no rebuild). */
  static fromBytes(bytes: Uint8Array, source: string, expect: { dim: number; metric: MetricType; rows: number }): UsearchHnswIndex {
    const { header, sections } = decodeIndexFile(bytes, source, expect);
    if (header.kind !== 'usearch-hnsw') throw quiverError('SegmentLoadFailed', `index file ${source} holds a ${header.kind} index, not HNSW`);
    const params = parseStoredParams(header.params, source);
    const graph = sections.get('graph');
    if (graph === undefined) throw quiverError('SegmentLoadFailed', `index file ${source} has no graph section`);
    const native = newNative(header.dim, header.metric, params);
    // The binding loads only from a path.
    withTempFile((file) => {
      fs.writeFileSync(file, graph);
      try {
        native.load(file);
      } catch (e) {
        throw quiverError('SegmentLoadFailed', `cannot load HNSW graph of ${source}: ${e instanceof Error ? e.message : String(e)}`, e);
      }
    });
    if (native.size() !== header.rows)
      throw quiverError('SegmentLoadFailed', `HNSW graph of ${source} holds ${native.size()} rows, expected ${header.rows}`);
    return new UsearchHnswIndex(native, header.dim, header.metric, header.rows, params, undefined);
  }

  toBytes(): Uint8Array {
    const native = this.#live();
    const graph = withTempFile((file) => {
      native.save(file);
      return fs.readFileSync(file);
    });
    const header: IndexFileHeader = { kind: 'usearch-hnsw', dim: this.dim, metric: this.metric, rows: this.size, params: { ...this.params } };
    return encodeIndexFile(header, new Map([['graph', new Uint8Array(graph.buffer, graph.byteOffset, graph.byteLength)]]));
  }

  /** Gives a loaded index the raw column (or a reader of it) for exact paths and refine (kept by reference, not copied). */
  attachVectors(vectors: VectorSource): void {
    const rows = sourceRowCount(vectors, this.dim);
    if (rows !== this.size) throw quiverError('DimensionMismatch', `vectors hold ${rows} rows, index holds ${this.size}`);
    this.#vectors = vectors;
  }

  /**
   * Drops the graph and column references. The binding has no explicit free: the native graph goes when V8
   * collects the wrapper. Idempotent; the index cannot be searched afterwards.
   */
  dispose(): void {
    this.#native = undefined;
    this.#vectors = undefined;
  }

  search(queries: Float32Array, nq: number, opts: SearchOptions): Hits[] {
    const native = this.#live();
    const range = validateSearch(this.dim, this.metric, this.size, queries, nq, opts);
    const { k, allow } = opts;
    const refineK = opts.refineK ?? REFINE_K_DEFAULT;
    if (!Number.isInteger(refineK) || refineK < 1 || refineK > REFINE_K_MAX) {
      throw quiverError('ParameterInvalid', `refine_k must be an integer in [1, ${REFINE_K_MAX}], got ${refineK}`);
    }
    const allowed = allowedCount(opts, this.size);
    const out: Hits[] = [];
    if (allowed === 0) {
      for (let qi = 0; qi < nq; qi++) out.push(emptyHits());
      return out;
    }
    const vectors = this.#vectors;
    // A small segment is scanned: the scan costs about what a graph walk does there, and it never misses
    // (a multi-threaded build of a tiny graph can leave a row hard to reach).
    if (vectors !== undefined && this.size <= SMALL_INDEX_EXACT_ROWS) {
      return exactOver(vectors, this.dim, this.metric, queries, nq, k, allowedList(opts, allowed), range);
    }
    if (vectors !== undefined && allow !== undefined && (allowed < EXACT_ALLOWED_MAX || allowed < EXACT_ALLOWED_FRACTION * this.size)) {
      return exactOver(vectors, this.dim, this.metric, queries, nq, k, allowedList(opts, allowed), range);
    }
    const refine = this.params.refine && vectors !== undefined;
    // Refine re-ranks refine_k * k graph candidates by exact distance.
    const want = Math.min(allowed, refine ? k * refineK : k);
    const ef = Math.max(opts.ef ?? DEFAULT_EF, want);
    const dim = this.dim;
    const sign = this.metric === 'L2' ? 1 : -1;
    for (let qi = 0; qi < nq; qi++) {
      const query = queries.subarray(qi * dim, (qi + 1) * dim);
      let count = ef;
      let rows = new Int32Array(0);
      let scores = new Float32Array(0);
      for (;;) {
        const m = native.search(query, Math.min(count, this.size), 1);
        const n = m.keys.length;
        const rowsOut = new Int32Array(Math.min(n, want));
        const scoresOut = new Float32Array(Math.min(n, want));
        let found = 0;
        let pastOuter = false;
        for (let i = 0; i < n && found < want; i++) {
          const row = Number(m.keys[i]!);
          if (allow !== undefined && allow[row] === 0) continue;
          const score = this.metric === 'L2' ? m.distances[i]! : 1 - m.distances[i]!;
          // Refine rescoring decides ranges itself; without it the graph's score is the answer.
          if (range !== undefined && !refine) {
            if (Math.fround(sign * score) >= range.hi) {
              pastOuter = true;
              break;
            }
            if (!inKeyRange(range, sign * score)) continue;
          }
          rowsOut[found] = row;
          scoresOut[found] = score;
          found++;
        }
        rows = rowsOut.slice(0, found);
        scores = scoresOut.slice(0, found);
        if (found >= want || pastOuter || n < count || count >= this.size) break;
        count = Math.min(this.size, count * GROWTH);
      }
      if (refine) {
        const sorted = Int32Array.from(rows).sort();
        out.push(exactOver(vectors, dim, this.metric, query, 1, k, sorted, range)[0]!);
      } else if (range === undefined && rows.length < Math.min(k, allowed) && vectors !== undefined) {
        // A filtered walk can miss allowed rows that exact search cannot.
        const rowsAllowed = allowedList(opts, allowed);
        out.push(exactOver(vectors, dim, this.metric, query, 1, k, rowsAllowed, range)[0]!);
      } else {
        out.push({ rows: rows.slice(0, k), scores: scores.slice(0, k) });
      }
    }
    return out;
  }

  #live(): UsearchIndex {
    const native = this.#native;
    assert(native !== undefined, 'UsearchHnswIndex used after dispose()');
    return native;
  }
}

const QUANTIZATIONS: readonly HnswQuantization[] = ['f32', 'f16', 'bf16', 'e4m3'];

function parseStoredParams(p: Readonly<Record<string, unknown>>, source: string): UsearchHnswParams {
  const { M, efConstruction, quantization, refine } = p;
  if (
    typeof M !== 'number' ||
    typeof efConstruction !== 'number' ||
    typeof refine !== 'boolean' ||
    !QUANTIZATIONS.includes(quantization as HnswQuantization)
  ) {
    throw quiverError('SegmentLoadFailed', `index file ${source} has malformed HNSW params ${JSON.stringify(p)}`);
  }
  return { M, efConstruction, quantization: quantization as HnswQuantization, refine };
}

function withTempFile<T>(fn: (file: string) => T): T {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'quiver-usearch-'));
  try {
    return fn(path.join(dir, 'graph.usearch'));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
