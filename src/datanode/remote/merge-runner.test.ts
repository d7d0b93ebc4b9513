import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { rangesOfRows, rowsOfRanges } from './merge-runner.js';

describe('kept-row ranges of a key merge', () => {
  it('round-trips any ascending row set', () => {
    fc.assert(
      fc.property(fc.uniqueArray(fc.integer({ min: 0, max: 5_000 }), { maxLength: 300 }), (rows) => {
        const sorted = [...rows].sort((a, b) => a - b);
        const ranges = rangesOfRows(sorted);
        expect([...rowsOfRanges(ranges)]).toEqual(sorted);
        // Adjacent rows share a range: never more pairs than rows.
        expect(ranges.length / 2).toBeLessThanOrEqual(sorted.length);
      }),
    );
  });

  it('refuses ranges out of order, overlapping or empty', () => {
    expect(() => rowsOfRanges([5, 3])).toThrow(/out of order/);
    expect(() => rowsOfRanges([0, 4, 3, 6])).toThrow(/out of order/);
    expect(() => rowsOfRanges([1])).toThrow(/pairs/);
    expect(rangesOfRows([0, 1, 2, 7, 9, 10])).toEqual([0, 3, 7, 8, 9, 11]);
  });
});
