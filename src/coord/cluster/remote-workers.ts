/**
 * RemoteWorkerPool: the coordinator's `WorkerClient` over the data nodes registered in sessions
 * (`quiver datanode` processes), speaking the task protocol (proto/datanode.proto).
 *
 * Liveness comes from the sessions alone (`LiveDataNodes`, fed by a watch on `session/datanode-*`):
 * `nodes()` is the live set, so the inspector re-queues the tasks of a node whose lease expired or that
 * deregistered. An RPC error never counts as a loss (Milvus restores sat for a day on a lost task, and
 * failed whole on one RPC error):
 *   - dispatch: a refusal the node decided (full, cancelled, older version, not that node) throws, and
 *     the inspector re-queues; a transport error resolves as "maybe dispatched": the next poll asks, and
 *     a node that never got the task answers UNKNOWN, which is the confirmed loss that re-queues it;
 *   - poll: a transport error throws; the inspector keeps the task as it is and asks again next pass;
 *   - cancel: retried a few times; a node that cannot be reached is lost or about to be.
 *
 * Node ids on the coordinator side are `datanode-{sessionId}`, persisted in each task; session ids are
 * never reused, so a task placed on a node that came back under a new session is re-queued, not resumed.
 */

import { systemClock, type Clock } from '../../common/clock.js';
import { isQuiverError, quiverError } from '../../common/errors.js';
import type { NodeSessionInfo } from '../../meta/sessions.js';
import type { NodeHeartbeat, NodeState } from './types.js';
import { DataNodeTaskClient, type QueryTaskResponse } from '../../taskrpc/protocol.js';
import { silentLogger, type CopyLogger, type CopyTask, type TaskPoll, type WorkerClient, type WorkerNodeInfo } from '../copy/types.js';

/**
 * The data nodes holding a session, as the node registry shows them. A Suspect node (live lease, no
 * recent answer) keeps its tasks but gets no new ones.
 */
export interface LiveDataNodes {
  nodes(): readonly { readonly session: NodeSessionInfo; readonly state: NodeState }[];
}

/** The subset of the task client the pool uses (tests substitute it). */
export type TaskRpc = Pick<DataNodeTaskClient, 'createTask' | 'queryTask' | 'dropTask' | 'querySlots' | 'close'>;

export interface RemoteWorkerPoolDeps {
  readonly live: LiveDataNodes;
  readonly connect?: ((address: string) => TaskRpc) | undefined;
  readonly log?: CopyLogger | undefined;
  readonly clock?: Clock | undefined;
  /**
   * Called when a dispatched task is seen finished (or unknown) by its watcher: wire it to the inspector's
   * kick, so that a remote copy is collected at once instead of at the next fallback tick (2 s).
   */
  readonly onTaskFinished?: (() => void) | undefined;
  /** Least time between two questions of a dispatched task's watcher (default 100 ms). */
  readonly watchIntervalMs?: number | undefined;
  /** How long a watcher's QueryTask asks the node to hold an IN_PROGRESS answer (default 2 s; 0: no long poll). */
  readonly longPollMs?: number | undefined;
}

export const WATCH_INTERVAL_MS_DEFAULT = 100;
export const LONG_POLL_MS_DEFAULT = 2_000;

export const REMOTE_NODE_PREFIX = 'datanode-';
/** Final answers kept for the next poll at most (a task cancelled meanwhile is never polled again). */
const HEARD_MAX = 4_096;
const CANCEL_ATTEMPTS_MAX = 3;

export function remoteNodeId(sessionNodeId: number): string {
  return `${REMOTE_NODE_PREFIX}${sessionNodeId}`;
}

/** The session id of a pool node id, or undefined when it is not a remote node's. */
export function sessionIdOf(nodeId: string): number | undefined {
  if (!nodeId.startsWith(REMOTE_NODE_PREFIX)) return undefined;
  const n = Number(nodeId.slice(REMOTE_NODE_PREFIX.length));
  return Number.isSafeInteger(n) && n > 0 ? n : undefined;
}

