import { parquetWriteBuffer, type SchemaElement } from 'hyparquet-writer';
import { describe, expect, it } from 'vitest';
import { FakeClock } from '../common/clock.js';
import { isQuiverError, quiverError } from '../common/errors.js';
import type { CollectionRecord, SegmentRecord } from '../coord/records.js';
import { MemoryMetaKV } from '../meta/memory-kv.js';
import { keyPartitionName } from '../proxy/partition-key.js';
import { requestColumns } from '../proxy/write-columns.js';
import type { FieldSchema } from '../schema/types.js';
import { readSegment } from '../segcore/segment-io.js';
import { MemoryObjectStore } from '../storage/memory-object-store.js';
import { collectionRecord, PARTITION_ID } from '../testing/records.js';
import { ImportExecutor, type ImportRun } from './import-executor.js';
import { ImportManager } from './import-manager.js';
import { MetaImportJobStore } from './job-store.js';
import { npyRow, parseNpy, writeNpy } from './npy.js';
import { csvSource, jsonStreamSource } from './text-readers.js';
import type { ImportJob } from './types.js';

const field = (fieldId: number, name: string, dataType: FieldSchema['dataType'], extra: Partial<FieldSchema> = {}): FieldSchema => ({
  fieldId,
  name,
  description: '',
  dataType,
  isPrimaryKey: false,
  autoId: false,
  nullable: false,
  isDynamic: false,
  isPartitionKey: false,
  isClusteringKey: false,
  typeParams: {},
  ...extra,
});

function coll(dynamic = false): CollectionRecord {
  const base = collectionRecord(11);
  const fields = [
    field(100, 'id', 'Int64', { isPrimaryKey: true }),
    field(101, 'vec', 'FloatVector', { dim: 4 }),
    field(102, 'name', 'VarChar', { maxLength: 16, nullable: true }),
    field(103, 'tags', 'Array', { elementType: 'Int32', maxCapacity: 4 }),
    field(104, 'doc', 'JSON'),
    ...(dynamic ? [field(105, '$meta', 'JSON', { isDynamic: true })] : []),
  ];
  return { ...base, schema: { ...base.schema, enableDynamicField: dynamic, fields } };
}

function row(i: number): Record<string, unknown> {
  return { id: i, vec: [i, i + 1, i + 2, i + 3], name: i % 3 === 0 ? null : `n${i}`, tags: [i % 7], doc: { k: i } };
}

function executor(store: MemoryObjectStore, segmentRowsMax = 1000): ImportExecutor {
  let next = 1000;
  let ts = 1n << 20n;
  return new ImportExecutor(
    {
      store,
      ids: { alloc: (count = 1) => Promise.resolve((next += count) - count) },
      tso: { next: () => ts++ },
      toColumns: (c, req) => requestColumns(c, req, false),
    },
    { batchRows: 64, segmentRowsMax },
  );
}

function job(files: string[]): ImportJob {
  return {
    id: 1,
    dbName: 'default',
    collectionId: 11,
    collectionName: 'c11',
    partitionId: PARTITION_ID,
    files,
    state: 'Importing',
    rows: 0,
    totalBytes: 0,
    readBytes: 0,
    segmentIds: [],
    reason: '',
    attempts: 1,
    createdMs: 0,
    updatedMs: 0,
    createTs: '1',
  };
}

const run = (ex: ImportExecutor, c: CollectionRecord, files: string[]) => ex.run(job(files), c, () => Promise.resolve(true), new AbortController().signal);

async function failureOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    if (!isQuiverError(e)) throw e;
    return e.message;
  }
  throw new Error('expected the import to fail');
}

