import RelateOp from 'jsts/org/locationtech/jts/operation/relate/RelateOp.js';
import DistanceOp from 'jsts/org/locationtech/jts/operation/distance/DistanceOp.js';
import WKTReader from 'jsts/org/locationtech/jts/io/WKTReader.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DataType, ErrorCode, promisify, type MilvusClient } from '@zilliz/milvus2-sdk-node';
import { seededRandom } from '../src/testing/index.js';
import { startTestServer, waitRestore, type TestServer } from './helpers.js';

/**
 * Geometry WKB input and the RTREE index through the official SDK. Rows come as WKT through the SDK and as
 * WKB (`geometry_data`, the raw Insert another client sends); both read back as the same canonical WKT.
 * An RTREE-indexed collection and an unindexed one hold the same rows: every ST_* filter answers what a
 * naive jsts reference computed here answers, in both, and again after a snapshot restore that carries the
 * index files.
 */

/* eslint-disable @typescript-eslint/no-explicit-any */
const reader = new (WKTReader as any)();
const IDX = 'geo_rtree';
const PLAIN = 'geo_plain';
const rnd = seededRandom(17);

interface Row {
  id: number;
  geo: string | null;
}

function shape(id: number): string | null {
  if (id % 11 === 7) return null;
  const x = Math.round((-20 + rnd() * 60) * 100) / 100;
  const y = Math.round((30 + rnd() * 30) * 100) / 100;
  const w = Math.round(rnd() * 200) / 100;
  switch (id % 3) {
    case 0:
      return `POINT(${x} ${y})`;
    case 1:
      return `POLYGON((${x} ${y}, ${x + w} ${y}, ${x + w} ${y + w}, ${x} ${y + w}, ${x} ${y}))`;
    default:
      return `LINESTRING(${x} ${y}, ${x + w} ${y - w})`;
  }
}

/** Little-endian WKB of the test's shapes (the OGC layout), for the raw geometry_data insert. */
function wkb(wkt: string): Buffer {
  const nums = (wkt.match(/-?\d+(\.\d+)?/g) ?? []).map(Number);
  const pts: number[][] = [];
  for (let i = 0; i < nums.length; i += 2) pts.push([nums[i]!, nums[i + 1]!]);
  const head = (type: number) => Buffer.from([1, type, 0, 0, 0]);
  const u32 = (v: number) => {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(v);
    return b;
  };
  const coords = (ps: number[][]) => Buffer.concat(ps.map(([x, y]) => Buffer.from(new Float64Array([x!, y!]).buffer)));
  if (wkt.startsWith('POINT')) return Buffer.concat([head(1), coords(pts)]);
  if (wkt.startsWith('LINESTRING')) return Buffer.concat([head(2), u32(pts.length), coords(pts)]);
  return Buffer.concat([head(3), u32(1), u32(pts.length), coords(pts)]);
}

const REF: Record<string, (a: any, b: any) => boolean> = {
  ST_INTERSECTS: (a, b) => (RelateOp as any).intersects(a, b),
  ST_WITHIN: (a, b) => (RelateOp as any).contains(b, a),
  ST_CONTAINS: (a, b) => (RelateOp as any).contains(a, b),
  ST_TOUCHES: (a, b) => (RelateOp as any).touches(a, b),
  ST_OVERLAPS: (a, b) => (RelateOp as any).overlaps(a, b),
  ST_CROSSES: (a, b) => (RelateOp as any).crosses(a, b),
  ST_EQUALS: (a, b) => (RelateOp as any).equalsTopo(a, b),
};

function haversine(lon1: number, lat1: number, lon2: number, lat2: number): number {
  const rad = Math.PI / 180;
  const h = Math.sin(((lat2 - lat1) * rad) / 2) ** 2 + Math.cos(lat1 * rad) * Math.cos(lat2 * rad) * Math.sin(((lon2 - lon1) * rad) / 2) ** 2;
  return 2 * 6_371_008.8 * Math.asin(Math.min(1, Math.sqrt(h)));
}

function reference(rows: readonly Row[], fn: string, wkt: string, metres?: number): number[] {
  const b = reader.read(wkt);
  return rows
    .filter((r) => {
      if (r.geo === null) return false;
      const a = reader.read(r.geo);
      if (fn === 'ST_DWITHIN') {
        const near = (DistanceOp as any).nearestPoints(a, b)[0];
        return haversine(near.x, near.y, b.getCoordinate().x, b.getCoordinate().y) <= metres!;
      }
      return REF[fn]!(a, b);
    })
    .map((r) => r.id);
}

async function ids(c: MilvusClient, coll: string, filter: string): Promise<number[]> {
  const res = await c.query({ collection_name: coll, filter, output_fields: ['id'], limit: 16_384 });
  expect(res.status.error_code, `${filter}: ${res.status.reason}`).toBe(ErrorCode.SUCCESS);
  return res.data.map((r) => Number(r['id'])).sort((a, b) => a - b);
}

