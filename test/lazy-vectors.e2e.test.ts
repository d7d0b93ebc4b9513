import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DataType, ErrorCode } from '@zilliz/milvus2-sdk-node';
import { startTestServer, vectors, type TestServer } from './helpers.js';

const DIM = 32;
// Above the 1,024 rows below which a segment is scanned exactly: the graph and the lists are walked.
const N = 3000;

function l2(a: readonly number[], b: readonly number[]): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += (Math.fround(a[i]!) - Math.fround(b[i]!)) ** 2;
  return s;
}

function exactTop(vs: readonly number[][], q: readonly number[], k: number, keep: (i: number) => boolean = () => true): number[] {
  return vs
    .map((v, i) => [i, l2(v, q)] as const)
    .filter(([i]) => keep(i))
    .sort((a, b) => a[1] - b[1] || a[0] - b[0])
    .slice(0, k)
    .map(([i]) => i);
}

/**
 * With a quantized index loaded the query node keeps no float copy of the vector column: refine, output
 * fields and the exact path of a selective filter read the rows they need from the binlog. The answers
 * must be those of the resident column.
 */
describe.each([
  { type: 'HNSW_SQ', params: { M: 16, efConstruction: 100, sq_type: 'SQ8', refine: 'true', refine_type: 'FP32' }, search: { ef: 64, refine_k: 4 } },
  { type: 'IVF_SQ8', params: { nlist: 16 }, search: { nprobe: 16 } },
  { type: 'HNSW_PQ', params: { M: 16, efConstruction: 100, m: 16, nbits: 8, refine: 'true' }, search: { ef: 64, refine_k: 4 } },
])('$type serves its vector column from the binlog', ({ type, params, search }) => {
  let t: TestServer;
  const vs = vectors(N, DIM, 11);
  const name = `lazy_${type.toLowerCase()}`;
  const column = (): { lazy?: unknown; data: Float32Array } => {
    const engine = t.server.engine;
    const rt = engine.data.runtime(engine.catalog.resolveCollection('default', name).id)!;
    const seg = [...rt.segments.values()].find((s) => s.phase === 'flushed')!;
    return seg.chunks[0]!.columns.get('v') as unknown as { lazy?: unknown; data: Float32Array };
  };
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
    expect((await c.createIndex({ collection_name: name, field_name: 'v', index_type: type, metric_type: 'L2', params })).error_code).toBe(
      ErrorCode.SUCCESS,
    );
    await t.server.engine.waitForIndexes(t.server.engine.catalog.resolveCollection('default', name).id);
    await c.loadCollectionSync({ collection_name: name });
  });
  afterAll(async () => {
    await t?.close();
  });

  it('holds no resident float rows once loaded', () => {
    const col = column();
    expect(col.lazy).toBeDefined();
    expect(col.data.length).toBe(0);
  });

  it('searches at recall@10 >= 0.95 and returns the stored vectors as output fields', async () => {
    const c = t.client;
    let found = 0;
    const nq = 30;
    for (let qi = 0; qi < nq; qi++) {
      const q = vs[(qi * 97) % N]!.map((x, j) => x + ((j % 3) - 1) * 0.01);
      const r = await c.search({ collection_name: name, data: [q], limit: 10, params: search, output_fields: ['v'] });
      expect(r.status.error_code, r.status.reason).toBe(ErrorCode.SUCCESS);
      const truth = new Set(exactTop(vs, q, 10));
      for (const h of r.results) {
        if (truth.has(Number(h.id))) found++;
        expect(h['v']).toEqual(vs[Number(h.id)]!.map((x) => Math.fround(x)));
      }
      if (type !== 'IVF_SQ8') {
        // Refine scores are exact distances, computed from rows read back from the binlog.
        for (const h of r.results) expect(h.score).toBeCloseTo(l2(vs[Number(h.id)]!, q), 3);
      }
    }
    // IVF_SQ8 has no refine: its 8-bit codes alone cost a few points of recall on this tight clustered set.
    expect(found / (nq * 10)).toBeGreaterThanOrEqual(type === 'IVF_SQ8' ? 0.9 : 0.95);
  });

  it('answers a selective filter exactly (the exact path reads the allowed rows)', async () => {
    const q = vs[1234]!;
    const r = await t.client.search({ collection_name: name, data: [q], limit: 10, params: search, filter: 'id < 60' });
    expect(r.status.error_code, r.status.reason).toBe(ErrorCode.SUCCESS);
    expect(r.results.map((h) => Number(h.id))).toEqual(exactTop(vs, q, 10, (i) => i < 60));
  });

  it('query returns stored vectors; release and reload keep it lazy', async () => {
    const c = t.client;
    const got = await c.query({ collection_name: name, filter: 'id in [0, 7, 2999]', output_fields: ['v'] });
    expect(got.status.error_code, got.status.reason).toBe(ErrorCode.SUCCESS);
    const byId = new Map(got.data.map((row) => [Number(row['id']), row['v'] as number[]]));
    for (const id of [0, 7, 2999]) expect(byId.get(id)).toEqual(vs[id]!.map((x) => Math.fround(x)));
    await c.releaseCollection({ collection_name: name });
    await c.loadCollectionSync({ collection_name: name });
    expect(column().lazy).toBeDefined();
    const r = await c.search({ collection_name: name, data: [vs[42]!], limit: 1, params: search });
    expect(Number(r.results[0]!.id)).toBe(42);
  });
});

