import RelateOp from 'jsts/org/locationtech/jts/operation/relate/RelateOp.js';
import { describe, expect, it } from 'vitest';
import { QuiverError } from '../common/errors.js';
import { WktCodec } from '../schema/geometry.js';
import { addInterval, formatTimestamptz, parseInterval, parseTimestamptz } from '../schema/timestamptz.js';
import { MapBatch, type Column } from '../schema/types.js';
import { haversineMetres } from './geo-functions.js';
import { compileFilter, type ExprSchema } from './index.js';

const schema: ExprSchema = {
  dynamicField: false,
  fields: [
    { name: 'id', dataType: 'Int64', nullable: false, isPrimaryKey: true },
    { name: 'geo', dataType: 'Geometry', nullable: true, isPrimaryKey: false },
    { name: 'tsz', dataType: 'Timestamptz', nullable: true, isPrimaryKey: false },
  ],
};

const codec = new WktCodec();
const WKT = [
  'POINT (5 5)',
  'POLYGON ((0 0, 10 0, 10 10, 0 10, 0 0))',
  'LINESTRING (-5 5, 15 5)',
  'POLYGON ((10 0, 20 0, 20 10, 10 10, 10 0))',
  'POINT (30 30)',
  '', // null row
  'POLYGON ((5 5, 15 5, 15 15, 5 15, 5 5))',
  'MULTIPOINT ((1 1), (50 50))',
];
const GEO_VALID = new Uint8Array([1, 1, 1, 1, 1, 0, 1, 1]);
const TS = [
  '2025-01-01T00:00:00Z',
  '2025-01-02T12:00:00+08:00',
  '2024-12-31T23:59:59.999999Z',
  '2025-03-01T00:00:00Z',
  '2025-01-31T00:00:00Z',
  '',
  '2025-01-01T00:00:00.000001Z',
  '2026-01-01T00:00:00-05:00',
];
const TS_US = TS.map((t) => (t === '' ? 0n : parseTimestamptz(t)));

const batch = new MapBatch(
  WKT.length,
  new Map<string, Column>([
    ['id', { kind: 'int64', data: BigInt64Array.from(WKT.map((_, i) => BigInt(i))) }],
    ['geo', { kind: 'string', data: WKT, valid: GEO_VALID }],
    ['tsz', { kind: 'int64', data: BigInt64Array.from(TS_US), valid: GEO_VALID }],
  ]),
);

function rows(expr: string): number[] {
  const mask = compileFilter(expr, schema)!.evaluate(batch);
  return [...mask].flatMap((m, i) => (m ? [i] : []));
}

function errorOf(expr: string): QuiverError {
  try {
    rows(expr);
  } catch (e) {
    return e as QuiverError;
  }
  throw new Error(`no error for ${expr}`);
}

type Relation = 'equalsTopo' | 'touches' | 'overlaps' | 'crosses' | 'contains' | 'intersects';
/** The naive reference: jsts's own static predicates, row geometry first. */
function reference(rel: Relation | 'within', wkt: string): number[] {
  const b = codec.parse(wkt, 'ref');
  const ops = RelateOp as unknown as Record<Relation, (a: unknown, b: unknown) => boolean>;
  return WKT.flatMap((w, i) => {
    if (GEO_VALID[i] === 0) return [];
    const a = codec.parse(w, 'ref');
    const hit = rel === 'within' ? ops.contains(b, a) : ops[rel](a, b);
    return hit ? [i] : [];
  });
}

describe('spatial functions', () => {
  const probes = [
    'POLYGON ((0 0, 10 0, 10 10, 0 10, 0 0))',
    'POINT (5 5)',
    'LINESTRING (5 -5, 5 15)',
    'POLYGON ((8 8, 12 8, 12 12, 8 12, 8 8))',
    'POINT (10 5)',
  ];
  const cases: [string, Relation | 'within'][] = [
    ['ST_EQUALS', 'equalsTopo'],
    ['ST_TOUCHES', 'touches'],
    ['ST_OVERLAPS', 'overlaps'],
    ['ST_CROSSES', 'crosses'],
    ['ST_CONTAINS', 'contains'],
    ['ST_INTERSECTS', 'intersects'],
    ['ST_WITHIN', 'within'],
  ];
  for (const [fn, rel] of cases) {
    it(`${fn} matches jsts's ${rel} over every probe, nulls excluded`, () => {
      for (const p of probes) expect(rows(`${fn}(geo, '${p}')`), `${fn} ${p}`).toEqual(reference(rel, p));
      expect(rows(`${fn.toLowerCase()}(geo, '${probes[0]}')`)).toEqual(reference(rel, probes[0]!));
    });
  }

  it('ST_DWITHIN uses metres on lon/lat', () => {
    // Row 4 is POINT (30 30); one degree of latitude is about 111 km.
    const d = haversineMetres(30, 30, 30, 31);
    expect(d).toBeGreaterThan(111_000);
    expect(d).toBeLessThan(111_400);
    expect(rows(`ST_DWITHIN(geo, 'POINT (30 31)', ${Math.ceil(d)})`)).toEqual([4]);
    expect(rows(`ST_DWITHIN(geo, 'POINT (30 31)', ${Math.floor(d)})`)).toEqual([]);
    expect(rows(`not ST_DWITHIN(geo, 'POINT (30 31)', 1)`)).toEqual([0, 1, 2, 3, 4, 6, 7]);
  });

  it('malformed WKT and misuse answer with the value named', () => {
    const e = errorOf(`ST_CONTAINS(geo, 'POLYGON((0 0, 1 1')`);
    expect(e.kind).toBe('ParameterInvalid');
    expect(e.message).toContain('POLYGON((0 0, 1 1');
    expect(errorOf(`ST_DWITHIN(geo, 'POLYGON((0 0, 1 0, 1 1, 0 0))', 5)`).message).toContain('needs a POINT');
    expect(errorOf(`ST_DWITHIN(geo, 'POINT(0 0)', -1)`).message).toContain('non-negative distance');
    expect(errorOf(`ST_CONTAINS(id, 'POINT(0 0)')`).message).toContain('needs a Geometry field');
    expect(errorOf(`geo == 'POINT (5 5)'`).message).toContain('cannot compare');
    expect(errorOf(`ST_WITHIN(geo)`).message).toContain('takes 2 arguments');
  });
});

