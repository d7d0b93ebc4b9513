/**
 * Text analyzers with Milvus's parameter shapes (`analyzer_params` of a VarChar field, of a BM25 function,
 * of RunAnalyzer):
 *
 *   {type: "standard", stop_words?: [...]}   standard tokenizer → lowercase (→ stop)
 *   {type: "english", stop_words?: [...]}    standard tokenizer → lowercase → English stemmer → stop(_english_) (→ stop)
 *   {type: "chinese", stop_words?: [...]}    Chinese word segmentation → cnalphanumonly (→ stop)
 *   {tokenizer: "standard" | "whitespace" | "icu" | {type: "ngram", min_gram, max_gram, prefix_only?}, filter: [filter, ...]}
 *
 * Filters: "lowercase", "asciifolding", "alphanumonly", "cnalphanumonly", "cncharonly", "removepunct",
 * {type: "stop", stop_words: [...]} ("_english_" expands to the English list), {type: "stemmer",
 * language: "english"}, {type: "length", max: n}, {type: "ngram", min_gram, max_gram} (each token's
 * character n-grams, at the token's position). Anything else is refused with ParameterInvalid naming it,
 * so a schema never silently indexes text differently from what its author asked for.
 *
 * The standard tokenizer is Unicode word segmentation (UAX #29) from `Intl.Segmenter`, keeping the
 * word-like segments. The icu tokenizer is the same ICU word break, keeping every segment (spaces and
 * punctuation too, as Milvus's icu tokenizer does). The chinese analyzer's tokenizer is ICU's dictionary
 * word segmentation for Chinese (`Intl.Segmenter('zh')`), not jieba: no jieba library is part of Quiver,
 * so a few compound words split differently from Milvus. Offsets are UTF-8 byte offsets, as Milvus (Rust)
 * reports them.
 */

import stem from 'wink-porter2-stemmer';
import { quiverError } from '../common/errors.js';

export interface AnalyzerToken {
  readonly token: string;
  /** UTF-8 byte offsets into the analyzed text. */
  readonly startOffset: number;
  readonly endOffset: number;
  /** Index of the token in the tokenizer's stream (filters that drop tokens leave gaps, as in Milvus). */
  readonly position: number;
  readonly positionLength: number;
}

export interface Analyzer {
  /** Tokens with offsets and positions. */
  analyze(text: string): AnalyzerToken[];
  /** Just the token strings (the hot path of BM25 and text_match). */
  terms(text: string): string[];
  /** The params it was built from, canonical JSON: two analyzers with the same key tokenize alike. */
  readonly key: string;
}

/** The English stop words of Milvus's `english` analyzer and of `_english_` (the Lucene/Tantivy list). */
export const ENGLISH_STOP_WORDS: readonly string[] = [
  'a', 'an', 'and', 'are', 'as', 'at', 'be', 'but', 'by', 'for', 'if', 'in', 'into', 'is', 'it', 'no', 'not', 'of', 'on', 'or',
  'such', 'that', 'the', 'their', 'then', 'there', 'these', 'they', 'this', 'to', 'was', 'will', 'with',
]; // prettier-ignore

/** Bounds that keep one request's analyzer small. */
const FILTERS_MAX = 32;
const STOP_WORDS_MAX = 10_000;
const TOKEN_LENGTH_MAX = 65_535;

interface RawToken {
  text: string;
  start: number;
  end: number;
  position: number;
}

type Tokenizer = (text: string) => RawToken[];
/** A filter maps a token's text to its new text, or null to drop it, or (n-grams) to several at its position. */
type TokenFilter = (t: string) => string | null | readonly string[];

/** Bounds of n-gram lengths (characters): one token must not explode into thousands. */
const NGRAM_MAX = 64;

function bad(reason: string): never {
  throw quiverError('ParameterInvalid', `invalid analyzer params: ${reason}`);
}

/** UTF-16 index → UTF-8 byte offset, computed incrementally over increasing indices. */
function byteOffsets(text: string): (utf16: number) => number {
  let at = 0;
  let bytes = 0;
  return (utf16) => {
    for (; at < utf16; at++) {
      const c = text.charCodeAt(at);
      if (c < 0x80) bytes += 1;
      else if (c < 0x800) bytes += 2;
      else if (c >= 0xd800 && c <= 0xdbff) {
        bytes += 4;
        at++;
      } else bytes += 3;
    }
    return bytes;
  };
}

