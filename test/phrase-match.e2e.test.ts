import { afterEach, describe, expect, it } from 'vitest';
import { DataType, ErrorCode, type MilvusClient } from '@zilliz/milvus2-sdk-node';
import { seededRandom } from '../src/testing/index.js';
import { startTestServer, type TestServer } from './helpers.js';

/**
 * phrase_match (with slop) and text_match with minimum_should_match through the official SDK, over sealed
 * and growing rows, against a naive reference computed here: the english analyzer of these texts is
 * "lowercase words, stop words dropped but counted in positions" (each vocabulary word stems to itself
 * alone). No text repeats a vocabulary word, so a phrase is found iff some placement of its words fits,
 * which is what the reference checks.
 */

const COLL = 'phrases';
const VOCAB = ['river', 'stone', 'cloud', 'forest', 'light', 'storm', 'ocean', 'field', 'tower', 'garden', 'winter', 'summer'];
const STOP = ['the', 'and', 'of', 'a', 'is'];
const rnd = seededRandom(11);

function makeText(): string {
  const pool = [...VOCAB];
  const words: string[] = [];
  const n = 2 + Math.floor(rnd() * 8);
  for (let i = 0; i < n; i++) {
    if (rnd() < 0.25) words.push(STOP[Math.floor(rnd() * STOP.length)]!);
    else words.push(pool.splice(Math.floor(rnd() * Math.min(pool.length, 5)), 1)[0]!);
  }
  return words.join(' ');
}

/** word → position, stop words leaving gaps. */
function naivePositions(text: string): Map<string, number> {
  const out = new Map<string, number>();
  text
    .toLowerCase()
    .split(/\s+/)
    .filter((w) => w !== '')
    .forEach((w, i) => {
      if (!STOP.includes(w)) out.set(w, i);
    });
  return out;
}

/** The phrase's words in order within slop: each next word 1 + up to slop extra positions further than the phrase spaces them. */
function naivePhrase(text: string, phrase: string, slop: number): boolean {
  const doc = naivePositions(text);
  const q = [...naivePositions(phrase)];
  if (q.length === 0) return false;
  if (q.length === 1) return doc.has(q[0]![0]);
  for (let i = 1; i < q.length; i++) {
    const [prev, prevAt] = q[i - 1]!;
    const [word, at] = q[i]!;
    const a = doc.get(prev);
    const b = doc.get(word);
    if (a === undefined || b === undefined) return false;
    const shift = b - a - (at - prevAt);
    if (shift < 0 || shift > slop) return false;
  }
  return true;
}

function naiveAtLeast(text: string, query: string, n: number): boolean {
  const doc = naivePositions(text);
  return [...naivePositions(query).keys()].filter((w) => doc.has(w)).length >= n;
}

async function ids(c: MilvusClient, filter: string): Promise<number[]> {
  const res = await c.query({ collection_name: COLL, filter, output_fields: ['id'], limit: 16_384 });
  expect(res.status.error_code, `${filter}: ${res.status.reason}`).toBe(ErrorCode.SUCCESS);
  return res.data.map((r) => Number(r['id'])).sort((a, b) => a - b);
}

describe('phrase_match and text_match minimum_should_match', () => {
  let t: TestServer | undefined;
  afterEach(async () => {
    await t?.close();
    t = undefined;
  });

  it('answer like a naive reference over sealed and growing rows, and refuse bad options', { timeout: 120_000 }, async () => {
    t = await startTestServer();
    const c = t.client;
    const created = await c.createCollection({
      collection_name: COLL,
      fields: [
        { name: 'id', data_type: DataType.Int64, is_primary_key: true },
        { name: 'text', data_type: DataType.VarChar, max_length: 500, enable_analyzer: true, enable_match: true, analyzer_params: { type: 'english' } },
        { name: 'plain', data_type: DataType.VarChar, max_length: 50, enable_analyzer: true },
        { name: 'v', data_type: DataType.FloatVector, dim: 2 },
      ],
    });
    expect(created.error_code, created.reason).toBe(ErrorCode.SUCCESS);
    await c.createIndex({ collection_name: COLL, field_name: 'v', index_type: 'FLAT', metric_type: 'L2' });
    const docs = new Map<number, string>();
    const rows = (from: number, n: number) =>
      Array.from({ length: n }, (_, i) => {
        const id = from + i;
        docs.set(id, makeText());
        return { id, text: docs.get(id)!, plain: 'x', v: [id, 1] };
      });
    expect((await c.insert({ collection_name: COLL, data: rows(0, 300) })).status.error_code).toBe(ErrorCode.SUCCESS);
    await c.flush({ collection_names: [COLL] });
    expect((await c.insert({ collection_name: COLL, data: rows(300, 100) })).status.error_code).toBe(ErrorCode.SUCCESS);
    await c.loadCollection({ collection_name: COLL });

    const phrases = ['river stone', 'stone river', 'cloud forest light', 'the river of stone', 'Storm', 'garden and winter'];
    let nonTrivial = 0;
    for (const p of phrases) {
      for (const slop of [0, 1, 3]) {
        const want = [...docs].filter(([, s]) => naivePhrase(s, p, slop)).map(([id]) => id);
        if (want.length > 0 && want.length < docs.size) nonTrivial++;
        expect(await ids(c, `phrase_match(text, '${p}', ${slop})`), `${p} ~${slop}`).toEqual(want);
      }
    }
    expect(nonTrivial).toBeGreaterThan(6);
    expect(await ids(c, "phrase_match(text, 'river stone')")).toEqual(await ids(c, "phrase_match(text, 'river stone', 0)"));
    // Combined with other predicates and negated.
    const wantNot = [...docs].filter(([id, s]) => id < 50 && !naivePhrase(s, 'river stone', 1)).map(([id]) => id);
    expect(await ids(c, "id < 50 and not phrase_match(text, 'river stone', 1)")).toEqual(wantNot);

    for (const [q, n] of [
      ['river stone cloud forest', 2],
      ['river stone cloud forest', 3],
      ['the winter summer ocean field tower', 4],
      ['river', 1],
    ] as const) {
      const want = [...docs].filter(([, s]) => naiveAtLeast(s, q, n)).map(([id]) => id);
      expect(await ids(c, `text_match(text, '${q}', minimum_should_match=${n})`), `${q} ≥${n}`).toEqual(want);
    }

    // Bad options: each a Milvus error naming the value; the server keeps answering.
    for (const [filter, reason] of [
      ["text_match(text, 'river', minimum_should_match=0)", 'got 0'],
      ["text_match(text, 'river', minimum_should_match=1001)", 'got 1001'],
      ["phrase_match(text, 'river stone', -2)", 'got -2'],
      ["phrase_match(text, 'river stone', 'x')", 'slop'],
      ["phrase_match(plain, 'river stone')", 'enable_match'],
    ]) {
      const res = await c.query({ collection_name: COLL, filter: filter!, output_fields: ['id'] });
      expect(res.status.error_code, filter).not.toBe(ErrorCode.SUCCESS);
      expect(res.status.reason).toContain(reason);
    }
    expect((await ids(c, 'id >= 0')).length).toBe(docs.size);
  });
});
