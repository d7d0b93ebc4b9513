import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { parquetWriteBuffer, type SchemaElement } from 'hyparquet-writer';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { DataType, ErrorCode, type MilvusClient } from '@zilliz/milvus2-sdk-node';
import { writeNpy } from '../src/import/npy.js';
import { collectionFileKeys } from './data-dir.js';
import { startTestServer, until, vectors, waitRestore, type TestServer } from './helpers.js';
import { killAllServers, spawnServer, type ServerProcess } from './process.js';

/**
 * Bulk import through the unmodified SDK (`bulkInsert`, `getImportState`, `listImportTasks`) from files
 * already in the collection's object store, in the layouts Milvus's BulkWriter writes.
 */

/* eslint-disable @typescript-eslint/no-explicit-any */

async function waitJob(c: MilvusClient, task: string, timeoutMs = 60_000): Promise<any> {
  let last: any;
  await until(
    async () => {
      last = await c.getImportState({ task } as any);
      return last.state === 'ImportCompleted' || last.state === 'ImportFailed';
    },
    { timeoutMs, what: `import job ${task}` },
  );
  return last;
}

const info = (s: any, key: string): string | undefined => (s.infos as { key: string; value: string }[]).find((i) => i.key === key)?.value;

async function bulk(c: MilvusClient, collection: string, files: string[]): Promise<string> {
  const r = await c.bulkInsert({ collection_name: collection, files });
  expect(r.status.error_code, r.status.reason).toBe(ErrorCode.SUCCESS);
  expect(r.tasks).toHaveLength(1);
  return String(r.tasks[0]);
}

async function count(c: MilvusClient, collection: string): Promise<number> {
  const r = await c.query({ collection_name: collection, filter: '', output_fields: ['count(*)'] });
  expect(r.status.error_code, r.status.reason).toBe(ErrorCode.SUCCESS);
  return Number(r.data[0]!['count(*)']);
}

const list = (name: string, type: 'FLOAT' | 'INT32'): SchemaElement[] => [
  { name, repetition_type: 'REQUIRED', converted_type: 'LIST', num_children: 1 },
  { name: 'list', repetition_type: 'REPEATED', num_children: 1 },
  { name: 'element', type, repetition_type: 'REQUIRED' },
];

