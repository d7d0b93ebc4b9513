import { describe, expect, it } from 'vitest';
import { QuiverError } from '../common/errors.js';
import { WktCodec } from './geometry.js';
import { wkbToWkt } from './wkb.js';

/** A WKB writer for the test (the layout of the OGC spec), from coordinate arrays. */
type Shape = { t: 1; p: number[] } | { t: 2; ps: number[][] } | { t: 3; rings: number[][][] } | { t: 4 | 5 | 6 | 7; parts: Shape[] };

function wkb(s: Shape, little = true, srid?: number): Buffer {
  const chunks: Buffer[] = [];
  const u32 = (v: number) => {
    const b = Buffer.alloc(4);
    if (little) b.writeUInt32LE(v);
    else b.writeUInt32BE(v);
    chunks.push(b);
  };
  const f64 = (v: number) => {
    const b = Buffer.alloc(8);
    if (little) b.writeDoubleLE(v);
    else b.writeDoubleBE(v);
    chunks.push(b);
  };
  chunks.push(Buffer.from([little ? 1 : 0]));
  u32(s.t | (srid === undefined ? 0 : 0x20000000));
  if (srid !== undefined) u32(srid);
  const pts = (ps: number[][]) => {
    u32(ps.length);
    for (const [x, y] of ps) {
      f64(x!);
      f64(y!);
    }
  };
  if (s.t === 1) s.p.forEach(f64);
  else if (s.t === 2) pts(s.ps);
  else if (s.t === 3) {
    u32(s.rings.length);
    s.rings.forEach(pts);
  } else {
    u32(s.parts.length);
    s.parts.forEach((p, i) => chunks.push(wkb(p, i % 2 === 0 ? little : !little)));
  }
  return Buffer.concat(chunks);
}

const codec = new WktCodec();
const canon = (bytes: Uint8Array) => codec.normalize(wkbToWkt(bytes, 'in test'), 'in test');

describe('WKB → WKT', () => {
  it('decodes every 2D type in both byte orders to the WKT jsts reads', () => {
    const square = [
      [0, 0],
      [4, 0],
      [4, 4],
      [0, 4],
      [0, 0],
    ];
    const hole = [
      [1, 1],
      [2, 1],
      [2, 2],
      [1, 2],
      [1, 1],
    ];
    const cases: [Shape, string][] = [
      [{ t: 1, p: [13.5, -52.25] }, 'POINT (13.5 -52.25)'],
      [{ t: 2, ps: [[0, 0], [1, 1], [2, 0]] }, 'LINESTRING (0 0, 1 1, 2 0)'],
      [{ t: 3, rings: [square, hole] }, 'POLYGON ((0 0, 4 0, 4 4, 0 4, 0 0), (1 1, 2 1, 2 2, 1 2, 1 1))'],
      [{ t: 4, parts: [{ t: 1, p: [1, 2] }, { t: 1, p: [3, 4] }] }, 'MULTIPOINT ((1 2), (3 4))'],
      [{ t: 5, parts: [{ t: 2, ps: [[0, 0], [1, 1]] }, { t: 2, ps: [[2, 2], [3, 3]] }] }, 'MULTILINESTRING ((0 0, 1 1), (2 2, 3 3))'],
      [{ t: 6, parts: [{ t: 3, rings: [square] }, { t: 3, rings: [hole] }] }, 'MULTIPOLYGON (((0 0, 4 0, 4 4, 0 4, 0 0)), ((1 1, 2 1, 2 2, 1 2, 1 1)))'],
      [{ t: 7, parts: [{ t: 1, p: [1, 2] }, { t: 2, ps: [[0, 0], [1, 1]] }] }, 'GEOMETRYCOLLECTION (POINT (1 2), LINESTRING (0 0, 1 1))'],
      [{ t: 2, ps: [] }, 'LINESTRING EMPTY'],
      [{ t: 1, p: [NaN, NaN] }, 'POINT EMPTY'],
    ]; // prettier-ignore
    for (const [shape, wkt] of cases) {
      const want = codec.normalize(wkt, 'in test');
      expect(canon(wkb(shape, true))).toBe(want);
      expect(canon(wkb(shape, false))).toBe(want);
    }
    expect(canon(wkb({ t: 1, p: [1, 2] }, true, 4326))).toBe('POINT (1 2)');
  });

  it('refuses malformed bytes with a reason naming the byte', () => {
    const point = wkb({ t: 1, p: [1, 2] });
    const bad = (bytes: Uint8Array, why: RegExp) => {
      expect(() => wkbToWkt(bytes, 'for field g at row 3')).toThrow(QuiverError);
      expect(() => wkbToWkt(bytes, 'for field g at row 3')).toThrow(why);
    };
    bad(Buffer.from([]), /field g at row 3: .*bytes end/);
    bad(point.subarray(0, 12), /12 bytes end before 8 more at byte 5/);
    bad(Buffer.concat([point, Buffer.from([0])]), /1 bytes follow the geometry/);
    bad(Buffer.from([2, 1, 0, 0, 0]), /byte order 2/);
    bad(Buffer.from([1, 9, 0, 0, 0]), /unknown geometry type 9/);
    bad(Buffer.from([1, 0xe9, 3, 0, 0]), /Z \/ M/); // ISO POINT Z (1001)
    bad(Buffer.from([1, 1, 0, 0, 0x80]), /Z \/ M/); // EWKB Z flag
    bad(Buffer.from([1, 2, 0, 0, 0, 0xff, 0xff, 0xff, 0x7f]), /count 2147483647 needs more/);
    bad(
      wkb({
        t: 4,
        parts: [
          {
            t: 2,
            ps: [
              [0, 0],
              [1, 1],
            ],
          },
        ],
      }),
      /a POINT holds a LINESTRING/,
    );
    bad(wkb({ t: 1, p: [Infinity, 1] }), /not finite/);
    // Nesting beyond the bound (a collection of a collection of ...).
    let deep: Shape = { t: 1, p: [0, 0] };
    for (let i = 0; i < 40; i++) deep = { t: 7, parts: [deep] };
    bad(wkb(deep), /nested deeper than 32/);
  });
});
