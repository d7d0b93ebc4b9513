import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DataType, ErrorCode } from '@zilliz/milvus2-sdk-node';
import { SnapshotInsightCommands } from '../src/cli/snapshot-insight-commands.js';
import type { OutputSink } from '../src/cli/snapshot-commands.js';
import { ScheduleStore } from '../src/coord/snapshot/policy/schedule-store.js';
import { openMeta } from '../src/meta/open-meta.js';
import { startTestServer, until, type TestServer } from './helpers.js';

function capture(): OutputSink & { stdout: string[]; stderr: string[] } {
  const stdout: string[] = [];
  const stderr: string[] = [];
  return { stdout, stderr, out: (l) => stdout.push(l), err: (l) => stderr.push(l) };
}

const fields = [
  { name: 'id', data_type: DataType.Int64, is_primary_key: true },
  { name: 'v', data_type: DataType.FloatVector, dim: 2 },
];

describe('snapshot schedules and retention through collection properties', () => {
  let t: TestServer;
  const scheduled = async (name: string) =>
    ((await t.client.listSnapshots({ collection_name: name })).snapshots ?? []).filter((s) => s.startsWith('auto_')).sort();

  beforeAll(async () => {
    t = await startTestServer({ autoCompaction: false });
  });
  afterAll(async () => {
    await t?.close();
  });

  it('refuses a negative, fractional or non-numeric value, naming it', async () => {
    // The SDK's createCollection rejects with the status; others resolve with it: take either.
    const settle = async (p: Promise<unknown>) => (await p.catch((e: unknown) => e)) as { error_code: string; reason: string };
    const bad = await settle(t.client.createCollection({ collection_name: 'bad', fields, properties: { 'snapshot.schedule.interval.seconds': '-5' } }));
    expect(bad.error_code).not.toBe(ErrorCode.SUCCESS);
    expect(bad.reason).toContain('snapshot.schedule.interval.seconds "-5" is invalid');
    await t.client.createCollection({ collection_name: 'ok', fields });
    for (const [k, v] of [
      ['snapshot.schedule.interval.seconds', '1.5'],
      ['snapshot.retention.count', 'ten'],
      ['snapshot.retention.max_age.seconds', '-1'],
    ] as const) {
      const r = await settle(t.client.alterCollectionProperties({ collection_name: 'ok', properties: { [k]: v } }));
      expect(r.error_code).not.toBe(ErrorCode.SUCCESS);
      expect(r.reason).toContain(`${k} "${v}" is invalid`);
    }
    const s = capture();
    const cli = new SnapshotInsightCommands({ client: t.client, sink: s });
    expect(await cli.schedule({ db: 'default', collection: 'ok' })).toBe(0);
    expect(s.stdout).toEqual(['collection ok: no schedule, keep all, max age none']);
  });

  it('takes snapshots on schedule, keeps the newest N, never drops a pinned one; 0 turns it off across a restart', async () => {
    await t.client.createCollection({ collection_name: 'sched', fields });
    await t.client.insert({ collection_name: 'sched', data: [{ id: 1, v: [0, 1] }] });
    await t.client.createSnapshot({ collection_name: 'sched', snapshot_name: 'manual' });
    const s = capture();
    const cli = new SnapshotInsightCommands({ client: t.client, sink: s });
    expect(await cli.schedule({ db: 'default', collection: 'sched', everySeconds: 1, keep: 2 })).toBe(0);
    expect(s.stdout).toEqual(['collection sched: snapshot every 1s, keep 2, max age none']);

    const seen = new Set<string>();
    await until(
      async () => {
        for (const n of await scheduled('sched')) seen.add(n);
        return seen.size >= 4;
      },
      { timeoutMs: 30_000 },
    );
    await until(async () => (await scheduled('sched')).length === 2);
    const all = (await t.client.listSnapshots({ collection_name: 'sched' })).snapshots;
    expect(all).toContain('manual'); // retention never touches a snapshot a user named

    // Pin the oldest scheduled one: it outlives the retention.
    const [oldest] = await scheduled('sched');
    const pin = await t.client.pinSnapshotData({ collection_name: 'sched', snapshot_name: oldest!, ttl_seconds: 0 } as never);
    expect(pin.status.error_code).toBe(ErrorCode.SUCCESS);
    const start = new Set(await scheduled('sched'));
    await until(async () => (await scheduled('sched')).filter((n) => !start.has(n)).length >= 2, { timeoutMs: 30_000 });
    expect(await scheduled('sched')).toContain(oldest);

    // Turn the schedule off, restart; nothing more is taken, and the schedule record is gone.
    expect(await cli.schedule({ db: 'default', collection: 'sched', everySeconds: 0, keep: 0 })).toBe(0);
    await until(async () => (await t.server.extras.schedules.list()).length === 0);
    const frozen = await scheduled('sched');
    t = await t.restart();
    expect(await scheduled('sched')).toEqual(frozen);
  });

  it('a schedule missed while the server was down takes one snapshot at restart', async () => {
    await t.client.createCollection({ collection_name: 'missed', fields, properties: { 'snapshot.schedule.interval.seconds': '3600' } });
    const coll = t.server.engine.catalog.resolveCollection('default', 'missed');
    const store = t.server.extras.schedules;
    await until(async () => (await store.list()).some((s) => s.record.collectionId === coll.id));
    // Stop the server, then make its persisted last run ten intervals old, as if it had been down that long.
    const before = (await scheduled('missed')).length;
    const dir = t.dataDir;
    await t.close({ keepData: true });
    const kv = await openMeta('sqlite', { dataDir: dir });
    const offline = new ScheduleStore(kv);
    const rec = (await offline.list()).find((s) => s.record.collectionId === coll.id)!;
    expect(rec.record.state).toBe('Idle');
    await offline.update(rec, { lastRunMs: Date.now() - 10 * 3600_000 });
    await kv.close();
    t = await startTestServer({ autoCompaction: false }, {}, dir);
    const restartedAtMs = Date.now();
    await until(async () => (await scheduled('missed')).length > before);
    // Ten intervals missed: one snapshot, and the next is due one interval after it (not ten at once).
    const schedule = async () => (await t.server.extras.schedules.list()).find((x) => x.record.collectionId === coll.id)!.record;
    await until(async () => (await schedule()).state === 'Idle' && (await schedule()).lastRunMs >= restartedAtMs);
    expect((await scheduled('missed')).length).toBe(before + 1);
  });
});
