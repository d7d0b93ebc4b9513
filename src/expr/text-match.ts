/**
 * `text_match(field, 'words')`: a row matches when its analyzed text shares at least one token with the
 * analyzed query (Milvus's OR semantics). Each column gets an inverted index (token → rows) built on
 * first use and cached by the column object: a loaded or sealed chunk's column never changes, so the
 * index is built once per segment chunk; a gathered row subset gets a throwaway one.
 */

import type { Column } from '../schema/types.js';

/** What text_match needs of a field's analyzer (text/analyzer.ts implements it). */
export interface TextTokenizer {
  terms(text: string): string[];
}

const indexes = new WeakMap<object, { tokenizer: TextTokenizer; postings: Map<string, Uint32Array> }>();

function invertedIndex(col: Column & { kind: 'string' }, tokenizer: TextTokenizer): Map<string, Uint32Array> {
  const cached = indexes.get(col);
  if (cached && cached.tokenizer === tokenizer) return cached.postings;
  const lists = new Map<string, number[]>();
  for (let r = 0; r < col.data.length; r++) {
    if (col.valid && col.valid[r] === 0) continue;
    for (const t of new Set(tokenizer.terms(col.data[r]!))) {
      let l = lists.get(t);
      if (!l) lists.set(t, (l = []));
      l.push(r);
    }
  }
  const postings = new Map<string, Uint32Array>();
  for (const [t, l] of lists) postings.set(t, Uint32Array.from(l));
  indexes.set(col, { tokenizer, postings });
  return postings;
}

/** 1 where the row's text contains any of `queryTerms` (null rows never match). */
export function textMatchRows(col: Column & { kind: 'string' }, tokenizer: TextTokenizer, queryTerms: readonly string[]): Uint8Array {
  const out = new Uint8Array(col.data.length);
  if (queryTerms.length === 0) return out;
  const postings = invertedIndex(col, tokenizer);
  for (const t of new Set(queryTerms)) {
    const rows = postings.get(t);
    if (rows) for (let i = 0; i < rows.length; i++) out[rows[i]!] = 1;
  }
  return out;
}
