import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { type QuiverError, isQuiverError } from '../common/errors.js';
import { clusteredVectors } from '../testing/index.js';
import { flatSearch } from './flat-search.js';
import { HnswIndex } from './hnsw-index.js';
import { isIndexContainer } from './index-file.js';
import { buildIndex, openIndexBytes, openIndexFile } from './index-factory.js';
import { type IndexParams, parseIndexParams, validateForDim } from './index-params.js';
import { naiveSearch } from './reference.test-util.js';
import type { Hits, IndexType, MetricType, SearchOptions } from './types.js';

const METRICS: readonly MetricType[] = ['L2', 'IP', 'COSINE'];
const N = 3000;
const DIM = 32;
const NQ = 40;
const K = 10;

function recallAt(actual: Hits[], exact: Hits[]): number {
  let hit = 0;
  let total = 0;
  for (let i = 0; i < exact.length; i++) {
    const truth = new Set(exact[i]!.rows);
    for (const r of actual[i]!.rows) if (truth.has(r)) hit++;
    total += exact[i]!.rows.length;
  }
  return hit / total;
}

function errorOf(f: () => unknown): QuiverError {
  try {
    f();
  } catch (e) {
    if (isQuiverError(e)) return e;
    throw e;
  }
  throw new Error('expected a QuiverError');
}

const vectors = clusteredVectors({ n: N, dim: DIM, clusters: 30, seed: 11 });
const queries = clusteredVectors({ n: NQ, dim: DIM, clusters: 30, seed: 11, sampleSeed: 12 });

interface Case {
  readonly name: string;
  readonly type: IndexType;
  readonly params: Omit<IndexParams, 'type' | 'metric'>;
  readonly search: Omit<SearchOptions, 'k'>;
  readonly recallMin: number;
}

// Thresholds sit below what each type reaches on this set with these search params, and far above what a
// broken distance, list assignment or code would give (recall near nprobe/nlist or 0).
const CASES: readonly Case[] = [
  { name: 'HNSW', type: 'HNSW', params: { M: 16, efConstruction: 100 }, search: { ef: 64 }, recallMin: 0.95 },
  { name: 'HNSW_SQ FP16', type: 'HNSW_SQ', params: { M: 16, efConstruction: 100, sqType: 'FP16' }, search: { ef: 64 }, recallMin: 0.95 },
  { name: 'HNSW_SQ BF16', type: 'HNSW_SQ', params: { M: 16, efConstruction: 100, sqType: 'BF16' }, search: { ef: 64 }, recallMin: 0.9 },
  {
    name: 'HNSW_SQ SQ8 + refine',
    type: 'HNSW_SQ',
    params: { M: 16, efConstruction: 100, sqType: 'SQ8', refine: true, refineType: 'FP32' },
    search: { ef: 64, refineK: 4 },
    recallMin: 0.95,
  },
  { name: 'IVF_FLAT', type: 'IVF_FLAT', params: { nlist: 32 }, search: { nprobe: 8 }, recallMin: 0.9 },
  { name: 'IVF_SQ8', type: 'IVF_SQ8', params: { nlist: 32 }, search: { nprobe: 8 }, recallMin: 0.85 },
  { name: 'IVF_PQ', type: 'IVF_PQ', params: { nlist: 16, m: 16, nbits: 8 }, search: { nprobe: 8 }, recallMin: 0.5 },
  // PQ codes alone lose recall on cosine of this tight clustered set (brute force over the codes gives the same).
  { name: 'HNSW_PQ', type: 'HNSW_PQ', params: { M: 16, efConstruction: 100, m: 32, nbits: 8 }, search: { ef: 64 }, recallMin: 0.8 },
  {
    name: 'HNSW_PQ + refine',
    type: 'HNSW_PQ',
    params: { M: 16, efConstruction: 100, m: 32, nbits: 8, refine: true },
    search: { ef: 64, refineK: 4 },
    recallMin: 0.95,
  },
  { name: 'HNSW_PRQ', type: 'HNSW_PRQ', params: { M: 16, efConstruction: 100, m: 8, nbits: 8, nrq: 2 }, search: { ef: 64 }, recallMin: 0.6 },
  {
    name: 'HNSW_PRQ + refine',
    type: 'HNSW_PRQ',
    params: { M: 16, efConstruction: 100, m: 8, nbits: 6, nrq: 3, refine: true },
    search: { ef: 64, refineK: 4 },
    recallMin: 0.95,
  },
];