export class RemoteWorkerPool implements WorkerClient {
  readonly #live: LiveDataNodes;
  readonly #connect: (address: string) => TaskRpc;
  readonly #log: CopyLogger;
  /** One client per live session (keyed by session id; the address is fixed for a session's life). */
  readonly #clients = new Map<number, { readonly address: string; readonly rpc: TaskRpc }>();
  readonly #clock: Clock;
  readonly #onTaskFinished: () => void;
  readonly #watchIntervalMs: number;
  readonly #longPollMs: number;
  /** Tasks watched now, by `taskId/version` (bounded by the slots of the live nodes: one per dispatch). */
  readonly #watched = new Set<string>();
  /**
   * The final answer a watcher heard, by `taskId/version`, handed to the inspector's next poll of that
   * task instead of a second QueryTask. Bounded: dropped when read, with their node, and beyond HEARD_MAX.
   */
  readonly #heard = new Map<string, { readonly nodeId: string; readonly poll: TaskPoll }>();
  #closed = false;

  constructor(deps: RemoteWorkerPoolDeps) {
    this.#live = deps.live;
    this.#connect = deps.connect ?? ((address) => new DataNodeTaskClient(address));
    this.#log = deps.log ?? silentLogger;
    this.#clock = deps.clock ?? systemClock;
    this.#onTaskFinished = deps.onTaskFinished ?? (() => {});
    this.#watchIntervalMs = deps.watchIntervalMs ?? WATCH_INTERVAL_MS_DEFAULT;
    this.#longPollMs = deps.longPollMs ?? LONG_POLL_MS_DEFAULT;
  }