describe('Timestamptz filters', () => {
  const present = (pred: (us: bigint) => boolean): number[] => TS_US.flatMap((us, i) => (GEO_VALID[i] && pred(us) ? [i] : []));
  const at = (s: string): bigint => parseTimestamptz(s);

  it('compares against ISO literals and plain strings in UTC', () => {
    expect(rows(`tsz > ISO '2025-01-01T00:00:00Z'`)).toEqual(present((t) => t > at('2025-01-01T00:00:00Z')));
    expect(rows(`tsz == ISO '2025-01-01T08:00:00+08:00'`)).toEqual([0]);
    expect(rows(`tsz != ISO '2025-01-01T00:00:00Z'`)).toEqual(present((t) => t !== at('2025-01-01T00:00:00Z')));
    expect(rows(`tsz <= '2025-01-01T00:00:00Z'`)).toEqual([0, 2]);
    expect(rows(`ISO '2025-01-01T00:00:00Z' <= tsz < ISO '2025-02-01T00:00:00Z'`)).toEqual([0, 1, 4, 6]);
    expect(rows(`tsz is null`)).toEqual([5]);
  });

  it('adds and subtracts INTERVAL durations, months by the calendar', () => {
    const p1d = parseInterval('P1D');
    expect(rows(`tsz + INTERVAL 'P1D' > ISO '2025-01-02T00:00:00Z'`)).toEqual(present((t) => addInterval(t, p1d, 1) > at('2025-01-02T00:00:00Z')));
    expect(rows(`tsz - INTERVAL 'PT1H' == ISO '2024-12-31T23:00:00Z'`)).toEqual([0]);
    expect(rows(`tsz + INTERVAL 'P1M' == ISO '2025-03-03T00:00:00Z'`)).toEqual([4]);
    expect(rows(`tsz + INTERVAL 'P0D' != ISO '2025-01-01T00:00:00Z'`)).toEqual(rows(`tsz != ISO '2025-01-01T00:00:00Z'`));
    expect(rows(`tsz > ISO '2025-01-01T00:00:00Z' + INTERVAL 'P1Y'`)).toEqual([7]);
  });

  it("reads literals without an offset in the collection's zone", () => {
    const tokyo = compileFilter(`tsz == ISO '2025-01-01 09:00:00'`, { ...schema, timezone: 'Asia/Tokyo' })!.evaluate(batch);
    expect([...tokyo].flatMap((m, i) => (m ? [i] : []))).toEqual([0]);
    expect(rows(`tsz == '2025-01-01 00:00:00'`)).toEqual([0]);
  });

  it('refuses strings in no known format, naming them', () => {
    const e = errorOf(`tsz > ISO 'next tuesday'`);
    expect(e.kind).toBe('ParameterInvalid');
    expect(e.message).toContain('next tuesday');
    expect(errorOf(`tsz + INTERVAL 'P1X' > ISO '2025-01-01T00:00:00Z'`).message).toContain("'P1X'".slice(1, -1));
    expect(errorOf(`tsz > 5`).message).toContain('cannot compare');
    expect(errorOf(`INTERVAL 'P1D' - tsz > ISO '2025-01-01T00:00:00Z'`).message).toContain('needs a Timestamptz on its left');
    expect(errorOf(`tsz in [1, 2]`).message).toContain('does not match');
  });
});

describe('Timestamptz text', () => {
  it('round-trips microseconds and honours zones', () => {
    const us = parseTimestamptz('2025-05-01T23:59:59.123456+08:00');
    expect(formatTimestamptz(us)).toBe('2025-05-01T15:59:59.123456Z');
    expect(formatTimestamptz(us, 'Asia/Shanghai')).toBe('2025-05-01T23:59:59.123456+08:00');
    expect(formatTimestamptz(us, 'America/New_York')).toBe('2025-05-01T11:59:59.123456-04:00');
    expect(formatTimestamptz(parseTimestamptz('2025-01-01 00:00:00', 'Asia/Shanghai'))).toBe('2024-12-31T16:00:00Z');
    expect(parseTimestamptz('1969-12-31T23:59:59.5Z')).toBe(-500000n);
    expect(formatTimestamptz(-500000n)).toBe('1969-12-31T23:59:59.5Z');
  });
  it('names bad input', () => {
    for (const bad of ['yesterday', '2025-13-01', '2025-02-30T00:00:00Z', '2025-01-01T25:00:00Z', '']) {
      expect(() => parseTimestamptz(bad)).toThrow(bad === '' ? /Timestamptz/ : bad);
    }
    expect(() => new WktCodec().parse('POINT(1 2) junk', 'here')).toThrow(/POINT\(1 2\) junk/);
  });
});
