/**
 * The COMPACTION_MERGE executor of a remote data node: per field, read every source's binlog from the
 * object store, keep the listed rows, concatenate, encode, and write the merged column to the output key
 * the coordinator chose. Deterministic for given inputs (immutable source files, explicit rows), so a
 * re-dispatched run rewrites the same bytes. One field at a time bounds memory to one merged column.
 */

import { quiverError } from '../../common/errors.js';
import { concatColumns, takeRows } from '../../schema/columns.js';
import type { Column, ColumnKind } from '../../schema/types.js';
import { decodeColumn, encodeColumn } from '../../storage/binlog.js';
import type { ObjectStore } from '../../storage/object-store.js';
import type { CompactionMergeParams, WireMerged } from '../../taskrpc/protocol.js';

/** Rows of `[start, end)` pairs, checked: ascending, non-overlapping, non-negative. */
export function rowsOfRanges(ranges: readonly number[]): Int32Array {
  if (ranges.length % 2 !== 0) throw quiverError('ParameterInvalid', `keep ranges must be [start, end) pairs, got ${ranges.length} numbers`);
  let n = 0;
  let prev = 0;
  for (let i = 0; i < ranges.length; i += 2) {
    const a = ranges[i]!;
    const b = ranges[i + 1]!;
    if (!(Number.isInteger(a) && Number.isInteger(b) && a >= prev && b > a))
      throw quiverError('ParameterInvalid', `keep range [${a}, ${b}) is out of order`);
    n += b - a;
    prev = b;
  }
  const rows = new Int32Array(n);
  let o = 0;
  for (let i = 0; i < ranges.length; i += 2) for (let r = ranges[i]!; r < ranges[i + 1]!; r++) rows[o++] = r;
  return rows;
}

/** The inverse of `rowsOfRanges`: ascending row offsets as [start, end) pairs. */
export function rangesOfRows(rows: ArrayLike<number>): number[] {
  const out: number[] = [];
  for (let i = 0; i < rows.length; i++) {
    const r = rows[i]!;
    if (out.length > 0 && out[out.length - 1] === r) out[out.length - 1] = r + 1;
    else out.push(r, r + 1);
  }
  return out;
}

/**
 * `onColumn` sees each merged column before the next field is read (an index build over the output
 * keeps the vector column it needs; everything else is released field by field).
 */
export async function runMerge(store: ObjectStore, p: CompactionMergeParams, onColumn?: (fieldId: number, col: Column) => void): Promise<WireMerged> {
  if (p.sources.length === 0 || p.fields.length === 0)
    throw quiverError('ParameterInvalid', `merge into segment ${p.target_segment_id}: no sources or no fields`);
  const keeps = p.sources.map((s) => rowsOfRanges(s.keep_ranges));
  const rows = keeps.reduce((n, k) => n + k.length, 0);
  const sizes: Record<string, number> = {};
  for (const f of p.fields) {
    const parts: Column[] = [];
    for (let i = 0; i < p.sources.length; i++) {
      const key = p.sources[i]!.binlogs[String(f.field_id)];
      if (key === undefined)
        throw quiverError('ParameterInvalid', `merge into segment ${p.target_segment_id}: source ${i} has no binlog for field ${f.field_id}`);
      const col = decodeColumn(await store.get(key), f.kind as ColumnKind);
      parts.push(takeRows(col, keeps[i]!));
    }
    const merged = concatColumns(parts);
    onColumn?.(f.field_id, merged);
    const encoded = encodeColumn(merged, { fieldId: f.field_id });
    await store.put(f.output_key, encoded);
    sizes[String(f.field_id)] = encoded.byteLength;
  }
  return { rows, sizes };
}
