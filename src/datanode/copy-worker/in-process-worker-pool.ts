/**
 * InProcessWorkerPool: copy-segment workers living in the coordinator's process, behind the same
 * `WorkerClient` contract a remote pool will implement. Each node has a number of slots (one per
 * running task). `dispatch` starts a task in the background and resolves at once; `poll` reports on it.
 *
 * Node loss is simulated with `removeNode`: its running tasks are aborted (abandoned) and every poll for
 * it answers Unknown, which makes the inspector re-queue the task elsewhere.
 *
 * Bounds: a node keeps the answers of at most `finishedTasksMax` finished tasks (oldest dropped first);
 * a task whose answer was dropped polls as Unknown and is simply run again, which is safe because copies
 * are idempotent.
 */

import { quiverError } from '../../common/errors.js';
import type { CopiedSegment, CopyTask, SourceSegmentReader, TaskPoll, WorkerClient, WorkerNodeInfo } from '../../coord/copy/types.js';
import { ManifestSourceReader } from '../../storage/snapshot-format/source-reader.js';
import type { ObjectStore } from '../../storage/object-store.js';
import { executeCopy } from './copy-segment-executor.js';

export interface WorkerNodeSpec {
  readonly nodeId: string;
  readonly slots: number;
}

export const DEFAULT_WORKER_SLOTS = 4;
export const DEFAULT_FINISHED_TASKS_MAX = 1024;

export interface InProcessWorkerPoolOptions {
  readonly store: ObjectStore;
  /** Where tasks read their source segments' file lists (default: the snapshot manifests in `store`). */
  readonly sources?: SourceSegmentReader | undefined;
  /** Default: one node 'node-1' with `DEFAULT_WORKER_SLOTS` slots. */
  readonly nodes?: readonly WorkerNodeSpec[] | undefined;
  /** Copies in flight per task (default 16). */
  readonly copyConcurrency?: number | undefined;
  /** Retries of one failed copy before the task fails (default 3). */
  readonly copyRetriesMax?: number | undefined;
  readonly finishedTasksMax?: number | undefined;
  /** Called when a task finished (Completed or Failed): wire it to the inspector's `kick`. */
  readonly onTaskFinished?: ((nodeId: string, taskId: number) => void) | undefined;
}

type RunState =
  | { readonly state: 'InProgress' }
  | { readonly state: 'Completed'; readonly results: readonly CopiedSegment[] }
  | { readonly state: 'Failed'; readonly reason: string };

interface Run {
  readonly version: number;
  status: RunState;
  readonly abort: AbortController;
  done: Promise<void>;
}

interface WorkerNode {
  readonly nodeId: string;
  readonly slots: number;
  /** taskId → its latest run; Map order = insertion order, used to drop the oldest finished answers. */
  readonly runs: Map<number, Run>;
  /**
   * Tasks cancelled here. A dispatch can reach the node after the cancel (the inspector persisted the
   * dispatch, then the checker cancelled, then the inspector's call arrived); refusing it keeps a
   * cancelled task from writing after rollback. Bounded like the finished answers.
   */
  readonly cancelled: Set<number>;
}

export class InProcessWorkerPool implements WorkerClient {
  readonly #store: ObjectStore;
  readonly #sources: SourceSegmentReader;
  readonly #nodes = new Map<string, WorkerNode>();
  readonly #copyConcurrency: number | undefined;
  readonly #copyRetriesMax: number | undefined;
  readonly #finishedTasksMax: number;
  readonly #onTaskFinished: (nodeId: string, taskId: number) => void;
  #closed = false;

  constructor(options: InProcessWorkerPoolOptions) {
    this.#store = options.store;
    this.#sources = options.sources ?? new ManifestSourceReader(options.store);
    this.#copyConcurrency = options.copyConcurrency;
    this.#copyRetriesMax = options.copyRetriesMax;
    this.#finishedTasksMax = options.finishedTasksMax ?? DEFAULT_FINISHED_TASKS_MAX;
    this.#onTaskFinished = options.onTaskFinished ?? (() => {});
    for (const n of options.nodes ?? [{ nodeId: 'node-1', slots: DEFAULT_WORKER_SLOTS }]) this.addNode(n.nodeId, n.slots);
  }

