import { wireBuiltIndex } from '../../taskrpc/protocol.js';
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
import type { Column } from '../../schema/types.js';
import type { ObjectStore } from '../../storage/object-store.js';
import type {
  CreateTaskRequest,
  DataNodeTaskHandlers,
  DropTaskRequest,
  QuerySlotsResponse,
  QueryTaskRequest,
  QueryTaskResponse,
  WireMerged,
  WireTaskState,
} from '../../taskrpc/protocol.js';
import { InProcessWorkerPool } from '../copy-worker/in-process-worker-pool.js';
import type { BuiltIndexFile, IndexBuildRunner } from './index-build-runner.js';
import { runMerge } from './merge-runner.js';

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
  /** The INDEX_BUILD executor; without it the node refuses index builds. */
  readonly indexBuilds?: Pick<IndexBuildRunner, 'run' | 'mergeIndexes'> | undefined;
}

/** An index build or compaction merge this node runs or ran (copy tasks live in the copy pool). */
interface BuildRun {
  readonly type: 'INDEX_BUILD' | 'COMPACTION_MERGE';
  readonly version: number;
  state: 'InProgress' | 'Completed' | 'Failed';
  reason: string;
  result?: BuiltIndexFile | undefined;
  merged?: WireMerged | undefined;
}

/** Longest a QueryTask waits for its task to leave IN_PROGRESS (`wait_ms` is capped to it). */
export const QUERY_WAIT_MS_MAX = 10_000;

/** Finished build answers kept for the coordinator's poll (the oldest go first beyond this). */
const FINISHED_BUILDS_MAX = 1024;

const DURATION_BUCKETS_SECONDS = [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900];

export class DataNodeTaskHost implements DataNodeTaskHandlers {
  readonly #nodeId: number;
  readonly #poolNode: string;
  readonly #pool: InProcessWorkerPool;
  readonly #clock: Clock;
  readonly #startedAtMs = new Map<number, number>();
  readonly #tasks: Counter<'type' | 'outcome'>;
  /** Runs started here: a coordinator that re-attached after a restart must not start a run again. */
  readonly #started: Counter<'type'>;
  readonly #duration: Histogram<'type'>;
  readonly #slots: number;
  readonly #indexBuilds: Pick<IndexBuildRunner, 'run' | 'mergeIndexes'> | undefined;
  readonly #store: ObjectStore;
  /** Index builds by task id (the latest version only). */
  readonly #builds = new Map<number, BuildRun>();
  /** Builds still running on the worker, including replaced or dropped ones: they hold a slot until they end. */
  #buildsRunning = 0;
  /** Dropped task ids: a later CreateTask of them is refused (cancel is terminal, as for copies). */
  readonly #droppedBuilds = new Set<number>();
  #fenced: string | undefined;
  /**
   * Long polls (QueryTask with `wait_ms`) waiting for their task's answer to change, by task id. Bounded
   * by the coordinator's calls in flight (one watcher per dispatched task). Woken by anything that may
   * change the answer (finished, re-created, dropped), and all at once when the node stops serving.
   */
  readonly #waiters = new Map<number, Set<() => void>>();
  #longPollsEnded = false;

