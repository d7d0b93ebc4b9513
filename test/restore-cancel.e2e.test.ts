import { readdir } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DataType, ErrorCode } from '@zilliz/milvus2-sdk-node';
import { withSnapshotCommands } from '../src/cli/connect.js';
import type { OutputSink } from '../src/cli/snapshot-commands.js';
import { startTestServer, until, vectors, waitRestore, type TestServer } from './helpers.js';

/**
 * Cancel of a restore (README "CLI", docs/SNAPSHOTS.md): `quiver snapshot cancel JOB` over the server's
 * HTTP endpoint, and dropping a collection that is still being restored. Copies are slowed by
 * QUIVER_FAULT_COPY_DELAY_MS so that the job is caught while it copies.
 */

function capture(): OutputSink & { stdout: string[]; stderr: string[] } {
  const stdout: string[] = [];
  const stderr: string[] = [];
  return { stdout, stderr, out: (l) => stdout.push(l), err: (l) => stderr.push(l) };
}

async function filesUnder(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries.filter((e) => e.isFile()).map((e) => relative(dir, join(e.parentPath, e.name)));
}

describe('restore cancel', () => {
  let t: TestServer;
  const cli = (run: Parameters<typeof withSnapshotCommands>[2], sink: OutputSink) =>
    withSnapshotCommands(`127.0.0.1:${t.server.port}`, sink, run, `127.0.0.1:${t.server.metricsPort}`);

  beforeAll(async () => {
    t = await startTestServer({ autoCompaction: false, faultCopyDelayMs: 1_000, copyCheckIntervalMs: 100 });
    // Many fields, so many files per segment: more than one round of the worker's 16 parallel copies,
    // each round slowed by the fault delay, so the job is still copying after its first files exist.
    const extra = Array.from({ length: 40 }, (_, i) => `f${i}`);
    const fields = [
      { name: 'id', data_type: DataType.Int64, is_primary_key: true },
      { name: 'v', data_type: DataType.FloatVector, dim: 4 },
      ...extra.map((name) => ({ name, data_type: DataType.Int64 })),
    ];
    const row = (id: number, v: number[]) => ({ id, v, ...Object.fromEntries(extra.map((f) => [f, id])) });
    await t.client.createCollection({ collection_name: 'src', fields });
    const vs = vectors(200, 4, 7);
    // Two flushed segments, so the restore has more than one copy to do.
    await t.client.insert({ collection_name: 'src', data: vs.slice(0, 100).map((v, i) => row(i, v)) });
    await t.client.flushSync({ collection_names: ['src'] });
    await t.client.insert({ collection_name: 'src', data: vs.slice(100).map((v, i) => row(100 + i, v)) });
    await t.client.flushSync({ collection_names: ['src'] });
    expect((await t.client.createSnapshot({ collection_name: 'src', snapshot_name: 's' })).error_code).toBe(ErrorCode.SUCCESS);
    await t.client.createCollection({ collection_name: 'empty', fields });
    expect((await t.client.createSnapshot({ collection_name: 'empty', snapshot_name: 'e' })).error_code).toBe(ErrorCode.SUCCESS);
  });
  afterAll(async () => {
    await t?.close();
  });

  /** Starts a restore of `s` into `target` and waits until it has copied at least one file of the target. */
  async function restoreCaughtCopying(target: string): Promise<{ jobId: string; targetFiles: () => Promise<string[]> }> {
    const r = await t.client.restoreSnapshot({ snapshot_name: 's', source_collection_name: 'src', target_collection_name: target });
    expect(r.status.error_code, r.status.reason).toBe(ErrorCode.SUCCESS);
    const job = await t.server.restores.job(Number(r.job_id));
    // Every object of the target has its collection id or one of its segment ids as a path component.
    const ids = new Set([job.targetCollectionId, ...job.mappings.map((m) => m.targetSegmentId)].map(String));
    const targetFiles = async () => (await filesUnder(t.dataDir)).filter((f) => f.split(sep).some((part) => ids.has(part)));
    await until(async () => (await targetFiles()).length > 0, { what: `a copied file of ${target}` });
    expect((await t.client.getRestoreSnapshotState({ job_id: r.job_id })).info.state).toBe('RestoreSnapshotExecuting');
    return { jobId: r.job_id, targetFiles };
  }

  it('quiver snapshot cancel JOB: tasks stop, copied files removed, target gone, Failed "cancelled", name reusable, pin released', async () => {
    const { jobId, targetFiles } = await restoreCaughtCopying('dst');
    const s = capture();
    expect(await cli((c) => c.cancel({ jobId, wait: true }), s)).toBe(0);
    expect(s.stderr).toEqual([]);
    expect(s.stdout[0]).toBe(`cancel of restore job ${jobId} requested (state Executing)`);
    expect(s.stdout.at(-1)).toBe(`restore job ${jobId} cancelled: Failed (cancelled)`);

    const info = (await t.client.getRestoreSnapshotState({ job_id: jobId })).info;
    expect(info).toMatchObject({ state: 'RestoreSnapshotFailed', reason: 'cancelled' });
    expect((await t.client.hasCollection({ collection_name: 'dst' })).value).toBe(false);
    expect(await targetFiles()).toEqual([]);
    // Cancelling again is idempotent.
    const again = capture();
    expect(await cli((c) => c.cancel({ jobId, wait: false }), again)).toBe(0);
    expect(again.stdout).toEqual([`cancel of restore job ${jobId} requested (state Failed)`]);
    // The name is free again.
    const created = await t.client.createCollection({
      collection_name: 'dst',
      fields: [
        { name: 'id', data_type: DataType.Int64, is_primary_key: true },
        { name: 'v', data_type: DataType.FloatVector, dim: 4 },
      ],
    });
    expect(created.error_code, created.reason).toBe(ErrorCode.SUCCESS);
    expect((await t.client.dropCollection({ collection_name: 'dst' })).error_code).toBe(ErrorCode.SUCCESS);
  });

  it('dropping a collection that is still being restored cancels the restore', async () => {
    const { jobId, targetFiles } = await restoreCaughtCopying('dst2');
    const drop = await t.client.dropCollection({ collection_name: 'dst2' });
    expect(drop.error_code, drop.reason).toBe(ErrorCode.SUCCESS);
    const info = await waitRestore(t.client, jobId);
    expect(info).toMatchObject({ state: 'RestoreSnapshotFailed', reason: 'cancelled' });
    expect((await t.client.hasCollection({ collection_name: 'dst2' })).value).toBe(false);
    expect(await targetFiles()).toEqual([]);
    // Nothing left to drop now.
    expect((await t.client.dropCollection({ collection_name: 'dst2' })).code).toBe(100);
  });

  it('bad input: a Completed job is refused naming its state (code 1100), an unknown job is RestoreJobNotFound (2603)', async () => {
    const r = await t.client.restoreSnapshot({ snapshot_name: 'e', source_collection_name: 'empty', target_collection_name: 'empty2' });
    expect((await waitRestore(t.client, r.job_id)).state).toBe('RestoreSnapshotCompleted');
    const done = capture();
    expect(await cli((c) => c.cancel({ jobId: r.job_id, wait: false }), done)).toBe(1);
    expect(done.stderr).toEqual([
      `error: restore job ${r.job_id} cannot be cancelled: it has completed; drop the restored collection instead (state Completed) (code 1100)`,
    ]);
    expect((await t.client.hasCollection({ collection_name: 'empty2' })).value).toBe(true);

    const unknown = capture();
    expect(await cli((c) => c.cancel({ jobId: '424242', wait: false }), unknown)).toBe(1);
    expect(unknown.stderr).toEqual(['error: restore job not found[job_id=424242] (code 2603)']);
    // The endpoint itself: POST only; JSON errors with the Milvus code.
    const base = `http://127.0.0.1:${t.server.metricsPort}/restore-jobs/424242/cancel`;
    expect((await fetch(base)).status).toBe(405);
    const res = await fetch(base, { method: 'POST' });
    expect(res.status).toBe(404);
    expect(await res.json()).toEqual({ code: 2603, reason: 'restore job not found[job_id=424242]' });
  });

  it('the source snapshot can be dropped once every job ended (the restore pins were released)', async () => {
    const drop = await t.client.dropSnapshot({ collection_name: 'src', snapshot_name: 's' });
    expect(drop.error_code, drop.reason).toBe(ErrorCode.SUCCESS);
  });
});
