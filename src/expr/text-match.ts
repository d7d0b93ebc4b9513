/**
 * `text_match(field, 'words'[, minimum_should_match=N])` and `phrase_match(field, 'words'[, slop])`, with
 * the semantics of Milvus 2.6 (whose Tantivy index answers them):
 *
 * - text_match: each analyzed query token is one optional clause; a row matches when at least N clauses
 *   (1 by default) name a token of its analyzed text. A token repeated in the query is repeated clauses.
 * - phrase_match: the query's tokens keep their analyzer positions (a dropped stop word leaves a gap). A row
 *   matches when its tokens appear in that order; with slop s, each next token may sit up to s positions
 *   further than the phrase says (never earlier: Tantivy's sloppy phrase does not reorder). The chain is
 *   followed greedily, as Tantivy does, so answers agree with Milvus in the corner cases too. A query of
 *   one token (or none) is a text_match, as in Milvus.
 *
 * Each column gets an inverted index (token → rows, and for phrases also the positions). A sealed segment's
 * column has its positional index opened from the segment's index file at load (or built at flush) and
 * attached here (`attachPositionalIndex`); otherwise one is built on first use and cached by the column
 * object (a chunk's column never changes), and a gathered row subset gets a throwaway one.
 */

import type { Column } from '../schema/types.js';
import { textIndexCounters } from '../text/index-counters.js';
import { PositionalIndex, type Postings } from '../text/positional-index.js';

/** What text_match and phrase_match need of a field's analyzer (text/analyzer.ts implements it). */
export interface TextTokenizer {
  terms(text: string): string[];
  analyze(text: string): readonly { readonly token: string; readonly position: number }[];
  /** Canonical analyzer params: an index built by another analyzer object with the same params is reused. */
  readonly key?: string | undefined;
}

type TextColumn = Column & { kind: 'string' };

interface Cached<T> {
  readonly key: unknown;
  readonly value: T;
}

const termIndexes = new WeakMap<object, Cached<Map<string, { rows: Uint32Array }>>>();
const positionIndexes = new WeakMap<object, Cached<PositionalIndex>>();

const keyOf = (tokenizer: TextTokenizer): unknown => tokenizer.key ?? tokenizer;

/** Attaches a column's positional index built elsewhere (a segment's index file), for analyzer params `key`. */
export function attachPositionalIndex(col: object, key: string, index: PositionalIndex): void {
  positionIndexes.set(col, { key, value: index });
}

function invertedIndex(col: TextColumn, tokenizer: TextTokenizer): ReadonlyMap<string, { rows: Uint32Array }> {
  const key = keyOf(tokenizer);
  const positional = positionIndexes.get(col);
  if (positional && positional.key === key) return positional.value.postings;
  const cached = termIndexes.get(col);
  if (cached && cached.key === key) return cached.value;
  textIndexCounters.builtOnFirstUse++;
  const lists = new Map<string, number[]>();
  for (let r = 0; r < col.data.length; r++) {
    if (col.valid && col.valid[r] === 0) continue;
    for (const t of new Set(tokenizer.terms(col.data[r]!))) {
      let l = lists.get(t);
      if (!l) lists.set(t, (l = []));
      l.push(r);
    }
  }
  const postings = new Map<string, { rows: Uint32Array }>();
  for (const [t, l] of lists) postings.set(t, { rows: Uint32Array.from(l) });
  termIndexes.set(col, { key, value: postings });
  return postings;
}

function positionalIndex(col: TextColumn, tokenizer: TextTokenizer): ReadonlyMap<string, Postings> {
  const key = keyOf(tokenizer);
  const cached = positionIndexes.get(col);
  if (cached && cached.key === key) return cached.value.postings;
  textIndexCounters.builtOnFirstUse++;
  const index = PositionalIndex.build(col, tokenizer);
  positionIndexes.set(col, { key, value: index });
  return index.postings;
}

/**
 * 1 where the row's text contains at least `minimumShouldMatch` of the `queryTerms` clauses (null rows
 * never match; no clauses match nothing).
 */
