import { quiverError } from '../common/errors.js';
import type { CollectionRecord } from '../coord/records.js';
import type { CompiledExpr } from '../expr/index.js';
import { flatSearch, type Hits, type MetricType } from '../index/index.js';
import { concatColumns, takeRows } from '../schema/columns.js';
import type { Column, ColumnBatch, FieldSchema } from '../schema/types.js';
import { newChunk, type Chunk, type Segment } from './segment.js';

/**
 * The in-memory state of one collection on this node: its growing, sealed and flushed segments, and the
 * read paths (search, query) over them. Writes are applied synchronously so that timestamp order equals
 * apply order equals WAL order.
 */

const MERGE_CHUNK_ROWS = 4096;

export interface SearchRequest {
  readonly field: FieldSchema;
  readonly queries: Float32Array;
  readonly nq: number;
  readonly k: number;
  readonly offset: number;
  readonly metric: MetricType;
  readonly filter: CompiledExpr | null;
  readonly partitionIds: ReadonlySet<number> | null;
  readonly ef?: number | undefined;
  readonly nprobe?: number | undefined;
  readonly refineK?: number | undefined;
  readonly radius?: number | undefined;
  readonly rangeFilter?: number | undefined;
  readonly ignoreGrowing?: boolean | undefined;
}

export interface RowRef {
  readonly chunk: Chunk;
  readonly row: number;
}

export interface SearchHit extends RowRef {
  readonly score: number;
}

export class CollectionRuntime {
  record: CollectionRecord;
  readonly segments = new Map<number, Segment>();
  /** partitionId → its growing segment. */
  readonly growing = new Map<number, Segment>();

  constructor(record: CollectionRecord) {
    this.record = record;
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
    const tsCol = new BigInt64Array(numRows).fill(ts);
    const last = seg.chunks[seg.chunks.length - 1];
    if (last && last.numRows < MERGE_CHUNK_ROWS && numRows < MERGE_CHUNK_ROWS) {
      // Merge small batches so that a stream of single-row inserts does not become thousands of chunks.
      const merged = new Map<string, Column>();
      for (const [name, col] of last.columns) {
        const add = columns.get(name);
        if (!add) throw new Error(`missing column ${name}`);
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

  /** Rows of a chunk that are live and match the filter (1 = candidate). */
  static #mask(chunk: Chunk, filter: CompiledExpr | null, vectorField?: string): Uint8Array {
    const mask = filter ? filter.evaluate(chunkBatch(chunk)) : new Uint8Array(chunk.numRows).fill(1);
    const del = chunk.deleted;
    const valid = vectorField ? chunk.columns.get(vectorField)?.valid : undefined;
    for (let i = 0; i < chunk.numRows; i++) {
      if (del[i] === 1 || (valid && valid[i] === 0)) mask[i] = 0;
    }
    return mask;
  }

  search(req: SearchRequest): SearchHit[][] {
    const higherIsBetter = req.metric !== 'L2';
    const want = req.k + req.offset;
    const perQuery: SearchHit[][] = Array.from({ length: req.nq }, () => []);
    for (const chunk of this.#chunksFor(req.partitionIds, req.ignoreGrowing)) {
      if (chunk.numRows === 0) continue;
      const col = chunk.columns.get(req.field.name);
      if (!col || col.kind !== 'vector') continue;
      // No mask and no filter callback at all when every row qualifies (no filter, no deletes, no null
      // vectors): the common case then costs nothing per row and the native graph walk runs at full speed.
      let allow: Uint8Array | undefined;
      if (req.filter || chunk.deletedCount > 0 || col.valid) {
        const mask = CollectionRuntime.#mask(chunk, req.filter, req.field.name);
        let allowed = 0;
        for (let i = 0; i < mask.length; i++) allowed += mask[i]!;
        if (allowed === 0) continue;
        allow = allowed === chunk.numRows ? undefined : mask;
      }
      const index = chunk.indexes.get(req.field.name);
      const opts = { k: want, allow, ef: req.ef, nprobe: req.nprobe, refineK: req.refineK, radius: req.radius, rangeFilter: req.rangeFilter };
      let hits: Hits[];
      if (index && index.metric === req.metric) {
        hits = index.search(req.queries, req.nq, opts);
      } else {
        hits = flatSearch(col.data, col.dim, req.metric, req.queries, req.nq, opts);
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

  /** Rows matching the filter, in segment order, after `offset`, at most `limit` (undefined = all). */
  query(filter: CompiledExpr | null, partitionIds: ReadonlySet<number> | null, offset: number, limit: number | undefined): RowRef[] {
    const out: RowRef[] = [];
    let skip = offset;
    for (const chunk of this.#chunksFor(partitionIds)) {
      const mask = CollectionRuntime.#mask(chunk, filter);
      for (let i = 0; i < chunk.numRows; i++) {
        if (mask[i] !== 1) continue;
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

  count(filter: CompiledExpr | null, partitionIds: ReadonlySet<number> | null): number {
    let n = 0;
    for (const chunk of this.#chunksFor(partitionIds)) {
      const mask = CollectionRuntime.#mask(chunk, filter);
      for (let i = 0; i < chunk.numRows; i++) n += mask[i]!;
    }
    return n;
  }
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
