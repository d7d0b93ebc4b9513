/**
 * The coordinator's live view of its data nodes, fed by two sources (states and transitions: types.ts):
 *
 * - the session watch (SessionStore.watch): who holds a lease. A node joins when its session appears and
 *   is Lost when it disappears. Only this makes a node Lost: losing a lease is the one confirmed loss on
 *   which its tasks may be re-dispatched (a slow or unreachable node is only Suspect).
 * - heartbeats (`recordHeartbeat`, from the inspector's QuerySlots answers): slots and running tasks,
 *   and the time the node last answered. `tick()` turns a node that stopped answering Suspect.
 *
 * A Lost node is never revived: its id is never handed out again, and a heartbeat or a session carrying a
 * Lost id is ignored (a late answer from a node that came back from a freeze under its old id).
 */

import type { Clock } from '../../common/clock.js';
import { LoopRunner, type LoopLogger } from '../../common/loop.js';
import type { NodeSessionInfo, SessionStore } from '../../meta/sessions.js';
import { assertNodeTransition, type ClusterNodesStatus, type NodeHeartbeat, type NodeState, type NodeStatus } from './types.js';

export interface NodeRegistryOptions {
  /** A node that has not answered for this long is Suspect (no new work goes to it). */
  readonly suspectAfterMs: number;
  /** How long a Lost node stays listed in `status()`. */
  readonly lostRetentionMs: number;
  /** Period of the background `tick()` once started (default suspectAfterMs / 4). */
  readonly tickIntervalMs?: number | undefined;
}

export interface NodeRegistryDeps {
  readonly sessions: Pick<SessionStore, 'watch'>;
  readonly clock: Clock;
  readonly log: LoopLogger;
}

export const NODE_SUSPECT_AFTER_MS_DEFAULT = 15_000;
export const NODE_LOST_RETENTION_MS_DEFAULT = 10 * 60_000;

/**
 * A node as the registry holds it (read-only outside): its session record (so the registry can stand
 * wherever a list of live sessions is expected) plus what the coordinator learnt about it.
 */
export interface RegisteredNode extends NodeStatus, NodeSessionInfo {
  readonly session: NodeSessionInfo;
  /** Coordinator clock time of the transition to Lost. */
  readonly lostAtMs: number | undefined;
}

export type NodeJoinedListener = (node: RegisteredNode) => void;
export type NodeLostListener = (node: RegisteredNode) => void;

export class NodeRegistry {
  readonly #sessions: Pick<SessionStore, 'watch'>;
  readonly #clock: Clock;
  readonly #suspectAfterMs: number;
  readonly #lostRetentionMs: number;
  readonly #nodes = new Map<number, RegisteredNode>();
  readonly #joined = new Set<NodeJoinedListener>();
  readonly #lost = new Set<NodeLostListener>();
  readonly #loop: LoopRunner;
  #unwatch: (() => void) | undefined;
  #stopped = false;

  constructor(deps: NodeRegistryDeps, options: NodeRegistryOptions) {
    if (!(options.suspectAfterMs > 0) || !(options.lostRetentionMs >= 0)) {
      throw new Error(`assertion failed: node registry suspectAfterMs ${options.suspectAfterMs} > 0, lostRetentionMs ${options.lostRetentionMs} >= 0`);
    }
    this.#sessions = deps.sessions;
    this.#clock = deps.clock;
    this.#suspectAfterMs = options.suspectAfterMs;
    this.#lostRetentionMs = options.lostRetentionMs;
    const intervalMs = options.tickIntervalMs ?? Math.max(100, Math.floor(options.suspectAfterMs / 4));
    this.#loop = new LoopRunner('node-registry', intervalMs, async () => this.tick(), deps.log, { immediate: false });
  }

