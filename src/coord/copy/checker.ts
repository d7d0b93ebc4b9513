/**
 * CopyJobChecker: the background loop that drives restore jobs through their state machine (the
 * diagram, the numbered transitions and the deadlines are in `types.ts`). Each pass reads every job and
 * moves it by at most a few steps, deciding only from persisted state, so any number of passes by any
 * number of checker instances (or a new one after a crash) converge on the same result:
 *
 *   Pending     → past the deadline or unusable mappings: RollingBack (2); else register the target
 *                 segments, write the tasks, start (1)
 *   Executing   → a task Failed or past the deadline: RollingBack (4); all tasks Completed: Publishing (3);
 *                 else record progress
 *   Publishing  → publish, then Completed (5); refused for good: RollingBack (6)
 *   RollingBack → cancel live tasks, roll back, then Failed (7)
 *   (a user's cancel moves Pending/Executing to RollingBack from outside a pass: `cancel`)
 *   Completed,
 *   Failed      → delete the job and its tasks once its deadline (finishedAtMs + taskRetentionMs) passed
 *
 * Publishing and RollingBack run a side effect that cannot be one atomic step with the state change.
 * The checker that enters such a state holds its lease (`deadlineMs` = now + finalizeLeaseMs) and runs
 * the side effect at once; any other checker (or a restarted one) claims it again only after the
 * deadline, by a CAS that bumps `attempts` and moves the deadline, so a live attempt is not doubled in
 * the normal case and a crashed one is resumed. A failed attempt records its error in `lastError` (the
 * job's `reason`, e.g. "cancelled", stays what the job ends with) and
 * moves the deadline to one check interval ahead. Both side effects are idempotent.
 */

import type { Clock } from '../../common/clock.js';
import { quiverError, unreachable } from '../../common/errors.js';
import type { CopyJobStore } from './copy-job-store.js';
import { LoopRunner } from '../../common/loop.js';
import { mappingsProblem } from '../../storage/snapshot-format/segment-rewrite.js';
import {
  snapshotRefOf,
  CANCELLED_REASON,
  DEFAULT_COPY_OPTIONS,
  isTerminalTaskState,
  silentLogger,
  type CopyJob,
  type CopyJobState,
  type CopyLogger,
  type CopyOptions,
  type CopyTask,
  type RestoreTargetOps,
  type WorkerClient,
} from './types.js';

/** Steps one job may take in one pass (Pending → Executing → Publishing → Completed), a bound against loops. */
const STEPS_PER_JOB_MAX = 4;
/** Rounds of cancelling a rolling-back job's live tasks in one pass before leaving it to the next pass. */
const CANCEL_ROUNDS_MAX = 3;

/**
 * Thrown by `RestoreTargetOps.register` / `publish` when the target can never be made visible (e.g. it
 * is gone): the job rolls back at once, (2) or (6), instead of retrying until its deadline.
 */
export class TargetRefused extends Error {}

export interface CopyJobCheckerDeps {
  readonly store: CopyJobStore;
  readonly targets: RestoreTargetOps;
  /** Only used to cancel the running tasks of a job that rolls back. */
  readonly workers: Pick<WorkerClient, 'cancel'>;
  readonly clock: Clock;
  readonly options: CopyOptions;
  readonly log?: CopyLogger | undefined;
  /** Called after a job's tasks were created (wire it to the inspector's `kick`). */
  readonly onTasksCreated?: (() => void) | undefined;
  /** Called once a job reached Completed or Failed here (metrics). */
  readonly onJobFinished?: ((job: CopyJob) => void) | undefined;
}

/** Least time between two progress writes of one Executing job. */
export const PROGRESS_WRITE_MIN_MS = 250;

export class CopyJobChecker {
  readonly #store: CopyJobStore;
  readonly #targets: RestoreTargetOps;
  readonly #workers: Pick<WorkerClient, 'cancel'>;
  readonly #clock: Clock;
  readonly #options: CopyOptions;
  readonly #leaseMs: number;
  readonly #log: CopyLogger;
  readonly #onTasksCreated: () => void;
  readonly #onJobFinished: (job: CopyJob) => void;
  readonly #loop: LoopRunner;
  /** When this checker last wrote each Executing job's progress (bounded: pruned to the jobs of the last pass). */
  readonly #progressWrittenAtMs = new Map<number, number>();

