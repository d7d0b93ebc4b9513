import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { DataType, ErrorCode, type MilvusClient } from '@zilliz/milvus2-sdk-node';
import { FaultyObjectStore } from '../src/storage/faulty-object-store.js';
import { startTestServer, vectors, waitRestore, type TestServer } from './helpers.js';
import { spawnServer } from './process.js';

const fields = [
  { name: 'id', data_type: DataType.Int64, is_primary_key: true },
  { name: 'v', data_type: DataType.FloatVector, dim: 4 },
];

async function seed(c: MilvusClient, name: string, rows: number, segments: number): Promise<void> {
  await c.createCollection({ collection_name: name, fields });
  const vs = vectors(rows, 4, 21);
  const per = Math.ceil(rows / segments);
  for (let s = 0; s < segments; s++) {
    await c.insert({ collection_name: name, data: vs.slice(s * per, (s + 1) * per).map((v, i) => ({ id: s * per + i, v })) });
    await c.flushSync({ collection_names: [name] });
  }
}


describe('snapshot faults: object-store errors', () => {
  let t: TestServer | undefined;
  let faulty: FaultyObjectStore | undefined;
  afterAll(async () => {
    await t?.close();
  });

  it('an object-store error during create leaves no snapshot (never COMMITTED with missing manifests); a retry succeeds', async () => {
    t = await startTestServer({ autoCompaction: false, copyCheckIntervalMs: 50 }, {
      wrapStore: (s) => (faulty = new FaultyObjectStore(s, { failOn: () => false })),
    });
    const c = t.client;
    await seed(c, 'src', 120, 3);
    faulty!.setFailOn((op, key) => op === 'put' && key.startsWith('snapshots/') && key.endsWith('.json'));
    const r = await c.createSnapshot({ collection_name: 'src', snapshot_name: 's1' });
    expect(r.error_code).not.toBe(ErrorCode.SUCCESS);
    expect(r.reason).toMatch(/snapshots\//);
    expect((await c.listSnapshots({ collection_name: 'src' })).snapshots).toEqual([]);
    const coll = t.server.engine.catalog.resolveCollection('default', 'src');
    expect(await t.server.snapshots.records.list(coll.id)).toEqual([]);
    expect(await t.server.engine.store.list(`snapshots/${coll.id}/metadata/`)).toEqual([]);
    faulty!.setFailOn(() => false);
    expect((await c.createSnapshot({ collection_name: 'src', snapshot_name: 's1' })).error_code).toBe(ErrorCode.SUCCESS);
  });

  it('an object-store error during copy fails the job, rolls the target back and leaks nothing; the source is untouched', async () => {
    const c = t!.client;
    const engine = t!.server.engine;
    const before = (await engine.store.list('')).map((o) => o.key).sort();
    let copies = 0;
    faulty!.setFailOn((op) => op === 'copy' && ++copies > 4);
    const r = await c.restoreSnapshot({ snapshot_name: 's1', source_collection_name: 'src', target_collection_name: 'dst' });
    expect(r.status.error_code).toBe(ErrorCode.SUCCESS);
    const info = await waitRestore(c, r.job_id);
    expect(info.state).toBe('RestoreSnapshotFailed');
    expect(info.reason).toMatch(/insert_log|delta_log|stats_log|index_files/);
    faulty!.setFailOn(() => false);
    expect((await c.hasCollection({ collection_name: 'dst' })).value).toBe(false);
    // Every copied file is gone again: the store holds exactly what it held before the restore.
    const after = (await engine.store.list('')).map((o) => o.key).sort();
    expect(after).toEqual(before);
    await c.loadCollectionSync({ collection_name: 'src' });
    expect((await c.count({ collection_name: 'src' })).data).toBe(120);
    // The name is free again and a healthy restore completes.
    const again = await c.restoreSnapshot({ snapshot_name: 's1', source_collection_name: 'src', target_collection_name: 'dst' });
    expect((await waitRestore(c, again.job_id)).state).toBe('RestoreSnapshotCompleted');
    await c.loadCollectionSync({ collection_name: 'dst' });
    expect((await c.count({ collection_name: 'dst' })).data).toBe(120);
  });
});

describe('snapshot crashes: kill -9 during create and during restore', () => {
  const dirs: string[] = [];
  afterAll(async () => {
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });

  it('kill -9 during create: after restart no half snapshot is visible, the abandoned one is reaped, the name is reusable', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'quiver-snapcrash-'));
    dirs.push(dir);
    let srv = await spawnServer(dir, { QUIVER_FAULT_SNAPSHOT_PAUSE_MS: '60000' });
    await seed(srv.client, 'src', 60, 2);
    const pending = srv.client.createSnapshot({ collection_name: 'src', snapshot_name: 'half' }).catch(() => undefined);
    // The manifests and the metadata file are written, the record is still PENDING: kill inside that window.
    await new Promise((r) => setTimeout(r, 1500));
    await srv.kill9();
    await pending;
    srv = await spawnServer(dir, { QUIVER_SNAPSHOT_PENDING_TIMEOUT_MS: '0', QUIVER_GC_INTERVAL_MS: '100' });
    const c = srv.client;
    expect((await c.listSnapshots({ collection_name: 'src' })).snapshots).toEqual([]);
    expect((await c.describeSnapshot({ collection_name: 'src', snapshot_name: 'half' })).status.error_code).not.toBe(ErrorCode.SUCCESS);
    // The reaper removes the abandoned PENDING record (files first, meta last); then the name is free.
    let created = false;
    for (let i = 0; i < 100 && !created; i++) {
      created = (await c.createSnapshot({ collection_name: 'src', snapshot_name: 'half' })).error_code === ErrorCode.SUCCESS;
      if (!created) await new Promise((r) => setTimeout(r, 100));
    }
    expect(created).toBe(true);
    await c.loadCollectionSync({ collection_name: 'src' });
    expect((await c.count({ collection_name: 'src' })).data).toBe(60);
    await srv.stop();
  });

  it('kill -9 during restore: after restart the job completes (or fails and rolls back); the target is never half-visible; the source is untouched', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'quiver-restorecrash-'));
    dirs.push(dir);
    let srv = await spawnServer(dir, { QUIVER_FAULT_COPY_DELAY_MS: '1500', QUIVER_COPY_CHECK_INTERVAL_MS: '100' });
    await seed(srv.client, 'src', 200, 4);
    expect((await srv.client.createSnapshot({ collection_name: 'src', snapshot_name: 's' })).error_code).toBe(ErrorCode.SUCCESS);
    const r = await srv.client.restoreSnapshot({ snapshot_name: 's', source_collection_name: 'src', target_collection_name: 'dst' });
    expect(r.status.error_code).toBe(ErrorCode.SUCCESS);
    // Wait until the copy is under way (each copy waits 1.5 s, so the job cannot finish meanwhile).
    let mid = await srv.client.getRestoreSnapshotState({ job_id: r.job_id });
    for (let i = 0; i < 200 && mid.info.state !== 'RestoreSnapshotExecuting'; i++) {
      await new Promise((r2) => setTimeout(r2, 25));
      mid = await srv.client.getRestoreSnapshotState({ job_id: r.job_id });
    }
    expect(mid.info.state).toBe('RestoreSnapshotExecuting');
    await new Promise((r2) => setTimeout(r2, 300));
    // Not visible while the job runs.
    expect((await srv.client.hasCollection({ collection_name: 'dst' })).value).toBe(false);
    await srv.kill9();
    srv = await spawnServer(dir, { QUIVER_COPY_CHECK_INTERVAL_MS: '100' });
    const c = srv.client;
    const info = await waitRestore(c, r.job_id);
    const visible = (await c.hasCollection({ collection_name: 'dst' })).value;
    if (info.state === 'RestoreSnapshotCompleted') {
      expect(visible).toBe(true);
      await c.loadCollectionSync({ collection_name: 'dst' });
      expect((await c.count({ collection_name: 'dst' })).data).toBe(200);
    } else {
      expect(visible).toBe(false);
    }
    await c.loadCollectionSync({ collection_name: 'src' });
    expect((await c.count({ collection_name: 'src' })).data).toBe(200);
    await srv.stop();
  });
});
