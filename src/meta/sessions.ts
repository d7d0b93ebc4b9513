/**
 * Node sessions (Milvus: `session/datanode-{id}` under an etcd lease). A data node registers itself under a
 * lease it keeps alive; the coordinator watches the prefix. A node is lost when its lease expires or when
 * it deregisters on a clean stop. Node ids come from a counter in the metadata store and are never reused,
 * so a node that comes back after losing its lease is a new node and its old tasks stay fenced.
 *
 * Implementations: over etcd (leases and watches), and in memory with an injected clock (the embedded
 * server and unit tests).
 */

export type SessionRole = 'datanode';

export interface NodeSessionInfo {
  readonly nodeId: number;
  readonly role: SessionRole;
  /** host:port of the node's task gRPC service. */
  readonly address: string;
  /** host:port of the node's HTTP /metrics and /healthz. */
  readonly metricsAddress: string;
  /** Tasks the node runs at once. */
  readonly slots: number;
  readonly startedAtMs: number;
  /** Quiver version of the node process. */
  readonly version: string;
}

export interface SessionRegistration {
  readonly nodeId: number;
  /**
   * Resolves once the session is gone for good: lease expired or revoked, or keep-alive failing past the
   * TTL. The node must stop accepting work then (its tasks are fenced and run elsewhere).
   */
  readonly lost: Promise<void>;
  /** Deregisters (revokes the lease). Idempotent. */
  close(): Promise<void>;
}

export interface SessionStore {
  /** Allocates a never-reused node id and registers the node under a lease of `ttlMs`, kept alive in the background. */
  register(info: Omit<NodeSessionInfo, 'nodeId'>, ttlMs: number): Promise<SessionRegistration>;
  /** Live sessions of a role, by node id ascending. */
  list(role: SessionRole): Promise<readonly NodeSessionInfo[]>;
  /**
   * Calls `onChange` with the full live set of the role, once at start and after every change (register,
   * deregister, expiry). Returns a function that stops watching.
   */
  watch(role: SessionRole, onChange: (nodes: readonly NodeSessionInfo[]) => void): () => void;
  close(): Promise<void>;
}

/** Default session lease (Milvus: 10 s). */
export const DEFAULT_SESSION_TTL_MS = 10_000;
