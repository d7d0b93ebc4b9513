import { describe, expect, it } from 'vitest';
import { ScalarIndex } from '../index/scalar/scalar-index.js';
import { MapBatch, type Column } from '../schema/types.js';
import { compileFilter, evaluateFilter, matchingRows, type ExprSchema } from './index.js';

describe('index plan over Timestamptz literals', () => {
  const n = 500;
  const base = BigInt(Date.parse('2025-01-01T00:00:00Z')) * 1000n;
  const col: Column = {
    kind: 'int64',
    data: BigInt64Array.from({ length: n }, (_, i) => base + BigInt(i) * 3_600_000_000n),
    valid: Uint8Array.from({ length: n }, (_, i) => Number(i % 7 !== 0)),
  };
  const batch = new MapBatch(n, new Map([['ts', col]]));
  const index = ScalarIndex.build(col, { indexType: 'STL_SORT' });
  const indexes = new Map([['ts', index]]);
  const schema = (timezone?: string): ExprSchema => ({
    fields: [{ name: 'ts', dataType: 'Timestamptz', nullable: true, isPrimaryKey: false }],
    dynamicField: false,
    timezone,
  });

  it('answers ISO and string literals (in the schema zone) through the index, as the scan does', () => {
    for (const tz of [undefined, 'Asia/Shanghai', 'America/New_York']) {
      for (const f of [
        "ts > ISO '2025-01-10T00:00:00'",
        "ts <= '2025-01-03T05:00:00'",
        "ISO '2025-01-02T00:00:00' <= ts < ISO '2025-01-04T00:00:00+02:00'",
        "ts == ISO '2025-01-05T10:00:00'",
      ]) {
        const compiled = compileFilter(f, schema(tz))!;
        expect(matchingRows(compiled, batch, indexes, 1), `${f} ${tz}`).toBeDefined();
        expect([...evaluateFilter(compiled, batch, indexes, 1)], `${f} ${tz}`).toEqual([...compiled.evaluate(batch)]);
      }
    }
    // Shanghai is 8 hours ahead: its 08:00 is UTC midnight, the first row.
    const at8 = compileFilter("ts == ISO '2025-01-01T08:00:00'", schema('Asia/Shanghai'))!;
    expect([...matchingRows(at8, batch, indexes, 1)!]).toEqual([]); // row 0 is null (i % 7 == 0)
    const at9 = compileFilter("ts == ISO '2025-01-01T09:00:00'", schema('Asia/Shanghai'))!;
    expect([...matchingRows(at9, batch, indexes, 1)!]).toEqual([1]);
  });
});
