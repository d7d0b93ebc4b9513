import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DataType, ErrorCode, type MilvusClient, type RowData } from '@zilliz/milvus2-sdk-node';
import { SeededRandom } from '../src/testing/random.js';
import { startTestServer, waitRestore, type TestServer } from './helpers.js';

const N = 900;
const BDIM = 64;
const COLL = 'typed_files';

/** Clustered bit vectors (as number arrays of bytes) and skewed sparse rows, deterministic per id. */
function rowOf(i: number): RowData {
  const r = new SeededRandom(1000 + i);
  const centre = new SeededRandom(7 + (i % 6));
  const bv = Array.from({ length: BDIM / 8 }, () => {
    let byte = Math.floor(centre.next() * 256);
    for (let k = 0; k < 8; k++) if (r.next() < 0.1) byte ^= 1 << k;
    return byte;
  });
  const sp: Record<number, number> = {};
  const nnz = 1 + Math.floor(r.next() * 10);
  for (let k = 0; k < nnz; k++) sp[Math.floor(300 * r.next() ** 2)] = 0.1 + r.next();
  return { id: i, bv, sp };
}

type Hit = { id: string; score: number };

async function search(c: MilvusClient, coll: string, field: 'bv' | 'sp', q: RowData, params: Record<string, number> = {}): Promise<Hit[]> {
  const r = await c.search({
    collection_name: coll,
    anns_field: field,
    data: [q[field] as never],
    limit: 10,
    metric_type: field === 'bv' ? 'HAMMING' : 'IP',
    params,
  });
  expect(r.status.error_code, r.status.reason).toBe(ErrorCode.SUCCESS);
  return r.results.map((h) => ({ id: String(h.id), score: h.score }));
}

/** What segments hold an index file of `field`, with the build ids. */
function files(t: TestServer, coll: string, field: string): { buildId: number; files: readonly string[] }[] {
  const engine = t.server.engine;
  const c = engine.catalog.resolveCollection('default', coll);
  const fieldId = c.schema.fields.find((f) => f.name === field)!.fieldId;
  const indexId = engine.catalog.indexes(c.id).find((i) => i.fieldId === fieldId)!.id;
  return engine.catalog
    .segments(c.id)
    .filter((s) => s.state === 'Flushed')
    .flatMap((s) => s.indexes.filter((i) => i.indexId === indexId))
    .sort((a, b) => a.buildId - b.buildId);
}

/**
 * BIN_IVF_FLAT and SPARSE_WAND through the SDK: their structures are index files of each sealed segment,
 * built once by the index pass, loaded after a restart without a rebuild (same build ids, the loaded
 * segment holds them) and reused by a snapshot restore; searches answer the same throughout.
 */
