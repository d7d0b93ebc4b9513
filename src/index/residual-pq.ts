/**
 * Product quantization (PQ) and product residual quantization (PRQ) of float rows, for HNSW_PQ and
 * HNSW_PRQ. A row is split into `m` sub-vectors; each stage codes every sub-vector as the nearest of
 * 2^nbits codewords trained by k-means on that sub-space. PQ is one stage; PRQ runs `nrq` stages, each
 * coding what the previous stages left (the residual), so the reconstruction is the sum of one codeword per
 * stage and sub-space.
 *
 * Distances are asymmetric (the query stays exact) and go through inner products, which add up over stages:
 * q·x̂ = Σ over stages and sub-spaces of q_j·c. So a query builds one table of q_j·c per codeword, and a row
 * costs nrq * m table lookups. L2 needs ||x̂||² as well, which does not split over stages (cross terms), so it
 * is stored per row: ||q - x̂||² = ||q||² - 2 q·x̂ + ||x̂||².
 *
 * Rows are centred on the column mean before coding (x̂ = mean + coded residual, q·x̂ = q·mean + table
 * sums): embeddings share a large common component, and codewords spent on it would not tell neighbours apart.
 */

import { assert } from '../common/errors.js';
import { kmeans, nearestCentroid, sampleRows } from './ivf-index.js';

/** Codebook training rows per codeword (as IVF_PQ). */
const TRAIN_ROWS_PER_CODE = 32;

export interface ResidualPqShape {
  readonly dim: number;
  /** Sub-vectors per row; divides dim. */
  readonly m: number;
  /** Bits per code, 1-16 (codes are one byte each up to 8 bits, two above). */
  readonly nbits: number;
  /** Stages: 1 = PQ. */
  readonly nrq: number;
}

export interface ResidualPqCodes {
  /** nrq * m * 2^nbits * (dim / m) floats: stage-major, then sub-space, then codeword. */
  readonly codebooks: Float32Array;
  /** n * nrq * m codes, row-major. */
  readonly codes: Uint8Array | Uint16Array;
  /** ||x̂||² per row. */
  readonly norms: Float32Array;
  /** The column mean the codes are relative to (dim floats). */
  readonly mean: Float32Array;
}

/** Widest code: 2^16 codewords per sub-space are already a long k-means in JS (Milvus trains up to 24 bits natively). */
export const PQ_NBITS_MAX = 16;

/** Code storage for `nbits`: one byte per code up to 8 bits, two above. */
export function codesArray(nbits: number, length: number): Uint8Array | Uint16Array {
  return nbits > 8 ? new Uint16Array(length) : new Uint8Array(length);
}

export function trainAndEncode(data: Float32Array, shape: ResidualPqShape, rand: () => number, shouldStop?: () => boolean): ResidualPqCodes {
  const { dim, m, nbits, nrq } = shape;
  assert(dim % m === 0 && nbits >= 1 && nbits <= PQ_NBITS_MAX && nrq >= 1, `bad PQ shape ${JSON.stringify(shape)}`);
  const n = data.length / dim;
  const ksub = 1 << nbits;
  const dsub = dim / m;
  const codebooks = new Float32Array(nrq * m * ksub * dsub);
  const codes = codesArray(nbits, n * nrq * m);
  const norms = new Float32Array(n);
  const mean = new Float32Array(dim);
  if (n === 0) return { codebooks, codes, norms, mean };
  const sum = new Float64Array(dim);
  for (let r = 0; r < n; r++) for (let t = 0; t < dim; t++) sum[t]! += data[r * dim + t]!;
  for (let t = 0; t < dim; t++) mean[t] = sum[t]! / n;
  const residual = Float32Array.from(data);
  for (let r = 0; r < n; r++) for (let t = 0; t < dim; t++) residual[r * dim + t] = residual[r * dim + t]! - mean[t]!;
  const sample = sampleRows(n, ksub * TRAIN_ROWS_PER_CODE, rand);
  const bookNorms = new Float64Array(ksub);
  for (let s = 0; s < nrq; s++) {
    for (let j = 0; j < m; j++) {
      if (shouldStop?.()) throw new Error(`PQ training cancelled at stage ${s}, sub-space ${j}`);
      const book = kmeans(residual, dim, j * dsub, dsub, sample, ksub, rand);
      codebooks.set(book, (s * m + j) * ksub * dsub);
      for (let c = 0; c < ksub; c++) {
        let v = 0;
        for (let t = 0; t < dsub; t++) v += book[c * dsub + t]! ** 2;
        bookNorms[c] = v;
      }
      for (let r = 0; r < n; r++) {
        const o = r * dim + j * dsub;
        const c = nearestCentroid(residual, o, book, bookNorms, ksub, dsub);
        codes[(r * nrq + s) * m + j] = c;
        for (let t = 0; t < dsub; t++) residual[o + t] = residual[o + t]! - book[c * dsub + t]!;
      }
    }
  }
  // x̂ = x - what no stage coded.
  for (let r = 0; r < n; r++) {
    let v = 0;
    for (let t = 0; t < dim; t++) v += (data[r * dim + t]! - residual[r * dim + t]!) ** 2;
    norms[r] = v;
  }
  return { codebooks, codes, norms, mean };
}

/** The per-query table of q_j · c for every stage, sub-space and codeword. */
export function innerProductTable(q: Float32Array, shape: ResidualPqShape, codebooks: Float32Array, out: Float32Array): void {
  const { m, nbits, nrq, dim } = shape;
  const ksub = 1 << nbits;
  const dsub = dim / m;
  for (let s = 0; s < nrq; s++) {
    for (let j = 0; j < m; j++) {
      const base = (s * m + j) * ksub;
      const qo = j * dsub;
      for (let c = 0; c < ksub; c++) {
        const co = (base + c) * dsub;
        let dot = 0;
        for (let t = 0; t < dsub; t++) dot += q[qo + t]! * codebooks[co + t]!;
        out[base + c] = dot;
      }
    }
  }
}