export function textMatchRows(col: TextColumn, tokenizer: TextTokenizer, queryTerms: readonly string[], minimumShouldMatch = 1): Uint8Array {
  const out = new Uint8Array(col.data.length);
  if (queryTerms.length === 0 || minimumShouldMatch > queryTerms.length) return out;
  const postings = invertedIndex(col, tokenizer);
  if (minimumShouldMatch <= 1) {
    for (const t of new Set(queryTerms)) {
      const rows = postings.get(t)?.rows;
      if (rows) for (let i = 0; i < rows.length; i++) out[rows[i]!] = 1;
    }
    return out;
  }
  const clauses = new Map<string, number>();
  for (const t of queryTerms) clauses.set(t, (clauses.get(t) ?? 0) + 1);
  const counts = new Uint32Array(col.data.length);
  for (const [t, weight] of clauses) {
    const rows = postings.get(t)?.rows;
    if (rows) for (let i = 0; i < rows.length; i++) counts[rows[i]!]! += weight;
  }
  for (let r = 0; r < counts.length; r++) out[r] = Number(counts[r]! >= minimumShouldMatch);
  return out;
}

/** Index of `row` in the ascending `rows`, or -1. */
function find(rows: Uint32Array, row: number): number {
  let lo = 0;
  let hi = rows.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1;
    const v = rows[mid]!;
    if (v === row) return mid;
    if (v < row) lo = mid + 1;
    else hi = mid - 1;
  }
  return -1;
}

/**
 * Positions of `right` reachable from a position of `left` by moving forward at most `slop`. Greedy in the
 * way Tantivy's sloppy phrase is: each left position is used once, for the first right position it reaches,
 * and the nearest usable left is taken; Milvus answers with exactly this chain.
 */
function intersectSloppy(left: number[], right: ArrayLike<number>, slop: number): number[] {
  const out: number[] = [];
  let i = 0;
  let j = 0;
  while (i < left.length && j < right.length) {
    const l = left[i]!;
    const r = right[j]!;
    const lowest = r >= slop ? r - slop : 0;
    if (l < lowest) i++;
    else if (l > r) j++;
    else {
      while (i + 1 < left.length && left[i + 1]! <= r) i++;
      out.push(r);
      i++;
      j++;
    }
  }
  return out;
}

/** 1 where the row's text holds the analyzed phrase `query` within `slop` (null rows never match). */
export function phraseMatchRows(col: TextColumn, tokenizer: TextTokenizer, query: string, slop: number): Uint8Array {
  const phrase = tokenizer.analyze(query);
  if (phrase.length <= 1)
    return textMatchRows(
      col,
      tokenizer,
      phrase.map((t) => t.token),
    );
  const out = new Uint8Array(col.data.length);
  const index = positionalIndex(col, tokenizer);
  const lists: Postings[] = [];
  for (const t of phrase) {
    const p = index.get(t.token);
    if (!p) return out;
    lists.push(p);
  }
  // Shift each token's positions so that an exact phrase puts every token at the same position.
  const offsetMax = Math.max(...phrase.map((t) => t.position));
  const shifts = phrase.map((t) => offsetMax - t.position);
  let rarest = 0;
  for (let i = 1; i < lists.length; i++) if (lists[i]!.rows.length < lists[rarest]!.rows.length) rarest = i;
  const slots = new Array<number>(lists.length);
  rows: for (const row of lists[rarest]!.rows) {
    for (let i = 0; i < lists.length; i++) {
      const k = find(lists[i]!.rows, row);
      if (k < 0) continue rows;
      slots[i] = k;
    }
    const positionsOf = (i: number): number[] => {
      const p = lists[i]!;
      const k = slots[i]!;
      return Array.from(p.positions.subarray(p.starts[k]!, p.starts[k + 1]!), (x) => x + shifts[i]!);
    };
    let chain = positionsOf(0);
    for (let i = 1; i < lists.length && chain.length > 0; i++) {
      chain = intersectSloppy(chain, positionsOf(i), slop); // at slop 0: positions in both lists
    }
    if (chain.length > 0) out[row] = 1;
  }
  return out;
}
