import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  DataType,
  ErrorCode,
  type RowData,
  f32ArrayToBf16Bytes,
  f32ArrayToF16Bytes,
  MilvusClient,
  RRFRanker,
  WeightedRanker,
} from '@zilliz/milvus2-sdk-node';
import { seededRandom } from '../src/testing/index.js';
import { killableServer } from './process.js';
import { until, waitRestore } from './helpers.js';
import { rank, type Metric, type Sparse } from './vector-reference.js';

/**
 * Every vector type through the official SDK: insert (every input form), upsert, delete, flush, kill -9
 * and WAL replay, compaction, query output, search per metric against a brute-force reference, search by
 * ids, grouping, hybrid search (RRF, weighted), and a snapshot restored and compared row by row.
 */

const COLL = 'allvec';

interface Row {
  id: number;
  grp: number;
  fv: number[];
  bv: number[];
  h16: number[];
  b16: number[];
  i8: number[];
  sp: Sparse;
  nbv: number[] | null;
}

const rnd = seededRandom(11);
const quarter = (): number => Math.round((rnd() * 2 - 1) * 16) / 4; // exact in float16 and bfloat16
const byte = (): number => Math.floor(rnd() * 256);

function makeRow(id: number, salt = 0): Row {
  const sp: Sparse = {};
  const nnz = 3 + Math.floor(rnd() * 4);
  while (Object.keys(sp).length < nnz) sp[String(Math.floor(rnd() * 40))] = Math.max(0.25, Math.abs(quarter())) + salt;
  return {
    id,
    grp: id % 7,
    fv: Array.from({ length: 8 }, quarter),
    bv: [byte(), byte()],
    h16: Array.from({ length: 8 }, quarter),
    b16: Array.from({ length: 8 }, quarter),
    i8: Array.from({ length: 8 }, () => Math.floor(rnd() * 201) - 100),
    sp,
    nbv: id % 3 === 0 ? null : [byte()],
  };
}

/** The SDK row, using a different accepted input form per row for the 16-bit floats and sparse vectors. */
function toInsert(r: Row): RowData {
  const keys = Object.keys(r.sp)
    .map(Number)
    .sort((a, b) => a - b);
  let sp: unknown = r.sp;
  if (r.id % 4 === 1) sp = keys.map((k) => ({ index: k, value: r.sp[String(k)]! }));
  if (r.id % 4 === 2) sp = { indices: keys, values: keys.map((k) => r.sp[String(k)]!) };
  if (r.id % 4 === 3) {
    const arr: number[] = [];
    for (const k of keys) arr[k] = r.sp[String(k)]!;
    sp = arr;
  }
  return {
    ...(r as unknown as RowData),
    h16: r.id % 2 === 0 ? r.h16 : f32ArrayToF16Bytes(r.h16),
    b16: r.id % 2 === 0 ? r.b16 : f32ArrayToBf16Bytes(r.b16),
    sp: sp as RowData[string],
  };
}

const FIELDS: { name: keyof Row; metric: Metric; index: string; params?: Record<string, unknown> }[] = [
  { name: 'fv', metric: 'L2', index: 'FLAT' },
  { name: 'bv', metric: 'HAMMING', index: 'BIN_IVF_FLAT', params: { nlist: 16 } },
  { name: 'h16', metric: 'COSINE', index: 'HNSW', params: { M: 8, efConstruction: 32 } },
  { name: 'b16', metric: 'IP', index: 'FLAT' },
  { name: 'i8', metric: 'L2', index: 'HNSW', params: { M: 8, efConstruction: 32 } },
  { name: 'sp', metric: 'IP', index: 'SPARSE_WAND' },
  { name: 'nbv', metric: 'JACCARD', index: 'BIN_FLAT' },
];

function close(a: number, b: number): boolean {
  return Math.abs(a - b) <= 1e-3 * Math.max(1, Math.abs(b));
}

