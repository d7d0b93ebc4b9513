import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DataType, ErrorCode } from '@zilliz/milvus2-sdk-node';
import { FakeClock } from '../src/common/clock.js';
import { startTestServer, until, type TestServer } from './helpers.js';

const fields = [
  { name: 'id', data_type: DataType.Int64, is_primary_key: true },
  { name: 'v', data_type: DataType.FloatVector, dim: 2 },
];
const rows = (from: number, n: number) => Array.from({ length: n }, (_, i) => ({ id: from + i, v: [1, (from + i) / 1000] }));

describe('collection TTL on a fake clock', () => {
  const clock = new FakeClock(Date.now());
  let t: TestServer;
  beforeAll(async () => {
    // No background compaction: the test checks that its own compaction is what removes the expired rows.
    t = await startTestServer({ autoCompaction: false }, { clock });
  });
  afterAll(async () => {
    await t?.close();
  });

  /**
   * The TSO follows a clock jump only once its persisted window was extended (common/tso.ts): poll until
   * it hands out timestamps of the new time, so the rows written next carry it.
   */
  const advance = async (ms: number) => {
    clock.advance(ms);
    await until(async () => {
      const d = await t.client.describeCollection({ collection_name: 'ttl' });
      return Number(BigInt((d as unknown as { request_time: string }).request_time) >> 18n) >= clock.nowMs();
    });
  };

  it('expired rows are invisible to query, search and count, and compaction removes them', async () => {
    const c = t.client;
    const create = await c.createCollection({ collection_name: 'ttl', fields, properties: { 'collection.ttl.seconds': 60 } });
    expect(create.error_code, create.reason).toBe(ErrorCode.SUCCESS);
    await c.createIndex({ collection_name: 'ttl', field_name: 'v', index_type: 'FLAT', metric_type: 'L2' });
    await c.loadCollectionSync({ collection_name: 'ttl' });
    await c.insert({ collection_name: 'ttl', data: rows(0, 10) });
    await c.flushSync({ collection_names: ['ttl'] });
    await c.insert({ collection_name: 'ttl', data: rows(10, 5) }); // growing
    expect((await c.count({ collection_name: 'ttl' })).data).toBe(15);
    await advance(30_000);
    await c.insert({ collection_name: 'ttl', data: rows(100, 3) });
    expect((await c.count({ collection_name: 'ttl' })).data).toBe(18);
    await advance(31_000); // the first 15 rows are now 61 s old, the last 3 are 31 s old
    expect((await c.count({ collection_name: 'ttl' })).data).toBe(3);
    const q = await c.query({ collection_name: 'ttl', filter: 'id >= 0', output_fields: ['id'] });
    expect(q.data.map((r) => Number(r['id'])).sort((a, b) => a - b)).toEqual([100, 101, 102]);
    const s = await c.search({ collection_name: 'ttl', data: [[1, 0]], limit: 10 });
    expect(s.results.map((r) => Number(r.id)).sort((a, b) => a - b)).toEqual([100, 101, 102]);
    // Compaction rewrites the expired rows away (persisted segment rows drop to the live ones).
    await c.flushSync({ collection_names: ['ttl'] });
    const before = (await c.getPersistentSegmentInfo({ collectionName: 'ttl' })).infos.reduce((n, i) => n + Number(i.num_rows), 0);
    expect(before).toBe(18);
    const compact = await c.compact({ collection_name: 'ttl' });
    await until(async () => String((await c.getCompactionState({ compactionID: compact.compactionID })).state) === 'Completed');
    const after = (await c.getPersistentSegmentInfo({ collectionName: 'ttl' })).infos.reduce((n, i) => n + Number(i.num_rows), 0);
    expect(after).toBe(3);
    expect((await c.count({ collection_name: 'ttl' })).data).toBe(3);
    // Altering the TTL applies at once: 0 turns it off, and the rows compaction kept are all still there.
    expect((await c.alterCollectionProperties({ collection_name: 'ttl', properties: { 'collection.ttl.seconds': 0 } })).error_code).toBe(ErrorCode.SUCCESS);
    clock.advance(3600_000);
    expect((await c.count({ collection_name: 'ttl' })).data).toBe(3);
  });

  it('a TTL of -1 or a non-number answers ParameterInvalid naming the value; nothing changes', async () => {
    const c = t.client;
    // The SDK's createCollection throws the refused status (it follows up with calls of its own otherwise).
    const neg = await c
      .createCollection({ collection_name: 'ttl_bad', fields, properties: { 'collection.ttl.seconds': -1 } })
      .catch((e: unknown) => e as { error_code: string; code: number; reason: string });
    expect(neg.error_code).not.toBe(ErrorCode.SUCCESS);
    expect(neg.code).toBe(1100);
    expect(neg.reason).toMatch(/collection.ttl.seconds -1 is invalid/);
    expect((await c.hasCollection({ collection_name: 'ttl_bad' })).value).toBe(false);
    await c.createCollection({ collection_name: 'ttl_ok', fields });
    const word = await c.alterCollectionProperties({ collection_name: 'ttl_ok', properties: { 'collection.ttl.seconds': 'soon' } });
    expect(word.code).toBe(1100);
    expect(word.reason).toMatch(/"soon" is invalid/);
    const neg2 = await c.alterCollectionProperties({ collection_name: 'ttl_ok', properties: { 'collection.ttl.seconds': -1 } });
    expect(neg2.reason).toMatch(/"-1" is invalid/);
    const d = await c.describeCollection({ collection_name: 'ttl_ok' });
    expect(d.properties.find((p) => p.key === 'collection.ttl.seconds')).toBeUndefined();
  });
});

