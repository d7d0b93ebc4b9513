import type { Column } from '../schema/types.js';
import { concatColumns } from '../schema/columns.js';
import type { VectorIndex } from '../index/index.js';
import type { SegmentRecord } from '../coord/records.js';
import type { ScalarIndexReader } from '../expr/index.js';
import type { TypedVectorIndex } from '../index/typed-index-file.js';

/**
 * In-memory segment data. A segment is a list of chunks; a growing segment gains a chunk per insert batch
 * (small chunks are merged), a flushed segment has exactly one. Each chunk carries its row timestamps and
 * a delete bitmap; deletes mark rows whose insert ts is older than the delete ts (MVCC as in Milvus, so an
 * upsert's own insert, which shares the delete's ts, survives).
 */
export interface Chunk {
  numRows: number;
  /** By field name (dynamic column under `$meta`). Flushed, unloaded segments hold only the pk column. */
  columns: Map<string, Column>;
  ts: BigInt64Array;
  deleted: Uint8Array;
  /** Number of 1s in `deleted`: lets the read path skip building masks for chunks without deletes. */
  deletedCount: number;
  /** Vector index per field name (flushed segments with a built index). */
  indexes: Map<string, VectorIndex>;
  /** Build id of each index in `indexes` (what makes an index shareable between segments). */
  indexBuilds: Map<string, number>;
  /** Scalar indexes of a flushed segment, by field name (plus JSON path); filters narrow rows through them. */
  scalarIndexes: Map<string, ScalarIndexReader>;
  /** BIN_IVF_FLAT / sparse indexes of a flushed segment, by field name, loaded from their files. */
  typedIndexes: Map<string, TypedVectorIndex>;
}

export type SegmentPhase = 'growing' | 'sealed' | 'flushed';

export interface Segment {
  readonly id: number;
  readonly partitionId: number;
  phase: SegmentPhase;
  chunks: Chunk[];
  numRows: number;
  /** The persisted record once flushed. */
  record?: SegmentRecord | undefined;
  /** Whether all columns are in memory (flushed segments of a released collection keep only pk + ts). */
  loaded: boolean;
  /** Deletes applied to this segment since its last deltalog: written by the next flush. */
  pendingDeletes: { pks: (bigint | string)[]; ts: bigint[] };
  /** A segment whose files could not be read: reported, not silently skipped. */
  error?: string | undefined;
}

export function newChunk(numRows: number, columns: Map<string, Column>, ts: BigInt64Array): Chunk {
  return {
    numRows,
    columns,
    ts,
    deleted: new Uint8Array(numRows),
    deletedCount: 0,
    indexes: new Map(),
    indexBuilds: new Map(),
    scalarIndexes: new Map(),
    typedIndexes: new Map(),
  };
}

/** Recomputes `deletedCount` after the bitmap was filled in bulk. */
export function recountDeleted(chunk: Chunk): void {
  let n = 0;
  for (let i = 0; i < chunk.numRows; i++) n += chunk.deleted[i]!;
  chunk.deletedCount = n;
}

/** Concatenates a growing segment's chunks into one (at seal time), keeping the delete bitmap. */
export function mergeChunks(chunks: readonly Chunk[], names: readonly string[]): Chunk {
  let rows = 0;
  for (const c of chunks) rows += c.numRows;
  const columns = new Map<string, Column>();
  for (const name of names) {
    const parts = chunks.map((c) => c.columns.get(name)!);
    columns.set(name, concatColumns(parts));
  }
  const ts = new BigInt64Array(rows);
  const deleted = new Uint8Array(rows);
  let off = 0;
  for (const c of chunks) {
    ts.set(c.ts, off);
    deleted.set(c.deleted, off);
    off += c.numRows;
  }
  const chunk = newChunk(rows, columns, ts);
  chunk.deleted.set(deleted);
  recountDeleted(chunk);
  return chunk;
}

/** Approximate in-memory size of a segment: typed arrays exactly, strings/JSON/arrays estimated per row. */
export function segmentBytes(seg: Segment): number {
  let n = 0;
  for (const c of seg.chunks) {
    n += c.ts.byteLength + c.deleted.byteLength;
    for (const col of c.columns.values()) {
      const d = col.data as unknown;
      if (ArrayBuffer.isView(d)) n += (d as ArrayBufferView).byteLength;
      else n += (d as unknown[]).length * 48;
    }
  }
  return n;
}

/** Drops every column but the pk (a released or dropped segment keeps only what deletes match on). */
export function stripToPk(seg: Segment, pkName: string): void {
  for (const c of seg.chunks) {
    for (const name of [...c.columns.keys()]) if (name !== pkName) c.columns.delete(name);
    c.indexes.clear();
    c.scalarIndexes.clear();
    c.typedIndexes.clear();
  }
  seg.loaded = false;
}
