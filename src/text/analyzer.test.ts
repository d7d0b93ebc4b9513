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

  it('ngram tokenizer and filter: every character n-gram of the text / of each token, like a naive enumeration', () => {
    const naive = (s: string, min: number, max: number, prefixOnly = false): string[] => {
      const c = [...s];
      const out: string[] = [];
      for (let i = 0; i < (prefixOnly ? Math.min(1, c.length) : c.length); i++)
        for (let n = min; n <= max && i + n <= c.length; n++) out.push(c.slice(i, i + n).join(''));
      return out;
    };
    for (const text of ['Milvus', 'a', '', 'vector 数据库 ✓']) {
      expect(createAnalyzer({ tokenizer: { type: 'ngram', min_gram: 2, max_gram: 3 } }).terms(text)).toEqual(naive(text, 2, 3));
      expect(createAnalyzer({ tokenizer: { type: 'ngram', min_gram: 1, max_gram: 4, prefix_only: true } }).terms(text)).toEqual(naive(text, 1, 4, true));
    }
    // Byte offsets of each gram: "数据" starts after "ab" (2 bytes) and spans 6 bytes.
    const grams = createAnalyzer({ tokenizer: { type: 'ngram', min_gram: 2, max_gram: 2 } }).analyze('ab数据');
    expect(grams.map((g) => [g.token, g.startOffset, g.endOffset, g.position])).toEqual([
      ['ab', 0, 2, 0],
      ['b数', 1, 5, 1],
      ['数据', 2, 8, 2],
    ]);
    // The filter: n-grams of each (lowercased) token, all at that token's position.
    const f = createAnalyzer({ tokenizer: 'whitespace', filter: ['lowercase', { type: 'ngram', min_gram: 2, max_gram: 3 }] });
    expect(f.terms('Stone x RIVER')).toEqual([...naive('stone', 2, 3), ...naive('river', 2, 3)]);
    expect(new Set(f.analyze('Stone x RIVER').map((t) => t.position))).toEqual(new Set([0, 2]));
  });

  it('icu tokenizer keeps every word-break segment; chinese analyzer segments words and keeps Chinese / alphanumeric ones', () => {
    expect(createAnalyzer({ tokenizer: 'icu' }).terms('Привет! Как дела?')).toEqual(['Привет', '!', ' ', 'Как', ' ', 'дела', '?']);
    expect(createAnalyzer({ tokenizer: 'icu', filter: ['removepunct'] }).terms('Привет! Как дела?')).toEqual(['Привет', ' ', 'Как', ' ', 'дела']);
    const zh = createAnalyzer({ type: 'chinese' });
    const text = 'Milvus 是一个高性能、可扩展的向量数据库！';
    const toks = zh.terms(text);
    // Concatenated, the kept tokens are the text without spaces and punctuation: a segmentation, nothing lost.
    expect(toks.join('')).toBe(text.replace(/[\s、！]/gu, ''));
    expect(toks).toContain('Milvus');
    expect(toks).toContain('高性能');
    expect(toks.every((t) => /^[\p{Script=Han}A-Za-z0-9]+$/u.test(t))).toBe(true);
    // The filters on their own.
    const cn = createAnalyzer({ tokenizer: 'whitespace', filter: ['cnalphanumonly'] });
    expect(cn.terms('数据 abc12 数据2 a-b 数，')).toEqual(['数据', 'abc12', '数据2']);
    expect(createAnalyzer({ tokenizer: 'whitespace', filter: ['cncharonly'] }).terms('数据 abc 数据2 向量')).toEqual(['数据', '向量']);
  });

  it('refuses unknown analyzers, tokenizers, filters and malformed params, naming them', () => {
    const cases: [unknown, string][] = [
      [{ type: 'japanese' }, 'japanese'],
      [{ tokenizer: 'jieba' }, 'jieba'],
      [{ tokenizer: { type: 'ngram', min_gram: 3, max_gram: 2 } }, 'greater than max_gram'],
      [{ tokenizer: { type: 'ngram', min_gram: 0, max_gram: 2 } }, 'min_gram'],
      [{ tokenizer: { type: 'ngram', min_gram: 1, max_gram: 2, prefix_only: 'yes' } }, 'prefix_only'],
      [{ tokenizer: 'standard', filter: [{ type: 'ngram', min_gram: 1, max_gram: 65 }] }, 'max_gram'],
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