  nodes(): readonly WorkerNodeInfo[] {
    if (this.#closed) return [];
    const live = this.#sessions();
    this.#prune(live);
    // usedSlots 0 for a Healthy node: the inspector counts the InProgress tasks it placed on each node
    // itself, and a node that is full after all refuses the dispatch (the task stays queued). A Suspect
    // node is listed (its tasks are not lost) with no free slot.
    return this.#live.nodes().map((n) => ({
      nodeId: remoteNodeId(n.session.nodeId),
      slots: n.session.slots,
      usedSlots: n.state === 'Healthy' ? 0 : n.session.slots,
    }));
  }

  /**
   * Asks every live node for its slots and running tasks (QuerySlots) and reports each answer to
   * `record` (the node registry's heartbeat). A node that does not answer is simply not reported.
   */
  async heartbeat(record: (sessionNodeId: number, heartbeat: NodeHeartbeat) => void): Promise<void> {
    await Promise.all(
      this.#sessions().map(async (n) => {
        try {
          const a = await this.#node(remoteNodeId(n.nodeId), 'query slots').rpc.querySlots();
          const tasksByType: Record<string, number> = {};
          for (const t of a.tasks) {
            if (t.state !== 'IN_PROGRESS') continue;
            const type = t.type.toLowerCase().replace(/_/g, '-');
            tasksByType[type] = (tasksByType[type] ?? 0) + 1;
          }
          record(n.nodeId, { slotsTotal: a.slots_total, slotsUsed: a.slots_used, tasksByType });
        } catch (e) {
          this.#log.warn({ nodeId: n.nodeId, err: e }, 'data node did not answer QuerySlots');
        }
      }),
    );
  }

  async dispatch(nodeId: string, task: CopyTask): Promise<void> {
    const { session, rpc } = this.#node(nodeId, `dispatch of task ${task.id}`);
    try {
      await rpc.createTask({
        node_id: session,
        task_id: task.id,
        version: task.version,
        type: 'COPY_SEGMENT',
        copy_segment: {
          source_collection_id: task.snapshot.collectionId,
          snapshot_id: task.snapshot.snapshotId,
          target_collection_id: task.targetCollectionId,
          mappings: task.mappings.map((m) => ({
            source_segment_id: m.sourceSegmentId,
            target_segment_id: m.targetSegmentId,
            target_partition_id: m.targetPartitionId,
          })),
        },
      });
    } catch (e) {
      if (isQuiverError(e) && !e.retriable) throw e;
      // Unknown whether it arrived: the next poll finds out (UNKNOWN re-queues it).
      this.#log.warn({ taskId: task.id, version: task.version, nodeId, err: e }, 'copy task dispatch unconfirmed; polling decides');
    }
    void this.#watch(nodeId, task.id, task.version);
  }

  /**
   * Asks the node about one dispatched task until it is no longer running there, then kicks the
   * inspector (which does the real poll and the CAS). Each question is a long poll: the node answers as
   * soon as the task finished, so the slot is refilled at once rather than at the next poll. A node that
   * answers IN_PROGRESS sooner than `watchIntervalMs` (it does not hold answers) is asked at that pace.
   * Ends quietly when the node leaves the live set or the pool closes: the inspector's own passes cover
   * those cases.
   */
  async #watch(nodeId: string, taskId: number, version: number): Promise<void> {
    const key = `${taskId}/${version}`;
    if (this.#watched.has(key)) return;
    this.#watched.add(key);
    try {
      while (!this.#closed) {
        const askedAtMs = this.#clock.nowMs();
        let ans: TaskPoll;
        try {
          ans = await this.#query(nodeId, taskId, version, this.#longPollMs);
        } catch (e) {
          if (isQuiverError(e, 'ServiceNotReady') && /not live|closed/.test(e.message)) return;
          await this.#clock.sleep(this.#watchIntervalMs);
          continue; // transient: ask again
        }
        if (ans.state !== 'InProgress') {
          this.#heard.set(key, { nodeId, poll: ans });
          if (this.#heard.size > HEARD_MAX) this.#heard.delete(this.#heard.keys().next().value!);
          this.#onTaskFinished();
          return;
        }
        const waitedMs = this.#clock.nowMs() - askedAtMs;
        if (waitedMs < this.#watchIntervalMs) await this.#clock.sleep(this.#watchIntervalMs - waitedMs);
      }
    } finally {
      this.#watched.delete(key);
    }
  }

  /**
   * The task's state on its node. A final answer its watcher already heard is returned without asking
   * again; a task its watcher is still asking about is running (the watcher kicks when that changes),
   * so neither costs a round trip. Otherwise (no watcher: after a coordinator restart, or the watcher
   * ended) the node is asked.
   */
  poll(nodeId: string, taskId: number, version: number): Promise<TaskPoll> {
    const key = `${taskId}/${version}`;
    const heard = this.#heard.get(key);
    if (heard !== undefined && heard.nodeId === nodeId) {
      this.#heard.delete(key);
      return Promise.resolve(heard.poll);
    }
    if (this.#watched.has(key) && this.#isLive(nodeId)) return Promise.resolve({ state: 'InProgress', version });
    return this.#query(nodeId, taskId, version, 0);
  }

  #isLive(nodeId: string): boolean {
    const session = sessionIdOf(nodeId);
    return session !== undefined && this.#sessions().some((n) => n.nodeId === session);
  }

  async #query(nodeId: string, taskId: number, version: number, waitMs: number): Promise<TaskPoll> {
    const { session, rpc } = this.#node(nodeId, `poll of task ${taskId}`);
    return toPoll(await rpc.queryTask({ node_id: session, task_id: taskId, version, ...(waitMs > 0 ? { wait_ms: waitMs } : {}) }));
  }

  async cancel(nodeId: string, taskId: number): Promise<void> {
    const session = sessionIdOf(nodeId);
    if (session === undefined || !this.#sessions().some((n) => n.nodeId === session)) return; // gone: runs nothing
    const { rpc } = this.#node(nodeId, `cancel of task ${taskId}`);
    for (let attempt = 1; ; attempt++) {
      try {
        await rpc.dropTask({ node_id: session, task_id: taskId });
        return;
      } catch (e) {
        if ((isQuiverError(e) && !e.retriable) || attempt >= CANCEL_ATTEMPTS_MAX) throw e;
      }
    }
  }

  /** The session id and client of a live node (other task types dispatch through it); throws when not live. */
  client(nodeId: string): { readonly session: number; readonly rpc: TaskRpc } {
    return this.#node(nodeId, 'task call');
  }

  close(): void {
    this.#closed = true;
    for (const c of this.#clients.values()) c.rpc.close();
    this.#clients.clear();
  }

  #node(nodeId: string, what: string): { session: number; rpc: TaskRpc } {
    if (this.#closed) throw quiverError('ServiceNotReady', `remote worker pool is closed (${what})`);
    const session = sessionIdOf(nodeId);
    const info = session === undefined ? undefined : this.#sessions().find((n) => n.nodeId === session);
    if (session === undefined || info === undefined) throw quiverError('ServiceNotReady', `data node ${nodeId} is not live (${what})`);
    let c = this.#clients.get(session);
    if (c === undefined || c.address !== info.address) {
      c?.rpc.close();
      c = { address: info.address, rpc: this.#connect(info.address) };
      this.#clients.set(session, c);
    }
    return { session, rpc: c.rpc };
  }

  #sessions(): NodeSessionInfo[] {
    return this.#live.nodes().map((n) => n.session);
  }

  /** Closes the clients of sessions that are gone (bounded: one client per live node). */
  #prune(live: readonly NodeSessionInfo[]): void {
    const ids = new Set(live.map((n) => n.nodeId));
    for (const [key, h] of this.#heard) if (!ids.has(sessionIdOf(h.nodeId) ?? -1)) this.#heard.delete(key);
    for (const [id, c] of this.#clients) {
      if (ids.has(id)) continue;
      c.rpc.close();
      this.#clients.delete(id);
    }
  }
}

function toPoll(r: QueryTaskResponse): TaskPoll {
  switch (r.state) {
    case 'UNKNOWN':
      return { state: 'Unknown' };
    case 'IN_PROGRESS':
      return { state: 'InProgress', version: r.version };
    case 'FAILED':
      return { state: 'Failed', reason: r.reason, version: r.version };
    case 'COMPLETED':
      return {
        state: 'Completed',
        version: r.version,
        results: r.copied_segments.map((s) => ({ targetSegmentId: s.target_segment_id, numRows: s.num_rows, filesCopied: s.files_copied })),
      };
    default: {
      const never: never = r.state;
      throw quiverError('ServiceInternal', `data node answered an unknown task state ${String(never)}`);
    }
  }
}

/**
 * The embedded node's pool and the remote nodes behind one `WorkerClient`: the inspector spreads tasks
 * over all of them by free slots. Calls route by node id (remote ids carry `REMOTE_NODE_PREFIX`).
 */
export class CombinedWorkers implements WorkerClient {
  readonly #local: WorkerClient | undefined;
  readonly #remote: WorkerClient;

  constructor(local: WorkerClient | undefined, remote: WorkerClient) {
    this.#local = local;
    this.#remote = remote;
  }

  nodes(): readonly WorkerNodeInfo[] {
    return [...(this.#local?.nodes() ?? []), ...this.#remote.nodes()];
  }

  dispatch(nodeId: string, task: CopyTask): Promise<void> {
    return this.#route(nodeId).dispatch(nodeId, task);
  }

  poll(nodeId: string, taskId: number, version: number): Promise<TaskPoll> {
    return this.#route(nodeId).poll(nodeId, taskId, version);
  }

  cancel(nodeId: string, taskId: number): Promise<void> {
    return this.#route(nodeId).cancel(nodeId, taskId);
  }

  #route(nodeId: string): WorkerClient {
    if (sessionIdOf(nodeId) !== undefined || this.#local === undefined) return this.#remote;
    return this.#local;
  }
}
