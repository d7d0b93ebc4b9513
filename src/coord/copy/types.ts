/**
 * Restore's copy-segment job: the persisted shapes, their state machines, and the small interfaces the
 * checker and the inspector depend on (DESIGN.md section 4, "Restore").
 *
 * CopyJob state machine (the checker is its only writer):
 *
 *     Pending ──(1)──▶ Executing ──(2)──▶ Completed
 *        │                 │
 *       (3)               (4)
 *        │                 │
 *        └────▶ Failed ◀───┘
 *
 *   (1) Pending → Executing   mappings split into tasks of at most `maxSegmentsPerTask` segments; the
 *                             tasks are written in the same MetaKV txn as the state change, so a crash
 *                             can never leave a job with half of its tasks.
 *   (2) Executing → Completed every task Completed and `finalizer.complete` returned (target segments
 *                             flipped to Flushed): Completed means "visible to searches".
 *   (3) Pending → Failed      a mapping is unusable (bad key, duplicate target) or the job timed out
 *                             before it started; `finalizer.rollback` returned.
 *   (4) Executing → Failed    a task Failed (fail-fast), or `now - startedAtMs > timeoutMs` while some
 *                             task is unfinished; the other tasks were cancelled and
 *                             `finalizer.rollback` returned.
 *   Completed and Failed are terminal; the job and its tasks are deleted `taskRetentionMs` after
 *   `finishedAtMs` (deletion is not a transition).
 *
 *   Why `outcome`: the decision (complete or fail) and its side effect (complete or rollback) cannot be
 *   one atomic step. So the checker first records the decision with a CAS (`outcome`, same state), then
 *   runs the side effect, then flips the state. Only one checker can win the decision, a complete can
 *   never race a rollback (e.g. "all tasks done" against "timed out"), and after a crash the next
 *   checker re-runs the recorded side effect (both are idempotent) instead of deciding again.
 *
 * CopyTask state machine (the inspector drives 1-4; the checker cancels with 3 and 5):
 *
 *              ┌───────────(4)───────────┐
 *              ▼                         │
 *           Pending ──────(1)──────▶ InProgress ──(2)──▶ Completed
 *              │                         │
 *             (5)                       (3)
 *              │                         ▼
 *              └─────────────────────▶ Failed
 *
 *   (1) Pending → InProgress   assigned to a node with a free slot: `nodeId` set, `version` (the
 *                              dispatch epoch) and `attempts` incremented, then dispatched.
 *   (2) InProgress → Completed the worker reported the copy done for the task's current version;
 *                              `results` stored.
 *   (3) InProgress → Failed    the worker reported a failure (after its own bounded retries), the task
 *                              lost its worker too many times, or its job failed (cancelled).
 *   (4) InProgress → Pending   the worker is lost (node gone, or the node does not know this version of
 *                              the task) or the dispatch call failed: `nodeId` cleared, re-queued.
 *   (5) Pending → Failed       its job failed before the task was dispatched (cancelled).
 *   Every task write is a CAS on (state, version), so an answer about an older dispatch can never
 *   overwrite the state of a newer one.
 */

import type { SegmentRecord } from '../records.js';

export type CopyJobState = 'Pending' | 'Executing' | 'Completed' | 'Failed';
export type CopyTaskState = 'Pending' | 'InProgress' | 'Completed' | 'Failed';
/** The terminal states a job can be decided into. */
export type CopyJobOutcome = 'Completed' | 'Failed';

export interface SegmentMapping {
  /** The snapshot's copy of the source segment record (its file lists). */
  readonly source: SegmentRecord;
  readonly targetSegmentId: number;
  readonly targetPartitionId: number;
  readonly targetCollectionId: number;
}

export interface CopyJob {
  readonly id: number;
  readonly state: CopyJobState;
  readonly snapshotName: string;
  readonly sourceCollectionId: number;
  readonly sourceDbName: string;
  readonly sourceCollectionName: string;
  readonly targetCollectionId: number;
  readonly targetDbName: string;
  readonly targetCollectionName: string;
  readonly mappings: readonly SegmentMapping[];
  readonly createdAtMs: number;
  readonly startedAtMs?: number | undefined;
  readonly finishedAtMs?: number | undefined;
  readonly timeoutMs: number;
  /** Why the job failed ('' otherwise). */
  readonly reason: string;
  readonly totalSegments: number;
  /** progress = copied / total (100 when total is 0 and Completed), see `jobProgress`. */
  readonly copiedSegments: number;
  /** The terminal state the checker committed to; set while its side effect runs (see the header). */
  readonly outcome?: CopyJobOutcome | undefined;
  /** When `outcome` was recorded: another checker resumes it only after a check interval. */
  readonly outcomeAtMs?: number | undefined;
}

/** The target record with rewritten file lists (state 'Importing'). */
export interface CopiedSegment {
  readonly targetSegmentId: number;
  readonly record: SegmentRecord;
}

