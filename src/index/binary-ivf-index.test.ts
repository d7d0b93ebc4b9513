import { describe, expect, it } from 'vitest';

import { isQuiverError } from '../common/errors.js';
import { SeededRandom } from '../testing/random.js';
import { binarySearch, type BinaryMetric } from './binary-index.js';
import { BinaryIvfIndex } from './binary-ivf-index.js';
import type { Hits } from './types.js';

const WIDTH = 16; // dim 128
const N = 4000;
const NQ = 30;
const K = 10;

/** Clustered bit vectors: 20 random centres, each row flips every bit of its centre with probability 0.08. */
function clusteredBits(n: number, seed: number, centresSeed = 7): Uint8Array {
  const cr = new SeededRandom(centresSeed);
  const centres = Array.from({ length: 20 }, () => Uint8Array.from({ length: WIDTH }, () => Math.floor(cr.next() * 256)));
  const r = new SeededRandom(seed);
  const out = new Uint8Array(n * WIDTH);
  for (let i = 0; i < n; i++) {
    const c = centres[Math.floor(r.next() * centres.length)]!;
    for (let b = 0; b < WIDTH; b++) {
      let byte = c[b]!;
      for (let k = 0; k < 8; k++) if (r.next() < 0.08) byte ^= 1 << k;
      out[i * WIDTH + b] = byte;
    }
  }
  return out;
}

const data = clusteredBits(N, 1);
const qdata = clusteredBits(NQ, 2);
const queries = Array.from({ length: NQ }, (_, i) => qdata.subarray(i * WIDTH, (i + 1) * WIDTH));

/** Recall by score: a hit counts when its distance is within the exact k-th distance (ties make ids ambiguous). */
function recall(got: Hits[], exact: Hits[]): number {
  let hit = 0;
  for (let i = 0; i < exact.length; i++) {
    const kth = exact[i]!.scores[exact[i]!.scores.length - 1]!;
    for (const s of got[i]!.scores) if (s <= kth) hit++;
  }
  return hit / (exact.length * K);
}

describe.each(['HAMMING', 'JACCARD'] as const)('BIN_IVF_FLAT, %s', (metric: BinaryMetric) => {
  const index = BinaryIvfIndex.build(data, WIDTH, metric, 32);
  const exact = binarySearch(data, WIDTH, metric, queries, { k: K });

  it('recall@10 against exact search rises with nprobe; nprobe = nlist is exact', () => {
    const r2 = recall(index.search(queries, { k: K, nprobe: 2 }), exact);
    const r8 = recall(index.search(queries, { k: K, nprobe: 8 }), exact);
    expect(r8).toBeGreaterThanOrEqual(0.95);
    expect(r8).toBeGreaterThanOrEqual(r2);
    expect(index.search(queries, { k: K, nprobe: 32 })).toEqual(exact);
  });

  it('clusters for real: a probe of one list scans a fraction of the rows', () => {
    // With 20 well-separated clusters one list holds far fewer than all rows, so nprobe 1 cannot be a full scan.
    const one = index.search([queries[0]!], { k: N, nprobe: 1 })[0]!;
    expect(one.rows.length).toBeGreaterThan(0);
    expect(one.rows.length).toBeLessThan(N / 4);
  });

  it('the file round-trips without training and answers the same', () => {
    const bytes = index.toBytes();
    const loaded = BinaryIvfIndex.fromBytes(bytes, 'test', { dim: WIDTH * 8, metric, rows: N });
    expect(loaded.nlist).toBe(32);
    expect(loaded.search(queries, { k: K, nprobe: 4 })).toEqual(index.search(queries, { k: K, nprobe: 4 }));
    expect(() => BinaryIvfIndex.fromBytes(bytes, 'test', { dim: WIDTH * 8, metric, rows: N + 1 })).toThrow(/expected 4001/);
  });

  it('honours an allow-list and range bounds', () => {
    const allow = new Uint8Array(N);
    for (let i = 0; i < N; i += 2) allow[i] = 1;
    for (const h of index.search(queries, { k: K, allow, nprobe: 32 })) for (const r of h.rows) expect(allow[r]).toBe(1);
    const radius = exact[0]!.scores[5]!;
    for (const s of index.search([queries[0]!], { k: 100, radius, nprobe: 32 })[0]!.scores) expect(s).toBeLessThan(radius);
  });
});

it('BIN_IVF_FLAT refuses a bad nprobe with the valid range', () => {
  const index = BinaryIvfIndex.build(data.subarray(0, 100 * WIDTH), WIDTH, 'HAMMING', 4);
  let message = '';
  try {
    index.search([queries[0]!], { k: 1, nprobe: 0 });
  } catch (e) {
    if (isQuiverError(e)) message = e.message;
  }
  expect(message).toBe('nprobe must be an integer in [1, 65536], got 0');
  // nlist above the row count is clamped to the rows.
  expect(BinaryIvfIndex.build(data.subarray(0, 3 * WIDTH), WIDTH, 'HAMMING', 128).nlist).toBe(3);
});
