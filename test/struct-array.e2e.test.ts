import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DataType, ErrorCode } from '@zilliz/milvus2-sdk-node';
import { startTestServer, until, type TestServer } from './helpers.js';

/**
 * Array of Struct fields through the official SDK, as its users write them: a `fields` entry with
 * data_type Array, element_type Struct and sub-fields (scalars and a FloatVector "embedding list").
 * Every row read back must equal the row inserted, across flush (Arrow binlogs), restart (WAL replay
 * and binlog load) and null rows.
 */

const DIM = 4;

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

interface Chunk {
  text: string;
  n: number;
  big: string;
  score: number;
  flag: boolean;
  emb: number[];
}

function makeRows(count: number, start: number, seed: number, withNulls: boolean): { id: number; vec: number[]; chunks: Chunk[] | null }[] {
  const r = rng(seed);
  return Array.from({ length: count }, (_, i) => {
    const id = start + i;
    const len = Math.floor(r() * 4); // 0..3 elements
    const chunks =
      withNulls && id % 5 === 0
        ? null
        : Array.from({ length: len }, (_, k) => ({
            text: `row${id}-el${k}-é`,
            n: Math.floor(r() * 200) - 100,
            big: String(BigInt(id) * 10_000_000_000n + BigInt(k)),
            score: Math.round(r() * 1000) / 8, // exact in float32
            flag: r() < 0.5,
            emb: Array.from({ length: DIM }, () => Math.round(r() * 64) / 16),
          }));
    return { id, vec: Array.from({ length: DIM }, () => r()), chunks };
  });
}

const structField = (nullable: boolean) => ({
  name: 'chunks',
  data_type: DataType.Array,
  element_type: DataType.Struct,
  max_capacity: 3,
  nullable,
  fields: [
    { name: 'text', data_type: DataType.VarChar, max_length: 64 },
    { name: 'n', data_type: DataType.Int16 },
    { name: 'big', data_type: DataType.Int64 },
    { name: 'score', data_type: DataType.Float },
    { name: 'flag', data_type: DataType.Bool },
    { name: 'emb', data_type: DataType.FloatVector, dim: DIM },
  ],
});

function schema(nullable: boolean, extra: Record<string, unknown>[] = []) {
  return [
    { name: 'id', data_type: DataType.Int64, is_primary_key: true },
    { name: 'vec', data_type: DataType.FloatVector, dim: DIM },
    structField(nullable),
    ...extra,
  ];
}

function normalise(row: Record<string, unknown>): unknown {
  const chunks = row['chunks'] as Record<string, unknown>[] | null;
  return {
    id: String(row['id']),
    chunks: chunks === null ? null : chunks.map((c) => ({ ...c, big: String(c['big']), emb: Array.from(c['emb'] as number[]) })),
  };
}

