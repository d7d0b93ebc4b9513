import * as zlib from 'node:zlib';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { DataType, ErrorCode, FunctionType, MilvusClient, promisify, WeightedRanker } from '@zilliz/milvus2-sdk-node';
import { seededRandom } from '../src/testing/index.js';
import { textIndexCounters } from '../src/text/index-counters.js';
import { startTestServer, until, waitRestore, type TestServer } from './helpers.js';

/**
 * Full-text search through the official SDK: a BM25 function from an analyzed VarChar to a sparse field,
 * text searches scored against a naive BM25 computed here (collection statistics over the live rows),
 * text_match filters against a naive token match, RunAnalyzer, and the function carried by the WAL,
 * compaction, a snapshot and its restore. Bad input: a BM25 output written directly, an unknown
 * analyzer, text_match on a field without enable_match.
 */

const COLL = 'docs';
const K1 = 1.5;
const B = 0.7;

/** Words whose English stems are all distinct, so the naive tokenizer below can key on the words. */
const VOCAB = ['river', 'stone', 'cloud', 'forest', 'light', 'storm', 'ocean', 'field', 'tower', 'garden', 'winter', 'summer', 'iron', 'glass', 'paper'];
/** Stop words of the english analyzer mixed into the texts (they must not count). */
const STOP = ['the', 'and', 'of', 'a', 'is'];

const rnd = seededRandom(7);

function makeText(): string {
  const n = 3 + Math.floor(rnd() * 12);
  const words: string[] = [];
  for (let i = 0; i < n; i++) {
    const w = rnd() < 0.25 ? STOP[Math.floor(rnd() * STOP.length)]! : VOCAB[Math.floor(rnd() * Math.min(VOCAB.length, 4 + i * 2))]!;
    words.push(rnd() < 0.2 ? w.toUpperCase() : w);
  }
  return words.join(rnd() < 0.5 ? ' ' : ', ') + '.';
}

/** The naive analyzer for these texts: lowercase words, English stop words removed (stems are 1:1). */
function naiveTokens(text: string): string[] {
  return (text.toLowerCase().match(/[a-z]+/g) ?? []).filter((w) => !STOP.includes(w));
}

/** Plain BM25 over the live documents, as documented: idf = ln(1 + (N - df + 0.5) / (df + 0.5)). */
function naiveBm25(docs: ReadonlyMap<number, string>, query: string, k1 = K1, b = B): Map<number, number> {
  const toks = new Map([...docs].map(([id, t]) => [id, naiveTokens(t)]));
  const n = toks.size;
  let total = 0;
  for (const t of toks.values()) total += t.length;
  const avgdl = total / n;
  const q = new Map<string, number>();
  for (const w of naiveTokens(query)) q.set(w, (q.get(w) ?? 0) + 1);
  const scores = new Map<number, number>();
  for (const [id, t] of toks) {
    let s = 0;
    let hit = false;
    for (const [w, qtf] of q) {
      const tf = t.filter((x) => x === w).length;
      if (tf === 0) continue;
      hit = true;
      const df = [...toks.values()].filter((x) => x.includes(w)).length;
      const idf = Math.log(1 + (n - df + 0.5) / (df + 0.5));
      s += (qtf * idf * tf * (k1 + 1)) / (tf + k1 * (1 - b + (b * t.length) / avgdl));
    }
    if (hit) scores.set(id, s);
  }
  return scores;
}

async function createDocs(c: MilvusClient, name: string): Promise<void> {
  const res = await c.createCollection({
    collection_name: name,
    fields: [
      { name: 'id', data_type: DataType.Int64, is_primary_key: true },
      {
        name: 'text',
        data_type: DataType.VarChar,
        max_length: 2000,
        enable_analyzer: true,
        enable_match: true,
        analyzer_params: { type: 'english' },
      },
      { name: 'note', data_type: DataType.VarChar, max_length: 200 },
      { name: 'sparse', data_type: DataType.SparseFloatVector },
      { name: 'dense', data_type: DataType.FloatVector, dim: 2 },
    ],
    functions: [{ name: 'text_bm25', type: FunctionType.BM25, input_field_names: ['text'], output_field_names: ['sparse'], params: {} }],
  });
  expect(res.error_code, res.reason).toBe(ErrorCode.SUCCESS);
  const idx = await c.createIndex({
    collection_name: name,
    field_name: 'sparse',
    index_type: 'SPARSE_INVERTED_INDEX',
    metric_type: 'BM25',
    params: { bm25_k1: K1, bm25_b: B },
  });
  expect(idx.error_code, idx.reason).toBe(ErrorCode.SUCCESS);
}

async function bm25Search(c: MilvusClient, name: string, queries: string[], limit: number, filter?: string) {
  const res = await c.search({
    collection_name: name,
    anns_field: 'sparse',
    data: queries,
    limit,
    output_fields: ['id'],
    ...(filter ? { filter } : {}),
  });
  expect(res.status.error_code, res.status.reason).toBe(ErrorCode.SUCCESS);
  const results = res.results as unknown as { id: string; score: number }[] | { id: string; score: number }[][];
  return queries.length === 1 ? [results as { id: string; score: number }[]] : (results as { id: string; score: number }[][]);
}