describe('npy', () => {
  it('reads what it writes: 1-D int64, 2-D float32, fixed-width unicode', () => {
    const ints = new BigInt64Array([5n, -7n, 9007199254740993n]);
    const a = parseNpy(writeNpy('<i8', [3], new Uint8Array(ints.buffer)), 'ints');
    expect([0, 1, 2].map((i) => npyRow(a, i))).toEqual([5n, -7n, 9007199254740993n]);
    const v = new Float32Array([1, 2, 3, 4, 5, 6]);
    const b = parseNpy(writeNpy('<f4', [3, 2], new Uint8Array(v.buffer)), 'vecs');
    expect(npyRow(b, 2)).toEqual([5, 6]);
    const u = new Uint32Array(6);
    [...'ab'].forEach((ch, i) => (u[i] = ch.codePointAt(0)!));
    [...'xyz'].forEach((ch, i) => (u[3 + i] = ch.codePointAt(0)!));
    const c = parseNpy(writeNpy('<U3', [2], new Uint8Array(u.buffer)), 'strs');
    expect([npyRow(c, 0), npyRow(c, 1)]).toEqual(['ab', 'xyz']);
  });

  it('refuses a bad magic, a truncated body, big-endian and Fortran order, naming the file', () => {
    expect(() => parseNpy(new Uint8Array(20), 'f.npy')).toThrow(/f\.npy is not a valid \.npy file: missing/);
    const ok = writeNpy('<f4', [4], new Uint8Array(16));
    expect(() => parseNpy(ok.subarray(0, ok.length - 4), 'f.npy')).toThrow(/needs 16/);
    expect(() => parseNpy(writeNpy('>f4', [4], new Uint8Array(16)), 'f.npy')).toThrow(/big-endian/);
    const fortran = new TextDecoder().decode(ok).replace("'fortran_order': False", "'fortran_order': True ");
    expect(() => parseNpy(new Uint8Array([...ok.subarray(0, 10), ...new TextEncoder().encode(fortran.slice(10))]), 'f.npy')).toThrow(/Fortran/);
  });
});

