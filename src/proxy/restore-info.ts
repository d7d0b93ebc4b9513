import { jobProgress, publicJobState, type CopyJob } from '../coord/copy/index.js';

/** A restore job as the RestoreSnapshotInfo of GetRestoreSnapshotState / ListRestoreSnapshotJobs replies. */
export function restoreInfo(job: CopyJob, nowMs: number, waitingReason?: string): Record<string, unknown> {
  const start = job.startedAtMs ?? job.createdAtMs;
  const end = job.finishedAtMs ?? nowMs;
  return {
    job_id: String(job.id),
    snapshot_name: job.snapshotName,
    db_name: job.targetDbName,
    collection_name: job.targetCollectionName,
    state: publicJobState(job.state),
    progress: jobProgress(job),
    // While a publish/rollback is being retried, its last error too (the reason stays what the job ends with);
    // while its tasks wait for a data node, that.
    reason: [job.reason, job.lastError, job.state === 'Executing' ? waitingReason : undefined].filter((x) => x).join('; '),
    start_time: String(job.createdAtMs),
    time_cost: String(Math.max(0, end - start)),
  };
}
