import { describe, expect, it } from 'vitest';
import { DataType, ErrorCode, type MilvusClient } from '@zilliz/milvus2-sdk-node';
import { seededRandom } from '../src/testing/index.js';
import { until, waitRestore } from './helpers.js';
import { killableServer } from './process.js';

/**
 * Timestamptz through the official SDK: ISO-8601 strings with zones in, RFC 3339 out in UTC, in the
 * request's `timezone` and in the collection's `collection.timezone`; defaults and nulls; comparisons and
 * INTERVAL arithmetic in filters against a reference computed here with plain epoch milliseconds; kill -9,
 * compaction, snapshot and restore; strings in no known format refused with the value named.
 */

const COLL = 'tsz';
/* eslint-disable @typescript-eslint/no-explicit-any */

interface Row {
  id: number;
  vec: number[];
  /** Epoch ms (whole seconds), or null. */
  ts: number | null;
  /** The text sent for ts: the same instant written in one of several zones. */
  text: string | null;
  /** Epoch ms of the defaulted field (undefined: not sent, the default applies). */
  due: number | undefined;
}

const DEFAULT_DUE = Date.parse('2025-01-01T00:00:00Z');
const BASE = Date.parse('2025-01-01T00:00:00Z');
const DAY = 86_400_000;
const rnd = seededRandom(17);
const pad = (n: number): string => String(n).padStart(2, '0');

/** The instant `ms` written with a fixed offset of `offMin` minutes (an independent formatter). */
function withOffset(ms: number, offMin: number): string {
  const d = new Date(ms + offMin * 60_000);
  const sign = offMin < 0 ? '-' : '+';
  const abs = Math.abs(offMin);
  const date = `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())}T${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}`;
  return offMin === 0 ? `${date}Z` : `${date}${sign}${pad(Math.floor(abs / 60))}:${pad(abs % 60)}`;
}

function makeRow(id: number): Row {
  const ts = id % 11 === 5 ? null : BASE + Math.floor(rnd() * 60) * DAY + Math.floor(rnd() * 86_400) * 1000;
  const offsets = [0, 480, -300, 330, -600];
  const text = ts === null ? null : withOffset(ts, offsets[id % offsets.length]!);
  const due = id % 3 === 0 ? undefined : BASE + Math.floor(rnd() * 30) * DAY;
  return { id, vec: [rnd(), rnd(), rnd(), rnd()], ts, text, due };
}

function toInsert(r: Row): Record<string, unknown> {
  const out: Record<string, unknown> = { id: r.id, vec: r.vec, ts: r.text };
  if (r.due !== undefined) out['due'] = withOffset(r.due, 60);
  return out;
}

async function queryIds(c: MilvusClient, coll: string, filter: string): Promise<number[]> {
  const q = await c.query({ collection_name: coll, filter, output_fields: ['id'], limit: 16384 });
  expect(q.status.error_code, `${filter}: ${q.status.reason}`).toBe(ErrorCode.SUCCESS);
  return q.data.map((d) => Number(d['id'])).sort((a, b) => a - b);
}

const idsWhere = (model: Map<number, Row>, pred: (r: Row) => boolean): number[] =>
  [...model.values()]
    .filter(pred)
    .map((r) => r.id)
    .sort((a, b) => a - b);

