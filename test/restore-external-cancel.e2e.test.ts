import { cp, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DataType, ErrorCode } from '@zilliz/milvus2-sdk-node';
import { exportSnapshot, restoreExternal } from '../src/cli/export-rpc.js';
import { withSnapshotCommands } from '../src/cli/connect.js';
import type { OutputSink } from '../src/cli/snapshot-commands.js';
import { objectKeys } from './data-dir.js';
import { startTestServer, until, waitRestore, type TestServer } from './helpers.js';

/**
 * An external restore is a job from the call's start (issue 13): while it still verifies its bundle it is
 * listed by ListRestoreSnapshotJobs (Pending, progress = bytes verified) and can be cancelled by
 * `quiver snapshot cancel JOB` (POST /restore-jobs/{id}/cancel): verification stops, the staged files are
 * gone when the cancel answers, no target exists, the job ends Failed "cancelled", and the same restore
 * then completes. Each bundle file read is slowed (QUIVER_FAULT_EXPORT_FILE_DELAY_MS) so that the cancel
 * lands while files are being verified. (kill -9 during verification: test/crash/export-kill9.e2e.test.ts.)
 */

const EXTRA = Array.from({ length: 30 }, (_, i) => `f${i}`);
const ROWS = 100;

function capture(): OutputSink & { stdout: string[]; stderr: string[] } {
  const stdout: string[] = [];
  const stderr: string[] = [];
  return { stdout, stderr, out: (l) => stdout.push(l), err: (l) => stderr.push(l) };
}

