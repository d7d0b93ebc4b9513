import { quiverError } from '../common/errors.js';
import type { CollectionRecord } from '../coord/records.js';
import { evaluateFilter, matchingRows, type CompiledExpr } from '../expr/index.js';
import { flatSearch, type Hits, type MetricType } from '../index/index.js';
import { countAllowed } from '../index/flat-search.js';
import type { AnyMetricType } from '../index/typed-index-params.js';
import { lowerIsBetter, searchTypedColumn, widenQueries, type TypedQueries } from '../index/typed-search.js';
import { concatColumns, residentVectors, takeRows } from '../schema/columns.js';
import { missingFieldColumn } from '../schema/missing-column.js';
import { columnKindOf, type CollectionSchema, type Column, type ColumnBatch, type FieldSchema } from '../schema/types.js';
import { backfillFunctionOutput, functionOf } from '../text/functions.js';
import { newChunk, type Chunk, type Segment } from './segment.js';
import { searchBm25, searchBm25After } from './bm25-search.js';
import type { Bm25Params } from '../text/bm25.js';

/**
 * The in-memory state of one collection on this node: its growing, sealed and flushed segments, and the
 * read paths (search, query) over them. Writes are applied synchronously so that timestamp order equals
 * apply order equals WAL order.
 */

const MERGE_CHUNK_ROWS = 4096;

export interface SearchRequest {
  readonly field: FieldSchema;
  /** Float vector queries (FloatVector fields); `typedQueries` for every other vector type. */
  readonly queries: Float32Array;
  readonly typedQueries?: TypedQueries | undefined;
  readonly nq: number;
  readonly k: number;
  readonly offset: number;
  readonly metric: AnyMetricType;
  readonly dropRatioSearch?: number | undefined;
  readonly dropRatioBuild?: number | undefined;
  /** Metric BM25: k1 and b of the field's index (searchBm25 in bm25-search.ts). */
  readonly bm25?: Bm25Params | undefined;
  /** BIN_IVF_FLAT index's nlist, when the field has one. */
  readonly binaryIvfNlist?: number | undefined;
  readonly filter: CompiledExpr | null;
  readonly partitionIds: ReadonlySet<number> | null;
  readonly ef?: number | undefined;
  readonly nprobe?: number | undefined;
  readonly refineK?: number | undefined;
  readonly radius?: number | undefined;
  readonly rangeFilter?: number | undefined;
  readonly ignoreGrowing?: boolean | undefined;
  /** Rows inserted before this hybrid ts are expired (collection TTL) and invisible. */
  readonly expiredBefore?: bigint | undefined;
  /**
   * A search iterator's page: only rows strictly after this position in (score, pk) order, every row of
   * the collection exactly once over all pages. `seen` is how many rows earlier pages returned (a hint
   * for how deep to search; correctness does not depend on it).
   */
  readonly after?: SearchCursor | undefined;
}

/** A position in a search iterator's (best score first, then ascending pk) order. */
export interface SearchCursor {
  /** Null: the first page (before every row). */
  readonly score: number | null;
  readonly pk: bigint | string;
  readonly seen: number;
}

export interface RowRef {
  readonly chunk: Chunk;
  readonly row: number;
}

export interface SearchHit extends RowRef {
  readonly score: number;
}

export class CollectionRuntime {
  #record: CollectionRecord;
  readonly segments = new Map<number, Segment>();
  /** partitionId → its growing segment. */
  readonly growing = new Map<number, Segment>();

  constructor(record: CollectionRecord) {
    this.#record = record;
  }

  get record(): CollectionRecord {
    return this.#record;
  }

  /**
   * A new record (DDL). A field added since gets its default/null column in every chunk that holds all
   * columns (growing, sealed, loaded flushed), so reads and the next flush see a complete schema; a
   * stripped (unloaded) chunk gets it when its segment is read, from `readSegment`.
   */
  set record(next: CollectionRecord) {
    this.#record = next;
    for (const seg of this.segments.values()) {
      if (seg.phase === 'flushed' && !seg.loaded) continue;
      for (const chunk of seg.chunks) fillMissingColumns(next.schema, chunk.columns, chunk.numRows);
    }
  }

  get pkField(): FieldSchema {
    const pk = this.record.schema.fields.find((f) => f.isPrimaryKey);
    if (!pk) throw new Error(`collection ${this.record.name} has no primary key`);
    return pk;
  }