const segmenter = new Intl.Segmenter('en', { granularity: 'word' });

const standardTokenizer: Tokenizer = (text) => {
  const out: RawToken[] = [];
  const off = byteOffsets(text);
  for (const s of segmenter.segment(text)) {
    if (!s.isWordLike) continue;
    const start = off(s.index);
    out.push({ text: s.segment, start, end: off(s.index + s.segment.length), position: out.length });
  }
  return out;
};

/** Every segment of ICU's word break (spaces and punctuation included), for the `icu` tokenizer. */
const icuSegmenter = new Intl.Segmenter(undefined, { granularity: 'word' });
const icuTokenizer: Tokenizer = (text) => {
  const out: RawToken[] = [];
  const off = byteOffsets(text);
  for (const s of icuSegmenter.segment(text)) {
    out.push({ text: s.segment, start: off(s.index), end: off(s.index + s.segment.length), position: out.length });
  }
  return out;
};

/** ICU's dictionary-based word segmentation of Chinese, word-like segments only (the `chinese` analyzer). */
const zhSegmenter = new Intl.Segmenter('zh', { granularity: 'word' });
const chineseTokenizer: Tokenizer = (text) => {
  const out: RawToken[] = [];
  const off = byteOffsets(text);
  for (const s of zhSegmenter.segment(text)) {
    if (!s.isWordLike) continue;
    out.push({ text: s.segment, start: off(s.index), end: off(s.index + s.segment.length), position: out.length });
  }
  return out;
};

/** Lengths [min_gram, max_gram] of an ngram tokenizer or filter, checked. */
function gramRange(f: Readonly<Record<string, unknown>>, where: string): [number, number] {
  const min = f['min_gram'];
  const max = f['max_gram'];
  for (const [k, v] of [
    ['min_gram', min],
    ['max_gram', max],
  ] as const) {
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > NGRAM_MAX)
      bad(`${where} ${k} must be an integer in [1, ${NGRAM_MAX}], got ${JSON.stringify(v)}`);
  }
  if ((min as number) > (max as number)) bad(`${where} min_gram ${String(min)} is greater than max_gram ${String(max)}`);
  return [min as number, max as number];
}

/**
 * Character n-grams of the whole text (Tantivy's NgramTokenizer): for each start, every length from
 * min_gram to max_gram that fits; with prefix_only, only the grams starting at the first character.
 * Characters are Unicode scalar values; each gram is one token, positions in emission order.
 */
function ngramTokenizer(min: number, max: number, prefixOnly: boolean): Tokenizer {
  return (text) => {
    const chars = [...text];
    const byteAt = new Array<number>(chars.length + 1);
    byteAt[0] = 0;
    for (let i = 0; i < chars.length; i++) byteAt[i + 1] = byteAt[i]! + Buffer.byteLength(chars[i]!, 'utf8');
    const out: RawToken[] = [];
    const starts = prefixOnly ? Math.min(1, chars.length) : chars.length;
    for (let i = 0; i < starts; i++) {
      for (let n = min; n <= max && i + n <= chars.length; n++) {
        out.push({ text: chars.slice(i, i + n).join(''), start: byteAt[i]!, end: byteAt[i + n]!, position: out.length });
      }
    }
    return out;
  };
}

/** Character n-grams of one token, for the ngram filter (a token shorter than min_gram yields none). */
function ngramFilter(min: number, max: number): TokenFilter {
  return (t) => {
    const chars = [...t];
    const out: string[] = [];
    for (let i = 0; i < chars.length; i++) for (let n = min; n <= max && i + n <= chars.length; n++) out.push(chars.slice(i, i + n).join(''));
    return out;
  };
}

const whitespaceTokenizer: Tokenizer = (text) => {
  const out: RawToken[] = [];
  const off = byteOffsets(text);
  for (const m of text.matchAll(/\S+/gu)) {
    const start = off(m.index);
    out.push({ text: m[0], start, end: off(m.index + m[0].length), position: out.length });
  }
  return out;
};

