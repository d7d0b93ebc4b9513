import { quiverError } from '../common/errors.js';
import type { CollectionRecord } from '../coord/records.js';
import type { SearchCursor } from '../querynode/types.js';

/**
 * The SDK's `searchIterator` (search iterator v2; v1 pages are plain searches, see iteratorPageOf): every page is a Search with `iterator` and
 * `search_iter_v2` set, the page size in `search_iter_batch_size`, and from the second page on the token
 * and last bound the previous reply carried. Quiver's token is the cursor itself, the (score, pk) of the
 * last row returned plus the collection id and how many rows came so far, so it needs no server state,
 * survives a restart, and pages follow one total order: every row exactly once, best first.
 */

interface Token {
  /** Collection id the iterator began on. */
  readonly c: number;
  /** Score and pk (as a string; `i` = Int64) of the last row returned. */
  readonly s: number;
  readonly p: string;
  readonly i: boolean;
  /** Rows returned so far. */
  readonly n: number;
}

export interface IteratorPage {
  readonly after: SearchCursor;
  readonly seen: number;
}

function isTrue(v: string | undefined): boolean {
  return v === 'true' || v === 'True' || v === '1';
}

/** The iterator position a Search request asks for, or undefined when it is not an iterator page. */
export function iteratorPageOf(sp: Readonly<Record<string, string>>, coll: CollectionRecord, nq: number): IteratorPage | undefined {
  if (!isTrue(sp['iterator'])) return undefined;
  // Search iterator v1 (older SDKs): the client pages by itself, each page an ordinary search bounded by
  // radius / range_filter at the last page's score plus a filter excluding the pks already returned at
  // that score. The server keeps nothing, so a v1 page is served as the plain (range) search it is.
  if (!isTrue(sp['search_iter_v2'])) return undefined;
  if (nq !== 1) throw quiverError('ParameterInvalid', `a search iterator takes exactly one query vector, got ${nq}`);
  const began = sp['collection_id'];
  if (began && began !== '0' && began !== String(coll.id)) {
    throw quiverError(
      'CollectionNotFound',
      `the collection this search iterator began on (id ${began}) no longer exists: ${coll.name} is now collection ${coll.id}; start a new iterator`,
    );
  }
  const raw = sp['search_iter_id'];
  if (!raw || raw === 'undefined') return { after: { score: null, pk: '', seen: 0 }, seen: 0 };
  let t: Token;
  try {
    t = JSON.parse(Buffer.from(raw, 'base64url').toString('utf8')) as Token;
    if (typeof t.c !== 'number' || typeof t.s !== 'number' || typeof t.p !== 'string' || typeof t.n !== 'number') throw new Error('bad shape');
  } catch {
    throw quiverError('ParameterInvalid', `search_iter_id ${JSON.stringify(raw)} is not a search iterator token of this server`);
  }
  if (t.c !== coll.id) {
    throw quiverError(
      'CollectionNotFound',
      `the collection this search iterator began on (id ${t.c}) no longer exists: ${coll.name} is now collection ${coll.id}; start a new iterator`,
    );
  }
  return { after: { score: t.s, pk: t.i ? BigInt(t.p) : t.p, seen: t.n }, seen: t.n };
}

/** The `search_iterator_v2_results` of a page's reply: the cursor after its last row. */
export function iteratorResults(
  coll: CollectionRecord,
  page: IteratorPage,
  last: { score: number; pk: bigint | string } | undefined,
  rows: number,
): { token: string; last_bound: number } {
  if (!last) {
    // Nothing after the cursor: hand the same position back (the SDK stops on an empty page).
    const same = page.after;
    if (same.score === null) return { token: '', last_bound: 0 };
    const t: Token = { c: coll.id, s: same.score, p: String(same.pk), i: typeof same.pk === 'bigint', n: page.seen };
    return { token: Buffer.from(JSON.stringify(t)).toString('base64url'), last_bound: t.s };
  }
  const t: Token = { c: coll.id, s: last.score, p: String(last.pk), i: typeof last.pk === 'bigint', n: page.seen + rows };
  return { token: Buffer.from(JSON.stringify(t)).toString('base64url'), last_bound: last.score };
}
