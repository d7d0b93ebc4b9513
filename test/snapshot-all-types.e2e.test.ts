import WKTReader from 'jsts/org/locationtech/jts/io/WKTReader.js';
import WKTWriter from 'jsts/org/locationtech/jts/io/WKTWriter.js';
import { afterEach, describe, expect, it } from 'vitest';
import { DataType, ErrorCode, FunctionType, type MilvusClient, type RowData } from '@zilliz/milvus2-sdk-node';
import { seededRandom } from '../src/testing/index.js';
import { startTestServer, waitRestore, type TestServer } from './helpers.js';

/**
 * Issue 11: a snapshot of a collection holding every field type Quiver supports, taken over flushed
 * and growing rows with deletes, restored into a new collection and compared row by row (query '*')
 * against the rows expected at snapshot time, computed here from what was written, never read back
 * from the source; then again after a restart on the same data dir.
 */

const SRC = 'every_type';
const DST = 'every_type_restored';
/* eslint-disable @typescript-eslint/no-explicit-any */
const reader = new (WKTReader as any)();
const writer = new (WKTWriter as any)();

type Sparse = Record<string, number>;

/** What was written for one row; `undefined` means "not sent" (the default applies), `null` a null. */
interface Row {
  id: number;
  b: boolean | null;
  i8: number;
  i16: number | undefined;
  i32: number;
  i64: number;
  f: number;
  d: number | null;
  text: string;
  js: Record<string, unknown> | null;
  arr: number[] | null;
  tags: string[];
  /** Arrays of the other element types (Float arrive from the SDK as a Float32Array per row). */
  fl: number[];
  dbl: number[] | null;
  bools: boolean[];
  big: number[];
  geo: string | null;
  /** Epoch ms (whole seconds), or undefined: the field default applies. */
  ts: number | undefined;
  fv: number[];
  bv: number[];
  h16: number[];
  b16: number[];
  i8v: number[];
  sp: Sparse;
  /** A nullable vector. */
  nfv: number[] | null;
  /** A dynamic-field key, on some rows only. */
  color: string | undefined;
  /** An Array of Struct (nullable): label, a wide int64 and a 2-d embedding per element. */
  st: { label: string; w: number; e: number[] }[] | null;
}

const I16_DEFAULT = 7;
const TS_DEFAULT = '2025-01-01T00:00:00Z';
const WORDS = ['river', 'stone', 'cloud', 'forest', 'light', 'storm', 'ocean', 'field'];
const pad = (n: number): string => String(n).padStart(2, '0');

/** The instant `ms` written with a fixed offset of `offMin` minutes (an independent formatter). */
function withOffset(ms: number, offMin: number): string {
  const d = new Date(ms + offMin * 60_000);
  const sign = offMin < 0 ? '-' : '+';
  const abs = Math.abs(offMin);
  const date = `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())}T${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}`;
  return offMin === 0 ? `${date}Z` : `${date}${sign}${pad(Math.floor(abs / 60))}:${pad(abs % 60)}`;
}

const rnd = seededRandom(23);
// Exact in float32, float16 and bfloat16. Never -0: the SDK's dynamic-row clone goes through JSON, which
// writes -0 as 0 before anything reaches the server.
const quarter = (): number => Math.round((rnd() * 2 - 1) * 16) / 4 || 0;
const byte = (): number => Math.floor(rnd() * 256);
const int = (lo: number, hi: number): number => lo + Math.floor(rnd() * (hi - lo + 1));

