/**
 * NodeTaskDispatcher: runs index-build tasks on the registered data nodes (the pattern the restore
 * inspector uses for copies, for single tasks a scheduler waits on). Its state machine and records are
 * in node-task-store.ts. One `tick()` advances every active task:
 *   - Waiting: pick the Healthy node with the most free slots, persist (node, version+1) by CAS, then
 *     CreateTask. A refusal the node decided (full, ...) puts it back to Waiting; a transport error
 *     leaves it Dispatched: the next poll decides (a node that never got it answers UNKNOWN).
 *   - Dispatched: the node left the live set, or answers UNKNOWN → confirmed loss; a run older than
 *     `taskTimeoutMs` → DropTask and re-dispatch; both count an attempt, and the last attempt fails the
 *     task with a reason that names it and the node. A transient poll error changes nothing.
 *   - Any state past `jobTimeoutMs` since submit fails.
 * Answers about another version than the record's are ignored (fencing): a node that was frozen past
 * its lease and resumed cannot complete a task that now runs elsewhere. Each dispatched run has a
 * watcher that long-polls its node (QueryTask `wait_ms`) and kicks a pass when the run ends, so a
 * finished build or merge is collected at once rather than at the next fallback tick.
 *
 * Coordinator restart: `init()` re-attaches to the Dispatched records a previous coordinator left (same
 * node, same version: the node may still run that run, and its answer is as good as ever) and polls them
 * like any other; only a confirmed loss re-dispatches. Their waiters died with that process, so they are
 * "unclaimed" until the index scheduler or the compactor submits the same work again (`submit` matches by
 * `claimKey`: a build by (collection, segment, index), a merge by its inputs), which then waits on the
 * adopted run, finished or not. Nobody claims an adopted task within `unclaimedTimeoutMs` (the segment
 * was dropped, compacted or got its index meanwhile): it is dropped on its node and forgotten, its
 * uploads are orphans for GC.
 */

import type { Clock } from '../../common/clock.js';
import { isQuiverError, quiverError } from '../../common/errors.js';
import { LoopRunner } from '../../common/loop.js';
import type { CreateTaskRequest, QueryTaskResponse, WireBuiltIndex, WireMerged } from '../../taskrpc/protocol.js';
import type { CopyLogger, WorkerNodeInfo } from '../copy/types.js';
import type { IdSource } from '../types.js';
import type { TaskRpc } from './remote-workers.js';
import type { NodeTaskRecord, NodeTaskSpec, NodeTaskStore } from './node-task-store.js';

/** The live data nodes and a client per node (RemoteWorkerPool implements it). */
export interface TaskNodes {
  /** Live nodes; a node with `usedSlots >= slots` (Suspect) keeps its tasks and gets no new one. */
  nodes(): readonly WorkerNodeInfo[];
  /** The node's session id and client; throws a retriable error when the node is not live. */
  client(nodeId: string): { readonly session: number; readonly rpc: TaskRpc };
}

export interface NodeTaskDispatcherOptions {
  /** One run on one node: past it the run is dropped and the task re-dispatched. */
  readonly taskTimeoutMs: number;
  /** From submit to outcome, waiting for a node and every re-dispatch included. */
  readonly jobTimeoutMs: number;
  /** Runs lost or timed out before the task fails. */
  readonly attemptsMax: number;
  /** Period of the fallback tick (a watcher-free poll loop). */
  readonly tickIntervalMs: number;
  /** A task adopted at restart that nobody submits again within this is dropped (default 10 min). */
  readonly unclaimedTimeoutMs?: number | undefined;
  /**
   * How long a dispatched task's watcher asks its node to hold an IN_PROGRESS answer (QueryTask `wait_ms`;
   * default 2 s; 0: no watcher, the fallback tick alone collects results).
   */
  readonly longPollMs?: number | undefined;
}