describe('ImportExecutor', () => {
  it('imports a JSON file ({"rows": [...]}) into segments of at most segmentRowsMax rows, readable back', async () => {
    const store = new MemoryObjectStore();
    await store.put('in/a.json', new TextEncoder().encode(JSON.stringify({ rows: Array.from({ length: 250 }, (_, i) => row(i)) })));
    const c = coll();
    const r = await run(executor(store, 100), c, ['in/a.json']);
    expect(r.rows).toBe(250);
    expect(r.records.map((s) => s.numRows)).toEqual([100, 100, 50]);
    const chunk = await readSegment(store, c, r.records[2]!, c.schema.fields);
    const ids = chunk.columns.get('id')!.data as BigInt64Array;
    expect(ids[0]).toBe(200n);
    const names = chunk.columns.get('name')!;
    // Rows whose id is a multiple of 3 have a null name: 201 is, 200 is not.
    expect((names.data as string[])[0]).toBe('n200');
    expect(names.valid?.[1]).toBe(0);
  });

  it('a wrong type deep in a file fails naming the file and the row; nothing is returned to publish', async () => {
    const store = new MemoryObjectStore();
    const rows = Array.from({ length: 500 }, (_, i) => row(i));
    rows[321] = { ...row(321), tags: ['x'] };
    await store.put('in/bad.json', new TextEncoder().encode(JSON.stringify(rows)));
    const msg = await failureOf(run(executor(store, 100), coll(), ['in/bad.json']));
    expect(msg).toMatch(/import file "in\/bad\.json" row 321: field tags expects Int32, got "x"/);
  });

  it('a vector of the wrong dim and a missing non-nullable field are named by row', async () => {
    const store = new MemoryObjectStore();
    const rows = Array.from({ length: 10 }, (_, i) => row(i));
    rows[7] = { ...row(7), vec: [1, 2, 3] };
    await store.put('dim.json', new TextEncoder().encode(JSON.stringify(rows)));
    expect(await failureOf(run(executor(store), coll(), ['dim.json']))).toMatch(
      /"dim\.json" row 7: the dim \(3\) of field vec is not equal to schema dim \(4\)/,
    );
    const missing = Array.from({ length: 10 }, (_, i) => row(i));
    delete missing[4]!['doc'];
    await store.put('missing.json', new TextEncoder().encode(JSON.stringify(missing)));
    expect(await failureOf(run(executor(store), coll(), ['missing.json']))).toMatch(/"missing\.json" row 4: field doc is missing/);
  });

  it('keys outside the schema go to $meta with the dynamic field on, and fail the row with it off', async () => {
    const store = new MemoryObjectStore();
    await store.put('d.json', new TextEncoder().encode(JSON.stringify([{ ...row(1), color: 'red' }])));
    const c = coll(true);
    const r = await run(executor(store), c, ['d.json']);
    const chunk = await readSegment(store, c, r.records[0]!, c.schema.fields);
    expect((chunk.columns.get('$meta')!.data as unknown[])[0]).toEqual({ color: 'red' });
    expect(await failureOf(run(executor(store), coll(false), ['d.json']))).toMatch(/row 0: field color is not in the schema/);
  });

  it('imports Parquet (BulkWriter layout: vectors as lists, JSON as strings) and names a missing column', async () => {
    const store = new MemoryObjectStore();
    const n = 300;
    // BulkWriter's layout: vectors and arrays as 3-level LISTs, JSON as strings.
    const list = (name: string, type: 'FLOAT' | 'INT32'): SchemaElement[] => [
      { name, repetition_type: 'REQUIRED' as const, converted_type: 'LIST' as const, num_children: 1 },
      { name: 'list', repetition_type: 'REPEATED' as const, num_children: 1 },
      { name: 'element', type, repetition_type: 'REQUIRED' as const },
    ];
    const leaf = (name: string, type: 'INT64' | 'BYTE_ARRAY', optional = false): SchemaElement => ({
      name,
      type,
      repetition_type: optional ? ('OPTIONAL' as const) : ('REQUIRED' as const),
      ...(type === 'BYTE_ARRAY' ? { converted_type: 'UTF8' as const } : {}),
    });
    const all: Record<string, { el: SchemaElement[]; data: unknown[] | BigInt64Array }> = {
      id: { el: [leaf('id', 'INT64')], data: BigInt64Array.from({ length: n }, (_, i) => BigInt(i)) },
      vec: { el: list('vec', 'FLOAT'), data: Array.from({ length: n }, (_, i) => [i, 0, 0, 1]) },
      name: { el: [leaf('name', 'BYTE_ARRAY', true)], data: Array.from({ length: n }, (_, i) => (i % 2 ? `p${i}` : null)) },
      tags: { el: list('tags', 'INT32'), data: Array.from({ length: n }, () => [1, 2]) },
      doc: { el: [leaf('doc', 'BYTE_ARRAY')], data: Array.from({ length: n }, (_, i) => JSON.stringify({ i })) },
    };
    const write = (names: string[]) =>
      new Uint8Array(
        parquetWriteBuffer({
          columnData: names.map((k) => ({ name: k, data: all[k]!.data as never })),
          schema: [{ name: 'root', num_children: names.length }, ...names.flatMap((k) => all[k]!.el)],
          rowGroupSize: 128,
        }),
      );
    await store.put('p/a.parquet', write(['id', 'vec', 'name', 'tags', 'doc']));
    const c = coll();
    const r = await run(executor(store), c, ['p/a.parquet']);
    expect(r.rows).toBe(n);
    const chunk = await readSegment(store, c, r.records[0]!, c.schema.fields);
    expect(Array.from((chunk.columns.get('vec')!.data as Float32Array).subarray(4 * 299, 4 * 300))).toEqual([299, 0, 0, 1]);
    expect((chunk.columns.get('doc')!.data as unknown[])[5]).toEqual({ i: 5 });
    await store.put('p/b.parquet', write(['id', 'vec', 'name', 'tags']));
    expect(await failureOf(run(executor(store), c, ['p/b.parquet']))).toMatch(/"p\/b\.parquet" row 0: field doc is missing/);
  });

  it('routes rows of a partition-key collection to the hidden partition of their key, as an insert does', async () => {
    const store = new MemoryObjectStore();
    const base = coll();
    const c: CollectionRecord = {
      ...base,
      partitions: [0, 1, 2, 3].map((i) => ({ id: 50 + i, name: `_default_${i}`, createdTs: '1' })),
      schema: {
        ...base.schema,
        fields: [
          field(100, 'id', 'Int64', { isPrimaryKey: true }),
          field(101, 'vec', 'FloatVector', { dim: 4 }),
          field(102, 'tenant', 'VarChar', { maxLength: 8, isPartitionKey: true }),
        ],
      },
    };
    const rows = Array.from({ length: 200 }, (_, i) => ({ id: i, vec: [0, 0, 0, i], tenant: `t${i % 9}` }));
    await store.put('k.json', new TextEncoder().encode(JSON.stringify(rows)));
    const r = await run(executor(store, 30), c, ['k.json']);
    expect(r.records.reduce((a, s) => a + s.numRows, 0)).toBe(200);
    for (const rec of r.records) {
      expect(rec.numRows).toBeLessThanOrEqual(30);
      const chunk = await readSegment(store, c, rec, c.schema.fields);
      const name = c.partitions.find((p) => p.id === rec.partitionId)!.name;
      for (const t of chunk.columns.get('tenant')!.data as string[]) expect(keyPartitionName(t, 4)).toBe(name);
    }
    expect(new Set(r.records.map((x) => x.partitionId)).size).toBeGreaterThan(1);
  });

  it('imports a NumPy folder (one <field>.npy per field) and refuses files of different lengths', async () => {
    const store = new MemoryObjectStore();
    const c: CollectionRecord = { ...coll(), schema: { ...coll().schema, fields: coll().schema.fields.filter((f) => ['id', 'vec'].includes(f.name)) } };
    const n = 20;
    await store.put('np/id.npy', writeNpy('<i8', [n], new Uint8Array(BigInt64Array.from({ length: n }, (_, i) => BigInt(i * 10)).buffer)));
    await store.put('np/vec.npy', writeNpy('<f4', [n, 4], new Uint8Array(Float32Array.from({ length: n * 4 }, (_, i) => i).buffer)));
    const r = await run(executor(store), c, ['np/']);
    expect(r.rows).toBe(n);
    const chunk = await readSegment(store, c, r.records[0]!, c.schema.fields);
    expect((chunk.columns.get('id')!.data as BigInt64Array)[3]).toBe(30n);
    expect(Array.from((chunk.columns.get('vec')!.data as Float32Array).subarray(4, 8))).toEqual([4, 5, 6, 7]);
    await store.put('np2/id.npy', writeNpy('<i8', [2], new Uint8Array(16)));
    await store.put('np2/vec.npy', writeNpy('<f4', [3, 4], new Uint8Array(48)));
    expect(await failureOf(run(executor(store), c, ['np2']))).toMatch(/different row counts \(id: 2, vec: 3\)/);
    await store.put('np3/vec.npy', writeNpy('<f4', [2, 3], new Uint8Array(24)));
    await store.put('np3/id.npy', writeNpy('<i8', [2], new Uint8Array(16)));
    expect(await failureOf(run(executor(store), c, ['np3/']))).toMatch(/"np3\/" row 0: the dim \(3\) of field vec/);
  });
});

