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
 *
 * Every write is a CAS on (state, version): an answer about an older dispatch, or a task the checker
 * cancelled meanwhile, loses the CAS and is dropped. Everything is derived from the store and the
 * workers' answers, so a new inspector after a crash simply carries on.
 */

import type { Clock } from '../../common/clock.js';
import { unreachable } from '../../common/errors.js';
import type { CopyJobStore } from './copy-job-store.js';
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

type PollOutcome = 'done' | 'requeued' | 'unchanged';

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
    let done = 0;
    let requeued = 0;
    // The checks are independent (each a poll of one task and a CAS on its own record), so they run
    // CHECKS_IN_FLIGHT_MAX at a time: one after the other, a pass cost one poll round trip per running
    // task, and with more nodes (more tasks in flight) the passes, not the nodes, bounded the throughput.
    const running = (await this.#store.listAllTasks()).filter((t) => t.state === 'InProgress');
    for (let i = 0; i < running.length; i += CHECKS_IN_FLIGHT_MAX) {
      await Promise.all(
        running.slice(i, i + CHECKS_IN_FLIGHT_MAX).map(async (t) => {
          try {
            const r = await this.#check(t, nodes);
            if (r === 'done') done++;
            if (r === 'requeued') requeued++;
          } catch (e) {
            this.#log.error({ jobId: t.jobId, taskId: t.id, err: e }, 'copy task check failed; retrying next pass');
          }
        }),
      );
    }
    // Exhausted tasks also count as done: the checker must hear about them. Node info is read again
    // because the polls above may have freed slots.
    done += await this.#dispatchPending(new Map(this.#workers.nodes().map((n) => [n.nodeId, n] as const)));
    if (done > 0) this.#onTaskDone();
    if (requeued > 0) this.#log.info({ requeued }, 'copy tasks re-queued');
  }

  async #check(t: CopyTask, nodes: ReadonlyMap<string, WorkerNodeInfo>): Promise<PollOutcome> {
    const nodeId = t.nodeId;
    if (nodeId === undefined) throw new Error(`assertion failed: InProgress task ${t.id} has no nodeId`);
    if (!nodes.has(nodeId)) return this.#requeue(t, `worker ${nodeId} lost (not among the worker nodes)`);
    let ans;
    try {
      ans = await this.#workers.poll(nodeId, t.id, t.version);
    } catch (e) {
      // Unreachable for now; membership (`nodes()`) decides whether the node is lost.
      this.#log.warn({ taskId: t.id, nodeId, err: e }, 'poll of copy task failed');
      return 'unchanged';
    }
    if (ans.state !== 'Unknown' && ans.version !== undefined && ans.version !== t.version) {
      this.#log.info({ taskId: t.id, nodeId, answered: ans.version, current: t.version }, 'stale copy task answer ignored');
      return 'unchanged';
    }
    const nowMs = this.#clock.nowMs();
    switch (ans.state) {
      case 'InProgress':
        return 'unchanged';
      case 'Completed': {
        const problem = resultsProblem(t, ans.results);
        const patch =
          problem === undefined
            ? {
                state: 'Completed' as const,
                results: ans.results.map((r) => ({ targetSegmentId: r.targetSegmentId, numRows: r.numRows, filesCopied: r.filesCopied })),
                reason: '',
                updatedAtMs: nowMs,
              }
            : { state: 'Failed' as const, reason: `worker ${nodeId} returned bad results: ${problem}`, updatedAtMs: nowMs };
        return (await this.#store.updateTaskInState(t.jobId, t.id, 'InProgress', t.version, patch)) ? 'done' : 'unchanged';
      }
      case 'Failed': {
        const reason = ans.reason.length > 0 ? ans.reason : `worker ${nodeId} reported a failure without a reason`;
        const patch = { state: 'Failed' as const, reason, updatedAtMs: nowMs };
        return (await this.#store.updateTaskInState(t.jobId, t.id, 'InProgress', t.version, patch)) ? 'done' : 'unchanged';
      }
      case 'Unknown':
        return this.#requeue(t, `worker ${nodeId} does not know task ${t.id} version ${t.version}`);
      default:
        return unreachable(ans);
    }
  }

  /** Transition (4), or (3) once the task has used up its dispatches. */
  async #requeue(t: CopyTask, why: string): Promise<PollOutcome> {
    const nowMs = this.#clock.nowMs();
    if (t.attempts >= this.#maxDispatchAttempts) {
      const reason = `${why}; gave up after ${t.attempts} dispatches`;
      const ok = await this.#store.updateTaskInState(t.jobId, t.id, 'InProgress', t.version, { state: 'Failed', reason, updatedAtMs: nowMs });
      return ok ? 'done' : 'unchanged';
    }
    const ok = await this.#store.updateTaskInState(t.jobId, t.id, 'InProgress', t.version, {
      state: 'Pending',
      nodeId: undefined,
      reason: why,
      updatedAtMs: nowMs,
    });
    if (ok) this.#log.warn({ jobId: t.jobId, taskId: t.id, why }, 'copy task re-queued');
    return ok ? 'requeued' : 'unchanged';
  }

  /**
   * Step 2; returns how many tasks it failed (dispatch failures that used up the attempts). Tasks are
   * placed first (oldest first, each on the node with the most free slots), then each node gets its
   * tasks one after the other while the nodes are served at once: with one node after another, a pass
   * cost one metadata write and one CreateTask round trip per task, and slots of the nodes served last
   * stayed idle meanwhile.
   */
  async #dispatchPending(nodes: ReadonlyMap<string, WorkerNodeInfo>): Promise<number> {
    const tasks = await this.#store.listAllTasks();
    const inProgress = new Map<string, number>();
    const pendingJobs = new Set<number>();
    for (const t of tasks) {
      if (t.state === 'InProgress' && t.nodeId !== undefined) inProgress.set(t.nodeId, (inProgress.get(t.nodeId) ?? 0) + 1);
      if (t.state === 'Pending') pendingJobs.add(t.jobId);
    }
    // Only the jobs with Pending tasks are read (not every job the store holds, finished ones included).
    const jobs = new Map<number, CopyJob | undefined>();
    for (const id of pendingJobs) jobs.set(id, await this.#store.getJob(id));
    const free = new Map<string, number>();
    for (const n of nodes.values()) {
      free.set(n.nodeId, Math.max(0, n.slots - Math.max(n.usedSlots, inProgress.get(n.nodeId) ?? 0)));
    }
    const starved = new Map<number, string>();
    const placed = new Map<string, CopyTask[]>();
    for (const t of tasks) {
      if (t.state !== 'Pending' || !dispatchable(jobs.get(t.jobId))) continue;
      const nodeId = pickNode(free);
      if (nodeId === undefined) {
        // Visible in the job's reason until a node takes its tasks (no node at all, or all busy).
        starved.set(t.jobId, `waiting for a data node with a free slot (${nodes.size} registered)`);
        continue;
      }
      free.set(nodeId, free.get(nodeId)! - 1);
      placed.set(nodeId, [...(placed.get(nodeId) ?? []), t]);
    }
    let failed = 0;
    await Promise.all(
      [...placed].map(async ([nodeId, onNode]) => {
        for (const t of onNode) {
          try {
            const r = await this.#dispatch(t, nodeId);
            // A node that refused one task is not offered another in this pass.
            if (r === 'refused') return;
            if (r === 'failed') {
              failed++;
              return;
            }
          } catch (e) {
            this.#log.error({ jobId: t.jobId, taskId: t.id, err: e }, 'copy task dispatch failed; retrying next pass');
          }
        }
      }),
    );
    this.#starved = starved;
    return failed;
  }

  async #dispatch(t: CopyTask, nodeId: string): Promise<'dispatched' | 'lost' | 'refused' | 'failed'> {
    const nowMs = this.#clock.nowMs();
    const version = t.version + 1;
    const patch = { state: 'InProgress' as const, nodeId, version, attempts: t.attempts + 1, updatedAtMs: nowMs };
    if (!(await this.#store.updateTaskInState(t.jobId, t.id, 'Pending', t.version, patch))) return 'lost';
    const dispatched: CopyTask = { ...t, ...patch };
    try {
      await this.#workers.dispatch(nodeId, dispatched);
      return 'dispatched';
    } catch (e) {
      const why = `dispatch to ${nodeId} failed: ${e instanceof Error ? e.message : String(e)}`;
      this.#log.warn({ jobId: t.jobId, taskId: t.id, nodeId, err: e }, 'copy task dispatch refused');
      const r = await this.#requeue(dispatched, why);
      return r === 'done' ? 'failed' : 'refused';
    }
  }
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
