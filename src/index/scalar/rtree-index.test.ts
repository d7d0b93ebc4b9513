import { describe, expect, it } from 'vitest';
import { compileFilter, evaluateFilter, matchingRows, type ExprSchema } from '../../expr/index.js';
import { haversineMetres } from '../../expr/geo-functions.js';
import { spatialWindow } from '../../expr/spatial-window.js';
import { WktCodec } from '../../schema/geometry.js';
import { MapBatch, type Column } from '../../schema/types.js';
import { seededRandom } from '../../testing/index.js';
import { RTreeIndex } from './rtree-index.js';
import { ScalarIndex } from './scalar-index.js';

const rnd = seededRandom(3);
const codec = new WktCodec();

/** Random lon/lat shapes, some null; canonical WKT as stored. */
function column(n: number): Column & { kind: 'string'; valid: Uint8Array } {
  const data: string[] = [];
  const valid = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    const x = -170 + rnd() * 340;
    const y = -80 + rnd() * 160;
    const w = rnd() * 3;
    const h = rnd() * 3;
    const wkt =
      i % 13 === 5
        ? ''
        : i % 3 === 0
          ? `POINT(${x} ${y})`
          : i % 3 === 1
            ? `POLYGON((${x} ${y}, ${x + w} ${y}, ${x + w} ${y + h}, ${x} ${y + h}, ${x} ${y}))`
            : `LINESTRING(${x} ${y}, ${x + w} ${y + h})`;
    valid[i] = wkt === '' ? 0 : 1;
    data.push(wkt === '' ? '' : codec.normalize(wkt, 'test'));
  }
  return { kind: 'string', data, valid };
}

const schema: ExprSchema = { fields: [{ name: 'g', dataType: 'Geometry', nullable: true, isPrimaryKey: false }], dynamicField: false };

describe('RTREE index', () => {
  const col = column(3000);
  const tree = RTreeIndex.build(col);

  it('returns exactly the rows whose envelope meets the window, before and after a file round trip', () => {
    const envs = col.data.map((w, i) => (col.valid[i] ? codec.parse(w, 'test').getEnvelopeInternal() : undefined));
    const loaded = ScalarIndex.fromBytes(tree.toBytes(), 'mem', { rows: col.data.length, indexType: 'RTREE' }) as RTreeIndex;
    expect(loaded.entries).toBe(tree.entries);
    for (let q = 0; q < 50; q++) {
      const x = -180 + rnd() * 360;
      const y = -90 + rnd() * 180;
      const win = { minX: x, minY: y, maxX: x + rnd() * 40, maxY: y + rnd() * 20, geodesic: false };
      const want = envs.flatMap((e, i) =>
        e && !(e.getMinX() > win.maxX || e.getMaxX() < win.minX || e.getMinY() > win.maxY || e.getMaxY() < win.minY) ? [i] : [],
      );
      expect([...tree.intersecting(win)].sort((a, b) => a - b)).toEqual(want);
      expect([...loaded.intersecting(win)].sort((a, b) => a - b)).toEqual(want);
    }
  });

  it('narrows ST_* filters to candidates and answers exactly what the scan answers', () => {
    const batch = new MapBatch(col.data.length, new Map([['g', col]]));
    const indexes = new Map([['g', tree]]);
    const filters = [
      "ST_INTERSECTS(g, 'POLYGON((0 0, 20 0, 20 20, 0 20, 0 0))')",
      "ST_WITHIN(g, 'POLYGON((-50 -30, 10 -30, 10 30, -50 30, -50 -30))')",
      "ST_CONTAINS(g, 'POINT(10.5 10.5)')",
      "ST_DWITHIN(g, 'POINT(30 40)', 500000)",
      "ST_DWITHIN(g, 'POINT(179.5 0)', 300000)", // the window crosses the antimeridian: longitude unbounded
      "ST_TOUCHES(g, 'LINESTRING(0 0, 50 50)') or ST_INTERSECTS(g, 'POINT(1 1)')",
      "ST_INTERSECTS(g, 'POLYGON((0 0, 20 0, 20 20, 0 20, 0 0))') and not ST_WITHIN(g, 'POLYGON((0 0, 10 0, 10 10, 0 10, 0 0))')",
    ];
    for (const f of filters) {
      const compiled = compileFilter(f, schema)!;
      expect(matchingRows(compiled, batch, indexes, 1), f).toBeDefined();
      expect([...evaluateFilter(compiled, batch, indexes, 1)], f).toEqual([...compiled.evaluate(batch)]);
    }
    // A window from a malformed or empty literal gives no candidates (the compiled filter reports or scans).
    expect(spatialWindow('st_intersects', 'POINT EMPTY', undefined)).toBeUndefined();
    expect(spatialWindow('st_intersects', 'POINT(1', undefined)).toBeUndefined();
  });

  it('bounds ST_DWITHIN by every point within the distance, near the poles too', () => {
    for (let q = 0; q < 300; q++) {
      const lon = -180 + rnd() * 360;
      const lat = -89 + rnd() * 178;
      const d = rnd() * 2_000_000;
      const w = spatialWindow('st_dwithin', `POINT(${lon} ${lat})`, d);
      if (w === undefined) continue;
      for (let k = 0; k < 50; k++) {
        const plon = -180 + rnd() * 360;
        const plat = -90 + rnd() * 180;
        if (haversineMetres(plon, plat, lon, lat) > d) continue;
        expect(plon >= w.minX && plon <= w.maxX && plat >= w.minY && plat <= w.maxY, `${plon},${plat} from ${lon},${lat} d=${d}`).toBe(true);
      }
      // Points sampled close to the window's edges: inside the distance means inside the window.
      for (let k = 0; k < 50; k++) {
        const plat = lat + (rnd() * 2 - 1) * (w.maxY - lat) * 1.01;
        const plon = Number.isFinite(w.minX) ? lon + (rnd() * 2 - 1) * (w.maxX - lon) * 1.01 : lon;
        if (Math.abs(plat) > 90 || Math.abs(plon) > 180 || haversineMetres(plon, plat, lon, lat) > d) continue;
        expect(plon >= w.minX && plon <= w.maxX && plat >= w.minY && plat <= w.maxY).toBe(true);
      }
    }
    // Coordinates outside lon/lat: the geodesic window is not used.
    const far = RTreeIndex.build({ kind: 'string', data: ['POINT (500 0)', 'POINT (1 1)'] });
    expect(far.geodetic).toBe(false);
    expect(far.spatial({ minX: 0, minY: 0, maxX: 2, maxY: 2, geodesic: true })).toBeUndefined();
    expect([...far.spatial({ minX: 0, minY: 0, maxX: 2, maxY: 2, geodesic: false })!]).toEqual([1]);
  });
});