async function checkAll(c: MilvusClient, coll: string, model: Map<number, Row>, zoneOffsetMin = 0, params?: Record<string, string>): Promise<void> {
  const q = await c.query({
    collection_name: coll,
    filter: 'id >= 0',
    output_fields: ['id', 'ts', 'due'],
    limit: 16384,
    ...(params ? { params } : {}),
  } as any);
  expect(q.status.error_code, q.status.reason).toBe(ErrorCode.SUCCESS);
  expect(q.data.length).toBe(model.size);
  for (const got of q.data) {
    const want = model.get(Number(got['id']))!;
    expect(got['ts'], `ts of ${want.id}`).toBe(want.ts === null ? null : withOffset(want.ts, zoneOffsetMin));
    expect(got['due'], `due of ${want.id}`).toBe(withOffset(want.due ?? DEFAULT_DUE, zoneOffsetMin));
  }
  const t0 = '2025-01-20T00:00:00+08:00';
  const t0ms = Date.parse(t0);
  const cases: [string, (r: Row) => boolean][] = [
    [`ts > ISO '${t0}'`, (r) => r.ts !== null && r.ts > t0ms],
    [`ts <= ISO '${t0}'`, (r) => r.ts !== null && r.ts <= t0ms],
    [`ts + INTERVAL 'P10D' < ISO '${t0}'`, (r) => r.ts !== null && r.ts + 10 * DAY < t0ms],
    [`ts - INTERVAL 'PT36H' >= due`, (r) => r.ts !== null && r.ts - 36 * 3_600_000 >= (r.due ?? DEFAULT_DUE)],
    [
      `ISO '2025-01-10T00:00:00Z' <= ts < ISO '2025-02-01T00:00:00Z'`,
      (r) => r.ts !== null && r.ts >= Date.parse('2025-01-10T00:00:00Z') && r.ts < Date.parse('2025-02-01T00:00:00Z'),
    ],
    [`due == ISO '2025-01-01T09:00:00+09:00'`, (r) => (r.due ?? DEFAULT_DUE) === DEFAULT_DUE],
    ['ts is null', (r) => r.ts === null],
  ];
  for (const [filter, pred] of cases) {
    const want = idsWhere(model, pred);
    expect(await queryIds(c, coll, filter), filter).toEqual(want);
  }
}