describe('cancel and list an external restore while it verifies its bundle', () => {
  let a: TestServer;
  let b: TestServer;
  let roots: string;
  let uri = '';

  beforeAll(async () => {
    roots = await mkdtemp(join(tmpdir(), 'quiver-excancel-'));
    a = await startTestServer({ autoCompaction: false, exportRoots: roots });
    b = await startTestServer({ autoCompaction: false, exportRoots: roots, copyCheckIntervalMs: 50, faultExportFileDelayMs: 300 });
    const fields = [
      { name: 'id', data_type: DataType.Int64, is_primary_key: true },
      { name: 'v', data_type: DataType.FloatVector, dim: 4 },
      ...EXTRA.map((name) => ({ name, data_type: DataType.Int64 })),
    ];
    expect((await a.client.createCollection({ collection_name: 'src', fields })).error_code).toBe(ErrorCode.SUCCESS);
    const data = Array.from({ length: ROWS }, (_, id) => ({ id, v: [id, 1, 2, 3], ...Object.fromEntries(EXTRA.map((f) => [f, id])) }));
    expect((await a.client.insert({ collection_name: 'src', data })).status.error_code).toBe(ErrorCode.SUCCESS);
    await a.client.flushSync({ collection_names: ['src'] });
    expect((await a.client.createSnapshot({ collection_name: 'src', snapshot_name: 's' })).error_code).toBe(ErrorCode.SUCCESS);
    const done = await exportSnapshot(a.server.port, { collection_name: 'src', name: 's', target_s3_path: `file://${roots}/bk` });
    expect(done.status.code, done.status.reason).toBe(0);
    uri = done.snapshot_metadata_uri!;
  });
  afterAll(async () => {
    await a?.close();
    await b?.close();
    if (roots) await rm(roots, { recursive: true, force: true });
  });

  const cli = (run: Parameters<typeof withSnapshotCommands>[2], sink: OutputSink) =>
    withSnapshotCommands(`127.0.0.1:${b.server.port}`, sink, run, `127.0.0.1:${b.server.metricsPort}`);

  it('is listed while verifying, and `quiver snapshot cancel` stops it leaving nothing behind', async () => {
    const started = await restoreExternal(b.server.port, { target_collection_name: 'copy', snapshot_metadata_uri: uri });
    expect(started.status.code, started.status.reason).toBe(0);
    const jobId = started.job_id!;
    // Some files verified and staged: the cancel lands in the middle of verification.
    await until(async () => (await objectKeys(b.dataDir, `imports/${jobId}/`)).length > 0, { what: 'a staged bundle file' });

    const listed = await b.client.listRestoreSnapshotJobs({});
    const mine = listed.jobs.find((j) => j.job_id === jobId);
    expect(mine).toMatchObject({ state: 'RestoreSnapshotPending', collection_name: 'copy', snapshot_name: 's' });
    expect(mine?.reason).toMatch(/^verifying bundle: \d+ of \d+ bytes$/);
    expect((await b.client.listRestoreSnapshotJobs({ collection_name: 'other' })).jobs.map((j) => j.job_id)).not.toContain(jobId);

    const s = capture();
    expect(await cli((c) => c.cancel({ jobId, wait: true }), s)).toBe(0);
    expect(s.stderr).toEqual([]);
    expect(s.stdout[0]).toBe(`cancel of restore job ${jobId} requested (state Failed)`);
    expect(s.stdout.at(-1)).toBe(`restore job ${jobId} cancelled: Failed (cancelled)`);
    // Nothing left: no staged file, no target, no job beside the failed record.
    expect(await objectKeys(b.dataDir, 'imports/')).toEqual([]);
    expect((await b.client.hasCollection({ collection_name: 'copy' })).value).toBe(false);
    expect((await b.client.getRestoreSnapshotState({ job_id: jobId })).info).toMatchObject({ state: 'RestoreSnapshotFailed', reason: 'cancelled' });
    expect((await b.client.listRestoreSnapshotJobs({})).jobs.find((j) => j.job_id === jobId)).toMatchObject({ state: 'RestoreSnapshotFailed' });
    expect(await b.server.restores.jobs.getJob(Number(jobId))).toBeUndefined();

    // Idempotent over HTTP, as for any restore job.
    const again = await fetch(`http://127.0.0.1:${b.server.metricsPort}/restore-jobs/${jobId}/cancel`, { method: 'POST' });
    expect(again.status).toBe(200);
    expect(await again.json()).toMatchObject({ job_id: jobId, state: 'RestoreSnapshotFailed', reason: 'cancelled' });

    // The same restore then completes.
    const ok = await restoreExternal(b.server.port, { target_collection_name: 'copy', snapshot_metadata_uri: uri });
    expect(ok.status.code, ok.status.reason).toBe(0);
    expect((await waitRestore(b.client, ok.job_id!)).state).toBe('RestoreSnapshotCompleted');
    await b.client.loadCollectionSync({ collection_name: 'copy' });
    expect((await b.client.count({ collection_name: 'copy' })).data).toBe(ROWS);
    expect(await objectKeys(b.dataDir, 'imports/')).toEqual([]);
  });

  it('cancel of an import that failed verification is refused (409) naming its failure; an unknown id is 404', async () => {
    // A copy of the bundle with one data file missing: verification fails naming it.
    await cp(join(roots, 'bk'), join(roots, 'bad'), { recursive: true });
    const manifest = JSON.parse(await readFile(fileURLToPath(uri), 'utf8')) as { files: { key: string; sha256: string }[] };
    const victim = manifest.files.find((f) => f.key.startsWith('insert_log/'))!;
    await rm(join(roots, 'bad', 'blobs', 'sha256', victim.sha256.slice(0, 2), victim.sha256));
    const r = await restoreExternal(b.server.port, { target_collection_name: 'bad', snapshot_metadata_uri: uri.replace('/bk/', '/bad/') });
    expect(r.status.code, r.status.reason).toBe(0);
    const info = await waitRestore(b.client, r.job_id!);
    expect(info.state).toBe('RestoreSnapshotFailed');
    expect(info.reason).toContain(victim.key);
    const refused = await fetch(`http://127.0.0.1:${b.server.metricsPort}/restore-jobs/${r.job_id}/cancel`, { method: 'POST' });
    expect(refused.status).toBe(409);
    expect(((await refused.json()) as { reason: string }).reason).toContain('already failed');
    expect(await objectKeys(b.dataDir, 'imports/')).toEqual([]);

    const unknown = await fetch(`http://127.0.0.1:${b.server.metricsPort}/restore-jobs/987654321/cancel`, { method: 'POST' });
    expect(unknown.status).toBe(404);
  });
});