describe('operations RPCs through the SDK', () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer();
  });
  afterAll(async () => {
    await t?.close();
  });

  it('segment info, flush all, metrics, replicas, load balance, refresh load, index statistics and properties, batch describe', async () => {
    const c = t.client;
    await c.createCollection({ collection_name: 'ops', fields });
    await c.createCollection({ collection_name: 'ops2', fields });
    await c.createIndex({ collection_name: 'ops', field_name: 'v', index_type: 'HNSW', metric_type: 'L2', params: { M: 8, efConstruction: 32 } });
    await c.insert({ collection_name: 'ops', data: rows(0, 20) });
    await c.flushSync({ collection_names: ['ops'] });
    await c.insert({ collection_name: 'ops', data: rows(20, 5) });
    const notLoaded = await c.getQuerySegmentInfo({ collectionName: 'ops' });
    expect(notLoaded.status.error_code).not.toBe(ErrorCode.SUCCESS);
    await c.loadCollectionSync({ collection_name: 'ops' });
    const qs = await c.getQuerySegmentInfo({ collectionName: 'ops' });
    expect(qs.status.error_code, qs.status.reason).toBe(ErrorCode.SUCCESS);
    expect(qs.infos.reduce((n, i) => n + Number(i.num_rows), 0)).toBe(25);
    expect(qs.infos.map((i) => i.state).sort()).toEqual(['Flushed', 'Growing']);
    expect(qs.infos.every((i) => i.collectionID === qs.infos[0]!.collectionID && i.nodeIds.length === 1)).toBe(true);
    const ps = await c.getPersistentSegmentInfo({ collectionName: 'ops' });
    expect(ps.infos.map((i) => [i.state, Number(i.num_rows)])).toEqual([['Flushed', 20]]);
    const fa = await c.flushAll({});
    expect(fa.status.error_code, fa.status.reason).toBe(ErrorCode.SUCCESS);
    const fs = await c.getFlushAllState({ flush_all_ts: fa.flush_all_ts });
    expect(fs.flushed).toBe(true);
    expect((await c.getPersistentSegmentInfo({ collectionName: 'ops' })).infos.reduce((n, i) => n + Number(i.num_rows), 0)).toBe(25);
    const m = await c.getMetric({ request: { metric_type: 'system_info' } });
    expect(m.status.error_code).toBe(ErrorCode.SUCCESS);
    expect(m.response.nodes_info.map((n: { infos: { type: string } }) => n.infos.type)).toContain('querynode');
    // The SDK parses the (empty) response of a refused request as JSON and throws; the status is the server's.
    await expect(c.getMetric({ request: { metric_type: 'nope' as never } })).rejects.toThrow();
    const d = await c.describeCollection({ collection_name: 'ops' });
    const reps = await c.getReplicas({ collectionID: d.collectionID });
    expect(reps.status.error_code, reps.status.reason).toBe(ErrorCode.SUCCESS);
    expect(reps.replicas).toHaveLength(1);
    expect(reps.replicas[0]!.shard_replicas).toHaveLength(d.shards_num);
    const lb = await c.loadBalance({ src_nodeID: 1 });
    expect(lb.error_code).toBe(ErrorCode.SUCCESS);
    expect(lb.reason).toMatch(/no-op/);
    const lbBad = await c.loadBalance({ src_nodeID: 7 });
    expect(lbBad.reason).toMatch(/query node 7 does not exist/);
    const rl = await c.refreshLoad({ collection_name: 'ops' });
    expect(rl.error_code, rl.reason).toBe(ErrorCode.SUCCESS);
    expect((await c.count({ collection_name: 'ops' })).data).toBe(25);
    const st = await c.getIndexStatistics({ collection_name: 'ops', index_name: 'v' });
    expect(st.status.error_code).toBe(ErrorCode.SUCCESS);
    expect(st.index_descriptions[0]?.index_name).toBe('v');
    const alter = await c.alterIndexProperties({ collection_name: 'ops', index_name: 'v', params: { 'mmap.enabled': true } });
    expect(alter.error_code, alter.reason).toBe(ErrorCode.SUCCESS);
    const di = await c.describeIndex({ collection_name: 'ops', index_name: 'v' });
    expect(di.index_descriptions[0]!.params.find((p) => p.key === 'mmap.enabled')?.value).toBe('true');
    const badAlter = await c.alterIndexProperties({ collection_name: 'ops', index_name: 'v', params: { M: 64 } });
    expect(badAlter.reason).toMatch(/index property M of index v cannot be altered/);
    // An RPC without a handler answers a Status naming it (docs/RPC-COVERAGE.md lists which).
    const rg = await c.listResourceGroups();
    expect(rg.status.code).toBe(10);
    expect(rg.status.reason).toBe('ListResourceGroups is not supported by Quiver');
    const bd = await c.batchDescribeCollections({ collection_names: ['ops', 'ghost', 'ops2'] });
    expect(bd.status.error_code).toBe(ErrorCode.SUCCESS);
    const entries = bd.responses as { collection_name: string; status: { error_code: string; reason: string } }[];
    expect(entries.map((r) => r.collection_name)).toEqual(['ops', 'ghost', 'ops2']);
    expect(entries.map((r) => r.status.error_code === ErrorCode.SUCCESS)).toEqual([true, false, true]);
    expect(entries[1]!.status.reason).toMatch(/ghost/);
  });
});