function makeRow(id: number, salt = ''): Row {
  const sp: Sparse = {};
  const nnz = 2 + int(0, 3);
  while (Object.keys(sp).length < nnz) sp[String(int(0, 1000))] = Math.max(0.25, Math.abs(quarter()));
  const x = int(0, 80);
  const y = int(0, 80);
  return {
    id,
    b: id % 5 === 0 ? null : rnd() < 0.5,
    i8: int(-128, 127),
    i16: id % 4 === 0 ? undefined : int(-32768, 32767),
    i32: int(-(2 ** 31), 2 ** 31 - 1),
    // Beyond 2^32 but inside the safe-integer range, so the comparison is exact in JS numbers.
    i64: int(-(2 ** 52), 2 ** 52),
    f: quarter(),
    d: id % 6 === 1 ? null : rnd() * 1e6 - 5e5,
    text: `${salt}${Array.from({ length: int(2, 6) }, () => WORDS[int(0, WORDS.length - 1)]).join(' ')}`,
    js: id % 7 === 2 ? null : { n: id, tag: `t${id % 3}`, nested: { ok: id % 2 === 0, list: [id, 'x'] } },
    arr: id % 8 === 3 ? null : Array.from({ length: int(0, 4) }, () => int(-1000, 1000)),
    tags: Array.from({ length: int(0, 3) }, () => WORDS[int(0, WORDS.length - 1)]!),
    fl: Array.from({ length: int(0, 4) }, quarter),
    dbl: id % 7 === 5 ? null : Array.from({ length: int(0, 3) }, () => rnd() * 1e9 - 5e8),
    bools: Array.from({ length: int(0, 3) }, () => rnd() < 0.5),
    big: Array.from({ length: int(0, 3) }, () => int(-(2 ** 52), 2 ** 52)),
    geo: id % 9 === 4 ? null : id % 2 === 0 ? `POINT(${x} ${y})` : `POLYGON((${x} ${y}, ${x + 2} ${y}, ${x + 2} ${y + 3}, ${x} ${y + 3}, ${x} ${y}))`,
    ts: id % 3 === 0 ? undefined : Date.parse('2025-03-01T00:00:00Z') + int(0, 86_400 * 90) * 1000,
    fv: Array.from({ length: 4 }, quarter),
    bv: [byte(), byte()],
    h16: Array.from({ length: 4 }, quarter),
    b16: Array.from({ length: 4 }, quarter),
    i8v: Array.from({ length: 4 }, () => int(-128, 127)),
    sp,
    nfv: id % 4 === 1 ? null : [quarter(), quarter()],
    color: id % 2 === 0 ? `c${id % 5}` : undefined,
    st:
      id % 10 === 6
        ? null
        : Array.from({ length: int(0, 3) }, (_, k) => ({ label: `${salt}s${id}.${k}`, w: int(-(2 ** 52), 2 ** 52), e: [quarter(), quarter()] })),
  };
}

/** The SDK row: timestamps in varied zones, no key where the default applies, dynamic keys at top level. */
function toInsert(r: Row): RowData {
  const out: Record<string, unknown> = {
    id: r.id,
    b: r.b,
    i8: r.i8,
    i32: r.i32,
    i64: r.i64,
    f: r.f,
    d: r.d,
    text: r.text,
    js: r.js,
    arr: r.arr,
    tags: r.tags,
    fl: r.fl,
    dbl: r.dbl,
    bools: r.bools,
    big: r.big,
    geo: r.geo,
    fv: r.fv,
    bv: r.bv,
    // Numbers only: with the dynamic field enabled the SDK deep-clones each row (buildDynamicRow), which
    // turns the Buffer form (f32ArrayToF16Bytes) into a plain object it then cannot send. The byte form is
    // covered by test/vectypes.e2e.test.ts (no dynamic field there).
    h16: r.h16,
    b16: r.b16,
    i8v: r.i8v,
    sp: r.sp,
    nfv: r.nfv,
    st: r.st,
  };
  if (r.i16 !== undefined) out['i16'] = r.i16;
  if (r.ts !== undefined) out['ts'] = withOffset(r.ts, [0, 480, -300][r.id % 3]!);
  if (r.color !== undefined) out['color'] = r.color;
  return out as RowData;
}

/** The row as query '*' must return it, in a normalised shape (see `normalise`). */
function expected(r: Row): Record<string, unknown> {
  return {
    id: r.id,
    b: r.b,
    i8: r.i8,
    i16: r.i16 ?? I16_DEFAULT,
    i32: r.i32,
    i64: r.i64,
    f: r.f,
    d: r.d,
    text: r.text,
    js: r.js,
    arr: r.arr,
    tags: r.tags,
    fl: r.fl,
    dbl: r.dbl,
    bools: r.bools,
    big: r.big,
    geo: r.geo === null ? null : writer.write(reader.read(r.geo)),
    ts: r.ts === undefined ? TS_DEFAULT : withOffset(r.ts, 0),
    fv: r.fv,
    bv: r.bv,
    h16: r.h16,
    b16: r.b16,
    i8v: r.i8v,
    sp: sortedSparse(r.sp),
    nfv: r.nfv,
    st: r.st,
    $meta: r.color === undefined ? {} : { color: r.color },
  };
}

