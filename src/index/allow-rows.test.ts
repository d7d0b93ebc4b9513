import { describe, expect, it } from 'vitest';

import { clusteredVectors } from '../testing/index.js';
import { allowedRows, flatSearch } from './flat-search.js';
import { FlatIndex } from './flat-index.js';
import { attachVectors, buildIndex } from './index-factory.js';
import type { IndexType, VectorIndex } from './types.js';

const N = 2000;
const DIM = 16;

/**
 * An index-narrowed filter hands the vector index its candidate rows as a list (`allowRows`) beside the mask:
 * every index type must answer exactly as with the mask alone, on its exact path (few rows) and its
 * graph / list path (many rows).
 */
describe('allowRows beside an allow-list', () => {
  const data = clusteredVectors({ n: N, dim: DIM, clusters: 20, seed: 3 });
  const queries = clusteredVectors({ n: 5, dim: DIM, clusters: 20, seed: 4 });
  const indexes: [string, VectorIndex][] = [['FLAT', new FlatIndex(data, DIM, 'L2')]];
  for (const type of ['HNSW', 'HNSW_SQ', 'IVF_FLAT', 'IVF_SQ8'] as IndexType[]) {
    const index = buildIndex(data, DIM, 'L2', type, { M: 8, efConstruction: 40, nlist: 16 }, { threads: 1 });
    attachVectors(index, data);
    indexes.push([type, index]);
  }

  it('gives the same hits as the mask alone, for selective and broad lists', () => {
    for (const every of [97, 3]) {
      const allow = Uint8Array.from({ length: N }, (_, i) => (i % every === 0 ? 1 : 0));
      const allowRows = allowedRows(allow);
      for (const [type, index] of indexes) {
        const plain = index.search(queries, 5, { k: 10, allow, nprobe: 16 });
        expect(index.search(queries, 5, { k: 10, allow, allowRows, nprobe: 16 }), `${type} every ${every}`).toEqual(plain);
      }
      expect(flatSearch(data, DIM, 'L2', queries, 5, { k: 10, allow, allowRows })).toEqual(flatSearch(data, DIM, 'L2', queries, 5, { k: 10, allow }));
    }
  });

  it('a row list without its mask is a programming error', () => {
    expect(() => flatSearch(data, DIM, 'L2', queries, 5, { k: 10, allowRows: Int32Array.of(1, 2) })).toThrow(/assertion failed: allowRows/);
  });
});
