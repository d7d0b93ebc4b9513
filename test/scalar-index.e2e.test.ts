import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DataType, ErrorCode, type MilvusClient, type RowData } from '@zilliz/milvus2-sdk-node';
import { startTestServer, vectors, waitRestore, type TestServer } from './helpers.js';

const DIM = 8;
const N = 1200;
const vs = vectors(N + 200, DIM, 11);
const TAGS = ['red', 'green', 'blue', 'reddish', 'greenish', 'amber'];

function row(i: number): RowData {
  return {
    id: i,
    v: vs[i]!,
    n: i % 97,
    price: (i % 50) / 4,
    tag: `${TAGS[i % TAGS.length]}_${i % 13}`,
    flag: i % 3 === 0,
    arr: [i % 5, (i * 7) % 11],
    meta: i % 10 === 9 ? { s: 'odd' } : { n: i % 20, s: `s${i % 4}`, t: [i % 3, 10 + (i % 2)] },
  };
}

/** Index definitions per field: every scalar type Milvus names, and two JSON path indexes. */
const INDEXES: { field: string; type: string; name?: string; params?: Record<string, string> }[] = [
  { field: 'n', type: 'STL_SORT' },
  { field: 'price', type: 'INVERTED' },
  { field: 'tag', type: 'Trie' },
  { field: 'flag', type: 'BITMAP' },
  { field: 'arr', type: 'AUTOINDEX' },
  { field: 'meta', type: 'INVERTED', name: 'meta_n', params: { json_path: 'meta["n"]', json_cast_type: 'DOUBLE' } },
  { field: 'meta', type: 'INVERTED', name: 'meta_t', params: { json_path: 'meta["t"]', json_cast_type: 'ARRAY_DOUBLE' } },
];

const FILTERS = [
  'n == 5',
  'n in [1, 2, 96]',
  '10 <= n < 13',
  'n > 90 and price < 3',
  'price == 2.5',
  'price >= 12 or n == 0',
  'tag like "red%"',
  'tag like "reddish_1%"',
  'tag == "amber_3"',
  'tag > "green" and tag < "greenish_2"',
  'flag == true and n < 10',
  'array_contains(arr, 4)',
  'array_contains_any(arr, [9, 10]) and flag == false',
  'array_contains_all(arr, [1, 7])',
  'meta["n"] == 7',
  'meta["n"] > 17 and tag like "blue%"',
  'json_contains(meta["t"], 11)',
  'meta["s"] == "odd" or n == 3',
  'not (n == 5) and n < 8',
  'n != 5 and n < 3',
  'id > 1100 and n < 50',
];

async function ids(c: MilvusClient, coll: string, filter: string): Promise<number[]> {
  const r = await c.query({ collection_name: coll, filter, output_fields: ['id'], limit: 16_384 });
  expect(r.status.error_code, `${filter}: ${r.status.reason}`).toBe(ErrorCode.SUCCESS);
  return r.data.map((d) => Number(d['id'])).sort((a, b) => a - b);
}

async function count(c: MilvusClient, coll: string, filter: string): Promise<number> {
  const r = await c.count({ collection_name: coll, expr: filter });
  expect(r.status.error_code, `${filter}: ${r.status.reason}`).toBe(ErrorCode.SUCCESS);
  return Number(r.data);
}

async function searchIds(c: MilvusClient, coll: string, filter: string): Promise<number[]> {
  const r = await c.search({ collection_name: coll, data: [vs[N + 1]!], limit: 10, filter, output_fields: ['id'] });
  expect(r.status.error_code, `${filter}: ${r.status.reason}`).toBe(ErrorCode.SUCCESS);
  return r.results.map((h) => Number(h.id));
}

/**
 * Scalar indexes through the SDK: two collections with identical data (two sealed segments, a growing
 * one, deleted rows), one with every scalar index type and one without; every filter answers the same in
 * both through query, count and filtered search. A snapshot restore reuses the index files.
 */
