import RelateOp from 'jsts/org/locationtech/jts/operation/relate/RelateOp.js';
import DistanceOp from 'jsts/org/locationtech/jts/operation/distance/DistanceOp.js';
import WKTReader from 'jsts/org/locationtech/jts/io/WKTReader.js';
import WKTWriter from 'jsts/org/locationtech/jts/io/WKTWriter.js';
import { describe, expect, it } from 'vitest';
import { DataType, ErrorCode, type MilvusClient } from '@zilliz/milvus2-sdk-node';
import { seededRandom } from '../src/testing/index.js';
import { until, waitRestore } from './helpers.js';
import { killableServer } from './process.js';

/**
 * Geometry through the official SDK: WKT in, canonical WKT out, nulls, every ST_* filter compared with a
 * naive reference computed here with jsts directly, kill -9 (WAL replay), flush + compaction, snapshot and
 * restore, and malformed WKT on insert and in filters.
 */

const COLL = 'geo';
/* eslint-disable @typescript-eslint/no-explicit-any */
const reader = new (WKTReader as any)();
const writer = new (WKTWriter as any)();
const geom = (wkt: string): any => reader.read(wkt);

interface Row {
  id: number;
  vec: number[];
  geo: string | null;
}

const rnd = seededRandom(5);
const coord = (): number => Math.round(rnd() * 400) / 4; // 0..100 in quarters

function shape(id: number): string | null {
  if (id % 9 === 4) return null;
  const x = coord();
  const y = coord();
  const w = 1 + Math.round(rnd() * 20);
  const h = 1 + Math.round(rnd() * 20);
  switch (id % 4) {
    case 0:
      return `POINT(${x} ${y})`;
    case 1:
      return `POLYGON((${x} ${y}, ${x + w} ${y}, ${x + w} ${y + h}, ${x} ${y + h}, ${x} ${y}))`;
    case 2:
      return `LINESTRING(${x} ${y}, ${x + w} ${y + h})`;
    default:
      return `MULTIPOINT((${x} ${y}), (${x + w} ${y}))`;
  }
}

const makeRow = (id: number): Row => ({ id, vec: [rnd(), rnd(), rnd(), rnd()], geo: shape(id) });

type Fn = 'ST_EQUALS' | 'ST_TOUCHES' | 'ST_OVERLAPS' | 'ST_CROSSES' | 'ST_CONTAINS' | 'ST_INTERSECTS' | 'ST_WITHIN';
const REF: Record<Fn, (a: any, b: any) => boolean> = {
  ST_EQUALS: (a, b) => (RelateOp as any).equalsTopo(a, b),
  ST_TOUCHES: (a, b) => (RelateOp as any).touches(a, b),
  ST_OVERLAPS: (a, b) => (RelateOp as any).overlaps(a, b),
  ST_CROSSES: (a, b) => (RelateOp as any).crosses(a, b),
  ST_CONTAINS: (a, b) => (RelateOp as any).contains(a, b),
  ST_INTERSECTS: (a, b) => (RelateOp as any).intersects(a, b),
  ST_WITHIN: (a, b) => (RelateOp as any).contains(b, a),
};

const PROBES = ['POLYGON((20 20, 60 20, 60 60, 20 60, 20 20))', 'LINESTRING(0 50, 100 50)', 'POINT(40 40)', 'POLYGON((0 0, 100 0, 100 100, 0 100, 0 0))'];

function haversine(lon1: number, lat1: number, lon2: number, lat2: number): number {
  const r = Math.PI / 180;
  const h = Math.sin(((lat2 - lat1) * r) / 2) ** 2 + Math.cos(lat1 * r) * Math.cos(lat2 * r) * Math.sin(((lon2 - lon1) * r) / 2) ** 2;
  return 2 * 6_371_008.8 * Math.asin(Math.min(1, Math.sqrt(h)));
}

function ids(data: Record<string, unknown>[]): number[] {
  return data.map((d) => Number(d['id'])).sort((a, b) => a - b);
}

async function queryIds(c: MilvusClient, coll: string, filter: string): Promise<number[]> {
  const q = await c.query({ collection_name: coll, filter, output_fields: ['id'], limit: 16384 });
  expect(q.status.error_code, `${filter}: ${q.status.reason}`).toBe(ErrorCode.SUCCESS);
  return ids(q.data);
}

async function checkAll(c: MilvusClient, coll: string, model: Map<number, Row>): Promise<void> {
  const rows = [...model.values()];
  const q = await c.query({ collection_name: coll, filter: 'id >= 0', output_fields: ['id', 'geo'], limit: 16384 });
  expect(q.status.error_code, q.status.reason).toBe(ErrorCode.SUCCESS);
  expect(q.data.length).toBe(model.size);
  for (const got of q.data) {
    const want = model.get(Number(got['id']))!;
    expect(got['geo'], `row ${want.id}`).toEqual(want.geo === null ? null : writer.write(geom(want.geo)));
  }
  let nonEmpty = 0;
  for (const fn of Object.keys(REF) as Fn[]) {
    for (const p of PROBES) {
      const b = geom(p);
      const want = rows.filter((r) => r.geo !== null && REF[fn](geom(r.geo), b)).map((r) => r.id);
      if (want.length > 0) nonEmpty++;
      expect(await queryIds(c, coll, `${fn}(geo, '${p}')`), `${fn} ${p}`).toEqual(want.sort((a, b) => a - b));
    }
  }
  // Enough relations hold somewhere that an always-false implementation could not pass.
  expect(nonEmpty).toBeGreaterThan(15);
  for (const metres of [200_000, 1_500_000]) {
    const want = rows
      .filter((r) => {
        if (r.geo === null) return false;
        const near = (DistanceOp as any).nearestPoints(geom(r.geo), geom('POINT(40 40)'))[0];
        return haversine(near.x, near.y, 40, 40) <= metres;
      })
      .map((r) => r.id);
    expect(want.length).toBeGreaterThan(0);
    expect(await queryIds(c, coll, `st_dwithin(geo, 'POINT(40 40)', ${metres})`)).toEqual(want.sort((a, b) => a - b));
  }
  expect(await queryIds(c, coll, 'geo is null')).toEqual(rows.filter((r) => r.geo === null).map((r) => r.id));
}

