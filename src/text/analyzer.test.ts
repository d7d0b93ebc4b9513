import { describe, expect, it } from 'vitest';
import { QuiverError } from '../common/errors.js';
import { createAnalyzer, ENGLISH_STOP_WORDS } from './analyzer.js';

describe('analyzers', () => {
  it('standard: Unicode words, lowercased, UTF-8 byte offsets, positions', () => {
    const a = createAnalyzer({ type: 'standard' });
    expect(a.terms("Hello, WÖRLD! it's 3.14 東京")).toEqual(['hello', 'wörld', "it's", '3.14', '東京']);
    expect(a.analyze('ab café x')).toEqual([
      { token: 'ab', startOffset: 0, endOffset: 2, position: 0, positionLength: 1 },
      { token: 'café', startOffset: 3, endOffset: 8, position: 1, positionLength: 1 },
      { token: 'x', startOffset: 9, endOffset: 10, position: 2, positionLength: 1 },
    ]);
    expect(createAnalyzer(undefined).terms('A b')).toEqual(['a', 'b']);
    expect(createAnalyzer('{"type":"standard","stop_words":["b"]}').terms('A b c')).toEqual(['a', 'c']);
  });

  it('english: stems (Porter2) and drops the English stop words, keeping positions of the stream', () => {
    const a = createAnalyzer({ type: 'english' });
    expect(a.terms("The quick foxes were running over the lazy dog's bones")).toEqual(['quick', 'fox', 'were', 'run', 'over', 'lazi', 'dog', 'bone']);
    expect(a.analyze('the runs').map((t) => [t.token, t.position])).toEqual([['run', 1]]);
    expect(ENGLISH_STOP_WORDS).toContain('the');
  });

  it('custom chains: whitespace tokenizer and each filter', () => {
    const a = createAnalyzer({
      tokenizer: { type: 'whitespace' },
      filter: ['lowercase', 'asciifolding', 'removepunct', { type: 'stop', stop_words: ['_english_', 'zed'] }, { type: 'length', max: 5 }],
    });
    expect(a.terms('The Café , ZED naïve toolongword ok!')).toEqual(['cafe', 'naive', 'ok!']);
    expect(createAnalyzer({ tokenizer: 'standard', filter: ['alphanumonly'] }).terms('abc über 12')).toEqual(['abc', '12']);
    expect(createAnalyzer({ tokenizer: 'standard', filter: [{ type: 'stemmer', language: 'English' }] }).terms('jumping')).toEqual(['jump']);
  });

  it('refuses unknown analyzers, tokenizers, filters and malformed params, naming them', () => {
    const cases: [unknown, string][] = [
      [{ type: 'chinese' }, 'chinese'],
      [{ tokenizer: 'jieba' }, 'jieba'],
      [{ tokenizer: 'standard', filter: ['sparkle'] }, 'sparkle'],
      [{ tokenizer: 'standard', filter: [{ type: 'ngram' }] }, 'ngram'],
      [{ tokenizer: 'standard', filter: [{ type: 'stemmer', language: 'elvish' }] }, 'elvish'],
      [{ tokenizer: 'standard', filter: [{ type: 'length', max: 0 }] }, 'length'],
      [{ tokenizer: 'standard', filter: [{ type: 'stop', stop_words: ['_klingon_'] }] }, '_klingon_'],
      [{ tokenizer: 'standard', colour: 1 }, 'colour'],
      [{ type: 'standard', tokenizer: 'standard' }, 'not both'],
      ['{not json', 'JSON'],
      [[1], 'object'],
    ];
    for (const [params, name] of cases) {
      let err: unknown;
      try {
        createAnalyzer(params);
      } catch (e) {
        err = e;
      }
      expect(err, JSON.stringify(params)).toBeInstanceOf(QuiverError);
      expect((err as QuiverError).message).toContain(name);
    }
  });
});
