import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DataType, ErrorCode, MilvusClient } from '@zilliz/milvus2-sdk-node';
import { seededRandom } from '../src/testing/index.js';
import { startTestServer, type TestServer } from './helpers.js';

/**
 * Timestamptz with an STL_SORT index, and filter literals written without an offset read in the zone
 * Milvus reads them in: the request's `timezone`, else the collection's `collection.timezone`, else the
 * database's `database.timezone`. An indexed and an unindexed collection hold the same rows; every filter
 * answers what a reference computed here (fixed-offset zones, so the reference needs no tz database) says.
 */

const DB = 'tzdb';
const IDX = 'ts_idx';
const PLAIN = 'ts_plain';
const rnd = seededRandom(23);
const JAN = Date.parse('2025-01-01T00:00:00Z');
const HOUR = 3_600_000;

interface Row {
  id: number;
  ms: number | null;
}

async function ids(c: MilvusClient, coll: string, filter: string, params?: Record<string, string>): Promise<number[]> {
  const res = await c.query({ db_name: DB, collection_name: coll, filter, output_fields: ['id'], limit: 16_384, ...(params ? { params } : {}) } as never);
  expect(res.status.error_code, `${filter}: ${res.status.reason}`).toBe(ErrorCode.SUCCESS);
  return res.data.map((r) => Number(r['id'])).sort((a, b) => a - b);
}

