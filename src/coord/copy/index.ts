export * from './types.js';
export {
  CopyJobStore,
  newCopyJob,
  copyJobKey,
  copyTaskKey,
  copyTasksPrefix,
  batchOps,
  encodeJob,
  encodeTask,
  TXN_BYTES_MAX,
  TXN_OPS_MAX,
} from './copy-job-store.js';
export type { CopyJobStoreDeps, CopyJobPatch, CopyTaskPatch, NewCopyJobInput, TaskUpdate } from './copy-job-store.js';
export { CopyJobChecker, TargetRefused } from './checker.js';
export type { CopyJobCheckerDeps } from './checker.js';
export { TaskInspector, DEFAULT_MAX_DISPATCH_ATTEMPTS } from './inspector.js';
export type { TaskInspectorDeps } from './inspector.js';
export { jobProgress, RestoreProgress } from './progress.js';
export {
  targetKeyOf,
  targetKeysOf,
  sourceKeysOf,
  copyPlanOf,
  rewriteSegmentRecord,
  mappingsProblem,
  resolvedMappingsProblem,
  resolveMappings,
} from '../../storage/snapshot-format/segment-rewrite.js';
export type { CopyStep } from '../../storage/snapshot-format/segment-rewrite.js';