describe.each(CASES)('$name', (c) => {
  it.each(METRICS)('recall@10 against exact search, %s; the same answers after a save and reload', (metric) => {
    const exact = flatSearch(vectors, DIM, metric, queries, NQ, { k: K });
    const index = buildIndex(vectors, DIM, metric, c.type, c.params, { threads: 2 });
    expect(index.type).toBe(c.type);
    const hits = index.search(queries, NQ, { k: K, ...c.search });
    expect(recallAt(hits, exact)).toBeGreaterThanOrEqual(c.recallMin);
    for (const h of hits) {
      expect(h.rows.length).toBe(K);
      // Best first in the metric's direction.
      for (let i = 1; i < h.scores.length; i++) {
        if (metric === 'L2') expect(h.scores[i]!).toBeGreaterThanOrEqual(h.scores[i - 1]!);
        else expect(h.scores[i]!).toBeLessThanOrEqual(h.scores[i - 1]!);
      }
    }
    const bytes = index.toBytes();
    expect(isIndexContainer(bytes)).toBe(true);
    const loaded = openIndexBytes(bytes, 'test', { dim: DIM, metric, rows: N });
    if (c.params.refine === true && 'attachVectors' in loaded) (loaded as { attachVectors(v: Float32Array): void }).attachVectors(vectors);
    expect(loaded.type).toBe(c.type);
    expect(loaded.search(queries, NQ, { k: K, ...c.search })).toEqual(hits);
    // The header is checked against the segment's record before anything else is trusted.
    expect(errorOf(() => openIndexBytes(bytes, 'test', { dim: DIM, metric, rows: N + 1 })).message).toContain(`expected ${N + 1}`);
    expect(errorOf(() => openIndexBytes(bytes, 'test', { dim: DIM + 1, metric, rows: N })).message).toContain('dim');
  });

  it('honours an allow-list: only allowed rows, as many as exist up to k', () => {
    const index = buildIndex(vectors, DIM, 'L2', c.type, c.params, { threads: 1 });
    const allow = new Uint8Array(N);
    for (let i = 0; i < N; i += 3) allow[i] = 1;
    const hits = index.search(queries, NQ, { k: K, allow, ...c.search });
    const exact = naiveSearch(vectors, DIM, 'L2', queries, NQ, { k: K, allow });
    for (const h of hits) for (const r of h.rows) expect(allow[r]).toBe(1);
    expect(recallAt(hits, exact)).toBeGreaterThanOrEqual(c.recallMin - 0.1);
    const none = index.search(queries.subarray(0, DIM), 1, { k: K, allow: new Uint8Array(N), ...c.search });
    expect(none[0]!.rows.length).toBe(0);
  });
});

describe('range search on the usearch graph and IVF lists', () => {
  it.each(['HNSW', 'IVF_FLAT'] as const)('%s keeps rangeFilter <= d < radius (L2) and at most k hits', (type) => {
    const params = type === 'HNSW' ? { M: 16, efConstruction: 100 } : { nlist: 8 };
    const index = buildIndex(vectors, DIM, 'L2', type, params, { threads: 2 });
    const exact = flatSearch(vectors, DIM, 'L2', queries, NQ, { k: 50 });
    const radius = exact[0]!.scores[20]!;
    const rangeFilter = exact[0]!.scores[2]!;
    const hits = index.search(queries.subarray(0, DIM), 1, { k: 50, radius, rangeFilter, ef: 200, nprobe: 8 });
    expect(hits[0]!.rows.length).toBeGreaterThan(0);
    for (const s of hits[0]!.scores) {
      expect(s).toBeLessThan(radius);
      expect(s).toBeGreaterThanOrEqual(rangeFilter);
    }
  });
});