describe('Array of Struct fields', () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer();
  });
  afterAll(async () => {
    await t.close();
  });

  it('creates, describes, inserts and queries struct arrays (growing, flushed, after restart)', async () => {
    const c = t.client;
    const name = 'structs';
    const created = await c.createCollection({ collection_name: name, fields: schema(true) as never });
    expect(created.error_code).toBe(ErrorCode.SUCCESS);
    const desc = await c.describeCollection({ collection_name: name });
    expect(desc.status.error_code).toBe(ErrorCode.SUCCESS);
    const sf = desc.schema.fields.find((f) => f.name === 'chunks') as unknown as Record<string, unknown> & { fields: Record<string, unknown>[] };
    expect(sf['data_type']).toBe('Array');
    expect(sf['element_type']).toBe('Struct');
    expect(Number(sf['max_capacity'])).toBe(3);
    expect(sf.fields.map((f) => [f['name'], f['data_type']])).toEqual([
      ['text', 'VarChar'],
      ['n', 'Int16'],
      ['big', 'Int64'],
      ['score', 'Float'],
      ['flag', 'Bool'],
      ['emb', 'FloatVector'],
    ]);
    expect(Number(sf.fields[5]!['dim'])).toBe(DIM);
    // Sub-fields have their own ids, distinct from every other field's.
    const ids = [...desc.schema.fields.map((f) => f.fieldID), ...sf.fields.map((f) => f['fieldID'])].map(String);
    expect(new Set(ids).size).toBe(ids.length);

    const first = makeRows(40, 0, 7, true);
    const second = makeRows(30, 40, 8, true);
    expect((await c.insert({ collection_name: name, data: first })).status.error_code).toBe(ErrorCode.SUCCESS);
    await c.createIndex({ collection_name: name, field_name: 'vec', index_type: 'FLAT', metric_type: 'L2' });
    await c.loadCollection({ collection_name: name });
    await c.flush({ collection_names: [name] });
    expect((await c.insert({ collection_name: name, data: second })).status.error_code).toBe(ErrorCode.SUCCESS);
    const expected = [...first, ...second].map((r) => normalise(r));

    const readAll = async (client = c) => {
      const res = await client.query({ collection_name: name, filter: 'id >= 0', output_fields: ['id', 'chunks'], limit: 1000 });
      expect(res.status.error_code).toBe(ErrorCode.SUCCESS);
      return res.data.map((r) => normalise(r)).sort((a, b) => Number((a as { id: string }).id) - Number((b as { id: string }).id));
    };
    expect(await readAll()).toEqual(expected);
    const got = await c.get({ collection_name: name, ids: [3, 5, 41], output_fields: ['chunks'] });
    expect(got.data.map((r) => normalise(r))).toEqual([expected[3], expected[5], expected[41]]);

    // Search results carry struct fields as output fields too.
    const s = await c.search({ collection_name: name, data: [first[7]!.vec], limit: 1, output_fields: ['chunks'] });
    expect(s.results[0]!.id).toBe('7');
    expect(normalise(s.results[0] as never)).toEqual({ ...(expected[7] as object), id: '7' });

    // Upsert replaces a row's struct array.
    const replaced = { id: 3, vec: first[3]!.vec, chunks: [{ text: 'new', n: 1, big: '-9223372036854775808', score: 0.5, flag: true, emb: [1, 2, 3, 4] }] };
    expect((await c.upsert({ collection_name: name, data: [replaced] })).status.error_code).toBe(ErrorCode.SUCCESS);
    expected[3] = normalise(replaced);
    expect(await readAll()).toEqual(expected);

    // Compaction merges the flushed segments (the upsert's delete included) and keeps every struct row.
    await c.flush({ collection_names: [name] });
    const compacted = await c.compact({ collection_name: name });
    expect(compacted.status.error_code).toBe(ErrorCode.SUCCESS);
    await until(async () => String((await c.getCompactionState({ compactionID: compacted.compactionID })).state) === 'Completed');
    const plans = await c.getCompactionStateWithPlans({ compactionID: compacted.compactionID });
    expect(plans.mergeInfos.length).toBeGreaterThan(0);
    expect(await readAll()).toEqual(expected);

    // Embedding-list search over chunks[emb] (MAX_SIM), against a reference computed here from the rows.
    const r = rng(99);
    const qs = [Array.from({ length: 2 }, () => Array.from({ length: DIM }, () => r() * 2 - 1)), [Array.from({ length: DIM }, () => r() * 2 - 1)]];
    const rowsNow = [...first, ...second].map((row) => (row.id === 3 ? replaced : row));
    const cos = (a: number[], b: number[]) => {
      const d = a.reduce((s, x, j) => s + x * b[j]!, 0);
      const n = Math.sqrt(a.reduce((s, x) => s + x * x, 0)) * Math.sqrt(b.reduce((s, x) => s + x * x, 0));
      return n === 0 ? 0 : d / n;
    };
    const ip = (a: number[], b: number[]) => a.reduce((s, x, j) => s + x * b[j]!, 0);
    const l2 = (a: number[], b: number[]) => a.reduce((s, x, j) => s + (x - b[j]!) ** 2, 0);
    for (const [metric, sim, higher] of [
      ['MAX_SIM_COSINE', cos, true],
      ['MAX_SIM_IP', ip, true],
      ['MAX_SIM_L2', l2, false],
    ] as const) {
      const res = await c.search({
        collection_name: name,
        anns_field: 'chunks[emb]',
        data: qs,
        limit: 5,
        metric_type: metric,
        filter: 'id < 60',
        output_fields: ['id', 'chunks'],
      });
      expect(res.status.error_code, res.status.reason).toBe(ErrorCode.SUCCESS);
      const lists = res.results as unknown as { id: string; score: number; chunks: unknown }[][];
      qs.forEach((q, qi) => {
        const want = rowsNow
          .filter((row) => row.id < 60 && row.chunks !== null && row.chunks.length > 0)
          .map((row) => ({
            id: row.id,
            score: q.reduce((sum, qv) => sum + (higher ? Math.max : Math.min)(...row.chunks!.map((el) => sim(qv, el.emb))), 0),
          }))
          .sort((a, b) => (higher ? b.score - a.score : a.score - b.score) || a.id - b.id)
          .slice(0, 5);
        expect(
          lists[qi]!.map((h) => Number(h.id)),
          `${metric} query ${qi}`,
        ).toEqual(want.map((w) => w.id));
        lists[qi]!.forEach((h, i) => expect(h.score).toBeCloseTo(want[i]!.score, 4));
        expect(normalise(lists[qi]![0] as never)).toEqual(expected.find((e) => (e as { id: string }).id === String(want[0]!.id)));
      });
    }

    // Not supported yet: each answers an error naming the struct field (and the server stays up).
    const refused = async (p: Promise<unknown>): Promise<string> => {
      try {
        const res = (await p) as { status?: { error_code: unknown; reason: string }; error_code?: unknown; reason?: string };
        const st = res.status ?? (res as { error_code: unknown; reason: string });
        expect(st.error_code).not.toBe(ErrorCode.SUCCESS);
        return st.reason;
      } catch (e) {
        return String((e as { reason?: string }).reason ?? (e as Error).message);
      }
    };
    expect(await refused(c.createIndex({ collection_name: name, field_name: 'chunks[emb]', index_type: 'HNSW', metric_type: 'MAX_SIM_COSINE' }))).toMatch(
      /an index on chunks\[emb\].*not supported/,
    );
    expect(await refused(c.query({ collection_name: name, filter: 'chunks[n] > 0', output_fields: ['id'] }))).toMatch(/chunks/);
    expect(await refused(c.search({ collection_name: name, anns_field: 'chunks[emb]', data: qs, limit: 3, group_by_field: 'id' } as never))).toMatch(
      /group_by_field is not supported with an embedding-list search on chunks\[emb\]/,
    );
    expect(await refused(c.query({ collection_name: name, filter: 'id >= 0', output_fields: ['chunks[text]'] }))).toMatch(/chunks\[text\]/);
    expect(await refused(c.createIndex({ collection_name: name, field_name: 'chunks', index_type: 'INVERTED' }))).toMatch(/on chunks.*not supported/);

    t = await t.restart();
    await t.client.loadCollection({ collection_name: name });
    expect(await readAll(t.client)).toEqual(expected);
  });

  it('refuses bad struct schemas and bad rows with the sub-field named', async () => {
    const c = t.client;
    const bad = async (fields: unknown[]): Promise<string> => {
      try {
        const res = await c.createCollection({ collection_name: 'bad_struct', fields: fields as never });
        expect(res.error_code).not.toBe(ErrorCode.SUCCESS);
        return res.reason;
      } catch (e) {
        // SDK 3.0.6 throws the Status of a refused createCollection.
        return String((e as { reason?: string }).reason ?? (e as Error).message);
      }
    };
    const withSub = (sub: Record<string, unknown>, more: Record<string, unknown> = {}) => [
      { name: 'id', data_type: DataType.Int64, is_primary_key: true },
      { name: 'vec', data_type: DataType.FloatVector, dim: DIM },
      { ...structField(false), ...more, fields: [{ name: 'ok', data_type: DataType.Int32 }, sub] },
    ];
    expect(await bad(withSub({ name: 'j', data_type: DataType.JSON }))).toMatch(/chunks\[j\]/);
    expect(await bad(withSub({ name: 'e', data_type: DataType.FloatVector, dim: 1 }))).toMatch(/dim 1 .*chunks\[e\]/);
    expect(await bad(withSub({ name: 'b', data_type: DataType.BinaryVector, dim: 16 }))).toMatch(/BinaryVector.*chunks\[b\]/);
    expect(await bad(withSub({ name: 'ok', data_type: DataType.Int8 }))).toMatch(/duplicated sub-field name ok/);
    expect(await bad(withSub({ name: 'x', data_type: DataType.Int8 }, { max_capacity: 5000 }))).toMatch(/max_capacity 5000/);

    const name = 'struct_rows';
    expect((await c.createCollection({ collection_name: name, fields: schema(false) as never })).error_code).toBe(ErrorCode.SUCCESS);
    const good = makeRows(3, 0, 1, false);
    const el = { text: 'a', n: 1, big: '1', score: 1, flag: false, emb: [0, 0, 0, 0] };
    const tryInsert = async (chunks: unknown): Promise<string> => {
      try {
        const res = await c.insert({ collection_name: name, data: [...good, { id: 99, vec: [0, 0, 0, 0], chunks }] as never });
        expect(res.status.error_code).not.toBe(ErrorCode.SUCCESS);
        return res.status.reason;
      } catch (e) {
        return (e as Error).message;
      }
    };
    expect(await tryInsert([el, el, el, el])).toMatch(/array length 4 of struct field chunks at row 3 exceeds max capacity 3/);
    expect(await tryInsert([{ ...el, emb: [1, 2, 3] }])).toMatch(/chunks\[emb\] at row 3/);
    expect(await tryInsert([{ ...el, n: 40000 }])).toMatch(/40000.*chunks\[n\]/);
    expect(await tryInsert([{ ...el, text: 'x'.repeat(65) }])).toMatch(/chunks\[text\]/);
    expect(await tryInsert(null)).toMatch(/chunks/);
    // Nothing of the refused batches was written.
    await c.createIndex({ collection_name: name, field_name: 'vec', index_type: 'FLAT', metric_type: 'L2' });
    await c.loadCollection({ collection_name: name });
    const count = await c.query({ collection_name: name, filter: 'id >= 0', output_fields: ['count(*)'] });
    expect(Number(count.data[0]!['count(*)'])).toBe(0);
  });

  it('adds a nullable struct array field to an existing collection (AddCollectionStructField)', async () => {
    const c = t.client;
    const name = 'struct_added';
    const base = [
      { name: 'id', data_type: DataType.Int64, is_primary_key: true },
      { name: 'vec', data_type: DataType.FloatVector, dim: DIM },
    ];
    expect((await c.createCollection({ collection_name: name, fields: base as never })).error_code).toBe(ErrorCode.SUCCESS);
    const before = makeRows(10, 0, 3, false).map(({ id, vec }) => ({ id, vec }));
    expect((await c.insert({ collection_name: name, data: before })).status.error_code).toBe(ErrorCode.SUCCESS);
    await c.flush({ collection_names: [name] });
    const added = await c.addCollectionField({ collection_name: name, field: structField(true) as never });
    expect(added.error_code, added.reason).toBe(ErrorCode.SUCCESS);
    const after = makeRows(10, 10, 4, true);
    expect((await c.insert({ collection_name: name, data: after })).status.error_code).toBe(ErrorCode.SUCCESS);
    await c.createIndex({ collection_name: name, field_name: 'vec', index_type: 'FLAT', metric_type: 'L2' });
    await c.loadCollection({ collection_name: name });
    const res = await c.query({ collection_name: name, filter: 'id >= 0', output_fields: ['id', 'chunks'], limit: 100 });
    expect(res.status.error_code).toBe(ErrorCode.SUCCESS);
    const got = res.data.map((r) => normalise(r)).sort((a, b) => Number((a as { id: string }).id) - Number((b as { id: string }).id));
    // Rows written before the field existed read as null.
    expect(got).toEqual([...before.map((r) => ({ id: String(r.id), chunks: null })), ...after.map((r) => normalise(r))]);
  });
});
