import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DataType, ErrorCode } from '@zilliz/milvus2-sdk-node';
import { startTestServer, until, vectors, type TestServer } from './helpers.js';

describe('compaction through the SDK', () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer({ autoCompaction: false, sealRows: 10_000 });
  });
  afterAll(async () => {
    await t?.close();
  });

  it('merges small segments and drops deleted rows; search and query answers are identical before and after, and after a restart', async () => {
    const c = t.client;
    await c.createCollection({
      collection_name: 'cmp',
      fields: [
        { name: 'id', data_type: DataType.Int64, is_primary_key: true },
        { name: 'tag', data_type: DataType.VarChar, max_length: 8 },
        { name: 'v', data_type: DataType.FloatVector, dim: 8 },
      ],
    });
    const vs = vectors(400, 8, 3);
    for (let b = 0; b < 4; b++) {
      await c.insert({
        collection_name: 'cmp',
        data: vs.slice(b * 100, b * 100 + 100).map((v, i) => ({ id: b * 100 + i, tag: `t${(b * 100 + i) % 4}`, v })),
      });
      await c.flushSync({ collection_names: ['cmp'] });
    }
    await c.createIndex({ collection_name: 'cmp', field_name: 'v', index_type: 'HNSW', metric_type: 'L2', params: { M: 8, efConstruction: 64 } });
    await c.loadCollectionSync({ collection_name: 'cmp' });
    await c.delete({ collection_name: 'cmp', filter: 'id < 150' });
    const coll = t.server.engine.catalog.resolveCollection('default', 'cmp');
    const segsBefore = [...t.server.engine.runtime(coll.id).segments.values()].filter((s) => s.phase === 'flushed').length;
    expect(segsBefore).toBe(4);

    const snapshot = async () => {
      const q = await c.query({ collection_name: 'cmp', filter: 'id >= 0', output_fields: ['id', 'tag'], limit: 1000 });
      const s = await c.search({ collection_name: 'cmp', data: [vs[200]!, vs[399]!], limit: 5, filter: 'tag != "t1"' });
      return {
        rows: q.data.map((r) => `${r.id}:${r.tag}`).sort(),
        hits: (s.results as unknown as { id: string }[][]).map((list) => list.map((h) => h.id)),
        count: (await c.count({ collection_name: 'cmp' })).data,
      };
    };
    const before = await snapshot();
    expect(before.count).toBe(250);

    const res = await c.compact({ collection_name: 'cmp' });
    expect(res.status.error_code).toBe(ErrorCode.SUCCESS);
    await until(async () => String((await c.getCompactionState({ compactionID: res.compactionID })).state) === 'Completed');
    const plans = await c.getCompactionStateWithPlans({ compactionID: res.compactionID });
    expect(plans.mergeInfos.length).toBeGreaterThan(0);
    const segsAfter = [...t.server.engine.runtime(coll.id).segments.values()].filter((s) => s.phase === 'flushed');
    expect(segsAfter.length).toBeLessThan(segsBefore);
    // Deleted rows are physically gone: the surviving segments hold exactly the live rows.
    expect(segsAfter.reduce((n, s) => n + s.numRows, 0)).toBe(250);
    // Every surviving segment has its index (built before publishing).
    for (const s of segsAfter) expect(s.record!.indexes.length).toBe(1);
    expect(await snapshot()).toEqual(before);

    // Deletes after compaction hit the new segment, and everything survives a restart.
    await c.delete({ collection_name: 'cmp', ids: [399] });
    t = await t.restart();
    const c2 = t.client;
    await c2.loadCollectionSync({ collection_name: 'cmp' });
    expect((await c2.count({ collection_name: 'cmp' })).data).toBe(249);
    const q = await c2.query({ collection_name: 'cmp', filter: 'id in [10, 150, 399]', output_fields: ['id'] });
    expect(q.data.map((r) => r.id)).toEqual(['150']);
  });

  it('concurrent inserts, deletes and searches while compaction runs lose nothing', async () => {
    const c = t.client;
    await c.createCollection({
      collection_name: 'busy',
      fields: [
        { name: 'id', data_type: DataType.Int64, is_primary_key: true },
        { name: 'v', data_type: DataType.FloatVector, dim: 4 },
      ],
    });
    const vs = vectors(2000, 4, 5);
    for (let b = 0; b < 5; b++) {
      await c.insert({ collection_name: 'busy', data: vs.slice(b * 200, b * 200 + 200).map((v, i) => ({ id: b * 200 + i, v })) });
      await c.flushSync({ collection_names: ['busy'] });
    }
    await c.loadCollectionSync({ collection_name: 'busy' });
    const coll = t.server.engine.catalog.resolveCollection('default', 'busy');
    const compaction = t.server.engine.compact(coll.id, { force: true, wait: true });
    const writers = (async () => {
      for (let b = 5; b < 10; b++) {
        await c.insert({ collection_name: 'busy', data: vs.slice(b * 200, b * 200 + 200).map((v, i) => ({ id: b * 200 + i, v })) });
        await c.delete({ collection_name: 'busy', filter: `id in [${b * 20}, ${b * 20 + 1}]` });
        const s = await c.search({ collection_name: 'busy', data: [vs[0]!], limit: 3 });
        expect(s.status.error_code).toBe(ErrorCode.SUCCESS);
      }
    })();
    await Promise.all([compaction, writers]);
    expect((await c.count({ collection_name: 'busy' })).data).toBe(2000 - 10);
    const gone = await c.query({ collection_name: 'busy', filter: 'id in [100, 101, 180, 181]', output_fields: ['id'] });
    expect(gone.data).toHaveLength(0);
    t = await t.restart();
    await t.client.loadCollectionSync({ collection_name: 'busy' });
    expect((await t.client.count({ collection_name: 'busy' })).data).toBe(2000 - 10);
  });
});