describe('bulk import through the SDK', () => {
  let t: TestServer;
  const N = 5000;
  const DIM = 8;
  const vs = vectors(N, DIM, 5);
  const title = (i: number): string | null => (i % 5 === 0 ? null : `t${i}`);
  const put = (key: string, bytes: Uint8Array) => t.server.engine.store.put(key, bytes);

  beforeAll(async () => {
    t = await startTestServer({ sealRows: 1000, autoCompaction: false });
    const c = t.client;
    const r = await c.createCollection({
      collection_name: 'imp',
      fields: [
        { name: 'id', data_type: DataType.Int64, is_primary_key: true },
        { name: 'vec', data_type: DataType.FloatVector, dim: DIM },
        { name: 'title', data_type: DataType.VarChar, max_length: 32, nullable: true },
        { name: 'tags', data_type: DataType.Array, element_type: DataType.Int32, max_capacity: 4, nullable: true },
        { name: 'doc', data_type: DataType.JSON },
      ],
      enable_dynamic_field: true,
    });
    expect(r.error_code, r.reason).toBe(ErrorCode.SUCCESS);
    await c.createIndex({ collection_name: 'imp', field_name: 'vec', index_type: 'FLAT', metric_type: 'L2' });
    await c.loadCollectionSync({ collection_name: 'imp' });
  });
  afterAll(async () => {
    await t?.close();
  });

  it('imports a JSON, a Parquet and a NumPy source as one job each: every row visible and exact', async () => {
    const c = t.client;
    // JSON, BulkWriter's row-based layout; `color` is a dynamic key.
    const jsonRows = Array.from({ length: 2500 }, (_, i) => ({
      id: i,
      vec: vs[i],
      title: title(i),
      tags: [i % 10, 1],
      doc: { n: i },
      color: i % 2 ? 'red' : 'blue',
    }));
    await put('bulk/rows.json', new TextEncoder().encode(JSON.stringify({ rows: jsonRows })));
    // Parquet: one column per field, vectors and arrays as LISTs, JSON as text.
    const pIds = Array.from({ length: 1500 }, (_, k) => 2500 + k);
    const parquet = parquetWriteBuffer({
      columnData: [
        { name: 'id', data: BigInt64Array.from(pIds.map(BigInt)) },
        { name: 'vec', data: pIds.map((i) => vs[i]!) },
        { name: 'title', data: pIds.map(title) },
        { name: 'tags', data: pIds.map((i) => [i % 10, 2]) },
        { name: 'doc', data: pIds.map((i) => JSON.stringify({ n: i })) },
      ] as never,
      schema: [
        { name: 'root', num_children: 5 },
        { name: 'id', type: 'INT64', repetition_type: 'REQUIRED' },
        ...list('vec', 'FLOAT'),
        { name: 'title', type: 'BYTE_ARRAY', converted_type: 'UTF8', repetition_type: 'OPTIONAL' },
        ...list('tags', 'INT32'),
        { name: 'doc', type: 'BYTE_ARRAY', converted_type: 'UTF8', repetition_type: 'REQUIRED' },
      ],
    });
    await put('bulk/part.parquet', new Uint8Array(parquet));
    // NumPy: one <field>.npy per field in a folder; tags (nullable) has no file, so it is null.
    const nIds = Array.from({ length: 1000 }, (_, k) => 4000 + k);
    await put('bulk/np/id.npy', writeNpy('<i8', [1000], new Uint8Array(BigInt64Array.from(nIds.map(BigInt)).buffer)));
    await put('bulk/np/vec.npy', writeNpy('<f4', [1000, DIM], new Uint8Array(Float32Array.from(nIds.flatMap((i) => vs[i]!)).buffer)));
    // doc as fixed-width <U16 JSON text; titles all present here.
    const docs = new Uint32Array(1000 * 16);
    nIds.forEach((i, k) => [...`{"n":${i}}`].forEach((ch, j) => (docs[k * 16 + j] = ch.codePointAt(0)!)));
    await put('bulk/np/doc.npy', writeNpy('<U16', [1000], new Uint8Array(docs.buffer)));
    const titles = new Uint32Array(1000 * 8);
    nIds.forEach((i, k) => [...`t${i}`].forEach((ch, j) => (titles[k * 8 + j] = ch.codePointAt(0)!)));
    await put('bulk/np/title.npy', writeNpy('<U8', [1000], new Uint8Array(titles.buffer)));

    const tasks = [await bulk(c, 'imp', ['bulk/rows.json']), await bulk(c, 'imp', ['bulk/part.parquet']), await bulk(c, 'imp', ['bulk/np/'])];
    const expectedRows = [2500, 1500, 1000];
    for (const [k, task] of tasks.entries()) {
      const s = await waitJob(c, task);
      expect(s.state, info(s, 'failed_reason')).toBe('ImportCompleted');
      expect(Number(s.row_count)).toBe(expectedRows[k]);
      expect(info(s, 'progress_percent')).toBe('100');
      // sealRows 1000: whole segments of 1000 rows, the last one the rest.
      expect(s.segment_ids.length).toBe(Math.ceil(expectedRows[k]! / 1000));
    }
    expect(await count(c, 'imp')).toBe(N);

    const q = await c.query({ collection_name: 'imp', filter: 'id in [0, 7, 2600, 4500]', output_fields: ['id', 'vec', 'title', 'tags', 'doc', 'color'] });
    const byId = new Map(q.data.map((r: any) => [Number(r.id), r]));
    expect(byId.get(0)).toMatchObject({ title: null, tags: [0, 1], doc: { n: 0 }, $meta: { color: 'blue' } });
    expect(byId.get(7)).toMatchObject({ title: 't7', tags: [7, 1], doc: { n: 7 }, $meta: { color: 'red' } });
    expect(byId.get(2600)).toMatchObject({ title: null, tags: [0, 2], doc: { n: 2600 } });
    expect(byId.get(4500)).toMatchObject({ title: 't4500', tags: null, doc: { n: 4500 } });
    for (const [id, r] of byId) (r.vec as number[]).forEach((x, j) => expect(x).toBeCloseTo(vs[id]![j]!, 5));

    // Same as for inserted rows, the dynamic keys come back under $meta in query output.
    // Search against a brute-force L2 reference over every imported row.
    const query = vs[123]!.map((x, j) => x + (j % 2 ? 0.01 : -0.01));
    const ref = vs
      .map((v, i) => ({ i, d: v.reduce((a, x, j) => a + (x - query[j]!) ** 2, 0) }))
      .sort((a, b) => a.d - b.d)
      .slice(0, 10)
      .map((h) => h.i);
    const s = await c.search({ collection_name: 'imp', data: [query], anns_field: 'vec', limit: 10, output_fields: ['id'] });
    expect(s.status.error_code, s.status.reason).toBe(ErrorCode.SUCCESS);
    expect(s.results.map((h: any) => Number(h.id))).toEqual(ref);

    const l = await c.listImportTasks({ collection_name: 'imp' });
    expect(l.status.error_code).toBe(ErrorCode.SUCCESS);
    expect(l.tasks.map((x: any) => x.state)).toEqual(['ImportCompleted', 'ImportCompleted', 'ImportCompleted']);

    // Imported segments are ordinary flushed segments: a snapshot carries them into a restore.
    const snap = await c.createSnapshot({ collection_name: 'imp', snapshot_name: 'after_import' });
    expect(snap.error_code, snap.reason).toBe(ErrorCode.SUCCESS);
    const rs = await c.restoreSnapshot({ snapshot_name: 'after_import', source_collection_name: 'imp', target_collection_name: 'imp_copy' });
    expect(rs.status.error_code, rs.status.reason).toBe(ErrorCode.SUCCESS);
    expect((await waitRestore(c, rs.job_id)).state).toBe('RestoreSnapshotCompleted');
    await c.loadCollectionSync({ collection_name: 'imp_copy' });
    expect(await count(c, 'imp_copy')).toBe(N);
    const copy = await c.query({ collection_name: 'imp_copy', filter: 'id in [7, 4500]', output_fields: ['id', 'title', 'doc'] });
    expect(copy.data.map((r: any) => [Number(r.id), r.title, r.doc.n]).sort()).toEqual([
      [4500, 't4500', 4500],
      [7, 't7', 7],
    ]);
  });

  it('a wrong type deep in a file, a missing column, a missing file: the job fails naming file and row; nothing of it lands', async () => {
    const c = t.client;
    const before = await count(c, 'imp');
    // 3,000 rows (three segments at sealRows 1000, two written before the bad row): a smaller file than
    // the 1,000,001 rows, same path; the >1M-row case has its own test below.
    const rows = Array.from({ length: 3000 }, (_, i) => ({ id: 10_000 + i, vec: vs[i % N], title: null, tags: [1], doc: {} }));
    (rows[2345] as any).vec = 'oops';
    await put('bad/rows.json', new TextEncoder().encode(JSON.stringify(rows)));
    const bad = await waitJob(c, await bulk(c, 'imp', ['bad/rows.json']));
    expect(bad.state).toBe('ImportFailed');
    expect(info(bad, 'failed_reason')).toMatch(/import file "bad\/rows\.json" row 2345: field vec expects a FloatVector/);

    const missing = parquetWriteBuffer({
      columnData: [
        { name: 'id', data: BigInt64Array.from([1n, 2n]) },
        { name: 'vec', data: [vs[1]!, vs[2]!] },
      ] as never,
      schema: [{ name: 'root', num_children: 2 }, { name: 'id', type: 'INT64', repetition_type: 'REQUIRED' }, ...list('vec', 'FLOAT')],
    });
    await put('bad/no-doc.parquet', new Uint8Array(missing));
    const noDoc = await waitJob(c, await bulk(c, 'imp', ['bad/no-doc.parquet']));
    expect(noDoc.state).toBe('ImportFailed');
    expect(info(noDoc, 'failed_reason')).toMatch(/"bad\/no-doc\.parquet" row 0: field doc is missing/);

    const gone = await waitJob(c, await bulk(c, 'imp', ['bad/absent.json']));
    expect(gone.state).toBe('ImportFailed');
    expect(info(gone, 'failed_reason')).toMatch(/bad\/absent\.json/);

    const csv = await c.bulkInsert({ collection_name: 'imp', files: ['x.txt'] });
    expect(csv.status.error_code).not.toBe(ErrorCode.SUCCESS);
    expect(csv.status.reason).toMatch(/unsupported file type/);
    const noColl = await c.bulkInsert({ collection_name: 'nope', files: ['a.json'] });
    expect(noColl.status.error_code).not.toBe(ErrorCode.SUCCESS);
    const noJob = await c.getImportState({ task: '987654321' } as any);
    expect(noJob.status.error_code).not.toBe(ErrorCode.SUCCESS);
    expect(noJob.status.reason).toMatch(/import job 987654321 not found/);

    expect(await count(c, 'imp')).toBe(before);
    const q = await c.query({ collection_name: 'imp', filter: 'id >= 10000', output_fields: ['id'] });
    expect(q.data).toEqual([]);
  });
});

