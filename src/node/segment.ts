import type { Column } from '../schema/types.js';
import type { VectorIndex } from '../index/index.js';
import type { SegmentRecord } from '../coord/records.js';

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
  return { numRows, columns, ts, deleted: new Uint8Array(numRows), deletedCount: 0, indexes: new Map(), indexBuilds: new Map() };
}

export function liveRows(seg: Segment): number {
  let n = 0;
  for (const c of seg.chunks) {
    for (let i = 0; i < c.numRows; i++) if (c.deleted[i] === 0) n++;
  }
  return n;
}

/** Recomputes `deletedCount` after the bitmap was filled in bulk. */
export function recountDeleted(chunk: Chunk): void {
  let n = 0;
  for (let i = 0; i < chunk.numRows; i++) n += chunk.deleted[i]!;
  chunk.deletedCount = n;
}
