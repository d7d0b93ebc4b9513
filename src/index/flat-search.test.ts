import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import { isQuiverError } from '../common/errors.js';
import { FlatIndex } from './flat-index.js';
import { allowedRows, countAllowed, flatSearch } from './flat-search.js';
import { naiveScore, naiveSearch } from './reference.test-util.js';
import { SeededRandom, clusteredVectors } from '../testing/index.js';
import type { Hits, MetricType, SearchOptions } from './types.js';

const METRICS: readonly MetricType[] = ['L2', 'IP', 'COSINE'];

function gaussians(rng: SeededRandom, count: number): Float32Array {
  const out = new Float32Array(count);
  for (let i = 0; i < count; i++) out[i] = rng.gaussian();
  return out;
}

/**
 * Same scores position by position, and every returned row really has its reported score. Rows are compared
 * by identity only where scores are clearly apart from their neighbours in the full ranking: mathematically
 * equal scores (cosine of parallel vectors) can round differently along the two computations and swap.
 */
function expectSameHits(actual: Hits[], ranking: Hits[], k: number, trueScore: (qi: number, row: number) => number): void {
  expect(actual.length).toBe(ranking.length);
  const tol = (x: number) => 1e-5 * Math.max(1, Math.abs(x));
  for (let qi = 0; qi < ranking.length; qi++) {
    const a = actual[qi]!;
    const all = ranking[qi]!;
    const n = Math.min(k, all.rows.length);
    expect(a.rows.length).toBe(n);
    expect(new Set(a.rows).size).toBe(n);
    for (let i = 0; i < n; i++) {
      const e = all.scores[i]!;
      expect(Math.abs(a.scores[i]! - e)).toBeLessThanOrEqual(tol(e));
      expect(Math.abs(a.scores[i]! - trueScore(qi, a.rows[i]!))).toBeLessThanOrEqual(tol(e));
      const prev = all.scores[i - 1];
      const next = all.scores[i + 1];
      const isolated = (prev === undefined || Math.abs(prev - e) > 2 * tol(e)) && (next === undefined || Math.abs(next - e) > 2 * tol(e));
      if (isolated) expect(a.rows[i]).toBe(all.rows[i]);
    }
  }
}

/** Checks both entry points against the naive reference for one request. */
function check(vectors: Float32Array, dim: number, metric: MetricType, queries: Float32Array, nq: number, opts: SearchOptions): Hits[] {
  const ranking = naiveSearch(vectors, dim, metric, queries, nq, { ...opts, k: Number.MAX_SAFE_INTEGER });
  const score = scorer(vectors, dim, metric, queries);
  const results = bothWays(vectors, dim, metric, queries, nq, opts);
  for (const actual of results) expectSameHits(actual, ranking, opts.k, score);
  return results[0]!;
}

function scorer(vectors: Float32Array, dim: number, metric: MetricType, queries: Float32Array) {
  return (qi: number, row: number): number => naiveScore(metric, queries, qi * dim, vectors, row * dim, dim);
}

/** Both entry points (flatSearch straight over the column, FlatIndex with precomputed norms). */
function bothWays(vectors: Float32Array, dim: number, metric: MetricType, queries: Float32Array, nq: number, opts: SearchOptions): Hits[][] {
  return [flatSearch(vectors, dim, metric, queries, nq, opts), new FlatIndex(vectors, dim, metric).search(queries, nq, opts)];
}

