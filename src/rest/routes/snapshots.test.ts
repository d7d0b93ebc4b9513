import { describe, expect, it } from 'vitest';
import { isQuiverError, quiverError } from '../../common/errors.js';
import type { NamedDiff } from '../../coord/snapshot/diff.js';
import { refusal, runRoute } from './fake-call.test-util.js';
import { snapshotExtraRoutes, snapshotRoutes } from './snapshots.js';

const OK = { code: 0 };
const info = {
  job_id: '9001',
  snapshot_name: 'nightly',
  db_name: 'default',
  collection_name: 'books_restored',
  state: 'RestoreSnapshotCompleted',
  progress: 100,
  reason: '',
  start_time: '1700000000000',
  time_cost: '12',
};
const infoJson = {
  jobId: '9001',
  snapshotName: 'nightly',
  dbName: 'default',
  collectionName: 'books_restored',
  state: 'RestoreSnapshotCompleted',
  progress: 100,
  reason: '',
  startTime: '1700000000000',
  timeCost: '12',
};

describe('REST snapshot routes: request translation and reply shapes', () => {
  it('create sends CreateSnapshot with the proto field names', async () => {
    const { data, calls } = await runRoute(snapshotRoutes, 'snapshots/create', {
      dbName: 'shop',
      collectionName: 'books',
      snapshotName: 'nightly',
      description: 'before migration',
      compactionProtectionSeconds: 600,
    });
    expect(calls).toEqual([
      {
        method: 'CreateSnapshot',
        req: { db_name: 'shop', collection_name: 'books', name: 'nightly', description: 'before migration', compaction_protection_seconds: '600' },
      },
    ]);
    expect(data).toEqual({});
  });

  it('list answers the names; describe the snapshot in camelCase with createTs as a string', async () => {
    const l = await runRoute(snapshotRoutes, 'snapshots/list', { collectionName: 'books' }, { ListSnapshots: { status: OK, snapshots: ['a', 'b'] } });
    expect(l.calls).toEqual([{ method: 'ListSnapshots', req: { db_name: 'default', collection_name: 'books' } }]);
    expect(l.data).toEqual(['a', 'b']);
    const d = await runRoute(
      snapshotRoutes,
      'snapshots/describe',
      { collectionName: 'books', snapshotName: 'a' },
      {
        DescribeSnapshot: {
          status: OK,
          name: 'a',
          description: 'd',
          collection_name: 'books',
          partition_names: ['_default'],
          create_ts: '449812031078678529',
          s3_location: 'snapshots/7/metadata/3.json',
        },
      },
    );
    expect(d.calls).toEqual([{ method: 'DescribeSnapshot', req: { db_name: 'default', collection_name: 'books', name: 'a' } }]);
    expect(d.data).toEqual({
      snapshotName: 'a',
      description: 'd',
      collectionName: 'books',
      partitionNames: ['_default'],
      createTs: '449812031078678529',
      s3Location: 'snapshots/7/metadata/3.json',
    });
  });

  it('drop, pin and unpin translate; pin answers the pin id', async () => {
    expect((await runRoute(snapshotRoutes, 'snapshots/drop', { collectionName: 'books', snapshotName: 'a' })).calls).toEqual([
      { method: 'DropSnapshot', req: { db_name: 'default', collection_name: 'books', name: 'a' } },
    ]);
    const p = await runRoute(
      snapshotRoutes,
      'snapshots/pin',
      { collectionName: 'books', snapshotName: 'a', ttlSeconds: 3600 },
      {
        PinSnapshotData: { status: OK, pin_id: '77' },
      },
    );
    expect(p.calls[0]).toEqual({ method: 'PinSnapshotData', req: { db_name: 'default', collection_name: 'books', name: 'a', ttl_seconds: '3600' } });
    expect(p.data).toEqual({ pinId: '77' });
    const n = await runRoute(
      snapshotRoutes,
      'snapshots/pin',
      { collectionName: 'books', snapshotName: 'a' },
      { PinSnapshotData: { pin_id: '77' } },
      { int64AsNumber: true },
    );
    expect(n.data).toEqual({ pinId: 77 });
    expect((await runRoute(snapshotRoutes, 'snapshots/unpin', { pinId: '77' })).calls).toEqual([{ method: 'UnpinSnapshotData', req: { pin_id: '77' } }]);
    expect((await runRoute(snapshotRoutes, 'snapshots/unpin', { pinId: 78 })).calls[0]!.req).toEqual({ pin_id: '78' });
  });

  it('restore names the source by collectionName (or sourceCollectionName) and answers the job id', async () => {
    const r = await runRoute(
      snapshotRoutes,
      'snapshots/restore',
      { collectionName: 'books', snapshotName: 'a', targetCollectionName: 'books_a' },
      {
        RestoreSnapshot: { status: OK, job_id: '9001' },
      },
    );
    expect(r.calls).toEqual([
      {
        method: 'RestoreSnapshot',
        req: { db_name: 'default', collection_name: 'books', name: 'a', target_db_name: '', target_collection_name: 'books_a' },
      },
    ]);
    expect(r.data).toEqual({ jobId: '9001' });
    const s = await runRoute(
      snapshotRoutes,
      'snapshots/restore',
      { dbName: 'shop', sourceCollectionName: 'books', snapshotName: 'a', targetCollectionName: 'books_a', targetDbName: 'archive' },
      { RestoreSnapshot: { job_id: '9002' } },
    );
    expect(s.calls[0]!.req).toMatchObject({ db_name: 'shop', collection_name: 'books', target_db_name: 'archive' });
  });

  it('jobs/snapshot describe and list shape RestoreSnapshotInfo; list filters only by what the body names', async () => {
    const d = await runRoute(snapshotRoutes, 'jobs/snapshot/describe', { jobId: '9001' }, { GetRestoreSnapshotState: { status: OK, info } });
    expect(d.calls).toEqual([{ method: 'GetRestoreSnapshotState', req: { job_id: '9001' } }]);
    expect(d.data).toEqual(infoJson);
    const l = await runRoute(snapshotRoutes, 'jobs/snapshot/list', {}, { ListRestoreSnapshotJobs: { status: OK, jobs: [info] } });
    expect(l.calls).toEqual([{ method: 'ListRestoreSnapshotJobs', req: { db_name: '', collection_name: '' } }]);
    expect(l.data).toEqual([infoJson]);
  });

  it('export and restore_external translate to ExportSnapshot / RestoreExternalSnapshot', async () => {
    const e = await runRoute(
      snapshotRoutes,
      'snapshots/export',
      { collectionName: 'books', snapshotName: 'a', targetPath: 'file:///exports/x' },
      {
        ExportSnapshot: { status: OK, snapshot_metadata_uri: 'file:///exports/x/bundles/books/a-3.json' },
      },
    );
    expect(e.calls).toEqual([
      {
        method: 'ExportSnapshot',
        req: { db_name: 'default', collection_name: 'books', name: 'a', target_s3_path: 'file:///exports/x', external_spec: '' },
      },
    ]);
    expect(e.data).toEqual({ snapshotMetadataUri: 'file:///exports/x/bundles/books/a-3.json' });
    const r = await runRoute(
      snapshotRoutes,
      'snapshots/restore_external',
      { targetCollectionName: 'books_b', snapshotMetadataUri: 'file:///exports/x/b.json' },
      {
        RestoreExternalSnapshot: { status: OK, job_id: '12' },
      },
    );
    expect(r.calls[0]).toEqual({
      method: 'RestoreExternalSnapshot',
      req: { db_name: 'default', target_collection_name: 'books_b', snapshot_metadata_uri: 'file:///exports/x/b.json', external_spec: '' },
    });
    expect(r.data).toEqual({ jobId: '12' });
  });

  it("a handler's error (SnapshotNotFound, 2600) propagates unchanged", async () => {
    const missing = quiverError('SnapshotNotFound', 'snapshot nope not found');
    await expect(
      runRoute(snapshotRoutes, 'snapshots/describe', { collectionName: 'books', snapshotName: 'nope' }, { DescribeSnapshot: missing }),
    ).rejects.toBe(missing);
  });

  it('refuses names with path characters, bad ids and missing fields, naming the field', () => {
    for (const snapshotName of ['../x', 'a/b', 'a\\b', 'a.b', '1abc', '']) {
      expect(refusal(snapshotRoutes, 'snapshots/create', { collectionName: 'books', snapshotName }).fields).toEqual(['snapshotName']);
    }
    expect(refusal(snapshotRoutes, 'snapshots/create', { snapshotName: 'a' }).fields).toEqual(['collectionName']);
    expect(refusal(snapshotRoutes, 'snapshots/describe', { collectionName: 'books/../x', snapshotName: 'a' }).fields).toEqual(['collectionName']);
    expect(refusal(snapshotRoutes, 'snapshots/create', { dbName: '../db', collectionName: 'books', snapshotName: 'a' }).fields).toEqual(['dbName']);
    expect(refusal(snapshotRoutes, 'snapshots/restore', { snapshotName: 'a', targetCollectionName: 'x' }).fields).toEqual(['collectionName']);
    expect(refusal(snapshotRoutes, 'snapshots/restore', { collectionName: 'books', snapshotName: 'a', targetCollectionName: '../x' }).fields).toEqual([
      'targetCollectionName',
    ]);
    expect(
      refusal(snapshotRoutes, 'snapshots/restore', { collectionName: 'a', sourceCollectionName: 'b', snapshotName: 's', targetCollectionName: 't' }).fields,
    ).toEqual(['sourceCollectionName']);
    for (const pinId of ['abc', '0', '-1', '99999999999999999999', 1.5, 0]) {
      expect(refusal(snapshotRoutes, 'snapshots/unpin', { pinId }).fields).toEqual(['pinId']);
    }
    expect(refusal(snapshotRoutes, 'snapshots/pin', { collectionName: 'books', snapshotName: 'a', ttlSeconds: -5 }).fields).toEqual(['ttlSeconds']);
    expect(refusal(snapshotRoutes, 'jobs/snapshot/describe', {}).fields).toEqual(['jobId']);
    expect(refusal(snapshotRoutes, 'snapshots/export', { collectionName: 'books', snapshotName: 'a', targetPath: 'file:///x\n' }).fields).toEqual([
      'targetPath',
    ]);
  });
});

