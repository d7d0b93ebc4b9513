import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DataType, ErrorCode, MetricType } from '@zilliz/milvus2-sdk-node';
import { startTestServer, vectors, type TestServer } from './helpers.js';

const DIM = 8;

describe('core workflow through the official SDK', () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer();
  });
  afterAll(async () => {
    await t?.close();
  });

  it('connects, reports a version and health', async () => {
    const v = await t.client.getVersion();
    expect(v.version).toMatch(/quiver/);
    const h = await t.client.checkHealth();
    expect(h.isHealthy).toBe(true);
  });

  it('creates, describes, inserts, flushes, indexes, loads, searches, queries, deletes and drops', async () => {
    const c = t.client;
    const name = 'books';
    const created = await c.createCollection({
      collection_name: name,
      description: 'a test collection',
      fields: [
        { name: 'id', data_type: DataType.Int64, is_primary_key: true, autoID: false },
        { name: 'title', data_type: DataType.VarChar, max_length: 64 },
        { name: 'year', data_type: DataType.Int32 },
        { name: 'meta', data_type: DataType.JSON },
        { name: 'tags', data_type: DataType.Array, element_type: DataType.Int64, max_capacity: 8 },
        { name: 'vec', data_type: DataType.FloatVector, dim: DIM },
      ],
      enable_dynamic_field: true,
    });
    expect(created.error_code).toBe(ErrorCode.SUCCESS);

    const d = await c.describeCollection({ collection_name: name });
    expect(d.status.error_code).toBe(ErrorCode.SUCCESS);
    expect(d.schema.fields.map((f) => f.name)).toEqual(['id', 'title', 'year', 'meta', 'tags', 'vec']);
    expect(d.schema.description).toBe('a test collection');
    expect((await c.hasCollection({ collection_name: name })).value).toBe(true);

    const vs = vectors(200, DIM);
    const rows = vs.map((v, i) => ({
      id: i,
      title: `title_${i}`,
      year: 1900 + i,
      meta: { group: i % 5, even: i % 2 === 0 },
      tags: [i, i + 1],
      vec: v,
      color: i % 3 === 0 ? 'red' : 'blue',
    }));
    const ins = await c.insert({ collection_name: name, data: rows.slice(0, 150) });
    expect(ins.status.error_code).toBe(ErrorCode.SUCCESS);
    expect(Number(ins.insert_cnt)).toBe(150);
    expect(ins.succ_index.length).toBe(150);

    const fl = await c.flushSync({ collection_names: [name] });
    expect(fl.status.error_code).toBe(ErrorCode.SUCCESS);
    // 50 more rows stay growing (unflushed)
    await c.insert({ collection_name: name, data: rows.slice(150) });

    const idx = await c.createIndex({
      collection_name: name,
      field_name: 'vec',
      index_type: 'HNSW',
      metric_type: MetricType.L2,
      params: { M: 8, efConstruction: 64 },
    });
    expect(idx.error_code).toBe(ErrorCode.SUCCESS);
    const di = await c.describeIndex({ collection_name: name, field_name: 'vec' });
    expect(di.status.error_code).toBe(ErrorCode.SUCCESS);
    expect(di.index_descriptions[0]!.index_name).toBe('vec');

    await c.loadCollectionSync({ collection_name: name });
    const ls = await c.getLoadState({ collection_name: name });
    expect(ls.state).toBe('LoadStateLoaded');

    const stats = await c.getCollectionStatistics({ collection_name: name });
    expect(stats.data.row_count).toBe('200');

    // Exact match: searching with row 7's vector returns row 7 first (flushed), row 170 (growing).
    for (const target of [7, 170]) {
      const s = await c.search({ collection_name: name, data: [vs[target]!], limit: 3, output_fields: ['title', 'color'], params: { ef: 64 } });
      expect(s.status.error_code).toBe(ErrorCode.SUCCESS);
      expect(s.results.length).toBe(3);
      expect(String(s.results[0]!.id)).toBe(String(target));
      expect(s.results[0]!.title).toBe(`title_${target}`);
      expect(s.results[0]!.color).toBe(target % 3 === 0 ? 'red' : 'blue');
      expect(s.results[0]!.score).toBeCloseTo(0, 4);
    }

    // Filtered search
    const fs = await c.search({ collection_name: name, data: [vs[0]!], limit: 10, filter: 'year >= 1950 and meta["even"] == true' });
    expect(fs.results.length).toBe(10);
    for (const r of fs.results) expect(Number(r.id) >= 50 && Number(r.id) % 2 === 0).toBe(true);

    // nq = 2
    const s2 = await c.search({ collection_name: name, data: [vs[1]!, vs[2]!], limit: 2 });
    expect(s2.results.length).toBe(2);
    expect(String((s2.results as unknown as { id: string }[][])[1]![0]!.id)).toBe('2');

    // Query, count, get
    const q = await c.query({
      collection_name: name,
      filter: 'title like "title_1%" and array_contains(tags, 12)',
      output_fields: ['id', 'title', 'tags'],
    });
    expect(q.status.error_code).toBe(ErrorCode.SUCCESS);
    expect(q.data.map((r) => String(r.id)).sort()).toEqual(['11', '12']);
    const cnt = await c.count({ collection_name: name, filter: 'color == "red"' });
    expect(cnt.data).toBe(67);
    const g = await c.get({ collection_name: name, ids: [3, 160], output_fields: ['title'] });
    expect(g.data.map((r) => r.title).sort()).toEqual(['title_160', 'title_3']);

    // Delete by ids and by filter; deleted rows never come back.
    const del = await c.delete({ collection_name: name, ids: [7, 170] });
    expect(del.status.error_code).toBe(ErrorCode.SUCCESS);
    const del2 = await c.delete({ collection_name: name, filter: 'year < 1905' });
    expect(del2.status.error_code).toBe(ErrorCode.SUCCESS);
    const after = await c.search({ collection_name: name, data: [vs[7]!], limit: 5 });
    expect(after.results.map((r) => String(r.id))).not.toContain('7');
    expect((await c.count({ collection_name: name })).data).toBe(200 - 2 - 5);

    // Upsert replaces a row.
    const up = await c.upsert({ collection_name: name, data: [{ ...rows[10]!, title: 'replaced' }] });
    expect(up.status.error_code).toBe(ErrorCode.SUCCESS);
    const q2 = await c.query({ collection_name: name, filter: 'id == 10', output_fields: ['title'] });
    expect(q2.data).toHaveLength(1);
    expect(q2.data[0]!.title).toBe('replaced');

    await c.releaseCollection({ collection_name: name });
    const dropped = await c.dropCollection({ collection_name: name });
    expect(dropped.error_code).toBe(ErrorCode.SUCCESS);
    expect((await c.hasCollection({ collection_name: name })).value).toBe(false);
  });

  it('rejects bad input with Milvus error codes and reasons naming the value', async () => {
    const c = t.client;
    const name = 'strict';
    await c.createCollection({
      collection_name: name,
      fields: [
        { name: 'pk', data_type: DataType.VarChar, is_primary_key: true, max_length: 16 },
        { name: 'v', data_type: DataType.FloatVector, dim: 4 },
      ],
    });
    const wrongDim = await c.insert({ collection_name: name, data: [{ pk: 'a', v: [1, 2, 3] }] });
    expect(wrongDim.status.error_code).not.toBe(ErrorCode.SUCCESS);
    expect(wrongDim.status.reason).toMatch(/dim|length/);
    const tooLong = await c.insert({ collection_name: name, data: [{ pk: 'x'.repeat(20), v: [1, 2, 3, 4] }] });
    expect(tooLong.status.error_code).not.toBe(ErrorCode.SUCCESS);
    expect(tooLong.status.reason).toMatch(/max length/);
    const missing = await c.describeCollection({ collection_name: 'nope' });
    expect(missing.status.error_code).not.toBe(ErrorCode.SUCCESS);
    expect(missing.status.code).toBe(100);
    expect(missing.status.reason).toMatch(/nope/);
    // The SDK's createCollection throws the Status when it is not Success.
    await expect(
      c.createCollection({
        collection_name: name,
        fields: [
          { name: 'pk', data_type: DataType.Int64, is_primary_key: true },
          { name: 'v', data_type: DataType.FloatVector, dim: 4 },
        ],
      }),
    ).rejects.toMatchObject({ reason: expect.stringMatching(/already exists: strict/) });
    const badIdx = await c.createIndex({ collection_name: name, field_name: 'v', index_type: 'DISKANN', metric_type: 'L2' });
    expect(badIdx.error_code).not.toBe(ErrorCode.SUCCESS);
    expect(badIdx.reason).toMatch(/HNSW/);
    await c.insert({ collection_name: name, data: [{ pk: 'a', v: [1, 2, 3, 4] }] });
    await c.loadCollectionSync({ collection_name: name });
    const badExpr = await c.query({ collection_name: name, filter: 'pk == ', output_fields: ['pk'] });
    expect(badExpr.status.error_code).not.toBe(ErrorCode.SUCCESS);
    expect(badExpr.status.reason).toMatch(/position/);
    const unknownField = await c.query({ collection_name: name, filter: 'pk == "a"', output_fields: ['nope'] });
    expect(unknownField.status.error_code).not.toBe(ErrorCode.SUCCESS);
    expect(unknownField.status.reason).toMatch(/nope/);
    const bigTopk = await c.search({ collection_name: name, data: [[1, 2, 3, 4]], limit: 20000 });
    expect(bigTopk.status.error_code).not.toBe(ErrorCode.SUCCESS);
  });
});