  nodes(): readonly WorkerNodeInfo[] {
    return [...this.#nodes.values()].map((n) => ({ nodeId: n.nodeId, slots: n.slots, usedSlots: usedSlots(n) }));
  }

  addNode(nodeId: string, slots: number = DEFAULT_WORKER_SLOTS): void {
    if (typeof nodeId !== 'string' || nodeId.length === 0)
      throw quiverError('ParameterInvalid', `worker node id must be non-empty, got ${JSON.stringify(nodeId)}`);
    if (!Number.isSafeInteger(slots) || slots <= 0)
      throw quiverError('ParameterInvalid', `worker node ${nodeId}: slots must be a positive integer, got ${slots}`);
    if (this.#nodes.has(nodeId)) throw quiverError('ParameterInvalid', `worker node ${nodeId} already exists`);
    this.#nodes.set(nodeId, { nodeId, slots, runs: new Map(), cancelled: new Set() });
  }

  /** The node disappears at once (polls answer Unknown); resolves when its abandoned tasks stopped writing. */
  async removeNode(nodeId: string): Promise<void> {
    const node = this.#nodes.get(nodeId);
    if (node === undefined) return;
    this.#nodes.delete(nodeId);
    await abortAll(node);
  }

  async dispatch(nodeId: string, task: CopyTask): Promise<void> {
    if (this.#closed) throw quiverError('ServiceNotReady', `worker pool is closed (dispatch of task ${task.id} to ${nodeId})`);
    const node = this.#nodes.get(nodeId);
    if (node === undefined) throw quiverError('ServiceNotReady', `worker node ${nodeId} is not in the pool (dispatch of task ${task.id})`);
    if (node.cancelled.has(task.id)) throw quiverError('ParameterInvalid', `worker node ${nodeId}: task ${task.id} was cancelled`);
    const existing = node.runs.get(task.id);
    if (existing !== undefined) {
      if (existing.version === task.version) return; // a repeated dispatch of the same epoch
      if (existing.version > task.version) {
        throw quiverError('ParameterInvalid', `worker node ${nodeId}: task ${task.id} version ${task.version} is older than its run ${existing.version}`);
      }
      // A newer epoch replaces the old run (it was re-queued and came back here).
      existing.abort.abort();
      await existing.done;
      if (node.runs.get(task.id) === existing) node.runs.delete(task.id);
    }
    const used = usedSlots(node);
    if (used >= node.slots) {
      throw quiverError('ServiceNotReady', `worker node ${nodeId} has no free slot (${used} of ${node.slots} used) for task ${task.id}`);
    }
    const run: Run = { version: task.version, status: { state: 'InProgress' }, abort: new AbortController(), done: Promise.resolve() };
    node.runs.set(task.id, run);
    run.done = this.#execute(node, task, run);
  }

  async poll(nodeId: string, taskId: number, version: number): Promise<TaskPoll> {
    const run = this.#nodes.get(nodeId)?.runs.get(taskId);
    // A run of an older epoch means the dispatch of `version` never reached this node.
    if (run === undefined || run.version < version) return { state: 'Unknown' };
    return { ...run.status, version: run.version };
  }

  async cancel(nodeId: string, taskId: number): Promise<void> {
    const node = this.#nodes.get(nodeId);
    if (node === undefined) return;
    node.cancelled.add(taskId);
    if (node.cancelled.size > this.#finishedTasksMax) node.cancelled.delete(node.cancelled.values().next().value!);
    const run = node.runs.get(taskId);
    if (run === undefined) return;
    run.abort.abort();
    await run.done;
    if (node.runs.get(taskId) === run) node.runs.delete(taskId);
  }

  /** The runs a node knows (its latest version per task), for a data node's QuerySlots answer. */
  runs(nodeId: string): { taskId: number; version: number; state: RunState['state'] }[] {
    const node = this.#nodes.get(nodeId);
    if (node === undefined) return [];
    return [...node.runs].map(([taskId, r]) => ({ taskId, version: r.version, state: r.status.state }));
  }

  /** Resolves once no task is running on any node (tests use it instead of sleeping). */
  async idle(): Promise<void> {
    for (;;) {
      const running = [...this.#nodes.values()].flatMap((n) => [...n.runs.values()]).filter((r) => r.status.state === 'InProgress');
      if (running.length === 0) return;
      await Promise.all(running.map((r) => r.done));
    }
  }

  /** Aborts every task on every node and waits until none writes; later dispatches are refused. Idempotent. */
  async close(): Promise<void> {
    this.#closed = true;
    await Promise.all([...this.#nodes.values()].map(abortAll));
  }

  async #execute(node: WorkerNode, task: CopyTask, run: Run): Promise<void> {
    let status: RunState;
    try {
      const r = await executeCopy(this.#store, this.#sources, task, {
        concurrency: this.#copyConcurrency,
        retriesMax: this.#copyRetriesMax,
        signal: run.abort.signal,
      });
      if (run.abort.signal.aborted) return; // abandoned: nobody will poll this run
      status = r.ok ? { state: 'Completed', results: r.results } : { state: 'Failed', reason: `task ${task.id} on ${node.nodeId}: ${r.reason}` };
    } catch (e) {
      status = { state: 'Failed', reason: `task ${task.id} on ${node.nodeId}: ${e instanceof Error ? e.message : String(e)}` };
    }
    run.status = status;
    this.#evictFinished(node);
    this.#onTaskFinished(node.nodeId, task.id);
  }

  #evictFinished(node: WorkerNode): void {
    let finished = 0;
    for (const r of node.runs.values()) if (r.status.state !== 'InProgress') finished++;
    for (const [taskId, r] of node.runs) {
      if (finished <= this.#finishedTasksMax) break;
      if (r.status.state !== 'InProgress') {
        node.runs.delete(taskId);
        finished--;
      }
    }
  }
}

function usedSlots(node: WorkerNode): number {
  let n = 0;
  for (const r of node.runs.values()) if (r.status.state === 'InProgress') n++;
  return n;
}

async function abortAll(node: WorkerNode): Promise<void> {
  const runs = [...node.runs.values()];
  node.runs.clear();
  for (const r of runs) r.abort.abort();
  await Promise.all(runs.map((r) => r.done));
}