  constructor(deps: CopyJobCheckerDeps) {
    const o = deps.options;
    if (!Number.isSafeInteger(o.maxSegmentsPerTask) || o.maxSegmentsPerTask <= 0) {
      throw new Error(`assertion failed: maxSegmentsPerTask must be a positive integer, got ${o.maxSegmentsPerTask}`);
    }
    if (!(o.taskRetentionMs >= 0)) throw new Error(`assertion failed: taskRetentionMs must be >= 0, got ${o.taskRetentionMs}`);
    this.#leaseMs = o.finalizeLeaseMs ?? DEFAULT_COPY_OPTIONS.finalizeLeaseMs!;
    if (!(this.#leaseMs > 0)) throw new Error(`assertion failed: finalizeLeaseMs must be > 0, got ${this.#leaseMs}`);
    this.#store = deps.store;
    this.#targets = deps.targets;
    this.#workers = deps.workers;
    this.#clock = deps.clock;
    this.#options = o;
    this.#log = deps.log ?? silentLogger;
    this.#onTasksCreated = deps.onTasksCreated ?? (() => {});
    this.#onJobFinished = deps.onJobFinished ?? (() => {});
    this.#loop = new LoopRunner('copy-job-checker', o.checkIntervalMs, () => this.#pass(), this.#log);
  }

  start(): void {
    this.#loop.start();
  }

  stop(): Promise<void> {
    return this.#loop.stop();
  }

  /** One pass over every job. A failure on one job is logged and retried next pass; it never stops the others. */
  tick(): Promise<void> {
    return this.#loop.tick();
  }

  /** Asks for a pass soon (job created, task done); resolves after that pass. */
  kick(): Promise<void> {
    return this.#loop.kick();
  }

  /**
   * A user's cancel (rules per state in types.ts): Pending/Executing → RollingBack "cancelled" with the
   * deadline at now, then a kick, so the rollback (stop tasks, delete copied files, remove the target,
   * release the pin) runs in the next pass. Resolves with the job as it is after the request.
   * RestoreJobNotFound for an unknown job; ParameterInvalid when the job can no longer be cancelled.
   */
  async cancel(jobId: number): Promise<CopyJob> {
    // Bounded: each lost CAS means the job moved by one step, and it has at most a few.
    for (let attempt = 0; attempt < STEPS_PER_JOB_MAX + 2; attempt++) {
      const job = await this.#store.getJob(jobId);
      if (job === undefined) throw quiverError('RestoreJobNotFound', `restore job not found[job_id=${jobId}]`);
      switch (job.state) {
        case 'Pending':
        case 'Executing': {
          const nowMs = this.#clock.nowMs();
          const ok = await this.#store.updateJobIfUnchanged(job, {
            state: 'RollingBack',
            stateSinceMs: nowMs,
            deadlineMs: nowMs,
            attempts: 0,
            reason: CANCELLED_REASON,
            lastError: undefined,
          });
          if (!ok) continue;
          this.#log.info({ jobId, from: job.state, to: 'RollingBack', reason: CANCELLED_REASON }, 'copy job cancel requested');
          void this.kick();
          return (await this.#store.getJob(jobId)) ?? job;
        }
        case 'RollingBack':
          return job;
        case 'Failed':
          if (job.reason === CANCELLED_REASON) return job;
          throw notCancellable(job, 'it has already failed');
        case 'Completed':
          throw notCancellable(job, 'it has completed; drop the restored collection instead');
        case 'Publishing':
          throw notCancellable(job, 'it is publishing the restored collection (past the point of no return); drop the collection once it completes');
        default:
          return unreachable(job.state);
      }
    }
    throw quiverError('ServiceNotReady', `restore job ${jobId} kept changing state while being cancelled; retry`);
  }

  async #pass(): Promise<void> {
    const jobs = await this.#store.listJobs();
    const executing = new Set(jobs.filter((j) => j.state === 'Executing').map((j) => j.id));
    for (const id of this.#progressWrittenAtMs.keys()) if (!executing.has(id)) this.#progressWrittenAtMs.delete(id);
    for (const job of jobs) {
      try {
        let cur: Step = { job, entered: false };
        for (let step = 0; step < STEPS_PER_JOB_MAX && cur !== undefined; step++) cur = await this.#step(cur.job, cur.entered);
      } catch (e) {
        this.#log.error({ jobId: job.id, state: job.state, err: e }, 'copy job step failed; retrying next pass');
      }
    }
  }

  /** Advances one job by one step; returns the job as re-read when it moved (so it can move again). */
  async #step(job: CopyJob, entered: boolean): Promise<Step> {
    switch (job.state) {
      case 'Pending':
        return this.#stepPending(job);
      case 'Executing':
        return this.#stepExecuting(job);
      case 'Publishing':
      case 'RollingBack':
        return this.#finalize(job, entered);
      case 'Completed':
      case 'Failed':
        await this.#retire(job);
        return undefined;
      default:
        return unreachable(job.state);
    }
  }

