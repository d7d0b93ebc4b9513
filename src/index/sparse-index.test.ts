import { describe, expect, it } from 'vitest';

import { isQuiverError } from '../common/errors.js';
import type { SparseRow } from '../schema/types.js';
import { SeededRandom } from '../testing/random.js';
import { SparseInvertedIndex, dropSmallest } from './sparse-index.js';
import { buildTypedIndex, hasTypedIndexFile, openTypedIndex } from './typed-index-file.js';
import type { Hits } from './types.js';

const N = 3000;
const DIMS = 2000;

/** Sparse rows with a skewed dimension distribution (a few common dimensions, a long tail), as text embeddings have. */
function rows(n: number, seed: number, nnzMax = 24, negative = false): SparseRow[] {
  const r = new SeededRandom(seed);
  return Array.from({ length: n }, () => {
    const nnz = 1 + Math.floor(r.next() * nnzMax);
    const dims = new Set<number>();
    while (dims.size < nnz) dims.add(Math.floor(DIMS * r.next() ** 3));
    const indices = Uint32Array.from([...dims].sort((a, b) => a - b));
    const values = Float32Array.from(indices, () => (negative && r.next() < 0.2 ? -1 : 1) * (0.05 + r.next()));
    return { indices, values };
  });
}

/** Exact IP top-k by brute force over every row (rows without overlap excluded), ties by row. */
function exact(data: readonly SparseRow[], q: SparseRow, k: number, allow?: Uint8Array): Hits {
  const scored: [number, number][] = [];
  data.forEach((row, r) => {
    if (allow && allow[r] === 0) return;
    let s = 0;
    let hit = false;
    for (let i = 0; i < q.indices.length; i++) {
      const j = row.indices.indexOf(q.indices[i]!);
      if (j < 0) continue;
      s += q.values[i]! * row.values[j]!;
      hit = true;
    }
    if (hit) scored.push([r, Math.fround(s)]);
  });
  scored.sort((a, b) => b[1] - a[1] || a[0] - b[0]);
  const top = scored.slice(0, k);
  return { rows: Int32Array.from(top, (x) => x[0]), scores: Float32Array.from(top, (x) => x[1]) };
}

const data = rows(N, 1);
const queries = rows(40, 2, 12);

describe('sparse inverted index (SPARSE_INVERTED_INDEX, SPARSE_WAND)', () => {
  it('both algorithms equal exact search at drop_ratio_search 0, with and without an allow-list, for several k', () => {
    const inverted = SparseInvertedIndex.build(data);
    const wand = SparseInvertedIndex.build(data, { type: 'SPARSE_WAND' });
    const allow = Uint8Array.from({ length: N }, (_, i) => (i % 3 === 0 ? 0 : 1));
    for (const k of [1, 10, 100]) {
      for (const q of queries) {
        const want = exact(data, q, k);
        expect(inverted.search([q], { k })[0]).toEqual(want);
        expect(wand.search([q], { k })[0]).toEqual(want);
        expect(wand.search([q], { k, allow })[0]).toEqual(exact(data, q, k, allow));
      }
    }
  });

  it('WAND equals exact with negative values too, and range search keeps radius < s <= range_filter', () => {
    const mixed = rows(N, 3, 24, true);
    const wand = SparseInvertedIndex.build(mixed, { type: 'SPARSE_WAND' });
    for (const q of rows(20, 4, 12, true)) {
      expect(wand.search([q], { k: 10 })[0]).toEqual(exact(mixed, q, 10));
      const all = exact(mixed, q, N);
      const want = all.scores.filter((s) => s > 0.2 && s <= 1.5).length;
      const got = wand.search([q], { k: N, radius: 0.2, rangeFilter: 1.5 })[0]!;
      expect(got.rows.length).toBe(want);
      for (const s of got.scores) expect(s > 0.2 && s <= 1.5).toBe(true);
    }
  });

  it('WAND prunes: it scores far fewer rows than the exhaustive path for a small k', () => {
    const inverted = SparseInvertedIndex.build(data);
    const wand = SparseInvertedIndex.build(data, { type: 'SPARSE_WAND' });
    let all = 0;
    let pruned = 0;
    for (const q of queries) {
      inverted.search([q], { k: 10, scored: (n) => (all += n) });
      wand.search([q], { k: 10, scored: (n) => (pruned += n) });
    }
    expect(pruned).toBeLessThan(all * 0.6);
  });

  it("drop_ratio_search trades recall for work; drop_ratio_build drops each row's smallest values", () => {
    const wand = SparseInvertedIndex.build(data, { type: 'SPARSE_WAND' });
    let hit = 0;
    for (const q of queries) {
      const want = new Set(exact(data, q, 10).rows);
      for (const r of wand.search([q], { k: 10, dropRatioSearch: 0.3 })[0]!.rows) if (want.has(r)) hit++;
    }
    expect(hit / (queries.length * 10)).toBeGreaterThan(0.6);
    const dropped = SparseInvertedIndex.build(data, { dropRatioBuild: 0.5 });
    const kept = data.reduce((n, r) => n + dropSmallest(r, 0.5).indices.length, 0);
    expect(dropped.postings).toBe(kept);
  });

  it('persists to an index file and reloads without a rebuild, giving the same hits; a file of another segment is refused', () => {
    const spec = { indexType: 'SPARSE_WAND', metric: 'IP' as const, buildParams: { dropRatioBuild: 0.1 } };
    expect(hasTypedIndexFile(spec)).toBe(true);
    expect(hasTypedIndexFile({ indexType: 'SPARSE_WAND', metric: 'BM25' })).toBe(false);
    expect(hasTypedIndexFile({ indexType: 'BIN_FLAT', metric: 'HAMMING' })).toBe(false);
    const built = buildTypedIndex({ kind: 'sparse', data }, spec);
    const bytes = built.toBytes();
    const loaded = openTypedIndex(bytes, 'seg.qvx', spec, { rows: N, dim: 0 });
    expect(loaded).toBeInstanceOf(SparseInvertedIndex);
    expect((loaded as SparseInvertedIndex).dropRatioBuild).toBe(0.1);
    for (const q of queries.slice(0, 10))
      expect((loaded as SparseInvertedIndex).search([q], { k: 10 })).toEqual((built as SparseInvertedIndex).search([q], { k: 10 }));
    let err: unknown;
    try {
      openTypedIndex(bytes, 'seg.qvx', spec, { rows: N + 1, dim: 0 });
    } catch (e) {
      err = e;
    }
    expect(isQuiverError(err) && err.kind).toBe('SegmentLoadFailed');
    expect(String((err as Error).message)).toMatch(/expected 3001/);
    // A BIN_IVF_FLAT file is not a sparse index.
    const bits = buildTypedIndex(
      { kind: 'bytevec', vtype: 'BinaryVector', dim: 16, data: new Uint8Array(2 * 50).fill(3) },
      {
        indexType: 'BIN_IVF_FLAT',
        metric: 'HAMMING',
        buildParams: { nlist: 4 },
      },
    );
    expect(() => openTypedIndex(bits.toBytes(), 'bits.qvx', spec, { rows: 50, dim: 0 })).toThrow(/dim|kind|sparse/);
  });
});
