/**
 * CopyJobChecker: the background loop that drives restore jobs through their state machine (the
 * diagram and the numbered transitions are in `types.ts`). Each pass reads every job and moves it by
 * at most a few steps, deciding only from persisted state, so any number of passes by any number of
 * checker instances (or a new one after a crash) converge on the same result:
 *
 *   Pending    → validate the mappings, split them into tasks, start (1) — or decide Failed (3)
 *   Executing  → a task Failed: decide Failed (4); else all tasks Completed: decide Completed (2);
 *                else timed out: decide Failed (4); else record progress
 *   decided    → run the side effect (complete, or cancel + rollback), then flip the state
 *   Completed,
 *   Failed     → delete the job and its tasks once `taskRetentionMs` has passed since `finishedAtMs`
 *
 * A decision is a CAS that sets `outcome`, so two checkers can never finalize one job two ways. The
 * checker that won runs the side effect at once; another checker (or a restarted one) resumes a recorded
 * outcome only when it is at least one check interval old, so a live winner is not doubled in the normal
 * case. Both side effects are idempotent, so a resumption after a crash is safe.
 */

import type { Clock } from '../../common/clock.js';
import { unreachable } from '../../common/errors.js';
import type { CopyJobStore } from './copy-job-store.js';
import { LoopRunner } from '../../common/loop.js';
import { mappingsProblem, targetKeysOf } from './segment-rewrite.js';
import {
  isTerminalTaskState,
  silentLogger,
  type CopiedSegment,
  type CopyJob,
  type CopyJobOutcome,
  type CopyLogger,
  type CopyOptions,
  type CopyTask,
  type JobFinalizer,
  type WorkerClient,
} from './types.js';

/** Steps one job may take in one pass (Pending → Executing → decided → terminal), a bound against loops. */
const STEPS_PER_JOB_MAX = 4;
/** Rounds of cancelling a failed job's live tasks in one pass before leaving it to the next pass. */
const CANCEL_ROUNDS_MAX = 3;

export interface CopyJobCheckerDeps {
  readonly store: CopyJobStore;
  readonly finalizer: JobFinalizer;
  /** Only used to cancel the running tasks of a failed job. */
  readonly workers: Pick<WorkerClient, 'cancel'>;
  readonly clock: Clock;
  readonly options: CopyOptions;
  readonly log?: CopyLogger | undefined;
  /** Called after a job's tasks were created (wire it to the inspector's `kick`). */
  readonly onTasksCreated?: (() => void) | undefined;
}

export class CopyJobChecker {
  readonly #store: CopyJobStore;
  readonly #finalizer: JobFinalizer;
  readonly #workers: Pick<WorkerClient, 'cancel'>;
  readonly #clock: Clock;
  readonly #options: CopyOptions;
  readonly #log: CopyLogger;
  readonly #onTasksCreated: () => void;
  readonly #loop: LoopRunner;

  constructor(deps: CopyJobCheckerDeps) {
    const o = deps.options;
    if (!Number.isSafeInteger(o.maxSegmentsPerTask) || o.maxSegmentsPerTask <= 0) {
      throw new Error(`assertion failed: maxSegmentsPerTask must be a positive integer, got ${o.maxSegmentsPerTask}`);
    }
    if (!(o.taskRetentionMs >= 0)) throw new Error(`assertion failed: taskRetentionMs must be >= 0, got ${o.taskRetentionMs}`);
    this.#store = deps.store;
    this.#finalizer = deps.finalizer;
    this.#workers = deps.workers;
    this.#clock = deps.clock;
    this.#options = o;
    this.#log = deps.log ?? silentLogger;
    this.#onTasksCreated = deps.onTasksCreated ?? (() => {});
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

  async #pass(): Promise<void> {
    for (const job of await this.#store.listJobs()) {
      try {
        let cur: CopyJob | undefined = job;
        for (let step = 0; step < STEPS_PER_JOB_MAX && cur !== undefined; step++) cur = await this.#step(cur);
      } catch (e) {
        this.#log.error({ jobId: job.id, state: job.state, err: e }, 'copy job step failed; retrying next pass');
      }
    }
  }

