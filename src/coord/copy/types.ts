/**
 * Restore's copy-segment job: the persisted shapes, their state machines, and the small interfaces the
 * checker and the inspector depend on (DESIGN.md section 4, "Restore").
 *
 * Records are small and explicit (they must fit etcd's 1.5 MiB request limit at any restore size): a job
 * holds the snapshot (collection id, snapshot id, name) once and one id mapping per segment (source
 * segment id → target segment id, target partition id), never a segment record or a file list. Whoever
 * needs file lists (the copy executor on a worker, publish and rollback on the coordinator) reads them
 * from the snapshot's manifests (`SourceSegmentReader`) and derives every target key from the mapping
 * (`segment-rewrite.ts`): same mapping, same keys, on any process, before or after a crash.
 *
 * CopyJob state machine (the checker is its only writer; the restore start writes the Pending job):
 *
 *     Pending ──(1)──▶ Executing ──(3)──▶ Publishing ──(5)──▶ Completed
 *        │                 │                  │
 *       (2)               (4)                (6)
 *        │                 ▼                  │
 *        └──────────▶ RollingBack ◀───────────┘
 *                          │
 *                         (7)
 *                          ▼
 *                        Failed
 *
 *   (1) Pending → Executing      the target segments were registered as Importing (bounded batches, so
 *                                GC keeps every file a copy writes) and the mappings were split into
 *                                tasks of at most `maxSegmentsPerTask`; the tasks are written in the same
 *                                txn as the state change, so a crash never leaves half of them.
 *   (2) Pending → RollingBack    a mapping is unusable (duplicate target), the target is refused for
 *                                good (gone), or the Pending deadline (createdAtMs + timeoutMs) passed.
 *   (3) Executing → Publishing   every task Completed and the results cover every mapping.
 *   (4) Executing → RollingBack  a task Failed (fail-fast), or the Executing deadline
 *                                (startedAtMs + timeoutMs) passed with some task unfinished.
 *   (5) Publishing → Completed   `targets.publish` returned: every target segment Flushed with its file
 *                                list and the collection flipped Restoring → Created (visible); pin released.
 *   (6) Publishing → RollingBack publish refused for good (a non-retriable error before the collection
 *                                became visible, e.g. the target collection is gone).
 *   (7) RollingBack → Failed     live tasks cancelled, `targets.rollback` returned: copied files deleted,
 *                                target records removed (name free again), pin released.
 *   Cancel (`CopyJobChecker.cancel`: `quiver snapshot cancel`, or dropping the Restoring target) is
 *   (2) or (4) with reason "cancelled", written by a CAS from the state the canceller read, with the
 *   deadline set to now so the next pass (kicked at once) claims the rollback without waiting for a lease.
 *   A CAS lost to the checker's own step is re-read and retried. The rule per state:
 *     Pending, Executing   → RollingBack "cancelled" (running tasks are stopped by (7); a late report
 *                            from a worker loses its CAS on the task's (state, version) and is ignored).
 *     RollingBack          → nothing to do: already undoing (a second cancel is a no-op success).
 *     Publishing           → refused: publish is past the point of no return (it may already have made
 *                            the collection visible, and a visible collection is dropped, not cancelled).
 *     Completed, Failed    → refused (ParameterInvalid naming the state), except a Failed job whose
 *                            reason is "cancelled": cancelling it again succeeds (idempotent).
 *   Completed and Failed are terminal; the job and its tasks are deleted `taskRetentionMs` after
 *   `finishedAtMs` (deletion is not a transition).
 *
 *   Deadlines: every state has one, persisted as `deadlineMs`, and `reason` says why the job is where it
 *   is. Pending/Executing: the job timeout (→ RollingBack). Publishing/RollingBack: a lease on the side
 *   effect; the checker that enters the state (or claims it by a CAS that moves the deadline) runs the
 *   side effect, and any checker (a restarted one too) retries it once the deadline passed, so a job
 *   stuck there after a crash or an error is resumed, never forgotten. Both side effects are idempotent.
 *   Completed/Failed: the retention (→ deleted).
 *
 *   Public RPC states: Pending → RestoreSnapshotPending; Executing and Publishing →
 *   RestoreSnapshotExecuting (copied, not yet visible); RollingBack → RestoreSnapshotExecuting with the
 *   failure in `reason` (the target name is still reserved and the pin still held until (7); a client
 *   that waits for Failed can reuse the name at once); Completed/Failed → the same names.
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
 *                              `results` (per segment: rows and files copied, no file list) stored.
 *   (3) InProgress → Failed    the worker reported a failure (after its own bounded retries), the task
 *                              lost its worker too many times, or its job is rolling back (cancelled).
 *   (4) InProgress → Pending   the worker is lost (node gone, or the node does not know this version of
 *                              the task) or the dispatch call failed: `nodeId` cleared, re-queued.
 *   (5) Pending → Failed       its job is rolling back before the task was dispatched (cancelled).
 *   Every task write is a CAS on (state, version), so an answer about an older dispatch can never
 *   overwrite the state of a newer one.
 */

