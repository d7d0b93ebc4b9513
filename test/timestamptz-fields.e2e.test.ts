import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DataType, ErrorCode } from '@zilliz/milvus2-sdk-node';
import { seededRandom } from '../src/testing/index.js';
import { startTestServer, type TestServer } from './helpers.js';

/**
 * Timestamptz `time_fields` (query, search, hybrid search) against components computed here with
 * Intl.DateTimeFormat in the read's zone, and hybrid-search sub-request filters whose literals carry no
 * offset: read in the request's `timezone`, not the collection's.
 */

/* eslint-disable @typescript-eslint/no-explicit-any */

const COLL = 'tf';
const COLL_ZONE = 'Asia/Tokyo';
const rnd = seededRandom(29);

interface Row {
  id: number;
  ms: number | null;
}

/** [year, month, day, hour, minute, second] of `ms` in `zone`, by the platform's time zone data. */
function parts(ms: number, zone: string): number[] {
  const f = new Intl.DateTimeFormat('en-US', {
    timeZone: zone,
    year: 'numeric',
    month: 'numeric',
    day: 'numeric',
    hour: 'numeric',
    minute: 'numeric',
    second: 'numeric',
    hourCycle: 'h23',
  });
  const get = (t: string) => Number(f.formatToParts(new Date(ms)).find((p) => p.type === t)!.value);
  return [get('year'), get('month'), get('day'), get('hour'), get('minute'), get('second')];
}

