/**
 * The task service of a `quiver datanode` process: the DataNodeTasks gRPC handlers over the node's copy
 * executor (an `InProcessWorkerPool` holding this one node, so a remote node and the embedded one run
 * the same code: versions, slots, cancel-is-terminal, bounded finished answers).
 *
 * Fencing on this side is only about identity and liveness: a request addressed to another node id is
 * refused (a restarted node reusing a port is a new node), and once the node's session is lost
 * (`fence()`), every new task is refused and running ones are aborted: the coordinator has given them
 * to other nodes, and it ignores any answer about an older version anyway.
 *
 * Persists nothing: every answer is about tasks started in this process.
 */

import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { Clock } from '../../common/clock.js';
import { quiverError } from '../../common/errors.js';
import type { CopyTask, SourceSegmentReader } from '../../coord/copy/types.js';
import type { ObjectStore } from '../../storage/object-store.js';
import type {
  CreateTaskRequest,
  DataNodeTaskHandlers,
  DropTaskRequest,
  QuerySlotsResponse,
  QueryTaskRequest,
  QueryTaskResponse,
  WireTaskState,
} from '../../taskrpc/protocol.js';
import { InProcessWorkerPool } from '../copy-worker/in-process-worker-pool.js';

export interface TaskHostOptions {
  readonly nodeId: number;
  readonly slots: number;
  readonly copyConcurrency?: number | undefined;
}

export interface TaskHostDeps {
  readonly store: ObjectStore;
  readonly clock: Clock;
  readonly registry: Registry;
  readonly sources?: SourceSegmentReader | undefined;
}

const DURATION_BUCKETS_SECONDS = [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900];

export class DataNodeTaskHost implements DataNodeTaskHandlers {
  readonly #nodeId: number;
  readonly #poolNode: string;
  readonly #pool: InProcessWorkerPool;
  readonly #clock: Clock;
  readonly #startedAtMs = new Map<number, number>();
  readonly #tasks: Counter<'type' | 'outcome'>;
  readonly #duration: Histogram<'type'>;
  #fenced: string | undefined;

