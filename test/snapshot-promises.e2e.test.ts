import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { afterEach, describe, expect, it } from 'vitest';
import { DataType, ErrorCode, type MilvusClient } from '@zilliz/milvus2-sdk-node';
import { WriteModel, rng, tagOf, v0Of, type ObservedRow, type WriteKind } from './crash/write-model.js';
import { collectionFileKeys, objectKeys } from './data-dir.js';
import { until, vectors, waitRestore } from './helpers.js';
import { spawnServer, type ServerProcess } from './process.js';

/**
 * The README's snapshot promises, end to end against a real server process:
 *   - "Garbage collection never deletes a file a snapshot references (the RefIndex is loaded before GC may
 *     delete anything, after every restart)", with the source compacted and dropped;
 *   - create "contains every write acknowledged before the call ... and nothing written after it", with
 *     writers running during the create.
 */

const servers = new Set<ServerProcess>();
const dirs: string[] = [];
afterEach(async () => {
  for (const s of servers) await s.kill9();
  servers.clear();
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

async function spawn(dir: string, env: Record<string, string>): Promise<ServerProcess> {
  const s = await spawnServer(dir, env);
  servers.add(s);
  return s;
}

async function readRows(c: MilvusClient, collection: string): Promise<ObservedRow[]> {
  await c.loadCollectionSync({ collection_name: collection });
  const q = await c.query({ collection_name: collection, filter: 'id >= 0', output_fields: ['id', 'val', 'tag', 'v'] });
  expect(q.status.error_code, q.status.reason).toBe(ErrorCode.SUCCESS);
  return q.data.map((r) => ({ id: Number(r['id']), val: Number(r['val']), tag: String(r['tag']), v0: Number((r['v'] as number[])[0]) }));
}

const fields = [
  { name: 'id', data_type: DataType.Int64, is_primary_key: true },
  { name: 'val', data_type: DataType.Int64 },
  { name: 'tag', data_type: DataType.VarChar, max_length: 64 },
  { name: 'v', data_type: DataType.FloatVector, dim: 4 },
];
const rowsOf = (keys: readonly number[], val: number) => keys.map((id) => ({ id, val, tag: tagOf(id, val), v: [v0Of(val), ...vectors(1, 3, id)[0]!] }));

describe('snapshot → compact → drop the source → restart → GC with zero grace → restore', () => {
  it('the restore equals the snapshot row for row; GC deleted the unreferenced files and none the snapshot names', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'quiver-gc-restart-'));
    dirs.push(dir);
    const env = { QUIVER_AUTO_COMPACTION: 'false', QUIVER_GC_DROPPED_GRACE_MS: '0', QUIVER_GC_INTERVAL_MS: '100' };
    let srv = await spawn(dir, env);
    let c = srv.client;
    await c.createCollection({ collection_name: 'src', fields });
    const collId = Number((await c.describeCollection({ collection_name: 'src' })).collectionID);
    const segmentFiles = async () => [...(await collectionFileKeys(dir, collId)), ...(await objectKeys(dir, 'index_files'))];
    for (let b = 0; b < 3; b++) {
      const keys = Array.from({ length: 100 }, (_, i) => b * 100 + i);
      expect((await c.insert({ collection_name: 'src', data: rowsOf(keys, 1000 + b) })).status.error_code).toBe(ErrorCode.SUCCESS);
      await c.flushSync({ collection_names: ['src'] });
    }
    // A flushed delete and an upsert: the snapshot's deltalogs matter too.
    await c.delete({ collection_name: 'src', ids: [5, 150] });
    await c.upsert({ collection_name: 'src', data: rowsOf([7, 250], 2000) });
    await c.createIndex({ collection_name: 'src', field_name: 'v', index_type: 'HNSW', metric_type: 'L2', params: { M: 8, efConstruction: 32 } });
    expect((await c.createSnapshot({ collection_name: 'src', snapshot_name: 'keep' })).error_code).toBe(ErrorCode.SUCCESS);
    const expected = await readRows(c, 'src');
    expect(expected).toHaveLength(298);
    await until(async () => (await c.describeIndex({ collection_name: 'src', field_name: 'v' })).index_descriptions[0]?.state === 'Finished');
    const referenced = await segmentFiles();
    // The pin keeps the snapshot when its collection is dropped (README: pinned snapshots outlive the drop).
    const pin = await c.pinSnapshotData({ collection_name: 'src', snapshot_name: 'keep' });
    expect(pin.status.error_code).toBe(ErrorCode.SUCCESS);

    const task = await c.compact({ collection_name: 'src' });
    await until(async () => String((await c.getCompactionState({ compactionID: task.compactionID })).state) === 'Completed');
    const merged = (await segmentFiles()).filter((k) => !referenced.includes(k));
    expect(merged.length).toBeGreaterThan(0);
    await c.releaseCollection({ collection_name: 'src' });
    expect((await c.dropCollection({ collection_name: 'src' })).error_code).toBe(ErrorCode.SUCCESS);

    await srv.stop();
    servers.delete(srv);
    srv = await spawn(dir, env);
    c = srv.client;
    // GC runs after the restart with no grace: the merged segment of the dropped collection goes (the
    // event we wait for), while every file of the pinned snapshot stays.
    await until(async () => (await segmentFiles()).every((k) => !merged.includes(k)));
    const now = new Set(await segmentFiles());
    expect(referenced.filter((k) => !now.has(k))).toEqual([]);

    const r = await c.restoreSnapshot({ snapshot_name: 'keep', source_collection_name: 'src', target_collection_name: 'back' });
    expect(r.status.error_code, r.status.reason).toBe(ErrorCode.SUCCESS);
    expect((await waitRestore(c, r.job_id)).state).toBe('RestoreSnapshotCompleted');
    const byId = (rows: ObservedRow[]) => [...rows].sort((a, b) => a.id - b.id);
    expect(byId(await readRows(c, 'back'))).toEqual(byId(expected));
    expect((await c.unpinSnapshotData({ pin_id: pin.pin_id })).error_code).toBe(ErrorCode.SUCCESS);
    await srv.stop();
  });
});

