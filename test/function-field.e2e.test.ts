import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DataType, ErrorCode, FunctionType, type MilvusClient } from '@zilliz/milvus2-sdk-node';
import { seededRandom } from '../src/testing/index.js';
import { startTestServer, until, type TestServer } from './helpers.js';

/* eslint-disable @typescript-eslint/no-explicit-any */

/**
 * `addFunctionField` / `dropFunctionField` through the SDK (AlterCollectionSchema with a BM25 function and
 * its bound index). The reference is a twin collection created with the same BM25 function from the start
 * and fed the same rows (full-text.e2e.test.ts checks that one against a naive BM25): every text search on
 * the collection that gained the function late must return the same ids and scores, for rows written
 * before the change (sealed and growing), after it, across a restart and after a compaction.
 */

const K1 = 1.3;
const B = 0.6;
const WORDS = ['river', 'stone', 'cloud', 'forest', 'light', 'storm', 'ocean', 'field', 'tower', 'garden', 'the', 'and'];
const QUERIES = ['river stone', 'storm over the ocean', 'garden light tower', 'cloud'];
const rnd = seededRandom(11);
const text = (): string => Array.from({ length: 2 + Math.floor(rnd() * 10) }, () => WORDS[Math.floor(rnd() * WORDS.length)]!).join(' ');
const rows = (from: number, n: number) => Array.from({ length: n }, (_, i) => ({ id: from + i, text: text(), dense: [rnd(), rnd()] }));

const textField = { name: 'text', data_type: DataType.VarChar, max_length: 500, enable_analyzer: true, analyzer_params: { type: 'english' } };
const bm25 = { name: 'text_bm25', type: FunctionType.BM25, input_field_names: ['text'], output_field_names: ['sparse'], params: {} };
const sparseIndex = { index_type: 'SPARSE_INVERTED_INDEX', metric_type: 'BM25', params: { bm25_k1: K1, bm25_b: B } };

async function ok(p: Promise<any>): Promise<any> {
  const r = await p;
  const st = r.status ?? r;
  expect(st.error_code, st.reason).toBe(ErrorCode.SUCCESS);
  return r;
}

async function search(c: MilvusClient, name: string) {
  const res = await ok(c.search({ collection_name: name, anns_field: 'sparse', data: QUERIES, limit: 8, output_fields: ['id'] }));
  return (res.results as any[][]).map((hits) => hits.map((h) => ({ id: Number(h.id), score: h.score as number })));
}

async function expectSameAsTwin(c: MilvusClient): Promise<void> {
  const [late, early] = [await search(c, 'late'), await search(c, 'early')];
  expect(late.map((q) => q.length)).toEqual(early.map((q) => q.length));
  expect(early.every((q) => q.length > 0)).toBe(true);
  late.forEach((hits, qi) =>
    hits.forEach((h, i) => {
      const e = early[qi]![i]!;
      expect(h.score).toBeCloseTo(e.score, 4);
      // Equal scores may tie in either order; the id set at a score must agree.
      if (Math.abs(h.score - e.score) < 1e-6 && h.id !== e.id)
        expect(early[qi]!.some((x) => x.id === h.id && Math.abs(x.score - h.score) < 1e-4)).toBe(true);
    }),
  );
}

