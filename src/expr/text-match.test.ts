import { describe, expect, it } from 'vitest';
import { QuiverError } from '../common/errors.js';
import { MapBatch, type Column } from '../schema/types.js';
import { createAnalyzer } from '../text/analyzer.js';
import { compileFilter, type ExprSchema } from './index.js';

const english = createAnalyzer({ type: 'english' });
const schema: ExprSchema = {
  fields: [
    { name: 'id', dataType: 'Int64', nullable: false, isPrimaryKey: true },
    { name: 'text', dataType: 'VarChar', nullable: true, isPrimaryKey: false, textMatch: english },
    { name: 'plain', dataType: 'VarChar', nullable: false, isPrimaryKey: false },
  ],
  dynamicField: false,
};

const texts = ['Running dogs', 'a cat sat', 'THE DOG', '', 'birds and cats', 'null row'];
const batch = new MapBatch(
  texts.length,
  new Map<string, Column>([
    ['id', { kind: 'int64', data: BigInt64Array.from(texts.map((_, i) => BigInt(i))) }],
    ['text', { kind: 'string', data: texts, valid: Uint8Array.from([1, 1, 1, 1, 1, 0]) }],
    ['plain', { kind: 'string', data: texts }],
  ]),
);

const rowsOf = (filter: string): number[] => [...compileFilter(filter, schema)!.evaluate(batch)].flatMap((m, i) => (m ? [i] : []));

describe('text_match', () => {
  it('matches rows sharing any analyzed token with the query', () => {
    expect(rowsOf("text_match(text, 'dog')")).toEqual([0, 2]);
    expect(rowsOf("text_match(text, 'Cats RUN')")).toEqual([0, 1, 4]);
    expect(rowsOf("text_match(text, 'the and')")).toEqual([]); // only stop words
    expect(rowsOf("text_match(text, 'row')")).toEqual([]); // null rows never match
    expect(rowsOf("not text_match(text, 'dog') and id < 3")).toEqual([1]);
    // A row subset (gathered into its own column) gives the same answers.
    expect([...compileFilter("text_match(text, 'cat')", schema)!.evaluate(batch, Uint32Array.from([4, 1, 0]))]).toEqual([1, 1, 0]);
  });

  it('refuses fields without enable_match and non-constant queries', () => {
    expect(() => compileFilter("text_match(plain, 'dog')", schema)).toThrow(/enable_match/);
    expect(() => compileFilter("text_match(plain, 'dog')", schema)).toThrow(QuiverError);
    expect(() => compileFilter('text_match(text, plain)', schema)).toThrow(/string constant/);
    expect(() => compileFilter("text_match('dog', text)", schema)).toThrow(/VarChar field/);
    expect(() => compileFilter('text_match(text)', schema)).toThrow(/2 arguments/);
  });
});