export const NODE_TASK_LONG_POLL_MS_DEFAULT = 2_000;
/** Least time between two questions of a watcher whose node answers at once (it does not hold answers). */
const WATCH_INTERVAL_MS_MIN = 100;

export const UNCLAIMED_TIMEOUT_MS_DEFAULT = 10 * 60_000;

/**
 * What identifies the same work across a coordinator restart: a build by (collection, segment, index); a
 * merge by its inputs (sources, kept rows, fields), not by the target id, output keys or build ids the
 * new coordinator allocated again.
 */
export function claimKey(spec: NodeTaskSpec): string {
  switch (spec.type) {
    case 'index-build':
      return `index-build/${spec.params.collectionId}/${spec.params.segmentId}/${spec.params.indexId}`;
    case 'compaction-merge': {
      const p = spec.params;
      return `compaction-merge/${JSON.stringify([
        p.collection_id,
        p.source_segment_ids,
        p.fields.map((f) => [f.field_id, f.kind]),
        p.sources.map((x) => [Object.entries(x.binlogs).sort(([a], [b]) => Number(a) - Number(b)), x.keep_ranges]),
        (p.indexes ?? []).map((i) => i.index_id),
      ])}`;
    }
    default: {
      const never: never = spec;
      throw new Error(`assertion failed: node task type ${String((never as { type: unknown }).type)}`);
    }
  }
}

export type NodeTaskOutcome =
  | { readonly state: 'Completed'; readonly built?: WireBuiltIndex | undefined; readonly merged?: WireMerged | undefined }
  | { readonly state: 'Failed'; readonly reason: string };

interface Active {
  rec: NodeTaskRecord;
  readonly key: string;
  /** Someone in this process waits for it (false for a task adopted at restart until it is submitted again). */
  claimed: boolean;
  readonly done: Promise<NodeTaskOutcome>;
  readonly resolve: (o: NodeTaskOutcome) => void;
  outcome?: NodeTaskOutcome | undefined;
}

export class NodeTaskDispatcher {
  readonly #store: NodeTaskStore;
  readonly #nodes: TaskNodes;
  readonly #ids: IdSource;
  readonly #clock: Clock;
  readonly #log: CopyLogger;
  readonly #opts: NodeTaskDispatcherOptions;
  readonly #active = new Map<number, Active>();
  readonly #loop: LoopRunner;
  readonly #unclaimedTimeoutMs: number;
  #initialized: Promise<void> | undefined;
  #markInitialized: () => void = () => {};
  readonly #ready = new Promise<void>((r) => (this.#markInitialized = r));
  #initAtMs = 0;
  #stopping = false;
  /** Dispatched runs a watcher is asking about, by `taskId/version` (at most one per dispatch). */
  readonly #watched = new Set<string>();
  readonly #longPollMs: number;

  constructor(deps: { store: NodeTaskStore; nodes: TaskNodes; ids: IdSource; clock: Clock; log: CopyLogger }, opts: NodeTaskDispatcherOptions) {
    for (const [k, v] of Object.entries(opts)) {
      if (k === 'longPollMs' && v === 0) continue;
      if (v !== undefined && !(Number.isInteger(v) && v > 0)) throw new Error(`assertion failed: ${k} ${String(v)} must be > 0`);
    }
    this.#unclaimedTimeoutMs = opts.unclaimedTimeoutMs ?? UNCLAIMED_TIMEOUT_MS_DEFAULT;
    this.#longPollMs = opts.longPollMs ?? NODE_TASK_LONG_POLL_MS_DEFAULT;
    this.#store = deps.store;
    this.#nodes = deps.nodes;
    this.#ids = deps.ids;
    this.#clock = deps.clock;
    this.#log = deps.log;
    this.#opts = opts;
    this.#loop = new LoopRunner('node-tasks', opts.tickIntervalMs, () => this.#pass(), { error: (f, m) => deps.log.warn(f, m) });
  }

