import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server as HttpServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pino, type Logger } from 'pino';
import { Registry, collectDefaultMetrics } from 'prom-client';
import { systemClock, type Clock } from '../common/clock.js';
import { quiverError } from '../common/errors.js';
import { IndexBuildExecutor } from '../datanode/index-build-executor.js';
import { IndexBuildPool } from '../datanode/index-builder.js';
import { IndexBuildRunner } from '../datanode/remote/index-build-runner.js';
import { DataNodeTaskHost } from '../datanode/remote/task-host.js';
import type { MetaKV } from '../meta/meta-kv.js';
import { DEFAULT_SESSION_TTL_MS, type SessionRegistration, type SessionStore } from '../meta/sessions.js';
import type { ObjectStore } from '../storage/object-store.js';
import { openObjectStore } from '../storage/open-store.js';
import { serveDataNodeTasks, type TaskServer } from '../taskrpc/protocol.js';

/**
 * Composition root of `quiver datanode`: a data node as its own process. It opens the object store (the
 * copy executor reads snapshot manifests and copies files there), serves the task protocol
 * (proto/datanode.proto) on --port, registers its session under a lease (so the coordinator sees it and
 * dispatches to it), and serves /metrics and /healthz on --metrics-port. It persists nothing.
 *
 * Lifecycle:
 *   start: store → task server bound (its address goes into the session) → HTTP → session registered.
 *   session lost (lease expired: the process was frozen or cut off from etcd): the node refuses new tasks
 *     and aborts its running ones, whose coordinator has given them to other nodes; `lost` resolves and
 *     the CLI exits non-zero (a supervisor restarts it as a new node, with a new id).
 *   clean stop (`close`): deregister first (the coordinator re-queues at once instead of after the TTL),
 *     then stop the task server, abort what runs, close the HTTP server and the store.
 */

export interface DataNodeOptions {
  readonly host: string;
  /** Task gRPC port (0 = any free port). */
  readonly port: number;
  /** HTTP /metrics and /healthz port (0 = any free port). */
  readonly metricsPort: number;
  /** Host other processes use to reach this node (default: `host`). */
  readonly advertiseHost?: string | undefined;
  readonly storage: string;
  readonly s3Endpoint?: string | undefined;
  readonly copyMode?: 'link' | 'copy' | undefined;
  /** Where a local store resolves relative paths (default: the working directory). */
  readonly dataDir?: string | undefined;
  readonly slots: number;
  readonly sessionTtlMs?: number | undefined;
  /** Native threads per index build (default every core): two nodes on one machine are measured with 1 each. */
  readonly indexBuildThreads?: number | undefined;
  readonly version: string;
  readonly logLevel?: string | undefined;
}

export interface DataNodeDeps {
  /** The sessions of the cluster (etcd leases); closed by `close`. */
  readonly sessions: SessionStore;
  /**
   * The cluster's metadata store: index builds read the collection, segment and index records a task
   * names. Without it the node runs copy tasks only. Not closed here (the sessions own it).
   */
  readonly meta?: Pick<MetaKV, 'get'> | undefined;
  readonly log?: Logger | undefined;
  readonly clock?: Clock | undefined;
  /** Test-only: wraps the object store. */
  readonly wrapStore?: ((store: ObjectStore) => ObjectStore) | undefined;
}

export interface RunningDataNode {
  readonly nodeId: number;
  readonly address: string;
  readonly metricsAddress: string;
  readonly log: Logger;
  /** Resolves when the session is lost for good (not on a clean stop). */
  readonly lost: Promise<string>;
  close(): Promise<void>;
}