function sortedSparse(s: Sparse): [number, number][] {
  return Object.entries(s)
    .map(([k, v]): [number, number] => [Number(k), v])
    .sort((a, b) => a[0] - b[0]);
}

/** Query output to plain JS: int64s as numbers, typed arrays as arrays, sparse as sorted pairs. */
function normalise(got: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...got };
  out['id'] = Number(got['id']);
  out['i64'] = Number(got['i64']);
  for (const k of ['fv', 'bv', 'h16', 'b16', 'i8v']) out[k] = Array.from(got[k] as ArrayLike<number>);
  out['sp'] = sortedSparse(got['sp'] as Sparse);
  if (got['nfv'] !== null) out['nfv'] = Array.from(got['nfv'] as number[]);
  if (got['arr'] !== null) out['arr'] = Array.from(got['arr'] as number[]).map(Number);
  out['fl'] = Array.from(got['fl'] as number[]);
  if (got['dbl'] !== null) out['dbl'] = Array.from(got['dbl'] as number[]);
  out['big'] = Array.from(got['big'] as (number | string)[]).map(Number);
  const st = got['st'] as Record<string, unknown>[] | null;
  out['st'] = st === null ? null : st.map((el) => ({ label: el['label'], w: Number(el['w']), e: Array.from(el['e'] as number[]) }));
  // The dynamic keys come back under $meta; a row without any has an empty (or absent) $meta.
  out['$meta'] = got['$meta'] ?? {};
  return out;
}

async function checkRows(c: MilvusClient, coll: string, model: ReadonlyMap<number, Row>): Promise<void> {
  const q = await c.query({ collection_name: coll, filter: 'id >= 0', output_fields: ['*'], limit: 16384 });
  expect(q.status.error_code, q.status.reason).toBe(ErrorCode.SUCCESS);
  const got = q.data.map(normalise).sort((a, b) => (a['id'] as number) - (b['id'] as number));
  const want = [...model.values()].sort((a, b) => a.id - b.id).map(expected);
  expect(got.map((r) => r['id'])).toEqual(want.map((r) => r['id']));
  for (let i = 0; i < want.length; i++) {
    const w = want[i]!;
    const g = got[i]!;
    // The BM25 output is derived from `text`, never written: whatever form it takes in the output,
    // it must not be compared as data (the text itself is).
    delete g['sparse_bm25'];
    expect(Object.keys(g).sort(), `fields of row ${w['id']}`).toEqual(Object.keys(w).sort());
    // Exact, doubles included: every value was chosen to be representable in its column type.
    for (const k of Object.keys(w)) expect(g[k], `${k} of row ${w['id']}`).toEqual(w[k]);
  }
  // The BM25 function output was carried over too: a text search finds exactly the rows with the word.
  const res = await c.search({ collection_name: coll, anns_field: 'sparse_bm25', data: ['storm'], limit: 1000, output_fields: ['id'] });
  expect(res.status.error_code, res.status.reason).toBe(ErrorCode.SUCCESS);
  const hits = (res.results as unknown as { id: string }[]).map((h) => Number(h.id)).sort((a, b) => a - b);
  const withWord = [...model.values()]
    .filter((r) => r.text.split(' ').includes('storm'))
    .map((r) => r.id)
    .sort((a, b) => a - b);
  expect(withWord.length).toBeGreaterThan(0);
  expect(hits).toEqual(withWord);
}

