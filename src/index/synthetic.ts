/**
 * Seeded synthetic vectors for tests and benchmarks. Clustered data (gaussian blobs around random centres)
 * is what makes approximate search hard in a realistic way; uniform random vectors are nearly equidistant.
 */

/** mulberry32: tiny, fast, good enough for test data, and identical on every platform for a given seed. */
export class SeededRandom {
  #state: number;
  #spare: number | undefined;

  constructor(seed: number) {
    this.#state = seed >>> 0;
  }

  /** Uniform in [0, 1). */
  next(): number {
    this.#state = (this.#state + 0x6d2b79f5) >>> 0;
    let t = this.#state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** Standard normal (Box-Muller, the second value of each pair is kept for the next call). */
  gaussian(): number {
    const spare = this.#spare;
    if (spare !== undefined) {
      this.#spare = undefined;
      return spare;
    }
    let u = 0;
    while (u === 0) u = this.next();
    const v = this.next();
    const r = Math.sqrt(-2 * Math.log(u));
    this.#spare = r * Math.sin(2 * Math.PI * v);
    return r * Math.cos(2 * Math.PI * v);
  }

  /** Uniform integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
}

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