describe('createSnapshot while writers run', () => {
  it('each snapshot has every write acknowledged before the call, nothing sent after it returned, and in-flight writes whole or not at all', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'quiver-snap-concurrent-'));
    dirs.push(dir);
    // Small seal sizes: background flushes (and compactions) run during the creates as well.
    const srv = await spawn(dir, { QUIVER_SEAL_ROWS: '100', QUIVER_FLUSH_IDLE_MS: '100', QUIVER_BACKGROUND_INTERVAL_MS: '20' });
    const c = srv.client;
    await c.createCollection({ collection_name: 'src', fields });

    interface LoggedOp {
      readonly keys: readonly number[];
      readonly kind: WriteKind;
      readonly seq: number;
      readonly sentAt: number;
      ackedAt?: number;
    }
    const log: LoggedOp[] = [];
    const live = new WriteModel(); // what the writers know (to pick keys)
    let stop = false;
    let seq = 0;
    const writer = async (w: number) => {
      const r = rng(97 + w);
      const range = Array.from({ length: 150 }, (_, i) => w * 1000 + i);
      while (!stop) {
        const present = range.filter((k) => !live.isUncertain(k) && live.current(k) !== undefined);
        const absent = range.filter((k) => !live.isUncertain(k) && live.current(k) === undefined);
        const kind: WriteKind = present.length < 20 || r() < 0.4 ? 'insert' : r() < 0.6 ? 'upsert' : 'delete';
        const pool = kind === 'insert' ? absent : present;
        if (pool.length === 0) continue;
        const keys = [...new Set(Array.from({ length: 1 + Math.floor(r() * 10) }, () => pool[Math.floor(r() * pool.length)]!))];
        const op: LoggedOp = { keys, kind, seq: ++seq, sentAt: performance.now() };
        log.push(op);
        const h = live.begin(keys, kind, op.seq);
        const res =
          kind === 'delete'
            ? await c.delete({ collection_name: 'src', ids: keys })
            : kind === 'insert'
              ? await c.insert({ collection_name: 'src', data: rowsOf(keys, op.seq) })
              : await c.upsert({ collection_name: 'src', data: rowsOf(keys, op.seq) });
        if (res.status.error_code === ErrorCode.SUCCESS) {
          op.ackedAt = performance.now();
          h.ack();
        } else h.fail();
      }
    };
    const writers = [0, 1, 2].map(writer);
    const snaps: { name: string; sentAt: number; returnedAt: number }[] = [];
    for (let i = 0; i < 4; i++) {
      await until(() => log.filter((o) => o.ackedAt !== undefined).length >= (i + 1) * 40);
      const sentAt = performance.now();
      const res = await c.createSnapshot({ collection_name: 'src', snapshot_name: `mid${i}` });
      const returnedAt = performance.now();
      expect(res.error_code, res.reason).toBe(ErrorCode.SUCCESS);
      snaps.push({ name: `mid${i}`, sentAt, returnedAt });
    }
    // Writes go on after the last create returns, so "nothing after it" is tested for every snapshot.
    const after = log.length;
    await until(() => log.length >= after + 20);
    stop = true;
    await Promise.all(writers);

    for (const s of snaps) {
      // Acknowledged before the call was sent: must be in. Sent after it returned: must not. In flight
      // during the call: either, but whole (the model allows its outcome or the previous one per key).
      const m = new WriteModel();
      for (const op of log) {
        if (op.sentAt > s.returnedAt) continue;
        const h = m.begin(op.keys, op.kind, op.seq);
        if (op.ackedAt !== undefined && op.ackedAt < s.sentAt) h.ack();
      }
      const r = await c.restoreSnapshot({ snapshot_name: s.name, source_collection_name: 'src', target_collection_name: `r_${s.name}` });
      expect(r.status.error_code, r.status.reason).toBe(ErrorCode.SUCCESS);
      expect((await waitRestore(c, r.job_id)).state).toBe('RestoreSnapshotCompleted');
      const rows = await readRows(c, `r_${s.name}`);
      const inFlight = log.filter((o) => o.sentAt <= s.returnedAt && !(o.ackedAt !== undefined && o.ackedAt < s.sentAt)).length;
      const problems = m.check(rows);
      // For a failure report: what the writers did to those keys after the create returned.
      const later = problems.slice(0, 5).map((p) => {
        const key = Number(/^key (\d+)/.exec(p)?.[1]);
        const ops = log.filter((o) => o.sentAt > s.returnedAt && o.keys.includes(key)).map((o) => `${o.kind} #${o.seq}`);
        return `key ${key} after the create: ${ops.slice(0, 4).join(', ') || 'nothing'}`;
      });
      expect(problems, `${s.name}: ${inFlight} writes in flight during the create; ${later.join('; ')}`).toEqual([]);
      await c.releaseCollection({ collection_name: `r_${s.name}` });
    }
    // And the source itself has every acknowledged write.
    const all = new WriteModel();
    for (const op of log) {
      const h = all.begin(op.keys, op.kind, op.seq);
      if (op.ackedAt !== undefined) h.ack();
    }
    expect(all.check(await readRows(c, 'src'))).toEqual([]);
    await srv.stop();
  });
});