describe('flatSearch', () => {
  it('matches the naive reference for every metric, allow-list and range (property)', () => {
    const config = fc.record({
      n: fc.integer({ min: 0, max: 70 }),
      dim: fc.integer({ min: 1, max: 19 }),
      nq: fc.integer({ min: 0, max: 9 }),
      k: fc.integer({ min: 1, max: 80 }),
      metric: fc.constantFrom<MetricType>('L2', 'IP', 'COSINE'),
      seed: fc.integer({ min: 0, max: 2 ** 31 - 1 }),
      allowMode: fc.constantFrom('none', 'some', 'nothing'),
      rangeMode: fc.constantFrom('none', 'radius', 'both'),
    });
    fc.assert(
      fc.property(config, (c) => {
        const rng = new SeededRandom(c.seed);
        const vectors = gaussians(rng, c.n * c.dim);
        // Duplicate rows make exact ties, which must be broken by the smaller row offset.
        if (c.n > 4) vectors.copyWithin(c.dim * 3, 0, c.dim);
        const queries = gaussians(rng, c.nq * c.dim);
        let allow: Uint8Array | undefined;
        if (c.allowMode !== 'none') {
          allow = new Uint8Array(c.n);
          if (c.allowMode === 'some') for (let i = 0; i < c.n; i++) allow[i] = rng.next() < 0.5 ? 1 : 0;
        }
        const opts: { k: number; allow?: Uint8Array; radius?: number; rangeFilter?: number } = { k: c.k };
        if (allow !== undefined) opts.allow = allow;
        if (c.rangeMode !== 'none') {
          const spread = c.metric === 'L2' ? 2 * c.dim : c.metric === 'IP' ? Math.sqrt(c.dim) : 0.5;
          const a = (rng.next() - (c.metric === 'L2' ? 0 : 0.5)) * spread;
          const b = a + (c.metric === 'L2' ? -1 : 1) * rng.next() * spread;
          opts.radius = c.metric === 'L2' ? a + 0.5 * c.dim : a;
          if (c.rangeMode === 'both') opts.rangeFilter = c.metric === 'L2' ? Math.max(0, b + 0.5 * c.dim) - 1e-3 : b + 1e-3;
          if (opts.rangeFilter !== undefined && c.metric === 'L2' && !(opts.rangeFilter < opts.radius)) delete opts.rangeFilter;
        }
        check(vectors, c.dim, c.metric, queries, c.nq, opts);
      }),
      { seed: 20240611, numRuns: 300 },
    );
  });

  it('matches the reference across many row blocks, odd dims and nq not a multiple of four', () => {
    for (const [dim, nq] of [
      [128, 10],
      [13, 5],
      [40, 1],
      [7, 6],
    ] as const) {
      const vectors = clusteredVectors({ n: 3001, dim, clusters: 20, seed: dim });
      const queries = clusteredVectors({ n: nq, dim, clusters: 20, seed: dim + 1 });
      for (const metric of METRICS) {
        check(vectors, dim, metric, queries, nq, { k: 17 });
      }
    }
  });

  it('keeps only allowed rows, and searches a sparse allow-list exactly', () => {
    const dim = 24;
    const vectors = clusteredVectors({ n: 2000, dim, clusters: 10, seed: 5 });
    const queries = clusteredVectors({ n: 7, dim, clusters: 10, seed: 6 });
    const allow = new Uint8Array(2000);
    for (let i = 0; i < 2000; i += 97) allow[i] = 1;
    for (const metric of METRICS) {
      for (const h of check(vectors, dim, metric, queries, 7, { k: 30, allow })) {
        expect(h.rows.length).toBe(21);
        for (const r of h.rows) expect(allow[r]).toBe(1);
      }
    }
  });

  it('reads allow-lists word-wise and byte-wise alike (any nonzero byte allows, any offset)', () => {
    const rng = new SeededRandom(9);
    const backing = new Uint8Array(203);
    for (let i = 0; i < backing.length; i++) backing[i] = rng.next() < 0.2 ? (rng.next() < 0.5 ? 1 : 255) : 0;
    for (const [offset, length] of [
      [0, 203],
      [1, 150],
      [4, 3],
      [3, 0],
      [8, 195],
    ] as const) {
      const allow = backing.subarray(offset, offset + length);
      const expected: number[] = [];
      allow.forEach((v, i) => {
        if (v !== 0) expected.push(i);
      });
      expect(countAllowed(allow)).toBe(expected.length);
      expect(Array.from(allowedRows(allow))).toEqual(expected);
    }
  });

  it('scores zero vectors under COSINE as 0, never NaN', () => {
    const dim = 4;
    const vectors = new Float32Array([0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0]);
    const zeroQuery = new Float32Array(dim);
    for (const [hits] of bothWays(vectors, dim, 'COSINE', zeroQuery, 1, { k: 4 })) {
      expect(Array.from(hits!.scores)).toEqual([0, 0, 0, 0]);
      expect(Array.from(hits!.rows)).toEqual([0, 1, 2, 3]);
    }
    const [hits] = flatSearch(vectors, dim, 'COSINE', new Float32Array([1, 0, 0, 0]), 1, { k: 4 });
    expect(Array.from(hits!.rows)).toEqual([1, 0, 2, 3]);
    expect(Array.from(hits!.scores)).toEqual([1, 0, 0, 0]);
    expect(Object.is(hits!.scores[1], 0)).toBe(true);
  });

  it('follows Milvus score conventions', () => {
    const vectors = new Float32Array([1, 0, 0, 2, 3, 4]);
    const q = new Float32Array([1, 1]);
    const [l2] = flatSearch(vectors, 2, 'L2', q, 1, { k: 3 });
    expect(Array.from(l2!.rows)).toEqual([0, 1, 2]);
    expect(Array.from(l2!.scores)).toEqual([1, 2, 13]);
    const [ip] = flatSearch(vectors, 2, 'IP', q, 1, { k: 3 });
    expect(Array.from(ip!.rows)).toEqual([2, 1, 0]);
    expect(Array.from(ip!.scores)).toEqual([7, 2, 1]);
    const [cos] = flatSearch(vectors, 2, 'COSINE', q, 1, { k: 2 });
    expect(Array.from(cos!.rows)).toEqual([2, 0]);
    expect(cos!.scores[0]).toBeCloseTo(naiveScore('COSINE', q, 0, vectors, 4, 2), 6);
  });

  it('applies Milvus range semantics at the bounds', () => {
    // L2 distances from the origin: 0, 1, 4, 9, 16
    const vectors = new Float32Array([0, 1, 2, 3, 4]);
    const q = new Float32Array([0]);
    const l2 = (radius: number, rangeFilter?: number) =>
      Array.from(flatSearch(vectors, 1, 'L2', q, 1, { k: 10, radius, ...(rangeFilter === undefined ? {} : { rangeFilter }) })[0]!.scores);
    expect(l2(9)).toEqual([0, 1, 4]);
    expect(l2(9, 1)).toEqual([1, 4]);
    expect(l2(16.5, 4)).toEqual([4, 9, 16]);
    // IP with q = 1: scores 0..4; keeps radius < s <= rangeFilter
    const ip = (radius: number, rangeFilter?: number) =>
      Array.from(
        flatSearch(vectors, 1, 'IP', new Float32Array([1]), 1, { k: 2, radius, ...(rangeFilter === undefined ? {} : { rangeFilter }) })[0]!.scores,
      );
    expect(ip(1)).toEqual([4, 3]);
    expect(ip(1, 3)).toEqual([3, 2]);
    expect(ip(3, 4)).toEqual([4]);
  });

  it('rejects bad requests with the offending value in the reason', () => {
    const vectors = new Float32Array(8);
    const q = new Float32Array(4);
    const fails = (f: () => unknown, kind: string, text: string) => {
      try {
        f();
      } catch (e) {
        expect(isQuiverError(e)).toBe(true);
        expect((e as Error & { kind: string }).kind).toBe(kind);
        expect((e as Error).message).toContain(text);
        return;
      }
      throw new Error('expected a QuiverError');
    };
    fails(() => flatSearch(vectors, 4, 'L2', q, 1, { k: 0 }), 'ParameterInvalid', 'got 0');
    fails(() => flatSearch(vectors, 4, 'L2', q, 1, { k: 1.5 }), 'ParameterInvalid', '1.5');
    fails(() => flatSearch(vectors, 4, 'L2', q, 2, { k: 1 }), 'DimensionMismatch', '2 * 4');
    fails(() => flatSearch(vectors, 3, 'L2', q, 1, { k: 1 }), 'DimensionMismatch', 'dim 3');
    fails(() => flatSearch(vectors, 4, 'L2', q, 1, { k: 1, allow: new Uint8Array(3) }), 'ParameterInvalid', '3 rows');
    fails(() => flatSearch(vectors, 4, 'L2', q, 1, { k: 1, radius: 1, rangeFilter: 2 }), 'ParameterInvalid', 'range_filter 2');
    fails(() => flatSearch(vectors, 4, 'IP', q, 1, { k: 1, radius: 1, rangeFilter: 0.5 }), 'ParameterInvalid', '0.5');
    fails(() => flatSearch(vectors, 4, 'IP', q, 1, { k: 1, rangeFilter: 0.5 }), 'ParameterInvalid', 'without radius');
    fails(() => flatSearch(vectors, 4, 'IP', q, 1, { k: 1, ef: 0 }), 'ParameterInvalid', 'ef');
    fails(() => flatSearch(vectors, 4, 'HAMMING' as MetricType, q, 1, { k: 1 }), 'MetricNotFound', 'HAMMING');
  });

  it('returns empty hits for an empty column and for nq = 0', () => {
    expect(flatSearch(new Float32Array(0), 3, 'L2', new Float32Array(6), 2, { k: 5 }).map((h) => h.rows.length)).toEqual([0, 0]);
    expect(flatSearch(new Float32Array(6), 3, 'L2', new Float32Array(0), 0, { k: 5 })).toEqual([]);
  });
});