/** Hits must be the reference's top k: same scores in order, and each id scored as the reference scores it. */
function expectHits(hits: { id: string; score: number }[], ref: { id: number; score: number }[], k: number, what: string): void {
  const want = ref.slice(0, k);
  expect(hits.length, what).toBe(want.length);
  const refScore = new Map(ref.map((h) => [h.id, h.score]));
  hits.forEach((h, i) => {
    expect(close(h.score, want[i]!.score), `${what}: score ${i} ${h.score} vs ${want[i]!.score}`).toBe(true);
    expect(close(refScore.get(Number(h.id))!, h.score), `${what}: id ${h.id}`).toBe(true);
  });
}

function sparseEqual(a: Record<string, number>, b: Sparse): boolean {
  const ka = Object.keys(a).sort();
  const kb = Object.keys(b).sort();
  return ka.join() === kb.join() && ka.every((k) => close(a[k]!, b[k]!));
}

async function checkRows(c: MilvusClient, coll: string, model: Map<number, Row>): Promise<void> {
  const q = await c.query({ collection_name: coll, filter: 'id >= 0', output_fields: ['*'] });
  expect(q.status.error_code).toBe(ErrorCode.SUCCESS);
  expect(q.data.length).toBe(model.size);
  for (const got of q.data) {
    const want = model.get(Number(got['id']))!;
    expect(want, `row ${got['id']}`).toBeDefined();
    expect(Number(got['grp'])).toBe(want.grp);
    expect(got['fv']).toEqual(want.fv);
    expect(got['bv']).toEqual(want.bv);
    expect(Array.from(got['h16'] as number[])).toEqual(want.h16);
    expect(Array.from(got['b16'] as number[])).toEqual(want.b16);
    expect(Array.from(got['i8'] as number[])).toEqual(want.i8);
    expect(sparseEqual(got['sp'] as Record<string, number>, want.sp), `sp of ${want.id}`).toBe(true);
    expect(got['nbv']).toEqual(want.nbv);
  }
}

async function checkSearches(c: MilvusClient, coll: string, model: Map<number, Row>): Promise<void> {
  const rows = [...model.values()];
  for (const f of FIELDS) {
    const queries = [makeRow(10_000)[f.name], makeRow(10_001)[f.name]] as (number[] | Sparse)[];
    // ef above the segment sizes: the HNSW walk visits everything, so its top-k is the exact one; nprobe =
    // nlist probes every BIN_IVF_FLAT list, likewise exact.
    const params = f.index === 'HNSW' ? { ef: 512 } : f.index === 'BIN_IVF_FLAT' ? { nprobe: 16 } : {};
    const res = await c.search({ collection_name: coll, anns_field: f.name, data: queries, limit: 6, params, output_fields: ['id'] });
    expect(res.status.error_code, `${f.name}: ${res.status.reason}`).toBe(ErrorCode.SUCCESS);
    const results = res.results as unknown as { id: string; score: number }[][];
    queries.forEach((q, i) => {
      const ref = rank(rows, (r) => r[f.name] as number[] | Sparse | null, f.metric, q);
      expectHits(results[i]!, ref, 6, `${f.name} query ${i}`);
    });
  }
}