export type CopyJobState = 'Pending' | 'Executing' | 'Publishing' | 'Completed' | 'RollingBack' | 'Failed';
export type CopyTaskState = 'Pending' | 'InProgress' | 'Completed' | 'Failed';

/** The reason of a job cancelled by a user (RollingBack, then Failed). */
export const CANCELLED_REASON = 'cancelled';

export const COPY_JOB_STATES: readonly CopyJobState[] = ['Pending', 'Executing', 'Publishing', 'Completed', 'RollingBack', 'Failed'];

export type { ResolvedMapping, SegmentMapping, SnapshotRef, SourceSegmentReader } from '../../storage/snapshot-format/copy-types.js';
import type { SegmentMapping, SnapshotRef } from '../../storage/snapshot-format/copy-types.js';

export interface CopyJob {
  readonly id: number;
  readonly state: CopyJobState;
  readonly snapshotId: number;
  readonly snapshotName: string;
  readonly sourceCollectionId: number;
  /** Where the source snapshot's files lie in the store (`SnapshotRef.sourcePrefix`); absent for a local snapshot. */
  readonly sourcePrefix?: string | undefined;
  readonly sourceDbName: string;
  readonly sourceCollectionName: string;
  readonly targetCollectionId: number;
  readonly targetDbName: string;
  readonly targetCollectionName: string;
  /** The pin on the source snapshot this job holds (written in the job's own start txn). */
  readonly pinId: number;
  readonly mappings: readonly SegmentMapping[];
  /** Tasks get ids taskIdBase + i (allocated once, in Pending), so re-writing them after a crash is idempotent. */
  readonly taskIdBase?: number | undefined;
  readonly createdAtMs: number;
  readonly startedAtMs?: number | undefined;
  readonly finishedAtMs?: number | undefined;
  readonly timeoutMs: number;
  /** When the job entered `state`. */
  readonly stateSinceMs: number;
  /** What happens at the deadline depends on the state (see the header). */
  readonly deadlineMs: number;
  /** Side-effect attempts in the current state (Publishing / RollingBack); 0 elsewhere. */
  readonly attempts: number;
  /** Why the job is in its state (the failure for RollingBack/Failed, e.g. "cancelled"). */
  readonly reason: string;
  /** The error of the last failed publish/rollback attempt in the current state (retried); cleared on a transition. */
  readonly lastError?: string | undefined;
  readonly totalSegments: number;
  /** progress = copied / total (100 when Completed), see `jobProgress`. */
  readonly copiedSegments: number;
}

/** The snapshot a job copies from, as its tasks and source reads name it (the prefix only when set, so local jobs' records stay as they were). */
export function snapshotRefOf(job: Pick<CopyJob, 'sourceCollectionId' | 'snapshotId' | 'sourcePrefix'>): SnapshotRef {
  const ref = { collectionId: job.sourceCollectionId, snapshotId: job.snapshotId };
  return job.sourcePrefix === undefined ? ref : { ...ref, sourcePrefix: job.sourcePrefix };
}