export async function startDataNode(opts: DataNodeOptions, deps: DataNodeDeps): Promise<RunningDataNode> {
  if (!Number.isSafeInteger(opts.slots) || opts.slots <= 0) throw new Error(`assertion failed: data node slots ${opts.slots} must be > 0`);
  const log = deps.log ?? pino({ level: opts.logLevel ?? 'info', base: { service: 'quiver-datanode' } });
  const clock = deps.clock ?? systemClock;
  const dataDir = resolve(opts.dataDir ?? '.');
  const opened = await openObjectStore(opts.storage, { dataDir, local: { copyMode: opts.copyMode ?? 'link' }, s3: { endpoint: opts.s3Endpoint } });
  const store = deps.wrapStore ? deps.wrapStore(opened) : opened;
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  // Index builds run on this node's own worker thread; their scratch files go to a private temp dir.
  const buildPool = new IndexBuildPool({ threads: opts.indexBuildThreads });
  const tmpDir = await mkdtemp(join(tmpdir(), 'quiver-datanode-'));
  await mkdir(tmpDir, { recursive: true });
  const noIds = { alloc: () => Promise.reject(quiverError('ServiceInternal', 'a data node allocates no ids: the task carries its build id')) };
  const indexBuilds =
    deps.meta === undefined
      ? undefined
      : new IndexBuildRunner({ meta: deps.meta, store, builds: new IndexBuildExecutor({ store, ids: noIds, pool: buildPool }, { tmpDir }) });

  let host: DataNodeTaskHost | undefined;
  let tasks: TaskServer | undefined;
  let http: HttpServer | undefined;
  let session: SessionRegistration | undefined;
  let state: 'starting' | 'serving' | 'lost' | 'stopping' = 'starting';
  // The task host needs the node id, which the session allocates, which needs the task address: the gRPC
  // server binds first and answers "not ready" until the host exists.
  const handlers = {
    createTask: (r: Parameters<DataNodeTaskHost['createTask']>[0]) => ready().createTask(r),
    queryTask: (r: Parameters<DataNodeTaskHost['queryTask']>[0]) => ready().queryTask(r),
    dropTask: (r: Parameters<DataNodeTaskHost['dropTask']>[0]) => ready().dropTask(r),
    querySlots: () => ready().querySlots(),
  };
  const ready = (): DataNodeTaskHost => {
    if (host === undefined) throw Object.assign(new Error('data node is starting'), { retriable: true });
    return host;
  };
  try {
    tasks = await serveDataNodeTasks(handlers, opts.host, opts.port);
    http = createServer((req, res) => {
      if (req.url === '/metrics') {
        registry.metrics().then(
          (text) => {
            res.writeHead(200, { 'content-type': registry.contentType });
            res.end(text);
          },
          (err: Error) => {
            res.writeHead(500);
            res.end(err.message);
          },
        );
        return;
      }
      if (req.url === '/healthz') {
        const healthy = state === 'serving';
        res.writeHead(healthy ? 200 : 503, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ healthy, state, nodeId: session?.nodeId ?? null }));
        return;
      }
      res.writeHead(404);
      res.end('not found');
    });
    const httpServer = http;
    const metricsPort = await new Promise<number>((res, rej) => {
      httpServer.once('error', rej);
      httpServer.listen(opts.metricsPort, opts.host, () => {
        const a = httpServer.address();
        res(typeof a === 'object' && a ? a.port : opts.metricsPort);
      });
    });
    const advertise = opts.advertiseHost ?? opts.host;
    const address = `${advertise}:${tasks.port}`;
    const metricsAddress = `${advertise}:${metricsPort}`;
    session = await deps.sessions.register(
      { role: 'datanode', address, metricsAddress, slots: opts.slots, startedAtMs: clock.nowMs(), version: opts.version },
      opts.sessionTtlMs ?? DEFAULT_SESSION_TTL_MS,
    );
    const nodeId = session.nodeId;
    const taskHost = new DataNodeTaskHost({ store, clock, registry, indexBuilds }, { nodeId, slots: opts.slots });
    host = taskHost;
    state = 'serving';
    const lost = session.lost.then(async () => {
      if (state === 'stopping') return new Promise<string>(() => {}); // a clean stop is not a loss
      state = 'lost';
      const reason = `session of data node ${nodeId} lost (lease expired or revoked)`;
      log.error({ nodeId }, `${reason}: refusing new tasks, aborting running ones`);
      await taskHost.fence(reason);
      return reason;
    });
    log.info({ nodeId, address, metricsAddress, slots: opts.slots, storage: opts.storage }, 'quiver data node is serving');

    let closed: Promise<void> | undefined;
    const reg = session;
    const server = tasks;
    return {
      nodeId,
      address,
      metricsAddress,
      log,
      lost,
      close: () =>
        (closed ??= (async () => {
          if (state !== 'lost') state = 'stopping';
          await reg.close().catch((err: unknown) => log.warn({ err }, 'deregistering the session failed'));
          // Held QueryTasks are answered now: the server's graceful close waits for calls in flight.
          taskHost.endLongPolls();
          await server.close();
          await taskHost.close();
          await buildPool.close();
          await rm(tmpDir, { recursive: true, force: true });
          await new Promise<void>((r) => httpServer.close(() => r()));
          await deps.sessions.close();
          await store.close();
        })()),
    };
  } catch (e) {
    await session?.close().catch(() => undefined);
    await tasks?.close(0);
    http?.close();
    await host?.close();
    await buildPool.close();
    await rm(tmpDir, { recursive: true, force: true });
    await deps.sessions.close().catch(() => undefined);
    await store.close();
    throw e;
  }
}