  /** Appends rows to the partition's growing segment (created with `segmentId` if there is none). */
  applyInsert(partitionId: number, segmentId: () => number, columns: Map<string, Column>, ts: bigint, numRows: number): number {
    const seg = this.reserveGrowing(partitionId, segmentId);
    this.appendRows(seg, columns, ts, numRows);
    return seg.id;
  }

  /** The partition's growing segment, created empty (with `segmentId`) if there is none. */
  reserveGrowing(partitionId: number, segmentId: () => number): Segment {
    let seg = this.growing.get(partitionId);
    if (!seg) {
      seg = { id: segmentId(), partitionId, phase: 'growing', chunks: [], numRows: 0, loaded: true, pendingDeletes: { pks: [], ts: [] } };
      this.growing.set(partitionId, seg);
      this.segments.set(seg.id, seg);
    }
    return seg;
  }

  /** Appends rows to `seg`, growing or sealed (rows acknowledged in a segment go into that segment). */
  appendRows(seg: Segment, columns: Map<string, Column>, ts: bigint, numRows: number): void {
    // Rows validated (or logged to the WAL) before a field was added lack its column.
    fillMissingColumns(this.#record.schema, columns, numRows);
    const tsCol = new BigInt64Array(numRows).fill(ts);
    const last = seg.chunks[seg.chunks.length - 1];
    if (last && last.numRows < MERGE_CHUNK_ROWS && numRows < MERGE_CHUNK_ROWS) {
      // Merge small batches so that a stream of single-row inserts does not become thousands of chunks.
      const merged = new Map<string, Column>();
      for (const [name, col] of last.columns) {
        const add = columns.get(name);
        if (!add) throw new Error(`missing column ${name}`);
        if (add.kind !== col.kind) throw new Error(`column ${name} changed kind from ${col.kind} to ${add.kind}`);
        merged.set(name, concatColumns([col, add]));
      }
      const mergedTs = new BigInt64Array(last.numRows + numRows);
      mergedTs.set(last.ts);
      mergedTs.set(tsCol, last.numRows);
      const chunk = newChunk(last.numRows + numRows, merged, mergedTs);
      chunk.deleted.set(last.deleted);
      chunk.deletedCount = last.deletedCount;
      seg.chunks[seg.chunks.length - 1] = chunk;
    } else {
      seg.chunks.push(newChunk(numRows, columns, tsCol));
    }
    seg.numRows += numRows;
  }

  /** Marks every live row whose pk is in `pks` and whose insert ts < ts. Returns the rows newly deleted. */
  applyDelete(pks: ReadonlySet<bigint | string>, ts: bigint, partitionId?: number): number {
    if (pks.size === 0) return 0;
    const pkName = this.pkField.name;
    let count = 0;
    for (const seg of this.segments.values()) {
      if (partitionId !== undefined && seg.partitionId !== partitionId) continue;
      let hit = false;
      for (const chunk of seg.chunks) {
        const col = chunk.columns.get(pkName);
        if (!col) continue;
        const data = col.data as ArrayLike<bigint | string>;
        for (let i = 0; i < chunk.numRows; i++) {
          if (chunk.deleted[i] === 0 && chunk.ts[i]! < ts && pks.has(data[i]!)) {
            chunk.deleted[i] = 1;
            chunk.deletedCount++;
            count++;
            hit = true;
            // Growing rows too: their binlogs will hold the row, so the flush must write the delete.
            seg.pendingDeletes.pks.push(data[i]!);
            seg.pendingDeletes.ts.push(ts);
          }
        }
      }
      void hit;
    }
    return count;
  }

  /** Closes every growing segment to new rows; returns them. */
  sealAll(): Segment[] {
    const sealed: Segment[] = [];
    for (const [pid, seg] of this.growing) {
      seg.phase = 'sealed';
      sealed.push(seg);
      this.growing.delete(pid);
    }
    return sealed;
  }

  /** Sealed-or-growing segment rows not yet flushed. */
  unflushedRows(): number {
    let n = 0;
    for (const s of this.segments.values()) if (s.phase !== 'flushed') n += s.numRows;
    return n;
  }

  liveRowCount(partitionIds?: ReadonlySet<number>): number {
    let n = 0;
    for (const seg of this.segments.values()) {
      if (partitionIds && !partitionIds.has(seg.partitionId)) continue;
      // A segment whose files could not be read still counts (its recorded rows), rather than vanishing.
      if (seg.error && seg.chunks.length === 0) n += seg.numRows;
      for (const c of seg.chunks) for (let i = 0; i < c.numRows; i++) if (c.deleted[i] === 0) n++;
    }
    return n;
  }

  #chunksFor(partitionIds: ReadonlySet<number> | null, ignoreGrowing = false): Chunk[] {
    const out: Chunk[] = [];
    const segs = [...this.segments.values()].sort((a, b) => a.id - b.id);
    for (const seg of segs) {
      if (partitionIds && !partitionIds.has(seg.partitionId)) continue;
      if (ignoreGrowing && seg.phase !== 'flushed') continue;
      if (!seg.loaded) {
        throw quiverError('CollectionNotLoaded', `segment ${seg.id} of collection ${this.record.name} is not loaded${seg.error ? `: ${seg.error}` : ''}`);
      }
      out.push(...seg.chunks);
    }
    return out;
  }

