import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DataType, ErrorCode } from '@zilliz/milvus2-sdk-node';
import { exportSnapshot, restoreExternal } from '../src/cli/export-rpc.js';
import { S3RVER_CREDENTIALS, S3Server, s3rverBin } from '../src/testing/s3-server.js';
import { startTestServer, vectors, waitRestore, type TestServer } from './helpers.js';

/**
 * Export to and restore from `s3://bucket/prefix` (s3rver), with the endpoint and credentials in
 * `external_spec`; wrong credentials are refused with the store's reason, before anything is written.
 */
describe.skipIf(s3rverBin() === undefined)('snapshot export to S3', () => {
  let s3: S3Server;
  let a: TestServer;
  let b: TestServer;
  const spec = (over: Record<string, string> = {}) =>
    JSON.stringify({
      endpoint: s3.endpoint,
      access_key_id: S3RVER_CREDENTIALS.accessKeyId,
      secret_access_key: S3RVER_CREDENTIALS.secretAccessKey,
      ...over,
    });

  beforeAll(async () => {
    s3 = await S3Server.start(['bundles']);
    a = await startTestServer({ autoCompaction: false, exportRoots: 's3://bundles/quiver' });
    b = await startTestServer({ autoCompaction: false, exportRoots: 's3://bundles/quiver', copyCheckIntervalMs: 50 });
    const c = a.client;
    await c.createCollection({
      collection_name: 'src',
      fields: [
        { name: 'id', data_type: DataType.Int64, is_primary_key: true },
        { name: 'v', data_type: DataType.FloatVector, dim: 4 },
      ],
    });
    await c.insert({ collection_name: 'src', data: vectors(80, 4, 2).map((v, id) => ({ id, v })) });
    await c.delete({ collection_name: 'src', ids: [1] });
    expect((await c.createSnapshot({ collection_name: 'src', snapshot_name: 's' })).error_code).toBe(ErrorCode.SUCCESS);
  });
  afterAll(async () => {
    await a?.close();
    await b?.close();
    await s3?.stop();
  });

  it('exports to S3 and restores from it on another server', async () => {
    const r = await exportSnapshot(a.server.port, {
      collection_name: 'src',
      name: 's',
      target_s3_path: 's3://bundles/quiver/daily',
      external_spec: spec(),
    });
    expect(r.status.code, r.status.reason).toBe(0);
    expect(r.snapshot_metadata_uri).toMatch(/^s3:\/\/bundles\/quiver\/daily\/bundles\/default\/src\/s-\d+\.json$/);
    const j = await restoreExternal(b.server.port, {
      target_collection_name: 'copy',
      snapshot_metadata_uri: r.snapshot_metadata_uri!,
      external_spec: spec(),
    });
    expect(j.status.code, j.status.reason).toBe(0);
    expect((await waitRestore(b.client, j.job_id!)).state).toBe('RestoreSnapshotCompleted');
    await b.client.loadCollectionSync({ collection_name: 'copy' });
    expect((await b.client.count({ collection_name: 'copy' })).data).toBe(79);
  });

  it('wrong credentials are refused naming the problem', async () => {
    const r = await exportSnapshot(a.server.port, {
      collection_name: 'src',
      name: 's',
      target_s3_path: 's3://bundles/quiver/wrong',
      external_spec: spec({ access_key_id: 'nobody', secret_access_key: 'nope' }),
    });
    expect(r.status.code).not.toBe(0);
    expect(r.status.reason).toMatch(/access|credential|denied|forbidden|InvalidAccessKeyId|403/i);
  });
});