  /**
   * Re-attaches to the records a previous coordinator left (once; `submit` waits for it). A Dispatched
   * record is adopted as it is: the next pass asks its node about its version. A Waiting one ran nothing
   * that could be collected, and a terminal one lost its outcome with its waiter: both are deleted (the
   * scheduler or the compactor submits that work again if it still wants it).
   */
  init(): Promise<void> {
    this.#initialized ??= this.#adopt().then(() => this.#markInitialized());
    return this.#initialized;
  }

  async #adopt(): Promise<void> {
    this.#initAtMs = this.#clock.nowMs();
    for (const rec of await this.#store.list()) {
      if (rec.state !== 'Dispatched') {
        await this.#store.delete(rec.id);
        continue;
      }
      const a = this.#newActive(rec, false);
      this.#active.set(rec.id, a);
      this.#log.info({ taskId: rec.id, nodeId: rec.nodeId, version: rec.version }, `${rec.type} task adopted after a restart`);
    }
  }

  start(): void {
    this.#loop.start();
  }

  async stop(): Promise<void> {
    this.#stopping = true;
    // A submit still waiting for init must not wait forever.
    this.#markInitialized();
    await this.#loop.stop();
    for (const a of this.#active.values()) a.resolve({ state: 'Failed', reason: `task ${a.rec.id}: the coordinator is stopping` });
  }

  /** Runs a pass soon (a node joined, a watcher saw a task end). */
  kick(): void {
    void this.#loop.kick();
  }

  /** Free slots over the Healthy nodes, and their total (a scheduler sizes its concurrency by it). */
  slots(): { readonly total: number; readonly free: number } {
    let total = 0;
    for (const n of this.#nodes.nodes()) if (n.usedSlots < n.slots) total += n.slots;
    let used = 0;
    for (const a of this.#active.values()) if (a.rec.state === 'Dispatched') used++;
    return { total, free: Math.max(0, total - used) };
  }

  /**
   * Persists a Waiting task and returns its id (also the build id of an index build). The same work
   * adopted at restart and not claimed yet is claimed instead: its id is returned, and `task(id)` holds
   * its spec (a merge's target and output keys are the adopted ones then).
   */
  async submit(spec: NodeTaskSpec): Promise<number> {
    await this.#ready;
    if (this.#stopping) throw quiverError('ServiceNotReady', `the coordinator is stopping (${spec.type} task not submitted)`);
    const key = claimKey(spec);
    for (const a of this.#active.values()) {
      if (a.claimed || a.key !== key) continue;
      a.claimed = true;
      this.#log.info({ taskId: a.rec.id, state: a.outcome?.state ?? a.rec.state }, `${a.rec.type} task claimed after a restart`);
      return a.rec.id;
    }
    const id = await this.#ids.alloc();
    const now = this.#clock.nowMs();
    const rec: NodeTaskRecord = { id, ...spec, state: 'Waiting', nodeId: '', version: 0, attempts: 0, reason: '', createdAtMs: now, dispatchedAtMs: 0 };
    await this.#store.create(rec);
    this.#active.set(id, this.#newActive(rec, true));
    this.kick();
    return id;
  }

  #newActive(rec: NodeTaskRecord, claimed: boolean): Active {
    let settle!: (o: NodeTaskOutcome) => void;
    const done = new Promise<NodeTaskOutcome>((r) => (settle = r));
    const a: Active = {
      rec,
      key: claimKey(rec),
      claimed,
      done,
      resolve: (o) => {
        if (a.outcome !== undefined) return;
        a.outcome = o;
        settle(o);
      },
    };
    return a;
  }

  /** True when a task adopted at restart and not claimed yet does this work (waits for `init`). */
  async holds(spec: NodeTaskSpec): Promise<boolean> {
    await this.#ready;
    const key = claimKey(spec);
    return [...this.#active.values()].some((a) => !a.claimed && a.key === key);
  }

  /** The task's record as this coordinator sees it (undefined once forgotten). */
  task(id: number): NodeTaskRecord | undefined {
    return this.#active.get(id)?.rec;
  }

  /** Tasks not finished yet (`GET /cluster` lists them as jobs, with why they wait). */
  pending(): NodeTaskRecord[] {
    return [...this.#active.values()].filter((a) => a.outcome === undefined).map((a) => a.rec);
  }

  outcome(id: number): NodeTaskOutcome | undefined {
    return this.#active.get(id)?.outcome;
  }

  wait(id: number): Promise<NodeTaskOutcome> {
    const a = this.#active.get(id);
    if (a === undefined) throw quiverError('ServiceInternal', `node task ${id} is unknown`);
    return a.done;
  }

  /** Forgets a finished task (its record is already deleted); a running one is cancelled on its node. */
  async forget(id: number): Promise<void> {
    const a = this.#active.get(id);
    if (a === undefined) return;
    this.#active.delete(id);
    if (a.outcome !== undefined) return;
    if (a.rec.state === 'Dispatched') await this.#drop(a.rec);
    await this.#store.delete(id);
    a.resolve({ state: 'Failed', reason: `task ${id} was cancelled` });
  }

  /** One pass over every active task (tests call it with a fake clock). */
  tick(): Promise<void> {
    return this.#loop.tick();
  }

  async #pass(): Promise<void> {
    const now = this.#clock.nowMs();
    for (const a of [...this.#active.values()]) {
      if (!a.claimed && now - this.#initAtMs > this.#unclaimedTimeoutMs) {
        await this.#abandon(a);
        continue;
      }
      if (a.outcome !== undefined) continue;
      try {
        await this.#advance(a);
      } catch (err) {
        // A metadata error: the record is as it was; the next pass tries again.
        this.#log.warn({ taskId: a.rec.id, err }, 'node task pass failed; retrying next pass');
      }
    }
  }

  async #advance(a: Active): Promise<void> {
    const rec = a.rec;
    const now = this.#clock.nowMs();
    const what =
      rec.type === 'index-build'
        ? `index-build task ${rec.id} (segment ${rec.params.segmentId}, index ${rec.params.indexId})`
        : `compaction-merge task ${rec.id} (segments ${rec.params.source_segment_ids.join(',')} → ${rec.params.target_segment_id})`;
    if (now - rec.createdAtMs > this.#opts.jobTimeoutMs) {
      const where = rec.state === 'Dispatched' ? ` on data node ${rec.nodeId}` : ' waiting for a data node';
      if (rec.state === 'Dispatched') await this.#drop(rec);
      return this.#finish(a, 'Failed', { reason: `${what} timed out${where} after ${this.#opts.jobTimeoutMs} ms (job timeout)` });
    }
    switch (rec.state) {
      case 'Waiting':
        return this.#dispatch(a, what);
      case 'Dispatched':
        return this.#poll(a, what, now);
      case 'Completed':
      case 'Failed':
        return;
      default: {
        const never: never = rec.state;
        throw new Error(`assertion failed: node task state ${String(never)}`);
      }
    }
  }

  async #dispatch(a: Active, what: string): Promise<void> {
    const node = this.#pickNode();
    if (node === undefined) {
      const reason = this.#nodes.nodes().length === 0 ? 'waiting for a data node to register' : 'waiting for a free data node slot';
      if (a.rec.reason !== reason) a.rec = { ...a.rec, reason };
      return;
    }
    const rec = await this.#store.update(a.rec.id, 'Waiting', a.rec.version, {
      state: 'Dispatched',
      nodeId: node,
      version: a.rec.version + 1,
      dispatchedAtMs: this.#clock.nowMs(),
      reason: '',
    });
    if (rec === undefined) throw quiverError('ServiceInternal', `${what}: its record changed under the dispatcher`);
    a.rec = rec;
    try {
      const { session, rpc } = this.#nodes.client(node);
      await rpc.createTask(createRequest(rec, session));
    } catch (e) {
      if (isQuiverError(e) && !e.retriable) {
        // The node refused (full, fenced, cannot build): not a lost run, try again (maybe elsewhere).
        const back = await this.#store.update(rec.id, 'Dispatched', rec.version, {
          state: 'Waiting',
          reason: `refused by data node ${node}: ${e.message}`,
        });
        if (back) a.rec = back;
        return;
      }
      this.#log.warn({ taskId: rec.id, version: rec.version, nodeId: node, err: e }, `${rec.type} dispatch unconfirmed; polling decides`);
    }
    this.#watch(rec);
  }

  /**
   * Asks the node about one dispatched run with long polls until it is no longer running there, then
   * kicks a pass (which does the real poll and the CAS): a build or merge that ends is collected at once,
   * not at the next fallback tick. Ends quietly on any error, when the run is no longer the task's
   * current one, or at stop: the passes cover those cases.
   */
  #watch(rec: NodeTaskRecord): void {
    const key = `${rec.id}/${rec.version}`;
    if (this.#longPollMs === 0 || this.#watched.has(key)) return;
    this.#watched.add(key);
    const current = (): boolean => {
      const a = this.#active.get(rec.id);
      return !this.#stopping && a !== undefined && a.outcome === undefined && a.rec.state === 'Dispatched' && a.rec.version === rec.version;
    };
    void (async () => {
      try {
        while (current()) {
          const askedAtMs = this.#clock.nowMs();
          const { session, rpc } = this.#nodes.client(rec.nodeId);
          const r = await rpc.queryTask({ node_id: session, task_id: rec.id, version: rec.version, wait_ms: this.#longPollMs });
          if (r.state !== 'IN_PROGRESS' || r.version !== rec.version) {
            this.kick();
            return;
          }
          const waitedMs = this.#clock.nowMs() - askedAtMs;
          if (waitedMs < WATCH_INTERVAL_MS_MIN) await this.#clock.sleep(WATCH_INTERVAL_MS_MIN - waitedMs);
        }
      } catch {
        // Transport error, node gone: the passes poll and decide.
      } finally {
        this.#watched.delete(key);
      }
    })();
  }

  async #poll(a: Active, what: string, now: number): Promise<void> {
    const rec = a.rec;
    const live = this.#nodes.nodes().some((n) => n.nodeId === rec.nodeId);
    if (!live) return this.#lost(a, what, `data node ${rec.nodeId} is gone`);
    if (now - rec.dispatchedAtMs > this.#opts.taskTimeoutMs) {
      await this.#drop(rec);
      return this.#lost(a, what, `timed out on data node ${rec.nodeId} after ${this.#opts.taskTimeoutMs} ms`);
    }
    let r: QueryTaskResponse;
    try {
      const { session, rpc } = this.#nodes.client(rec.nodeId);
      r = await rpc.queryTask({ node_id: session, task_id: rec.id, version: rec.version });
    } catch (e) {
      this.#log.warn({ taskId: rec.id, nodeId: rec.nodeId, err: e }, `${rec.type} poll failed; asking again next pass`);
      return;
    }
    if (r.state === 'UNKNOWN') return this.#lost(a, what, `data node ${rec.nodeId} does not know it`);
    // Fencing: an answer about another run of this task says nothing about the current one.
    if (r.version !== rec.version) return;
    if (r.state === 'IN_PROGRESS') return this.#watch(rec); // adopted at restart, or its watcher ended

    if (r.state === 'FAILED') return this.#finish(a, 'Failed', { reason: `${what} failed on data node ${rec.nodeId}: ${r.reason}` });
    const built = r.built_index ?? undefined;
    const merged = r.merged ?? undefined;
    if ((rec.type === 'index-build' ? built : merged) === undefined) {
      return this.#finish(a, 'Failed', { reason: `${what}: data node ${rec.nodeId} completed it without a result` });
    }
    return this.#finish(a, 'Completed', { built, merged });
  }

  /** A run ended without an answer (loss or timeout): re-dispatch, or fail once attempts are used up. */
  async #lost(a: Active, what: string, why: string): Promise<void> {
    const attempts = a.rec.attempts + 1;
    if (attempts >= this.#opts.attemptsMax) {
      return this.#finish(a, 'Failed', { reason: `${what} ${why}; failed after ${attempts} attempts`, attempts });
    }
    this.#log.warn({ taskId: a.rec.id, nodeId: a.rec.nodeId, attempts }, `${what} ${why}; re-dispatching`);
    const rec = await this.#store.update(a.rec.id, 'Dispatched', a.rec.version, { state: 'Waiting', attempts, reason: why });
    if (rec) a.rec = rec;
  }

  async #finish(
    a: Active,
    state: 'Completed' | 'Failed',
    x: { reason?: string; built?: WireBuiltIndex | undefined; merged?: WireMerged | undefined; attempts?: number },
  ): Promise<void> {
    const rec = await this.#store.update(a.rec.id, a.rec.state, a.rec.version, {
      state,
      reason: x.reason ?? '',
      ...(x.attempts !== undefined ? { attempts: x.attempts } : {}),
    });
    if (rec === undefined) throw quiverError('ServiceInternal', `${a.rec.type} task ${a.rec.id}: its record changed under the dispatcher`);
    a.rec = rec;
    // The outcome lives in memory with its waiter; the record has done its job (fencing, restart cleanup).
    await this.#store.delete(rec.id);
    a.resolve(state === 'Completed' ? { state, built: x.built, merged: x.merged } : { state, reason: x.reason ?? '' });
  }

  /** An adopted task nobody submitted again: nothing will commit its result. */
  async #abandon(a: Active): Promise<void> {
    this.#active.delete(a.rec.id);
    if (a.outcome === undefined) {
      if (a.rec.state === 'Dispatched') await this.#drop(a.rec);
      await this.#store.delete(a.rec.id);
      a.resolve({ state: 'Failed', reason: `task ${a.rec.id} was not claimed after a restart` });
    }
    this.#log.info({ taskId: a.rec.id, nodeId: a.rec.nodeId }, `${a.rec.type} task adopted after a restart and not claimed: dropped`);
  }

  async #drop(rec: NodeTaskRecord): Promise<void> {
    try {
      const { session, rpc } = this.#nodes.client(rec.nodeId);
      await rpc.dropTask({ node_id: session, task_id: rec.id });
    } catch (e) {
      // Gone or unreachable: its answer is fenced by version anyway.
      this.#log.warn({ taskId: rec.id, nodeId: rec.nodeId, err: e }, 'dropping a node task failed');
    }
  }

  /** The Healthy node with the most free slots after what this dispatcher placed there. */
  #pickNode(): string | undefined {
    const placed = new Map<string, number>();
    for (const a of this.#active.values()) if (a.rec.state === 'Dispatched') placed.set(a.rec.nodeId, (placed.get(a.rec.nodeId) ?? 0) + 1);
    let best: { nodeId: string; free: number } | undefined;
    for (const n of this.#nodes.nodes()) {
      const free = n.slots - n.usedSlots - (placed.get(n.nodeId) ?? 0);
      if (free > 0 && (best === undefined || free > best.free)) best = { nodeId: n.nodeId, free };
    }
    return best?.nodeId;
  }
}

function createRequest(rec: NodeTaskRecord, session: number): CreateTaskRequest {
  const base = { node_id: session, task_id: rec.id, version: rec.version };
  switch (rec.type) {
    case 'index-build': {
      const p = rec.params;
      return { ...base, type: 'INDEX_BUILD', index_build: { collection_id: p.collectionId, segment_id: p.segmentId, index_id: p.indexId } };
    }
    case 'compaction-merge':
      return { ...base, type: 'COMPACTION_MERGE', compaction_merge: rec.params };
    default: {
      const never: never = rec;
      throw new Error(`assertion failed: node task type ${String((never as { type: unknown }).type)}`);
    }
  }
}