describe('Timestamptz time_fields and hybrid-search zones through the SDK', () => {
  let t: TestServer;
  const rows: Row[] = [];
  // New York midnight of 2025-06-01 is 04:00Z; Tokyo's is 2025-05-31T15:00Z. Rows fall on both sides.
  const NY_MIDNIGHT = Date.parse('2025-06-01T04:00:00Z');
  const TOKYO_MIDNIGHT = Date.parse('2025-05-31T15:00:00Z');

  beforeAll(async () => {
    t = await startTestServer();
    const c = t.client;
    for (let id = 0; id < 80; id++) {
      let ms: number | null;
      if (id % 13 === 7) ms = null;
      else if (id < 40)
        ms = TOKYO_MIDNIGHT - 3_600_000 + Math.floor(rnd() * 15 * 3600) * 1000; // around both midnights
      else ms = Date.parse('2024-01-01T00:00:00Z') + Math.floor(rnd() * 700 * 86400) * 1000 + Math.floor(rnd() * 1000) * 1000; // spans DST changes
      rows.push({ id, ms });
    }
    const created = await c.createCollection({
      collection_name: COLL,
      fields: [
        { name: 'id', data_type: DataType.Int64, is_primary_key: true },
        { name: 'ts', data_type: DataType.Timestamptz, nullable: true },
        { name: 'v1', data_type: DataType.FloatVector, dim: 4 },
        { name: 'v2', data_type: DataType.FloatVector, dim: 4 },
      ],
      properties: { 'collection.timezone': COLL_ZONE },
    } as any);
    expect(created.error_code, created.reason).toBe(ErrorCode.SUCCESS);
    const ins = await c.insert({
      collection_name: COLL,
      data: rows.map((r) => ({ id: r.id, ts: r.ms === null ? null : new Date(r.ms).toISOString(), v1: [1, 0, 0, r.id], v2: [0, 1, r.id, 0] })),
    });
    expect(ins.status.error_code, ins.status.reason).toBe(ErrorCode.SUCCESS);
    for (const f of ['v1', 'v2']) {
      const ix = await c.createIndex({ collection_name: COLL, field_name: f, index_type: 'FLAT', metric_type: 'L2' });
      expect(ix.error_code, ix.reason).toBe(ErrorCode.SUCCESS);
    }
    expect((await c.loadCollection({ collection_name: COLL })).error_code).toBe(ErrorCode.SUCCESS);
  }, 60_000);

  afterAll(async () => {
    await t?.close();
  });

  const want = (id: number, zone: string, pick: number[]) => {
    const r = rows[id]!;
    return r.ms === null ? null : pick.map((i) => parts(r.ms!, zone)[i]!);
  };

  it('query: the components of each value in the request zone, else the collection zone; nulls stay null', async () => {
    for (const [params, zone] of [
      [{ time_fields: 'year, month, day, hour, minute, second', timezone: 'America/New_York' }, 'America/New_York'],
      [{ time_fields: 'year,month,day,hour,minute,second' }, COLL_ZONE],
    ] as const) {
      const q = await t.client.query({ collection_name: COLL, filter: 'id >= 0', output_fields: ['id', 'ts'], limit: 1000, params } as any);
      expect(q.status.error_code, q.status.reason).toBe(ErrorCode.SUCCESS);
      expect(q.data).toHaveLength(rows.length);
      for (const d of q.data) expect(d['ts'], `row ${d['id']} in ${zone}`).toEqual(want(Number(d['id']), zone, [0, 1, 2, 3, 4, 5]));
    }
    // A subset in the request's order.
    const q = await t.client.query({ collection_name: COLL, filter: 'id < 10', output_fields: ['id', 'ts'], params: { time_fields: 'day, year' } } as any);
    for (const d of q.data) expect(d['ts']).toEqual(want(Number(d['id']), COLL_ZONE, [2, 0]));
  });

  it('search and hybrid search return the components too', async () => {
    const s = await t.client.search({
      collection_name: COLL,
      anns_field: 'v1',
      data: [[1, 0, 0, 3]],
      limit: 5,
      output_fields: ['ts'],
      params: { time_fields: 'hour, minute', timezone: 'Europe/London' },
    } as any);
    expect(s.status.error_code, s.status.reason).toBe(ErrorCode.SUCCESS);
    expect(s.results.length).toBe(5);
    for (const r of s.results as any[]) expect(r.ts).toEqual(want(Number(r.id), 'Europe/London', [3, 4]));
  });

  it('refuses a time_fields element it does not know, naming it', async () => {
    const q = await t.client.query({
      collection_name: COLL,
      filter: 'id >= 0',
      output_fields: ['ts'],
      limit: 5,
      params: { time_fields: 'year, week' },
    } as any);
    expect(q.status.error_code).not.toBe(ErrorCode.SUCCESS);
    expect(q.status.reason).toMatch(/time_fields element "week" is invalid/);
  });

  it('hybrid search: an offset-free literal in a sub-request filter is read in the request timezone', async () => {
    const filter = "ts < ISO '2025-06-01T00:00:00'";
    const ref = (boundary: number) =>
      rows
        .filter((r) => r.ms !== null && r.ms < boundary)
        .map((r) => r.id)
        .sort((a, b) => a - b);
    // The two zones disagree on some rows, or the test could not tell them apart.
    expect(ref(NY_MIDNIGHT).length).toBeGreaterThan(ref(TOKYO_MIDNIGHT).length);
    for (const [zone, boundary] of [
      ['America/New_York', NY_MIDNIGHT],
      [undefined, TOKYO_MIDNIGHT],
    ] as const) {
      const params = zone ? { timezone: zone } : {};
      const h = await t.client.hybridSearch({
        collection_name: COLL,
        data: [
          { data: [[1, 0, 0, 0]], anns_field: 'v1', params, expr: filter },
          { data: [[0, 1, 0, 0]], anns_field: 'v2', params, expr: filter },
        ],
        limit: 200,
        output_fields: ['id'],
      } as any);
      expect(h.status.error_code, h.status.reason).toBe(ErrorCode.SUCCESS);
      const got = (h.results as any[]).map((r) => Number(r.id)).sort((a, b) => a - b);
      expect(got, `zone ${zone ?? COLL_ZONE}`).toEqual(ref(boundary));
    }
  });
});
