/**
 * Seeded synthetic vectors for tests and benchmarks. Clustered data (gaussian blobs around random centres)
 * is what makes approximate search hard in a realistic way; uniform random vectors are nearly equidistant.
 */

import { SeededRandom } from './random.js';

export interface ClusteredOptions {
  readonly n: number;
  readonly dim: number;
  readonly clusters: number;
  readonly seed: number;
  /** Standard deviation of each blob relative to the centres' spread (1). */
  readonly spread?: number;
  /**
   * Seed for drawing the points (default: `seed`). Same `seed`, other `sampleSeed`: new points around the
   * same centres, which is how queries are made.
   */
  readonly sampleSeed?: number;
}

/** n row-major vectors drawn from `clusters` gaussian blobs; centres are standard normal. */
export function clusteredVectors(opts: ClusteredOptions): Float32Array {
  const { n, dim, clusters, seed } = opts;
  const spread = opts.spread ?? 0.3;
  const centreRng = new SeededRandom(seed);
  const centres = new Float32Array(clusters * dim);
  for (let i = 0; i < centres.length; i++) centres[i] = centreRng.gaussian();
  const rng = opts.sampleSeed === undefined ? centreRng : new SeededRandom(opts.sampleSeed);
  const out = new Float32Array(n * dim);
  for (let i = 0; i < n; i++) {
    const c = rng.int(clusters) * dim;
    const o = i * dim;
    for (let j = 0; j < dim; j++) out[o + j] = centres[c + j]! + spread * rng.gaussian();
  }
  return out;
}

/**
 * n vectors as row arrays (what the SDK takes), around 8 centres in [-1, 1)^dim with uniform noise ±0.1:
 * the shape of data the e2e tests insert. Same seed → same rows.
 */
export function vectorRows(n: number, dim: number, seed = 1): number[][] {
  const rng = new SeededRandom(seed);
  const centers = Array.from({ length: 8 }, () => Array.from({ length: dim }, () => rng.next() * 2 - 1));
  return Array.from({ length: n }, (_, i) => {
    const c = centers[i % centers.length]!;
    return c.map((x) => x + (rng.next() - 0.5) * 0.2);
  });
}
