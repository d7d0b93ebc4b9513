import { describe, expect, it } from 'vitest';
import { seededRandom } from '../testing/index.js';
import type { Column, SparseRow } from '../schema/types.js';
import { hammingDistance, jaccardDistance } from './binary-index.js';
import { dropSmallest } from './sparse-index.js';
import { searchTypedColumn } from './typed-search.js';
import { bf16ToF32, f16ToF32, widenToFloat32 } from './vector-convert.js';

const rnd = seededRandom(5);

function bitsOf(b: Uint8Array): number[] {
  return Array.from(b).flatMap((x) => Array.from({ length: 8 }, (_, i) => (x >> i) & 1));
}

describe('binary, 16-bit and sparse search kernels', () => {
  it('HAMMING and JACCARD match a bit-by-bit count, and rank rows exactly', () => {
    const rows = 50;
    const w = 4;
    const data = Uint8Array.from({ length: rows * w }, () => Math.floor(rnd() * 256));
    const q = Uint8Array.from({ length: w }, () => Math.floor(rnd() * 256));
    const qb = bitsOf(q);
    for (const metric of ['HAMMING', 'JACCARD'] as const) {
      const ref = Array.from({ length: rows }, (_, r) => {
        const rb = bitsOf(data.subarray(r * w, (r + 1) * w));
        const diff = rb.filter((x, i) => x !== qb[i]).length;
        const inter = rb.filter((x, i) => x === 1 && qb[i] === 1).length;
        const union = rb.filter((x, i) => x === 1 || qb[i] === 1).length;
        const d = metric === 'HAMMING' ? diff : union === 0 ? 0 : 1 - inter / union;
        expect(metric === 'HAMMING' ? hammingDistance(q, 0, data, r * w, w) : jaccardDistance(q, 0, data, r * w, w)).toBeCloseTo(d, 6);
        return { r, d: Math.fround(d) };
      }).sort((a, b) => a.d - b.d || a.r - b.r);
      const col: Column = { kind: 'bytevec', vtype: 'BinaryVector', dim: w * 8, data };
      const [hits] = searchTypedColumn(col, metric, { kind: 'bytes', rows: [q] }, { k: 7 });
      expect(Array.from(hits!.rows)).toEqual(ref.slice(0, 7).map((x) => x.r));
      expect(() => searchTypedColumn(col, 'L2', { kind: 'bytes', rows: [q] }, { k: 1 })).toThrow(/L2 is not supported for BinaryVector/);
      // Range search keeps range_filter <= d < radius, as for L2.
      const radius = ref[10]!.d;
      const lo = ref[2]!.d;
      const [ranged] = searchTypedColumn(col, metric, { kind: 'bytes', rows: [q] }, { k: 50, radius, rangeFilter: lo });
      expect(Array.from(ranged!.rows)).toEqual(ref.filter((x) => x.d >= lo && x.d < radius).map((x) => x.r));
      expect(() => searchTypedColumn(col, metric, { kind: 'bytes', rows: [q] }, { k: 5, radius: 1, rangeFilter: 2 })).toThrow(/must be less than radius 1/);
    }
  });

  it('widens float16, bfloat16 and int8 bytes to float32', () => {
    expect(f16ToF32(0x3c00)).toBe(1);
    expect(f16ToF32(0xc000)).toBe(-2);
    expect(f16ToF32(0x0001)).toBeCloseTo(5.96e-8, 10);
    expect(bf16ToF32(0x3f80)).toBe(1);
    expect(bf16ToF32(0xc040)).toBe(-3);
    expect(Array.from(widenToFloat32('Int8Vector', Uint8Array.from([0, 1, 255, 128]), 4))).toEqual([0, 1, -1, -128]);
    expect(Array.from(widenToFloat32('Float16Vector', Uint8Array.from([0, 0x3c, 0, 0x40]), 2))).toEqual([1, 2]);
  });

  it('sparse IP matches a brute-force dot product over rows sharing a dimension', () => {
    const rows: SparseRow[] = Array.from({ length: 60 }, () => {
      const idx = [...new Set(Array.from({ length: 5 }, () => Math.floor(rnd() * 30)))].sort((a, b) => a - b);
      return { indices: Uint32Array.from(idx), values: Float32Array.from(idx.map(() => rnd() * 2)) };
    });
    const q = rows[3]!;
    const dot = (a: SparseRow, b: SparseRow): number | undefined => {
      let s = 0;
      let any = false;
      a.indices.forEach((i, j) => {
        const k = Array.from(b.indices).indexOf(i);
        if (k >= 0) {
          s += a.values[j]! * b.values[k]!;
          any = true;
        }
      });
      return any ? s : undefined;
    };
    const ref = rows
      .map((r, i) => ({ i, s: dot(q, r) }))
      .filter((x) => x.s !== undefined)
      .sort((a, b) => b.s! - a.s! || a.i - b.i);
    const [hits] = searchTypedColumn({ kind: 'sparse', data: rows }, 'IP', { kind: 'sparse', rows: [q] }, { k: 10 });
    expect(Array.from(hits!.rows)).toEqual(ref.slice(0, 10).map((x) => x.i));
    hits!.scores.forEach((s, j) => expect(s).toBeCloseTo(ref[j]!.s!, 4));
  });

  it('drop ratios drop the smallest |values| of a row', () => {
    const row = { indices: Uint32Array.from([1, 2, 3, 4]), values: Float32Array.from([0.1, -5, 0.2, 3]) };
    const kept = dropSmallest(row, 0.5);
    expect(Array.from(kept.indices)).toEqual([2, 4]);
    expect(dropSmallest(row, 0)).toBe(row);
  });
});
