/**
 * The coordinator's view of its data nodes (NodeRegistry) and the shape of `GET /cluster` that
 * `quiver cluster status` prints.
 *
 * Node states:
 *
 *        (join: session appears)
 *                 │
 *                 ▼        (1) no heartbeat for suspectAfterMs
 *             Healthy ─────────────────────────────▶ Suspect
 *                 ▲  │                                │  │
 *                 │  │ (3) session gone               │  │ (4) session gone
 *                 │  ▼                                │  ▼
 *                 │ Lost ◀────────────────────────────┼─ Lost
 *                 └──────── (2) heartbeat ────────────┘
 *
 * (1) Healthy → Suspect: the node still holds its lease but has not answered for a while (slow, or
 *     partitioned from the coordinator but not from etcd). Nothing new is dispatched to it; its tasks are
 *     not re-dispatched either, because it may still be running them.
 * (2) Suspect → Healthy: a heartbeat arrived.
 * (3), (4) → Lost: its session is gone (lease expired or revoked). Final: a node that comes back
 *     registers under a new id, so anything still carrying the old id is fenced. A Lost node stays in
 *     `status()` for `lostRetentionMs` so that an operator sees what went away.
 */

export type NodeState = 'Healthy' | 'Suspect' | 'Lost';

export const NODE_TRANSITIONS: Readonly<Record<NodeState, readonly NodeState[]>> = {
  Healthy: ['Suspect', 'Lost'], // (1), (3)
  Suspect: ['Healthy', 'Lost'], // (2), (4)
  Lost: [],
};

/** Programmer error on an illegal transition (a same-state update is not a transition: don't call this). */
export function assertNodeTransition(from: NodeState, to: NodeState): void {
  if (!NODE_TRANSITIONS[from].includes(to)) throw new Error(`assertion failed: illegal node transition ${from} → ${to}`);
}

/** What a node reports about itself (the answer to QuerySlots). */
export interface NodeHeartbeat {
  readonly slotsTotal: number;
  readonly slotsUsed: number;
  /** Tasks running on the node, by task type (e.g. 'copy-segment': 2). */
  readonly tasksByType: Readonly<Record<string, number>>;
}

export interface NodeStatus extends NodeHeartbeat {
  readonly nodeId: number;
  /** host:port of the node's task service. */
  readonly address: string;
  /** host:port of the node's /metrics and /healthz. */
  readonly metricsAddress: string;
  /** Coordinator clock time of the last heartbeat (the join counts as the first). */
  readonly lastHeartbeatMs: number;
  readonly state: NodeState;
}

export interface ClusterNodesStatus {
  /** Coordinator clock time of this answer: ages are `nowMs - lastHeartbeatMs`, whatever the reader's clock says. */
  readonly nowMs: number;
  /** By node id ascending; Lost nodes included for a while. */
  readonly nodes: readonly NodeStatus[];
}

/** A job in flight, as `GET /cluster` lists it. */
export interface ClusterJobStatus {
  readonly jobId: string;
  /** e.g. 'restore', 'index-build', 'compaction'. */
  readonly kind: string;
  readonly state: string;
  /** 0..100. */
  readonly progress: number;
  /** Why it waits or failed, when it does. */
  readonly reason?: string | undefined;
}

/** The body of `GET /cluster` on the serving process's metrics port. */
export interface ClusterStatus extends ClusterNodesStatus {
  readonly jobs: readonly ClusterJobStatus[];
}