describe('every vector type through the SDK', () => {
  const server = killableServer('quiver-vectypes-');

  it('stores, searches, survives kill -9 and compaction, groups, fuses, and snapshots every vector type', { timeout: 120_000 }, async () => {
    let c = (await server.start()).client;
    const created = await c.createCollection({
      collection_name: COLL,
      fields: [
        { name: 'id', data_type: DataType.Int64, is_primary_key: true, autoID: false },
        { name: 'grp', data_type: DataType.Int64 },
        { name: 'fv', data_type: DataType.FloatVector, dim: 8 },
        { name: 'bv', data_type: DataType.BinaryVector, dim: 16 },
        { name: 'h16', data_type: DataType.Float16Vector, dim: 8 },
        { name: 'b16', data_type: DataType.BFloat16Vector, dim: 8 },
        { name: 'i8', data_type: DataType.Int8Vector, dim: 8 },
        { name: 'sp', data_type: DataType.SparseFloatVector },
        { name: 'nbv', data_type: DataType.BinaryVector, dim: 8, nullable: true },
      ],
    });
    expect(created.error_code, created.reason).toBe(ErrorCode.SUCCESS);
    const d = await c.describeCollection({ collection_name: COLL });
    expect(d.schema.fields.map((f) => f.data_type)).toEqual([
      'Int64',
      'Int64',
      'FloatVector',
      'BinaryVector',
      'Float16Vector',
      'BFloat16Vector',
      'Int8Vector',
      'SparseFloatVector',
      'BinaryVector',
    ]);

    const model = new Map<number, Row>();
    const batch1 = Array.from({ length: 160 }, (_, i) => makeRow(i));
    const batch2 = Array.from({ length: 80 }, (_, i) => makeRow(160 + i));
    const ins1 = await c.insert({ collection_name: COLL, data: batch1.map(toInsert) });
    expect(ins1.status.error_code, ins1.status.reason).toBe(ErrorCode.SUCCESS);
    await c.flushSync({ collection_names: [COLL] });
    const ins2 = await c.insert({ collection_name: COLL, data: batch2.map(toInsert) });
    expect(Number(ins2.insert_cnt)).toBe(80);
    for (const r of [...batch1, ...batch2]) model.set(r.id, r);
    const ups = Array.from({ length: 5 }, (_, i) => makeRow(5 + i, 1));
    expect((await c.upsert({ collection_name: COLL, data: ups.map(toInsert) })).status.error_code).toBe(ErrorCode.SUCCESS);
    for (const r of ups) model.set(r.id, r);
    expect((await c.delete({ collection_name: COLL, filter: 'id in [10, 11, 12, 170, 171]' })).status.error_code).toBe(ErrorCode.SUCCESS);
    for (const id of [10, 11, 12, 170, 171]) model.delete(id);

    for (const f of FIELDS) {
      const r = await c.createIndex({ collection_name: COLL, field_name: f.name, index_type: f.index, metric_type: f.metric, params: f.params ?? {} });
      expect(r.error_code, `${f.name}: ${r.reason}`).toBe(ErrorCode.SUCCESS);
    }
    const di = await c.describeIndex({ collection_name: COLL, field_name: 'bv' });
    expect(di.index_descriptions[0]!.params.find((p) => p.key === 'index_type')?.value).toBe('BIN_IVF_FLAT');
    // Float16 and Int8 HNSW indexes are real index files over the widened vectors (FLAT, binary and sparse
    // indexes have none): one per flushed segment and field.
    const hnswFiles = async (): Promise<number> =>
      (await readdir(join(server.dataDir(), 'objects'), { recursive: true }).catch(() => [] as string[])).filter((f) =>
        /(^|\/)hnsw(\.bin|\.qvx)$/.test(String(f)),
      ).length;
    await until(async () => (await hnswFiles()) === 2);
    await c.loadCollection({ collection_name: COLL });
    await checkRows(c, COLL, model);
    await checkSearches(c, COLL, model);

    // kill -9: the growing rows, the upsert and the deletes come back from the WAL.
    c = (await server.restart()).client;
    await c.loadCollection({ collection_name: COLL });
    await checkRows(c, COLL, model);
    await checkSearches(c, COLL, model);

    // Compaction merges segments (and drops deleted rows); the results do not change.
    await c.flushSync({ collection_names: [COLL] });
    const comp = await c.compact({ collection_name: COLL });
    expect(comp.status.error_code).toBe(ErrorCode.SUCCESS);
    await until(async () => String((await c.getCompactionState({ compactionID: comp.compactionID })).state) === 'Completed');
    await checkRows(c, COLL, model);
    await checkSearches(c, COLL, model);

    const rows = [...model.values()];
    // Search by primary keys: each id's own vector is the query.
    for (const f of FIELDS.filter((x) => x.name !== 'nbv')) {
      const res = await c.search({ collection_name: COLL, anns_field: f.name, ids: [1, 2], limit: 4, output_fields: ['id'] });
      expect(res.status.error_code, `${f.name}: ${res.status.reason}`).toBe(ErrorCode.SUCCESS);
      [1, 2].forEach((id, i) => {
        const ref = rank(rows, (r) => r[f.name] as number[] | Sparse, f.metric, model.get(id)![f.name] as number[] | Sparse);
        expectHits((res.results as unknown as { id: string; score: number }[][])[i]!, ref, 4, `ids ${f.name}`);
      });
    }

    // Grouping: the best 3 groups of grp, 2 hits each, group after group.
    const q = makeRow(20_000).fv;
    const grouped = await c.search({
      collection_name: COLL,
      anns_field: 'fv',
      data: q,
      limit: 3,
      group_by_field: 'grp',
      group_size: 2,
      output_fields: ['id', 'grp'],
    });
    expect(grouped.status.error_code, grouped.status.reason).toBe(ErrorCode.SUCCESS);
    const ref = rank(rows, (r) => r.fv, 'L2', q);
    const groups = new Map<number, { id: number; score: number }[]>();
    for (const h of ref) {
      const g = model.get(h.id)!.grp;
      if (!groups.has(g) && groups.size >= 3) continue;
      const list = groups.get(g) ?? [];
      if (list.length < 2) list.push(h);
      groups.set(g, list);
    }
    const want = [...groups.values()].flat();
    const got = grouped.results as unknown as { id: string; score: number; grp: string }[];
    expect(got.map((h) => Number(h.id))).toEqual(want.map((h) => h.id));
    expect(got.map((h) => Number(h.grp))).toEqual(want.map((h) => model.get(h.id)!.grp));

    // Hybrid search over three fields, RRF and weighted, against fused references.
    const hq = makeRow(30_000);
    const subs = [
      { anns_field: 'fv', data: [hq.fv], limit: 20 },
      { anns_field: 'bv', data: [hq.bv], limit: 20, params: { nprobe: 16 } },
      { anns_field: 'sp', data: [hq.sp], limit: 20 },
    ];
    const subRefs = [rank(rows, (r) => r.fv, 'L2', hq.fv), rank(rows, (r) => r.bv, 'HAMMING', hq.bv), rank(rows, (r) => r.sp, 'IP', hq.sp)].map((r) =>
      r.slice(0, 20),
    );
    const fuse = (part: (i: number, rankIdx: number, score: number) => number): { id: number; score: number }[] => {
      const acc = new Map<number, number>();
      subRefs.forEach((list, i) => list.forEach((h, j) => acc.set(h.id, (acc.get(h.id) ?? 0) + part(i, j, h.score))));
      return [...acc].map(([id, score]) => ({ id, score })).sort((a, b) => b.score - a.score || a.id - b.id);
    };
    const rrf = await c.search({ collection_name: COLL, data: subs, rerank: RRFRanker(60), limit: 5, output_fields: ['id'] });
    expect(rrf.status.error_code, rrf.status.reason).toBe(ErrorCode.SUCCESS);
    expectHits(
      rrf.results as unknown as { id: string; score: number }[],
      fuse((_, j) => 1 / (60 + j + 1)),
      5,
      'rrf',
    );
    const weights = [0.5, 0.2, 0.9];
    const norm = (i: number, s: number): number => (i === 2 ? 0.5 + Math.atan(s) / Math.PI : 1 - (2 * Math.atan(s)) / Math.PI);
    const weighted = await c.search({ collection_name: COLL, data: subs, rerank: WeightedRanker(weights), limit: 5, output_fields: ['id'] });
    expect(weighted.status.error_code, weighted.status.reason).toBe(ErrorCode.SUCCESS);
    expectHits(
      weighted.results as unknown as { id: string; score: number }[],
      fuse((i, _, s) => weights[i]! * norm(i, s)),
      5,
      'weighted',
    );

    // Snapshot and restore: the restored collection holds the same rows, field by field.
    expect((await c.createSnapshot({ collection_name: COLL, snapshot_name: 'allvec_snap' })).error_code).toBe(ErrorCode.SUCCESS);
    const job = await c.restoreSnapshot({ snapshot_name: 'allvec_snap', source_collection_name: COLL, target_collection_name: 'allvec_restored' });
    expect(job.status.error_code, job.status.reason).toBe(ErrorCode.SUCCESS);
    const info = await waitRestore(c, job.job_id);
    expect(info.state).toBe('RestoreSnapshotCompleted');
    await c.loadCollection({ collection_name: 'allvec_restored' });
    await checkRows(c, 'allvec_restored', model);
    await checkSearches(c, 'allvec_restored', model);
  });
});
