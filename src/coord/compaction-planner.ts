/**
 * Compaction planning: which flushed segments to rewrite together. Pure (no I/O), so it is unit-tested
 * with plain data. Two triggers, as in Milvus's datacoord:
 *  - delete ratio: a segment whose deleted fraction reached `deleteRatioMin` is rewritten so its deleted
 *    rows are physically dropped;
 *  - small segments: flushed segments below `smallRowsMax` in one partition are merged, greedily in id
 *    order, into groups of at most `targetRows` rows.
 * Protected segments (a snapshot's compaction protection, a segment being indexed or copied) are never
 * planned. A plan never mixes partitions.
 *
 * A plan's commit is one meta txn (target Flushed + every source Dropped, atomically), so a plan is
 * bounded to fit etcd's limits: at most `COMPACTION_SOURCES_MAX` sources whose records add up to at most
 * `COMPACTION_RECORD_BYTES_MAX` (a merge group is closed early; the rest merge in the next round).
 */

/** Sources of one plan: 1 + 32 records per txn, far under etcd's 128 ops. */
export const COMPACTION_SOURCES_MAX = 32;
/** Encoded source records of one plan; the target's record is smaller than the sum of its sources'. */
export const COMPACTION_RECORD_BYTES_MAX = 384 * 1024;

export interface SegmentStat {
  readonly id: number;
  readonly partitionId: number;
  readonly numRows: number;
  readonly deletedRows: number;
  /** Bytes of the segment's encoded catalog record (bounds the commit). */
  readonly recordBytes: number;
}

export interface CompactionPolicy {
  /** Segments below this many rows are "small" and get merged. */
  readonly smallRowsMax: number;
  /** Merged segments stay at or below this many rows. */
  readonly targetRows: number;
  /** Deleted fraction at which a segment is rewritten on its own. */
  readonly deleteRatioMin: number;
}

export interface CompactionPlan {
  readonly partitionId: number;
  readonly sources: readonly number[];
  /** Live rows the target will hold. */
  readonly rows: number;
  readonly reason: 'delete-ratio' | 'merge-small';
}

export function planCompaction(
  segments: readonly SegmentStat[],
  policy: CompactionPolicy,
  isProtected: (segmentId: number) => boolean = () => false,
  opts: { force?: boolean } = {},
): CompactionPlan[] {
  const plans: CompactionPlan[] = [];
  const used = new Set<number>();
  const byPartition = new Map<number, SegmentStat[]>();
  for (const s of [...segments].sort((a, b) => a.id - b.id)) {
    if (isProtected(s.id) || s.numRows === 0) continue;
    const list = byPartition.get(s.partitionId) ?? [];
    list.push(s);
    byPartition.set(s.partitionId, list);
  }
  for (const [partitionId, list] of byPartition) {
    for (const s of list) {
      const live = s.numRows - s.deletedRows;
      if (s.deletedRows > 0 && s.deletedRows / s.numRows >= policy.deleteRatioMin) {
        // A fully deleted segment still gets a plan: the target is empty and the sources are dropped.
        plans.push({ partitionId, sources: [s.id], rows: live, reason: 'delete-ratio' });
        used.add(s.id);
      }
    }
    // A manual compaction (force) also merges segments that are not small, up to the target size.
    const small = list.filter((s) => !used.has(s.id) && (opts.force || s.numRows - s.deletedRows < policy.smallRowsMax));
    let group: SegmentStat[] = [];
    let rows = 0;
    let bytes = 0;
    const flush = () => {
      if (group.length >= 2 || (opts.force && group.length === 1 && group[0]!.deletedRows > 0)) {
        plans.push({ partitionId, sources: group.map((g) => g.id), rows, reason: 'merge-small' });
      }
      group = [];
      rows = 0;
      bytes = 0;
    };
    for (const s of small) {
      const live = s.numRows - s.deletedRows;
      const full = group.length >= COMPACTION_SOURCES_MAX || bytes + s.recordBytes > COMPACTION_RECORD_BYTES_MAX;
      if (group.length > 0 && (rows + live > policy.targetRows || full)) flush();
      group.push(s);
      rows += live;
      bytes += s.recordBytes;
    }
    flush();
  }
  return plans;
}