async function createEveryType(c: MilvusClient): Promise<void> {
  const res = await c.createCollection({
    collection_name: SRC,
    fields: [
      { name: 'id', data_type: DataType.Int64, is_primary_key: true, autoID: false },
      { name: 'b', data_type: DataType.Bool, nullable: true },
      { name: 'i8', data_type: DataType.Int8 },
      { name: 'i16', data_type: DataType.Int16, default_value: I16_DEFAULT },
      { name: 'i32', data_type: DataType.Int32 },
      { name: 'i64', data_type: DataType.Int64 },
      { name: 'f', data_type: DataType.Float },
      { name: 'd', data_type: DataType.Double, nullable: true },
      { name: 'text', data_type: DataType.VarChar, max_length: 200, enable_analyzer: true, analyzer_params: { type: 'english' } },
      { name: 'sparse_bm25', data_type: DataType.SparseFloatVector },
      { name: 'js', data_type: DataType.JSON, nullable: true },
      { name: 'arr', data_type: DataType.Array, element_type: DataType.Int32, max_capacity: 4, nullable: true },
      { name: 'tags', data_type: DataType.Array, element_type: DataType.VarChar, max_capacity: 3, max_length: 16 },
      { name: 'fl', data_type: DataType.Array, element_type: DataType.Float, max_capacity: 4 },
      { name: 'dbl', data_type: DataType.Array, element_type: DataType.Double, max_capacity: 3, nullable: true },
      { name: 'bools', data_type: DataType.Array, element_type: DataType.Bool, max_capacity: 3 },
      { name: 'big', data_type: DataType.Array, element_type: DataType.Int64, max_capacity: 3 },
      { name: 'geo', data_type: DataType.Geometry, nullable: true },
      { name: 'ts', data_type: DataType.Timestamptz, default_value: TS_DEFAULT },
      { name: 'fv', data_type: DataType.FloatVector, dim: 4 },
      { name: 'bv', data_type: DataType.BinaryVector, dim: 16 },
      { name: 'h16', data_type: DataType.Float16Vector, dim: 4 },
      { name: 'b16', data_type: DataType.BFloat16Vector, dim: 4 },
      { name: 'i8v', data_type: DataType.Int8Vector, dim: 4 },
      { name: 'sp', data_type: DataType.SparseFloatVector },
      { name: 'nfv', data_type: DataType.FloatVector, dim: 2, nullable: true },
      {
        name: 'st',
        data_type: DataType.Array,
        element_type: DataType.Struct,
        max_capacity: 3,
        nullable: true,
        fields: [
          { name: 'label', data_type: DataType.VarChar, max_length: 32 },
          { name: 'w', data_type: DataType.Int64 },
          { name: 'e', data_type: DataType.FloatVector, dim: 2 },
        ],
      },
    ],
    functions: [{ name: 'text_bm25', type: FunctionType.BM25, input_field_names: ['text'], output_field_names: ['sparse_bm25'], params: {} }],
    enable_dynamic_field: true,
  } as any);
  expect(res.error_code, res.reason).toBe(ErrorCode.SUCCESS);
}

const INDEXES: { field: string; index_type: string; metric_type: string; params?: Record<string, unknown> }[] = [
  { field: 'fv', index_type: 'HNSW', metric_type: 'L2', params: { M: 8, efConstruction: 32 } },
  { field: 'bv', index_type: 'BIN_FLAT', metric_type: 'HAMMING' },
  { field: 'h16', index_type: 'FLAT', metric_type: 'COSINE' },
  { field: 'b16', index_type: 'FLAT', metric_type: 'IP' },
  { field: 'i8v', index_type: 'HNSW', metric_type: 'L2', params: { M: 8, efConstruction: 32 } },
  { field: 'sp', index_type: 'SPARSE_INVERTED_INDEX', metric_type: 'IP' },
  { field: 'nfv', index_type: 'FLAT', metric_type: 'L2' },
  { field: 'sparse_bm25', index_type: 'SPARSE_INVERTED_INDEX', metric_type: 'BM25' },
];

