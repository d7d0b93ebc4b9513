import { afterAll, describe, expect, it } from 'vitest';
import type { CollectionRecord } from '../coord/records.js';
import { textMatchRows } from '../expr/text-match.js';
import type { Column, FieldSchema, SparseRow } from '../schema/types.js';
import { newChunk } from '../segcore/segment.js';
import { writeInsertFiles } from '../segcore/segment-io.js';
import { MemoryObjectStore } from '../storage/memory-object-store.js';
import { seededRandom } from '../testing/index.js';
import { createAnalyzer } from '../text/analyzer.js';
import { Bm25ColumnIndex, bm25IndexOf, termFrequencies } from '../text/bm25.js';
import { textIndexCounters } from '../text/index-counters.js';
import { buildTextIndexFile } from '../text/text-index-file.js';
import { IndexBuildPool } from './index-builder.js';

const WORDS = ['River', 'stone', 'cloud', 'the', 'forests', 'light', 'of', 'storm', 'a', 'running', 'ünïcödé', '東京'];

function field(fieldId: number, name: string, dataType: FieldSchema['dataType'], typeParams: Record<string, string>, nullable = false): FieldSchema {
  return { fieldId, name, dataType, typeParams, isPrimaryKey: fieldId === 100, nullable } as unknown as FieldSchema;
}

/** A collection with one enable_match text field (analyzer `params`) feeding a BM25 output field. */
function collectionOf(params: object): { coll: CollectionRecord; text: FieldSchema; sparse: FieldSchema } {
  const text = field(101, 'text', 'VarChar', { enable_analyzer: 'true', enable_match: 'true', analyzer_params: JSON.stringify(params) }, true);
  const sparse = field(102, 'sparse', 'SparseFloatVector', {});
  const coll = {
    id: 7,
    name: 'c',
    schema: {
      fields: [field(100, 'id', 'Int64', {}), text, sparse],
      functions: [{ name: 'f', description: '', type: 'BM25', inputFieldNames: ['text'], outputFieldNames: ['sparse'], params: {} }],
    },
  } as unknown as CollectionRecord;
  return { coll, text, sparse };
}

/** Texts with empty strings and nulls among them, and the BM25 rows of the same texts (empty rows for both). */
function columnsOf(n: number, seed: number, params: object): { text: Column & { kind: 'string' }; sparse: Column & { kind: 'sparse' } } {
  const rnd = seededRandom(seed);
  const data = Array.from({ length: n }, () =>
    Array.from({ length: 1 + Math.floor(rnd() * 12) }, () => WORDS[Math.floor(rnd() * WORDS.length)]!).join(' '),
  );
  const valid = new Uint8Array(n).fill(1);
  for (let i = 0; i < n; i += 17) data[i] = '';
  // A null row keeps text under it here: the build must skip it by the validity bitmap, not by its text.
  for (let i = 5; i < n; i += 23) valid[i] = 0;
  const analyzer = createAnalyzer(params);
  const rows: SparseRow[] = data.map((s, i) =>
    valid[i] === 0 ? { indices: new Uint32Array(0), values: new Float32Array(0) } : termFrequencies(analyzer, s),
  );
  return { text: { kind: 'string', data, valid }, sparse: { kind: 'sparse', data: rows } };
}

const ANALYZERS: readonly object[] = [
  { type: 'english' },
  { type: 'standard', stop_words: ['the', 'of', 'a'] },
  { tokenizer: { type: 'ngram', min_gram: 2, max_gram: 3 }, filter: ['lowercase'] },
  { tokenizer: 'whitespace', filter: ['lowercase', { type: 'stop', stop_words: ['_english_'] }, { type: 'stemmer', language: 'english' }] },
];

