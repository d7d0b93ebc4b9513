/**
 * BM25 search over a collection's chunks (metric BM25 on a BM25 function output field). Two passes:
 * first the statistics (N, avgdl, df of the query terms) over the live rows of every chunk searched,
 * then each chunk's candidates (live and matching the filter) are scored with them and the best
 * `offset + k` kept. The statistics ignore the filter, so a filter narrows the results without
 * changing any score (what `Bm25Stats` in text/bm25.ts documents).
 */

import { quiverError } from '../common/errors.js';
import { dropSmallest } from '../index/sparse-index.js';
import { BM25_B_DEFAULT, BM25_K1_DEFAULT, bm25IndexOf, weightQuery, type Bm25ColumnIndex, type Bm25Stats } from '../text/bm25.js';
import type { SearchHit, SearchRequest } from './collection-runtime.js';
import type { Chunk } from './segment.js';

export interface Bm25Part {
  readonly chunk: Chunk;
  /** 1 = live (not deleted, not expired): counted in the statistics. */
  readonly live: Uint8Array;
  /** 1 = live and matching the filter (undefined: no filter, use `live`). */
  readonly allow?: Uint8Array | undefined;
}

export function searchBm25(parts: readonly Bm25Part[], req: SearchRequest): SearchHit[][] {
  if (req.typedQueries?.kind !== 'sparse') throw quiverError('ParameterInvalid', `field ${req.field.name} is searched by BM25 with query texts`);
  const params = req.bm25 ?? { k1: BM25_K1_DEFAULT, b: BM25_B_DEFAULT };
  const indexed: { part: Bm25Part; index: Bm25ColumnIndex }[] = [];
  for (const part of parts) {
    const col = part.chunk.columns.get(req.field.name);
    if (part.chunk.numRows === 0 || !col || col.kind !== 'sparse') continue;
    indexed.push({ part, index: bm25IndexOf(col, col.data) });
  }
  const terms = [...new Set(req.typedQueries.rows.flatMap((r) => Array.from(r.indices)))];
  const acc = { n: 0, totalLen: 0, df: new Map<number, number>() };
  for (const { part, index } of indexed) index.addStats(part.live, terms, acc);
  const stats: Bm25Stats = { n: acc.n, avgdl: acc.n > 0 ? acc.totalLen / acc.n : 0, df: acc.df };
  const want = req.k + req.offset;
  return req.typedQueries.rows.map((raw) => {
    const query = dropSmallest(weightQuery(raw, stats), req.dropRatioSearch ?? 0);
    const hits: SearchHit[] = [];
    for (const { part, index } of indexed) {
      for (const [row, s] of index.score(query, stats, params, part.allow ?? part.live)) {
        const score = Math.fround(s);
        if (req.radius !== undefined && !(score > req.radius && score <= (req.rangeFilter ?? Infinity))) continue;
        hits.push({ chunk: part.chunk, row, score });
      }
    }
    hits.sort((a, b) => b.score - a.score);
    return hits.slice(req.offset, want);
  });
}
