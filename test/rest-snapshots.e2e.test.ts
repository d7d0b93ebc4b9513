import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DataType, ErrorCode } from '@zilliz/milvus2-sdk-node';
import { startTestServer, until, vectors, type TestServer } from './helpers.js';

/**
 * The snapshot endpoints of the RESTful API v2 (src/rest/routes/snapshots.ts) against a real server:
 * Milvus 3.0's create/list/describe/pin/unpin/restore/drop and jobs/snapshot describe/list, plus ours
 * (diff, cancel, export, restore_external), with the Milvus codes on failures. Plain fetch, and curl once
 * (as the README's examples run).
 */

// Replies are checked field by field below: typing each endpoint's JSON here would only repeat the routes.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = any;

interface Answer {
  readonly http: number;
  readonly code: number;
  readonly data?: Json;
  readonly message?: string;
}

describe('REST v2 snapshot endpoints', () => {
  let t: TestServer;
  let exportRoot: string;
  const url = (path: string) => `http://127.0.0.1:${t.server.httpPort}/v2/vectordb/${path}`;
  async function post(path: string, body: unknown): Promise<Answer> {
    const res = await fetch(url(path), { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    return { http: res.status, ...((await res.json()) as { code: number; data?: unknown; message?: string }) };
  }
  async function ok(path: string, body: unknown): Promise<Json> {
    const a = await post(path, body);
    expect(a.code, `${path}: ${a.message}`).toBe(0);
    return a.data;
  }
  async function waitJob(jobId: string): Promise<Record<string, unknown>> {
    let last: Record<string, unknown> = {};
    await until(
      async () => {
        last = (await ok('jobs/snapshot/describe', { jobId })) as Record<string, unknown>;
        return last.state === 'RestoreSnapshotCompleted' || last.state === 'RestoreSnapshotFailed';
      },
      { what: `restore job ${jobId}` },
    );
    return last;
  }
  async function count(collectionName: string): Promise<number> {
    const rows = (await ok('entities/query', { collectionName, filter: 'id >= 0', outputFields: ['count(*)'] })) as Record<string, unknown>[];
    return Number(rows[0]?.['count(*)']);
  }

  beforeAll(async () => {
    exportRoot = await mkdtemp(join(tmpdir(), 'quiver-rest-export-'));
    t = await startTestServer({ autoCompaction: false, copyCheckIntervalMs: 100, exportRoots: exportRoot });
    const c = t.client;
    await c.createCollection({
      collection_name: 'books',
      fields: [
        { name: 'id', data_type: DataType.Int64, is_primary_key: true },
        { name: 'v', data_type: DataType.FloatVector, dim: 4 },
      ],
    });
    const vs = vectors(30, 4, 3);
    await c.insert({ collection_name: 'books', data: vs.slice(0, 20).map((v, i) => ({ id: i, v })) });
    await c.createIndex({ collection_name: 'books', field_name: 'v', index_type: 'HNSW', metric_type: 'L2', params: { M: 8, efConstruction: 64 } });
    expect((await c.loadCollectionSync({ collection_name: 'books' })).error_code).toBe(ErrorCode.SUCCESS);
  });
  afterAll(async () => {
    await t?.close();
    if (exportRoot) await rm(exportRoot, { recursive: true, force: true });
  });

  it('create (with curl) → list → describe', async () => {
    const { stdout } = await promisify(execFile)('curl', [
      '-sS',
      '-X',
      'POST',
      url('snapshots/create'),
      '-H',
      'Content-Type: application/json',
      '-d',
      '{"collectionName": "books", "snapshotName": "s1", "description": "twenty rows"}',
    ]);
    expect(JSON.parse(stdout)).toEqual({ code: 0, data: {} });
    expect(await ok('snapshots/list', { collectionName: 'books' })).toEqual(['s1']);
    const d = await ok('snapshots/describe', { collectionName: 'books', snapshotName: 's1' });
    expect(d).toMatchObject({ snapshotName: 's1', description: 'twenty rows', collectionName: 'books', partitionNames: ['_default'] });
    expect(d.createTs).toMatch(/^[1-9][0-9]*$/);
  });

  it('pin blocks drop (2601) until unpin; errors carry the Milvus code', async () => {
    const { pinId } = (await ok('snapshots/pin', { collectionName: 'books', snapshotName: 's1', ttlSeconds: 600 })) as { pinId: string };
    expect(pinId).toMatch(/^[1-9][0-9]*$/);
    const refused = await post('snapshots/drop', { collectionName: 'books', snapshotName: 's1' });
    expect([refused.http, refused.code]).toEqual([200, 2601]);
    await ok('snapshots/unpin', { pinId });
    const missing = await post('snapshots/describe', { collectionName: 'books', snapshotName: 'nope' });
    expect([missing.http, missing.code]).toEqual([200, 2600]);
    const bad = await post('snapshots/create', { collectionName: 'books', snapshotName: '../etc' });
    expect(bad.code).toBe(1100);
    expect(bad.message).toContain('snapshotName');
    const noJob = await post('jobs/snapshot/describe', { jobId: '123456789' });
    expect(noJob.code).toBe(2603);
  });

  it('restore → jobs/snapshot describe until Completed → list → query the restored collection', async () => {
    await t.client.insert({
      collection_name: 'books',
      data: vectors(30, 4, 3)
        .slice(20)
        .map((v, i) => ({ id: 20 + i, v })),
    });
    const { jobId } = (await ok('snapshots/restore', { collectionName: 'books', snapshotName: 's1', targetCollectionName: 'books_r' })) as {
      jobId: string;
    };
    const job = await waitJob(jobId);
    expect(job).toMatchObject({
      jobId,
      snapshotName: 's1',
      dbName: 'default',
      collectionName: 'books_r',
      state: 'RestoreSnapshotCompleted',
      progress: 100,
    });
    const jobs = (await ok('jobs/snapshot/list', { collectionName: 'books_r' })) as { jobId: string }[];
    expect(jobs.map((j) => j.jobId)).toContain(jobId);
    await ok('collections/load', { collectionName: 'books_r' });
    await until(
      async () => ((await ok('collections/get_load_state', { collectionName: 'books_r' })) as { loadState: string }).loadState === 'LoadStateLoaded',
      {
        what: 'books_r loaded',
      },
    );
    // The snapshot's 20 rows, not the 10 inserted after it.
    expect(await count('books_r')).toBe(20);
    expect(await count('books')).toBe(30);
  });

  it('diff s1 → now names the rows inserted since; cancel of a finished job is refused with its code', async () => {
    const d = await ok('snapshots/diff', { collectionName: 'books', from: 's1', to: 'now', limit: 5 });
    expect(d).toMatchObject({ from: 's1', to: 'now', inserted: 10, deleted: 0, updated: 0, truncated: true });
    expect(d.changes).toEqual(['20', '21', '22', '23', '24'].map((pk) => ({ op: 'insert', pk })));
    const jobs = (await ok('jobs/snapshot/list', { collectionName: 'books_r' })) as { jobId: string }[];
    const cancel = await post('jobs/snapshot/cancel', { jobId: jobs[0]!.jobId });
    expect(cancel.code).toBe(1100);
    expect(cancel.message).toContain('cannot be cancelled: it has completed');
    expect((await post('jobs/snapshot/cancel', { jobId: '987654321' })).code).toBe(2603);
  });

  it('export → restore_external → the copy has the snapshot rows', async () => {
    const { snapshotMetadataUri } = (await ok('snapshots/export', {
      collectionName: 'books',
      snapshotName: 's1',
      targetPath: `file://${exportRoot}/daily`,
    })) as {
      snapshotMetadataUri: string;
    };
    expect(snapshotMetadataUri).toMatch(/\.json$/);
    const { jobId } = (await ok('snapshots/restore_external', { targetCollectionName: 'books_x', snapshotMetadataUri })) as { jobId: string };
    expect((await waitJob(jobId)).state).toBe('RestoreSnapshotCompleted');
    await ok('collections/load', { collectionName: 'books_x' });
    await until(
      async () => ((await ok('collections/get_load_state', { collectionName: 'books_x' })) as { loadState: string }).loadState === 'LoadStateLoaded',
      {
        what: 'books_x loaded',
      },
    );
    expect(await count('books_x')).toBe(20);
  });

  it('drop → describe answers 2600 and list is empty', async () => {
    await ok('snapshots/drop', { collectionName: 'books', snapshotName: 's1' });
    expect((await post('snapshots/describe', { collectionName: 'books', snapshotName: 's1' })).code).toBe(2600);
    expect(await ok('snapshots/list', { collectionName: 'books' })).toEqual([]);
  });
});
