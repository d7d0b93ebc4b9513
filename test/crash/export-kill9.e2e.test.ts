import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { DataType, ErrorCode, type MilvusClient } from '@zilliz/milvus2-sdk-node';
import { until, waitRestore } from '../../src/testing/index.js';
import { objectKeys } from '../data-dir.js';
import { exportSnapshot, restoreExternal } from '../../src/cli/export-rpc.js';
import { killAllServers, spawnServer, type ServerProcess } from '../process.js';

/**
 * kill -9 during an export and during an external restore (issue 13). Each file read is slowed by
 * QUIVER_FAULT_EXPORT_FILE_DELAY_MS so the kill lands mid-way, after some files were written.
 *   export:  the blobs written so far stay, but no bundle manifest exists, so no restore can take the
 *            partial bundle for a complete one; a later export completes it.
 *   restore: after the restart the job is Failed ("interrupted by a server restart"), its staged files
 *            are gone and the target does not exist; the same restore then completes.
 */

const EXTRA = Array.from({ length: 30 }, (_, i) => `f${i}`);
const ROWS = 120;

async function filesUnder(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true }).catch(() => []);
  return entries.filter((e) => e.isFile()).map((e) => join(e.parentPath, e.name));
}

async function setup(c: MilvusClient): Promise<void> {
  const fields = [
    { name: 'id', data_type: DataType.Int64, is_primary_key: true },
    { name: 'v', data_type: DataType.FloatVector, dim: 4 },
    ...EXTRA.map((name) => ({ name, data_type: DataType.Int64 })),
  ];
  expect((await c.createCollection({ collection_name: 'src', fields })).error_code).toBe(ErrorCode.SUCCESS);
  const data = Array.from({ length: ROWS }, (_, id) => ({ id, v: [id, 1, 2, 3], ...Object.fromEntries(EXTRA.map((f) => [f, id])) }));
  expect((await c.insert({ collection_name: 'src', data })).status.error_code).toBe(ErrorCode.SUCCESS);
  await c.flushSync({ collection_names: ['src'] });
  expect((await c.createSnapshot({ collection_name: 'src', snapshot_name: 's' })).error_code).toBe(ErrorCode.SUCCESS);
}

describe('kill -9 during export and external restore', () => {
  const dirs: string[] = [];
  const servers: ServerProcess[] = [];
  const tmp = async (p: string) => {
    const d = await mkdtemp(join(tmpdir(), p));
    dirs.push(d);
    return d;
  };
  const spawn = async (dataDir: string, env: Record<string, string>) => {
    const s = await spawnServer(dataDir, { QUIVER_LOG_LEVEL: 'warn', QUIVER_COPY_CHECK_INTERVAL_MS: '50', ...env });
    servers.push(s);
    return s;
  };
  afterEach(async () => {
    killAllServers();
  });
  afterAll(async () => {
    killAllServers();
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });

  it('a killed export leaves no bundle manifest; a killed external restore rolls back; both then succeed', { timeout: 180_000 }, async () => {
    const roots = await tmp('quiver-k9-roots-');
    const dataA = await tmp('quiver-k9-a-');
    const dataB = await tmp('quiver-k9-b-');
    const slow = { QUIVER_EXPORT_ROOTS: roots, QUIVER_FAULT_EXPORT_FILE_DELAY_MS: '400' };

    // Export killed mid-way.
    let a = await spawn(dataA, slow);
    await setup(a.client);
    const inFlight = exportSnapshot(a.port, { collection_name: 'src', name: 's', target_s3_path: `file://${roots}/bk` }).catch((e: unknown) => e);
    await until(async () => (await filesUnder(join(roots, 'bk', 'blobs'))).length > 0, { timeoutMs: 30_000 });
    await a.kill9();
    await inFlight;
    expect(await filesUnder(join(roots, 'bk', 'bundles'))).toEqual([]);

    a = await spawn(dataA, { QUIVER_EXPORT_ROOTS: roots });
    const done = await exportSnapshot(a.port, { collection_name: 'src', name: 's', target_s3_path: `file://${roots}/bk` });
    expect(done.status.code, done.status.reason).toBe(0);
    const uri = done.snapshot_metadata_uri!;

    // External restore killed while it verifies and stages the bundle.
    let b = await spawn(dataB, slow);
    const started = await restoreExternal(b.port, { target_collection_name: 'copy', snapshot_metadata_uri: uri });
    expect(started.status.code, started.status.reason).toBe(0);
    await until(async () => (await objectKeys(dataB, 'imports/')).length > 0, { timeoutMs: 30_000 });
    await b.kill9();

    b = await spawn(dataB, { QUIVER_EXPORT_ROOTS: roots });
    const after = await b.client.getRestoreSnapshotState({ job_id: started.job_id! });
    expect(after.info.state).toBe('RestoreSnapshotFailed');
    expect(after.info.reason).toMatch(/interrupted by a server restart/);
    // Listed as a job from its start, so after the rollback too.
    const listed = (await b.client.listRestoreSnapshotJobs({})).jobs.find((j) => j.job_id === started.job_id);
    expect(listed).toMatchObject({ state: 'RestoreSnapshotFailed', collection_name: 'copy' });
    expect(await objectKeys(dataB, 'imports/')).toEqual([]);
    expect((await b.client.hasCollection({ collection_name: 'copy' })).value).toBe(false);

    const again = await restoreExternal(b.port, { target_collection_name: 'copy', snapshot_metadata_uri: uri });
    expect(again.status.code, again.status.reason).toBe(0);
    expect((await waitRestore(b.client, again.job_id!)).state).toBe('RestoreSnapshotCompleted');
    await b.client.loadCollectionSync({ collection_name: 'copy' });
    expect((await b.client.count({ collection_name: 'copy' })).data).toBe(ROWS);
  });
});