  constructor(deps: TaskHostDeps, opts: TaskHostOptions) {
    if (!Number.isSafeInteger(opts.nodeId) || opts.nodeId <= 0) throw new Error(`assertion failed: node id ${opts.nodeId} must be > 0`);
    this.#nodeId = opts.nodeId;
    this.#slots = opts.slots;
    this.#indexBuilds = deps.indexBuilds;
    this.#store = deps.store;
    this.#poolNode = `datanode-${opts.nodeId}`;
    this.#clock = deps.clock;
    const registers = [deps.registry];
    this.#tasks = new Counter({
      name: 'quiver_datanode_tasks_total',
      help: 'Tasks this data node finished, by type and outcome (completed, failed, cancelled)',
      labelNames: ['type', 'outcome'],
      registers,
    });
    this.#started = new Counter({
      name: 'quiver_datanode_tasks_started_total',
      help: 'Task runs this data node started, by type (a repeated CreateTask of the same version starts none)',
      labelNames: ['type'],
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
    const buildsRunning = (): number => this.#buildsRunning;
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
        this.set({ kind: 'used' }, (n?.usedSlots ?? 0) + buildsRunning());
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
    if (req.type === 'INDEX_BUILD' || req.type === 'COMPACTION_MERGE') return this.#createBuild(req);
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
    // Copies and builds share the node's slots; the copy pool counts only its own.
    if (before.state === 'Unknown' && this.#slotsUsed() >= this.#slots) {
      throw quiverError('ParameterInvalid', `data node ${this.#nodeId} is full (${this.#slots} slots)`);
    }
    await this.#pool.dispatch(this.#poolNode, task);
    this.#wake(req.task_id);
    // A repeated dispatch of the same version is accepted without a new run: time only the first.
    if (before.state === 'Unknown') {
      this.#startedAtMs.set(req.task_id, nowMs);
      this.#started.inc({ type: 'copy_segment' });
    }
  }

  /**
   * The task's state; with `wait_ms`, an IN_PROGRESS answer is held until the task's answer may have
   * changed or `wait_ms` (at most QUERY_WAIT_MS_MAX) passed, so the coordinator hears of a finished task
   * at once instead of at its next poll.
   */
  async queryTask(req: QueryTaskRequest): Promise<QueryTaskResponse> {
    const waitMs = Math.min(Math.max(0, Math.trunc(req.wait_ms ?? 0)), QUERY_WAIT_MS_MAX);
    if (waitMs === 0 || this.#longPollsEnded || req.node_id !== this.#nodeId) return this.#answer(req);
    // Registered before the first answer is read, so a finish in between is not missed.
    let wake!: () => void;
    const changed = new Promise<void>((r) => (wake = r));
    let set = this.#waiters.get(req.task_id);
    if (set === undefined) this.#waiters.set(req.task_id, (set = new Set()));
    set.add(wake);
    const timer = new AbortController();
    try {
      const first = await this.#answer(req);
      if (first.state !== 'IN_PROGRESS') return first;
      await Promise.race([changed, this.#clock.sleep(waitMs, timer.signal)]);
      return await this.#answer(req);
    } finally {
      timer.abort();
      set.delete(wake);
      if (set.size === 0 && this.#waiters.get(req.task_id) === set) this.#waiters.delete(req.task_id);
    }
  }

  #wake(taskId: number): void {
    const set = this.#waiters.get(taskId);
    if (set === undefined) return;
    this.#waiters.delete(taskId);
    for (const w of set) w();
  }

  /** Answers every long poll now, and every later one at once (the node stops serving). Idempotent. */
  endLongPolls(): void {
    this.#longPollsEnded = true;
    for (const id of [...this.#waiters.keys()]) this.#wake(id);
  }

  async #answer(req: QueryTaskRequest): Promise<QueryTaskResponse> {
    if (req.node_id !== this.#nodeId) return { state: 'UNKNOWN', version: 0, reason: `this is data node ${this.#nodeId}`, copied_segments: [] };
    const build = this.#builds.get(req.task_id);
    if (build !== undefined) return buildAnswer(build, req.version);
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
    try {
      await this.#drop(req);
    } finally {
      this.#wake(req.task_id);
    }
  }

  async #drop(req: DropTaskRequest): Promise<void> {
    const build = this.#builds.get(req.task_id);
    if (build !== undefined) {
      this.#builds.delete(req.task_id);
      this.#droppedBuilds.add(req.task_id);
      if (build.state === 'InProgress') this.#tasks.inc({ type: metricType(build.type), outcome: 'cancelled' });
      return;
    }
    const running = (await this.#pool.poll(this.#poolNode, req.task_id, 0)).state === 'InProgress';
    await this.#pool.cancel(this.#poolNode, req.task_id);
    if (running && this.#startedAtMs.delete(req.task_id)) this.#tasks.inc({ type: 'copy_segment', outcome: 'cancelled' });
  }

  async querySlots(): Promise<QuerySlotsResponse> {
    const n = this.#pool.nodes().find((x) => x.nodeId === this.#poolNode);
    return {
      node_id: this.#nodeId,
      slots_total: n?.slots ?? 0,
      slots_used: this.#slotsUsed(),
      tasks: [
        ...this.#pool
          .runs(this.#poolNode)
          .map((r) => ({ task_id: r.taskId, version: r.version, type: 'COPY_SEGMENT' as const, state: wireState(r.state) })),
        ...[...this.#builds].map(([id, b]) => ({ task_id: id, version: b.version, type: b.type, state: wireState(b.state) })),
      ],
    };
  }

  #slotsUsed(): number {
    return (this.#pool.nodes().find((x) => x.nodeId === this.#poolNode)?.usedSlots ?? 0) + this.#buildsRunning;
  }

  /**
   * INDEX_BUILD: idempotent for the same version, a newer version replaces an older run (whose result is
   * then dropped when it ends: the coordinator fenced it), an older version is refused.
   */
  async #createBuild(req: CreateTaskRequest): Promise<void> {
    let work: () => Promise<Pick<BuildRun, 'result' | 'merged'>>;
    if (req.type === 'INDEX_BUILD') {
      const runner = this.#indexBuilds;
      if (runner === undefined) throw quiverError('ServiceUnimplemented', `data node ${this.#nodeId} does not build indexes`);
      const p = req.index_build;
      if (p === undefined || p === null) throw quiverError('ParameterMissing', `task ${req.task_id}: index_build params missing`);
      const r = { collectionId: p.collection_id, segmentId: p.segment_id, indexId: p.index_id, buildId: req.task_id, version: req.version };
      work = async () => ({ result: await runner.run(r) });
    } else {
      const p = req.compaction_merge;
      if (p === undefined || p === null) throw quiverError('ParameterMissing', `task ${req.task_id}: compaction_merge params missing`);
      const runner = this.#indexBuilds;
      if ((p.indexes?.length ?? 0) > 0 && runner === undefined) {
        throw quiverError('ServiceUnimplemented', `data node ${this.#nodeId} does not build indexes (merge task ${req.task_id} asks for some)`);
      }
      work = async () => {
        // The target's own index is built here from the merged column, so `serve` only reads it back.
        const indexes = runner === undefined ? undefined : await runner.mergeIndexes(p);
        const kept = new Map<number, Column>();
        const merged = await runMerge(this.#store, p, (fieldId, col) => {
          if (indexes?.fieldIds.has(fieldId)) kept.set(fieldId, col);
        });
        const built = indexes === undefined ? [] : await indexes.build((id) => kept.get(id), req.version);
        return { merged: { ...merged, built_indexes: built } };
      };
    }
    if (this.#droppedBuilds.has(req.task_id)) throw quiverError('ParameterInvalid', `task ${req.task_id} was cancelled on data node ${this.#nodeId}`);
    const cur = this.#builds.get(req.task_id);
    if (cur !== undefined && cur.version === req.version) return;
    if (cur !== undefined && cur.version > req.version) {
      throw quiverError('ParameterInvalid', `task ${req.task_id}: version ${req.version} is older than ${cur.version} on data node ${this.#nodeId}`);
    }
    if (this.#slotsUsed() >= this.#slots) throw quiverError('ParameterInvalid', `data node ${this.#nodeId} is full (${this.#slots} slots)`);
    const run: BuildRun = { type: req.type === 'INDEX_BUILD' ? 'INDEX_BUILD' : 'COMPACTION_MERGE', version: req.version, state: 'InProgress', reason: '' };
    this.#builds.set(req.task_id, run);
    this.#wake(req.task_id);
    this.#buildsRunning++;
    this.#started.inc({ type: metricType(run.type) });
    const startedMs = this.#clock.nowMs();
    void work()
      .then(
        (out) => {
          run.state = 'Completed';
          run.result = out.result;
          run.merged = out.merged;
        },
        (e: unknown) => {
          run.state = 'Failed';
          run.reason = e instanceof Error ? e.message : String(e);
        },
      )
      .finally(() => {
        this.#buildsRunning--;
        this.#wake(req.task_id);
        // Replaced by a newer version or dropped meanwhile: not this node's answer any more.
        if (this.#builds.get(req.task_id) !== run) return;
        this.#tasks.inc({ type: metricType(run.type), outcome: run.state === 'Completed' ? 'completed' : 'failed' });
        this.#duration.observe({ type: metricType(run.type) }, Math.max(0, this.#clock.nowMs() - startedMs) / 1000);
        this.#trimBuilds();
      });
  }

  #trimBuilds(): void {
    let finished = 0;
    for (const b of this.#builds.values()) if (b.state !== 'InProgress') finished++;
    for (const [id, b] of this.#builds) {
      if (finished <= FINISHED_BUILDS_MAX) break;
      if (b.state === 'InProgress') continue;
      this.#builds.delete(id);
      finished--;
    }
    // Dropped ids are only needed against a late re-dispatch; keep the set bounded the same way.
    if (this.#droppedBuilds.size > FINISHED_BUILDS_MAX) {
      for (const id of this.#droppedBuilds) {
        this.#droppedBuilds.delete(id);
        if (this.#droppedBuilds.size <= FINISHED_BUILDS_MAX) break;
      }
    }
  }

  /** The session is lost: refuse new work and stop what runs (resolves once nothing writes). Idempotent. */
  async fence(reason: string): Promise<void> {
    this.#fenced ??= reason;
    // Running builds cannot be interrupted on the worker; their answers are dropped with the entries.
    this.#builds.clear();
    this.endLongPolls();
    await this.#pool.close();
  }

  /** Resolves once no task runs (tests; a clean stop). */
  idle(): Promise<void> {
    return this.#pool.idle();
  }

  close(): Promise<void> {
    this.endLongPolls();
    return this.#pool.close();
  }

  #checkNode(nodeId: number): void {
    if (nodeId !== this.#nodeId) throw quiverError('ParameterInvalid', `this is data node ${this.#nodeId}, not ${nodeId}`);
  }

  #finished(taskId: number): void {
    this.#wake(taskId);
    const started = this.#startedAtMs.get(taskId);
    if (started === undefined) return;
    this.#startedAtMs.delete(taskId);
    const run = this.#pool.runs(this.#poolNode).find((r) => r.taskId === taskId);
    const outcome = run?.state === 'Completed' ? 'completed' : 'failed';
    this.#tasks.inc({ type: 'copy_segment', outcome });
    this.#duration.observe({ type: 'copy_segment' }, Math.max(0, this.#clock.nowMs() - started) / 1000);
  }
}

function buildAnswer(b: BuildRun, version: number): QueryTaskResponse {
  // An answer about another version would be ignored by the coordinator anyway; say UNKNOWN for an older
  // one it asks about (that run is gone here) and report the version this node runs otherwise.
  if (version !== 0 && version > b.version) return { state: 'UNKNOWN', version: 0, reason: '', copied_segments: [] };
  const base = { state: wireState(b.state), version: b.version, reason: b.reason, copied_segments: [] };
  if (b.state !== 'Completed') return base;
  if (b.merged !== undefined) return { ...base, merged: b.merged };
  const r = b.result;
  if (r === undefined) return base;
  return {
    ...base,
    built_index: wireBuiltIndex(r, r.rows),
  };
}

function metricType(t: BuildRun['type']): string {
  return t === 'INDEX_BUILD' ? 'index_build' : 'compaction_merge';
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
