/**
 * TaskInspector: the background loop that runs copy tasks on worker nodes (task state machine in
 * `types.ts`). Each pass:
 *
 *   1. polls every InProgress task on its node, for the task's current dispatch version:
 *      Completed → store the results (2); Failed → store the worker's reason (3);
 *      node gone, or the node does not know that version → re-queue (4), or fail it (3) once it has
 *      been dispatched `maxDispatchAttempts` times (a task that kills its workers must not loop forever);
 *   2. dispatches Pending tasks of Executing jobs, oldest first, to the nodes with the most free slots
 *      (one slot per task; free = slots minus the larger of the node's own count and the InProgress
 *      tasks the store places on it) (1). The dispatch is persisted (nodeId, version + 1) before the
 *      call, so a crash in between leaves an InProgress task its node does not know: step 1 re-queues it.
 *      A node that refuses for want of a slot gets the task re-queued without using up a dispatch.
 *
 * The writes of a pass are batched: what the polls of step 1 decided and the placements of step 2 are one
 * metadata txn (`CopyJobStore.updateTasksInState`), and the CreateTask calls then go out at once.
 *
 * Every write is a CAS on (state, version): an answer about an older dispatch, or a task the checker
 * cancelled meanwhile, loses the CAS and is dropped. Everything is derived from the store and the
 * workers' answers, so a new inspector after a crash simply carries on.
 */

import type { Clock } from '../../common/clock.js';
import { unreachable } from '../../common/errors.js';
import type { CopyJobStore, CopyTaskPatch, TaskUpdate } from './copy-job-store.js';
import { LoopRunner } from '../../common/loop.js';
import {
  DEFAULT_COPY_OPTIONS,
  silentLogger,
  type CopiedSegment,
  type CopyJob,
  type CopyLogger,
  type CopyTask,
  type WorkerClient,
  type WorkerNodeInfo,
} from './types.js';

export interface TaskInspectorDeps {
  readonly store: CopyJobStore;
  readonly workers: WorkerClient;
  readonly clock: Clock;
  /** Called when a task reached Completed or Failed in a pass (wire it to the checker's `kick`). */
  readonly onTaskDone?: (() => void) | undefined;
  readonly log?: CopyLogger | undefined;
  /** Fallback period of `start()` (default `DEFAULT_COPY_OPTIONS.checkIntervalMs`). */
  readonly intervalMs?: number | undefined;
  /** A task re-queued this many times fails instead (default 10). */
  readonly maxDispatchAttempts?: number | undefined;
}

export const DEFAULT_MAX_DISPATCH_ATTEMPTS = 10;

/** Task checks of one pass run at once (bounded: each holds a poll RPC and a metadata read). */
const CHECKS_IN_FLIGHT_MAX = 16;

export class TaskInspector {
  readonly #store: CopyJobStore;
  readonly #workers: WorkerClient;
  readonly #clock: Clock;
  readonly #onTaskDone: () => void;
  readonly #log: CopyLogger;
  readonly #maxDispatchAttempts: number;
  readonly #loop: LoopRunner;
  #starved: ReadonlyMap<number, string> = new Map();