/** Every row a source yields, with the first-row numbers of its batches. */
async function drain(src: { batches(n: number): AsyncIterable<{ firstRow: number; rows: readonly Record<string, unknown>[] }> }, batchRows: number) {
  const rows: Record<string, unknown>[] = [];
  for await (const b of src.batches(batchRows)) {
    expect(b.firstRow).toBe(rows.length);
    rows.push(...b.rows);
  }
  return rows;
}

function csvCell(v: unknown): string {
  const text = typeof v === 'string' ? v : JSON.stringify(v);
  return /[",\n\r]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

describe('streamed JSON reader', () => {
  // Strings with brackets, quotes, escapes and multi-byte characters, split at every kind of boundary.
  const tricky = Array.from({ length: 40 }, (_, i) => ({
    id: i,
    vec: [i, -i - 1, 0.5, 1e-3],
    name: ['a]b', 'c}d', 'q"uo\\te', 'ü€😀', '[{"x":1}]', ''][i % 6],
    doc: { nested: [[i], { k: ']' }], s: '\\"' },
  }));

  it('yields exactly what JSON.parse reads, for both layouts, at every range size', async () => {
    const store = new MemoryObjectStore();
    await store.put('a.json', new TextEncoder().encode(JSON.stringify(tricky, null, 1)));
    await store.put('o.json', new TextEncoder().encode(JSON.stringify({ meta: { rows: [1] }, other: '"rows"', rows: tricky, tail: [1, 2] })));
    for (const chunk of [1, 2, 3, 7, 64, 1000, 1 << 20]) {
      expect(await drain(await jsonStreamSource(store, 'a.json', chunk), 7)).toEqual(tricky);
      expect(await drain(await jsonStreamSource(store, 'o.json', chunk), 16)).toEqual(tricky);
    }
  });

  it('names the row of a malformed or non-object element, and refuses truncated files and other layouts', async () => {
    const store = new MemoryObjectStore();
    const text = JSON.stringify(tricky);
    const put = (k: string, t: string) => store.put(k, new TextEncoder().encode(t));
    const fail = async (k: string, chunk = 5) => {
      try {
        await drain(await jsonStreamSource(store, k, chunk), 8);
      } catch (e) {
        return (e as Error).message;
      }
      throw new Error('expected a failure');
    };
    // Row 37 of 40 is broken (a missing value); rows before it were already handed over in batches.
    const rows = tricky.map((r) => JSON.stringify(r));
    rows[37] = rows[37]!.replace('"id":37', '"id":');
    await put('late.json', `[${rows.join(',')}]`);
    expect(await fail('late.json')).toMatch(/import file "late\.json" row 37: not valid JSON/);
    await put('prim.json', `[${rows.slice(0, 3).join(',')}, 5]`);
    expect(await fail('prim.json')).toMatch(/row 3: a row must be a JSON object, got 5/);
    await put('cut.json', text.slice(0, text.length - 30));
    expect(await fail('cut.json')).toMatch(/not valid JSON: the file ends inside a value/);
    await put('obj.json', '{"data": []}');
    expect(await fail('obj.json')).toMatch(/expected a JSON array of rows/);
    await put('trail.json', '[] x');
    expect(await fail('trail.json')).toMatch(/unexpected "x" after the rows/);
  });
});

describe('CSV reader', () => {
  const header = ['id', 'vec', 'name', 'tags', 'doc'];
  const csvOf = (rows: Record<string, unknown>[], sep = ',') =>
    [header.join(sep), ...rows.map((r) => header.map((h) => (r[h] === null ? '' : csvCell(r[h]))).join(sep))].join('\r\n') + '\r\n';

  it('imports a header + rows file (vectors and arrays as JSON, quoted cells, empty = null) exactly; a sep option', async () => {
    const store = new MemoryObjectStore();
    const rows: Record<string, unknown>[] = Array.from({ length: 130 }, (_, i) => ({ ...row(i), name: i % 3 === 0 ? null : `n,"${i}"` }));
    await store.put('in/a.csv', new TextEncoder().encode(csvOf(rows)));
    const c = coll();
    for (const chunk of [3, 50, 1 << 20]) {
      const got = await drain(await csvSource(store, 'in/a.csv', c, undefined, chunk), 16);
      expect(got).toEqual(rows.map((r) => ({ ...r, id: String(r['id']), doc: JSON.stringify(r['doc']) })));
    }
    const r = await run(executor(store, 100), c, ['in/a.csv']);
    expect(r.records.map((s) => s.numRows)).toEqual([100, 30]);
    const chunk = await readSegment(store, c, r.records[0]!, c.schema.fields);
    expect((chunk.columns.get('name')!.data as string[])[1]).toBe('n,"1"');
    expect(chunk.columns.get('name')!.valid?.[0]).toBe(0);
    expect(Array.from(chunk.columns.get('vec')!.data as Float32Array).slice(4, 8)).toEqual([1, 2, 3, 4]);

    // The same rows with a tab separator, through the job's options.
    await store.put('in/t.csv', new TextEncoder().encode(csvOf(rows.slice(0, 5), '\t')));
    const tabbed = await executor(store).run(
      { ...job(['in/t.csv']), options: { sep: '\t' } },
      c,
      () => Promise.resolve(true),
      new AbortController().signal,
    );
    expect(tabbed.rows).toBe(5);
  });

  it('a bad cell, a short row and an unknown column are named by file and row; nothing is returned to publish', async () => {
    const store = new MemoryObjectStore();
    const rows = Array.from({ length: 300 }, (_, i) => row(i));
    const lines = csvOf(rows).split('\r\n');
    lines[1 + 250] = lines[1 + 250]!.replace(/^250,/, 'x250,');
    await store.put('bad.csv', new TextEncoder().encode(lines.join('\n')));
    expect(await failureOf(run(executor(store), coll(), ['bad.csv']))).toMatch(/import file "bad\.csv" row 250: field id: "x250" is not an integer/);
    const short = csvOf(rows.slice(0, 4)).split('\r\n');
    short[3] = '2,"[1,2,3,4]",n';
    await store.put('short.csv', new TextEncoder().encode(short.join('\n')));
    expect(await failureOf(run(executor(store), coll(), ['short.csv']))).toMatch(/"short\.csv" row 2: 3 cells, the header names 5 columns/);
    await store.put('dim.csv', new TextEncoder().encode(csvOf([row(0), { ...row(1), vec: [1, 2] }])));
    expect(await failureOf(run(executor(store), coll(), ['dim.csv']))).toMatch(/"dim\.csv" row 1: the dim \(2\) of field vec/);
    await store.put('col.csv', new TextEncoder().encode('id,vec,name,tags,doc,color\n'));
    expect(await failureOf(run(executor(store), coll(), ['col.csv']))).toMatch(/column color is not a field of collection/);
    await store.put('open.csv', new TextEncoder().encode('id,vec,name,tags,doc\n1,"[1,2,3,4]'));
    expect(await failureOf(run(executor(store), coll(), ['open.csv']))).toMatch(/row 0: a quoted cell is not closed/);
  });
});

describe('ImportManager', () => {
  interface Harness {
    readonly clock: FakeClock;
    readonly jobs: MetaImportJobStore;
    readonly published: SegmentRecord[][];
    readonly manager: ImportManager;
    readonly c: CollectionRecord;
    setRun(fn: () => Promise<ImportRun>): void;
    setCollection(c: CollectionRecord | undefined): void;
    /** Segment records the catalog holds (a publish adds its records). */
    readonly committed: Map<number, SegmentRecord>;
  }

  function harness(kv = new MemoryMetaKV(), jobsMax = 2): Harness {
    const committed = new Map<number, SegmentRecord>();
    const clock = new FakeClock();
    const jobs = new MetaImportJobStore({ kv });
    const published: SegmentRecord[][] = [];
    let current: CollectionRecord | undefined = coll();
    let runFn: () => Promise<ImportRun> = () => Promise.resolve({ records: [], rows: 0, totalBytes: 0 });
    let id = 500;
    const noop = () => undefined;
    const manager = new ImportManager(
      {
        jobs,
        executor: { run: () => runFn() },
        catalog: {
          collection: () => current,
          segment: (_c, id) => committed.get(id),
          resolveCollection: () => {
            if (!current) throw quiverError('CollectionNotFound', 'collection not found');
            return current;
          },
        },
        ids: { alloc: () => Promise.resolve(++id) },
        tso: { next: () => 42n },
        publish: (_c, r) => {
          published.push([...r]);
          for (const x of r) committed.set(x.id, x);
          return Promise.resolve(current !== undefined);
        },
        clock,
        log: { error: noop, info: noop, warn: noop },
      },
      { intervalMs: 1000, retentionMs: 60_000, attemptsMax: 2, jobsMax },
    );
    return {
      committed,
      clock,
      jobs,
      published,
      manager,
      c: coll(),
      setRun: (fn) => (runFn = fn),
      setCollection: (c) => (current = c),
    };
  }

  const seg = (id: number, numRows: number) => ({ id, numRows }) as SegmentRecord;

  it('Pending → Importing → Completed: publishes once, with every segment, and reports rows and segment ids', async () => {
    const h = harness();
    h.setRun(() => Promise.resolve({ records: [seg(1, 10), seg(2, 5)], rows: 15, totalBytes: 99 }));
    const j = await h.manager.submit({ dbName: 'default', collectionName: 'c11', files: ['a.json'] });
    expect(j.state).toBe('Pending');
    await h.manager.tick();
    const done = await h.manager.get(j.id);
    expect(done).toMatchObject({ state: 'Completed', rows: 15, segmentIds: [1, 2], attempts: 1, readBytes: 99 });
    expect(h.published.map((p) => p.map((s) => s.id))).toEqual([[1, 2]]);
    await h.manager.tick();
    expect(h.published).toHaveLength(1);
  });

  it('a failing run → Failed with the reason, nothing published; terminal jobs go after the retention', async () => {
    const h = harness();
    h.setRun(() => Promise.reject(quiverError('DataInvalid', 'import file "a.json" row 7: bad')));
    const j = await h.manager.submit({ dbName: 'default', collectionName: 'c11', files: ['a.json'] });
    await h.manager.tick();
    const failed = await h.manager.get(j.id);
    expect(failed?.state).toBe('Failed');
    expect(failed?.reason).toMatch(/row 7: bad; nothing of the job was imported/);
    expect(h.published).toHaveLength(0);
    h.clock.advance(59_999);
    await h.manager.tick();
    expect(await h.manager.get(j.id)).toBeDefined();
    h.clock.advance(1);
    await h.manager.tick();
    expect(await h.manager.get(j.id)).toBeUndefined();
  });

  it('refuses unknown file types, absolute keys and unknown partitions at submit', async () => {
    const h = harness();
    await expect(h.manager.submit({ dbName: 'default', collectionName: 'c11', files: ['a.txt'] })).rejects.toThrow(/unsupported file type/);
    await expect(h.manager.submit({ dbName: 'default', collectionName: 'c11', files: ['a.csv'], options: { sep: ';;' } })).rejects.toThrow(
      /import option sep ";;" is invalid/,
    );
    await expect(h.manager.submit({ dbName: 'default', collectionName: 'c11', files: ['a.json'], options: { backup: 'true' } })).rejects.toThrow(
      /import options backup are not supported by Quiver \(supported: sep, nullkey\)/,
    );
    await expect(h.manager.submit({ dbName: 'default', collectionName: 'c11', files: ['../x.json'] })).rejects.toThrow(/relative/);
    await expect(h.manager.submit({ dbName: 'default', collectionName: 'c11', partitionName: 'nope', files: ['a.json'] })).rejects.toThrow(
      /partition not found/,
    );
    await expect(h.manager.submit({ dbName: 'default', collectionName: 'c11', files: [] })).rejects.toThrow(/at least one file/);
  });

  it('(5) a Pending job whose collection was dropped fails without running', async () => {
    const h = harness();
    let ran = false;
    h.setRun(() => {
      ran = true;
      return Promise.resolve({ records: [], rows: 0, totalBytes: 0 });
    });
    const j = await h.manager.submit({ dbName: 'default', collectionName: 'c11', files: ['a.json'] });
    h.setCollection(undefined);
    await h.manager.tick();
    expect(ran).toBe(false);
    expect((await h.manager.get(j.id))?.reason).toMatch(/was dropped before the import ran/);
  });

  it('(3) a job left Importing by a previous process runs again after init; after attemptsMax it fails', async () => {
    const kv = new MemoryMetaKV();
    const first = harness(kv);
    const j = await first.manager.submit({ dbName: 'default', collectionName: 'c11', files: ['a.json'] });
    // The previous process took it to Importing and died.
    expect(await first.jobs.updateInState(j.id, 'Pending', { state: 'Importing', attempts: 1, rows: 300 }, 0)).toBe(true);

    const second = harness(kv);
    await second.manager.init();
    expect(await second.manager.get(j.id)).toMatchObject({ state: 'Pending', rows: 0 });
    // It dies again mid-run.
    expect(await second.jobs.updateInState(j.id, 'Pending', { state: 'Importing', attempts: 2 }, 0)).toBe(true);
    const third = harness(kv);
    await third.manager.init();
    const failed = await third.manager.get(j.id);
    expect(failed?.state).toBe('Failed');
    expect(failed?.reason).toMatch(/interrupted 2 times/);
  });

  it('the state table refuses illegal writes (Completed is final)', async () => {
    const h = harness();
    const j = await h.manager.submit({ dbName: 'default', collectionName: 'c11', files: ['a.json'] });
    await h.manager.tick();
    expect(await h.jobs.updateInState(j.id, 'Pending', { state: 'Importing' }, 0)).toBe(false);
    await expect(h.jobs.updateInState(j.id, 'Completed', { state: 'Importing' }, 0)).rejects.toThrow(/illegal import job transition/);
  });

  it('runs up to jobsMax jobs at once; the rest wait Pending (visible) and run as slots free up', async () => {
    const h = harness(new MemoryMetaKV(), 2);
    const gates: (() => void)[] = [];
    let live = 0;
    let peak = 0;
    let n = 0;
    h.setRun(async () => {
      const id = 10 * ++n;
      live++;
      peak = Math.max(peak, live);
      await new Promise<void>((resolve) => gates.push(resolve));
      live--;
      return { records: [seg(id, 1)], rows: 1, totalBytes: 1 };
    });
    const submitted: ImportJob[] = [];
    for (let i = 0; i < 5; i++) submitted.push(await h.manager.submit({ dbName: 'default', collectionName: 'c11', files: ['a.json'] }));
    await h.manager.loop.tick();
    await new Promise((r) => setImmediate(r));
    const states = async () => Promise.all(submitted.map(async (j) => (await h.manager.get(j.id))!.state));
    expect(await states()).toEqual(['Importing', 'Importing', 'Pending', 'Pending', 'Pending']);
    expect(live).toBe(2);
    // Release the runs one by one until every job is done; never more than two at once.
    const settled = h.manager.tick();
    while ((await states()).some((s) => s !== 'Completed')) {
      await new Promise((r) => setTimeout(r, 5));
      gates.shift()?.();
    }
    await settled;
    expect(peak).toBe(2);
    expect(h.published).toHaveLength(5);
    expect(new Set(h.published.flat().map((s) => s.id)).size).toBe(5);
  });

  it('(3) a job whose segments were committed before the process died is Completed at init, not run again', async () => {
    const kv = new MemoryMetaKV();
    const first = harness(kv);
    const j = await first.manager.submit({ dbName: 'default', collectionName: 'c11', files: ['a.json'] });
    // The previous process recorded the ids, committed the segments, and died before the Completed write.
    expect(await first.jobs.updateInState(j.id, 'Pending', { state: 'Importing', attempts: 1, segmentIds: [7, 8], totalBytes: 40 }, 0)).toBe(true);
    const second = harness(kv);
    second.committed.set(7, seg(7, 30));
    second.committed.set(8, seg(8, 12));
    let ran = false;
    second.setRun(() => {
      ran = true;
      return Promise.resolve({ records: [seg(9, 42)], rows: 42, totalBytes: 40 });
    });
    await second.manager.init();
    await second.manager.tick();
    expect(await second.manager.get(j.id)).toMatchObject({ state: 'Completed', rows: 42, segmentIds: [7, 8] });
    expect(ran).toBe(false);
    expect(second.published).toHaveLength(0);

    // Ids recorded but the commit never happened: the job runs again from scratch with new segments.
    const k = await first.manager.submit({ dbName: 'default', collectionName: 'c11', files: ['a.json'] });
    expect(await first.jobs.updateInState(k.id, 'Pending', { state: 'Importing', attempts: 1, segmentIds: [70] }, 0)).toBe(true);
    const third = harness(kv);
    third.setRun(() => Promise.resolve({ records: [seg(71, 5)], rows: 5, totalBytes: 1 }));
    await third.manager.init();
    await third.manager.tick();
    expect(await third.manager.get(k.id)).toMatchObject({ state: 'Completed', rows: 5, segmentIds: [71], attempts: 2 });
  });
});
