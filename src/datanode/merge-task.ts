import { readFileSync } from 'node:fs';
import { concatColumns, takeRows } from '../schema/columns.js';
import type { Column, ColumnKind } from '../schema/types.js';
import { decodeColumn, encodeColumn } from '../storage/binlog.js';

/**
 * The CPU-heavy half of a compaction: read each source segment's binlogs, keep the live rows, concatenate
 * and encode the target's binlogs. Runs on a worker thread (so ingest keeps its core) when the sources
 * are local files; the caller writes the returned bytes through its ObjectStore.
 */
export interface MergeTask {
  readonly id: number;
  /** fieldId → column kind, including the timestamp field. */
  readonly fields: readonly { readonly fieldId: number; readonly kind: ColumnKind }[];
  readonly sources: readonly {
    /** fieldId → local path of the field's single binlog. */
    readonly files: Readonly<Record<string, string>>;
    /** Row offsets to keep, ascending. */
    readonly keep: Int32Array;
  }[];
}

export interface MergeResult {
  /** fieldId → encoded binlog of the merged column. */
  readonly encoded: Record<string, Uint8Array>;
  readonly rows: number;
}

export function runMergeTask(task: MergeTask): MergeResult {
  const encoded: Record<string, Uint8Array> = {};
  let rows = 0;
  for (const s of task.sources) rows += s.keep.length;
  for (const f of task.fields) {
    const parts: Column[] = [];
    for (const s of task.sources) {
      const path = s.files[String(f.fieldId)];
      if (!path) throw new Error(`merge task ${task.id}: a source has no binlog for field ${f.fieldId}`);
      const col = decodeColumn(readFileSync(path), f.kind);
      parts.push(takeRows(col, s.keep));
    }
    encoded[String(f.fieldId)] = encodeColumn(concatColumns(parts), { fieldId: f.fieldId });
  }
  return { encoded, rows };
}