describe('binary and sparse index files', () => {
  let t: TestServer;
  const queries = [rowOf(5000), rowOf(5001), rowOf(17)];

  beforeAll(async () => {
    t = await startTestServer({ autoCompaction: false });
    const c = t.client;
    const r = await c.createCollection({
      collection_name: COLL,
      fields: [
        { name: 'id', data_type: DataType.Int64, is_primary_key: true },
        { name: 'bv', data_type: DataType.BinaryVector, dim: BDIM },
        { name: 'sp', data_type: DataType.SparseFloatVector },
      ],
    });
    expect(r.error_code, r.reason).toBe(ErrorCode.SUCCESS);
    for (const [from, to] of [
      [0, N / 2],
      [N / 2, N],
    ] as const) {
      const ins = await c.insert({ collection_name: COLL, data: Array.from({ length: to - from }, (_, k) => rowOf(from + k)) });
      expect(ins.status.error_code, ins.status.reason).toBe(ErrorCode.SUCCESS);
      await c.flushSync({ collection_names: [COLL] });
    }
    for (const [field, index_type, metric_type, params] of [
      ['bv', 'BIN_IVF_FLAT', 'HAMMING', { nlist: 8 }],
      ['sp', 'SPARSE_WAND', 'IP', {}],
    ] as const) {
      const ir = await c.createIndex({ collection_name: COLL, field_name: field, index_type, metric_type, params });
      expect(ir.error_code, ir.reason).toBe(ErrorCode.SUCCESS);
    }
    await t.server.engine.waitForIndexes(t.server.engine.catalog.resolveCollection('default', COLL).id);
    await c.loadCollectionSync({ collection_name: COLL });
  });
  afterAll(async () => {
    await t?.close();
  });

  it('every sealed segment has a file per index; searches with nprobe = nlist and drop 0 are exact', async () => {
    expect(files(t, COLL, 'bv').map((f) => f.files.length)).toEqual([1, 1]);
    expect(files(t, COLL, 'sp').map((f) => f.files.length)).toEqual([1, 1]);
    const c = t.client;
    const p = await c.getIndexBuildProgress({ collection_name: COLL, field_name: 'sp' });
    expect([p.indexed_rows, p.total_rows].map(Number)).toEqual([N, N]);
    const engine = t.server.engine;
    const coll = engine.catalog.resolveCollection('default', COLL);
    for (const info of engine.queryNode.segmentInfos(coll.id).filter((i) => i.state === 'Flushed')) {
      expect(info.indexed.map((x) => x.fieldName).sort()).toEqual(['bv', 'sp']);
    }
    // Exact reference: a collection with the same rows and no index files (BIN_FLAT scans, sparse without an index file).
    const plain = 'typed_plain';
    await c.createCollection({
      collection_name: plain,
      fields: [
        { name: 'id', data_type: DataType.Int64, is_primary_key: true },
        { name: 'bv', data_type: DataType.BinaryVector, dim: BDIM },
        { name: 'sp', data_type: DataType.SparseFloatVector },
      ],
    });
    await c.insert({ collection_name: plain, data: Array.from({ length: N }, (_, k) => rowOf(k)) });
    await c.createIndex({ collection_name: plain, field_name: 'bv', index_type: 'BIN_FLAT', metric_type: 'HAMMING' });
    await c.loadCollectionSync({ collection_name: plain });
    for (const q of queries) {
      expect(await search(c, COLL, 'sp', q)).toEqual(await search(c, plain, 'sp', q));
      const ivf = await search(c, COLL, 'bv', q, { nprobe: 8 });
      const flat = await search(c, plain, 'bv', q);
      // Ties in Hamming distance make ids ambiguous: the distances must match.
      expect(ivf.map((h) => h.score)).toEqual(flat.map((h) => h.score));
    }
  });

  it('a restart loads the files (same build ids, nothing rebuilt) and searches answer the same', async () => {
    const before = await Promise.all(queries.flatMap((q) => [search(t.client, COLL, 'bv', q, { nprobe: 3 }), search(t.client, COLL, 'sp', q)]));
    const builds = [files(t, COLL, 'bv'), files(t, COLL, 'sp')];
    t = await t.restart();
    const c = t.client;
    await c.loadCollectionSync({ collection_name: COLL });
    expect([files(t, COLL, 'bv'), files(t, COLL, 'sp')]).toEqual(builds);
    const engine = t.server.engine;
    const coll = engine.catalog.resolveCollection('default', COLL);
    for (const info of engine.queryNode.segmentInfos(coll.id).filter((i) => i.state === 'Flushed')) {
      expect(info.indexed.map((x) => x.fieldName).sort()).toEqual(['bv', 'sp']);
    }
    const after = await Promise.all(queries.flatMap((q) => [search(c, COLL, 'bv', q, { nprobe: 3 }), search(c, COLL, 'sp', q)]));
    expect(after).toEqual(before);
  });

  it('a snapshot restore reuses the files (same build ids) and searches the same', async () => {
    const c = t.client;
    expect((await c.createSnapshot({ collection_name: COLL, snapshot_name: 'snap' })).error_code).toBe(ErrorCode.SUCCESS);
    const r = await c.restoreSnapshot({ snapshot_name: 'snap', source_collection_name: COLL, target_collection_name: 'typed_restored' });
    expect(r.status.error_code, r.status.reason).toBe(ErrorCode.SUCCESS);
    expect((await waitRestore(c, r.job_id)).state).toBe('RestoreSnapshotCompleted');
    expect(files(t, 'typed_restored', 'bv').map((f) => f.buildId)).toEqual(files(t, COLL, 'bv').map((f) => f.buildId));
    expect(files(t, 'typed_restored', 'sp').map((f) => f.buildId)).toEqual(files(t, COLL, 'sp').map((f) => f.buildId));
    await c.loadCollectionSync({ collection_name: 'typed_restored' });
    for (const q of queries) {
      expect(await search(c, 'typed_restored', 'bv', q, { nprobe: 2 })).toEqual(await search(c, COLL, 'bv', q, { nprobe: 2 }));
      expect(await search(c, 'typed_restored', 'sp', q, { drop_ratio_search: 0.2 })).toEqual(await search(c, COLL, 'sp', q, { drop_ratio_search: 0.2 }));
    }
  });

  it('refuses bad parameters with the valid range', async () => {
    const c = t.client;
    const nlist = await c.createIndex({
      collection_name: 'typed_plain',
      field_name: 'bv',
      index_name: 'x',
      index_type: 'BIN_IVF_FLAT',
      metric_type: 'HAMMING',
      params: { nlist: 0 },
    });
    expect(nlist.reason).toMatch(/nlist 0 is invalid: must be an integer in \[1, 65536\]/);
    const drop = await c.createIndex({
      collection_name: 'typed_plain',
      field_name: 'sp',
      index_type: 'SPARSE_WAND',
      metric_type: 'IP',
      params: { drop_ratio_build: 1 },
    });
    expect(drop.reason).toMatch(/drop_ratio_build 1 is invalid: must be in \[0, 1\)/);
    const r = await c.search({
      collection_name: COLL,
      anns_field: 'sp',
      data: [queries[0]!['sp'] as never],
      limit: 3,
      metric_type: 'IP',
      params: { drop_ratio_search: 1 },
    });
    expect(r.status.reason).toMatch(/drop_ratio_search 1 is invalid: must be in \[0, 1\)/);
    const p = await c.search({
      collection_name: COLL,
      anns_field: 'bv',
      data: [queries[0]!['bv'] as never],
      limit: 3,
      metric_type: 'HAMMING',
      params: { nprobe: 0 },
    });
    expect(p.status.reason).toMatch(/nprobe 0 is invalid/);
  });
});
