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
import type { SearchCursor } from './collection-runtime.js';
import type { SparseRow } from '../schema/types.js';

export interface Bm25Part {
  readonly chunk: Chunk;
  /** 1 = live (not deleted, not expired): counted in the statistics. */
  readonly live: Uint8Array;
  /** 1 = live and matching the filter (undefined: no filter, use `live`). */
  readonly allow?: Uint8Array | undefined;
}

interface Prepared {
  readonly indexed: readonly { part: Bm25Part; index: Bm25ColumnIndex }[];
  readonly stats: Bm25Stats;
  readonly queries: readonly SparseRow[];
}

/** The statistics pass: each chunk's index and N, avgdl and the df of the query terms over the live rows. */
function prepare(parts: readonly Bm25Part[], req: SearchRequest): Prepared {
  if (req.typedQueries?.kind !== 'sparse') throw quiverError('ParameterInvalid', `field ${req.field.name} is searched by BM25 with query texts`);
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
  return { indexed, stats, queries: req.typedQueries.rows };
}

/** Every candidate's score for one query (within radius / range_filter when given), unordered. */
function scoreAll(p: Prepared, raw: SparseRow, req: SearchRequest): SearchHit[] {
  const params = req.bm25 ?? { k1: BM25_K1_DEFAULT, b: BM25_B_DEFAULT };
  const query = dropSmallest(weightQuery(raw, p.stats), req.dropRatioSearch ?? 0);
  const hits: SearchHit[] = [];
  for (const { part, index } of p.indexed) {
    for (const [row, s] of index.score(query, p.stats, params, part.allow ?? part.live)) {
      const score = Math.fround(s);
      if (req.radius !== undefined && !(score > req.radius && score <= (req.rangeFilter ?? Infinity))) continue;
      hits.push({ chunk: part.chunk, row, score });
    }
  }
  return hits;
}

export function searchBm25(parts: readonly Bm25Part[], req: SearchRequest): SearchHit[][] {
  const p = prepare(parts, req);
  const want = req.k + req.offset;
  return p.queries.map((raw) => {
    const hits = scoreAll(p, raw, req);
    hits.sort((a, b) => b.score - a.score);
    return hits.slice(req.offset, want);
  });
}

/**
 * One page of a search iterator over a BM25 field (nq = 1): the `k` best rows strictly after the cursor in
 * (score descending, pk ascending) order. Every page scores all candidates with the statistics of the
 * moment (as a plain search does), so pages follow one total order and no row comes twice.
 */
export function searchBm25After(
  parts: readonly Bm25Part[],
  req: SearchRequest,
  after: SearchCursor,
  pkOf: (hit: SearchHit) => bigint | string,
): SearchHit[][] {
  const p = prepare(parts, req);
  if (p.queries.length !== 1) throw quiverError('ParameterInvalid', `a search iterator takes exactly one query text, got ${p.queries.length}`);
  const at = after.score;
  const found: (SearchHit & { pk: bigint | string })[] = [];
  for (const h of scoreAll(p, p.queries[0]!, req)) {
    const pk = pkOf(h);
    if (at === null || h.score < at || (h.score === at && pk > after.pk)) found.push({ ...h, pk });
  }
  found.sort((a, b) => (a.score === b.score ? (a.pk < b.pk ? -1 : a.pk > b.pk ? 1 : 0) : b.score - a.score));
  return [found.slice(0, req.k).map(({ chunk, row, score }) => ({ chunk, row, score }))];
}