describe('bulk import: CSV, streamed JSON, concurrent jobs', () => {
  let t: TestServer;
  const DIM = 4;
  const vs = vectors(50_000, DIM, 9);
  const put = (key: string, bytes: Uint8Array) => t.server.engine.store.put(key, bytes);
  const cell = (v: unknown): string => {
    const text = typeof v === 'string' ? v : JSON.stringify(v);
    return /[",;\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
  };

  beforeAll(async () => {
    t = await startTestServer({ sealRows: 4000, autoCompaction: false, importJobsMax: 2 });
    const r = await t.client.createCollection({
      collection_name: 'csv',
      fields: [
        { name: 'id', data_type: DataType.Int64, is_primary_key: true },
        { name: 'vec', data_type: DataType.FloatVector, dim: DIM },
        { name: 'title', data_type: DataType.VarChar, max_length: 32, nullable: true },
        { name: 'n', data_type: DataType.Double },
        { name: 'doc', data_type: DataType.JSON },
      ],
    });
    expect(r.error_code, r.reason).toBe(ErrorCode.SUCCESS);
    await t.client.createIndex({ collection_name: 'csv', field_name: 'vec', index_type: 'FLAT', metric_type: 'L2' });
    await t.client.loadCollectionSync({ collection_name: 'csv' });
  });
  afterAll(async () => {
    await t?.close();
  });

  const model = (id: number) => ({ id, vec: vs[id]!, title: id % 4 === 0 ? null : `t;"${id}"`, n: id / 8, doc: { k: id, s: 'a,b' } });
  const csvText = (ids: number[], sep: string) =>
    ['id', 'vec', 'title', 'n', 'doc'].join(sep) +
    '\n' +
    ids
      .map((i) => {
        const m = model(i);
        return [m.id, cell(m.vec), m.title === null ? 'NULL' : cell(m.title), m.n, cell(JSON.stringify(m.doc))].join(sep);
      })
      .join('\n');

  it('imports a CSV file (sep and nullkey options) exactly; a CSV with a bad row fails naming it and imports nothing', async () => {
    const c = t.client;
    const ids = Array.from({ length: 3000 }, (_, i) => i);
    await put('csv/good.csv', new TextEncoder().encode(csvText(ids, ';')));
    const r = await c.bulkInsert({
      collection_name: 'csv',
      files: ['csv/good.csv'],
      options: [
        { key: 'sep', value: ';' },
        { key: 'nullkey', value: 'NULL' },
      ],
    } as any);
    expect(r.status.error_code, r.status.reason).toBe(ErrorCode.SUCCESS);
    const done = await waitJob(c, String(r.tasks[0]));
    expect(done.state, info(done, 'failed_reason')).toBe('ImportCompleted');
    expect(await count(c, 'csv')).toBe(3000);
    const q = await c.query({ collection_name: 'csv', filter: 'id in [0, 1, 2999]', output_fields: ['id', 'vec', 'title', 'n', 'doc'] });
    for (const got of q.data) {
      const m = model(Number(got['id']));
      expect(got['title']).toBe(m.title);
      expect(got['n']).toBe(m.n);
      expect(got['doc']).toEqual(m.doc);
      (got['vec'] as number[]).forEach((x, k) => expect(x).toBeCloseTo(m.vec[k]!, 5));
    }

    const badIds = Array.from({ length: 3000 }, (_, i) => 10_000 + i);
    const lines = csvText(badIds, ',').split('\n');
    lines[1 + 2500] = lines[1 + 2500]!.replace(/^(\d+),("\[[^\]]*\]"),([^,]*),([^,]*),/, '$1,$2,$3,not-a-number,');
    await put('csv/bad.csv', new TextEncoder().encode(lines.join('\n')));
    const bad = await waitJob(c, await bulk(c, 'csv', ['csv/bad.csv']));
    expect(bad.state).toBe('ImportFailed');
    expect(info(bad, 'failed_reason')).toMatch(/import file "csv\/bad\.csv" row 2500: field n: "not-a-number" is not a number/);
    expect(await count(c, 'csv')).toBe(3000);
  });

  it('a JSON file of several read ranges with a bad row near its end fails naming that row; nothing lands', async () => {
    const c = t.client;
    const rows = Array.from({ length: 40_000 }, (_, i) => ({ ...model(20_000 + i), vec: vs[i]!, pad: undefined }));
    (rows[39_500] as any).n = 'late';
    const bytes = new TextEncoder().encode(JSON.stringify({ rows }));
    expect(bytes.length).toBeGreaterThan(4 << 20);
    await put('json/late.json', bytes);
    const bad = await waitJob(c, await bulk(c, 'csv', ['json/late.json']), 120_000);
    expect(bad.state).toBe('ImportFailed');
    expect(info(bad, 'failed_reason')).toMatch(/import file "json\/late\.json" row 39500: field n/);
    expect(await count(c, 'csv')).toBe(3000);
  }, 180_000);

  it('runs at most QUIVER_IMPORT_JOBS_MAX jobs at once; the others are ImportPending until a slot frees; all complete', async () => {
    const c = t.client;
    const files: string[] = [];
    for (let j = 0; j < 5; j++) {
      const ids = Array.from({ length: 2000 }, (_, i) => 100_000 + j * 2000 + i);
      await put(`par/${j}.json`, new TextEncoder().encode(JSON.stringify(ids.map((id) => ({ ...model(id), vec: vs[id % 50_000]! })))));
      files.push(`par/${j}.json`);
    }
    // Submitted back to back: the manager starts two, the other three wait (ImportPending).
    const tasks = await Promise.all(files.map((f) => bulk(c, 'csv', [f])));
    let maxStarted = 0;
    await until(
      async () => {
        const l = await c.listImportTasks({ collection_name: 'csv' } as any);
        const mine = (l.tasks as any[]).filter((x) => tasks.includes(String(x.id)));
        maxStarted = Math.max(maxStarted, mine.filter((x) => x.state === 'ImportStarted').length);
        return mine.length === 5 && mine.every((x) => x.state === 'ImportCompleted' || x.state === 'ImportFailed');
      },
      { timeoutMs: 120_000, what: 'five import jobs' },
    );
    expect(maxStarted).toBeLessThanOrEqual(2);
    for (const task of tasks) expect((await c.getImportState({ task } as any)).state).toBe('ImportCompleted');
    expect(await count(c, 'csv')).toBe(3000 + 5 * 2000);
  }, 180_000);
});

describe('bulk import of a file over 1M rows with a wrong type in row 1,000,001', () => {
  let t: TestServer;
  beforeAll(async () => {
    // Orphan grace 1 ms: the test runs GC by hand once nothing is importing, to see the leftovers go.
    t = await startTestServer({ sealRows: 250_000, autoCompaction: false, gcOrphanGraceMs: 1, gcDroppedGraceMs: 0, gcIntervalMs: 3_600_000 });
  });
  afterAll(async () => {
    await t?.close();
  });

  it('fails naming the row, publishes nothing, and GC removes the segment files it had written', async () => {
    const c = t.client;
    await c.createCollection({
      collection_name: 'big',
      fields: [
        { name: 'id', data_type: DataType.Int64, is_primary_key: true },
        { name: 'vec', data_type: DataType.FloatVector, dim: 2 },
      ],
    });
    const rows = 1_000_002;
    const parts: string[] = [];
    for (let i = 0; i < rows; i++) parts.push(i === 1_000_001 ? `{"id":${i},"vec":[0.5,"x"]}` : `{"id":${i},"vec":[${i % 97},${i % 89}]}`);
    await t.server.engine.store.put('big/rows.json', new TextEncoder().encode(`[${parts.join(',')}]`));
    const s = await waitJob(c, await bulk(c, 'big', ['big/rows.json']), 120_000);
    expect(s.state).toBe('ImportFailed');
    expect(info(s, 'failed_reason')).toMatch(/import file "big\/rows\.json" row 1000001: field vec expects FloatVector numbers, got "x"/);
    const id = t.server.engine.catalog.resolveCollection('default', 'big').id;
    // Four full segments were written before the bad row; no record lists them.
    expect(t.server.engine.catalog.segments(id)).toEqual([]);
    expect((await collectionFileKeys(t.dataDir, id)).length).toBeGreaterThan(0);
    await c.createIndex({ collection_name: 'big', field_name: 'vec', index_type: 'FLAT', metric_type: 'L2' });
    await c.loadCollectionSync({ collection_name: 'big' });
    expect(await count(c, 'big')).toBe(0);
    await t.server.gc.tick();
    expect(await collectionFileKeys(t.dataDir, id)).toEqual([]);
  }, 180_000);
});

describe('bulk import survives kill -9 mid-import', () => {
  let dataDir: string;
  let s: ServerProcess | undefined;
  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'quiver-import-crash-'));
  });
  afterEach(() => {
    killAllServers();
  });
  afterAll(async () => {
    await rm(dataDir, { recursive: true, force: true });
  });

  it('the interrupted job runs again after the restart: every row exactly once, none from the first attempt', async () => {
    s = await spawnServer(dataDir, { QUIVER_SEAL_ROWS: '20000', QUIVER_LOG_LEVEL: 'warn' });
    const c = s.client;
    await c.createCollection({
      collection_name: 'crash',
      fields: [
        { name: 'id', data_type: DataType.Int64, is_primary_key: true },
        { name: 'vec', data_type: DataType.FloatVector, dim: 16 },
      ],
    });
    const n = 400_000;
    const write = async (key: string, bytes: Uint8Array) => {
      const p = join(dataDir, 'objects', key);
      await mkdir(dirname(p), { recursive: true });
      await writeFile(p, bytes);
    };
    await write('crash/id.npy', writeNpy('<i8', [n], new Uint8Array(BigInt64Array.from({ length: n }, (_, i) => BigInt(i)).buffer)));
    await write('crash/vec.npy', writeNpy('<f4', [n, 16], new Uint8Array(Float32Array.from({ length: n * 16 }, (_, i) => i % 1000).buffer)));
    const task = await bulk(c, 'crash', ['crash/']);
    // Kill once at least one segment is written (the job reports its rows) and before it completes.
    let state: any;
    await until(
      async () => {
        state = await c.getImportState({ task } as any);
        return (state.state === 'ImportStarted' && Number(state.row_count) > 0) || state.state === 'ImportCompleted';
      },
      { timeoutMs: 60_000, intervalMs: 10, what: 'the import to write its first segment' },
    );
    expect(state.state, 'the import finished before the kill; make the file bigger').toBe('ImportStarted');
    await s.kill9();

    s = await spawnServer(dataDir, { QUIVER_SEAL_ROWS: '20000', QUIVER_LOG_LEVEL: 'warn' });
    const c2 = s.client;
    const done = await waitJob(c2, task, 120_000);
    expect(done.state, info(done, 'failed_reason')).toBe('ImportCompleted');
    expect(Number(done.row_count)).toBe(n);
    await c2.createIndex({ collection_name: 'crash', field_name: 'vec', index_type: 'FLAT', metric_type: 'L2' });
    await c2.loadCollectionSync({ collection_name: 'crash' });
    expect(await count(c2, 'crash')).toBe(n);
    const q = await c2.query({ collection_name: 'crash', filter: 'id in [0, 123456, 399999]', output_fields: ['id'] });
    expect(q.data.map((r: any) => Number(r.id)).sort((a: number, b: number) => a - b)).toEqual([0, 123456, 399999]);
    await s.stop();
  }, 240_000);
});
