import { execFile } from 'node:child_process';
import { mkdtemp, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DataType, HttpClient } from '@zilliz/milvus2-sdk-node';
import { startTestServer, vectors, type TestServer } from './helpers.js';

const run = promisify(execFile);
const DIM = 8;

/* eslint-disable @typescript-eslint/no-explicit-any */

/** POST with curl: [http status, parsed JSON body or raw text]. */
async function curl(url: string, args: readonly string[], stdinFile?: string): Promise<[number, any]> {
  const argv = ['-s', '-X', 'POST', '-w', '\n%{http_code}', ...args, url];
  // From stdin (`-T -`) curl streams the body chunked, without a content-length.
  // curl exits non-zero when the server closes the connection mid-upload (a refused large body): its
  // output still holds the answer, so it is read either way.
  const { stdout } = await (
    stdinFile
      ? run('sh', ['-c', `curl ${argv.map((a) => `'${a.replace(/'/g, "'\\''")}'`).join(' ')} < '${stdinFile}'`], { maxBuffer: 1 << 20 })
      : run('curl', argv, { maxBuffer: 1 << 20 })
  ).catch((e: { stdout?: string }) => ({ stdout: e.stdout ?? '' }));
  const nl = stdout.lastIndexOf('\n');
  const text = stdout.slice(0, nl);
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // not JSON: returned raw so the assertion shows it
  }
  return [Number(stdout.slice(nl + 1)), body];
}