  /** Rows of a chunk that are live (not deleted, not expired) and match the filter (1 = candidate). */
  static #mask(chunk: Chunk, filter: CompiledExpr | null, vectorField?: string, expiredBefore?: bigint): Uint8Array {
    const mask = filter ? evaluateFilter(filter, chunkBatch(chunk), chunk.scalarIndexes) : new Uint8Array(chunk.numRows).fill(1);
    const del = chunk.deleted;
    const valid = vectorField ? chunk.columns.get(vectorField)?.valid : undefined;
    // Skipped when nothing is deleted: an index-narrowed filter otherwise pays a full pass here.
    if (chunk.deletedCount > 0 || valid) {
      for (let i = 0; i < chunk.numRows; i++) {
        if (del[i] === 1 || (valid && valid[i] === 0)) mask[i] = 0;
      }
    }
    if (expiredBefore !== undefined) {
      const ts = chunk.ts;
      for (let i = 0; i < chunk.numRows; i++) if (ts[i]! < expiredBefore) mask[i] = 0;
    }
    return mask;
  }

  /**
   * The live matching rows of a chunk (ascending) when a scalar index narrows the filter to few rows, so
   * count and query touch those rows only; undefined means: build the full mask.
   */
  static #rows(chunk: Chunk, filter: CompiledExpr | null, expiredBefore?: bigint): Uint32Array | undefined {
    if (!filter || chunk.scalarIndexes.size === 0) return undefined;
    const rows = matchingRows(filter, chunkBatch(chunk), chunk.scalarIndexes);
    if (rows === undefined) return undefined;
    let n = 0;
    for (let i = 0; i < rows.length; i++) {
      const r = rows[i]!;
      if (chunk.deleted[r] === 1 || (expiredBefore !== undefined && chunk.ts[r]! < expiredBefore)) continue;
      rows[n++] = r;
    }
    return rows.subarray(0, n);
  }

  /** Whether any row of the chunk is expired (lets the search path keep its no-mask fast case). */
  static #hasExpired(chunk: Chunk, expiredBefore: bigint | undefined): boolean {
    if (expiredBefore === undefined) return false;
    const ts = chunk.ts;
    for (let i = 0; i < chunk.numRows; i++) if (ts[i]! < expiredBefore) return true;
    return false;
  }

  /**
   * One page of a search iterator (nq = 1): the `k` best rows after `req.after` in (score, pk) order, by
   * exact search. A top-k search cannot start "after" a position, so each chunk is searched deep enough to
   * cover the rows earlier pages returned (the `seen` hint) plus this page, deeper again if ties or
   * changes since made that too shallow; rows at or before the cursor are then skipped.
   */
  #searchAfter(req: SearchRequest, after: SearchCursor): SearchHit[][] {
    if (req.field.dataType !== 'FloatVector') {
      throw quiverError(
        'ParameterInvalid',
        `search iterators over ${req.field.dataType} field ${req.field.name} are not supported by Quiver yet; FloatVector only`,
      );
    }
    const higherIsBetter = !lowerIsBetter(req.metric);
    const pkName = this.pkField.name;
    const at = after.score;
    const isAfter = (score: number, pk: bigint | string): boolean =>
      at === null ? true : score === at ? pk > after.pk : higherIsBetter ? score < at : score > at;
    const found: (SearchHit & { pk: bigint | string })[] = [];
    for (const chunk of this.#chunksFor(req.partitionIds, req.ignoreGrowing)) {
      const col = chunk.columns.get(req.field.name);
      const pks = chunk.columns.get(pkName)?.data as ArrayLike<bigint | string> | undefined;
      if (chunk.numRows === 0 || !col || col.kind !== 'vector' || !pks) continue;
      const mask = CollectionRuntime.#mask(chunk, req.filter, req.field.name, req.expiredBefore);
      let allowed = 0;
      for (let i = 0; i < mask.length; i++) allowed += mask[i]!;
      if (allowed === 0) continue;
      const allow = allowed === chunk.numRows ? undefined : mask;
      let depth = Math.min(allowed, after.seen + req.k + 1024);
      const data = residentVectors(col);
      for (;;) {
        const h = flatSearch(data, col.dim, req.metric as MetricType, req.queries, 1, { k: depth, allow })[0]!;
        const page: (SearchHit & { pk: bigint | string })[] = [];
        for (let i = 0; i < h.rows.length && page.length < req.k; i++) {
          const row = h.rows[i]!;
          const score = h.scores[i]!;
          if (isAfter(score, pks[row]!)) page.push({ chunk, row, score, pk: pks[row]! });
        }
        // Deep enough: this chunk's next k rows are all here, or it has no more rows.
        if (page.length >= req.k || depth >= allowed) {
          found.push(...page);
          break;
        }
        depth = Math.min(allowed, depth * 2);
      }
    }
    found.sort((a, b) => (a.score === b.score ? (a.pk < b.pk ? -1 : a.pk > b.pk ? 1 : 0) : higherIsBetter ? b.score - a.score : a.score - b.score));
    return [found.slice(0, req.k)];
  }

  search(req: SearchRequest): SearchHit[][] {
    if (req.metric === 'BM25') {
      const parts = this.#chunksFor(req.partitionIds, req.ignoreGrowing).map((chunk) => ({
        chunk,
        live: CollectionRuntime.#mask(chunk, null, undefined, req.expiredBefore),
        allow: req.filter ? CollectionRuntime.#mask(chunk, req.filter, undefined, req.expiredBefore) : undefined,
      }));
      if (!req.after) return searchBm25(parts, req);
      const pkName = this.pkField.name;
      return searchBm25After(parts, req, req.after, (h) => (h.chunk.columns.get(pkName)!.data as ArrayLike<bigint | string>)[h.row]!);
    }
    if (req.after) return this.#searchAfter(req, req.after);
    const higherIsBetter = !lowerIsBetter(req.metric);
    const want = req.k + req.offset;
    const perQuery: SearchHit[][] = Array.from({ length: req.nq }, () => []);
    // BIN_IVF_FLAT lists are clustered once per flushed chunk; growing chunks change with every insert and are scanned.
    const flushed =
      req.binaryIvfNlist === undefined ? undefined : new Set([...this.segments.values()].filter((s) => s.phase === 'flushed').flatMap((s) => s.chunks));
    for (const chunk of this.#chunksFor(req.partitionIds, req.ignoreGrowing)) {
      if (chunk.numRows === 0) continue;
      const col = chunk.columns.get(req.field.name);
      if (!col || (col.kind !== 'vector' && col.kind !== 'bytevec' && col.kind !== 'sparse')) continue;
      // No mask and no filter callback at all when every row qualifies (no filter, no deletes, no null
      // vectors): the common case then costs nothing per row and the native graph walk runs at full speed.
      let allow: Uint8Array | undefined;
      let allowRows: Int32Array | undefined;
      const narrowed = req.filter ? CollectionRuntime.#rows(chunk, req.filter, req.expiredBefore) : undefined;
      if (narrowed) {
        // A scalar index found the few candidate rows: hand them to the index as a list too, so neither
        // side scans a mask of the whole segment to find them again.
        allowRows = liveVectorRows(narrowed, col.valid);
        if (allowRows.length === 0) continue;
        allow = new Uint8Array(chunk.numRows);
        for (let i = 0; i < allowRows.length; i++) allow[allowRows[i]!] = 1;
      } else if (req.filter || chunk.deletedCount > 0 || col.valid || CollectionRuntime.#hasExpired(chunk, req.expiredBefore)) {
        const mask = CollectionRuntime.#mask(chunk, req.filter, req.field.name, req.expiredBefore);
        // Word-at-a-time: a per-byte loop here cost more than an index-narrowed filter itself.
        const allowed = countAllowed(mask);
        if (allowed === 0) continue;
        allow = allowed === chunk.numRows ? undefined : mask;
      }
      const index = chunk.indexes.get(req.field.name);
      const opts = { k: want, allow, allowRows, ef: req.ef, nprobe: req.nprobe, refineK: req.refineK, radius: req.radius, rangeFilter: req.rangeFilter };
      let hits: Hits[];
      if (col.kind === 'bytevec' && col.vtype !== 'BinaryVector' && index && index.metric === req.metric && req.typedQueries?.kind === 'bytes') {
        // Float16 / BFloat16 / Int8 with a float index (HNSW): the index holds the widened vectors.
        hits = index.search(widenQueries(col.vtype, req.typedQueries.rows, col.dim), req.nq, opts);
      } else if (col.kind !== 'vector') {
        if (!req.typedQueries)
          throw quiverError('ParameterInvalid', `field ${req.field.name} is a ${req.field.dataType}: search it with ${req.field.dataType} vectors`);
        hits = searchTypedColumn(col, req.metric, req.typedQueries, {
          ...opts,
          dropRatioSearch: req.dropRatioSearch,
          dropRatioBuild: req.dropRatioBuild,
          binaryIvfNlist: flushed?.has(chunk) ? req.binaryIvfNlist : undefined,
          loaded: chunk.typedIndexes.get(req.field.name),
        });
      } else if (index && index.metric === req.metric) {
        hits = index.search(req.queries, req.nq, opts);
      } else {
        hits = flatSearch(residentVectors(col), col.dim, req.metric as MetricType, req.queries, req.nq, opts);
      }
      for (let q = 0; q < req.nq; q++) {
        const h = hits[q]!;
        const list = perQuery[q]!;
        for (let i = 0; i < h.rows.length; i++) list.push({ chunk, row: h.rows[i]!, score: h.scores[i]! });
      }
    }
    return perQuery.map((list) => {
      list.sort((a, b) => (higherIsBetter ? b.score - a.score : a.score - b.score));
      return list.slice(req.offset, want);
    });
  }

  /**
   * Rows matching the filter after `offset`, at most `limit` (undefined = all). With a limit the rows are
   * those with the smallest primary keys, in pk order, as Milvus reduces a limited query: this is what the
   * SDK's query iterator paginates on (`pk > last && filter`, limit = batch), so every row comes exactly
   * once. Without a limit, segment order.
   */
  query(
    filter: CompiledExpr | null,
    partitionIds: ReadonlySet<number> | null,
    offset: number,
    limit: number | undefined,
    expiredBefore?: bigint,
  ): RowRef[] {
    if (limit !== undefined) return this.#queryByPk(filter, partitionIds, offset, limit, expiredBefore);
    const out: RowRef[] = [];
    let skip = offset;
    for (const chunk of this.#chunksFor(partitionIds)) {
      const rows = CollectionRuntime.#rows(chunk, filter, expiredBefore);
      const mask = rows ? undefined : CollectionRuntime.#mask(chunk, filter, undefined, expiredBefore);
      const end = rows ? rows.length : chunk.numRows;
      for (let j = 0; j < end; j++) {
        const i = rows ? rows[j]! : j;
        if (mask && mask[i] !== 1) continue;
        if (skip > 0) {
          skip--;
          continue;
        }
        if (limit !== undefined && out.length >= limit) return out;
        out.push({ chunk, row: i });
      }
    }
    return out;
  }

  /**
   * The `offset + limit` matching rows with the smallest pks, in pk order. A bounded max-heap keeps the
   * best `want` seen so far, so a small limit over a large collection costs O(n log want), not a full sort.
   */
  #queryByPk(filter: CompiledExpr | null, partitionIds: ReadonlySet<number> | null, offset: number, limit: number, expiredBefore?: bigint): RowRef[] {
    const pkName = this.pkField.name;
    const want = offset + limit;
    if (want === 0) return [];
    // Heap entries: parallel arrays; heap[0] holds the largest kept pk.
    const keys: (bigint | string)[] = [];
    const refs: RowRef[] = [];
    const swap = (a: number, b: number): void => {
      [keys[a], keys[b]] = [keys[b]!, keys[a]!];
      [refs[a], refs[b]] = [refs[b]!, refs[a]!];
    };
    const up = (i: number): void => {
      while (i > 0) {
        const p = (i - 1) >> 1;
        if (keys[p]! >= keys[i]!) return;
        swap(p, i);
        i = p;
      }
    };
    const down = (i: number): void => {
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < keys.length && keys[l]! > keys[m]!) m = l;
        if (r < keys.length && keys[r]! > keys[m]!) m = r;
        if (m === i) return;
        swap(m, i);
        i = m;
      }
    };
    for (const chunk of this.#chunksFor(partitionIds)) {
      const rows = CollectionRuntime.#rows(chunk, filter, expiredBefore);
      const mask = rows ? undefined : CollectionRuntime.#mask(chunk, filter, undefined, expiredBefore);
      const pks = chunk.columns.get(pkName)!.data as ArrayLike<bigint | string>;
      const end = rows ? rows.length : chunk.numRows;
      for (let j = 0; j < end; j++) {
        const i = rows ? rows[j]! : j;
        if (mask && mask[i] !== 1) continue;
        const k = pks[i]!;
        if (keys.length < want) {
          keys.push(k);
          refs.push({ chunk, row: i });
          up(keys.length - 1);
        } else if (k < keys[0]!) {
          keys[0] = k;
          refs[0] = { chunk, row: i };
          down(0);
        }
      }
    }
    const order = Array.from(keys.keys()).sort((a, b) => (keys[a]! < keys[b]! ? -1 : keys[a]! > keys[b]! ? 1 : 0));
    return order.slice(offset).map((i) => refs[i]!);
  }

  count(filter: CompiledExpr | null, partitionIds: ReadonlySet<number> | null, expiredBefore?: bigint): number {
    let n = 0;
    for (const chunk of this.#chunksFor(partitionIds)) {
      const rows = CollectionRuntime.#rows(chunk, filter, expiredBefore);
      if (rows) {
        n += rows.length;
        continue;
      }
      const mask = CollectionRuntime.#mask(chunk, filter, undefined, expiredBefore);
      for (let i = 0; i < chunk.numRows; i++) n += mask[i]!;
    }
    return n;
  }
}