describe('Timestamptz: STL_SORT index and the zone of filter literals', () => {
  let t: TestServer;
  const rows: Row[] = [];

  beforeAll(async () => {
    t = await startTestServer();
    const c = t.client;
    expect((await c.createDatabase({ db_name: DB, properties: { 'database.timezone': 'Asia/Kolkata' } } as never)).error_code).toBe(ErrorCode.SUCCESS);
    for (let id = 0; id < 900; id++) rows.push({ id, ms: id % 10 === 3 ? null : JAN + Math.floor(rnd() * 31 * 24) * HOUR + (id % 2) * 30 * 60_000 });
    for (const name of [IDX, PLAIN]) {
      const r = await c.createCollection({
        db_name: DB,
        collection_name: name,
        fields: [
          { name: 'id', data_type: DataType.Int64, is_primary_key: true },
          { name: 'vec', data_type: DataType.FloatVector, dim: 2 },
          { name: 'ts', data_type: DataType.Timestamptz, nullable: true },
        ],
      });
      expect(r.error_code, r.reason).toBe(ErrorCode.SUCCESS);
      await c.createIndex({ db_name: DB, collection_name: name, field_name: 'vec', index_type: 'FLAT', metric_type: 'L2' });
      const data = (from: number, to: number) =>
        rows.slice(from, to).map((r) => ({ id: r.id, vec: [r.id, 1], ts: r.ms === null ? null : new Date(r.ms).toISOString() }));
      expect((await c.insert({ db_name: DB, collection_name: name, data: data(0, 400) })).status.error_code).toBe(ErrorCode.SUCCESS);
      await c.flushSync({ db_name: DB, collection_names: [name] });
      expect((await c.insert({ db_name: DB, collection_name: name, data: data(400, 800) })).status.error_code).toBe(ErrorCode.SUCCESS);
      await c.flushSync({ db_name: DB, collection_names: [name] });
      expect((await c.insert({ db_name: DB, collection_name: name, data: data(800, 900) })).status.error_code).toBe(ErrorCode.SUCCESS);
    }
    const ix = await c.createIndex({ db_name: DB, collection_name: IDX, field_name: 'ts', index_name: 'ts_sort', index_type: 'STL_SORT' });
    expect(ix.error_code, ix.reason).toBe(ErrorCode.SUCCESS);
    await t.server.engine.waitForIndexes(t.server.engine.catalog.resolveCollection(DB, IDX).id);
    await c.loadCollectionSync({ db_name: DB, collection_name: IDX });
    await c.loadCollectionSync({ db_name: DB, collection_name: PLAIN });
  }, 120_000);
  afterAll(async () => {
    await t?.close();
  });

  /** Every filter shape, its literals written without an offset, read at `offsetMin` east of UTC. */
  async function check(params: Record<string, string> | undefined, offsetMin: number): Promise<void> {
    const c = t.client;
    const at = (local: string) => Date.parse(`${local}Z`) - offsetMin * 60_000;
    const a = '2025-01-10T12:00:00';
    const b = '2025-01-20T06:30:00';
    const cases: [string, (ms: number) => boolean][] = [
      [`ts > ISO '${a}'`, (ms) => ms > at(a)],
      [`ts <= '${b}'`, (ms) => ms <= at(b)],
      [`ISO '${a}' <= ts < ISO '${b}'`, (ms) => ms >= at(a) && ms < at(b)],
      [`ts == ISO '${b}'`, (ms) => ms === at(b)],
      [`ts >= ISO '${a}+08:00' and id % 3 == 0`, (ms) => ms >= Date.parse(`${a}+08:00`)], // an explicit offset wins
    ];
    let nonTrivial = 0;
    for (const [filter, pred] of cases) {
      const want = rows.filter((r) => r.ms !== null && pred(r.ms) && (!filter.includes('id % 3') || r.id % 3 === 0)).map((r) => r.id);
      if (want.length > 0 && want.length < rows.length / 2) nonTrivial++;
      expect(await ids(c, IDX, filter, params), `${filter} ${JSON.stringify(params)}`).toEqual(want);
      expect(await ids(c, PLAIN, filter, params), `${filter} ${JSON.stringify(params)}`).toEqual(want);
    }
    expect(nonTrivial).toBeGreaterThanOrEqual(2);
  }

  it('builds the STL_SORT index per sealed segment and serves it', async () => {
    const engine = t.server.engine;
    const di = await t.client.describeIndex({ db_name: DB, collection_name: IDX, index_name: 'ts_sort' });
    expect(di.index_descriptions[0]!.params.find((p) => p.key === 'index_type')?.value).toBe('STL_SORT');
    const collId = engine.catalog.resolveCollection(DB, IDX).id;
    const flushed = engine.queryNode.segmentInfos(collId).filter((i) => i.state === 'Flushed');
    expect(flushed.length).toBeGreaterThan(0);
    for (const info of flushed) expect(info.indexed.map((x) => x.fieldName)).toEqual(['ts']);
  });

  it('reads literals in the request zone, else the database zone, indexed or not', async () => {
    await check({ timezone: 'Asia/Shanghai' }, 480);
    await check(undefined, 330); // database.timezone Asia/Kolkata
    await check({ timezone: 'UTC' }, 0);
    // The same for a search's filter.
    const s = await t.client.search({
      db_name: DB,
      collection_name: IDX,
      data: [1, 1],
      limit: 900,
      filter: "ts < ISO '2025-01-05T00:00:00'",
      params: { timezone: 'Asia/Shanghai' },
    } as never);
    expect(s.status.error_code, s.status.reason).toBe(ErrorCode.SUCCESS);
    const got = (s.results as unknown as { id: string }[]).map((h) => Number(h.id)).sort((a, b) => a - b);
    expect(got).toEqual(rows.filter((r) => r.ms !== null && r.ms < Date.parse('2025-01-05T00:00:00+08:00')).map((r) => r.id));
  });

  it('reads literals in the collection zone over the database zone, the request zone over both', async () => {
    for (const name of [IDX, PLAIN]) {
      const r = await t.client.alterCollectionProperties({ db_name: DB, collection_name: name, properties: { 'collection.timezone': 'Asia/Tokyo' } });
      expect(r.error_code, r.reason).toBe(ErrorCode.SUCCESS);
    }
    await check(undefined, 540);
    await check({ timezone: 'Asia/Shanghai' }, 480);
    const bad = await t.client.query({
      db_name: DB,
      collection_name: IDX,
      filter: "ts > ISO '2025-01-01T00:00:00'",
      params: { timezone: 'Mars/Olympus' },
    } as never);
    expect(bad.status.error_code).not.toBe(ErrorCode.SUCCESS);
  });
});
