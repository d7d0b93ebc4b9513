import { describe, expect, it } from 'vitest';
import { COMPACTION_RECORD_BYTES_MAX, COMPACTION_SOURCES_MAX, planCompaction, type SegmentStat } from './compaction-planner.js';

const policy = { smallRowsMax: 100, targetRows: 250, deleteRatioMin: 0.2 };
const seg = (id: number, numRows: number, deletedRows = 0, partitionId = 1, recordBytes = 1000): SegmentStat => ({
  id,
  partitionId,
  numRows,
  deletedRows,
  recordBytes,
});

describe('planCompaction', () => {
  it('merges small segments of one partition greedily up to the target size', () => {
    const plans = planCompaction([seg(1, 90), seg(2, 90), seg(3, 90), seg(4, 90), seg(5, 500)], policy);
    expect(plans).toEqual([
      { partitionId: 1, sources: [1, 2], rows: 180, reason: 'merge-small' },
      { partitionId: 1, sources: [3, 4], rows: 180, reason: 'merge-small' },
    ]);
  });

  it('never merges a lone small segment or across partitions', () => {
    expect(planCompaction([seg(1, 10, 0, 1), seg(2, 10, 0, 2)], policy)).toEqual([]);
  });

  it('rewrites a segment whose delete ratio reached the threshold, on its own', () => {
    const plans = planCompaction([seg(1, 1000, 200), seg(2, 1000, 199)], policy);
    expect(plans).toEqual([{ partitionId: 1, sources: [1], rows: 800, reason: 'delete-ratio' }]);
  });

  it('skips protected segments and empty ones', () => {
    const plans = planCompaction([seg(1, 50), seg(2, 50), seg(3, 50), seg(4, 0)], policy, (id) => id === 2);
    expect(plans).toEqual([{ partitionId: 1, sources: [1, 3], rows: 100, reason: 'merge-small' }]);
  });

  it('force merges large segments too (manual compaction)', () => {
    const plans = planCompaction([seg(1, 200), seg(2, 40), seg(3, 300, 10)], policy, undefined, { force: true });
    expect(plans.map((p) => p.sources)).toEqual([[1, 2], [3]]);
  });

  it('a segment appears in at most one plan', () => {
    const plans = planCompaction([seg(1, 10, 5), seg(2, 10), seg(3, 10)], policy);
    const all = plans.flatMap((p) => p.sources);
    expect(new Set(all).size).toBe(all.length);
  });

  it('bounds a merge to what one etcd txn holds: source count and record bytes', () => {
    const many = Array.from({ length: 100 }, (_, i) => seg(i + 1, 10));
    const plans = planCompaction(many, { ...policy, targetRows: 1_000_000 });
    expect(plans.map((p) => p.sources.length)).toEqual([COMPACTION_SOURCES_MAX, COMPACTION_SOURCES_MAX, COMPACTION_SOURCES_MAX, 4]);
    const big = Array.from({ length: 10 }, (_, i) => seg(i + 1, 10, 0, 1, COMPACTION_RECORD_BYTES_MAX / 3));
    const bigPlans = planCompaction(big, { ...policy, targetRows: 1_000_000 });
    expect(bigPlans.map((p) => p.sources.length)).toEqual([3, 3, 3]);
  });
});
