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