/** What a worker reports per target segment: small and bounded (no file list). */
export interface CopiedSegment {
  readonly targetSegmentId: number;
  readonly numRows: number;
  readonly filesCopied: number;
}

export interface CopyTask {
  readonly id: number;
  readonly jobId: number;
  readonly state: CopyTaskState;
  /** Copied from the job so that a worker needs nothing but the task. */
  readonly snapshot: SnapshotRef;
  readonly targetCollectionId: number;
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
  Pending: ['Executing', 'RollingBack'], // (1), (2) (also by cancel)
  Executing: ['Publishing', 'RollingBack'], // (3), (4) (also by cancel)
  Publishing: ['Completed', 'RollingBack'], // (5), (6)
  RollingBack: ['Failed'], // (7)
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

/** The public (Milvus RPC) name of a job state; see the header for why RollingBack is still "Executing". */
export function publicJobState(
  state: CopyJobState,
): 'RestoreSnapshotPending' | 'RestoreSnapshotExecuting' | 'RestoreSnapshotCompleted' | 'RestoreSnapshotFailed' {
  switch (state) {
    case 'Pending':
      return 'RestoreSnapshotPending';
    case 'Executing':
    case 'Publishing':
    case 'RollingBack':
      return 'RestoreSnapshotExecuting';
    case 'Completed':
      return 'RestoreSnapshotCompleted';
    case 'Failed':
      return 'RestoreSnapshotFailed';
    default: {
      const never: never = state;
      throw new Error(`assertion failed: unknown job state ${String(never)}`);
    }
  }
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

/**
 * The catalog side of a restore, implemented over the catalog by `RestoreTargets` (coord/snapshot).
 * Every call is idempotent (the checker may repeat it after a crash or a lost lease) and bounded: it
 * writes in transactions each well under etcd's request limit.
 */
export interface RestoreTargetOps {
  /** Before (1): registers every target segment as Importing in the Restoring target collection. */
  register(job: CopyJob): Promise<void>;
  /** (5): target segments Flushed with their file lists, then the collection visible; releases the pin. */
  publish(job: CopyJob): Promise<void>;
  /** (7): deletes every target key the job may have written, then the target records; releases the pin. */
  rollback(job: CopyJob): Promise<void>;
}

export interface CopyOptions {
  /** Fallback tick period; loops are normally kicked by events. */
  readonly checkIntervalMs: number;
  readonly maxSegmentsPerTask: number;
  /** How long a Completed/Failed job (and its tasks) stays readable after it finished. */
  readonly taskRetentionMs: number;
  /** Default timeout for new jobs (each job persists its own `timeoutMs`). */
  readonly jobTimeoutMs: number;
  /** Lease of one publish or rollback attempt: after it another checker retries (default 5 min). */
  readonly finalizeLeaseMs?: number | undefined;
}

export const DEFAULT_COPY_OPTIONS: CopyOptions = {
  checkIntervalMs: 2_000,
  maxSegmentsPerTask: 100,
  taskRetentionMs: 3 * 60 * 60 * 1000,
  jobTimeoutMs: 24 * 60 * 60 * 1000,
  finalizeLeaseMs: 5 * 60 * 1000,
};

/** Mappings per job at most: the job record (compact tuples, ids ≤ 16 digits) stays under 1.5 MiB. */
export const SEGMENTS_PER_JOB_MAX = 20_000;

/** Shaped so that a pino `Logger` fits. */
export interface CopyLogger {
  info(fields: object, msg: string): void;
  warn(fields: object, msg: string): void;
  error(fields: object, msg: string): void;
}

export const silentLogger: CopyLogger = { info: () => {}, warn: () => {}, error: () => {} };