  /** Advances one job by one step; returns the job as re-read when it moved (so it can move again). */
  async #step(job: CopyJob): Promise<CopyJob | undefined> {
    switch (job.state) {
      case 'Pending':
        return job.outcome !== undefined ? this.#finish(job, false) : this.#stepPending(job);
      case 'Executing':
        return job.outcome !== undefined ? this.#finish(job, false) : this.#stepExecuting(job);
      case 'Completed':
      case 'Failed':
        await this.#retire(job);
        return undefined;
      default:
        return unreachable(job.state);
    }
  }

  async #stepPending(job: CopyJob): Promise<CopyJob | undefined> {
    const nowMs = this.#clock.nowMs();
    if (nowMs - job.createdAtMs > job.timeoutMs) {
      return this.#decide(job, 'Failed', `timed out: not started within ${job.timeoutMs} ms`);
    }
    const problem = mappingsProblem(job.mappings);
    if (problem !== undefined) return this.#decide(job, 'Failed', `invalid segment mappings: ${problem}`);

    const max = this.#options.maxSegmentsPerTask;
    const tasks: CopyTask[] = [];
    for (let i = 0; i < job.mappings.length; i += max) {
      tasks.push({
        id: await this.#store.allocId(),
        jobId: job.id,
        state: 'Pending',
        mappings: job.mappings.slice(i, i + max),
        version: 0,
        attempts: 0,
        reason: '',
        results: [],
        createdAtMs: nowMs,
        updatedAtMs: nowMs,
      });
    }
    if (!(await this.#store.startJob(job.id, { state: 'Executing', startedAtMs: nowMs }, tasks))) return undefined;
    this.#log.info({ jobId: job.id, tasks: tasks.length, segments: job.mappings.length }, 'copy job executing');
    if (tasks.length > 0) this.#onTasksCreated();
    return this.#store.getJob(job.id);
  }

  async #stepExecuting(job: CopyJob): Promise<CopyJob | undefined> {
    const tasks = await this.#store.listTasks(job.id);
    const failed = tasks.find((t) => t.state === 'Failed');
    if (failed !== undefined) return this.#decide(job, 'Failed', `task ${failed.id} failed: ${failed.reason}`);
    // Checked before the timeout: work that is all done is published, not thrown away.
    if (tasks.every((t) => t.state === 'Completed')) {
      const r = collectResults(job, tasks);
      return typeof r === 'string'
        ? this.#decide(job, 'Failed', `tasks do not cover the job: ${r}`)
        : this.#decide(job, 'Completed', '');
    }
    const elapsedMs = this.#clock.nowMs() - (job.startedAtMs ?? job.createdAtMs);
    if (elapsedMs > job.timeoutMs) {
      return this.#decide(job, 'Failed', `timed out: running for ${elapsedMs} ms, over the timeout of ${job.timeoutMs} ms`);
    }
    const copied = tasks.reduce((n, t) => n + (t.state === 'Completed' ? t.results.length : 0), 0);
    if (copied !== job.copiedSegments) {
      await this.#store.updateJobInState(job.id, 'Executing', { copiedSegments: Math.min(copied, job.totalSegments) });
    }
    return undefined;
  }

  /** Records the outcome (CAS, same state); only the winner goes on to run its side effect. */
  async #decide(job: CopyJob, outcome: CopyJobOutcome, reason: string): Promise<CopyJob | undefined> {
    const won = await this.#store.updateJobInState(job.id, job.state, { outcome, outcomeAtMs: this.#clock.nowMs(), reason });
    if (!won) return undefined;
    this.#log.info({ jobId: job.id, outcome, reason }, 'copy job decided');
    const decided = await this.#store.getJob(job.id);
    return decided === undefined ? undefined : this.#finish(decided, true);
  }

  /** Runs the recorded outcome's side effect, then flips the state. */
  async #finish(job: CopyJob, decidedHere: boolean): Promise<CopyJob | undefined> {
    const outcome = job.outcome;
    if (outcome === undefined) return undefined;
    if (!decidedHere && this.#clock.nowMs() - (job.outcomeAtMs ?? 0) < this.#options.checkIntervalMs) return undefined;
    const nowMs = this.#clock.nowMs();
    const terminal = { outcome: undefined, outcomeAtMs: undefined, finishedAtMs: nowMs } as const;
    switch (outcome) {
      case 'Completed': {
        const r = collectResults(job, await this.#store.listTasks(job.id));
        // Tasks are terminal and immutable once the outcome is recorded, so this held when deciding.
        if (typeof r === 'string') throw new Error(`assertion failed: copy job ${job.id} decided Completed but ${r}`);
        await this.#finalizer.complete(job, r);
        const ok = await this.#store.updateJobInState(job.id, job.state, { ...terminal, state: 'Completed', copiedSegments: job.totalSegments });
        if (ok) this.#log.info({ jobId: job.id, segments: job.totalSegments }, 'copy job completed');
        break;
      }
      case 'Failed': {
        if (!(await this.#cancelTasks(job))) return undefined;
        await this.#finalizer.rollback(job, targetKeysOf(job));
        const ok = await this.#store.updateJobInState(job.id, job.state, { ...terminal, state: 'Failed' });
        if (ok) this.#log.warn({ jobId: job.id, reason: job.reason }, 'copy job failed and rolled back');
        break;
      }
      default:
        return unreachable(outcome);
    }
    return this.#store.getJob(job.id);
  }

  /**
   * Fail-fast: every live task of a failed job becomes Failed and its worker is told to stop, before
   * rollback deletes files (a task still copying would re-create them). True once every task is terminal.
   */
  async #cancelTasks(job: CopyJob): Promise<boolean> {
    for (let round = 0; round < CANCEL_ROUNDS_MAX; round++) {
      const live = (await this.#store.listTasks(job.id)).filter((t) => !isTerminalTaskState(t.state));
      if (live.length === 0) return true;
      for (const t of live) {
        const ok = await this.#store.updateTaskInState(job.id, t.id, t.state, t.version, {
          state: 'Failed',
          reason: `cancelled: job ${job.id} failed: ${job.reason}`,
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

  async #retire(job: CopyJob): Promise<void> {
    const finishedAtMs = job.finishedAtMs ?? job.createdAtMs;
    if (this.#clock.nowMs() - finishedAtMs > this.#options.taskRetentionMs) {
      await this.#store.deleteJob(job.id);
      this.#log.info({ jobId: job.id, state: job.state }, 'copy job retired');
    }
  }
}

/** The results of every mapping in job order, or why the tasks do not cover the job exactly. */
function collectResults(job: CopyJob, tasks: readonly CopyTask[]): CopiedSegment[] | string {
  const bySegment = new Map<number, CopiedSegment>();
  for (const t of tasks) {
    for (const r of t.results) {
      if (bySegment.has(r.targetSegmentId)) return `target segment ${r.targetSegmentId} reported by more than one task`;
      bySegment.set(r.targetSegmentId, r);
    }
  }
  const out: CopiedSegment[] = [];
  for (const m of job.mappings) {
    const r = bySegment.get(m.targetSegmentId);
    if (r === undefined) return `no result for target segment ${m.targetSegmentId}`;
    out.push(r);
  }
  if (out.length !== bySegment.size) return `${bySegment.size - out.length} results name segments outside the job`;
  return out;
}