export interface CopyTask {
  readonly id: number;
  readonly jobId: number;
  readonly state: CopyTaskState;
  readonly mappings: readonly SegmentMapping[];
  readonly nodeId?: string | undefined;
  /** Dispatch epoch: incremented on every dispatch; answers about an older epoch are stale. */
  readonly version: number;
  /** How many times the task was dispatched (bounded: a task that keeps losing its worker fails). */
  readonly attempts: number;
  readonly reason: string;
  readonly results: readonly CopiedSegment[];
  readonly createdAtMs: number;
  readonly updatedAtMs: number;
}

// ---------------------------------------------------------------------------------------------------
// Transition tables (numbers refer to the diagrams above)

export const JOB_TRANSITIONS: Readonly<Record<CopyJobState, readonly CopyJobState[]>> = {
  Pending: ['Executing', 'Failed'], // (1), (3)
  Executing: ['Completed', 'Failed'], // (2), (4)
  Completed: [],
  Failed: [],
};

export const TASK_TRANSITIONS: Readonly<Record<CopyTaskState, readonly CopyTaskState[]>> = {
  Pending: ['InProgress', 'Failed'], // (1), (5)
  InProgress: ['Completed', 'Failed', 'Pending'], // (2), (3), (4)
  Completed: [],
  Failed: [],
};

export function isTerminalJobState(state: CopyJobState): boolean {
  return JOB_TRANSITIONS[state].length === 0;
}

export function isTerminalTaskState(state: CopyTaskState): boolean {
  return TASK_TRANSITIONS[state].length === 0;
}

/** Programmer error on an illegal transition (a same-state patch is not a transition: don't call this). */
export function assertJobTransition(from: CopyJobState, to: CopyJobState): void {
  if (!JOB_TRANSITIONS[from].includes(to)) throw new Error(`assertion failed: illegal copy job transition ${from} → ${to}`);
}

export function assertTaskTransition(from: CopyTaskState, to: CopyTaskState): void {
  if (!TASK_TRANSITIONS[from].includes(to)) throw new Error(`assertion failed: illegal copy task transition ${from} → ${to}`);
}

// ---------------------------------------------------------------------------------------------------
// What the loops depend on

export interface WorkerNodeInfo {
  readonly nodeId: string;
  readonly slots: number;
  readonly usedSlots: number;
}

/**
 * A worker's answer about one task. `version` is the dispatch epoch the answer is about (a remote
 * answer can arrive after the task was re-dispatched); the inspector ignores an answer whose version
 * differs from the task's current one. 'Unknown': the node does not know this version of the task.
 */
export type TaskPoll =
  | { readonly state: 'InProgress'; readonly version?: number | undefined }
  | { readonly state: 'Completed'; readonly results: readonly CopiedSegment[]; readonly version?: number | undefined }
  | { readonly state: 'Failed'; readonly reason: string; readonly version?: number | undefined }
  | { readonly state: 'Unknown' };

/** Coordinator → worker. In-process now (`InProcessWorkerPool`), remote later. */
export interface WorkerClient {
  nodes(): readonly WorkerNodeInfo[];
  /** May throw (node lost, node full): the task goes back to Pending. */
  dispatch(nodeId: string, task: CopyTask): Promise<void>;
  poll(nodeId: string, taskId: number, version: number): Promise<TaskPoll>;
  /**
   * Stops the task on that node and resolves once it no longer writes; a dispatch of that task arriving
   * later is refused (a cancelled task is terminal). Idempotent.
   */
  cancel(nodeId: string, taskId: number): Promise<void>;
}

/** Implemented by the restore service (it owns the catalog). Both calls must be idempotent. */
export interface JobFinalizer {
  /** Flips every target segment to Flushed (with `results`' file lists) in one meta transaction. */
  complete(job: CopyJob, results: readonly CopiedSegment[]): Promise<void>;
  /** Drops the target collection and deletes `copiedKeys` (every target key the job may have written). */
  rollback(job: CopyJob, copiedKeys: readonly string[]): Promise<void>;
}

export interface CopyOptions {
  /** Fallback tick period; loops are normally kicked by events. */
  readonly checkIntervalMs: number;
  readonly maxSegmentsPerTask: number;
  /** How long a Completed/Failed job (and its tasks) stays readable after it finished. */
  readonly taskRetentionMs: number;
  /** Default timeout for new jobs (each job persists its own `timeoutMs`). */
  readonly jobTimeoutMs: number;
}

export const DEFAULT_COPY_OPTIONS: CopyOptions = {
  checkIntervalMs: 2_000,
  maxSegmentsPerTask: 100,
  taskRetentionMs: 3 * 60 * 60 * 1000,
  jobTimeoutMs: 24 * 60 * 60 * 1000,
};

/** Shaped so that a pino `Logger` fits. */
export interface CopyLogger {
  info(fields: object, msg: string): void;
  warn(fields: object, msg: string): void;
  error(fields: object, msg: string): void;
}

export const silentLogger: CopyLogger = { info: () => {}, warn: () => {}, error: () => {} };
