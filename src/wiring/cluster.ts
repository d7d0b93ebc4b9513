import type { Logger } from 'pino';
import type { Config } from '../common/config.js';
import { quiverError } from '../common/errors.js';
import { jobProgress, type CopyJobStore, type WorkerClient } from '../coord/copy/index.js';
import { CombinedWorkers, RemoteWorkerPool, remoteNodeId, type LiveDataNodes } from '../coord/cluster/remote-workers.js';
import { InProcessWorkerPool } from '../datanode/copy-worker/index.js';
import type { NodeSessionInfo, SessionStore } from '../meta/sessions.js';
import type { ObjectStore } from '../storage/object-store.js';
import type { MetaKV } from '../meta/meta-kv.js';
import { openMeta, parseMetaUrl, type MetaLocation } from '../meta/open-meta.js';
import { openSessions } from '../meta/open-sessions.js';

/**
 * The copy workers of `quiver serve`, chosen from the config (the one place that decides):
 *   --datanode-slots N > 0 (default 4): the in-process data node ('node-1'), as in the embedded server;
 *   with --meta etcd://...: also every `quiver datanode` registered in the sessions (the inspector
 *     spreads tasks over all of them by free slots);
 *   --datanode-slots 0: the registered data nodes only (refused without etcd: nothing could register).
 *
 * The live set comes from a watch on the sessions; `ready` resolves with the first full set, which the
 * restore loops must wait for: an inspector that ran with an empty set after a coordinator restart
 * would take every running task for lost and run it again.
 */

export interface ClusterWorkers {
  readonly workers: WorkerClient;
  /** Resolves once the live node set is known (at once without sessions). */
  readonly ready: Promise<void>;
  /** `GET /cluster`: nodes and the restore jobs in flight. */
  status(jobs: CopyJobStore, waitingReason: (jobId: number) => string | undefined, nowMs: number): Promise<ClusterStatus>;
  close(): Promise<void>;
}

export interface ClusterNodeStatus {
  readonly nodeId: string;
  readonly address: string;
  readonly metricsAddress: string;
  readonly slotsTotal: number;
  readonly slotsUsed: number;
  readonly tasksByType: Readonly<Record<string, number>>;
  readonly lastHeartbeatMs: number | null;
  readonly state: 'live' | 'unreachable';
}

export interface ClusterStatus {
  readonly nodes: readonly ClusterNodeStatus[];
  readonly jobs: readonly { jobId: string; kind: 'restore'; state: string; progress: number; reason?: string }[];
}

/** The live data nodes, from a watch on the sessions. */
class WatchedNodes implements LiveDataNodes {
  #nodes: readonly NodeSessionInfo[] = [];
  readonly ready: Promise<void>;
  readonly #unwatch: () => void;

  constructor(sessions: SessionStore, log: Logger) {
    let first: () => void = () => {};
    this.ready = new Promise<void>((r) => (first = r));
    this.#unwatch = sessions.watch('datanode', (nodes) => {
      const before = new Set(this.#nodes.map((n) => n.nodeId));
      const after = new Set(nodes.map((n) => n.nodeId));
      for (const n of nodes) if (!before.has(n.nodeId)) log.info({ nodeId: n.nodeId, address: n.address, slots: n.slots }, 'data node joined');
      for (const n of this.#nodes) if (!after.has(n.nodeId)) log.warn({ nodeId: n.nodeId, address: n.address }, 'data node lost');
      this.#nodes = nodes;
      first();
    });
  }

  nodes(): readonly NodeSessionInfo[] {
    return this.#nodes;
  }

  close(): void {
    this.#unwatch();
  }
}