describe('snapshot and restore of a collection with every field type', () => {
  let t: TestServer | undefined;
  afterEach(async () => {
    await t?.close();
    t = undefined;
  });

  it('restores exactly the rows at snapshot time, field by field, and again after a restart', async () => {
    t = await startTestServer({ autoCompaction: false });
    let c = t.client;
    await createEveryType(c);
    const model = new Map<number, Row>();
    const insert = async (rows: Row[], upsert = false): Promise<void> => {
      const r = upsert
        ? await c.upsert({ collection_name: SRC, data: rows.map(toInsert) })
        : await c.insert({ collection_name: SRC, data: rows.map(toInsert) });
      expect(r.status.error_code, r.status.reason).toBe(ErrorCode.SUCCESS);
      for (const row of rows) model.set(row.id, row);
    };
    const remove = async (ids: number[]): Promise<void> => {
      const r = await c.delete({ collection_name: SRC, ids });
      expect(r.status.error_code, r.status.reason).toBe(ErrorCode.SUCCESS);
      for (const id of ids) model.delete(id);
    };

    // Flushed rows, growing rows, deletes in both.
    await insert(Array.from({ length: 60 }, (_, i) => makeRow(i)));
    await c.flushSync({ collection_names: [SRC] });
    await insert(Array.from({ length: 40 }, (_, i) => makeRow(60 + i)));
    await remove([3, 10, 61, 62]);
    for (const ix of INDEXES) {
      const r = await c.createIndex({
        collection_name: SRC,
        field_name: ix.field,
        index_type: ix.index_type,
        metric_type: ix.metric_type,
        params: ix.params ?? {},
      });
      expect(r.error_code, `${ix.field}: ${r.reason}`).toBe(ErrorCode.SUCCESS);
    }
    const engine = t.server.engine;
    await engine.waitForIndexes(engine.catalog.resolveCollection('default', SRC).id);

    const atSnapshot = new Map(model);
    const snap = await c.createSnapshot({ collection_name: SRC, snapshot_name: 'all_types' });
    expect(snap.error_code, snap.reason).toBe(ErrorCode.SUCCESS);

    // Writes after the snapshot: none of them may reach the restored collection.
    await insert(Array.from({ length: 10 }, (_, i) => makeRow(100 + i)));
    await insert([makeRow(5, 'changed '), makeRow(70, 'changed ')], true);
    await remove([7, 65]);

    const r = await c.restoreSnapshot({ snapshot_name: 'all_types', source_collection_name: SRC, target_collection_name: DST });
    expect(r.status.error_code, r.status.reason).toBe(ErrorCode.SUCCESS);
    expect((await waitRestore(c, r.job_id)).state).toBe('RestoreSnapshotCompleted');

    const src = await c.describeCollection({ collection_name: SRC });
    const dst = await c.describeCollection({ collection_name: DST });
    expect(dst.schema.enable_dynamic_field).toBe(true);
    const shape = (fs: typeof src.schema.fields) => fs.map((f) => [f.name, f.data_type, f.element_type, f.nullable, f.default_value, f.type_params]);
    expect(shape(dst.schema.fields)).toEqual(shape(src.schema.fields));
    // The struct array's sub-fields too (names, types, ids).
    const subs = (fs: typeof src.schema.fields) => (fs.find((f) => f.name === 'st') as any).fields.map((f: any) => [f.name, f.data_type, f.fieldID, f.dim]);
    expect(subs(dst.schema.fields)).toEqual(subs(src.schema.fields));
    expect(subs(src.schema.fields).map((f: unknown[]) => f[1])).toEqual(['VarChar', 'Int64', 'FloatVector']);
    expect(dst.schema.functions.map((f) => [f.name, f.input_field_names, f.output_field_names])).toEqual([['text_bm25', ['text'], ['sparse_bm25']]]);

    await c.loadCollectionSync({ collection_name: SRC });
    await c.loadCollectionSync({ collection_name: DST });
    await checkRows(c, DST, atSnapshot);
    // The source holds the later writes (so the two models above really differ).
    await checkRows(c, SRC, model);

    t = await t.restart();
    c = t.client;
    await c.loadCollectionSync({ collection_name: DST });
    await checkRows(c, DST, atSnapshot);
    // The source's later writes came back from the WAL (the upsert's Bool column is all null).
    await c.loadCollectionSync({ collection_name: SRC });
    await checkRows(c, SRC, model);
  });
});
