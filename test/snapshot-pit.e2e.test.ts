import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DataType, ErrorCode } from '@zilliz/milvus2-sdk-node';
import { startTestServer, vectors, waitRestore, type TestServer } from './helpers.js';

/**
 * Exact point in time (issue 13 item 7): a restore holds exactly the rows visible when the snapshot was
 * taken, even when upserts and deletes land in the snapshot's own segments right after it and are
 * flushed (Milvus #50662: they leaked into the restore), and it keeps the source's consistency level and
 * properties (Milvus #52202: reset to defaults).
 */

const vs = vectors(200, 4, 5);

describe('restore is exact at the snapshot point', () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer({ autoCompaction: false, copyCheckIntervalMs: 50 });
  });
  afterAll(async () => {
    await t?.close();
  });

  const rows = async (collection: string) => {
    await t.client.loadCollectionSync({ collection_name: collection });
    const q = await t.client.query({ collection_name: collection, filter: 'id >= 0', output_fields: ['id', 'tag'], limit: 1000 });
    return q.data.map((r) => `${String(r.id)}:${String(r.tag)}`).sort();
  };

  it('upserts, deletes and inserts landing just after the snapshot (flushed, same segments) stay out of the restore', async () => {
    const c = t.client;
    await c.createCollection({
      collection_name: 'pit',
      fields: [
        { name: 'id', data_type: DataType.Int64, is_primary_key: true },
        { name: 'tag', data_type: DataType.VarChar, max_length: 16 },
        { name: 'v', data_type: DataType.FloatVector, dim: 4 },
      ],
      consistency_level: 'Session',
      properties: { 'collection.ttl.seconds': '86400', 'mmap.enabled': 'true' },
    });
    await c.insert({ collection_name: 'pit', data: vs.slice(0, 100).map((v, id) => ({ id, tag: 'a', v })) });
    await c.flushSync({ collection_names: ['pit'] });
    // Unflushed at the snapshot: an upsert and a delete of rows in the flushed segment.
    await c.upsert({ collection_name: 'pit', data: [{ id: 3, tag: 'b', v: vs[3]! }] });
    await c.delete({ collection_name: 'pit', ids: [4] });
    const expected = await rows('pit');
    expect((await c.createSnapshot({ collection_name: 'pit', snapshot_name: 'at' })).error_code).toBe(ErrorCode.SUCCESS);
    // Right after: the same keys again, a delete of a key the snapshot holds, new rows; all flushed so
    // that they sit in deltalogs of the very segments the snapshot references.
    await c.upsert({
      collection_name: 'pit',
      data: [
        { id: 3, tag: 'c', v: vs[3]! },
        { id: 5, tag: 'c', v: vs[5]! },
      ],
    });
    await c.delete({ collection_name: 'pit', ids: [6, 3] });
    await c.insert({ collection_name: 'pit', data: [{ id: 150, tag: 'late', v: vs[150]! }] });
    await c.flushSync({ collection_names: ['pit'] });
    expect(await rows('pit')).not.toEqual(expected);

    const r = await c.restoreSnapshot({ snapshot_name: 'at', source_collection_name: 'pit', target_collection_name: 'pit_at' });
    expect(r.status.error_code, r.status.reason).toBe(ErrorCode.SUCCESS);
    expect((await waitRestore(c, r.job_id)).state).toBe('RestoreSnapshotCompleted');
    expect(await rows('pit_at')).toEqual(expected);
    expect(expected).toContain('3:b');
    expect(expected).not.toContain('4:a');

    const d = await c.describeCollection({ collection_name: 'pit_at' });
    expect(d.consistency_level).toBe('Session');
    expect(Object.fromEntries(d.properties.map((p) => [p.key, p.value]))).toMatchObject({ 'collection.ttl.seconds': '86400', 'mmap.enabled': 'true' });
  });
});