describe('scalar indexes through the SDK', () => {
  let t: TestServer;
  const IDX = 'with_idx';
  const PLAIN = 'no_idx';

  beforeAll(async () => {
    t = await startTestServer({ autoCompaction: false });
    const c = t.client;
    for (const name of [IDX, PLAIN]) {
      const r = await c.createCollection({
        collection_name: name,
        fields: [
          { name: 'id', data_type: DataType.Int64, is_primary_key: true },
          { name: 'v', data_type: DataType.FloatVector, dim: DIM },
          { name: 'n', data_type: DataType.Int64 },
          { name: 'price', data_type: DataType.Double },
          { name: 'tag', data_type: DataType.VarChar, max_length: 64 },
          { name: 'flag', data_type: DataType.Bool },
          { name: 'arr', data_type: DataType.Array, element_type: DataType.Int64, max_capacity: 4 },
          { name: 'meta', data_type: DataType.JSON },
        ],
      });
      expect(r.error_code, r.reason).toBe(ErrorCode.SUCCESS);
      // Two sealed segments, then a growing one (never indexed: scanned).
      for (const [from, to] of [
        [0, N / 2],
        [N / 2, N],
      ] as const) {
        const ins = await c.insert({ collection_name: name, data: Array.from({ length: to - from }, (_, k) => row(from + k)) });
        expect(ins.status.error_code, ins.status.reason).toBe(ErrorCode.SUCCESS);
        await c.flushSync({ collection_names: [name] });
      }
      await c.insert({ collection_name: name, data: Array.from({ length: 100 }, (_, k) => row(N + k)) });
      // Deleted rows in sealed and growing data, one delete by a filter an index answers.
      await c.delete({ collection_name: name, filter: 'id in [5, 102, 700, 1150, 1250]' });
      await c.delete({ collection_name: name, filter: 'n == 42' });
      await c.createIndex({ collection_name: name, field_name: 'v', index_type: 'FLAT', metric_type: 'L2' });
    }
    for (const ix of INDEXES) {
      const r = await c.createIndex({ collection_name: IDX, field_name: ix.field, index_name: ix.name, index_type: ix.type, params: ix.params ?? {} });
      expect(r.error_code, `${ix.field} ${ix.type}: ${r.reason}`).toBe(ErrorCode.SUCCESS);
    }
    await t.server.engine.waitForIndexes(t.server.engine.catalog.resolveCollection('default', IDX).id);
    await c.loadCollectionSync({ collection_name: IDX });
    await c.loadCollectionSync({ collection_name: PLAIN });
  });
  afterAll(async () => {
    await t?.close();
  });

  it('describes, lists and reports build progress of every scalar index; files are per sealed segment', async () => {
    const c = t.client;
    const di = await c.describeIndex({ collection_name: IDX });
    expect(di.status.error_code, di.status.reason).toBe(ErrorCode.SUCCESS);
    const byName = new Map(di.index_descriptions.map((d) => [d.index_name, d]));
    expect(byName.get('tag')!.params.find((p) => p.key === 'index_type')?.value).toBe('Trie');
    // AUTOINDEX on a scalar field builds INVERTED, as Milvus does.
    expect(byName.get('arr')!.params.find((p) => p.key === 'index_type')?.value).toBe('INVERTED');
    expect(byName.get('meta_n')!.params.find((p) => p.key === 'json_cast_type')?.value).toBe('DOUBLE');
    // Progress counts the rows of sealed segments (the growing rows are scanned, never indexed).
    for (const d of di.index_descriptions) expect(Number(d.indexed_rows), d.index_name).toBe(N);
    const list = await c.listIndexes({ collection_name: IDX });
    expect([...list.indexes].sort()).toEqual(['arr', 'flag', 'meta_n', 'meta_t', 'n', 'price', 'tag', 'v'].sort());
    const prog = await c.getIndexBuildProgress({ collection_name: IDX, index_name: 'tag' });
    expect(Number(prog.indexed_rows)).toBe(Number(prog.total_rows));
    const engine = t.server.engine;
    const collId = engine.catalog.resolveCollection('default', IDX).id;
    const segs = engine.catalog.segments(collId).filter((s) => s.state === 'Flushed');
    expect(segs.length).toBe(2);
    // Each sealed segment holds one file per index (7 scalar); FLAT writes none.
    for (const s of segs) expect(s.indexes.filter((i) => i.files.length === 1).length).toBe(INDEXES.length);
    // The loaded sealed segments serve them (what the filter path narrows rows with); growing ones have none.
    const infos = engine.queryNode.segmentInfos(collId);
    for (const info of infos.filter((i) => i.state === 'Flushed')) {
      expect(info.indexed.map((x) => x.fieldName).sort()).toEqual(['arr', 'flag', 'meta["n"]', 'meta["t"]', 'n', 'price', 'tag'].sort());
    }
  });

  it('query, count and filtered search answer exactly as without the indexes', async () => {
    const c = t.client;
    for (const f of FILTERS) {
      const a = await ids(c, IDX, f);
      expect(a, f).toEqual(await ids(c, PLAIN, f));
      expect(await count(c, IDX, f), f).toBe(a.length);
      expect(await searchIds(c, IDX, f), f).toEqual(await searchIds(c, PLAIN, f));
    }
    // Sanity: the filters select something (a comparison of two empty answers would prove little).
    expect((await ids(c, IDX, 'n == 5')).length).toBeGreaterThan(5);
  });

  it('delete by a filter an index answers removes the same rows in both collections', async () => {
    const c = t.client;
    for (const name of [IDX, PLAIN]) {
      const r = await c.delete({ collection_name: name, filter: 'tag like "amber_1%" and n < 60' });
      expect(r.status.error_code, r.status.reason).toBe(ErrorCode.SUCCESS);
    }
    expect(await ids(c, IDX, 'tag like "amber%"')).toEqual(await ids(c, PLAIN, 'tag like "amber%"'));
    expect(await count(c, IDX, 'tag like "amber_1%" and n < 60')).toBe(0);
  });

  it('a snapshot restore reuses the scalar index files (same build ids) and filters the same', async () => {
    const c = t.client;
    const engine = t.server.engine;
    // Seal the growing rows and index them first, so the snapshot holds every segment with its files.
    await c.flushSync({ collection_names: [IDX] });
    await engine.waitForIndexes(engine.catalog.resolveCollection('default', IDX).id);
    expect((await c.createSnapshot({ collection_name: IDX, snapshot_name: 'snap' })).error_code).toBe(ErrorCode.SUCCESS);
    const r = await c.restoreSnapshot({ snapshot_name: 'snap', source_collection_name: IDX, target_collection_name: 'restored' });
    expect(r.status.error_code, r.status.reason).toBe(ErrorCode.SUCCESS);
    expect((await waitRestore(c, r.job_id)).state).toBe('RestoreSnapshotCompleted');
    const builds = (coll: string): number[] =>
      engine.catalog
        .segments(engine.catalog.resolveCollection('default', coll).id)
        .filter((s) => s.state === 'Flushed')
        .flatMap((s) => s.indexes.map((i) => i.buildId))
        .sort((a, b) => a - b);
    expect(builds('restored')).toEqual(builds(IDX));
    const di = await c.describeIndex({ collection_name: 'restored', index_name: 'meta_t' });
    expect(di.index_descriptions[0]!.params.find((p) => p.key === 'json_path')?.value).toBe('meta["t"]');
    await c.loadCollectionSync({ collection_name: 'restored' });
    for (const f of FILTERS.slice(0, 8)) expect(await ids(c, 'restored', f), f).toEqual(await ids(c, IDX, f));
  });

  it('after a restart the segments load their scalar index files and filters answer the same', async () => {
    const before = await Promise.all(FILTERS.slice(0, 10).map((f) => ids(t.client, IDX, f)));
    t = await t.restart();
    const c = t.client;
    await c.loadCollectionSync({ collection_name: IDX });
    const engine = t.server.engine;
    const infos = engine.queryNode.segmentInfos(engine.catalog.resolveCollection('default', IDX).id);
    for (const info of infos.filter((i) => i.state === 'Flushed')) expect(info.indexed.map((x) => x.fieldName)).toContain('meta["n"]');
    for (const [i, f] of FILTERS.slice(0, 10).entries()) expect(await ids(c, IDX, f), f).toEqual(before[i]);
  });

  it('refuses index types a field cannot take, naming the field, its type and the valid choices', async () => {
    const c = t.client;
    const bad = async (field: string, index_type: string, params: Record<string, string> = {}, index_name?: string): Promise<string> => {
      const r = await c.createIndex({ collection_name: PLAIN, field_name: field, index_type, params, index_name });
      expect(r.error_code, `${field} ${index_type}`).not.toBe(ErrorCode.SUCCESS);
      return r.reason;
    };
    expect(await bad('price', 'BITMAP')).toMatch(/field price \(Double\).*valid index types: INVERTED, STL_SORT, AUTOINDEX/);
    expect(await bad('id', 'BITMAP')).toMatch(/field id \(Int64\).*INVERTED, STL_SORT, AUTOINDEX/);
    expect(await bad('n', 'Trie')).toMatch(/field n \(Int64\)/);
    expect(await bad('flag', 'STL_SORT')).toMatch(/field flag \(Bool\).*INVERTED, BITMAP/);
    expect(await bad('meta', 'BITMAP')).toMatch(/field meta \(JSON\)/);
    expect(await bad('meta', 'INVERTED')).toMatch(/json_path.*json_cast_type/);
    expect(await bad('meta', 'INVERTED', { json_path: 'meta["a"]', json_cast_type: 'INT' })).toMatch(/json_cast_type INT is invalid.*ARRAY_VARCHAR/);
    expect(await bad('meta', 'INVERTED', { json_path: 'other["a"]', json_cast_type: 'DOUBLE' })).toMatch(/must start with the field name meta/);
    expect(await bad('tag', 'INVERTED', { json_path: 'tag["a"]', json_cast_type: 'DOUBLE' })).toMatch(/JSON fields only/);
    expect(await bad('arr', 'STL_SORT')).toMatch(/Array of Int64/);
  });
});
