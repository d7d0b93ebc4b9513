import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DataType, ErrorCode, MetricType } from '@zilliz/milvus2-sdk-node';
import { startTestServer, vectors, type TestServer } from './helpers.js';

describe('databases, partitions, aliases, types and search options through the SDK', () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer();
  });
  afterAll(async () => {
    await t?.close();
  });

  it('databases: create/list/describe/drop and the dbname header scopes every call', async () => {
    const c = t.client;
    expect((await c.createDatabase({ db_name: 'analytics' })).error_code).toBe(ErrorCode.SUCCESS);
    expect((await c.listDatabases()).db_names).toEqual(expect.arrayContaining(['default', 'analytics']));
    const d = await c.describeDatabase({ db_name: 'analytics' });
    expect(d.db_name).toBe('analytics');
    const fields = [
      { name: 'id', data_type: DataType.Int64, is_primary_key: true },
      { name: 'v', data_type: DataType.FloatVector, dim: 2 },
    ];
    await c.useDatabase({ db_name: 'analytics' });
    await c.createCollection({ collection_name: 'same', fields });
    await c.useDatabase({ db_name: 'default' });
    await c.createCollection({ collection_name: 'same', fields });
    await c.insert({ collection_name: 'same', data: [{ id: 1, v: [1, 0] }] });
    await c.useDatabase({ db_name: 'analytics' });
    expect((await c.getCollectionStatistics({ collection_name: 'same' })).data.row_count).toBe('0');
    const notEmpty = await c.dropDatabase({ db_name: 'analytics' });
    expect(notEmpty.error_code).not.toBe(ErrorCode.SUCCESS);
    await c.dropCollection({ collection_name: 'same' });
    await c.useDatabase({ db_name: 'default' });
    expect((await c.dropDatabase({ db_name: 'analytics' })).error_code).toBe(ErrorCode.SUCCESS);
    expect((await c.getCollectionStatistics({ collection_name: 'same' })).data.row_count).toBe('1');
    await c.dropCollection({ collection_name: 'same' });
  });

  it('partitions: create/list/has/drop, load and search per partition', async () => {
    const c = t.client;
    await c.createCollection({
      collection_name: 'parts',
      fields: [
        { name: 'id', data_type: DataType.Int64, is_primary_key: true },
        { name: 'v', data_type: DataType.FloatVector, dim: 2 },
      ],
    });
    await c.createPartition({ collection_name: 'parts', partition_name: 'a' });
    await c.createPartition({ collection_name: 'parts', partition_name: 'b' });
    expect((await c.listPartitions({ collection_name: 'parts' })).partition_names).toEqual(['_default', 'a', 'b']);
    expect((await c.hasPartition({ collection_name: 'parts', partition_name: 'a' })).value).toBe(true);
    await c.insert({
      collection_name: 'parts',
      partition_name: 'a',
      data: [
        { id: 1, v: [1, 0] },
        { id: 2, v: [0.9, 0.1] },
      ],
    });
    await c.insert({ collection_name: 'parts', partition_name: 'b', data: [{ id: 3, v: [1, 0] }] });
    await c.createIndex({ collection_name: 'parts', field_name: 'v', index_type: 'FLAT', metric_type: MetricType.IP });
    await c.loadPartitionsSync({ collection_name: 'parts', partition_names: ['a'] });
    const s = await c.search({ collection_name: 'parts', data: [[1, 0]], limit: 5, partition_names: ['a'] });
    expect(s.results.map((r) => String(r.id)).sort()).toEqual(['1', '2']);
    const notLoaded = await c.search({ collection_name: 'parts', data: [[1, 0]], limit: 5, partition_names: ['b'] });
    expect(notLoaded.status.error_code).not.toBe(ErrorCode.SUCCESS);
    await c.loadPartitionsSync({ collection_name: 'parts', partition_names: ['b'] });
    const all = await c.search({ collection_name: 'parts', data: [[1, 0]], limit: 5 });
    expect(all.results).toHaveLength(3);
    const q = await c.query({ collection_name: 'parts', filter: 'id > 0', partition_names: ['b'], output_fields: ['id'] });
    expect(q.data.map((r) => String(r.id))).toEqual(['3']);
    expect((await c.getPartitionStatistics({ collection_name: 'parts', partition_name: 'a' })).data.row_count).toBe('2');
    const loadedDrop = await c.dropPartition({ collection_name: 'parts', partition_name: 'b' });
    expect(loadedDrop.error_code).not.toBe(ErrorCode.SUCCESS);
    await c.releasePartitions({ collection_name: 'parts', partition_names: ['b'] });
    expect((await c.dropPartition({ collection_name: 'parts', partition_name: 'b' })).error_code).toBe(ErrorCode.SUCCESS);
    expect((await c.listPartitions({ collection_name: 'parts' })).partition_names).toEqual(['_default', 'a']);
    await c.releaseCollection({ collection_name: 'parts' });
    await c.dropCollection({ collection_name: 'parts' });
  });

  it('aliases: create/describe/list/alter/drop, and the alias reaches the collection', async () => {
    const c = t.client;
    const fields = [
      { name: 'id', data_type: DataType.Int64, is_primary_key: true },
      { name: 'v', data_type: DataType.FloatVector, dim: 2 },
    ];
    await c.createCollection({ collection_name: 'blue', fields });
    await c.createCollection({ collection_name: 'green', fields });
    await c.insert({ collection_name: 'green', data: [{ id: 7, v: [1, 1] }] });
    expect((await c.createAlias({ collection_name: 'blue', alias: 'live' })).error_code).toBe(ErrorCode.SUCCESS);
    const da = await c.describeAlias({ alias: 'live', collection_name: 'blue' });
    expect(da.collection).toBe('blue');
    expect((await c.listAliases({ collection_name: 'blue' })).aliases).toEqual(['live']);
    await c.alterAlias({ collection_name: 'green', alias: 'live' });
    expect((await c.getCollectionStatistics({ collection_name: 'live' })).data.row_count).toBe('1');
    const d = await c.describeCollection({ collection_name: 'green' });
    expect(d.aliases).toEqual(['live']);
    await c.dropAlias({ alias: 'live' });
    expect((await c.describeAlias({ alias: 'live', collection_name: 'green' })).status.error_code).not.toBe(ErrorCode.SUCCESS);
    await c.dropCollection({ collection_name: 'blue' });
    await c.dropCollection({ collection_name: 'green' });
  });

  it('nullable fields, default values, upsert rules, rename, and range search', async () => {
    const c = t.client;
    await c.createCollection({
      collection_name: 'nulls',
      fields: [
        { name: 'id', data_type: DataType.VarChar, is_primary_key: true, max_length: 8 },
        { name: 'score', data_type: DataType.Double, nullable: true },
        { name: 'level', data_type: DataType.Int16, default_value: 3 },
        { name: 'flag', data_type: DataType.Bool, nullable: true },
        { name: 'v', data_type: DataType.FloatVector, dim: 2 },
      ],
    });
    const ins = await c.insert({
      collection_name: 'nulls',
      data: [
        { id: 'a', score: 1.5, level: 1, flag: true, v: [1, 0] },
        { id: 'b', score: null, level: null, flag: null, v: [0, 1] },
        { id: 'c', v: [0.7, 0.7] },
      ],
    });
    expect(ins.status.error_code).toBe(ErrorCode.SUCCESS);
    await c.createIndex({ collection_name: 'nulls', field_name: 'v', index_type: 'HNSW', metric_type: MetricType.COSINE });
    await c.loadCollectionSync({ collection_name: 'nulls' });
    const q = await c.query({ collection_name: 'nulls', filter: 'id in ["a", "b", "c"]', output_fields: ['score', 'level', 'flag'] });
    const byId = Object.fromEntries(q.data.map((r) => [r.id, r]));
    expect(byId['a']).toMatchObject({ score: 1.5, level: 1, flag: true });
    expect(byId['b']).toMatchObject({ score: null, level: 3, flag: null });
    expect(byId['c']).toMatchObject({ score: null, level: 3 });
    expect((await c.count({ collection_name: 'nulls', filter: 'score is null' })).data).toBe(2);
    const dupUpsert = await c.upsert({
      collection_name: 'nulls',
      data: [
        { id: 'a', v: [1, 0] },
        { id: 'a', v: [0, 1] },
      ],
    });
    expect(dupUpsert.status.error_code).not.toBe(ErrorCode.SUCCESS);
    expect(dupUpsert.status.reason).toMatch(/duplicate/);
    // range search: COSINE keeps radius < s <= range_filter
    const r = await c.search({ collection_name: 'nulls', data: [[1, 0]], limit: 10, params: { radius: 0.5, range_filter: 0.99 } });
    expect(r.results.map((x) => x.id)).toEqual(['c']);
    // templates
    const tq = await c.query({ collection_name: 'nulls', filter: 'level < {lv}', exprValues: { lv: 2 }, output_fields: ['id'] });
    expect(tq.data.map((x) => x.id)).toEqual(['a']);
    await c.releaseCollection({ collection_name: 'nulls' });
    expect((await c.renameCollection({ collection_name: 'nulls', new_collection_name: 'nulls2' })).error_code).toBe(ErrorCode.SUCCESS);
    expect((await c.hasCollection({ collection_name: 'nulls2' })).value).toBe(true);
    await c.dropCollection({ collection_name: 'nulls2' });
  });

  it('search output fields: "*", dynamic keys, offset, and unsupported index types are refused', async () => {
    const c = t.client;
    await c.createCollection({
      collection_name: 'dyn',
      fields: [
        { name: 'id', data_type: DataType.Int64, is_primary_key: true },
        { name: 'v', data_type: DataType.FloatVector, dim: 3 },
      ],
      enable_dynamic_field: true,
    });
    const vs = vectors(20, 3, 9);
    await c.insert({ collection_name: 'dyn', data: vs.map((v, i) => ({ id: i, v, color: i % 2 ? 'odd' : 'even', n: i })) });
    const bad = await c.createIndex({ collection_name: 'dyn', field_name: 'v', index_type: 'DISKANN', metric_type: 'L2' });
    expect(bad.error_code).not.toBe(ErrorCode.SUCCESS);
    expect(bad.reason).toMatch(/FLAT.*HNSW/);
    await c.createIndex({ collection_name: 'dyn', field_name: 'v', metric_type: 'L2' });
    const di = await c.describeIndex({ collection_name: 'dyn', field_name: 'v' });
    expect(di.index_descriptions[0]!.params.find((p) => p.key === 'index_type')?.value).toBe('HNSW');
    await c.loadCollectionSync({ collection_name: 'dyn' });
    const s = await c.search({ collection_name: 'dyn', data: [vs[4]!], limit: 3, output_fields: ['*'] });
    expect(s.results[0]).toMatchObject({ id: '4' });
    expect((s.results[0] as Record<string, unknown>)['v']).toHaveLength(3);
    const k = await c.search({ collection_name: 'dyn', data: [vs[4]!], limit: 2, offset: 1, output_fields: ['color'], filter: 'n >= 2' });
    expect(k.results).toHaveLength(2);
    expect(k.results.map((r) => r.id)).not.toContain('4');
    for (const r of k.results) expect(['odd', 'even']).toContain(r.color);
    const cnt = await c.count({ collection_name: 'dyn', filter: 'color == "odd"' });
    expect(cnt.data).toBe(10);
    await c.dropCollection({ collection_name: 'dyn' });
  });
});