  async #stepPending(job: CopyJob): Promise<Step> {
    const nowMs = this.#clock.nowMs();
    if (nowMs > job.deadlineMs) return this.#enter(job, 'RollingBack', `timed out: not started within ${job.timeoutMs} ms`);
    const problem = mappingsProblem(job.mappings);
    if (problem !== undefined) return this.#enter(job, 'RollingBack', `invalid segment mappings: ${problem}`);

    const max = this.#options.maxSegmentsPerTask;
    const taskCount = Math.ceil(job.mappings.length / max);
    let cur = job;
    if (cur.taskIdBase === undefined && taskCount > 0) {
      const base = await this.#store.allocId(taskCount);
      if (!(await this.#store.updateJobIfUnchanged(cur, { taskIdBase: base }))) return undefined;
      const reread = await this.#store.getJob(job.id);
      if (reread === undefined || reread.state !== 'Pending') return undefined;
      cur = reread;
    }
    // Importing records first: GC must know every target segment before a copy writes its files.
    try {
      await this.#targets.register(cur);
    } catch (e) {
      if (e instanceof TargetRefused) return this.#enter(cur, 'RollingBack', `target refused: ${e.message}`);
      throw e;
    }
    const tasks: CopyTask[] = [];
    for (let i = 0; i < taskCount; i++) {
      tasks.push({
        id: cur.taskIdBase! + i,
        jobId: cur.id,
        state: 'Pending',
        snapshot: snapshotRefOf(cur),
        targetCollectionId: cur.targetCollectionId,
        mappings: cur.mappings.slice(i * max, (i + 1) * max),
        version: 0,
        attempts: 0,
        reason: '',
        results: [],
        createdAtMs: nowMs,
        updatedAtMs: nowMs,
      });
    }
    if (!(await this.#store.putTasksWhilePending(cur.id, tasks))) return undefined;
    const ok = await this.#store.updateJobIfUnchanged(cur, {
      state: 'Executing',
      startedAtMs: nowMs,
      stateSinceMs: nowMs,
      deadlineMs: nowMs + cur.timeoutMs,
      reason: '',
    });
    if (!ok) return undefined;
    this.#log.info({ jobId: cur.id, tasks: tasks.length, segments: cur.mappings.length }, 'copy job executing');
    if (tasks.length > 0) this.#onTasksCreated();
    return this.#reread(cur.id, false);
  }

  async #stepExecuting(job: CopyJob): Promise<Step> {
    const tasks = await this.#store.listTasks(job.id);
    const failed = tasks.find((t) => t.state === 'Failed');
    if (failed !== undefined) return this.#enter(job, 'RollingBack', `task ${failed.id} failed: ${failed.reason}`);
    // Checked before the timeout: work that is all done is published, not thrown away.
    if (tasks.every((t) => t.state === 'Completed')) {
      const problem = coverageProblem(job, tasks);
      return problem === undefined
        ? this.#enter(job, 'Publishing', 'every segment copied', { copiedSegments: job.totalSegments })
        : this.#enter(job, 'RollingBack', `tasks do not cover the job: ${problem}`);
    }
    const nowMs = this.#clock.nowMs();
    if (nowMs > job.deadlineMs) {
      const elapsedMs = nowMs - (job.startedAtMs ?? job.createdAtMs);
      return this.#enter(job, 'RollingBack', `timed out: running for ${elapsedMs} ms, over the timeout of ${job.timeoutMs} ms`);
    }
    // Progress is written at most every PROGRESS_WRITE_MIN_MS per job: on every finished task it was one
    // more metadata write competing with the inspector's for each task of a restore. A pass skipped here
    // is followed by another (the next task done, or the fallback tick), so progress lags by that much at most.
    const copied = tasks.reduce((n, t) => n + (t.state === 'Completed' ? t.results.length : 0), 0);
    const lastMs = this.#progressWrittenAtMs.get(job.id);
    if (copied !== job.copiedSegments && (lastMs === undefined || nowMs - lastMs >= PROGRESS_WRITE_MIN_MS)) {
      if (await this.#store.updateJobInState(job.id, 'Executing', { copiedSegments: Math.min(copied, job.totalSegments) })) {
        this.#progressWrittenAtMs.set(job.id, nowMs);
      }
    }
    return undefined;
  }