function tokenizerOf(raw: unknown): Tokenizer {
  const name = typeof raw === 'string' ? raw : raw !== null && typeof raw === 'object' ? (raw as { type?: unknown }).type : undefined;
  const params = raw !== null && typeof raw === 'object' ? (raw as Record<string, unknown>) : {};
  if (name === 'standard') return standardTokenizer;
  if (name === 'whitespace') return whitespaceTokenizer;
  if (name === 'icu') return icuTokenizer;
  if (name === 'ngram') {
    const [min, max] = gramRange(params, 'ngram tokenizer');
    const prefixOnly = params['prefix_only'];
    if (prefixOnly !== undefined && typeof prefixOnly !== 'boolean')
      bad(`ngram tokenizer prefix_only must be true or false, got ${JSON.stringify(prefixOnly)}`);
    return ngramTokenizer(min, max, prefixOnly === true);
  }
  if (name === 'jieba') {
    return bad('tokenizer "jieba" is not supported by Quiver (no jieba library is part of it); use the "chinese" analyzer type or the "icu" tokenizer');
  }
  return bad(`unknown tokenizer ${JSON.stringify(raw)}; Quiver supports the "standard", "whitespace", "icu" and "ngram" tokenizers`);
}

function stopWordsOf(raw: unknown, where: string): Set<string> {
  if (!Array.isArray(raw) || raw.some((w) => typeof w !== 'string')) bad(`${where} stop_words must be a list of strings, got ${JSON.stringify(raw)}`);
  const words = raw as string[];
  if (words.length > STOP_WORDS_MAX) bad(`${where} has ${words.length} stop words; at most ${STOP_WORDS_MAX}`);
  const out = new Set<string>();
  for (const w of words) {
    if (w === '_english_') for (const e of ENGLISH_STOP_WORDS) out.add(e);
    else if (/^_[a-z]+_$/.test(w)) bad(`unknown stop word list ${w}; Quiver supports _english_`);
    else out.add(w);
  }
  return out;
}

const lowercase: TokenFilter = (t) => t.toLowerCase();
const englishStemmer: TokenFilter = (t) => stem(t);
const stopFilter =
  (words: ReadonlySet<string>): TokenFilter =>
  (t) =>
    words.has(t) ? null : t;

function filterOf(raw: unknown): TokenFilter {
  if (typeof raw === 'string') {
    switch (raw) {
      case 'lowercase':
        return lowercase;
      case 'asciifolding':
        // Decompose, then drop the combining marks: "café" → "cafe".
        return (t) => t.normalize('NFKD').replace(/\p{M}/gu, '');
      case 'alphanumonly':
        return (t) => (/^[A-Za-z0-9]+$/.test(t) ? t : null);
      case 'removepunct':
        return (t) => (/^[\p{P}\p{S}]+$/u.test(t) ? null : t);
      case 'cnalphanumonly':
        // Chinese characters, English letters and digits only.
        return (t) => (/^[\p{Script=Han}A-Za-z0-9]+$/u.test(t) ? t : null);
      case 'cncharonly':
        return (t) => (/^\p{Script=Han}+$/u.test(t) ? t : null);
      default:
        return bad(`unknown filter ${JSON.stringify(raw)}`);
    }
  }
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) return bad(`a filter must be a name or an object, got ${JSON.stringify(raw)}`);
  const f = raw as Record<string, unknown>;
  switch (f['type']) {
    case 'lowercase':
      return lowercase;
    case 'stop':
      return stopFilter(stopWordsOf(f['stop_words'], 'stop filter'));
    case 'stemmer': {
      const lang = f['language'];
      if (typeof lang !== 'string' || lang.toLowerCase() !== 'english') {
        return bad(`stemmer language ${JSON.stringify(lang)} is not supported by Quiver; supported: english`);
      }
      return englishStemmer;
    }
    case 'length': {
      const max = f['max'];
      if (typeof max !== 'number' || !Number.isInteger(max) || max < 1 || max > TOKEN_LENGTH_MAX) {
        return bad(`length filter max must be an integer in [1, ${TOKEN_LENGTH_MAX}], got ${JSON.stringify(max)}`);
      }
      // Milvus counts characters (Unicode scalar values), not UTF-16 units.
      return (t) => ([...t].length > max ? null : t);
    }
    case 'ngram': {
      const [min, max] = gramRange(f, 'ngram filter');
      return ngramFilter(min, max);
    }
    default:
      return bad(`unknown filter ${JSON.stringify(raw)}`);
  }
}

