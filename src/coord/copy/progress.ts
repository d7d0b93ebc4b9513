import type { CopyJob } from './types.js';

/**
 * Restore progress as an integer percentage (0-100): copied segments over total segments, rounded
 * down so that 100 is only ever shown for a job that is done (Publishing: copied, not yet visible, is 99). A Completed job is 100 even with no
 * segments (an empty collection restores instantly); a Failed job keeps the progress it had.
 */
export function jobProgress(job: CopyJob): number {
  if (job.state === 'Completed') return 100;
  if (job.totalSegments <= 0) return 0;
  const pct = Math.floor((job.copiedSegments * 100) / job.totalSegments);
  return Math.min(99, Math.max(0, pct));
}

/** The progress helpers of a restore, grouped for callers that prefer one import. */
export const RestoreProgress = { jobProgress } as const;