describe('REST snapshot routes: cancel and diff over the injected functions', () => {
  const diff: NamedDiff = {
    from: 'a',
    to: 'now',
    inserted: 2,
    deleted: 1,
    updated: 0,
    changes: [
      { op: 'insert', pk: 5n },
      { op: 'delete', pk: 9007199254740993n },
      { op: 'insert', pk: 11n },
    ],
    segmentsSkipped: 3,
    segmentsRead: 1,
    deltalogsRead: 2,
  };

  const seen: unknown[][] = [];
  const extra = snapshotExtraRoutes({
    cancelRestoreJob: async (id: number) => {
      seen.push(['cancel', id]);
      return { ...info, job_id: String(id), state: 'RestoreSnapshotFailed', reason: 'cancelled by the user' };
    },
    diff: async (db: string, coll: string, from: string, to: string) => {
      seen.push(['diff', db, coll, from, to]);
      return diff;
    },
  });

  it('jobs/snapshot/cancel authorizes on the job target (RestoreSnapshot via ListRestoreSnapshotJobs), then cancels', async () => {
    seen.length = 0;
    const c = await runRoute(
      extra,
      'jobs/snapshot/cancel',
      { jobId: '31' },
      {
        GetRestoreSnapshotState: { status: OK, info: { ...info, job_id: '31', db_name: 'shop', collection_name: 'books_r' } },
        ListRestoreSnapshotJobs: { status: OK, jobs: [] },
      },
    );
    expect(c.calls).toEqual([
      { method: 'GetRestoreSnapshotState', req: { job_id: '31' } },
      { method: 'ListRestoreSnapshotJobs', req: { db_name: 'shop', collection_name: 'books_r' } },
    ]);
    expect(seen).toEqual([['cancel', 31]]);
    expect(c.data).toMatchObject({ jobId: '31', state: 'RestoreSnapshotFailed', reason: 'cancelled by the user' });
  });

  it('a refused authorization or an unknown job stops the cancel before it runs', async () => {
    seen.length = 0;
    const missing = quiverError('RestoreJobNotFound', 'restore job 404 not found');
    await expect(runRoute(extra, 'jobs/snapshot/cancel', { jobId: 404 }, { GetRestoreSnapshotState: missing })).rejects.toBe(missing);
    const denied = quiverError('ParameterInvalid', 'stand-in for a denial');
    await expect(
      runRoute(extra, 'jobs/snapshot/cancel', { jobId: 31 }, { GetRestoreSnapshotState: { info }, ListRestoreSnapshotJobs: denied }),
    ).rejects.toBe(denied);
    expect(seen).toEqual([]);
  });

  it('snapshots/diff checks each side (DescribeSnapshot, or DescribeCollection for now), then answers keys cut at limit', async () => {
    seen.length = 0;
    const d = await runRoute(extra, 'snapshots/diff', { dbName: 'shop', collectionName: 'books', from: 'a', to: 'now' }, () => ({ status: OK }));
    expect(d.calls).toEqual([
      { method: 'DescribeSnapshot', req: { db_name: 'shop', collection_name: 'books', name: 'a' } },
      { method: 'DescribeCollection', req: { db_name: 'shop', collection_name: 'books' } },
    ]);
    expect(seen).toEqual([['diff', 'shop', 'books', 'a', 'now']]);
    expect(d.data).toEqual({
      from: 'a',
      to: 'now',
      inserted: 2,
      deleted: 1,
      updated: 0,
      segmentsRead: 1,
      segmentsSkipped: 3,
      deltalogsRead: 2,
      // Int64 keys as strings, as Milvus answers int64 values unless the client allows numbers.
      changes: [
        { op: 'insert', pk: '5' },
        { op: 'delete', pk: '9007199254740993' },
        { op: 'insert', pk: '11' },
      ],
      truncated: false,
    });
    const cut = await runRoute(extra, 'snapshots/diff', { collectionName: 'books', from: 'a', to: 'now', limit: 1 }, () => ({ status: OK }), {
      int64AsNumber: true,
    });
    expect(cut.data).toMatchObject({ changes: [{ op: 'insert', pk: 5 }], truncated: true, inserted: 2 });
  });

  it('a missing snapshot (2600) answers before any diff is computed', async () => {
    seen.length = 0;
    const missing = quiverError('SnapshotNotFound', 'snapshot b not found');
    const r = runRoute(extra, 'snapshots/diff', { collectionName: 'books', from: 'a', to: 'b' }, (m, req) => (req.name === 'b' ? missing : { status: OK }));
    await expect(r).rejects.toSatisfy((e: unknown) => isQuiverError(e, 'SnapshotNotFound'));
    expect(seen).toEqual([]);
    expect(refusal(extra, 'snapshots/diff', { collectionName: 'books', from: 'a', to: '../b' }).fields).toEqual(['to']);
    expect(refusal(extra, 'jobs/snapshot/cancel', { jobId: 'x' }).fields).toEqual(['jobId']);
  });
});
