import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DataType, ErrorCode } from '@zilliz/milvus2-sdk-node';
import { keyPartitionName } from '../src/proxy/partition-key.js';
import { startTestServer, until, type TestServer } from './helpers.js';

describe('partition key and clustering key through the SDK', () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer();
  });
  afterAll(async () => {
    await t?.close();
  });
  const keyed = [
    { name: 'id', data_type: DataType.Int64, is_primary_key: true },
    { name: 'tenant', data_type: DataType.VarChar, max_length: 16, is_partition_key: true },
    { name: 'v', data_type: DataType.FloatVector, dim: 2 },
  ];
  const rows = Array.from({ length: 200 }, (_, i) => ({ id: i, tenant: `t${i % 10}`, v: [1, i / 200] }));

  it('routes rows to hidden partitions by key, prunes reads on the key and refuses partition DDL', async () => {
    const c = t.client;
    const cr = await c.createCollection({ collection_name: 'pk', fields: keyed, num_partitions: 4 });
    expect(cr.error_code, cr.reason).toBe(ErrorCode.SUCCESS);
    const parts = (await c.listPartitions({ collection_name: 'pk' })).partition_names;
    expect(parts).toEqual(['_default_0', '_default_1', '_default_2', '_default_3']);
    await c.createIndex({ collection_name: 'pk', field_name: 'v', index_type: 'FLAT', metric_type: 'L2' });
    await c.loadCollectionSync({ collection_name: 'pk' });
    const ins = await c.insert({ collection_name: 'pk', data: rows });
    expect(ins.status.error_code, ins.status.reason).toBe(ErrorCode.SUCCESS);
    expect((ins.IDs as { int_id?: { data: number[] } }).int_id?.data.map(Number)).toEqual(rows.map((r) => r.id)); // reply ids in request order
    // Each partition holds exactly the rows whose key hashes to it.
    const expected = new Map<string, number>();
    for (const r of rows) expected.set(keyPartitionName(r.tenant, 4), (expected.get(keyPartitionName(r.tenant, 4)) ?? 0) + 1);
    for (const p of parts) {
      const st = await c.getPartitionStatistics({ collection_name: 'pk', partition_name: p });
      expect(Number(st.data.row_count), p).toBe(expected.get(p) ?? 0);
    }
    const q = await c.query({ collection_name: 'pk', filter: 'tenant == "t3" && id < 100', output_fields: ['id', 'tenant'] });
    expect(q.data.map((r) => Number(r['id'])).sort((a, b) => a - b)).toEqual([3, 13, 23, 33, 43, 53, 63, 73, 83, 93]);
    const s = await c.search({ collection_name: 'pk', data: [[1, 0]], limit: 100, filter: 'tenant in ["t1", "t2"]', output_fields: ['tenant'] });
    expect(s.results).toHaveLength(40);
    expect(new Set(s.results.map((r) => r['tenant']))).toEqual(new Set(['t1', 't2']));
    expect((await c.count({ collection_name: 'pk', expr: 'tenant == "t9"' })).data).toBe(20);
    expect((await c.count({ collection_name: 'pk' })).data).toBe(200);
    // Upserts route the same way and replace the old version wherever it is.
    await c.upsert({ collection_name: 'pk', data: [{ id: 3, tenant: 't4', v: [0, 1] }] });
    expect((await c.count({ collection_name: 'pk', expr: 'tenant == "t3"' })).data).toBe(19);
    expect((await c.count({ collection_name: 'pk', expr: 'tenant == "t4"' })).data).toBe(21);
    const create = await c.createPartition({ collection_name: 'pk', partition_name: 'mine' });
    expect(create.error_code).not.toBe(ErrorCode.SUCCESS);
    expect(create.reason).toMatch(/partition key/);
    expect((await c.dropPartition({ collection_name: 'pk', partition_name: '_default_0' })).reason).toMatch(/partition key/);
    const named = await c.insert({ collection_name: 'pk', partition_name: '_default_1', data: [{ id: 999, tenant: 'x', v: [1, 1] }] });
    expect(named.status.reason).toMatch(/partition names cannot be specified/);
    const namedSearch = await c.search({ collection_name: 'pk', data: [[1, 0]], limit: 3, partition_names: ['_default_1'] });
    expect(namedSearch.status.reason).toMatch(/partition names cannot be specified/);
    expect((await c.count({ collection_name: 'pk' })).data).toBe(200);
  });

  it('partition key isolation: a search must pin the key', async () => {
    const c = t.client;
    const cr = await c.createCollection({ collection_name: 'iso', fields: keyed, properties: { 'partitionkey.isolation': true } });
    expect(cr.error_code, cr.reason).toBe(ErrorCode.SUCCESS);
    expect((await c.listPartitions({ collection_name: 'iso' })).partition_names).toHaveLength(16);
    await c.createIndex({ collection_name: 'iso', field_name: 'v', index_type: 'FLAT', metric_type: 'L2' });
    await c.loadCollectionSync({ collection_name: 'iso' });
    await c.insert({ collection_name: 'iso', data: rows });
    const free = await c.search({ collection_name: 'iso', data: [[1, 0]], limit: 3 });
    expect(free.status.reason).toMatch(/isolation: a search must filter on tenant/);
    const pinned = await c.search({ collection_name: 'iso', data: [[1, 0]], limit: 50, filter: 'tenant == "t5"' });
    expect(pinned.results).toHaveLength(20);
  });

  it('refuses bad partition-key and clustering-key schemas', async () => {
    const c = t.client;
    // The SDK throws a refused createCollection's status (or its own Error for what it checks itself).
    const refused = async (req: Parameters<typeof c.createCollection>[0]) => {
      const r = (await c.createCollection(req).catch((e: unknown) => e)) as { reason?: string; message?: string };
      return { reason: r.reason ?? r.message ?? '' };
    };
    const noKey = await refused({ collection_name: 'bad2', fields: [keyed[0]!, keyed[2]!], num_partitions: 8 });
    expect(noKey.reason).toMatch(/num_partitions 8 is only valid with a partition key/);
    const tooMany = await refused({ collection_name: 'bad3', fields: keyed, num_partitions: 5000 });
    expect(tooMany.reason).toMatch(/5000|partition numbers/); // the SDK checks this one itself
    const isoNoKey = await refused({ collection_name: 'bad4', fields: [keyed[0]!, keyed[2]!], properties: { 'partitionkey.isolation': true } });
    expect(isoNoKey.reason).toMatch(/needs a partition key/);
    const json = await refused({
      collection_name: 'bad5',
      fields: [keyed[0]!, { name: 'j', data_type: DataType.JSON, is_clustering_key: true }, keyed[2]!],
    });
    expect(json.reason).toMatch(/clustering key field j is JSON/);
    for (const n of ['bad2', 'bad3', 'bad4', 'bad5']) expect((await c.hasCollection({ collection_name: n })).value).toBe(false);
  });

  it('a clustering key orders compaction output by its value', async () => {
    const c = t.client;
    await c.createCollection({
      collection_name: 'clu',
      fields: [
        { name: 'id', data_type: DataType.Int64, is_primary_key: true },
        { name: 'rank', data_type: DataType.Int64, is_clustering_key: true },
        { name: 'v', data_type: DataType.FloatVector, dim: 2 },
      ],
    });
    expect((await c.describeCollection({ collection_name: 'clu' })).schema.fields.find((f) => f.name === 'rank')?.is_clustering_key).toBe(true);
    await c.createIndex({ collection_name: 'clu', field_name: 'v', index_type: 'FLAT', metric_type: 'L2' });
    await c.loadCollectionSync({ collection_name: 'clu' });
    for (let b = 0; b < 3; b++) {
      await c.insert({
        collection_name: 'clu',
        data: Array.from({ length: 50 }, (_, i) => ({ id: b * 50 + i, rank: ((b * 50 + i) * 7919) % 101, v: [1, i] })),
      });
      await c.flushSync({ collection_names: ['clu'] });
    }
    const cp = await c.compact({ collection_name: 'clu' });
    await until(async () => String((await c.getCompactionState({ compactionID: cp.compactionID })).state) === 'Completed');
    const segs = (await c.getPersistentSegmentInfo({ collectionName: 'clu' })).infos;
    expect(segs).toHaveLength(1);
    // Without a limit a query returns rows in segment order: the compacted segment's order.
    const q = await c.query({ collection_name: 'clu', filter: 'id >= 0', output_fields: ['rank'] });
    const ranks = q.data.map((r) => Number(r['rank']));
    expect(ranks).toHaveLength(150);
    expect(ranks).toEqual([...ranks].sort((a, b) => a - b));
  });
});