describe('index files written before the versioned container', () => {
  let dir: string;
  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'quiver-legacy-'));
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('a raw hnswlib file (the old build path) loads from a path and from bytes, without a rebuild', () => {
    const old = HnswIndex.build(vectors, DIM, 'COSINE', { M: 16, efConstruction: 100 });
    const file = path.join(dir, 'hnsw.bin');
    old.save(file);
    const expected = old.search(queries, NQ, { k: K, ef: 64 });
    const bytes = fs.readFileSync(file);
    expect(isIndexContainer(bytes)).toBe(false);
    const fromFile = openIndexFile(file, { dim: DIM, metric: 'COSINE', rows: N });
    const fromBytes = openIndexBytes(bytes, file, { dim: DIM, metric: 'COSINE', rows: N });
    expect(fromFile).toBeInstanceOf(HnswIndex);
    expect(fromFile.search(queries, NQ, { k: K, ef: 64 })).toEqual(expected);
    expect(fromBytes.search(queries, NQ, { k: K, ef: 64 })).toEqual(expected);
  });

  it('a new container file loads from a path', () => {
    const index = buildIndex(vectors, DIM, 'IP', 'IVF_SQ8', { nlist: 16 }, { threads: 1 });
    const file = path.join(dir, 'ivf_sq8.qvx');
    fs.writeFileSync(file, index.toBytes());
    const loaded = openIndexFile(file, { dim: DIM, metric: 'IP', rows: N });
    expect(loaded.search(queries, NQ, { k: K })).toEqual(index.search(queries, NQ, { k: K }));
  });

  it('a container of an unknown format version is refused with the reason', () => {
    const bytes = buildIndex(vectors, DIM, 'L2', 'IVF_FLAT', { nlist: 4 }, { threads: 1 }).toBytes();
    bytes[6] = 99;
    expect(errorOf(() => openIndexBytes(bytes, 'x', { dim: DIM, metric: 'L2', rows: N })).message).toContain('format version 99');
  });
});

