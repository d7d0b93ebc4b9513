import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { DataType, ErrorCode, type MilvusClient } from '@zilliz/milvus2-sdk-node';
import { FaultyObjectStore, type FaultPredicate } from '../src/storage/faulty-object-store.js';
import { startTestServer, until, vectors, waitRestore, type TestServer } from './helpers.js';
import { collectionDirs } from './data-dir.js';
import { killAllServers, spawnServer, type ServerProcess } from './process.js';

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

/** Every primary key of a collection, sorted (loads it first). */
async function ids(c: MilvusClient, collection: string): Promise<number[]> {
  await c.loadCollectionSync({ collection_name: collection });
  const q = await c.query({ collection_name: collection, filter: 'id >= 0', output_fields: ['id'] });
  expect(q.status.error_code, q.status.reason).toBe(ErrorCode.SUCCESS);
  return q.data.map((r) => Number(r['id'])).sort((a, b) => a - b);
}

const range = (n: number) => Array.from({ length: n }, (_, i) => i);

describe('snapshot faults: object-store errors', () => {
  let t: TestServer | undefined;
  let faulty: FaultyObjectStore | undefined;
  afterEach(async () => {
    await t?.close();
    t = undefined;
  });

  async function start(): Promise<{ c: MilvusClient; t: TestServer; faulty: FaultyObjectStore }> {
    t = await startTestServer(
      { autoCompaction: false, copyCheckIntervalMs: 50 },
      {
        wrapStore: (s) => (faulty = new FaultyObjectStore(s, { failOn: () => false })),
      },
    );
    await seed(t.client, 'src', 120, 3);
    return { c: t.client, t, faulty: faulty! };
  }

  // The metadata file is written last, manifests before it: fail each, and a manifest after another one
  // was already written (a partial set on disk).
  const createFaults: [string, () => FaultPredicate][] = [
    ['the metadata file', () => (op, key) => op === 'put' && /^snapshots\/\d+\/metadata\//.test(key)],
    [
      'the second manifest',
      () => {
        let manifests = 0;
        return (op, key) => op === 'put' && key.includes('/manifests/') && ++manifests === 2;
      },
    ],
  ];
  for (const [what, failOn] of createFaults) {
    it(`an object-store error writing ${what} during create leaves no snapshot; a retry succeeds and restores every row`, async () => {
      const { c, t, faulty } = await start();
      faulty.setFailOn(failOn());
      const r = await c.createSnapshot({ collection_name: 'src', snapshot_name: 's1' });
      expect(faulty.injectedFailures).toBe(1);
      expect(r.error_code).not.toBe(ErrorCode.SUCCESS);
      expect(r.reason).toMatch(/snapshots\//);
      expect((await c.listSnapshots({ collection_name: 'src' })).snapshots).toEqual([]);
      expect((await c.describeSnapshot({ collection_name: 'src', snapshot_name: 's1' })).status.error_code).not.toBe(ErrorCode.SUCCESS);
      const collId = Number((await c.describeCollection({ collection_name: 'src' })).collectionID);
      expect(await readdir(join(t.dataDir, 'objects', 'snapshots', String(collId), 'metadata')).catch(() => [])).toEqual([]);
      faulty.setFailOn(() => false);
      expect((await c.createSnapshot({ collection_name: 'src', snapshot_name: 's1' })).error_code).toBe(ErrorCode.SUCCESS);
      // The retried snapshot names only files that exist: its restore has every row.
      const job = await c.restoreSnapshot({ snapshot_name: 's1', source_collection_name: 'src', target_collection_name: 'dst' });
      expect((await waitRestore(c, job.job_id)).state).toBe('RestoreSnapshotCompleted');
      expect(await ids(c, 'dst')).toEqual(range(120));
    });
  }

  it('an object-store error during copy fails the job, rolls the target back and leaks nothing; the source is untouched', async () => {
    const { c, t, faulty } = await start();
    expect((await c.createSnapshot({ collection_name: 'src', snapshot_name: 's1' })).error_code).toBe(ErrorCode.SUCCESS);
    const engine = t.server.engine;
    const before = (await engine.store.list('')).map((o) => o.key).sort();
    let copies = 0;
    faulty.setFailOn((op) => op === 'copy' && ++copies > 4);
    const r = await c.restoreSnapshot({ snapshot_name: 's1', source_collection_name: 'src', target_collection_name: 'dst' });
    expect(r.status.error_code).toBe(ErrorCode.SUCCESS);
    const info = await waitRestore(c, r.job_id);
    expect(info.state).toBe('RestoreSnapshotFailed');
    expect(info.reason).toMatch(/insert_log|delta_log|stats_log|index_files/);
    faulty.setFailOn(() => false);
    expect((await c.hasCollection({ collection_name: 'dst' })).value).toBe(false);
    // Every copied file is gone again: the store holds exactly what it held before the restore.
    const after = (await engine.store.list('')).map((o) => o.key).sort();
    expect(after).toEqual(before);
    expect(await ids(c, 'src')).toEqual(range(120));
    // The name is free again and a healthy restore completes.
    const again = await c.restoreSnapshot({ snapshot_name: 's1', source_collection_name: 'src', target_collection_name: 'dst' });
    expect((await waitRestore(c, again.job_id)).state).toBe('RestoreSnapshotCompleted');
    expect(await ids(c, 'dst')).toEqual(range(120));
    // No job pins the snapshot any more.
    expect((await c.dropSnapshot({ collection_name: 'src', snapshot_name: 's1' })).error_code).toBe(ErrorCode.SUCCESS);
  });
});

describe('snapshot crashes: kill -9 during create and during restore', () => {
  const dirs: string[] = [];
  const servers = new Set<ServerProcess>();
  afterEach(async () => {
    for (const s of servers) await s.kill9();
    servers.clear();
  });
  afterAll(async () => {
    killAllServers();
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });
  async function spawn(dir: string, env: Record<string, string> = {}): Promise<ServerProcess> {
    const s = await spawnServer(dir, env);
    servers.add(s);
    return s;
  }

  it('kill -9 inside create (files written, not yet COMMITTED): no half snapshot after restart; the name is reusable', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'quiver-snapcrash-'));
    dirs.push(dir);
    let srv = await spawn(dir, { QUIVER_FAULT_SNAPSHOT_PAUSE_MS: '60000' });
    await seed(srv.client, 'src', 60, 2);
    const collId = Number((await srv.client.describeCollection({ collection_name: 'src' })).collectionID);
    let answered = false;
    const pending = srv.client.createSnapshot({ collection_name: 'src', snapshot_name: 'half' }).then(
      () => (answered = true),
      () => undefined,
    );
    // The metadata file is written right before the pause that precedes COMMITTED: once it exists and the
    // call has not answered, the process is inside the create's PENDING window.
    const metadataDir = join(dir, 'objects', 'snapshots', String(collId), 'metadata');
    await until(async () => (await readdir(metadataDir).catch(() => [])).some((f) => f.endsWith('.json')));
    expect(answered).toBe(false);
    await srv.kill9();
    await pending;
    expect(answered).toBe(false);
    srv = await spawn(dir);
    const c = srv.client;
    expect((await c.listSnapshots({ collection_name: 'src' })).snapshots).toEqual([]);
    expect((await c.describeSnapshot({ collection_name: 'src', snapshot_name: 'half' })).status.error_code).not.toBe(ErrorCode.SUCCESS);
    // README: a crash in between leaves nothing visible; the name is not taken by an invisible snapshot.
    const again = await c.createSnapshot({ collection_name: 'src', snapshot_name: 'half' });
    expect(again.error_code, again.reason).toBe(ErrorCode.SUCCESS);
    expect(await ids(c, 'src')).toEqual(range(60));
    const job = await c.restoreSnapshot({ snapshot_name: 'half', source_collection_name: 'src', target_collection_name: 'dst' });
    expect((await waitRestore(c, job.job_id)).state).toBe('RestoreSnapshotCompleted');
    expect(await ids(c, 'dst')).toEqual(range(60));
    await srv.stop();
  });

  it('kill -9 during restore: after restart the job completes exactly or fails leaving nothing; the target is never half-visible; pins end; the source is untouched', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'quiver-restorecrash-'));
    dirs.push(dir);
    let srv = await spawn(dir, { QUIVER_FAULT_COPY_DELAY_MS: '1500', QUIVER_COPY_CHECK_INTERVAL_MS: '100' });
    await seed(srv.client, 'src', 200, 4);
    expect((await srv.client.createSnapshot({ collection_name: 'src', snapshot_name: 's' })).error_code).toBe(ErrorCode.SUCCESS);
    const dirsBefore = await collectionDirs(dir);
    const r = await srv.client.restoreSnapshot({ snapshot_name: 's', source_collection_name: 'src', target_collection_name: 'dst' });
    expect(r.status.error_code).toBe(ErrorCode.SUCCESS);
    // Kill inside the copy: the job is Executing (each copy waits 1.5 s, so it cannot finish meanwhile).
    await until(async () => (await srv.client.getRestoreSnapshotState({ job_id: r.job_id })).info.state === 'RestoreSnapshotExecuting');
    // Not visible while the job runs.
    expect((await srv.client.hasCollection({ collection_name: 'dst' })).value).toBe(false);
    expect((await srv.client.getRestoreSnapshotState({ job_id: r.job_id })).info.state).toBe('RestoreSnapshotExecuting');
    await srv.kill9();
    srv = await spawn(dir, { QUIVER_COPY_CHECK_INTERVAL_MS: '100' });
    const c = srv.client;
    const info = await waitRestore(c, r.job_id);
    const visible = (await c.hasCollection({ collection_name: 'dst' })).value;
    if (info.state === 'RestoreSnapshotCompleted') {
      expect(visible).toBe(true);
      expect(await ids(c, 'dst')).toEqual(range(200));
    } else {
      // Failed: rolled back — no target, no file of it left, and the name can be restored into again.
      expect(visible).toBe(false);
      expect(await collectionDirs(dir)).toEqual(dirsBefore);
      const again = await c.restoreSnapshot({ snapshot_name: 's', source_collection_name: 'src', target_collection_name: 'dst' });
      expect(again.status.error_code, again.status.reason).toBe(ErrorCode.SUCCESS);
      expect((await waitRestore(c, again.job_id)).state).toBe('RestoreSnapshotCompleted');
      expect(await ids(c, 'dst')).toEqual(range(200));
    }
    expect(await ids(c, 'src')).toEqual(range(200));
    // Every job ended: nothing pins the snapshot any more.
    const drop = await c.dropSnapshot({ collection_name: 'src', snapshot_name: 's' });
    expect(drop.error_code, drop.reason).toBe(ErrorCode.SUCCESS);
    await srv.stop();
  });
});
