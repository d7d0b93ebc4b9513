/**
 * The positional inverted index of one text column: token → rows holding it (ascending) and each row's
 * positions of it. text_match reads the rows, phrase_match the positions too (expr/text-match.ts). Built
 * from a column with the field's analyzer, or opened from a segment's index file (text-index-file.ts):
 * then every posting list is a view into the file's arrays.
 */

import { quiverError } from '../common/errors.js';
import type { Column } from '../schema/types.js';

/** What building the index needs of an analyzer (text/analyzer.ts implements it). */
export interface PositionTokenizer {
  analyze(text: string): readonly { readonly token: string; readonly position: number }[];
}

/** Rows holding a token, ascending; the positions of rows[k] are positions[starts[k] .. starts[k + 1]). */
export interface Postings {
  readonly rows: Uint32Array;
  readonly starts: Uint32Array;
  readonly positions: Uint32Array;
}

export interface PositionalArrays {
  readonly termBytes: Uint8Array;
  readonly termEnds: Uint32Array;
  readonly termStarts: Uint32Array;
  readonly rows: Uint32Array;
  readonly posStarts: Uint32Array;
  readonly positions: Uint32Array;
}

export class PositionalIndex {
  readonly postings: ReadonlyMap<string, Postings>;
  readonly #arrays: PositionalArrays;

  private constructor(postings: Map<string, Postings>, arrays: PositionalArrays) {
    this.postings = postings;
    this.#arrays = arrays;
  }

  static build(col: Column & { kind: 'string' }, tokenizer: PositionTokenizer): PositionalIndex {
    const lists = new Map<string, { rows: number[]; starts: number[]; positions: number[] }>();
    for (let r = 0; r < col.data.length; r++) {
      if (col.valid && col.valid[r] === 0) continue;
      // The analyzer emits positions in increasing order, so each row's list comes out sorted.
      for (const { token, position } of tokenizer.analyze(col.data[r]!)) {
        let l = lists.get(token);
        if (!l) lists.set(token, (l = { rows: [], starts: [], positions: [] }));
        if (l.rows[l.rows.length - 1] !== r) {
          l.rows.push(r);
          l.starts.push(l.positions.length);
        }
        l.positions.push(position);
      }
    }
    // One flat layout (what the file stores); each token's postings are views into it.
    const terms = [...lists.keys()];
    let rowCount = 0;
    let posCount = 0;
    for (const l of lists.values()) {
      rowCount += l.rows.length;
      posCount += l.positions.length;
    }
    const encoded = terms.map((t) => Buffer.from(t, 'utf8'));
    const termBytes = new Uint8Array(encoded.reduce((n, b) => n + b.byteLength, 0));
    const termEnds = new Uint32Array(terms.length);
    const termStarts = new Uint32Array(terms.length + 1);
    const rows = new Uint32Array(rowCount);
    const posStarts = new Uint32Array(rowCount + 1);
    const positions = new Uint32Array(posCount);
    let byteAt = 0;
    let rowAt = 0;
    let posAt = 0;
    terms.forEach((t, i) => {
      termBytes.set(encoded[i]!, byteAt);
      byteAt += encoded[i]!.byteLength;
      termEnds[i] = byteAt;
      termStarts[i] = rowAt;
      const l = lists.get(t)!;
      for (let k = 0; k < l.rows.length; k++) {
        rows[rowAt + k] = l.rows[k]!;
        posStarts[rowAt + k] = posAt + l.starts[k]!;
      }
      positions.set(l.positions, posAt);
      rowAt += l.rows.length;
      posAt += l.positions.length;
    });
    termStarts[terms.length] = rowAt;
    posStarts[rowCount] = posAt;
    return PositionalIndex.#fromFlat(terms, { termBytes, termEnds, termStarts, rows, posStarts, positions });
  }

  /** Opens the arrays of an index file, checking every offset before any view is made. */
  static fromArrays(a: PositionalArrays, numRows: number, source: string): PositionalIndex {
    const bad = (why: string): never => {
      throw quiverError('SegmentLoadFailed', `full-text index file ${source} is not usable: ${why}`);
    };
    const nTerms = a.termEnds.length;
    if (a.termStarts.length !== nTerms + 1) bad(`${a.termStarts.length} term starts for ${nTerms} terms`);
    if (a.posStarts.length !== a.rows.length + 1) bad(`${a.posStarts.length} position starts for ${a.rows.length} postings`);
    if (a.termStarts[0] !== 0 || a.termStarts[nTerms] !== a.rows.length) bad('term starts do not cover the postings');
    if (a.posStarts[0] !== 0 || a.posStarts[a.rows.length] !== a.positions.length) bad('position starts do not cover the positions');
    for (let i = 0; i < nTerms; i++) if (a.termStarts[i + 1]! < a.termStarts[i]!) bad(`term starts decrease at term ${i}`);
    for (let i = 0; i < a.rows.length; i++) {
      if (a.rows[i]! >= numRows) bad(`posting ${i} names row ${a.rows[i]}, past the segment's ${numRows} rows`);
      if (a.posStarts[i + 1]! < a.posStarts[i]!) bad(`position starts decrease at posting ${i}`);
    }
    const decoder = new TextDecoder('utf-8', { fatal: true });
    const terms: string[] = [];
    let from = 0;
    for (let i = 0; i < nTerms; i++) {
      const to = a.termEnds[i]!;
      if (to < from || to > a.termBytes.byteLength) bad(`term ${i} ends at byte ${to}`);
      try {
        terms.push(decoder.decode(a.termBytes.subarray(from, to)));
      } catch {
        bad(`term ${i} is not UTF-8`);
      }
      from = to;
    }
    return PositionalIndex.#fromFlat(terms, a);
  }

  static #fromFlat(terms: readonly string[], a: PositionalArrays): PositionalIndex {
    const postings = new Map<string, Postings>();
    terms.forEach((t, i) => {
      const from = a.termStarts[i]!;
      const to = a.termStarts[i + 1]!;
      postings.set(t, { rows: a.rows.subarray(from, to), starts: a.posStarts.subarray(from, to + 1), positions: a.positions });
    });
    return new PositionalIndex(postings, a);
  }

  toArrays(): PositionalArrays {
    return this.#arrays;
  }
}