  constructor(deps: TaskHostDeps, opts: TaskHostOptions) {
    if (!Number.isSafeInteger(opts.nodeId) || opts.nodeId <= 0) throw new Error(`assertion failed: node id ${opts.nodeId} must be > 0`);
    this.#nodeId = opts.nodeId;
    this.#poolNode = `datanode-${opts.nodeId}`;
    this.#clock = deps.clock;
    const registers = [deps.registry];
    this.#tasks = new Counter({
      name: 'quiver_datanode_tasks_total',
      help: 'Tasks this data node finished, by type and outcome (completed, failed, cancelled)',
      labelNames: ['type', 'outcome'],
      registers,
    });
    this.#duration = new Histogram({
      name: 'quiver_datanode_task_duration_seconds',
      help: 'Run time of the tasks this data node finished, by type',
      labelNames: ['type'],
      buckets: DURATION_BUCKETS_SECONDS,
      registers,
    });
    const bytesCopied = new Counter({ name: 'quiver_datanode_bytes_copied_total', help: 'Bytes of the files this data node copied', registers });
    const filesCopied = new Counter({ name: 'quiver_datanode_files_copied_total', help: 'Files this data node copied', registers });
    const pool = (): InProcessWorkerPool => this.#pool;
    const poolNode = this.#poolNode;
    new Gauge({
      name: 'quiver_datanode_slots',
      help: 'Task slots of this data node: total and used',
      labelNames: ['kind'],
      registers,
      collect() {
        const n = pool()
          .nodes()
          .find((x) => x.nodeId === poolNode);
        this.set({ kind: 'total' }, n?.slots ?? 0);
        this.set({ kind: 'used' }, n?.usedSlots ?? 0);
      },
    });
    this.#pool = new InProcessWorkerPool({
      store: countingCopies(deps.store, (bytes) => {
        bytesCopied.inc(bytes);
        filesCopied.inc();
      }),
      sources: deps.sources,
      nodes: [{ nodeId: this.#poolNode, slots: opts.slots }],
      copyConcurrency: opts.copyConcurrency,
      onTaskFinished: (_node, taskId) => this.#finished(taskId),
    });
  }

  get nodeId(): number {
    return this.#nodeId;
  }

  async createTask(req: CreateTaskRequest): Promise<void> {
    this.#checkNode(req.node_id);
    if (this.#fenced !== undefined) throw quiverError('ParameterInvalid', `data node ${this.#nodeId} takes no work: ${this.#fenced}`);
    if (req.type !== 'COPY_SEGMENT') {
      throw quiverError('ServiceUnimplemented', `data node ${this.#nodeId}: task type ${req.type} is not served by remote data nodes yet`);
    }
    const p = req.copy_segment;
    if (p === undefined || p === null) throw quiverError('ParameterMissing', `task ${req.task_id}: copy_segment params missing`);
    const nowMs = this.#clock.nowMs();
    // The pool takes the coordinator's CopyTask shape; only its ids, version and mappings matter here.
    const task: CopyTask = {
      id: req.task_id,
      jobId: 0,
      state: 'InProgress',
      snapshot: { collectionId: p.source_collection_id, snapshotId: p.snapshot_id },
      targetCollectionId: p.target_collection_id,
      mappings: p.mappings.map((m) => ({
        sourceSegmentId: m.source_segment_id,
        targetSegmentId: m.target_segment_id,
        targetPartitionId: m.target_partition_id,
      })),
      version: req.version,
      attempts: 0,
      reason: '',
      results: [],
      createdAtMs: nowMs,
      updatedAtMs: nowMs,
    };
    const before = await this.#pool.poll(this.#poolNode, req.task_id, req.version);
    await this.#pool.dispatch(this.#poolNode, task);
    // A repeated dispatch of the same version is accepted without a new run: time only the first.
    if (before.state === 'Unknown') this.#startedAtMs.set(req.task_id, nowMs);
  }

  async queryTask(req: QueryTaskRequest): Promise<QueryTaskResponse> {
    if (req.node_id !== this.#nodeId) return { state: 'UNKNOWN', version: 0, reason: `this is data node ${this.#nodeId}`, copied_segments: [] };
    const p = await this.#pool.poll(this.#poolNode, req.task_id, req.version);
    switch (p.state) {
      case 'Unknown':
        return { state: 'UNKNOWN', version: 0, reason: '', copied_segments: [] };
      case 'InProgress':
        return { state: 'IN_PROGRESS', version: p.version ?? 0, reason: '', copied_segments: [] };
      case 'Failed':
        return { state: 'FAILED', version: p.version ?? 0, reason: p.reason, copied_segments: [] };
      case 'Completed':
        return {
          state: 'COMPLETED',
          version: p.version ?? 0,
          reason: '',
          copied_segments: p.results.map((r) => ({ target_segment_id: r.targetSegmentId, num_rows: r.numRows, files_copied: r.filesCopied })),
        };
      default: {
        const never: never = p;
        throw new Error(`assertion failed: unknown poll state ${JSON.stringify(never)}`);
      }
    }
  }

  async dropTask(req: DropTaskRequest): Promise<void> {
    this.#checkNode(req.node_id);
    const running = (await this.#pool.poll(this.#poolNode, req.task_id, 0)).state === 'InProgress';
    await this.#pool.cancel(this.#poolNode, req.task_id);
    if (running && this.#startedAtMs.delete(req.task_id)) this.#tasks.inc({ type: 'copy_segment', outcome: 'cancelled' });
  }

  async querySlots(): Promise<QuerySlotsResponse> {
    const n = this.#pool.nodes().find((x) => x.nodeId === this.#poolNode);
    return {
      node_id: this.#nodeId,
      slots_total: n?.slots ?? 0,
      slots_used: n?.usedSlots ?? 0,
      tasks: this.#pool.runs(this.#poolNode).map((r) => ({ task_id: r.taskId, version: r.version, type: 'COPY_SEGMENT', state: wireState(r.state) })),
    };
  }

  /** The session is lost: refuse new work and stop what runs (resolves once nothing writes). Idempotent. */
  async fence(reason: string): Promise<void> {
    this.#fenced ??= reason;
    await this.#pool.close();
  }

  /** Resolves once no task runs (tests; a clean stop). */
  idle(): Promise<void> {
    return this.#pool.idle();
  }

  close(): Promise<void> {
    return this.#pool.close();
  }

  #checkNode(nodeId: number): void {
    if (nodeId !== this.#nodeId) throw quiverError('ParameterInvalid', `this is data node ${this.#nodeId}, not ${nodeId}`);
  }

  #finished(taskId: number): void {
    const started = this.#startedAtMs.get(taskId);
    if (started === undefined) return;
    this.#startedAtMs.delete(taskId);
    const run = this.#pool.runs(this.#poolNode).find((r) => r.taskId === taskId);
    const outcome = run?.state === 'Completed' ? 'completed' : 'failed';
    this.#tasks.inc({ type: 'copy_segment', outcome });
    this.#duration.observe({ type: 'copy_segment' }, Math.max(0, this.#clock.nowMs() - started) / 1000);
  }
}

function wireState(s: 'InProgress' | 'Completed' | 'Failed'): WireTaskState {
  return s === 'InProgress' ? 'IN_PROGRESS' : s === 'Completed' ? 'COMPLETED' : 'FAILED';
}

/** The store with every successful copy reported (its size read back from the target) for /metrics. */
function countingCopies(store: ObjectStore, onCopied: (bytes: number) => void): ObjectStore {
  return new Proxy(store, {
    get(target, prop, receiver) {
      if (prop === 'copy') {
        return async (src: string, dst: string) => {
          await target.copy(src, dst);
          const info = await target.stat(dst).catch(() => undefined);
          onCopied(info?.size ?? 0);
        };
      }
      const v = Reflect.get(target, prop, receiver) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
}
