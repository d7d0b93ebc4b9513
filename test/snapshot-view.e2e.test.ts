import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DataType, ErrorCode } from '@zilliz/milvus2-sdk-node';
import { startTestServer, until, vectors, type TestServer } from './helpers.js';

/** The SDK rejects some calls with the status and resolves others with it: take either. */
const settle = async (p: Promise<unknown>) => (await p.catch((e: unknown) => e)) as { error_code: string; reason: string; code?: number };

describe('reading a snapshot in place: COLLECTION@SNAPSHOT', () => {
  let t: TestServer;
  const vs = vectors(300, 8, 11);
  const count = async (name: string) =>
    Number((await t.client.query({ collection_name: name, filter: '', output_fields: ['count(*)'] })).data[0]!['count(*)']);

  beforeAll(async () => {
    t = await startTestServer({ autoCompaction: false });
    await t.client.createCollection({
      collection_name: 'docs',
      fields: [
        { name: 'id', data_type: DataType.Int64, is_primary_key: true },
        { name: 'tag', data_type: DataType.VarChar, max_length: 8 },
        { name: 'v', data_type: DataType.FloatVector, dim: 8 },
      ],
    });
    for (let b = 0; b < 3; b++) {
      await t.client.insert({ collection_name: 'docs', data: vs.slice(b * 100, b * 100 + 100).map((v, i) => ({ id: b * 100 + i, tag: `t${i % 3}`, v })) });
      await t.client.flushSync({ collection_names: ['docs'] });
    }
    await t.client.createIndex({ collection_name: 'docs', field_name: 'v', index_type: 'HNSW', metric_type: 'L2', params: { M: 8, efConstruction: 64 } });
    await t.client.loadCollectionSync({ collection_name: 'docs' });
    await t.server.engine.roles.indexes.buildMissing(t.server.engine.catalog.resolveCollection('default', 'docs').id);
    expect((await t.client.createSnapshot({ collection_name: 'docs', snapshot_name: 's1' })).error_code).toBe(ErrorCode.SUCCESS);
    // The live collection moves on: deletes, an upsert, new rows, and a new field value.
    await t.client.delete({ collection_name: 'docs', ids: [0, 1, 2, 150] });
    await t.client.upsert({ collection_name: 'docs', data: [{ id: 10, tag: 'new', v: vs[10]! }] });
    await t.client.insert({ collection_name: 'docs', data: [{ id: 1000, tag: 'new', v: vs[5]! }] });
  });
  afterAll(async () => {
    await t?.close();
  });

  it('describes, loads and answers search, query, count and hybrid search as of the snapshot', async () => {
    const d = await t.client.describeCollection({ collection_name: 'docs@s1' });
    expect(d.status.error_code).toBe(ErrorCode.SUCCESS);
    expect(d.collection_name).toBe('docs@s1');
    expect(d.schema.fields.map((f) => f.name)).toEqual(['id', 'tag', 'v']);
    const idx = await t.client.describeIndex({ collection_name: 'docs@s1', field_name: 'v' });
    expect(idx.index_descriptions[0]!.params.find((p) => p.key === 'index_type')?.value).toBe('HNSW');
    expect(idx.index_descriptions[0]!.state).toBe('Finished');

    expect((await t.client.loadCollectionSync({ collection_name: 'docs@s1' })).error_code).toBe(ErrorCode.SUCCESS);
    expect(String((await t.client.getLoadState({ collection_name: 'docs@s1' })).state)).toBe('LoadStateLoaded');

    // No copy: each of the snapshot's three segments shares its loaded vectors (and HNSW graph) with the
    // live collection's loaded segment; only the delete bitmap is the view's own.
    const sharing = [...t.server.engine.queryNode.contentIndex.values()].filter((refs) => {
      const chunks = refs.map((r) => r.deref()).filter((c) => c !== undefined);
      return (
        chunks.length >= 2 && chunks[0]!.columns.get('v') === chunks[1]!.columns.get('v') && chunks[0]!.indexes.get('v') === chunks[1]!.indexes.get('v')
      );
    });
    expect(sharing).toHaveLength(3);

    expect(await count('docs@s1')).toBe(300);
    expect(await count('docs')).toBe(297);
    const q = await t.client.query({ collection_name: 'docs@s1', filter: 'id in [0, 10, 150, 1000]', output_fields: ['id', 'tag'] });
    expect(q.data.map((r) => `${r.id}:${r.tag}`).sort()).toEqual(['0:t0', '10:t1', '150:t2']);

    // The deleted row is still the nearest neighbour of its own vector in the snapshot, not live.
    const s = await t.client.search({ collection_name: 'docs@s1', data: [vs[0]!], limit: 3, output_fields: ['tag'] });
    expect(String(s.results[0]!.id)).toBe('0');
    const live = await t.client.search({ collection_name: 'docs', data: [vs[0]!], limit: 3 });
    expect(live.results.map((r) => String(r.id))).not.toContain('0');

    const h = await t.client.hybridSearch({
      collection_name: 'docs@s1',
      data: [{ data: [vs[2]!], anns_field: 'v', params: {} }],
      limit: 2,
    } as never);
    expect(h.status.error_code).toBe(ErrorCode.SUCCESS);
    expect(String((h.results as { id: string }[])[0]!.id)).toBe('2');
  });

  it('refuses writes and DDL naming the view, and a missing snapshot is a missing collection', async () => {
    for (const p of [
      t.client.insert({ collection_name: 'docs@s1', data: [{ id: 5000, tag: 'x', v: vs[0]! }] }),
      t.client.delete({ collection_name: 'docs@s1', ids: [1] }),
      t.client.dropCollection({ collection_name: 'docs@s1' }),
      t.client.createIndex({ collection_name: 'docs@s1', field_name: 'tag', index_type: 'INVERTED' }),
      t.client.alterCollectionProperties({ collection_name: 'docs@s1', properties: { a: 'b' } }),
      t.client.flush({ collection_names: ['docs@s1'] }),
      t.client.createSnapshot({ collection_name: 'docs@s1', snapshot_name: 'x' }),
    ]) {
      const r = await settle(p);
      const reason = r.reason ?? (r as unknown as { status?: { reason: string } }).status?.reason;
      expect(reason).toMatch(/collection docs@s1 is a read-only view of a snapshot: \w+ is refused/);
    }
    expect((await t.client.hasCollection({ collection_name: 'docs@nope' })).value).toBe(false);
    expect((await t.client.hasCollection({ collection_name: 'docs@s1' })).value).toBe(true);
    const missing = await t.client.describeCollection({ collection_name: 'docs@nope' });
    expect(missing.status.code).toBe(100);
    expect(missing.status.reason).toContain('docs@nope');
    expect((await t.client.describeCollection({ collection_name: 'nodocs@s1' })).status.code).toBe(100);
  });

  it('pins the snapshot while loaded; release unpins', async () => {
    const drop = await t.client.dropSnapshot({ collection_name: 'docs', snapshot_name: 's1' });
    expect(drop.code).toBe(2601); // SnapshotPinned
    expect((await t.client.releaseCollection({ collection_name: 'docs@s1' })).error_code).toBe(ErrorCode.SUCCESS);
    expect((await t.client.createSnapshot({ collection_name: 'docs', snapshot_name: 's2' })).error_code).toBe(ErrorCode.SUCCESS);
    expect((await t.client.dropSnapshot({ collection_name: 'docs', snapshot_name: 's1' })).error_code).toBe(ErrorCode.SUCCESS);
  });

  it('a loaded view is loaded again after a restart and keeps its pin; a released one stays released', async () => {
    await t.client.loadCollectionSync({ collection_name: 'docs@s2' });
    const search = async () =>
      (await t.client.search({ collection_name: 'docs@s2', data: [vs[7]!], limit: 5, output_fields: ['tag'] })).results.map(
        (r) => `${String(r.id)}:${String(r.tag)}`,
      );
    const before = await search();
    expect(before).toHaveLength(5);
    const shown = await t.client.showCollections();
    expect(shown.data.map((c) => c.name)).toEqual(['docs']); // views are not listed

    t = await t.restart();
    // No loadCollection: the view loads in the background and requests naming it wait for its load state.
    await until(async () => String((await t.client.getLoadState({ collection_name: 'docs@s2' })).state) === 'LoadStateLoaded', {
      what: 'docs@s2 to be loaded again',
    });
    expect(await search()).toEqual(before);
    expect((await t.client.dropSnapshot({ collection_name: 'docs', snapshot_name: 's2' })).code).toBe(2601);
    expect((await t.client.showCollections()).data.map((c) => c.name)).toEqual(['docs']);

    expect((await t.client.releaseCollection({ collection_name: 'docs@s2' })).error_code).toBe(ErrorCode.SUCCESS);
    t = await t.restart();
    expect(String((await t.client.getLoadState({ collection_name: 'docs@s2' })).state)).toBe('LoadStateNotLoad');
    expect(t.server.snapshots.activePinsAll()).toEqual([]);
    expect((await t.client.dropSnapshot({ collection_name: 'docs', snapshot_name: 's2' })).error_code).toBe(ErrorCode.SUCCESS);
  });

  it('a view whose pin is gone at startup is not reloaded and its entry is dropped', async () => {
    expect((await t.client.createSnapshot({ collection_name: 'docs', snapshot_name: 's3' })).error_code).toBe(ErrorCode.SUCCESS);
    await t.client.loadCollectionSync({ collection_name: 'docs@s3' });
    // What a crash between release's unpin and its entry delete leaves.
    const pin = t.server.snapshots.activePinsAll().find((p) => p.snapshotName === 's3');
    await t.server.snapshots.unpin(pin!.id);
    t = await t.restart();
    expect(String((await t.client.getLoadState({ collection_name: 'docs@s3' })).state)).toBe('LoadStateNotLoad');
    t = await t.restart(); // the entry is gone: nothing to drop a second time
    expect(String((await t.client.getLoadState({ collection_name: 'docs@s3' })).state)).toBe('LoadStateNotLoad');
    expect(t.server.snapshots.activePinsAll()).toEqual([]);
    expect((await t.client.dropSnapshot({ collection_name: 'docs', snapshot_name: 's3' })).error_code).toBe(ErrorCode.SUCCESS);
  });
});
