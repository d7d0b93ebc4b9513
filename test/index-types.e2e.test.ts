import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DataType, ErrorCode } from '@zilliz/milvus2-sdk-node';
import { startTestServer, vectors, waitRestore, type TestServer } from './helpers.js';

const DIM = 16;
const N = 600;

/**
 * Every float index type through the SDK: createIndex with Milvus's names, search with its search params,
 * and a snapshot restore that brings the index files along (same build ids: nothing is rebuilt).
 */
describe.each([
  { type: 'HNSW_SQ', params: { M: 16, efConstruction: 64, sq_type: 'SQ8', refine: 'true', refine_type: 'FP32' }, search: { ef: 64, refine_k: 2 } },
  { type: 'HNSW_SQ', params: { M: 16, efConstruction: 64, sq_type: 'FP16' }, search: { ef: 64 } },
  { type: 'IVF_FLAT', params: { nlist: 16 }, search: { nprobe: 16 } },
  { type: 'IVF_SQ8', params: { nlist: 16 }, search: { nprobe: 16 } },
  { type: 'IVF_PQ', params: { nlist: 8, m: 8, nbits: 8 }, search: { nprobe: 8 } },
  { type: 'HNSW_PQ', params: { M: 16, efConstruction: 64, m: 8, nbits: 8, refine: 'true', refine_type: 'FP32' }, search: { ef: 64, refine_k: 4 } },
  { type: 'HNSW_PRQ', params: { M: 16, efConstruction: 64, m: 4, nbits: 6, nrq: 2 }, search: { ef: 64 } },
])('$type through the SDK', ({ type, params, search }) => {
  let t: TestServer;
  const vs = vectors(N, DIM, 5);
  const name = `c_${type.toLowerCase()}_${String(params['sq_type'] ?? 'x').toLowerCase()}`;
  beforeAll(async () => {
    t = await startTestServer({ autoCompaction: false });
    const c = t.client;
    await c.createCollection({
      collection_name: name,
      fields: [
        { name: 'id', data_type: DataType.Int64, is_primary_key: true },
        { name: 'v', data_type: DataType.FloatVector, dim: DIM },
      ],
    });
    await c.insert({ collection_name: name, data: vs.map((v, i) => ({ id: i, v })) });
    await c.flushSync({ collection_names: [name] });
    const r = await c.createIndex({ collection_name: name, field_name: 'v', index_type: type, metric_type: 'L2', params });
    expect(r.error_code).toBe(ErrorCode.SUCCESS);
    await t.server.engine.waitForIndexes(t.server.engine.catalog.resolveCollection('default', name).id);
  });
  afterAll(async () => {
    await t?.close();
  });

  it('describes, builds and searches the index; a row finds itself first', async () => {
    const c = t.client;
    const di = await c.describeIndex({ collection_name: name, field_name: 'v' });
    expect(di.index_descriptions[0]!.params.find((p) => p.key === 'index_type')?.value).toBe(type);
    expect(Number(di.index_descriptions[0]!.indexed_rows)).toBe(N);
    const files = t.server.engine.catalog
      .segments(t.server.engine.catalog.resolveCollection('default', name).id)
      .flatMap((s) => s.indexes.flatMap((i) => i.files));
    expect(files.length).toBeGreaterThan(0);
    expect(files.every((f) => f.endsWith(`${type.toLowerCase()}.qvx`))).toBe(true);
    await c.loadCollectionSync({ collection_name: name });
    let selfFirst = 0;
    for (let i = 0; i < 20; i++) {
      const r = await c.search({ collection_name: name, data: [vs[i * 7]!], limit: 5, params: search });
      expect(r.status.error_code).toBe(ErrorCode.SUCCESS);
      expect(r.results.length).toBe(5);
      if (Number(r.results[0]!.id) === i * 7) selfFirst++;
    }
    // PQ codes are lossy: a row need not be its own nearest code, but most are.
    expect(selfFirst).toBeGreaterThanOrEqual(type === 'IVF_PQ' ? 14 : 20);
    const filtered = await c.search({ collection_name: name, data: [vs[3]!], limit: 5, filter: 'id >= 300', params: search });
    expect(filtered.results.every((h) => Number(h.id) >= 300)).toBe(true);
    expect(filtered.results.length).toBe(5);
  });

  it('a restore reuses the index files (same build ids) and searches the same', async () => {
    const c = t.client;
    expect((await c.createSnapshot({ collection_name: name, snapshot_name: 's1' })).error_code).toBe(ErrorCode.SUCCESS);
    const r = await c.restoreSnapshot({ snapshot_name: 's1', source_collection_name: name, target_collection_name: `${name}_r` });
    expect(r.status.error_code).toBe(ErrorCode.SUCCESS);
    expect((await waitRestore(c, r.job_id)).state).toBe('RestoreSnapshotCompleted');
    const engine = t.server.engine;
    const builds = (coll: string): number[] =>
      engine.catalog
        .segments(engine.catalog.resolveCollection('default', coll).id)
        .flatMap((s) => s.indexes.map((i) => i.buildId))
        .sort((a, b) => a - b);
    expect(builds(`${name}_r`)).toEqual(builds(name));
    await c.loadCollectionSync({ collection_name: `${name}_r` });
    const a = await c.search({ collection_name: name, data: [vs[11]!], limit: 5, params: search });
    const b = await c.search({ collection_name: `${name}_r`, data: [vs[11]!], limit: 5, params: search });
    expect(b.results.map((h) => h.id)).toEqual(a.results.map((h) => h.id));
  });
});

describe('index parameters through the SDK', () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer({ autoCompaction: false });
    await t.client.createCollection({
      collection_name: 'p',
      fields: [
        { name: 'id', data_type: DataType.Int64, is_primary_key: true },
        { name: 'v', data_type: DataType.FloatVector, dim: DIM },
      ],
    });
  });
  afterAll(async () => {
    await t?.close();
  });

  it('answers wrong parameters with the valid range', async () => {
    const bad = async (index_type: string, params: Record<string, string | number>) =>
      (await t.client.createIndex({ collection_name: 'p', field_name: 'v', index_type, metric_type: 'L2', params })).reason;
    expect(await bad('IVF_FLAT', { nlist: 0 })).toMatch(/nlist must be an integer in \[1, 65536\]/);
    expect(await bad('IVF_PQ', { nlist: 8, m: 5 })).toMatch(/m 5 must divide the dimension 16/);
    expect(await bad('HNSW_SQ', { sq_type: 'SQ4' })).toMatch(/sq_type must be one of SQ8, FP16, BF16/);
    expect(await bad('HNSW_PQ', { m: 8, nbits: 17 })).toMatch(/nbits must be an integer in \[1, 16\]/);
    expect(await bad('HNSW_PQ', { m: 3 })).toMatch(/HNSW_PQ m 3 must divide the dimension 16; valid: 1, 2, 4, 8, 16/);
    expect(await bad('HNSW_PRQ', { m: 4, nrq: 20 })).toMatch(/nrq must be an integer in \[1, 16\]/);
  });
});