/** Search results agree with the naive BM25: same scores (float32 tolerance), best first, the right count. */
async function checkSearch(c: MilvusClient, name: string, docs: ReadonlyMap<number, string>, queries: string[], filter?: (id: number) => boolean) {
  const limit = 7;
  const got = await bm25Search(c, name, queries, limit, filter ? 'id >= 0 and id % 2 == 0' : undefined);
  queries.forEach((q, qi) => {
    const ref = [...naiveBm25(docs, q)].filter(([id]) => (filter ? filter(id) : true)).sort((a, b) => b[1] - a[1]);
    const hits = got[qi]!;
    expect(hits.length).toBe(Math.min(limit, ref.length));
    const refScore = new Map(ref);
    hits.forEach((h, i) => {
      expect(h.score).toBeCloseTo(ref[i]![1], 4);
      expect(refScore.get(Number(h.id))).toBeCloseTo(h.score, 4);
    });
  });
}

/** Field ids of the full-text index files under the data dir (stats logs that open with the QVRTXT magic), per segment. */
async function textIndexFiles(dataDir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (dir: string): Promise<void> => {
    for (const e of await readdir(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      if (e.isDirectory()) await walk(p);
      else if (p.includes('stats_log') && (await readFile(p)).subarray(0, 6).toString('latin1') === 'QVRTXT') out.push(p);
    }
  };
  await walk(dataDir);
  return out;
}

/** Exact phrase of two vocabulary words (slop 0): adjacent words, stop words counting as positions. */
function naiveAdjacent(text: string, a: string, b: string): boolean {
  const w = text.toLowerCase().match(/[a-z]+/g) ?? [];
  return w.some((x, i) => x === a && w[i + 1] === b);
}

describe('full-text search (BM25, text_match, RunAnalyzer)', () => {
  let t: TestServer | undefined;
  afterEach(async () => {
    await t?.close();
    t = undefined;
  });

  it('scores BM25 like a naive reference through inserts, deletes, compaction, restart and a restore', { timeout: 120_000 }, async () => {
    t = await startTestServer();
    let c = t.client;
    await createDocs(c, COLL);

    const desc = await c.describeCollection({ collection_name: COLL });
    expect(desc.schema.functions.map((f) => [f.name, f.input_field_names, f.output_field_names])).toEqual([['text_bm25', ['text'], ['sparse']]]);
    expect(desc.schema.fields.find((f) => f.name === 'sparse')!.is_function_output).toBe(true);

    const docs = new Map<number, string>();
    const batch = (from: number, n: number) =>
      Array.from({ length: n }, (_, i) => {
        const id = from + i;
        docs.set(id, makeText());
        return { id, text: docs.get(id)!, note: `n${id}`, dense: [1, id % 7] };
      });
    expect((await c.insert({ collection_name: COLL, data: batch(0, 80) })).status.error_code).toBe(ErrorCode.SUCCESS);
    await c.flush({ collection_names: [COLL] });
    expect((await c.insert({ collection_name: COLL, data: batch(80, 40) })).status.error_code).toBe(ErrorCode.SUCCESS); // growing
    await c.loadCollection({ collection_name: COLL });

    const queries = ['river storm', 'the OCEAN of glass and paper', 'tower tower garden', 'winter'];
    await checkSearch(c, COLL, docs, queries);
    // A filter narrows the candidates; the statistics (and so the scores) stay those of all live rows.
    await checkSearch(c, COLL, docs, queries, (id) => id % 2 === 0);

    // Hybrid search: a BM25 sub-request fused with a dense one; weights 1 / 0 leave BM25's order, with
    // Milvus's normalisation of BM25 scores, 2·atan(s) / π.
    // The SDK types a sub-request's data as vectors; it sends text for a function output field all the same.
    const subs: unknown[] = [
      { anns_field: 'sparse', data: ['ocean glass'], limit: 10 },
      { anns_field: 'dense', data: [[1, 3]], limit: 10 },
    ];
    const hybrid = await c.search({
      collection_name: COLL,
      data: subs as never,
      rerank: WeightedRanker([1, 0]),
      limit: 5,
      output_fields: ['id'],
    });
    expect(hybrid.status.error_code, hybrid.status.reason).toBe(ErrorCode.SUCCESS);
    const hybridRef = [...naiveBm25(docs, 'ocean glass')].sort((a, b) => b[1] - a[1]).slice(0, 5);
    const hybridHits = hybrid.results as unknown as { id: string; score: number }[];
    expect(hybridHits.map((h) => h.score)).toEqual(hybridRef.map(([, s]) => expect.closeTo((2 * Math.atan(s)) / Math.PI, 4)));

    // text_match: any analyzed token of the query; "Stones" stems like "stone".
    const match = await c.query({ collection_name: COLL, filter: "text_match(text, 'Stones CLOUD')", output_fields: ['id'], limit: 1000 });
    expect(match.status.error_code, match.status.reason).toBe(ErrorCode.SUCCESS);
    const want = [...docs].filter(([, s]) => naiveTokens(s).some((w) => w === 'stone' || w === 'cloud')).map(([id]) => id);
    expect(match.data.map((r) => Number(r['id'])).sort((a, b) => a - b)).toEqual(want.sort((a, b) => a - b));
    const none = await c.query({ collection_name: COLL, filter: "text_match(text, 'the and')", output_fields: ['id'], limit: 10 });
    expect(none.data).toEqual([]);

    // Deletes leave the statistics at once (and compaction rewrites without them).
    const gone = [...docs.keys()].filter((id) => id % 5 === 0);
    await c.delete({ collection_name: COLL, filter: `id in [${gone.join(',')}]` });
    for (const id of gone) docs.delete(id);
    await checkSearch(c, COLL, docs, queries);
    await c.flush({ collection_names: [COLL] });
    const comp = await c.compact({ collection_name: COLL });
    await until(async () => String((await c.getCompactionState({ compactionID: comp.compactionID })).state) === 'Completed');
    await checkSearch(c, COLL, docs, queries);

    // Growing rows survive a restart through the WAL, their BM25 rows included.
    expect((await c.insert({ collection_name: COLL, data: batch(200, 20) })).status.error_code).toBe(ErrorCode.SUCCESS);
    t = await t.restart();
    c = t.client;
    await c.loadCollection({ collection_name: COLL });
    await checkSearch(c, COLL, docs, queries);

    // Snapshot and restore: the function and index come along, and the restored collection scores the same.
    expect((await c.createSnapshot({ collection_name: COLL, snapshot_name: 'docs_snap' })).error_code).toBe(ErrorCode.SUCCESS);
    const job = await c.restoreSnapshot({ snapshot_name: 'docs_snap', source_collection_name: COLL, target_collection_name: 'docs_restored' });
    expect(job.status.error_code, job.status.reason).toBe(ErrorCode.SUCCESS);
    expect((await waitRestore(c, job.job_id)).state).toBe('RestoreSnapshotCompleted');
    await c.loadCollection({ collection_name: 'docs_restored' });
    const rdesc = await c.describeCollection({ collection_name: 'docs_restored' });
    expect(rdesc.schema.functions.map((f) => f.name)).toEqual(['text_bm25']);
    await checkSearch(c, 'docs_restored', docs, queries);
    expect(
      (await c.insert({ collection_name: 'docs_restored', data: [{ id: 1000, text: 'river river river', note: '', dense: [1, 0] }] })).status.error_code,
    ).toBe(ErrorCode.SUCCESS);
    docs.set(1000, 'river river river');
    await checkSearch(c, 'docs_restored', docs, ['river']);
  });

  it('persists BM25 and text indexes as segment files, opened after a restart and a restore instead of rebuilt', { timeout: 120_000 }, async () => {
    // No automatic compaction: the two segments stay two until the test compacts them.
    t = await startTestServer({ autoCompaction: false });
    let c = t.client;
    await createDocs(c, COLL);
    const docs = new Map<number, string>();
    for (let round = 0; round < 2; round++) {
      const data = Array.from({ length: 60 }, (_, i) => {
        const id = round * 60 + i;
        docs.set(id, makeText());
        return { id, text: docs.get(id)!, note: '', dense: [1, id % 7] };
      });
      expect((await c.insert({ collection_name: COLL, data })).status.error_code).toBe(ErrorCode.SUCCESS);
      await c.flush({ collection_names: [COLL] });
    }
    // Two sealed segments, each with a BM25 file (sparse) and a text file (text), built on the text worker.
    const files = await textIndexFiles(t.dataDir);
    expect(files.length).toBe(4);
    const workerBuilds = (): number => t!.server.engine.data.textIndexBuilds!.workerTasksDone().text;
    expect(workerBuilds()).toBe(4);
    await c.loadCollection({ collection_name: COLL });

    const queries = ['river storm', 'the OCEAN of glass and paper', 'tower tower garden'];
    const matchWant = [...docs].filter(([, s]) => naiveTokens(s).some((w) => w === 'stone' || w === 'cloud')).map(([id]) => id);
    const phraseWant = [...docs].filter(([, s]) => naiveAdjacent(s, 'river', 'stone')).map(([id]) => id);
    expect(phraseWant.length).toBeGreaterThan(0);
    const checkAll = async (name: string): Promise<void> => {
      await checkSearch(c, name, docs, queries);
      const match = await c.query({ collection_name: name, filter: "text_match(text, 'Stones CLOUD')", output_fields: ['id'], limit: 1000 });
      expect(match.data.map((r) => Number(r['id'])).sort((a, b) => a - b)).toEqual([...matchWant].sort((a, b) => a - b));
      const phrase = await c.query({ collection_name: name, filter: "phrase_match(text, 'river stone')", output_fields: ['id'], limit: 1000 });
      expect(phrase.status.error_code, phrase.status.reason).toBe(ErrorCode.SUCCESS);
      expect(phrase.data.map((r) => Number(r['id'])).sort((a, b) => a - b)).toEqual([...phraseWant].sort((a, b) => a - b));
    };

    // The flush built the indexes it wrote: searching the sealed segments builds nothing more.
    let before = { ...textIndexCounters };
    await checkAll(COLL);
    expect(textIndexCounters.builtOnFirstUse - before.builtOnFirstUse).toBe(0);

    // A restart opens the four files instead of analysing the texts again.
    before = { ...textIndexCounters };
    t = await t.restart();
    c = t.client;
    await c.loadCollection({ collection_name: COLL });
    await checkAll(COLL);
    expect(textIndexCounters.loadedFromFile - before.loadedFromFile).toBe(4);
    expect(textIndexCounters.builtOnFirstUse - before.builtOnFirstUse).toBe(0);
    expect(textIndexCounters.builtForFile - before.builtForFile).toBe(0);

    // A snapshot carries the files and a restore copies them: the restored collection answers the same
    // and still builds nothing.
    expect((await c.createSnapshot({ collection_name: COLL, snapshot_name: 'persist_snap' })).error_code).toBe(ErrorCode.SUCCESS);
    await c.releaseCollection({ collection_name: COLL });
    const job = await c.restoreSnapshot({ snapshot_name: 'persist_snap', source_collection_name: COLL, target_collection_name: 'docs_copy' });
    expect(job.status.error_code, job.status.reason).toBe(ErrorCode.SUCCESS);
    expect((await waitRestore(c, job.job_id)).state).toBe('RestoreSnapshotCompleted');
    expect((await textIndexFiles(t.dataDir)).length).toBe(8);
    before = { ...textIndexCounters };
    await c.loadCollection({ collection_name: 'docs_copy' });
    await checkAll('docs_copy');
    expect(textIndexCounters.loadedFromFile - before.loadedFromFile).toBe(4);
    expect(textIndexCounters.builtOnFirstUse - before.builtOnFirstUse).toBe(0);

    // Compaction writes the merged segment's files (built once, for the file) and drops nothing a query needs.
    await c.loadCollection({ collection_name: COLL });
    const gone = [...docs.keys()].filter((id) => id % 4 === 0);
    await c.delete({ collection_name: COLL, filter: `id in [${gone.join(',')}]` });
    for (const id of gone) docs.delete(id);
    await c.flush({ collection_names: [COLL] });
    before = { ...textIndexCounters };
    const workerBefore = workerBuilds();
    const comp = await c.compact({ collection_name: COLL });
    await until(async () => String((await c.getCompactionState({ compactionID: comp.compactionID })).state) === 'Completed');
    matchWant.splice(0, matchWant.length, ...matchWant.filter((id) => docs.has(id)));
    phraseWant.splice(0, phraseWant.length, ...phraseWant.filter((id) => docs.has(id)));
    await checkAll(COLL);
    expect(textIndexCounters.builtForFile - before.builtForFile).toBeGreaterThan(0);
    // The merged segment's files were built on the worker too (two per target segment).
    expect(workerBuilds() - workerBefore).toBe(textIndexCounters.builtForFile - before.builtForFile);
    expect(textIndexCounters.builtOnFirstUse - before.builtOnFirstUse).toBe(0);

    // A torn index file does not fail the load: the index is built in memory from the column instead.
    const dir = t.dataDir;
    await t.close({ keepData: true });
    for (const f of await textIndexFiles(dir)) await writeFile(f, (await readFile(f)).subarray(0, 40));
    t = await startTestServer({ autoCompaction: false }, {}, dir);
    c = t.client;
    before = { ...textIndexCounters };
    await c.loadCollection({ collection_name: COLL });
    await checkAll(COLL);
    expect(textIndexCounters.loadedFromFile - before.loadedFromFile).toBe(0);
    expect(textIndexCounters.builtOnFirstUse - before.builtOnFirstUse).toBeGreaterThan(0);
  });

  it('searchIterator pages a BM25 field best first, every matching row once', { timeout: 120_000 }, async () => {
    t = await startTestServer();
    const c = t.client;
    await createDocs(c, COLL);
    const docs = new Map<number, string>();
    const batch = (from: number, n: number) =>
      Array.from({ length: n }, (_, i) => {
        const id = from + i;
        docs.set(id, makeText());
        return { id, text: docs.get(id)!, note: '', dense: [1, id % 7] };
      });
    expect((await c.insert({ collection_name: COLL, data: batch(0, 120) })).status.error_code).toBe(ErrorCode.SUCCESS);
    await c.flush({ collection_names: [COLL] });
    expect((await c.insert({ collection_name: COLL, data: batch(120, 60) })).status.error_code).toBe(ErrorCode.SUCCESS); // growing
    await c.loadCollection({ collection_name: COLL });

    const run = async (query: string, batchSize: number, filter?: string): Promise<{ id: number; score: number }[]> => {
      const it = await c.searchIterator({
        collection_name: COLL,
        anns_field: 'sparse',
        data: query as never,
        batchSize,
        output_fields: ['id'],
        ...(filter ? { filter } : {}),
      });
      const out: { id: number; score: number }[] = [];
      for await (const page of it) for (const r of page as { id: string; score: number }[]) out.push({ id: Number(r.id), score: r.score });
      return out;
    };
    for (const [query, batchSize, keep] of [
      ['river storm', 7, undefined],
      ['the OCEAN of glass and paper', 11, undefined],
      ['tower garden winter', 5, (id: number) => id % 3 === 0],
    ] as const) {
      const got = await run(query, batchSize, keep ? 'id % 3 == 0' : undefined);
      const ref = [...naiveBm25(docs, query)].filter(([id]) => (keep ? keep(id) : true));
      const refScore = new Map(ref);
      // Every row with a score exactly once (rows sharing no term with the query have none).
      expect(got.length).toBe(ref.length);
      expect(new Set(got.map((h) => h.id)).size).toBe(got.length);
      expect(got.map((h) => h.id).sort((a, b) => a - b)).toEqual(ref.map(([id]) => id).sort((a, b) => a - b));
      // One total order across pages: score descending, equal scores by pk ascending.
      for (let i = 0; i < got.length; i++) {
        expect(got[i]!.score).toBeCloseTo(refScore.get(got[i]!.id)!, 4);
        if (i === 0) continue;
        const [a, b] = [got[i - 1]!, got[i]!];
        if (!(a.score > b.score || (a.score === b.score && a.id < b.id)))
          throw new Error(`position ${i}: ${a.id} (${a.score}) before ${b.id} (${b.score})`);
      }
    }
  });

  it('BM25 and text_match over an ngram-analyzed field agree with a naive bigram reference', { timeout: 60_000 }, async () => {
    t = await startTestServer();
    const c = t.client;
    const res = await c.createCollection({
      collection_name: 'grams',
      fields: [
        { name: 'id', data_type: DataType.Int64, is_primary_key: true },
        {
          name: 'text',
          data_type: DataType.VarChar,
          max_length: 500,
          enable_analyzer: true,
          enable_match: true,
          analyzer_params: { tokenizer: { type: 'ngram', min_gram: 2, max_gram: 2 }, filter: ['lowercase'] },
        },
        { name: 'sparse', data_type: DataType.SparseFloatVector },
      ],
      functions: [{ name: 'bm', type: FunctionType.BM25, input_field_names: ['text'], output_field_names: ['sparse'], params: {} }],
    });
    expect(res.error_code, res.reason).toBe(ErrorCode.SUCCESS);
    expect(
      (await c.createIndex({ collection_name: 'grams', field_name: 'sparse', index_type: 'SPARSE_INVERTED_INDEX', metric_type: 'BM25' })).error_code,
    ).toBe(ErrorCode.SUCCESS);
    const letters = 'abcdeé数据';
    const texts = Array.from({ length: 60 }, () =>
      Array.from({ length: 2 + Math.floor(rnd() * 8) }, () => letters[Math.floor(rnd() * letters.length)]).join(''),
    );
    expect((await c.insert({ collection_name: 'grams', data: texts.map((text, id) => ({ id, text })) })).status.error_code).toBe(ErrorCode.SUCCESS);
    await c.flush({ collection_names: ['grams'] });
    await c.loadCollection({ collection_name: 'grams' });
    const bigrams = (s: string): string[] => {
      const ch = [...s.toLowerCase()];
      return ch.slice(0, -1).map((x, i) => x + ch[i + 1]!);
    };
    // Naive BM25 over bigrams (k1 1.2, b 0.75: the defaults).
    const toks = texts.map(bigrams);
    const avgdl = toks.reduce((n, x) => n + x.length, 0) / toks.length;
    const query = 'abé数据';
    const q = bigrams(query);
    const ref = toks
      .map((d, id) => {
        let s = 0;
        for (const w of new Set(q)) {
          const tf = d.filter((x) => x === w).length;
          if (tf === 0) continue;
          const df = toks.filter((x) => x.includes(w)).length;
          const qtf = q.filter((x) => x === w).length;
          s += (qtf * Math.log(1 + (toks.length - df + 0.5) / (df + 0.5)) * tf * 2.2) / (tf + 1.2 * (0.25 + (0.75 * d.length) / avgdl));
        }
        return [id, s] as const;
      })
      .filter(([, s]) => s > 0)
      .sort((a, b) => b[1] - a[1]);
    const got = await c.search({ collection_name: 'grams', anns_field: 'sparse', data: [query], limit: 10, output_fields: ['id'] });
    expect(got.status.error_code, got.status.reason).toBe(ErrorCode.SUCCESS);
    const hits = got.results as unknown as { id: string; score: number }[];
    expect(hits.length).toBe(Math.min(10, ref.length));
    hits.forEach((h, i) => expect(h.score).toBeCloseTo(ref[i]![1], 4));
    // text_match with bigrams: a row matches when it shares a bigram with the query.
    const match = await c.query({ collection_name: 'grams', filter: "text_match(text, '数据')", output_fields: ['id'], limit: 100 });
    expect(match.data.map((r) => Number(r['id'])).sort((a, b) => a - b)).toEqual(texts.flatMap((s, id) => (s.includes('数据') ? [id] : [])));
  });

  it('multi-analyzer fields: each row analyzed by the analyzer its by_field names, queries by analyzer_name', { timeout: 60_000 }, async () => {
    t = await startTestServer();
    const c = t.client;
    const multi = {
      by_field: 'lang',
      analyzers: { default: { type: 'standard' }, en: { type: 'english' }, zh: { type: 'chinese' } },
      alias: { english: 'en' },
    };
    const fields = (m: unknown, extra: Record<string, unknown> = {}) => [
      { name: 'id', data_type: DataType.Int64, is_primary_key: true },
      { name: 'lang', data_type: DataType.VarChar, max_length: 16 },
      { name: 'text', data_type: DataType.VarChar, max_length: 500, enable_analyzer: true, multi_analyzer_params: m, ...extra },
      { name: 'sparse', data_type: DataType.SparseFloatVector },
    ];
    const fn = [{ name: 'bm', type: FunctionType.BM25, input_field_names: ['text'], output_field_names: ['sparse'], params: {} }];
    const created = await c.createCollection({ collection_name: 'multi', fields: fields(multi) as never, functions: fn });
    expect(created.error_code, created.reason).toBe(ErrorCode.SUCCESS);
    expect(
      (await c.createIndex({ collection_name: 'multi', field_name: 'sparse', index_type: 'SPARSE_INVERTED_INDEX', metric_type: 'BM25' })).error_code,
    ).toBe(ErrorCode.SUCCESS);
    // A controlled vocabulary: the english analyzer drops "the" and stems running/runs → run, dogs → dog;
    // the standard (default) analyzer keeps every word as it is. "fr" names no analyzer: the default.
    const WORDS = ['the', 'running', 'runs', 'dogs', 'fast'];
    const EN: Record<string, string | null> = { the: null, running: 'run', runs: 'run', dogs: 'dog', fast: 'fast' };
    const langs = ['en', 'english', 'fr', 'default'];
    const rows = Array.from({ length: 40 }, (_, id) => ({
      id,
      lang: langs[id % langs.length]!,
      text: Array.from({ length: 1 + Math.floor(rnd() * 6) }, () => WORDS[Math.floor(rnd() * WORDS.length)]!).join(' '),
    }));
    expect((await c.insert({ collection_name: 'multi', data: rows })).status.error_code).toBe(ErrorCode.SUCCESS);
    await c.loadCollection({ collection_name: 'multi' });
    const tokensOf = (r: { lang: string; text: string }): string[] =>
      r.lang === 'en' || r.lang === 'english' ? r.text.split(' ').flatMap((w) => (EN[w] ? [EN[w]!] : [])) : r.text.split(' ');
    const docs = rows.map(tokensOf);
    const avgdl = docs.reduce((n, d) => n + d.length, 0) / docs.length;
    const naive = (q: string[]): [number, number][] =>
      docs
        .map((d, id): [number, number] => {
          let s = 0;
          for (const w of new Set(q)) {
            const tf = d.filter((x) => x === w).length;
            if (tf === 0) continue;
            const df = docs.filter((x) => x.includes(w)).length;
            s += (Math.log(1 + (docs.length - df + 0.5) / (df + 0.5)) * tf * 2.2) / (tf + 1.2 * (0.25 + (0.75 * d.length) / avgdl));
          }
          return [id, s];
        })
        .filter(([, s]) => s > 0)
        .sort((a, b) => b[1] - a[1]);
    for (const [query, name, qTokens] of [
      ['running dogs', 'en', ['run', 'dog']],
      ['running dogs', 'english', ['run', 'dog']],
      ['running dogs', undefined, ['running', 'dogs']],
      ['running dogs', 'nope', ['running', 'dogs']],
    ] as const) {
      const res = await c.search({
        collection_name: 'multi',
        anns_field: 'sparse',
        data: [query],
        limit: 50,
        output_fields: ['id'],
        ...(name ? { params: { analyzer_name: name } } : {}),
      });
      expect(res.status.error_code, res.status.reason).toBe(ErrorCode.SUCCESS);
      const hits = res.results as unknown as { id: string; score: number }[];
      const ref = naive([...qTokens]);
      expect(hits.length, `${query} / ${String(name)}`).toBe(ref.length);
      const refScore = new Map(ref);
      hits.forEach((h, i) => {
        expect(h.score).toBeCloseTo(ref[i]![1], 4);
        expect(refScore.get(Number(h.id))).toBeCloseTo(h.score, 4);
      });
    }
    // RunAnalyzer on the field: one name for all texts, or one per text; none means the default.
    const one = await c.runAnalyzer({ collection_name: 'multi', field_name: 'text', text: ['The running dogs', '向量数据库'], analyzer_names: ['zh'] });
    expect(one.status.error_code, one.status.reason).toBe(ErrorCode.SUCCESS);
    expect(one.results[1]!.tokens.map((x) => x.token).join('')).toBe('向量数据库');
    const each = await c.runAnalyzer({
      collection_name: 'multi',
      field_name: 'text',
      text: ['The running dogs', 'The running dogs'],
      analyzer_names: ['english', 'fr'],
    });
    expect(each.results.map((r) => r.tokens.map((x) => x.token))).toEqual([
      ['run', 'dog'],
      ['the', 'running', 'dogs'],
    ]);

    // Bad params are refused naming the problem.
    const status = (p: Promise<{ error_code: string | number; reason: string }>) =>
      p.catch((e: unknown) => e as { error_code: string | number; reason: string });
    for (const [m, extra, want] of [
      [{ by_field: 'lang', analyzers: { en: { type: 'english' } } }, {}, 'default'],
      [{ by_field: 'nowhere', analyzers: { default: { type: 'standard' } } }, {}, 'nowhere'],
      [{ by_field: 'lang', analyzers: { default: { type: 'klingon' } } }, {}, 'klingon'],
      [{ by_field: 'lang', analyzers: { default: { type: 'standard' } }, alias: { x: 'missing' } }, {}, 'missing'],
      [multi, { enable_match: true }, 'enable_match'],
    ] as const) {
      const r = await status(c.createCollection({ collection_name: 'multi_bad', fields: fields(m, extra) as never, functions: fn }));
      expect(r.error_code, JSON.stringify(m)).toBe(ErrorCode.IllegalArgument);
      expect(r.reason).toContain(want);
    }
    const badNames = await c.runAnalyzer({ collection_name: 'multi', field_name: 'text', text: ['a', 'b', 'c'], analyzer_names: ['en', 'zh'] });
    expect(badNames.status.error_code).toBe(ErrorCode.IllegalArgument);
  });

  it('runs analyzers with Milvus parameter shapes', { timeout: 60_000 }, async () => {
    t = await startTestServer();
    const c = t.client;
    const en = await c.runAnalyzer({ analyzer_params: { type: 'english' }, text: ['The Running foxes, jumped!'], with_detail: true, with_hash: true });
    expect(en.status.error_code, en.status.reason).toBe(ErrorCode.SUCCESS);
    const toks = en.results[0]!.tokens;
    expect(toks.map((x) => x.token)).toEqual(['run', 'fox', 'jump']);
    // Byte offsets and positions of the original words; the hash is CRC-32 of the token.
    expect(toks.map((x) => [Number(x.start_offset), Number(x.end_offset), Number(x.position)])).toEqual([
      [4, 11, 1],
      [12, 17, 2],
      [19, 25, 3],
    ]);
    expect(toks.map((x) => Number(x.hash))).toEqual(['run', 'fox', 'jump'].map((w) => zlib.crc32(w) % 0xffffffff));

    const std = await c.runAnalyzer({ text: ['Hello, Wörld'] });
    expect(std.results[0]!.tokens.map((x) => x.token)).toEqual(['hello', 'wörld']);
    const custom = await c.runAnalyzer({
      analyzer_params: { tokenizer: 'whitespace', filter: ['lowercase', { type: 'stop', stop_words: ['_english_', 'foo'] }, { type: 'length', max: 5 }] },
      text: ['The FOO bar Quixotic baz'],
    });
    expect(custom.results[0]!.tokens.map((x) => x.token)).toEqual(['bar', 'baz']);

    await createDocs(c, COLL);
    const byField = await c.runAnalyzer({ collection_name: COLL, field_name: 'text', text: ['Gardens of STONE'] });
    expect(byField.results[0]!.tokens.map((x) => x.token)).toEqual(['garden', 'stone']);
    const notText = await c.runAnalyzer({ collection_name: COLL, field_name: 'note', text: ['x'] });
    expect(notText.status.error_code).not.toBe(ErrorCode.SUCCESS);
    expect(notText.status.reason).toContain('note');

    // icu keeps every word-break segment; chinese segments words (ICU's dictionary) and keeps Chinese / alphanumeric ones.
    const icu = await c.runAnalyzer({ analyzer_params: { tokenizer: 'icu' }, text: ['Привет! Как дела?'] });
    expect(icu.results[0]!.tokens.map((x) => x.token)).toEqual(['Привет', '!', ' ', 'Как', ' ', 'дела', '?']);
    const zh = await c.runAnalyzer({ analyzer_params: { type: 'chinese' }, text: ['Milvus 是向量数据库！'] });
    expect(zh.status.error_code, zh.status.reason).toBe(ErrorCode.SUCCESS);
    const zhToks = zh.results[0]!.tokens.map((x) => x.token);
    expect(zhToks.join('')).toBe('Milvus是向量数据库');
    expect(zhToks[0]).toBe('Milvus');
    const grams = await c.runAnalyzer({ analyzer_params: { tokenizer: { type: 'ngram', min_gram: 2, max_gram: 3 } }, text: ['abcd'] });
    expect(grams.results[0]!.tokens.map((x) => x.token)).toEqual(['ab', 'abc', 'bc', 'bcd', 'cd']);

    for (const [params, name] of [
      [{ type: 'klingon' }, 'klingon'],
      [{ tokenizer: { type: 'ngram', min_gram: 4, max_gram: 2 } }, 'min_gram'],
      [{ tokenizer: 'jieba' }, 'jieba'],
      [{ tokenizer: 'standard', filter: ['lowercase', 'sparkle'] }, 'sparkle'],
      [{ tokenizer: 'standard', filter: [{ type: 'stemmer', language: 'elvish' }] }, 'elvish'],
    ] as const) {
      const bad = await c.runAnalyzer({ analyzer_params: params, text: ['x'] });
      expect(bad.status.error_code).toBe(ErrorCode.IllegalArgument);
      expect(bad.status.reason).toContain(name);
    }
  });

  it('refuses bad full-text input with a reason and keeps serving', { timeout: 60_000 }, async () => {
    t = await startTestServer();
    const c = t.client;
    // Unknown analyzer on a field.
    // createCollection throws the failed status rather than returning it.
    const status = (p: Promise<{ error_code: string | number; reason: string }>) =>
      p.catch((e: unknown) => e as { error_code: string | number; reason: string });
    const badAnalyzer = await status(
      c.createCollection({
        collection_name: 'bad1',
        fields: [
          { name: 'id', data_type: DataType.Int64, is_primary_key: true },
          { name: 'text', data_type: DataType.VarChar, max_length: 100, enable_analyzer: true, analyzer_params: { type: 'klingon' } },
          { name: 'sparse', data_type: DataType.SparseFloatVector },
        ],
        functions: [{ name: 'f', type: FunctionType.BM25, input_field_names: ['text'], output_field_names: ['sparse'], params: {} }],
      }),
    );
    expect(badAnalyzer.error_code).toBe(ErrorCode.IllegalArgument);
    expect(badAnalyzer.reason).toContain('klingon');
    // A BM25 input without an analyzer.
    const noAnalyzer = await status(
      c.createCollection({
        collection_name: 'bad2',
        fields: [
          { name: 'id', data_type: DataType.Int64, is_primary_key: true },
          { name: 'text', data_type: DataType.VarChar, max_length: 100 },
          { name: 'sparse', data_type: DataType.SparseFloatVector },
        ],
        functions: [{ name: 'f', type: FunctionType.BM25, input_field_names: ['text'], output_field_names: ['sparse'], params: {} }],
      }),
    );
    expect(noAnalyzer.error_code).toBe(ErrorCode.IllegalArgument);
    expect(noAnalyzer.reason).toContain('enable_analyzer');

    await createDocs(c, COLL);
    expect((await c.insert({ collection_name: COLL, data: [{ id: 1, text: 'river stone', note: 'x', dense: [0, 1] }] })).status.error_code).toBe(
      ErrorCode.SUCCESS,
    );
    await c.loadCollection({ collection_name: COLL });

    // The BM25 output written directly (the SDK drops it, so send the raw Insert the way another client could).
    const pool = (c as unknown as { channelPool: unknown }).channelPool;
    const raw = (await promisify(
      pool as never,
      'Insert',
      {
        collection_name: COLL,
        num_rows: 1,
        fields_data: [
          { field_name: 'id', type: DataType.Int64, scalars: { long_data: { data: ['2'] } } },
          { field_name: 'text', type: DataType.VarChar, scalars: { string_data: { data: ['cloud'] } } },
          { field_name: 'note', type: DataType.VarChar, scalars: { string_data: { data: ['y'] } } },
          { field_name: 'dense', type: DataType.FloatVector, vectors: { dim: 2, float_vector: { data: [0, 1] } } },
          { field_name: 'sparse', type: DataType.SparseFloatVector, vectors: { dim: 8, sparse_float_vector: { dim: 8, contents: [Buffer.alloc(8)] } } },
        ],
      },
      10_000,
    )) as { status: { error_code: string; reason: string } };
    expect(raw.status.error_code).toBe(ErrorCode.IllegalArgument);
    expect(raw.status.reason).toContain('sparse');

    // text_match on a field without enable_match.
    const q = await c.query({ collection_name: COLL, filter: "text_match(note, 'x')", output_fields: ['id'] });
    expect(q.status.error_code).toBe(ErrorCode.IllegalArgument);
    expect(q.status.reason).toContain('enable_match');
    // An IP metric on the BM25 field.
    const ip = await c.search({ collection_name: COLL, anns_field: 'sparse', data: ['river'], limit: 3, metric_type: 'IP' });
    expect(ip.status.error_code).toBe(ErrorCode.IllegalArgument);

    // Nothing written changed and the server still answers.
    const all = await c.query({ collection_name: COLL, filter: 'id >= 0', output_fields: ['id', 'text'] });
    expect(all.data.map((r) => [Number(r['id']), r['text']])).toEqual([[1, 'river stone']]);
    const hits = await bm25Search(c, COLL, ['stone'], 3);
    expect(hits[0]!.map((h) => Number(h.id))).toEqual([1]);
  });
});
