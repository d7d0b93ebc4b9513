export { executeCopy, COPY_CONCURRENCY_DEFAULT, COPY_RETRIES_MAX_DEFAULT } from './copy-segment-executor.js';
export type { CopyExecutionOptions, CopyExecutionResult } from './copy-segment-executor.js';
export { InProcessWorkerPool, DEFAULT_WORKER_SLOTS, DEFAULT_FINISHED_TASKS_MAX } from './in-process-worker-pool.js';
export type { InProcessWorkerPoolOptions, WorkerNodeSpec } from './in-process-worker-pool.js';
// Rollback deletes exactly these keys; re-exported so worker-side code names one module.
export { targetKeysOf } from '../../storage/snapshot-format/segment-rewrite.js';