describe('index parameters (Milvus names and ranges)', () => {
  it('parses HNSW_SQ, IVF_FLAT, IVF_SQ8 and IVF_PQ with their defaults', () => {
    expect(parseIndexParams('HNSW_SQ', { metric_type: 'L2' })).toEqual({
      type: 'HNSW_SQ',
      metric: 'L2',
      M: 16,
      efConstruction: 200,
      sqType: 'SQ8',
      refine: false,
      refineType: 'FP32',
    });
    expect(parseIndexParams('hnsw_sq', { sq_type: 'fp16', refine: 'true', refine_type: 'FP32' })).toMatchObject({ sqType: 'FP16', refine: true });
    expect(parseIndexParams('IVF_FLAT', { metric_type: 'IP' })).toEqual({ type: 'IVF_FLAT', metric: 'IP', nlist: 128 });
    expect(parseIndexParams('IVF_SQ8', { nlist: '1024' })).toEqual({ type: 'IVF_SQ8', metric: 'COSINE', nlist: 1024 });
    expect(parseIndexParams('IVF_PQ', { params: '{"nlist": 64, "m": 8}' })).toEqual({ type: 'IVF_PQ', metric: 'COSINE', nlist: 64, m: 8, nbits: 8 });
    expect(parseIndexParams('AUTOINDEX', {}).type).toBe('HNSW');
  });

  it('answers wrong parameters with the valid range', () => {
    expect(errorOf(() => parseIndexParams('IVF_FLAT', { nlist: 0 })).message).toBe('nlist must be an integer in [1, 65536], got 0');
    expect(errorOf(() => parseIndexParams('IVF_SQ8', { nlist: '70000' })).message).toContain('[1, 65536]');
    expect(errorOf(() => parseIndexParams('IVF_PQ', { m: 8, nbits: 17 })).message).toBe('nbits must be an integer in [1, 16], got 17');
    expect(errorOf(() => parseIndexParams('IVF_PQ', {})).message).toContain('IVF_PQ needs m');
    expect(errorOf(() => validateForDim(parseIndexParams('IVF_PQ', { m: 5 }), 32)).message).toBe(
      'IVF_PQ m 5 must divide the dimension 32; valid: 1, 2, 4, 8, 16, 32',
    );
    expect(errorOf(() => parseIndexParams('HNSW_SQ', { sq_type: 'SQ4' })).message).toBe('sq_type must be one of SQ8, FP16, BF16, got "SQ4"');
    expect(errorOf(() => parseIndexParams('HNSW_SQ', { sq_type: 'FP16', refine: 'true', refine_type: 'SQ8' })).message).toBe(
      'refine_type SQ8 must be more precise than sq_type FP16; valid: FP32',
    );
    expect(errorOf(() => parseIndexParams('HNSW_SQ', { refine: 'yes' })).message).toBe('refine must be true or false, got "yes"');
    expect(errorOf(() => parseIndexParams('DISKANN', {})).message).toContain(
      'supported: FLAT, HNSW, HNSW_SQ, HNSW_PQ, HNSW_PRQ, IVF_FLAT, IVF_SQ8, IVF_PQ, AUTOINDEX',
    );
  });

  it('parses HNSW_PQ and HNSW_PRQ with Milvus defaults and refuses bad values with the valid range', () => {
    expect(parseIndexParams('HNSW_PQ', { metric_type: 'L2' })).toEqual({
      type: 'HNSW_PQ',
      metric: 'L2',
      M: 16,
      efConstruction: 200,
      m: 32,
      nbits: 8,
      refine: false,
      refineType: 'FP32',
    });
    expect(parseIndexParams('hnsw_prq', { refine: 'true', refine_type: 'fp16' })).toMatchObject({
      m: 2,
      nrq: 2,
      nbits: 8,
      refine: true,
      refineType: 'FP16',
    });
    expect(errorOf(() => parseIndexParams('HNSW_PQ', { nbits: 17 })).message).toBe('nbits must be an integer in [1, 16], got 17');
    expect(errorOf(() => parseIndexParams('HNSW_PRQ', { nrq: 17 })).message).toBe('nrq must be an integer in [1, 16], got 17');
    expect(errorOf(() => parseIndexParams('HNSW_PRQ', { nrq: 0 })).message).toBe('nrq must be an integer in [1, 16], got 0');
    expect(errorOf(() => parseIndexParams('HNSW_PQ', { M: 1 })).message).toBe('M must be an integer in [2, 2048], got 1');
    expect(errorOf(() => parseIndexParams('HNSW_PQ', { refine_type: 'SQ4' })).message).toBe('refine_type must be one of SQ8, FP16, BF16, FP32, got "SQ4"');
    expect(errorOf(() => validateForDim(parseIndexParams('HNSW_PQ', { m: 5 }), 32)).message).toBe(
      'HNSW_PQ m 5 must divide the dimension 32; valid: 1, 2, 4, 8, 16, 32',
    );
    expect(errorOf(() => validateForDim(parseIndexParams('HNSW_PRQ', {}), 15)).message).toContain('HNSW_PRQ m 2 must divide the dimension 15');
  });

  it('refuses a damaged HNSW_PQ file with the reason', () => {
    const bytes = buildIndex(vectors, DIM, 'L2', 'HNSW_PQ', { M: 8, efConstruction: 32, m: 8, nbits: 4 }, { threads: 1 }).toBytes();
    const ok = openIndexBytes(bytes, 'x', { dim: DIM, metric: 'L2', rows: N });
    expect(ok.type).toBe('HNSW_PQ');
    // Cut the last section short: the header's lengths no longer fit the file.
    expect(errorOf(() => openIndexBytes(bytes.subarray(0, bytes.length - 64), 'x', { dim: DIM, metric: 'L2', rows: N })).message).toContain(
      'past the file',
    );
  });

  it('answers wrong search parameters with the valid range', () => {
    const ivf = buildIndex(vectors, DIM, 'L2', 'IVF_FLAT', { nlist: 4 }, { threads: 1 });
    expect(errorOf(() => ivf.search(queries.subarray(0, DIM), 1, { k: 1, nprobe: 0 })).message).toBe('nprobe must be an integer in [1, 65536], got 0');
    const sq = buildIndex(vectors, DIM, 'L2', 'HNSW_SQ', { sqType: 'SQ8', refine: true }, { threads: 1 });
    expect(errorOf(() => sq.search(queries.subarray(0, DIM), 1, { k: 1, refineK: 1000 })).message).toBe('refine_k must be an integer in [1, 64], got 1000');
  });
});

describe('small HNSW segments', () => {
  it('are searched exactly once their vectors are attached (a tiny multi-threaded graph may hide a row)', () => {
    const n = 500;
    const small = clusteredVectors({ n, dim: DIM, clusters: 5, seed: 21 });
    const queries = clusteredVectors({ n: NQ, dim: DIM, clusters: 5, seed: 21, sampleSeed: 22 });
    for (const metric of METRICS) {
      const index = buildIndex(small, DIM, metric, 'HNSW', { M: 4, efConstruction: 8 }, { threads: 2 });
      const loaded = openIndexBytes(index.toBytes(), 'test', { dim: DIM, metric, rows: n }) as unknown as {
        attachVectors(v: Float32Array): void;
        search(q: Float32Array, nq: number, o: SearchOptions): Hits[];
      };
      loaded.attachVectors(small);
      const allow = new Uint8Array(n).fill(1);
      allow[3] = 0;
      expect(loaded.search(queries, NQ, { k: K })).toEqual(flatSearch(small, DIM, metric, queries, NQ, { k: K }));
      expect(loaded.search(queries, NQ, { k: K, allow })).toEqual(flatSearch(small, DIM, metric, queries, NQ, { k: K, allow }));
    }
  });
});
