import type { Logger } from 'pino';
import type { Config } from '../common/config.js';
import { quiverError } from '../common/errors.js';
import { jobProgress, type CopyJobStore, type WorkerClient } from '../coord/copy/index.js';
import { NODE_LOST_RETENTION_MS_DEFAULT, NODE_SUSPECT_AFTER_MS_DEFAULT, NodeRegistry } from '../coord/cluster/node-registry.js';
import { CombinedWorkers, RemoteWorkerPool } from '../coord/cluster/remote-workers.js';
import { NodeTaskDispatcher } from '../coord/cluster/node-task-dispatcher.js';
import { NodeTaskStore } from '../coord/cluster/node-task-store.js';
import { RemoteIndexBuilds } from '../coord/cluster/remote-index-builds.js';
import type { IdSource } from '../coord/types.js';
import type { ClusterJobStatus, ClusterStatus, NodeStatus } from '../coord/cluster/types.js';
import type { Clock } from '../common/clock.js';
import { LoopRunner } from '../common/loop.js';
import { InProcessWorkerPool } from '../datanode/copy-worker/index.js';
import type { SessionStore } from '../meta/sessions.js';
import type { ObjectStore } from '../storage/object-store.js';
import type { MetaKV } from '../meta/meta-kv.js';
import { openMeta, parseMetaUrl, type MetaLocation } from '../meta/open-meta.js';
import { openSessions, type OpenSessionsOptions } from '../meta/open-sessions.js';

/**
 * The copy workers of `quiver serve`, chosen from the config (the one place that decides):
 *   --datanode-slots N > 0 (default 4): the in-process data node ('node-1'), as in the embedded server;
 *   with --meta etcd://...: also every `quiver datanode` registered in the sessions (the inspector
 *     spreads tasks over all of them by free slots);
 *   --datanode-slots 0: the registered data nodes only (refused without etcd: nothing could register).
 *
 * The live set is the node registry's (a watch on the sessions, plus a QuerySlots heartbeat every
 * second); `ready` resolves with the first full set, which the restore loops must wait for: an inspector
 * that ran with an empty set after a coordinator restart would take every running task for lost and
 * run it again.
 */

export interface ClusterWorkers {
  readonly workers: WorkerClient;
  /** Resolves once the live node set is known (at once without sessions). */
  readonly ready: Promise<void>;
  /** Index builds on the registered data nodes (with sessions only). */
  readonly indexBuilds: RemoteIndexBuilds | undefined;
  /** `GET /cluster`: nodes and the restore jobs in flight. */
  status(jobs: CopyJobStore, waitingReason: (jobId: number) => string | undefined): Promise<ClusterStatus>;
  close(): Promise<void>;
}

/** The id `GET /cluster` shows for the in-process data node of `quiver serve` (session ids start at 1). */
export const LOCAL_NODE_STATUS_ID = 0;
/** How often the coordinator asks each data node for its slots and tasks (QuerySlots). */
export const HEARTBEAT_INTERVAL_MS = 1_000;
/** How often the coordinator polls the index builds it placed on data nodes. */
export const NODE_TASK_TICK_MS = 200;