  /** Starts watching sessions and the suspect check. Idempotent; a stopped registry stays stopped. */
  start(): void {
    if (this.#unwatch !== undefined || this.#stopped) return;
    this.#unwatch = this.#sessions.watch('datanode', (nodes) => this.#applySessions(nodes));
    this.#loop.start();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.#unwatch?.();
    this.#unwatch = undefined;
    await this.#loop.stop();
  }

  /** Nodes holding a session (Healthy or Suspect), by id. */
  nodes(): readonly RegisteredNode[] {
    return [...this.#nodes.values()].filter((n) => n.state !== 'Lost').sort((a, b) => a.nodeId - b.nodeId);
  }

  /** Healthy nodes only: where new work may go (a Suspect node keeps its tasks but gets no new ones). */
  dispatchable(): readonly RegisteredNode[] {
    return this.nodes().filter((n) => n.state === 'Healthy');
  }

  node(nodeId: number): RegisteredNode | undefined {
    return this.#nodes.get(nodeId);
  }

  /** Called for every node that joins (and at subscribe time for every node already there). */
  onJoined(listener: NodeJoinedListener): () => void {
    this.#joined.add(listener);
    for (const n of this.nodes()) listener(n);
    return () => void this.#joined.delete(listener);
  }

  /** Called once per node whose session is gone. */
  onLost(listener: NodeLostListener): () => void {
    this.#lost.add(listener);
    return () => void this.#lost.delete(listener);
  }

  /**
   * Records what a node answered. Returns false (and records nothing) for a node that is not live: unknown
   * (its session not seen yet, or forgotten) or Lost. A Suspect node becomes Healthy again.
   */
  recordHeartbeat(nodeId: number, heartbeat: NodeHeartbeat): boolean {
    const node = this.#nodes.get(nodeId);
    if (node === undefined || node.state === 'Lost') return false;
    if (!(Number.isSafeInteger(heartbeat.slotsTotal) && Number.isSafeInteger(heartbeat.slotsUsed) && heartbeat.slotsUsed >= 0)) {
      throw new Error(`assertion failed: node ${nodeId} heartbeat slots ${heartbeat.slotsUsed}/${heartbeat.slotsTotal}`);
    }
    this.#set(node, {
      slotsTotal: heartbeat.slotsTotal,
      slotsUsed: heartbeat.slotsUsed,
      tasksByType: { ...heartbeat.tasksByType },
      lastHeartbeatMs: this.#clock.nowMs(),
      state: 'Healthy',
    });
    return true;
  }

  /** Healthy nodes silent past suspectAfterMs become Suspect; Lost nodes past their retention are forgotten. */
  async tick(): Promise<void> {
    const now = this.#clock.nowMs();
    for (const node of [...this.#nodes.values()]) {
      if (node.state === 'Healthy' && now - node.lastHeartbeatMs >= this.#suspectAfterMs) this.#set(node, { state: 'Suspect' });
      else if (node.state === 'Lost' && now - (node.lostAtMs ?? now) >= this.#lostRetentionMs) this.#nodes.delete(node.nodeId);
    }
  }

  status(): ClusterNodesStatus {
    const nodes = [...this.#nodes.values()]
      .sort((a, b) => a.nodeId - b.nodeId)
      .map((n): NodeStatus => ({
        nodeId: n.nodeId,
        address: n.address,
        metricsAddress: n.metricsAddress,
        slotsTotal: n.slotsTotal,
        slotsUsed: n.slotsUsed,
        tasksByType: n.tasksByType,
        lastHeartbeatMs: n.lastHeartbeatMs,
        state: n.state,
      }));
    return { nowMs: this.#clock.nowMs(), nodes };
  }

  #applySessions(sessions: readonly NodeSessionInfo[]): void {
    const now = this.#clock.nowMs();
    const live = new Set(sessions.map((s) => s.nodeId));
    const joined: RegisteredNode[] = [];
    for (const s of sessions) {
      // A Lost id that shows up again stays Lost (ids are never reused, so this is a stale view).
      if (this.#nodes.has(s.nodeId)) continue;
      const node: RegisteredNode = {
        ...s,
        slotsTotal: s.slots,
        slotsUsed: 0,
        tasksByType: {},
        lastHeartbeatMs: now,
        state: 'Healthy',
        session: s,
        lostAtMs: undefined,
      };
      this.#nodes.set(s.nodeId, node);
      joined.push(node);
    }
    const lost: RegisteredNode[] = [];
    for (const node of [...this.#nodes.values()]) {
      if (node.state !== 'Lost' && !live.has(node.nodeId)) lost.push(this.#set(node, { state: 'Lost', lostAtMs: now }));
    }
    for (const n of joined) for (const l of [...this.#joined]) l(n);
    for (const n of lost) for (const l of [...this.#lost]) l(n);
  }

  /** Replaces a node's record, checking the state transition. */
  #set(node: RegisteredNode, patch: Partial<Pick<RegisteredNode, 'state' | 'lostAtMs' | keyof NodeHeartbeat | 'lastHeartbeatMs'>>): RegisteredNode {
    const to: NodeState = patch.state ?? node.state;
    if (to !== node.state) assertNodeTransition(node.state, to);
    const next: RegisteredNode = { ...node, ...patch };
    this.#nodes.set(node.nodeId, next);
    return next;
  }
}