describe('RESTful API v2 through the SDK HttpClient', () => {
  let t: TestServer;
  let http: HttpClient;
  let base: string;
  let tmp: string;
  beforeAll(async () => {
    t = await startTestServer({ httpBodyMaxBytes: 4 * 1024 * 1024 });
    base = `http://127.0.0.1:${t.server.httpPort}`;
    http = new HttpClient({ endpoint: base });
    tmp = await mkdtemp(join(tmpdir(), 'quiver-rest-'));
  });
  afterAll(async () => {
    await t?.close();
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  it('quick-creates a collection (dimension, idType, field names, metric), describes, lists and drops it', async () => {
    const r = await http.createCollection({ collectionName: 'quick', dimension: DIM, metricType: 'L2', primaryFieldName: 'pk', vectorFieldName: 'emb' });
    expect(r).toEqual({ code: 0, data: {} });
    const d = await http.describeCollection({ collectionName: 'quick' } as any);
    expect(d.code).toBe(0);
    expect(d.data.collectionName).toBe('quick');
    expect(d.data.fields.map((f: any) => [f.name, f.type, f.primaryKey])).toEqual([
      ['pk', 'Int64', true],
      ['emb', 'FloatVector', false],
    ]);
    expect(d.data.indexes).toEqual([{ fieldName: 'emb', indexName: 'emb', metricType: 'L2' }]);
    expect(d.data.load).toBe('LoadStateLoaded');
    expect(d.data.enableDynamicField).toBe(true);
    expect((await http.hasCollection({ collectionName: 'quick' } as any)).data).toEqual({ has: true });
    expect((await http.listCollections()).data).toContain('quick');
    expect((await http.getCollectionLoadState({ collectionName: 'quick' } as any)).data.loadState).toBe('LoadStateLoaded');
    // Same handler as gRPC: the gRPC client sees what REST created.
    const g = await t.client.describeCollection({ collection_name: 'quick' });
    expect(g.schema.fields.map((f) => f.name)).toEqual(['pk', 'emb']);
    expect((await http.dropCollection({ collectionName: 'quick' })).code).toBe(0);
    expect((await http.hasCollection({ collectionName: 'quick' } as any)).data).toEqual({ has: false });
  });

  it('inserts, queries, gets, searches, upserts, deletes and hybrid-searches with results equal to the gRPC client', async () => {
    const name = 'books';
    const created = await http.createCollection({
      collectionName: name,
      schema: {
        autoID: false,
        enableDynamicField: true,
        fields: [
          { fieldName: 'id', dataType: 'Int64', isPrimary: true },
          { fieldName: 'title', dataType: 'VarChar', elementTypeParams: { max_length: 64 } },
          { fieldName: 'year', dataType: 'Int32' },
          { fieldName: 'tags', dataType: 'Array', elementDataType: 'Int64', elementTypeParams: { max_capacity: 8 } },
          { fieldName: 'vec', dataType: 'FloatVector', elementTypeParams: { dim: DIM } },
          { fieldName: 'vec2', dataType: 'FloatVector', elementTypeParams: { dim: DIM } },
        ],
      } as any,
      indexParams: [
        { fieldName: 'vec', indexName: 'vec_idx', metricType: 'L2', params: { index_type: 'FLAT' } },
        { fieldName: 'vec2', indexName: 'vec2_idx', metricType: 'IP' },
      ] as any,
    });
    expect(created).toEqual({ code: 0, data: {} });
    const vs = vectors(60, DIM);
    const rows = vs.map((v, i) => ({
      id: i,
      title: `t${i}`,
      year: 1900 + i,
      tags: [i, i + 1],
      vec: v,
      vec2: vs[(i + 7) % 60]!,
      color: i % 2 ? 'red' : 'blue',
    }));
    const ins = await http.insert({ collectionName: name, data: rows });
    expect(ins.code).toBe(0);
    expect(ins.data.insertCount).toBe(60);
    expect(ins.data.insertIds).toEqual(rows.map((r) => String(r.id)));

    // query: rows as objects, int64 as strings by default, dynamic keys spread in.
    const q = await http.query({ collectionName: name, filter: 'year >= 1950', outputFields: ['id', 'title', 'tags', 'color'] });
    expect(q.code).toBe(0);
    const grpcQ = await t.client.query({ collection_name: name, filter: 'year >= 1950', output_fields: ['id', 'title', 'tags', 'color'] });
    const norm = (r: any) => ({ id: String(r.id), title: r.title, tags: (r.tags as unknown[]).map(String) });
    const byId = (a: any, b: any) => Number(a.id) - Number(b.id);
    expect(q.data.map(norm).sort(byId)).toEqual(grpcQ.data.map(norm).sort(byId));
    expect(q.data.length).toBe(10);
    expect(typeof q.data[0]!.id).toBe('string');
    expect(q.data.find((r: any) => r.id === '51')!.color).toBe('red');

    // filter templates (exprParams)
    const tq = await http.query({
      collectionName: name,
      filter: 'year > {y} and id in {ids}',
      exprParams: { y: 1955, ids: [56, 57, 3] },
      outputFields: ['id'],
    } as any);
    expect(tq.data.map((r: any) => r.id).sort()).toEqual(['56', '57']);

    // count(*)
    const cnt = await http.query({ collectionName: name, filter: '', outputFields: ['count(*)'] });
    expect(cnt.data).toEqual([{ 'count(*)': '60' }]);

    // get by id, with int64 as numbers when the client allows them
    const http64 = new HttpClient({ endpoint: base, acceptInt64: true });
    const got = await http64.get({ collectionName: name, id: [3, 4], outputFields: ['id', 'year', 'vec'] });
    expect(got.code).toBe(0);
    expect(got.data.sort(byId).map((r: any) => [r.id, r.year])).toEqual([
      [3, 1903],
      [4, 1904],
    ]);
    expect(got.data[0]!.vec).toHaveLength(DIM);

    // search: same hits and distances as the gRPC client
    const s = await http.search({ collectionName: name, data: [vs[5]!], annsField: 'vec', limit: 5, outputFields: ['title'] });
    expect(s.code).toBe(0);
    const gs = await t.client.search({ collection_name: name, data: [vs[5]!], anns_field: 'vec', limit: 5, output_fields: ['title'] });
    expect(s.data.map((r: any) => [String(r.id), r.title])).toEqual(gs.results.map((r: any) => [String(r.id), r.title]));
    s.data.forEach((r: any, i: number) => expect(r.distance).toBeCloseTo(gs.results[i]!.score, 4));
    expect((s.data[0] as any).id).toBe('5');

    // two queries: the client splits rows by topks
    const s2 = await http.search({ collectionName: name, data: [vs[1]!, vs[2]!], annsField: 'vec', limit: 3, filter: 'year < 1930' } as any);
    expect(s2.topks).toEqual([3, 3]);
    expect((s2.data as any[][]).map((g) => g[0].id)).toEqual(['1', '2']);

    // hybrid search over both vector fields (RRF), as the gRPC client
    const hs = await http.hybridSearch({
      collectionName: name,
      search: [
        { data: [vs[9]!], annsField: 'vec', limit: 5 },
        { data: [vs[9]!], annsField: 'vec2', limit: 5 },
      ],
      rerank: { strategy: 'rrf', params: { k: 60 } },
      limit: 4,
      outputFields: ['year'],
    });
    expect(hs.code).toBe(0);
    const ghs = await t.client.hybridSearch({
      collection_name: name,
      data: [
        { data: [vs[9]!], anns_field: 'vec', params: {} },
        { data: [vs[9]!], anns_field: 'vec2', params: {} },
      ],
      rerank: { strategy: 'rrf', params: { k: 60 } },
      limit: 4,
      output_fields: ['year'],
    } as any);
    expect(hs.data.map((r: any) => String(r.id))).toEqual(ghs.results.map((r: any) => String(r.id)));

    // upsert replaces, delete by id and by filter
    const up = await http.upsert({ collectionName: name, data: [{ ...rows[0]!, title: 'changed' }] });
    expect(up.data).toEqual({ upsertCount: 1, upsertIds: ['0'] });
    expect((await http.get({ collectionName: name, id: 0, outputFields: ['title'] })).data[0]!.title).toBe('changed');
    expect((await http.delete({ collectionName: name, id: [1, 2] } as any)).code).toBe(0);
    expect((await http.delete({ collectionName: name, filter: 'year >= 1950' })).code).toBe(0);
    const left = await t.client.query({ collection_name: name, filter: '', output_fields: ['count(*)'] });
    expect(Number(left.data[0]!['count(*)'])).toBe(48);
    expect((await http.getCollectionStatistics({ collectionName: name })).code).toBe(0);
  });

  it('inserts and reads Geometry (WKT) and Timestamptz (ISO-8601) values as text', async () => {
    const created = await http.createCollection({
      collectionName: 'places',
      schema: {
        fields: [
          { fieldName: 'id', dataType: 'Int64', isPrimary: true },
          { fieldName: 'geo', dataType: 'Geometry' },
          { fieldName: 'at', dataType: 'Timestamptz', nullable: true },
          { fieldName: 'vec', dataType: 'FloatVector', elementTypeParams: { dim: 4 } },
        ],
      } as any,
      indexParams: [{ fieldName: 'vec', metricType: 'L2' }] as any,
    });
    expect(created.code).toBe(0);
    const ins = await http.insert({
      collectionName: 'places',
      data: [
        { id: 1, geo: 'POINT (1 2)', at: '2025-01-02T03:04:05Z', vec: [1, 0, 0, 0] },
        { id: 2, geo: 'POINT (3 4)', at: null, vec: [0, 1, 0, 0] },
      ],
    });
    expect(ins.code).toBe(0);
    const q = await http.query({ collectionName: 'places', filter: 'id > 0', outputFields: ['id', 'geo', 'at'] });
    const g = await t.client.query({ collection_name: 'places', filter: 'id > 0', output_fields: ['id', 'geo', 'at'] });
    const norm = (r: any) => ({ id: String(r.id), geo: r.geo, at: r.at ?? null });
    expect(q.data.map(norm)).toEqual(g.data.map(norm));
    expect(q.data.map(norm)[1]).toEqual({ id: '2', geo: 'POINT (3 4)', at: null });
  });

  it('manages indexes, partitions, aliases and databases', async () => {
    await t.client.createCollection({
      collection_name: 'parts',
      fields: [
        { name: 'id', data_type: DataType.VarChar, is_primary_key: true, max_length: 16 },
        { name: 'vec', data_type: DataType.FloatVector, dim: DIM },
      ],
    });
    expect((await http.listIndexes({ collectionName: 'parts' })).data).toEqual([]);
    expect(
      (await http.createIndex({ collectionName: 'parts', indexParams: [{ fieldName: 'vec', indexName: 'v', metricType: 'COSINE' }] } as any)).code,
    ).toBe(0);
    expect((await http.listIndexes({ collectionName: 'parts' })).data).toEqual(['v']);
    const di = await http.describeIndex({ collectionName: 'parts', indexName: 'v' });
    expect(di.data[0]).toMatchObject({ indexName: 'v', fieldName: 'vec', metricType: 'COSINE' });

    expect((await http.createPartition({ collectionName: 'parts', partitionName: 'p1' })).code).toBe(0);
    expect((await http.hasPartition({ collectionName: 'parts', partitionName: 'p1' })).data).toEqual({ has: true });
    expect((await http.listPartitions({ collectionName: 'parts' })).data).toEqual(['_default', 'p1']);
    const ins = await http.insert({ collectionName: 'parts', partitionName: 'p1', data: [{ id: 'a', vec: vectors(1, DIM)[0]! }] } as any);
    expect(ins.data).toEqual({ insertCount: 1, insertIds: ['a'] });
    expect((await http.loadPartitions({ collectionName: 'parts', partitionNames: ['p1'] })).code).toBe(0);
    expect((await http.getPartitionStatistics({ collectionName: 'parts', partitionName: 'p1' })).data).toEqual({ rowCount: 1 });
    expect((await http.releasePartitions({ collectionName: 'parts', partitionNames: ['p1'] })).code).toBe(0);
    expect((await http.dropPartition({ collectionName: 'parts', partitionName: 'p1' })).code).toBe(0);

    expect((await http.createAlias({ collectionName: 'parts', aliasName: 'pa' })).code).toBe(0);
    expect((await http.describeAlias({ aliasName: 'pa' })).data).toMatchObject({ collectionName: 'parts', aliasName: 'pa' });
    expect((await http.listAliases({})).data).toContain('pa');
    expect((await http.dropAlias({ aliasName: 'pa' })).code).toBe(0);
    expect((await http.dropIndex({ collectionName: 'parts', indexName: 'v' })).code).toBe(0);

    expect((await http.createDatabase({ dbName: 'rdb', properties: { 'database.max.collections': 7 } } as any)).code).toBe(0);
    expect((await http.listDatabases()).data).toEqual(expect.arrayContaining(['default', 'rdb']));
    const db = await http.describeDatabase({ dbName: 'rdb' });
    expect(db.data.dbName).toBe('rdb');
    // A collection in that database through the body's dbName.
    expect((await http.createCollection({ dbName: 'rdb', collectionName: 'inner', dimension: 4 })).code).toBe(0);
    expect((await http.listCollections({ dbName: 'rdb' })).data).toEqual(['inner']);
    expect((await http.dropCollection({ dbName: 'rdb', collectionName: 'inner' })).code).toBe(0);
    expect((await http.dropDatabase({ dbName: 'rdb' })).code).toBe(0);
  });

  it('answers the Milvus codes the gRPC door answers for bad requests', async () => {
    const missing = await http.describeCollection({ collectionName: 'nope' } as any);
    const grpc = await t.client.describeCollection({ collection_name: 'nope' });
    expect(missing.code).toBe(100);
    expect(missing.code).toBe(grpc.status.code);
    expect(missing.message).toBe(grpc.status.reason);
    // A name with path characters is refused by the same name rules, never used as a path.
    for (const bad of ['../etc', 'a/b', 'x\u0000y']) {
      const r = await http.createCollection({ collectionName: bad, dimension: 4 });
      expect(r.code).toBe(1100);
    }
    const [status, body] = await curl(`${base}/v2/vectordb/collections/describe`, ['-d', '{"collectionName": 5}']);
    expect([status, body.code]).toEqual([200, 1100]);
    expect(body.message).toMatch(/collectionName/);
  });

  it('refuses malformed JSON, unknown paths and bodies over the limit, and stays up', async () => {
    const [s1, b1] = await curl(`${base}/v2/vectordb/collections/list`, ['-d', '{"dbName": ']);
    expect([s1, b1.code]).toEqual([200, 1100]);
    const [s2, b2] = await curl(`${base}/v2/vectordb/collections/steal`, ['-d', '{}']);
    expect([s2, b2.code]).toEqual([404, 404]);
    const [s3, b3] = await curl(`${base}/v2/vectordb/collections/list`, ['-d', '[1,2]']);
    expect([s3, b3.code]).toEqual([200, 1100]);

    // 1 GiB: a sparse file sent with its content-length (refused before reading), then streamed chunked.
    const big = join(tmp, 'big.json');
    await writeFile(big, '');
    await truncate(big, 1024 ** 3);
    const [s4, b4] = await curl(`${base}/v2/vectordb/entities/insert`, ['-T', big]);
    expect([s4, b4.code]).toEqual([413, 1102]);
    // Streamed: the server answers 413 once the limit is passed and closes the connection; a client still
    // sending may see the reset before the answer (curl then reports no final status). Either way the body
    // was cut off, never accepted.
    const [s5, b5] = await curl(`${base}/v2/vectordb/entities/insert`, ['-T', '-'], big);
    if (s5 === 413) expect(b5.code).toBe(1102);
    else expect([0, 100]).toContain(s5);

    expect((await http.listCollections()).code).toBe(0);
    expect((await t.client.checkHealth()).isHealthy).toBe(true);
  });
});