  /** A CAS transition into `to`; entering Publishing/RollingBack takes the side effect's lease. */
  async #enter(job: CopyJob, to: CopyJobState, reason: string, extra: Partial<CopyJob> = {}): Promise<Step> {
    const nowMs = this.#clock.nowMs();
    const finalizing = to === 'Publishing' || to === 'RollingBack';
    const ok = await this.#store.updateJobInState(job.id, job.state, {
      ...extra,
      state: to,
      stateSinceMs: nowMs,
      deadlineMs: finalizing ? nowMs + this.#leaseMs : nowMs + this.#options.taskRetentionMs,
      attempts: finalizing ? 1 : 0,
      reason,
      lastError: undefined,
    });
    if (!ok) return undefined;
    this.#log.info({ jobId: job.id, from: job.state, to, reason }, 'copy job transition');
    return this.#reread(job.id, true);
  }

  /** Publishing / RollingBack: run the side effect (claiming the lease unless we just entered), then (5)/(7). */
  async #finalize(job: CopyJob, entered: boolean): Promise<Step> {
    let cur = job;
    const nowMs = this.#clock.nowMs();
    if (!entered) {
      if (nowMs < job.deadlineMs) return undefined;
      if (!(await this.#store.updateJobIfUnchanged(job, { attempts: job.attempts + 1, deadlineMs: nowMs + this.#leaseMs }))) return undefined;
      const reread = await this.#store.getJob(job.id);
      if (reread === undefined || reread.state !== job.state) return undefined;
      cur = reread;
      // attempts 0: a cancel request left the rollback for the first pass to claim, nothing was resumed.
      if (job.attempts > 0)
        this.#log.warn({ jobId: job.id, state: job.state, attempt: cur.attempts, reason: job.reason }, 'copy job side effect resumed after its deadline');
    }
    try {
      if (cur.state === 'Publishing') {
        await this.#targets.publish(cur);
        return await this.#finish(cur, 'Completed', '');
      }
      if (!(await this.#cancelTasks(cur))) {
        // Tasks still live: release the lease so the next pass tries again.
        await this.#store.updateJobIfUnchanged(cur, { deadlineMs: this.#clock.nowMs() });
        return undefined;
      }
      await this.#targets.rollback(cur);
      return await this.#finish(cur, 'Failed', cur.reason);
    } catch (e) {
      const msg = e instanceof Error ? e.message : String(e);
      if (cur.state === 'Publishing' && e instanceof TargetRefused) {
        return this.#enterFromLease(cur, `publish refused: ${msg}`);
      }
      const retryAtMs = this.#clock.nowMs() + this.#options.checkIntervalMs;
      await this.#store.updateJobIfUnchanged(cur, {
        deadlineMs: retryAtMs,
        lastError: `${cur.state === 'Publishing' ? 'publish' : 'rollback'} attempt ${cur.attempts} failed: ${msg}`,
      });
      this.#log.error({ jobId: cur.id, state: cur.state, attempt: cur.attempts, err: e }, 'copy job side effect failed; retried after its deadline');
      return undefined;
    }
  }

  async #enterFromLease(cur: CopyJob, reason: string): Promise<Step> {
    const nowMs = this.#clock.nowMs();
    const ok = await this.#store.updateJobIfUnchanged(cur, {
      state: 'RollingBack',
      stateSinceMs: nowMs,
      deadlineMs: nowMs + this.#leaseMs,
      attempts: 1,
      reason,
      lastError: undefined,
    });
    return ok ? this.#reread(cur.id, true) : undefined;
  }

  async #finish(cur: CopyJob, to: 'Completed' | 'Failed', reason: string): Promise<Step> {
    const nowMs = this.#clock.nowMs();
    const ok = await this.#store.updateJobIfUnchanged(cur, {
      state: to,
      stateSinceMs: nowMs,
      finishedAtMs: nowMs,
      deadlineMs: nowMs + this.#options.taskRetentionMs,
      attempts: 0,
      reason,
      lastError: undefined,
      ...(to === 'Completed' ? { copiedSegments: cur.totalSegments } : {}),
    });
    if (!ok) return undefined;
    const done = await this.#store.getJob(cur.id);
    if (done !== undefined) {
      if (to === 'Completed') this.#log.info({ jobId: cur.id, segments: cur.totalSegments }, 'copy job completed');
      else this.#log.warn({ jobId: cur.id, reason }, 'copy job failed and rolled back');
      this.#onJobFinished(done);
    }
    return undefined;
  }

  /**
   * Fail-fast: every live task of a job that rolls back becomes Failed and its worker is told to stop,
   * before rollback deletes files (a task still copying would re-create them). True once every task is terminal.
   */
  async #cancelTasks(job: CopyJob): Promise<boolean> {
    for (let round = 0; round < CANCEL_ROUNDS_MAX; round++) {
      const live = (await this.#store.listTasks(job.id)).filter((t) => !isTerminalTaskState(t.state));
      if (live.length === 0) return true;
      for (const t of live) {
        const ok = await this.#store.updateTaskInState(job.id, t.id, t.state, t.version, {
          state: 'Failed',
          reason: `cancelled: job ${job.id} is rolling back: ${job.reason}`,
          updatedAtMs: this.#clock.nowMs(),
        });
        if (ok && t.state === 'InProgress' && t.nodeId !== undefined) {
          try {
            await this.#workers.cancel(t.nodeId, t.id);
          } catch (e) {
            // A node we cannot reach is a lost node: it holds no slot we track and its writes, if any,
            // are what GC's orphan sweep is for.
            this.#log.warn({ jobId: job.id, taskId: t.id, nodeId: t.nodeId, err: e }, 'cancel of copy task failed');
          }
        }
      }
    }
    return false;
  }

  async #reread(id: number, entered: boolean): Promise<Step> {
    const job = await this.#store.getJob(id);
    return job === undefined ? undefined : { job, entered };
  }

  async #retire(job: CopyJob): Promise<void> {
    if (this.#clock.nowMs() > job.deadlineMs) {
      await this.#store.deleteJob(job.id);
      this.#log.info({ jobId: job.id, state: job.state }, 'copy job retired');
    }
  }
}

function notCancellable(job: CopyJob, why: string): Error {
  return quiverError('ParameterInvalid', `restore job ${job.id} cannot be cancelled: ${why} (state ${job.state})`);
}

/** `entered`: this checker made the transition into the job's state (and holds its lease). */
type Step = { readonly job: CopyJob; readonly entered: boolean } | undefined;

/** Why the Completed tasks do not report every mapping of the job exactly once, or undefined. */
function coverageProblem(job: CopyJob, tasks: readonly CopyTask[]): string | undefined {
  const reported = new Set<number>();
  for (const t of tasks) {
    for (const r of t.results) {
      if (reported.has(r.targetSegmentId)) return `target segment ${r.targetSegmentId} reported by more than one task`;
      reported.add(r.targetSegmentId);
    }
  }
  for (const m of job.mappings) if (!reported.has(m.targetSegmentId)) return `no result for target segment ${m.targetSegmentId}`;
  if (reported.size !== job.mappings.length) return `${reported.size - job.mappings.length} results name segments outside the job`;
  return undefined;
}