describe('an index built while the collection is loaded', () => {
  let t: TestServer;
  afterAll(async () => {
    await t?.close();
  });

  it('swaps the resident column for the binlog reader and keeps answering from it', async () => {
    t = await startTestServer({ autoCompaction: false });
    const c = t.client;
    const vs = vectors(N, DIM, 12);
    await c.createCollection({
      collection_name: 'late',
      fields: [
        { name: 'id', data_type: DataType.Int64, is_primary_key: true },
        { name: 'v', data_type: DataType.FloatVector, dim: DIM },
      ],
    });
    await c.insert({ collection_name: 'late', data: vs.map((v, i) => ({ id: i, v })) });
    await c.flushSync({ collection_names: ['late'] });
    await c.createIndex({ collection_name: 'late', field_name: 'v', index_type: 'FLAT', metric_type: 'L2' });
    await c.loadCollectionSync({ collection_name: 'late' });
    const engine = t.server.engine;
    const id = engine.catalog.resolveCollection('default', 'late').id;
    const col = (): { lazy?: unknown } => [...engine.data.runtime(id)!.segments.values()][0]!.chunks[0]!.columns.get('v') as { lazy?: unknown };
    expect(col().lazy).toBeUndefined();
    await c.releaseCollection({ collection_name: 'late' });
    await c.dropIndex({ collection_name: 'late', field_name: 'v' });
    await c.loadCollectionSync({ collection_name: 'late' });
    const r = await c.createIndex({
      collection_name: 'late',
      field_name: 'v',
      index_type: 'HNSW_SQ',
      metric_type: 'L2',
      params: { M: 16, efConstruction: 100, refine: 'true' },
    });
    expect(r.error_code, r.reason).toBe(ErrorCode.SUCCESS);
    await engine.waitForIndexes(id);
    expect(col().lazy).toBeDefined();
    const q = vs[77]!;
    const s = await c.search({ collection_name: 'late', data: [q], limit: 5, params: { ef: 64, refine_k: 4 }, output_fields: ['v'] });
    // Refine is attached to the reader: scores are exact distances of the rows it read back.
    expect(Number(s.results[0]!.id)).toBe(77);
    for (const h of s.results) expect(h.score).toBeCloseTo(l2(vs[Number(h.id)]!, q), 3);
    expect(s.results[0]!['v']).toEqual(q.map((x) => Math.fround(x)));
  });
});