describe('Timestamptz fields through the SDK', () => {
  const server = killableServer('quiver-tsz-');

  it('stores instants, answers in the asked zone, filters with INTERVAL, survives kill -9, compaction and restore', { timeout: 120_000 }, async () => {
    let c = (await server.start()).client;
    const created = await c.createCollection({
      collection_name: COLL,
      fields: [
        { name: 'id', data_type: DataType.Int64, is_primary_key: true, autoID: false },
        { name: 'vec', data_type: DataType.FloatVector, dim: 4 },
        { name: 'ts', data_type: DataType.Timestamptz, nullable: true },
        { name: 'due', data_type: DataType.Timestamptz, default_value: '2025-01-01T00:00:00Z' },
      ],
    });
    expect(created.error_code, created.reason).toBe(ErrorCode.SUCCESS);
    const d = await c.describeCollection({ collection_name: COLL });
    expect(d.schema.fields.map((f) => f.data_type)).toEqual(['Int64', 'FloatVector', 'Timestamptz', 'Timestamptz']);

    const model = new Map<number, Row>();
    const batch1 = Array.from({ length: 120 }, (_, i) => makeRow(i));
    const batch2 = Array.from({ length: 50 }, (_, i) => makeRow(120 + i));
    const ins1 = await c.insert({ collection_name: COLL, data: batch1.map(toInsert) as any });
    expect(ins1.status.error_code, ins1.status.reason).toBe(ErrorCode.SUCCESS);
    await c.flushSync({ collection_names: [COLL] });
    expect((await c.insert({ collection_name: COLL, data: batch2.map(toInsert) as any })).status.error_code).toBe(ErrorCode.SUCCESS);
    for (const r of [...batch1, ...batch2]) model.set(r.id, r);

    expect((await c.createIndex({ collection_name: COLL, field_name: 'vec', index_type: 'FLAT', metric_type: 'L2' })).error_code).toBe(ErrorCode.SUCCESS);
    await c.loadCollection({ collection_name: COLL });
    await checkAll(c, COLL, model);

    // Microseconds survive; the request's timezone and the collection's both shape the output.
    const micro = { id: 500, vec: [0, 0, 0, 0], ts: '2025-05-01T23:59:59.123456+08:00' };
    expect((await c.insert({ collection_name: COLL, data: [micro] })).status.error_code).toBe(ErrorCode.SUCCESS);
    const one = async (params?: Record<string, string>): Promise<unknown> => {
      const q = await c.query({ collection_name: COLL, filter: 'id == 500', output_fields: ['ts'], ...(params ? { params } : {}) } as any);
      expect(q.status.error_code, q.status.reason).toBe(ErrorCode.SUCCESS);
      return q.data[0]?.['ts'];
    };
    expect(await one()).toBe('2025-05-01T15:59:59.123456Z');
    expect(await one({ timezone: 'Asia/Shanghai' })).toBe('2025-05-01T23:59:59.123456+08:00');
    expect((await c.delete({ collection_name: COLL, filter: 'id == 500' })).status.error_code).toBe(ErrorCode.SUCCESS);
    await checkAll(c, COLL, model, 480, { timezone: 'Asia/Shanghai' });
    const s = await c.search({
      collection_name: COLL,
      data: [0.5, 0.5, 0.5, 0.5],
      limit: 5,
      output_fields: ['ts'],
      filter: 'ts is not null',
      params: { timezone: 'Asia/Kolkata' },
    } as any);
    expect(s.status.error_code, s.status.reason).toBe(ErrorCode.SUCCESS);
    const hits = s.results as unknown as { id: string; ts: string }[];
    expect(hits.length).toBe(5);
    for (const h of hits) expect(h.ts).toBe(withOffset(model.get(Number(h.id))!.ts!, 330));
    const alter = await c.alterCollectionProperties({ collection_name: COLL, properties: { 'collection.timezone': 'Asia/Tokyo' } });
    expect(alter.error_code, alter.reason).toBe(ErrorCode.SUCCESS);
    await checkAll(c, COLL, model, 540);
    // A literal without an offset is read in the collection's zone too.
    expect(await queryIds(c, COLL, `due == ISO '2025-01-01 09:00:00'`)).toEqual(idsWhere(model, (r) => r.due === undefined || r.due === DEFAULT_DUE));

    // Bad input: named in the reason, nothing written, the server stays up.
    for (const bad of ['yesterday', '2025-02-30T00:00:00Z', '2025/01/01 10:00']) {
      const r = await c.insert({ collection_name: COLL, data: [{ id: 9_000, vec: [0, 0, 0, 0], ts: bad }] });
      expect(r.status.error_code, bad).toBe(ErrorCode.IllegalArgument);
      expect(r.status.reason).toContain(bad);
      const f = await c.query({ collection_name: COLL, filter: `ts > ISO '${bad}'`, output_fields: ['id'] });
      expect(f.status.error_code, bad).toBe(ErrorCode.IllegalArgument);
      expect(f.status.reason).toContain(bad);
    }
    const iv = await c.query({ collection_name: COLL, filter: `ts + INTERVAL 'one day' > ISO '2025-01-01T00:00:00Z'`, output_fields: ['id'] });
    expect(iv.status.reason).toContain('one day');
    const tz = await c.query({ collection_name: COLL, filter: 'id >= 0', output_fields: ['ts'], params: { timezone: 'Mars/Olympus' } } as any);
    expect(tz.status.error_code).toBe(ErrorCode.IllegalArgument);
    expect(tz.status.reason).toContain('Mars/Olympus');
    const badProp = await c.alterCollectionProperties({ collection_name: COLL, properties: { 'collection.timezone': 'Nowhere/Land' } });
    expect(badProp.reason).toContain('Nowhere/Land');
    expect(await queryIds(c, COLL, 'id == 9000')).toEqual([]);

    // kill -9: the growing rows come back from the WAL; the collection zone is persisted.
    c = (await server.restart()).client;
    await c.loadCollection({ collection_name: COLL });
    await checkAll(c, COLL, model, 540);

    await c.flushSync({ collection_names: [COLL] });
    const comp = await c.compact({ collection_name: COLL });
    expect(comp.status.error_code).toBe(ErrorCode.SUCCESS);
    await until(async () => String((await c.getCompactionState({ compactionID: comp.compactionID })).state) === 'Completed');
    await checkAll(c, COLL, model, 0, { timezone: 'UTC' });

    expect((await c.createSnapshot({ collection_name: COLL, snapshot_name: 'tsz_snap' })).error_code).toBe(ErrorCode.SUCCESS);
    const job = await c.restoreSnapshot({ snapshot_name: 'tsz_snap', source_collection_name: COLL, target_collection_name: 'tsz_restored' });
    expect(job.status.error_code, job.status.reason).toBe(ErrorCode.SUCCESS);
    expect((await waitRestore(c, job.job_id)).state).toBe('RestoreSnapshotCompleted');
    await c.loadCollection({ collection_name: 'tsz_restored' });
    // Restore keeps the collection's properties, its time zone among them.
    await checkAll(c, 'tsz_restored', model, 540);
  });
});
