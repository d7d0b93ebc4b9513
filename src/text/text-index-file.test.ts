import { describe, expect, it } from 'vitest';
import type { CollectionRecord } from '../coord/records.js';
import { attachPositionalIndex, phraseMatchRows, textMatchRows } from '../expr/text-match.js';
import type { FieldSchema, SparseRow } from '../schema/types.js';
import { seededRandom } from '../testing/index.js';
import { createAnalyzer } from './analyzer.js';
import { textIndexCounters } from './index-counters.js';
import { Bm25ColumnIndex, termFrequencies } from './bm25.js';
import { PositionalIndex } from './positional-index.js';
import { buildTextIndexFile, openTextIndexFile } from './text-index-file.js';

const WORDS = ['river', 'stone', 'cloud', 'the', 'forest', 'light', 'of', 'storm'];

function field(fieldId: number, name: string, dataType: FieldSchema['dataType'], typeParams: Record<string, string>): FieldSchema {
  return { fieldId, name, dataType, typeParams, isPrimaryKey: false } as unknown as FieldSchema;
}

const textField = field(101, 'text', 'VarChar', { enable_analyzer: 'true', enable_match: 'true', analyzer_params: '{"type":"english"}' });
const sparseField = field(102, 'sparse', 'SparseFloatVector', {});
const coll = {
  id: 1,
  name: 'c',
  schema: {
    fields: [field(100, 'id', 'Int64', {}), textField, sparseField],
    functions: [{ name: 'f', description: '', type: 'BM25', inputFieldNames: ['text'], outputFieldNames: ['sparse'], params: {} }],
  },
} as unknown as CollectionRecord;

function texts(n: number, seed: number): string[] {
  const rnd = seededRandom(seed);
  return Array.from({ length: n }, () => Array.from({ length: 1 + Math.floor(rnd() * 9) }, () => WORDS[Math.floor(rnd() * WORDS.length)]!).join(' '));
}

describe('full-text index files', () => {
  const analyzer = createAnalyzer({ type: 'english' });

  it('a text index opened from its file answers text_match and phrase_match like a fresh build', () => {
    const data = texts(300, 5);
    data[7] = '';
    const valid = new Uint8Array(data.length).fill(1);
    valid[3] = 0;
    const col = { kind: 'string' as const, data, valid };
    const built = buildTextIndexFile(coll, textField, col)!;
    const opened = openTextIndexFile(built.bytes, 'mem', coll, textField, data.length);
    expect(opened).toBeInstanceOf(PositionalIndex);
    // Naive reference: tokens per row, then each query checked by scanning.
    const toks = data.map((s, r) => (valid[r] === 0 ? [] : analyzer.analyze(s)));
    // A fresh column object of the same texts (the cache keys on the column) with the opened index attached:
    // queries read it and build nothing.
    const fresh = { kind: 'string' as const, data, valid };
    attachPositionalIndex(fresh, analyzer.key, opened as PositionalIndex);
    const builds = textIndexCounters.builtOnFirstUse;
    for (const q of ['river', 'stone cloud', 'the storm']) {
      const terms = analyzer.terms(q);
      const want = toks.map((ts) => Number(ts.some((t) => terms.includes(t.token))));
      expect(Array.from(textMatchRows(fresh, analyzer, terms))).toEqual(want);
    }
    expect(textIndexCounters.builtOnFirstUse).toBe(builds);
    // The opened postings equal the built ones.
    const a = opened as PositionalIndex;
    const b = built.index as PositionalIndex;
    expect([...a.postings.keys()].sort()).toEqual([...b.postings.keys()].sort());
    for (const [t, p] of b.postings) {
      const o = a.postings.get(t)!;
      expect(Array.from(o.rows)).toEqual(Array.from(p.rows));
      for (let k = 0; k < p.rows.length; k++) {
        expect(Array.from(o.positions.subarray(o.starts[k]!, o.starts[k + 1]!))).toEqual(Array.from(p.positions.subarray(p.starts[k]!, p.starts[k + 1]!)));
      }
    }
    // phrase_match over the file's index (attached by build) agrees with a naive adjacency scan.
    const want = toks.map((ts) => Number(ts.some((t, i) => t.token === 'river' && ts[i + 1]?.token === 'stone' && ts[i + 1]!.position === t.position + 1)));
    expect(Array.from(phraseMatchRows(fresh, analyzer, 'river stone', 0))).toEqual(want);
    expect(textIndexCounters.builtOnFirstUse).toBe(builds);
  });

  it('a BM25 index opened from its file scores like a fresh build', () => {
    const rows: SparseRow[] = texts(200, 9).map((s) => termFrequencies(analyzer, s));
    const col = { kind: 'sparse' as const, data: rows };
    const built = buildTextIndexFile(coll, sparseField, col as never)!;
    const opened = openTextIndexFile(built.bytes, 'mem', coll, sparseField, rows.length) as Bm25ColumnIndex;
    const fresh = new Bm25ColumnIndex(rows);
    const query = termFrequencies(analyzer, 'river storm light');
    const stats = { n: rows.length, avgdl: 4, df: new Map<number, number>() };
    const params = { k1: 1.2, b: 0.75 };
    expect([...opened.score(query, stats, params, undefined)].sort()).toEqual([...fresh.score(query, stats, params, undefined)].sort());
    expect(Array.from(opened.docLen)).toEqual(Array.from(fresh.docLen));
  });

  it('refuses a torn or mismatched file with the reason, and ignores one built by other analyzer params', () => {
    const data = texts(50, 3);
    const built = buildTextIndexFile(coll, textField, { kind: 'string', data })!;
    expect(() => openTextIndexFile(built.bytes.subarray(0, built.bytes.length - 16), 'torn', coll, textField, data.length)).toThrow(/torn.*past the file/);
    expect(() => openTextIndexFile(built.bytes, 'rows', coll, textField, data.length + 1)).toThrow(/holds 50 rows, expected 51/);
    expect(() => openTextIndexFile(built.bytes, 'kind', coll, sparseField, data.length)).toThrow(/holds a text index, expected bm25/);
    const other = { ...textField, typeParams: { ...textField.typeParams, analyzer_params: '{"type":"standard"}' } } as FieldSchema;
    expect(openTextIndexFile(built.bytes, 'other', coll, other, data.length)).toBeUndefined();
  });
});