export function clusterWorkers(
  config: Pick<Config, 'datanodeSlots' | 'meta'>,
  deps: { store: ObjectStore; sessions: SessionStore | undefined; log: Logger; onTaskFinished: () => void },
): ClusterWorkers {
  if (config.datanodeSlots === 0 && deps.sessions === undefined) {
    throw quiverError('ParameterInvalid', '--datanode-slots 0 needs --meta etcd://... (data nodes register their sessions in etcd)');
  }
  const local =
    config.datanodeSlots > 0
      ? new InProcessWorkerPool({ store: deps.store, nodes: [{ nodeId: 'node-1', slots: config.datanodeSlots }], onTaskFinished: deps.onTaskFinished })
      : undefined;
  const live = deps.sessions ? new WatchedNodes(deps.sessions, deps.log) : undefined;
  const remote = live ? new RemoteWorkerPool({ live, log: deps.log }) : undefined;
  const workers: WorkerClient = remote ? new CombinedWorkers(local, remote) : local!;
  return {
    workers,
    ready: live?.ready ?? Promise.resolve(),
    async status(jobs, waitingReason, nowMs) {
      const tasks = await jobs.listAllTasks();
      const placed = new Map<string, number>();
      for (const t of tasks) if (t.state === 'InProgress' && t.nodeId) placed.set(t.nodeId, (placed.get(t.nodeId) ?? 0) + 1);
      const nodes: ClusterNodeStatus[] = [];
      if (local) {
        const n = local.nodes()[0]!;
        nodes.push({
          nodeId: n.nodeId,
          address: 'in-process',
          metricsAddress: '',
          slotsTotal: n.slots,
          slotsUsed: n.usedSlots,
          tasksByType: { copy_segment: n.usedSlots },
          lastHeartbeatMs: nowMs,
          state: 'live',
        });
      }
      if (remote && live) {
        const answers = await remote.slots();
        for (const s of live.nodes()) {
          const a = answers.get(s.nodeId);
          const ok = a !== undefined && !(a instanceof Error);
          const running = ok ? a.tasks.filter((t) => t.state === 'IN_PROGRESS') : [];
          const byType: Record<string, number> = {};
          for (const t of running) byType[t.type.toLowerCase()] = (byType[t.type.toLowerCase()] ?? 0) + 1;
          nodes.push({
            nodeId: remoteNodeId(s.nodeId),
            address: s.address,
            metricsAddress: s.metricsAddress,
            slotsTotal: s.slots,
            slotsUsed: ok ? a.slots_used : (placed.get(remoteNodeId(s.nodeId)) ?? 0),
            tasksByType: byType,
            lastHeartbeatMs: ok ? nowMs : null,
            state: ok ? 'live' : 'unreachable',
          });
        }
      }
      const jobList = (await jobs.listJobs())
        .filter((j) => j.state !== 'Completed' && j.state !== 'Failed')
        .map((j) => {
          const reason = [j.reason, j.state === 'Executing' ? waitingReason(j.id) : undefined].filter((x) => x).join('; ');
          return { jobId: String(j.id), kind: 'restore' as const, state: j.state, progress: jobProgress(j), ...(reason ? { reason } : {}) };
        });
      return { nodes, jobs: jobList };
    },
    async close() {
      remote?.close();
      live?.close();
      await local?.close();
      await deps.sessions?.close();
    },
  };
}

/**
 * The sessions store of `quiver serve`: etcd sessions with an etcd URL (data nodes are other processes);
 * none with SQLite (an embedded server has no other process to hear from).
 */
export async function openSessionsFor(config: Pick<Config, 'meta'>, where: MetaLocation, kv: MetaKV, dataDir: string): Promise<SessionStore | undefined> {
  if (where.kind !== 'etcd') return undefined;
  return openSessions(config.meta, { dataDir, meta: kv });
}

/**
 * What a `quiver datanode` opens: the cluster's metadata store (etcd only: the coordinator must see the
 * node's session) and its sessions. Closing the sessions closes the metadata store too.
 */
export async function openDataNodeSessions(metaUrl: string): Promise<SessionStore> {
  const dataDir = process.cwd();
  const where = parseMetaUrl(metaUrl, dataDir);
  if (where.kind !== 'etcd') throw quiverError('ParameterInvalid', `--meta ${JSON.stringify(metaUrl)}: a data node needs etcd (etcd://HOST:PORT[/ROOT])`);
  const kv = await openMeta(metaUrl, { dataDir });
  let sessions: SessionStore;
  try {
    sessions = await openSessions(metaUrl, { dataDir, meta: kv });
  } catch (e) {
    await kv.close();
    throw e;
  }
  return {
    register: (info, ttlMs) => sessions.register(info, ttlMs),
    list: (role) => sessions.list(role),
    watch: (role, onChange) => sessions.watch(role, onChange),
    close: async () => {
      await sessions.close();
      await kv.close();
    },
  };
}
