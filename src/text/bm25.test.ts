import * as zlib from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { seededRandom } from '../testing/index.js';
import { createAnalyzer } from './analyzer.js';
import { Bm25ColumnIndex, bm25ParamsOf, hashToken, idf, termFrequencies, weightQuery } from './bm25.js';

describe('BM25', () => {
  it('hashes tokens as Milvus does: CRC-32 of the first 100 UTF-8 bytes, mod 2^32 - 1', () => {
    expect(hashToken('hello')).toBe(0x3610a686);
    const long = 'x'.repeat(150);
    expect(hashToken(long)).toBe(zlib.crc32('x'.repeat(100)) % 0xffffffff);
    expect(hashToken('é'.repeat(60))).toBe(zlib.crc32(Buffer.from('é'.repeat(50))) % 0xffffffff);
  });

  it('turns a text into sorted term-frequency rows', () => {
    const row = termFrequencies(createAnalyzer({ type: 'english' }), 'Runs run the RUNNING dog');
    const run = hashToken('run');
    const dog = hashToken('dog');
    expect(Array.from(row.indices)).toEqual([run, dog].sort((a, b) => a - b));
    expect(row.values[Array.from(row.indices).indexOf(run)]).toBe(3);
    expect(row.values[Array.from(row.indices).indexOf(dog)]).toBe(1);
  });

  it('scores like the BM25 formula, with liveness masks applied to the statistics', () => {
    const rnd = seededRandom(3);
    const docs = Array.from({ length: 50 }, () => Array.from({ length: 1 + Math.floor(rnd() * 9) }, () => Math.floor(rnd() * 6)));
    const rows = docs.map((d) => {
      const m = new Map<number, number>();
      for (const t of d) m.set(t, (m.get(t) ?? 0) + 1);
      const idx = [...m.keys()].sort((a, b) => a - b);
      return { indices: Uint32Array.from(idx), values: Float32Array.from(idx.map((i) => m.get(i)!)) };
    });
    const live = Uint8Array.from(docs.map((_, i) => (i % 4 === 0 ? 0 : 1)));
    const index = new Bm25ColumnIndex(rows);
    const acc = { n: 0, totalLen: 0, df: new Map<number, number>() };
    index.addStats(live, [1, 4], acc);
    const liveDocs = docs.filter((_, i) => live[i] === 1);
    expect(acc.n).toBe(liveDocs.length);
    expect(acc.df.get(1)).toBe(liveDocs.filter((d) => d.includes(1)).length);
    const stats = { n: acc.n, avgdl: acc.totalLen / acc.n, df: acc.df };
    const query = { indices: Uint32Array.from([1, 4]), values: Float32Array.from([2, 1]) };
    const scores = index.score(weightQuery(query, stats), stats, { k1: 1.2, b: 0.75 }, live);
    docs.forEach((d, i) => {
      if (live[i] === 0 || !(d.includes(1) || d.includes(4))) return expect(scores.has(i)).toBe(false);
      let want = 0;
      for (const [t, qtf] of [
        [1, 2],
        [4, 1],
      ] as const) {
        const tf = d.filter((x) => x === t).length;
        if (tf > 0) want += (qtf * idf(stats.n, acc.df.get(t)!) * tf * 2.2) / (tf + 1.2 * (0.25 + (0.75 * d.length) / stats.avgdl));
      }
      expect(scores.get(i)).toBeCloseTo(want, 4);
    });
  });

  it('reads k1 and b from index params, nested or not, within Milvus ranges', () => {
    expect(bm25ParamsOf(undefined)).toEqual({ k1: 1.2, b: 0.75 });
    expect(bm25ParamsOf({ params: '{"bm25_k1":1.5,"bm25_b":0.3}' })).toEqual({ k1: 1.5, b: 0.3 });
    expect(bm25ParamsOf({ bm25_k1: '2' })).toEqual({ k1: 2, b: 0.75 });
    expect(() => bm25ParamsOf({ bm25_k1: 3 })).toThrow(/bm25_k1 3/);
    expect(() => bm25ParamsOf({ bm25_b: -1 })).toThrow(/bm25_b -1/);
  });
});