describe('Geometry fields through the SDK', () => {
  const server = killableServer('quiver-geo-');

  it('stores WKT, filters with every ST_* function, survives kill -9, compaction and a snapshot restore', { timeout: 120_000 }, async () => {
    let c = (await server.start()).client;
    const created = await c.createCollection({
      collection_name: COLL,
      fields: [
        { name: 'id', data_type: DataType.Int64, is_primary_key: true, autoID: false },
        { name: 'vec', data_type: DataType.FloatVector, dim: 4 },
        { name: 'geo', data_type: DataType.Geometry, nullable: true },
      ],
    });
    expect(created.error_code, created.reason).toBe(ErrorCode.SUCCESS);
    const d = await c.describeCollection({ collection_name: COLL });
    expect(d.schema.fields.map((f) => f.data_type)).toEqual(['Int64', 'FloatVector', 'Geometry']);

    const model = new Map<number, Row>();
    const batch1 = Array.from({ length: 150 }, (_, i) => makeRow(i));
    const batch2 = Array.from({ length: 60 }, (_, i) => makeRow(150 + i));
    expect((await c.insert({ collection_name: COLL, data: batch1 as any })).status.error_code).toBe(ErrorCode.SUCCESS);
    await c.flushSync({ collection_names: [COLL] });
    expect((await c.insert({ collection_name: COLL, data: batch2 as any })).status.error_code).toBe(ErrorCode.SUCCESS);
    for (const r of [...batch1, ...batch2]) model.set(r.id, r);
    const ups = [makeRow(3), makeRow(7)].map((r) => ({ ...r, geo: 'POINT(40 40)' }));
    expect((await c.upsert({ collection_name: COLL, data: ups as any })).status.error_code).toBe(ErrorCode.SUCCESS);
    for (const r of ups) model.set(r.id, r);

    expect((await c.createIndex({ collection_name: COLL, field_name: 'vec', index_type: 'FLAT', metric_type: 'L2' })).error_code).toBe(ErrorCode.SUCCESS);
    await c.loadCollection({ collection_name: COLL });
    await checkAll(c, COLL, model);

    // A search filtered by a spatial predicate returns only rows the reference accepts.
    const box = PROBES[0]!;
    const inBox = new Set([...model.values()].filter((r) => r.geo !== null && REF.ST_WITHIN(geom(r.geo), geom(box))).map((r) => r.id));
    const s = await c.search({ collection_name: COLL, data: [0.5, 0.5, 0.5, 0.5], limit: 50, filter: `ST_WITHIN(geo, '${box}')`, output_fields: ['geo'] });
    expect(s.status.error_code, s.status.reason).toBe(ErrorCode.SUCCESS);
    expect(s.results.length).toBe(Math.min(50, inBox.size));
    for (const h of s.results) expect(inBox.has(Number(h.id))).toBe(true);

    // Malformed WKT: refused with the value named, nothing written.
    for (const bad of ['POLYGON((0 0, 1 0, 1 1))', 'POINT(1 2', 'CIRCLE(0 0, 5)', 'POINT(1 2) trailing']) {
      const r = await c.insert({ collection_name: COLL, data: [{ id: 9_000, vec: [0, 0, 0, 0], geo: bad }] });
      expect(r.status.error_code, bad).toBe(ErrorCode.IllegalArgument);
      expect(r.status.reason).toContain(bad);
      const f = await c.query({ collection_name: COLL, filter: `ST_INTERSECTS(geo, '${bad}')`, output_fields: ['id'] });
      expect(f.status.error_code, bad).toBe(ErrorCode.IllegalArgument);
      expect(f.status.reason).toContain(bad);
    }
    expect(await queryIds(c, COLL, 'id == 9000')).toEqual([]);
    const dw = await c.query({ collection_name: COLL, filter: `ST_DWITHIN(geo, 'LINESTRING(0 0, 1 1)', 10)`, output_fields: ['id'] });
    expect(dw.status.reason).toContain('needs a POINT');

    // kill -9: the growing rows and the upsert come back from the WAL.
    c = (await server.restart()).client;
    await c.loadCollection({ collection_name: COLL });
    await checkAll(c, COLL, model);

    await c.flushSync({ collection_names: [COLL] });
    const comp = await c.compact({ collection_name: COLL });
    expect(comp.status.error_code).toBe(ErrorCode.SUCCESS);
    await until(async () => String((await c.getCompactionState({ compactionID: comp.compactionID })).state) === 'Completed');
    await checkAll(c, COLL, model);

    expect((await c.createSnapshot({ collection_name: COLL, snapshot_name: 'geo_snap' })).error_code).toBe(ErrorCode.SUCCESS);
    const job = await c.restoreSnapshot({ snapshot_name: 'geo_snap', source_collection_name: COLL, target_collection_name: 'geo_restored' });
    expect(job.status.error_code, job.status.reason).toBe(ErrorCode.SUCCESS);
    expect((await waitRestore(c, job.job_id)).state).toBe('RestoreSnapshotCompleted');
    await c.loadCollection({ collection_name: 'geo_restored' });
    await checkAll(c, 'geo_restored', model);
  });
});