export function clusterWorkers(
  config: Pick<Config, 'datanodeSlots' | 'meta' | 'nodeTaskTimeoutMs' | 'nodeJobTimeoutMs' | 'nodeTaskAttemptsMax'>,
  deps: {
    store: ObjectStore;
    sessions: SessionStore | undefined;
    log: Logger;
    clock: Clock;
    onTaskFinished: () => void;
    /** Index-build task records (with sessions). */
    kv: MetaKV;
    ids: IdSource;
  },
): ClusterWorkers {
  if (config.datanodeSlots === 0 && deps.sessions === undefined) {
    throw quiverError('ParameterInvalid', '--datanode-slots 0 needs --meta etcd://... (data nodes register their sessions in etcd)');
  }
  const local =
    config.datanodeSlots > 0
      ? new InProcessWorkerPool({ store: deps.store, nodes: [{ nodeId: 'node-1', slots: config.datanodeSlots }], onTaskFinished: deps.onTaskFinished })
      : undefined;
  let registry: NodeRegistry | undefined;
  let remote: RemoteWorkerPool | undefined;
  let heartbeats: LoopRunner | undefined;
  let dispatcher: NodeTaskDispatcher | undefined;
  let ready = Promise.resolve();
  if (deps.sessions) {
    const sessions = deps.sessions;
    // The registry's first watch callback carries the initial live set: `ready` waits for it.
    let first: () => void = () => {};
    ready = new Promise<void>((r) => (first = r));
    const watched: Pick<SessionStore, 'watch'> = {
      watch: (role, onChange) =>
        sessions.watch(role, (nodes) => {
          onChange(nodes);
          first();
        }),
    };
    const reg = new NodeRegistry(
      { sessions: watched, clock: deps.clock, log: deps.log },
      { suspectAfterMs: NODE_SUSPECT_AFTER_MS_DEFAULT, lostRetentionMs: NODE_LOST_RETENTION_MS_DEFAULT },
    );
    reg.onJoined((n) => deps.log.info({ nodeId: n.nodeId, address: n.address, slots: n.slotsTotal }, 'data node joined'));
    reg.onLost((n) => deps.log.warn({ nodeId: n.nodeId, address: n.address }, 'data node lost'));
    reg.start();
    const pool = new RemoteWorkerPool({ live: reg, log: deps.log, clock: deps.clock, onTaskFinished: deps.onTaskFinished });
    heartbeats = new LoopRunner('datanode-heartbeats', HEARTBEAT_INTERVAL_MS, () => pool.heartbeat((id, hb) => void reg.recordHeartbeat(id, hb)), deps.log);
    heartbeats.start();
    dispatcher = new NodeTaskDispatcher(
      { store: new NodeTaskStore(deps.kv), nodes: pool, ids: deps.ids, clock: deps.clock, log: deps.log },
      {
        taskTimeoutMs: config.nodeTaskTimeoutMs,
        jobTimeoutMs: config.nodeJobTimeoutMs,
        attemptsMax: config.nodeTaskAttemptsMax,
        tickIntervalMs: NODE_TASK_TICK_MS,
      },
    );
    const d = dispatcher;
    reg.onJoined(() => d.kick());
    registry = reg;
    remote = pool;
  }
  const workers: WorkerClient = remote ? new CombinedWorkers(local, remote) : local!;
  const startDispatcher = dispatcher
    ? ready.then(async () => {
        await dispatcher.init();
        dispatcher.start();
      })
    : Promise.resolve();
  return {
    workers,
    ready: Promise.all([ready, startDispatcher]).then(() => undefined),
    indexBuilds: dispatcher ? new RemoteIndexBuilds(dispatcher) : undefined,
    async status(jobs, waitingReason) {
      const base = registry?.status() ?? { nowMs: deps.clock.nowMs(), nodes: [] };
      const nodes: NodeStatus[] = [...base.nodes];
      if (local) {
        const n = local.nodes()[0]!;
        nodes.unshift({
          nodeId: LOCAL_NODE_STATUS_ID,
          address: 'in-process',
          metricsAddress: '',
          slotsTotal: n.slots,
          slotsUsed: n.usedSlots,
          tasksByType: n.usedSlots > 0 ? { 'copy-segment': n.usedSlots } : {},
          lastHeartbeatMs: base.nowMs,
          state: 'Healthy',
        });
      }
      const jobList: ClusterJobStatus[] = (await jobs.listJobs())
        .filter((j) => j.state !== 'Completed' && j.state !== 'Failed')
        .map((j) => {
          const reason = [j.reason, j.state === 'Executing' ? waitingReason(j.id) : undefined].filter((x) => x).join('; ');
          return { jobId: String(j.id), kind: 'restore', state: j.state, progress: jobProgress(j), ...(reason ? { reason } : {}) };
        });
      // Index builds and merges on data nodes: one line per task (with none registered, the reason says so).
      for (const t of dispatcher?.pending() ?? []) {
        const where = t.state === 'Dispatched' ? `on ${t.nodeId}` : t.reason;
        jobList.push({ jobId: `task-${t.id}`, kind: t.type, state: t.state, progress: 0, ...(where ? { reason: where } : {}) });
      }
      return { nowMs: base.nowMs, nodes, jobs: jobList };
    },
    async close() {
      await dispatcher?.stop();
      await heartbeats?.stop();
      remote?.close();
      await registry?.stop();
      await local?.close();
      await deps.sessions?.close();
    },
  };
}

/**
 * The sessions store of `quiver serve`: etcd sessions with an etcd URL (data nodes are other processes);
 * none with SQLite (an embedded server has no other process to hear from).
 */
export async function openSessionsFor(
  config: Pick<Config, 'meta'>,
  where: MetaLocation,
  kv: MetaKV,
  dataDir: string,
  etcd: OpenSessionsOptions['etcd'],
): Promise<SessionStore | undefined> {
  if (where.kind !== 'etcd') return undefined;
  // The same credentials and TLS as the metadata store's client.
  return openSessions(config.meta, { dataDir, meta: kv, etcd });
}

/**
 * What a `quiver datanode` opens: the cluster's metadata store (etcd only: the coordinator must see the
 * node's session) and its sessions. Closing the sessions closes the metadata store too.
 */
export async function openDataNodeSessions(
  metaUrl: string,
  etcd: OpenSessionsOptions['etcd'] = undefined,
): Promise<SessionStore & { readonly meta: Pick<MetaKV, 'get'> }> {
  const dataDir = process.cwd();
  const where = parseMetaUrl(metaUrl, dataDir);
  if (where.kind !== 'etcd') throw quiverError('ParameterInvalid', `--meta ${JSON.stringify(metaUrl)}: a data node needs etcd (etcd://HOST:PORT[/ROOT])`);
  const kv = await openMeta(metaUrl, { dataDir, etcd });
  let sessions: SessionStore;
  try {
    sessions = await openSessions(metaUrl, { dataDir, meta: kv, etcd });
  } catch (e) {
    await kv.close();
    throw e;
  }
  return {
    meta: kv,
    register: (info, ttlMs) => sessions.register(info, ttlMs),
    list: (role) => sessions.list(role),
    watch: (role, onChange) => sessions.watch(role, onChange),
    close: async () => {
      await sessions.close();
      await kv.close();
    },
  };
}
