import { describe, expect, it } from 'vitest';

import { clusteredVectors } from '../testing/index.js';
import { flatSearch } from './flat-search.js';
import { buildIndex, openIndexBytes } from './index-factory.js';
import { parseIndexParams } from './index-params.js';

const N = 1500;
const DIM = 16;
const K = 10;

/** HNSW_PQ with codes wider than a byte (nbits 9..16 are stored as two bytes each). */
describe('HNSW_PQ nbits > 8', () => {
  const data = clusteredVectors({ n: N, dim: DIM, clusters: 20, seed: 5 });
  const queries = clusteredVectors({ n: 20, dim: DIM, clusters: 20, seed: 5, sampleSeed: 6 });
  const exact = flatSearch(data, DIM, 'L2', queries, 20, { k: K });
  const recall = (hits: { rows: Int32Array }[]): number => {
    let hit = 0;
    hits.forEach((h, i) => {
      const truth = new Set(exact[i]!.rows);
      for (const r of h.rows) if (truth.has(r)) hit++;
    });
    return hit / (hits.length * K);
  };

  it('accepts nbits up to 16, searches by its two-byte codes and reloads from its file unchanged', () => {
    expect(parseIndexParams('HNSW_PQ', { m: 8, nbits: 16 })).toMatchObject({ nbits: 16 });
    const index = buildIndex(data, DIM, 'L2', 'HNSW_PQ', { M: 16, efConstruction: 100, m: 8, nbits: 9 }, { threads: 1 });
    const coded = index.search(queries, 20, { k: K, ef: 64 });
    expect(recall(coded)).toBeGreaterThan(0.5);
    const loaded = openIndexBytes(index.toBytes(), 'wide.qvx', { dim: DIM, metric: 'L2', rows: N });
    expect(loaded.search(queries, 20, { k: K, ef: 64 })).toEqual(coded);
    index.dispose();
  });
});