  constructor(deps: TaskInspectorDeps) {
    this.#store = deps.store;
    this.#workers = deps.workers;
    this.#clock = deps.clock;
    this.#onTaskDone = deps.onTaskDone ?? (() => {});
    this.#log = deps.log ?? silentLogger;
    this.#maxDispatchAttempts = deps.maxDispatchAttempts ?? DEFAULT_MAX_DISPATCH_ATTEMPTS;
    if (!Number.isSafeInteger(this.#maxDispatchAttempts) || this.#maxDispatchAttempts <= 0) {
      throw new Error(`assertion failed: maxDispatchAttempts must be a positive integer, got ${this.#maxDispatchAttempts}`);
    }
    const intervalMs = deps.intervalMs ?? DEFAULT_COPY_OPTIONS.checkIntervalMs;
    this.#loop = new LoopRunner('copy-task-inspector', intervalMs, () => this.#pass(), this.#log);
  }

  start(): void {
    this.#loop.start();
  }

  stop(): Promise<void> {
    return this.#loop.stop();
  }

  tick(): Promise<void> {
    return this.#loop.tick();
  }

  /** Why a job's Pending tasks were not dispatched in the last pass (no worker with a free slot), if so. */
  waitingReason(jobId: number): string | undefined {
    return this.#starved.get(jobId);
  }

  /** Asks for a pass soon (tasks created, a worker finished a task); resolves after that pass. */
  kick(): Promise<void> {
    return this.#loop.kick();
  }

  async #pass(): Promise<void> {
    const nodes = new Map(this.#workers.nodes().map((n) => [n.nodeId, n] as const));
    const tasks = await this.#store.listAllTasks();
    // The jobs of unfinished tasks are read while the polls run (only they: not every job the store holds).
    const liveJobIds = [...new Set(tasks.filter((t) => t.state === 'Pending' || t.state === 'InProgress').map((t) => t.jobId))];
    const jobsRead = Promise.all(liveJobIds.map(async (id) => [id, await this.#store.getJob(id)] as const));
    jobsRead.catch(() => {}); // awaited below; a rejection before that must not go unhandled
    // The checks are independent (each a poll of one task), so they run CHECKS_IN_FLIGHT_MAX at a time.
    const running = tasks.filter((t) => t.state === 'InProgress');
    const decided: Decision[] = [];
    for (let i = 0; i < running.length; i += CHECKS_IN_FLIGHT_MAX) {
      await Promise.all(
        running.slice(i, i + CHECKS_IN_FLIGHT_MAX).map(async (t) => {
          try {
            const d = await this.#check(t, nodes);
            if (d !== undefined) decided.push(d);
          } catch (e) {
            this.#log.error({ jobId: t.jobId, taskId: t.id, err: e }, 'copy task check failed; retrying next pass');
          }
        }),
      );
    }
    // Node info is read again: the polls may have seen nodes go.
    const placed = this.#place(tasks, decided, new Map(this.#workers.nodes().map((n) => [n.nodeId, n] as const)), new Map(await jobsRead));
    // One metadata txn for the whole pass: what the polls decided and where the Pending tasks go. A task
    // re-queued and placed again in this pass is one update (InProgress on its new node, next version).
    const replaced = new Set(placed.flatMap((p) => (p.requeue === undefined ? [] : [p.requeue])));
    const kept = decided.filter((d) => !replaced.has(d));
    const updates = [...kept.map((d) => d.update), ...placed.map((p) => p.update)];
    let won: boolean[] = [];
    if (updates.length > 0) {
      try {
        won = await this.#store.updateTasksInState(updates);
      } catch (e) {
        this.#log.error({ tasks: updates.length, err: e }, 'copy task updates failed; polling and dispatching again next pass');
        return;
      }
    }
    let done = 0;
    let requeued = 0;
    const requeuedLog = (d: Decision): void => {
      requeued++;
      this.#log.warn({ jobId: d.update.jobId, taskId: d.update.taskId, why: d.update.patch.reason }, 'copy task re-queued');
    };
    for (const [i, d] of kept.entries()) {
      if (!won[i]) continue; // lost to a newer dispatch or a cancel: the answer was stale
      if (d.outcome === 'done') done++;
      else requeuedLog(d);
    }
    const sent = placed.filter((p, i) => {
      if (!won[kept.length + i]) return false;
      if (p.requeue !== undefined) requeuedLog(p.requeue);
      return true;
    });
    // Exhausted tasks also count as done: the checker must hear about them.
    done += await this.#send(sent);
    if (done > 0) this.#onTaskDone();
    if (requeued > 0) this.#log.info({ requeued }, 'copy tasks re-queued');
  }

  /** What the node's answer means for the task (transitions 2, 3, 4), or undefined when nothing changes. */
  async #check(t: CopyTask, nodes: ReadonlyMap<string, WorkerNodeInfo>): Promise<Decision | undefined> {
    const nodeId = t.nodeId;
    if (nodeId === undefined) throw new Error(`assertion failed: InProgress task ${t.id} has no nodeId`);
    if (!nodes.has(nodeId)) return this.#requeue(t, `worker ${nodeId} lost (not among the worker nodes)`);
    let ans;
    try {
      ans = await this.#workers.poll(nodeId, t.id, t.version);
    } catch (e) {
      // Unreachable for now; membership (`nodes()`) decides whether the node is lost.
      this.#log.warn({ taskId: t.id, nodeId, err: e }, 'poll of copy task failed');
      return undefined;
    }
    if (ans.state !== 'Unknown' && ans.version !== undefined && ans.version !== t.version) {
      this.#log.info({ taskId: t.id, nodeId, answered: ans.version, current: t.version }, 'stale copy task answer ignored');
      return undefined;
    }
    const nowMs = this.#clock.nowMs();
    const settle = (patch: CopyTaskPatch): Decision => ({ outcome: 'done', update: inProgressUpdate(t, patch) });
    switch (ans.state) {
      case 'InProgress':
        return undefined;
      case 'Completed': {
        const problem = resultsProblem(t, ans.results);
        return problem === undefined
          ? settle({
              state: 'Completed',
              results: ans.results.map((r) => ({ targetSegmentId: r.targetSegmentId, numRows: r.numRows, filesCopied: r.filesCopied })),
              reason: '',
              updatedAtMs: nowMs,
            })
          : settle({ state: 'Failed', reason: `worker ${nodeId} returned bad results: ${problem}`, updatedAtMs: nowMs });
      }
      case 'Failed': {
        const reason = ans.reason.length > 0 ? ans.reason : `worker ${nodeId} reported a failure without a reason`;
        return settle({ state: 'Failed', reason, updatedAtMs: nowMs });
      }
      case 'Unknown':
        return this.#requeue(t, `worker ${nodeId} does not know task ${t.id} version ${t.version}`);
      default:
        return unreachable(ans);
    }
  }

  /**
   * Transition (4), or (3) once the task has used up its dispatches. A dispatch the node refused for want
   * of a free slot (it runs other work, e.g. index builds, on the same slots) does not use one up: the
   * task waits for a slot, it did not fail.
   */
  #requeue(t: CopyTask, why: string, slotRefusal = false): Decision {
    const nowMs = this.#clock.nowMs();
    if (slotRefusal) {
      return {
        outcome: 'requeued',
        update: inProgressUpdate(t, { state: 'Pending', nodeId: undefined, attempts: Math.max(0, t.attempts - 1), reason: why, updatedAtMs: nowMs }),
      };
    }
    if (t.attempts >= this.#maxDispatchAttempts) {
      return {
        outcome: 'done',
        update: inProgressUpdate(t, { state: 'Failed', reason: `${why}; gave up after ${t.attempts} dispatches`, updatedAtMs: nowMs }),
      };
    }
    return { outcome: 'requeued', update: inProgressUpdate(t, { state: 'Pending', nodeId: undefined, reason: why, updatedAtMs: nowMs }) };
  }

  /**
   * Step 2's placement: Pending tasks of Executing jobs, oldest first, each on the node with the most free
   * slots, counting the tasks this pass's polls settled as gone from their nodes. A task the polls just
   * re-queued is placed like a Pending one; its placement then carries the re-queue (`requeue`) and
   * replaces it in the txn.
   */
  #place(
    tasks: readonly CopyTask[],
    decided: readonly Decision[],
    nodes: ReadonlyMap<string, WorkerNodeInfo>,
    jobs: ReadonlyMap<number, CopyJob | undefined>,
  ): Placement[] {
    const byTask = new Map(decided.map((d) => [d.update.taskId, d] as const));
    const inProgress = new Map<string, number>();
    for (const t of tasks) {
      if (t.state === 'InProgress' && t.nodeId !== undefined && !byTask.has(t.id)) inProgress.set(t.nodeId, (inProgress.get(t.nodeId) ?? 0) + 1);
    }
    const free = new Map<string, number>();
    for (const n of nodes.values()) {
      free.set(n.nodeId, Math.max(0, n.slots - Math.max(n.usedSlots, inProgress.get(n.nodeId) ?? 0)));
    }
    const starved = new Map<number, string>();
    const placed: Placement[] = [];
    const nowMs = this.#clock.nowMs();
    for (const t of tasks) {
      const d = byTask.get(t.id);
      const requeue = d !== undefined && d.update.patch.state === 'Pending' ? d : undefined;
      if ((t.state !== 'Pending' && requeue === undefined) || !dispatchable(jobs.get(t.jobId))) continue;
      const nodeId = pickNode(free);
      if (nodeId === undefined) {
        // Visible in the job's reason until a node takes its tasks (no node at all, or all busy).
        starved.set(t.jobId, `waiting for a data node with a free slot (${nodes.size} registered)`);
        continue;
      }
      free.set(nodeId, free.get(nodeId)! - 1);
      const from: CopyTask = requeue === undefined ? t : { ...t, ...requeue.update.patch };
      const patch = { state: 'InProgress' as const, nodeId, version: t.version + 1, attempts: from.attempts + 1, updatedAtMs: nowMs };
      placed.push(
        requeue === undefined
          ? { task: t, update: { jobId: t.jobId, taskId: t.id, expected: 'Pending', expectedVersion: t.version, patch } }
          : { task: from, requeue, update: { ...requeue.update, patch: { ...requeue.update.patch, ...patch } } },
      );
    }
    this.#starved = starved;
    return placed;
  }

  /**
   * Step 2's calls, for the placements already persisted (transition 1, before any call), all at once;
   * returns how many tasks it failed (refusals that used up the attempts).
   */
  async #send(placed: readonly Placement[]): Promise<number> {
    let failed = 0;
    await Promise.all(
      placed.map(async ({ task, update }) => {
        const dispatched: CopyTask = { ...task, ...update.patch };
        const nodeId = update.patch.nodeId!;
        try {
          await this.#workers.dispatch(nodeId, dispatched);
        } catch (e) {
          const why = `dispatch to ${nodeId} failed: ${e instanceof Error ? e.message : String(e)}`;
          this.#log.warn({ jobId: task.jobId, taskId: task.id, nodeId, err: e }, 'copy task dispatch refused');
          const d = this.#requeue(dispatched, why, isSlotRefusal(e));
          try {
            const u = d.update;
            if ((await this.#store.updateTaskInState(u.jobId, u.taskId, u.expected, u.expectedVersion, u.patch)) && d.outcome === 'done') failed++;
          } catch (e2) {
            // Stays InProgress on a node that does not run it: the next poll answers Unknown and re-queues it.
            this.#log.error({ jobId: task.jobId, taskId: task.id, err: e2 }, 'refused copy task not re-queued; the next poll will');
          }
        }
      }),
    );
    return failed;
  }
}

/** Where a task goes: the CAS that places it (from Pending, or from InProgress when it carries a re-queue). */
interface Placement {
  readonly task: CopyTask;
  readonly update: TaskUpdate;
  /** The poll's re-queue of this task, folded into `update`. */
  readonly requeue?: Decision | undefined;
}

/** What one check decided: a CAS from the task's (InProgress, version), and how to count it. */
interface Decision {
  readonly outcome: 'done' | 'requeued';
  readonly update: TaskUpdate;
}

function inProgressUpdate(t: CopyTask, patch: CopyTaskPatch): TaskUpdate {
  return { jobId: t.jobId, taskId: t.id, expected: 'InProgress', expectedVersion: t.version, patch };
}

/** A node that refused a dispatch only because its slots are taken (remote: "is full", in process: "no free slot"). */
function isSlotRefusal(e: unknown): boolean {
  return e instanceof Error && /\bis full \(|\bhas no free slot\b/.test(e.message);
}

function dispatchable(job: CopyJob | undefined): boolean {
  return job !== undefined && job.state === 'Executing';
}

/** The node with the most free slots (ties: first by node id), or undefined when all are full. */
function pickNode(free: ReadonlyMap<string, number>): string | undefined {
  let best: string | undefined;
  let bestFree = 0;
  for (const [nodeId, n] of [...free].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    if (n > bestFree) {
      best = nodeId;
      bestFree = n;
    }
  }
  return best;
}

/** Asserts, after the read from the worker, that the results are exactly the task's target segments. */
function resultsProblem(t: CopyTask, results: readonly CopiedSegment[]): string | undefined {
  if (!Array.isArray(results)) return 'results are not a list';
  const expected = new Set(t.mappings.map((m) => m.targetSegmentId));
  const seen = new Set<number>();
  for (const r of results) {
    if (!expected.has(r.targetSegmentId)) return `segment ${r.targetSegmentId} is not a target of task ${t.id}`;
    if (seen.has(r.targetSegmentId)) return `segment ${r.targetSegmentId} reported twice`;
    seen.add(r.targetSegmentId);
    if (!Number.isSafeInteger(r.numRows) || r.numRows < 0 || !Number.isSafeInteger(r.filesCopied) || r.filesCopied < 0) {
      return `segment ${r.targetSegmentId}: bad counts (rows ${r.numRows}, files ${r.filesCopied})`;
    }
  }
  if (seen.size !== expected.size) return `${expected.size - seen.size} of ${expected.size} segments missing`;
  return undefined;
}