/**
 * Makes `columns` match the schema: the default/null column of every field added after the rows were
 * written, and no column of a field dropped since (a field dropped and added again under the same name
 * may have another type: its old column must not stand in for the new one).
 */
export function fillMissingColumns(schema: CollectionSchema, columns: Map<string, Column>, numRows: number): void {
  const names = new Set<string>();
  for (const f of schema.fields) {
    names.add(f.name);
    const col = columns.get(f.name);
    if (col && col.kind === columnKindOf(f.dataType)) continue;
    // A function output added after the rows were written is computed from their input (filled first: an
    // input precedes the outputs added after it in the field list).
    const fn = functionOf(schema, f.name);
    columns.set(f.name, fn ? backfillFunctionOutput(schema, f, columns.get(fn.inputFieldNames[0]!), numRows)! : missingFieldColumn(f, numRows));
  }
  for (const name of [...columns.keys()]) if (!names.has(name)) columns.delete(name);
}

/** The rows of `rows` (ascending) whose vector is not null, as a fresh list. */
function liveVectorRows(rows: Uint32Array, valid: Uint8Array | undefined): Int32Array {
  const out = new Int32Array(rows.length);
  let n = 0;
  for (let i = 0; i < rows.length; i++) {
    const r = rows[i]!;
    if (valid === undefined || valid[r] !== 0) out[n++] = r;
  }
  return out.subarray(0, n);
}

export function chunkBatch(chunk: Chunk): ColumnBatch {
  return { numRows: chunk.numRows, column: (name) => chunk.columns.get(name) };
}

/** Gathers one field for a list of row references, preserving their order. */
export function gatherColumn(refs: readonly RowRef[], fieldName: string): Column | undefined {
  if (refs.length === 0) return undefined;
  // Group by chunk, take per chunk, then permute back into hit order.
  const byChunk = new Map<Chunk, number[]>();
  for (let i = 0; i < refs.length; i++) {
    const r = refs[i]!;
    let list = byChunk.get(r.chunk);
    if (!list) byChunk.set(r.chunk, (list = []));
    list.push(i);
  }
  const parts: Column[] = [];
  const order = new Int32Array(refs.length);
  let pos = 0;
  for (const [chunk, idxs] of byChunk) {
    const col = chunk.columns.get(fieldName);
    if (!col) return undefined;
    parts.push(
      takeRows(
        col,
        idxs.map((i) => refs[i]!.row),
      ),
    );
    for (const i of idxs) order[i] = pos++;
  }
  const all = concatColumns(parts);
  return byChunk.size === 1 ? all : takeRows(all, order);
}