describe('full-text index files built on the build worker', () => {
  const pool = new IndexBuildPool({ threads: 1 });
  afterAll(() => pool.close());

  it('are byte-identical to the main-thread build, for bm25 and text kinds and several analyzers', { timeout: 60_000 }, async () => {
    const before = pool.workerTasksDone().text;
    for (const [k, params] of ANALYZERS.entries()) {
      const { coll, text, sparse } = collectionOf(params);
      const cols = columnsOf(400, 11 + k, params);
      for (const [f, col, kind] of [
        [text, cols.text, 'text'],
        [sparse, cols.sparse, 'bm25'],
      ] as const) {
        const main = buildTextIndexFile(coll, f, col)!;
        expect(main.kind).toBe(kind);
        const worker = await pool.buildText({ textKind: kind, field: f, column: col });
        expect(worker.bytes.byteLength, `${kind} ${JSON.stringify(params)}`).toBe(main.bytes.byteLength);
        expect(Buffer.from(worker.bytes).equals(Buffer.from(main.bytes)), `${kind} ${JSON.stringify(params)}`).toBe(true);
      }
    }
    // Every build above crossed to the worker thread (an inline pool would not count them).
    expect(pool.workerTasksDone().text - before).toBe(ANALYZERS.length * 2);
  });

  it('a flush through the worker writes the same files and statslogs, and attaches indexes that answer', { timeout: 60_000 }, async () => {
    const params = { type: 'standard', stop_words: ['the'] };
    const { coll } = collectionOf(params);
    const n = 300;
    const write = async (builds: IndexBuildPool | undefined) => {
      const cols = columnsOf(n, 3, params);
      const columns = new Map<string, Column>([
        ['id', { kind: 'int64', data: BigInt64Array.from({ length: n }, (_, i) => BigInt(i)) }],
        ['text', cols.text],
        ['sparse', cols.sparse],
      ]);
      const store = new MemoryObjectStore();
      let next = 1000;
      const ids = { alloc: (count = 1) => Promise.resolve((next += count) - count) };
      const chunk = newChunk(n, columns, new BigInt64Array(n).fill(5n));
      const files = await writeInsertFiles(store, ids, coll, 9, 3, chunk, builds);
      const texts = await Promise.all(files.statslogs.slice(1).map((l) => store.get(l.path)));
      return { files, texts, cols };
    };
    const countersBefore = { ...textIndexCounters };
    const tasksBefore = pool.workerTasksDone().text;
    const onMain = await write(undefined);
    const onWorker = await write(pool);
    expect(pool.workerTasksDone().text - tasksBefore).toBe(2);
    expect(textIndexCounters.builtForFile - countersBefore.builtForFile).toBe(4);
    // Same statslogs (pk stats + one per full-text field: logId, path, size, sha256, entries, ts range).
    expect(onWorker.files.statslogs).toEqual(onMain.files.statslogs);
    expect(onWorker.files.statslogs.length).toBe(3);
    onMain.texts.forEach((b, i) => expect(Buffer.from(onWorker.texts[i]!).equals(Buffer.from(b))).toBe(true));

    // The worker-built indexes are attached to the chunk's columns: queries use them and build nothing.
    const analyzer = createAnalyzer(params);
    const firstUse = textIndexCounters.builtOnFirstUse;
    const { text, sparse } = onWorker.cols;
    const terms = analyzer.terms('stone cloud');
    const want = text.data.map((s, r) => Number(text.valid![r] === 1 && analyzer.analyze(s).some((t) => terms.includes(t.token))));
    expect(want.some((x) => x === 1)).toBe(true);
    expect(Array.from(textMatchRows(text, analyzer, terms))).toEqual(want);
    const bm25 = bm25IndexOf(sparse, sparse.data);
    expect(bm25.numRows).toBe(n);
    const fresh = new Bm25ColumnIndex(sparse.data);
    expect(Array.from(bm25.docLen)).toEqual(Array.from(fresh.docLen));
    const query = termFrequencies(analyzer, 'river storm light');
    const stats = { n, avgdl: 5, df: new Map<number, number>() };
    const scored = bm25.score(query, stats, { k1: 1.2, b: 0.75 }, undefined);
    expect(scored.size).toBeGreaterThan(0);
    expect([...scored].sort()).toEqual([...fresh.score(query, stats, { k1: 1.2, b: 0.75 }, undefined)].sort());
    expect(textIndexCounters.builtOnFirstUse).toBe(firstUse);
  });
});