describe('adding and dropping a BM25 function field through the SDK', () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer({ autoCompaction: false });
  });
  afterAll(async () => {
    await t?.close();
  });

  it('a BM25 field added to a collection with data covers every row at once, after new writes, a restart and a compaction', async () => {
    let c = t.client;
    await ok(
      c.createCollection({
        collection_name: 'late',
        fields: [{ name: 'id', data_type: DataType.Int64, is_primary_key: true }, textField, { name: 'dense', data_type: DataType.FloatVector, dim: 2 }],
      }),
    );
    await ok(
      c.createCollection({
        collection_name: 'early',
        fields: [
          { name: 'id', data_type: DataType.Int64, is_primary_key: true },
          textField,
          { name: 'dense', data_type: DataType.FloatVector, dim: 2 },
          { name: 'sparse', data_type: DataType.SparseFloatVector },
        ],
        functions: [bm25],
      }),
    );
    await ok(c.createIndex({ collection_name: 'early', field_name: 'sparse', ...sparseIndex }));
    for (const name of ['late', 'early']) await ok(c.createIndex({ collection_name: name, field_name: 'dense', index_type: 'FLAT', metric_type: 'L2' }));
    const sealed = rows(0, 40);
    const growing = rows(40, 20);
    for (const name of ['late', 'early']) {
      await ok(c.insert({ collection_name: name, data: sealed }));
      await ok(c.flushSync({ collection_names: [name] }));
      await ok(c.insert({ collection_name: name, data: growing }));
      await ok(c.loadCollectionSync({ collection_name: name }));
    }

    const add = await c.addFunctionField({
      collection_name: 'late',
      field: { name: 'sparse', data_type: DataType.SparseFloatVector },
      function: bm25,
      extra_params: sparseIndex,
    } as any);
    expect(add.error_code, add.reason).toBe(ErrorCode.SUCCESS);
    const desc = await ok(c.describeCollection({ collection_name: 'late' }));
    expect(desc.schema.functions.map((f: any) => f.name)).toEqual(['text_bm25']);
    expect(desc.schema.fields.map((f: any) => f.name)).toContain('sparse');
    const idx = await ok(c.describeIndex({ collection_name: 'late', field_name: 'sparse' }));
    expect(idx.index_descriptions[0].params).toEqual(expect.arrayContaining([{ key: 'metric_type', value: 'BM25' }]));
    await expectSameAsTwin(c); // rows written before the function: sealed and growing

    const more = rows(60, 15);
    for (const name of ['late', 'early']) await ok(c.insert({ collection_name: name, data: more }));
    await expectSameAsTwin(c);

    t = await t.restart();
    c = t.client;
    for (const name of ['late', 'early']) await ok(c.loadCollectionSync({ collection_name: name }));
    await expectSameAsTwin(c);

    for (const name of ['late', 'early']) await ok(c.flushSync({ collection_names: [name] }));
    const comp = await ok(c.compact({ collection_name: 'late' }));
    await until(async () => String((await c.getCompactionState({ compactionID: comp.compactionID })).state) === 'Completed', { timeoutMs: 60_000 });
    await expectSameAsTwin(c);
    const n = await ok(c.query({ collection_name: 'late', filter: 'id >= 0', output_fields: ['count(*)'] }));
    expect(Number(n.data[0]['count(*)'])).toBe(75);
  });

  it('refuses bad function fields without changing the schema, and drops a function with its field and index', async () => {
    const c = t.client;
    const before = await ok(c.describeCollection({ collection_name: 'late' }));
    const tries: [any, RegExp][] = [
      [
        { field: { name: 's2', data_type: DataType.SparseFloatVector }, function: { ...bm25, name: 'text_bm25', output_field_names: ['s2'] } },
        /function named text_bm25 already exists/,
      ],
      [
        {
          field: { name: 's2', data_type: DataType.SparseFloatVector },
          function: { ...bm25, name: 'f2', input_field_names: ['id'], output_field_names: ['s2'] },
        },
        /input field id must be VarChar/,
      ],
      [
        { field: { name: 's2', data_type: DataType.SparseFloatVector, nullable: true }, function: { ...bm25, name: 'f2', output_field_names: ['s2'] } },
        /cannot be nullable/,
      ],
      [
        { field: { name: 's2', data_type: DataType.SparseFloatVector }, function: { ...bm25, name: 'f2', output_field_names: ['s2'] }, index: 'none' },
        /needs its index: give index_type/,
      ],
      [
        {
          field: { name: 's2', data_type: DataType.SparseFloatVector },
          function: { ...bm25, name: 'f2', output_field_names: ['s2'] },
          extra: { ...sparseIndex, metric_type: 'IP' },
        },
        /BM25/,
      ],
    ];
    for (const [req, why] of tries) {
      // Through alterCollectionSchema: the SDK's addFunctionField checks some of these on the client first.
      const r = await c.alterCollectionSchema({
        collection_name: 'late',
        field: req.field,
        function: req.function,
        ...(req.index === 'none' ? {} : { extra_params: req.extra ?? sparseIndex }),
      } as any);
      expect(r.alter_status.error_code, JSON.stringify(req)).not.toBe(ErrorCode.SUCCESS);
      expect(r.alter_status.reason).toMatch(why);
    }
    const after = await ok(c.describeCollection({ collection_name: 'late' }));
    expect(after.schema.fields.map((f: any) => f.name)).toEqual(before.schema.fields.map((f: any) => f.name));

    const loaded = await c.dropFunctionField({ collection_name: 'late', function_name: 'text_bm25' } as any);
    expect(loaded.error_code).not.toBe(ErrorCode.SUCCESS);
    expect(loaded.reason).toMatch(/release it first/);
    await ok(c.releaseCollection({ collection_name: 'late' }));
    const dropped = await c.dropFunctionField({ collection_name: 'late', function_name: 'text_bm25' } as any);
    expect(dropped.error_code, dropped.reason).toBe(ErrorCode.SUCCESS);
    const gone = await ok(c.describeCollection({ collection_name: 'late' }));
    expect(gone.schema.functions ?? []).toEqual([]);
    expect(gone.schema.fields.map((f: any) => f.name)).not.toContain('sparse');
    const noIdx = await c.describeIndex({ collection_name: 'late', field_name: 'sparse' });
    expect(noIdx.status.error_code).not.toBe(ErrorCode.SUCCESS);
    await ok(c.loadCollectionSync({ collection_name: 'late' }));
    const q = await ok(c.query({ collection_name: 'late', filter: 'id < 3', output_fields: ['id', 'text'] }));
    expect(q.data.map((r: any) => Number(r.id)).sort()).toEqual([0, 1, 2]);
    const unknown = await c.dropFunctionField({ collection_name: 'late', function_name: 'text_bm25' } as any);
    expect(unknown.reason).toMatch(/function text_bm25 not found/);
  });
});