class ChainAnalyzer implements Analyzer {
  readonly #tokenize: Tokenizer;
  readonly #filters: readonly TokenFilter[];
  readonly key: string;

  constructor(key: string, tokenize: Tokenizer, filters: readonly TokenFilter[]) {
    this.key = key;
    this.#tokenize = tokenize;
    this.#filters = filters;
  }

  analyze(text: string): AnalyzerToken[] {
    const out: AnalyzerToken[] = [];
    for (const raw of this.#tokenize(text)) {
      for (const t of this.#apply(raw.text)) out.push({ token: t, startOffset: raw.start, endOffset: raw.end, position: raw.position, positionLength: 1 });
    }
    return out;
  }

  terms(text: string): string[] {
    const out: string[] = [];
    for (const raw of this.#tokenize(text)) for (const t of this.#apply(raw.text)) out.push(t);
    return out;
  }

  /** The token's texts after every filter (none when dropped; several after an n-gram filter). */
  #apply(token: string): readonly string[] {
    let ts: readonly string[] = [token];
    for (const f of this.#filters) {
      const next: string[] = [];
      for (const t of ts) {
        const r = f(t);
        if (r === null || r === '') continue;
        if (typeof r === 'string') next.push(r);
        else for (const x of r) if (x !== '') next.push(x);
      }
      if (next.length === 0) return next;
      ts = next;
    }
    return ts;
  }
}

/** Parses `analyzer_params` as sent (a JSON string, an object, or empty for the standard analyzer). */
export function parseAnalyzerParams(raw: unknown): Record<string, unknown> {
  if (raw === undefined || raw === null || raw === '') return { type: 'standard' };
  let v: unknown = raw;
  if (typeof raw === 'string') {
    try {
      v = JSON.parse(raw) as unknown;
    } catch {
      return bad(`not valid JSON: ${raw}`);
    }
  }
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return bad(`expected an object, got ${JSON.stringify(v)}`);
  return v as Record<string, unknown>;
}

/** Builds an analyzer from Milvus analyzer params; throws ParameterInvalid naming anything unknown. */
export function createAnalyzer(raw: unknown): Analyzer {
  const p = parseAnalyzerParams(raw);
  const key = JSON.stringify(p);
  const extraStop = p['stop_words'] === undefined ? [] : [stopFilter(stopWordsOf(p['stop_words'], 'analyzer'))];
  if (p['type'] !== undefined) {
    if (p['tokenizer'] !== undefined || p['filter'] !== undefined) bad('give either a built-in analyzer "type" or a "tokenizer" with filters, not both');
    switch (p['type']) {
      case 'standard':
        return new ChainAnalyzer(key, standardTokenizer, [lowercase, ...extraStop]);
      case 'english':
        return new ChainAnalyzer(key, standardTokenizer, [lowercase, englishStemmer, stopFilter(new Set(ENGLISH_STOP_WORDS)), ...extraStop]);
      case 'chinese':
        return new ChainAnalyzer(key, chineseTokenizer, [filterOf('cnalphanumonly'), ...extraStop]);
      default:
        return bad(`unknown analyzer type ${JSON.stringify(p['type'])}; Quiver supports "standard", "english" and "chinese"`);
    }
  }
  if (p['tokenizer'] === undefined) bad('either "type" or "tokenizer" must be given');
  const tokenize = tokenizerOf(p['tokenizer']);
  const rawFilters = p['filter'] === undefined ? [] : p['filter'];
  if (!Array.isArray(rawFilters)) return bad(`"filter" must be a list, got ${JSON.stringify(rawFilters)}`);
  if (rawFilters.length > FILTERS_MAX) bad(`${rawFilters.length} filters; at most ${FILTERS_MAX}`);
  for (const k of Object.keys(p)) {
    if (k !== 'tokenizer' && k !== 'filter') bad(`unknown analyzer param ${JSON.stringify(k)}`);
  }
  return new ChainAnalyzer(key, tokenize, rawFilters.map(filterOf));
}