const QUERIES: [string, string, number?][] = [
  ['ST_INTERSECTS', 'POLYGON((0 40, 10 40, 10 50, 0 50, 0 40))'],
  ['ST_WITHIN', 'POLYGON((-10 35, 20 35, 20 55, -10 55, -10 35))'],
  ['ST_CONTAINS', 'POINT(5.5 45.5)'],
  ['ST_TOUCHES', 'LINESTRING(0 30, 0 60)'],
  ['ST_OVERLAPS', 'POLYGON((10 40, 14 40, 14 44, 10 44, 10 40))'],
  ['ST_CROSSES', 'LINESTRING(-20 45, 40 45)'],
  ['ST_DWITHIN', 'POINT(10 45)', 300_000],
  ['ST_DWITHIN', 'POINT(-5 58)', 50_000],
];

describe('Geometry WKB input and the RTREE index', () => {
  let t: TestServer;
  const rows: Row[] = [];
  const N = 1200;

  beforeAll(async () => {
    t = await startTestServer();
    const c = t.client;
    for (let id = 0; id < N + 100; id++) rows.push({ id, geo: shape(id) });
    for (const name of [IDX, PLAIN]) {
      const r = await c.createCollection({
        collection_name: name,
        fields: [
          { name: 'id', data_type: DataType.Int64, is_primary_key: true },
          { name: 'vec', data_type: DataType.FloatVector, dim: 2 },
          { name: 'geo', data_type: DataType.Geometry, nullable: true },
        ],
      });
      expect(r.error_code, r.reason).toBe(ErrorCode.SUCCESS);
      await c.createIndex({ collection_name: name, field_name: 'vec', index_type: 'FLAT', metric_type: 'L2' });
      // Half through the SDK (WKT), half as raw WKB: two sealed segments, then growing WKT rows.
      const half = rows.slice(0, N / 2);
      const ins = await c.insert({ collection_name: name, data: half.map((r) => ({ id: r.id, vec: [r.id, 1], geo: r.geo })) });
      expect(ins.status.error_code, ins.status.reason).toBe(ErrorCode.SUCCESS);
      await c.flushSync({ collection_names: [name] });
      const second = rows.slice(N / 2, N);
      const pool = (c as unknown as { channelPool: unknown }).channelPool;
      const raw = (await promisify(
        pool as never,
        'Insert',
        {
          collection_name: name,
          num_rows: second.length,
          fields_data: [
            { field_name: 'id', type: DataType.Int64, scalars: { long_data: { data: second.map((r) => String(r.id)) } } },
            { field_name: 'vec', type: DataType.FloatVector, vectors: { dim: 2, float_vector: { data: second.flatMap((r) => [r.id, 1]) } } },
            {
              field_name: 'geo',
              type: DataType.Geometry,
              valid_data: second.map((r) => r.geo !== null),
              scalars: { geometry_data: { data: second.filter((r) => r.geo !== null).map((r) => wkb(r.geo!)) } },
            },
          ],
        },
        10_000,
      )) as { status: { error_code: string; reason: string } };
      expect(raw.status.error_code, raw.status.reason).toBe(ErrorCode.SUCCESS);
      await c.flushSync({ collection_names: [name] });
      const tail = rows.slice(N);
      await c.insert({ collection_name: name, data: tail.map((r) => ({ id: r.id, vec: [r.id, 1], geo: r.geo })) });
    }
    const r = await c.createIndex({ collection_name: IDX, field_name: 'geo', index_name: 'geo_rt', index_type: 'RTREE' });
    expect(r.error_code, r.reason).toBe(ErrorCode.SUCCESS);
    await t.server.engine.waitForIndexes(t.server.engine.catalog.resolveCollection('default', IDX).id);
    await c.loadCollectionSync({ collection_name: IDX });
    await c.loadCollectionSync({ collection_name: PLAIN });
  }, 120_000);
  afterAll(async () => {
    await t?.close();
  });

  it('reads WKB rows back as the canonical WKT of the same shapes', async () => {
    const c = t.client;
    const got = await c.query({ collection_name: PLAIN, filter: `id >= ${N / 2 - 3} and id < ${N / 2 + 3}`, output_fields: ['id', 'geo'] });
    const writer = new ((await import('jsts/org/locationtech/jts/io/WKTWriter.js')).default as any)();
    for (const r of got.data) {
      const want = rows[Number(r['id'])]!.geo;
      expect(r['geo'], `row ${r['id']}`).toEqual(want === null ? null : writer.write(reader.read(want)));
    }
  });

  it('builds one RTREE file per sealed segment and serves it', async () => {
    const engine = t.server.engine;
    const di = await t.client.describeIndex({ collection_name: IDX, index_name: 'geo_rt' });
    expect(di.index_descriptions[0]!.params.find((p) => p.key === 'index_type')?.value).toBe('RTREE');
    const collId = engine.catalog.resolveCollection('default', IDX).id;
    // Background compaction may merge the two sealed segments; the merged one is indexed by the next pass.
    await engine.waitForIndexes(collId);
    const segs = engine.catalog.segments(collId).filter((s) => s.state === 'Flushed');
    expect(segs.length).toBeGreaterThan(0);
    for (const s of segs) expect(s.indexes.filter((i) => i.files.length === 1).length).toBe(1);
    for (const info of engine.queryNode.segmentInfos(collId).filter((i) => i.state === 'Flushed')) {
      expect(info.indexed.map((x) => x.fieldName)).toEqual(['geo']);
    }
    // Geometry takes RTREE only; other fields do not take RTREE.
    const inv = await t.client.createIndex({ collection_name: PLAIN, field_name: 'geo', index_type: 'INVERTED' });
    expect(inv.error_code).toBe(ErrorCode.IllegalArgument);
    expect(inv.reason).toContain('RTREE');
    const onId = await t.client.createIndex({ collection_name: PLAIN, field_name: 'id', index_type: 'RTREE' });
    expect(onId.error_code).toBe(ErrorCode.IllegalArgument);
  });

  it('answers every ST_* filter like the naive jsts reference, indexed or not, and after a restore', async () => {
    const c = t.client;
    let nonEmpty = 0;
    for (const [fn, wkt, metres] of QUERIES) {
      const filter = metres === undefined ? `${fn}(geo, '${wkt}')` : `${fn}(geo, '${wkt}', ${metres})`;
      const want = reference(rows, fn, wkt, metres);
      if (want.length > 0) nonEmpty++;
      expect(await ids(c, IDX, filter), filter).toEqual(want);
      expect(await ids(c, PLAIN, filter), filter).toEqual(want);
      // Combined with other predicates.
      expect(await ids(c, IDX, `id % 2 == 0 and ${filter}`)).toEqual(want.filter((id) => id % 2 === 0));
    }
    expect(nonEmpty).toBeGreaterThanOrEqual(6);

    await c.flushSync({ collection_names: [IDX] });
    await t.server.engine.waitForIndexes(t.server.engine.catalog.resolveCollection('default', IDX).id);
    const snap = await c.createSnapshot({ collection_name: IDX, snapshot_name: 'rt' });
    expect(snap.error_code, snap.reason).toBe(ErrorCode.SUCCESS);
    const r = await c.restoreSnapshot({ snapshot_name: 'rt', source_collection_name: IDX, target_collection_name: 'geo_back' });
    expect(r.status.error_code, r.status.reason).toBe(ErrorCode.SUCCESS);
    expect((await waitRestore(c, r.job_id)).state).toBe('RestoreSnapshotCompleted');
    await c.loadCollectionSync({ collection_name: 'geo_back' });
    const engine = t.server.engine;
    const back = engine.catalog.resolveCollection('default', 'geo_back').id;
    await engine.waitForIndexes(back); // a background compaction of the restored segments is indexed by the next pass
    for (const info of engine.queryNode.segmentInfos(back).filter((i) => i.state === 'Flushed')) {
      expect(info.indexed.map((x) => x.fieldName)).toEqual(['geo']);
    }
    for (const [fn, wkt, metres] of QUERIES) {
      const filter = metres === undefined ? `${fn}(geo, '${wkt}')` : `${fn}(geo, '${wkt}', ${metres})`;
      expect(await ids(c, 'geo_back', filter), filter).toEqual(reference(rows, fn, wkt, metres));
    }
  });

  it('refuses malformed WKB naming the row; nothing is written', async () => {
    const c = t.client;
    const pool = (c as unknown as { channelPool: unknown }).channelPool;
    const raw = (await promisify(
      pool as never,
      'Insert',
      {
        collection_name: PLAIN,
        num_rows: 2,
        fields_data: [
          { field_name: 'id', type: DataType.Int64, scalars: { long_data: { data: ['90001', '90002'] } } },
          { field_name: 'vec', type: DataType.FloatVector, vectors: { dim: 2, float_vector: { data: [0, 1, 0, 1] } } },
          { field_name: 'geo', type: DataType.Geometry, scalars: { geometry_data: { data: [wkb('POINT(1 2)'), Buffer.from([1, 1, 0, 0, 0, 1])] } } },
        ],
      },
      10_000,
    )) as { status: { error_code: string; reason: string } };
    expect(raw.status.error_code).not.toBe(ErrorCode.SUCCESS);
    expect(raw.status.reason).toMatch(/invalid WKB geometry for field geo at row 1/);
    expect(await ids(c, PLAIN, 'id > 90000')).toEqual([]);
  });
});