describe('phrase_match and minimum_should_match', () => {
  const standard = createAnalyzer({ type: 'standard' });
  const phraseSchema: ExprSchema = {
    fields: [
      { name: 'id', dataType: 'Int64', nullable: false, isPrimaryKey: true },
      { name: 'en', dataType: 'VarChar', nullable: false, isPrimaryKey: false, textMatch: english },
      { name: 'std', dataType: 'VarChar', nullable: true, isPrimaryKey: false, textMatch: standard },
    ],
    dynamicField: false,
  };
  const docs = [
    'machine learning boosts efficiency', // 0
    'learning machine models', // 1
    'deep learning with machine learning', // 2
    'machine deep learning', // 3
    'the machine of the year learning', // 4
    'a b c', // 5
    'a b b x c', // 6
    'x y y z', // 7
  ];
  const b = new MapBatch(
    docs.length,
    new Map<string, Column>([
      ['id', { kind: 'int64', data: BigInt64Array.from(docs.map((_, i) => BigInt(i))) }],
      ['en', { kind: 'string', data: docs }],
      ['std', { kind: 'string', data: [...docs.slice(0, 7), 'null'], valid: Uint8Array.from([1, 1, 1, 1, 1, 1, 1, 0]) }],
    ]),
  );
  const rows = (filter: string): number[] => [...compileFilter(filter, phraseSchema)!.evaluate(b)].flatMap((m, i) => (m ? [i] : []));

  it('matches the phrase in order, with up to slop extra positions between tokens', () => {
    expect(rows("phrase_match(std, 'machine learning')")).toEqual([0, 2]);
    expect(rows("phrase_match(std, 'machine learning', 0)")).toEqual([0, 2]);
    expect(rows("phrase_match(std, 'machine learning', 1)")).toEqual([0, 2, 3]);
    // Tantivy's sloppy phrase never reorders: 'learning machine' is not 'machine learning' at any slop.
    expect(rows("phrase_match(std, 'machine learning', 100)")).toEqual([0, 2, 3, 4]);
    expect(rows("PHRASE_MATCH(std, 'learning machine', 100)")).toEqual([1, 2]);
    expect(rows("phrase_match(std, 'a c', 1)")).toEqual([5]);
    expect(rows("phrase_match(std, 'a c', 2)")).toEqual([5]);
    expect(rows("phrase_match(std, 'a c', 3)")).toEqual([5, 6]);
    // One token is a text_match; a null row never matches.
    expect(rows("phrase_match(std, 'y')")).toEqual([]);
    expect(rows("phrase_match(std, 'c')")).toEqual([5, 6]);
    expect(rows("phrase_match(std, '')")).toEqual([]);
    expect(rows("not phrase_match(std, 'a b') and id < 7")).toEqual([0, 1, 2, 3, 4]);
  });

  it('keeps the gaps stop words leave, in the query and in the text', () => {
    // english drops 'the' and 'of': 'machine of the year' is machine@0 year@3 on both sides.
    expect(rows("phrase_match(en, 'machine of the year')")).toEqual([4]);
    expect(rows("phrase_match(en, 'machine year')")).toEqual([]);
    expect(rows("phrase_match(en, 'machine year', 2)")).toEqual([4]);
    // Stemming applies to the phrase too ('boosting' → 'boost').
    expect(rows("phrase_match(en, 'learning boosting')")).toEqual([0]);
  });

  it('follows the phrase chain greedily, as Tantivy does', () => {
    // a@0 b@1 b@2 x@3 c@4 with slop 1: a→b@2→c@4 fits (one extra step each), but Tantivy takes b@1, the
    // first b reachable from a, and c@4 is then two steps too far; so Quiver does not match either.
    expect(rows("phrase_match(std, 'a b c', 1)")).toEqual([5]);
    expect(rows("phrase_match(std, 'a b c', 2)")).toEqual([5, 6]);
  });

  it('text_match with minimum_should_match counts query clauses', () => {
    expect(rows("text_match(std, 'a b c x')")).toEqual([5, 6]);
    expect(rows("text_match(en, 'x y', minimum_should_match=2)")).toEqual([7]);
    expect(rows("text_match(std, 'a b c x', minimum_should_match=2)")).toEqual([5, 6]);
    expect(rows("text_match(std, 'a b c x', MINIMUM_SHOULD_MATCH = 3)")).toEqual([5, 6]);
    expect(rows("text_match(std, 'a b c x', minimum_should_match=4)")).toEqual([6]);
    expect(rows("text_match(std, 'a b c x', minimum_should_match=5)")).toEqual([]);
    expect(rows("text_match(std, 'a b c x', minimum_should_match=1000)")).toEqual([]);
    // A repeated query token is a repeated clause (Tantivy's boolean query counts clauses).
    expect(rows("text_match(std, 'x x', minimum_should_match=2)")).toEqual([6]);
    expect(rows("text_match(std, 'x', minimum_should_match=2)")).toEqual([]);
    expect(rows("text_match(en, 'machine machine', minimum_should_match=2)")).toEqual([0, 1, 2, 3, 4]);
  });

  it('refuses bad options with the value named', () => {
    expect(() => compileFilter("text_match(std, 'a', minimum_should_match=0)", phraseSchema)).toThrow(
      /minimum_should_match should be in \[1, 1000\], got 0/,
    );
    expect(() => compileFilter("text_match(std, 'a', minimum_should_match=1001)", phraseSchema)).toThrow(/got 1001/);
    expect(() => compileFilter("text_match(std, 'a', 2)", phraseSchema)).toThrow(/minimum_should_match/);
    expect(() => compileFilter("text_match(std, 'a', minimum_should_match=x)", phraseSchema)).toThrow(/integer/);
    expect(() => compileFilter("phrase_match(std, 'a b', -1)", phraseSchema)).toThrow(/slop should be in \[0, 4294967295\], got -1/);
    expect(() => compileFilter("phrase_match(std, 'a b', 4294967296)", phraseSchema)).toThrow(/got 4294967296/);
    expect(() => compileFilter("phrase_match(std, 'a b', 'x')", phraseSchema)).toThrow(/slop/);
    expect(() => compileFilter("phrase_match(std, 'a b', id)", phraseSchema)).toThrow(/slop/);
    expect(() => compileFilter("phrase_match(id, 'a b')", phraseSchema)).toThrow(/enable_match/);
    expect(() => compileFilter('phrase_match(std)', phraseSchema)).toThrow(/2 arguments/);
    expect(() => compileFilter('a == 1 and b = 2', phraseSchema)).toThrow(/use == to compare/);
  });
});
