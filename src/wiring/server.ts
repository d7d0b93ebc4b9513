import { mkdir, readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { pino, type Logger } from 'pino';
import { LOG_REDACT_PATHS, openCredentials } from '../auth/index.js';
import { systemClock, type Clock } from '../common/clock.js';
import type { Config } from '../common/config.js';
import { LoopRunner } from '../common/loop.js';
import { Metrics } from '../common/metrics.js';
import { lockDataDir, type DataDirLock } from '../common/data-dir-lock.js';
import { monitorWrites, WriteHealth } from '../common/write-health.js';
import type { CopyJob, RestoreTargetOps } from '../coord/copy/index.js';
import { GarbageCollector } from '../coord/gc/garbage-collector.js';
import { RestoreService } from '../coord/snapshot/restore-service.js';
import { SNAPSHOT_DEFAULTS, SnapshotManager } from '../coord/snapshot/snapshot-manager.js';
import { quiverError } from '../common/errors.js';
import type { EtcdMetaKVOptions } from '../meta/etcd-kv.js';
import type { MetaKV } from '../meta/meta-kv.js';
import { openMeta, parseMetaUrl } from '../meta/open-meta.js';
import { clusterWorkers, openSessionsFor } from './cluster.js';
import { IndexTaskRouter } from '../coord/cluster/remote-index-builds.js';
import type { DataNodeTasks } from '../datanode/types.js';
import { apiKeyRoutes, credentialHandlers } from '../proxy/credential-service.js';
import { createHandlers, type Handler } from '../proxy/milvus-service.js';
import { importHandlers } from '../proxy/import-service.js';
import { startImports } from './imports.js';
import { registerObservability } from '../proxy/observability.js';
import { serveProxy } from '../proxy/server.js';
import { serveRest } from '../rest/server.js';
import { allRoutes } from '../rest/routes/index.js';
import { snapshotExtraRoutes } from '../rest/routes/snapshots.js';
import { OK } from '../proxy/status.js';
import { snapshotHandlers } from '../proxy/snapshot-service.js';
import { wireExports } from './export-wiring.js';
import type { ObjectStore } from '../storage/object-store.js';
import { CachedObjectStore } from '../storage/cached-object-store.js';
import { openObjectStore, parseStoreUrl } from '../storage/open-store.js';
import { openLocalWal, type Wal } from '../wal/wal.js';
import { Engine } from './engine.js';
import { snapshotExtras, type SnapshotExtras } from './snapshot-extras.js';
import { snapshotViews } from './snapshot-views.js';
import { withSnapshotViewHandlers, withSnapshotViewRoles } from '../proxy/snapshot-views.js';
import { startRbac } from './rbac.js';

/**
 * Composition root of the server (what `npm start` and `quiver serve` run): metadata and object store
 * picked by URL (`config.meta`: SQLite under the data dir or etcd; `config.storage`: a local dir or S3),
 * the WAL under the data dir, every role in this process (wiring/engine.ts), the snapshot and restore
 * services, GC, and the proxy's gRPC and HTTP endpoints.
 *
 * The shutdown order lives here and only here:
 *   1. stop accepting requests (gRPC and HTTP drain the calls in flight)
 *   2. stop the loops: restore checker/inspector, housekeeping (snapshots + GC), the engine's loops
 *   3. drain in-flight background work (compactions, WAL appends)
 *   4. close the build and merge workers
 *   5. flush the TSO bound
 *   6. close the stores (WAL, objects, meta) and release the data-dir lock
 * (3-5 are Engine.close, in that order.)
 */

export interface RunningServer {
  readonly port: number;
  readonly metricsPort: number;
  /** The RESTful API v2 port (src/rest). */
  readonly httpPort: number;
  readonly address: string;
  readonly engine: Engine;
  readonly snapshots: SnapshotManager;
  readonly restores: RestoreService;
  readonly gc: GarbageCollector;
  /** Snapshot policies, accounting and diff (wiring/snapshot-extras.ts). */
  readonly extras: SnapshotExtras;
  /** `COLLECTION@SNAPSHOT` read-only views (wiring/snapshot-views.ts). */
  readonly views: Awaited<ReturnType<typeof snapshotViews>>;
  readonly log: Logger;
  close(): Promise<void>;
}

export interface ServerOverrides {
  readonly clock?: Clock;
  readonly log?: Logger;
  /** Wraps the object store (fault-injection tests); its failures count as the store's own. */
  readonly wrapStore?: (store: ObjectStore) => ObjectStore;
  /** Wraps the WAL (fault-injection tests, e.g. an injected ENOSPC where a small tmpfs cannot be mounted). */
  readonly wrapWal?: (wal: Wal) => Wal;
  /** Extra handlers (snapshot RPCs are registered by their module). */
  readonly extraHandlers?: (engine: Engine) => Record<string, Handler>;
}

export async function startServer(config: Config, overrides: ServerOverrides = {}): Promise<RunningServer> {
  const log =
    overrides.log ?? pino({ level: config.logLevel, base: { service: 'quiver' }, redact: { paths: [...LOG_REDACT_PATHS], censor: '[redacted]' } });
  const clock = overrides.clock ?? systemClock;
  const dataDir = resolve(config.dataDir);
  const metrics = new Metrics();
  // Failing writes (full disk, EIO) show in /healthz, a counter and the log; each store recovers by itself.
  const health = new WriteHealth({ log, clock, countFailure: (target) => metrics.writeFailures.inc({ target }) });
  const { kv: baseKv, store: base, dirLock } = await openBackends(config, dataDir);
  const kv = monitorWrites(baseKv, 'meta', ['put', 'delete', 'txn'], health);
  // Users and API keys (src/auth); with auth on and no root user yet, no root password refuses the start here.
  const credentials = await openCredentials(config, { kv, clock }).catch(async (e: unknown) => {
    await Promise.all([base.close(), kv.close()]).catch(() => undefined);
    dirLock.release();
    throw e;
  });
  const store = monitorWrites<ObjectStore>(overrides.wrapStore ? overrides.wrapStore(base) : base, 'objects', ['put', 'copy'], health);
  const localWal = await openLocalWal(join(dataDir, 'wal'), { fsync: config.walFsync, onWarn: (msg) => log.warn({ wal: true }, msg) });
  const wal = monitorWrites<Wal>(overrides.wrapWal ? overrides.wrapWal(localWal) : localWal, 'wal', ['append'], health);
  // With etcd, index builds go to the registered data nodes (wiring/cluster.ts) once the cluster wiring
  // is up; with --datanode-slots 0 they never run here.
  const indexRouter =
    parseMetaUrl(config.meta, dataDir).kind === 'etcd'
      ? (local: DataNodeTasks) => new IndexTaskRouter(local, { remoteOnly: config.datanodeSlots === 0 })
      : undefined;
  let router: IndexTaskRouter | undefined;
  const engine = await Engine.open(
    { kv, store, wal, clock, log, indexTasks: indexRouter && ((local) => (router = indexRouter(local))) },
    {
      sealRows: config.sealRows,
      sealBytes: config.sealBytes,
      flushIdleMs: config.flushIdleMs,
      backgroundIntervalMs: config.backgroundIntervalMs,
      tmpDir: join(dataDir, 'tmp'),
      autoCompaction: config.autoCompaction,
      compactionDeleteRatio: config.compactionDeleteRatio,
      indexBuildThreads: config.indexBuildThreads,
    },
  );
  engine.start();
  const snapshots = new SnapshotManager(
    { host: engine, kv, store, clock, log },
    { ...SNAPSHOT_DEFAULTS, pendingTimeoutMs: config.snapshotPendingTimeoutMs, faultPauseBeforeCommitMs: config.faultSnapshotPauseMs || undefined },
  );
  await snapshots.init();
  const copyStore = config.faultCopyDelayMs > 0 ? delayedCopies(store, config.faultCopyDelayMs) : store;
  // The copy workers: this process's data node and/or the registered `quiver datanode` processes
  // (wiring/cluster.ts). A finished local task kicks the restore service's inspector (the callback runs
  // only once a task ran, so after `restores` is assigned).
  const cluster = clusterWorkers(config, {
    store: copyStore,
    sessions: await openSessionsFor(config, parseMetaUrl(config.meta, dataDir), kv, dataDir, await etcdOptions(config)),
    log,
    clock,
    onTaskFinished: () => restores.taskFinished(),
    kv,
    ids: engine.ids,
  });
  if (cluster.indexBuilds) router?.setRemote(cluster.indexBuilds);
  const copyWorkers = cluster.workers;
  const restores = new RestoreService(
    {
      host: engine,
      snapshots,
      kv,
      store: copyStore,
      clock,
      log,
      workers: copyWorkers,
      ...(config.faultRestorePauseState !== '' && config.faultRestorePauseMs > 0
        ? { wrapTargets: (t: RestoreTargetOps) => pausedTargets(t, config.faultRestorePauseState, config.faultRestorePauseMs, log, clock) }
        : {}),
    },
    {
      checkIntervalMs: config.copyCheckIntervalMs,
      maxSegmentsPerTask: config.copyMaxSegmentsPerTask,
      taskRetentionMs: config.copyTaskRetentionMs,
      jobTimeoutMs: config.copyJobTimeoutMs,
      finalizeLeaseMs: config.copyFinalizeLeaseMs,
    },
    { faultPauseBeforeStartCommitMs: config.faultRestoreStartPauseMs || undefined },
  );
  // Reconcile what a crash left (restore targets without a job, pins of gone jobs) before the loops run,
  // and know the live data nodes first: their running tasks must not look lost to a fresh inspector.
  await restores.init();
  const exports = await wireExports({ config, dataDir, host: engine, snapshots, restores, kv, store, clock, log });
  await cluster.ready;
  // Dropping a collection that is still being restored cancels its restore (the rollback removes it).
  engine.coord.onDropRestoring((coll) => restores.cancelTarget(coll));
  restores.start();
  const imports = await startImports({ engine, kv, store, clock, log }, { sealRows: config.sealRows, jobsMax: config.importJobsMax });
  const observability = registerObservability(metrics.registry, { snapshots, restores, clock });
  const gc = new GarbageCollector(
    {
      catalog: engine.catalog,
      store,
      clock,
      guard: snapshots.refs,
      log: (msg, extra) => log.info(extra ?? {}, msg),
      isSegmentInUse: (collectionId, segmentId) => engine.isSegmentBusy(collectionId, segmentId),
      metrics: observability.gcMetrics,
    },
    { droppedGraceMs: config.gcDroppedGraceMs, orphanGraceMs: config.gcOrphanGraceMs },
  );
  // Snapshot housekeeping (expired pins, stale PENDING snapshots) then GC, one pass at a time.
  const housekeeping = new LoopRunner(
    'housekeeping',
    config.gcIntervalMs,
    async () => {
      await snapshots.tick();
      await gc.tick();
    },
    log,
    { immediate: false },
  );
  housekeeping.start();
  const extras = snapshotExtras({ engine, snapshots, kv, store, clock, log, registry: metrics.registry });
  // One cancel for the HTTP port, REST and so the CLI: the same answer whichever door.
  // Verifying external restores too (their job exists before the bundle is checked): export-wiring decides.
  const cancelRestoreJob = (jobId: number) => exports.cancelRestoreJob(jobId);
  const startedAtMs = clock.nowMs();
  const views = await snapshotViews({ engine, snapshots, kv, store, clock, log });
  const rbac = await startRbac({ kv, catalog: engine.catalog, snapshots, directory: credentials });
  const handlers: Record<string, Handler> = {
    ...createHandlers(withSnapshotViewRoles(engine.roles, views), { serverId: String(startedAtMs), startedAtMs }),
    ...snapshotHandlers(snapshots, restores, clock),
    ...importHandlers(imports),
    ...exports.handlers(snapshotHandlers(snapshots, restores, clock)),
    ...rbac.handlers,
    // Milvus's CheckHealth: unhealthy, with reasons, while writes fail (as /healthz).
    CheckHealth: () => ({
      status: OK,
      isHealthy: health.healthy,
      reasons: health.faults().map((f) => `${f.target} writes failing: ${f.reason}`),
      quota_states: [],
    }),
    ...credentialHandlers(credentials, { rootOnlyAdmin: false }),
    ...(overrides.extraHandlers?.(engine) ?? {}),
  };
  const keyRoutes = apiKeyRoutes(credentials);
  const proxy = await serveProxy(config, {
    log,
    metrics,
    access: { authenticator: credentials, authorizer: rbac.authorizer },
    handlers: withSnapshotViewHandlers(rbac.filtered(handlers), views),
    segmentPhases: () => engine.data.segmentPhases(),
    gcDryRun: () => gc.tick({ dryRun: true }),
    liveCollections: () => engine.catalog.allCollections().filter((c) => c.state === 'Created').length,
    writeFaults: () => health.faults(),
    exportsInFlight: () => [...exports.exporter.inFlight].map(([target, p]) => ({ target, ...p })),
    cancelRestoreJob,
    clusterStatus: () => cluster.status(restores.jobs, (id) => restores.inspector.waitingReason(id)),
    extraRoutes: (req, res) => extras.routes(req, res) || keyRoutes(req, res),
  });
  // The RESTful API v2 on its own port, over the same handler table as gRPC.
  const rest = await serveRest(
    { host: config.host, port: config.httpPort, bodyMaxBytes: config.httpBodyMaxBytes, tls: config.tls },
    {
      log,
      metrics,
      handlers: withSnapshotViewHandlers(handlers, views),
      routes: [...allRoutes, ...snapshotExtraRoutes({ cancelRestoreJob, diff: (db, c, from, to) => extras.differ.diff(db, c, from, to) })],
      authenticator: credentials,
      authorizer: rbac.authorizer,
    },
  ).catch(async (e: unknown) => {
    // A taken REST port refuses the start; the gRPC port must not stay bound behind it.
    await proxy.shutdown();
    throw e;
  });
  log.info(
    {
      address: `${config.host}:${proxy.port}`,
      metricsPort: proxy.metricsPort,
      rest: rest.url,
      dataDir,
      meta: redactUrl(config.meta),
      storage: config.storage,
    },
    'quiver is serving',
  );

  let closed: Promise<void> | undefined;
  return {
    port: proxy.port,
    metricsPort: proxy.metricsPort,
    httpPort: rest.port,
    address: `${config.host}:${proxy.port}`,
    engine,
    snapshots,
    restores,
    gc,
    extras,
    views,
    log,
    close: () =>
      (closed ??= (async () => {
        await Promise.all([proxy.shutdown(), rest.close()]);
        await Promise.all([
          restores.stop(),
          imports.stop(),
          exports.imports.stop(),
          exports.exporter.close(),
          housekeeping.stop(),
          gc.stop(),
          extras.scheduler.stop(),
        ]);
        await cluster.close();
        await engine.close();
        await wal.close();
        await base.close();
        await kv.close();
        dirLock.release();
      })()),
  };
}

/** A URL for a log line, without any user:password part. */
function redactUrl(url: string): string {
  return url.replace(/\/\/[^@/]*@/, '//');
}

interface Backends {
  readonly kv: MetaKV;
  readonly store: ObjectStore;
  readonly dirLock: DataDirLock;
}

/**
 * Opens the metadata and object store named by `config.meta` / `config.storage` (the factories in
 * meta/open-meta.ts and storage/open-store.ts) and takes the data-dir lock.
 *
 * Order matters for "a wrong URL leaves nothing behind": both URLs are parsed first (a typo fails before
 * any I/O), then the remote backends are opened and checked with reads only (etcd: one range read;
 * S3: HeadBucket), and only then is the data dir created and locked and the local backends opened. So
 * an unreachable etcd, a missing bucket or refused credentials refuse the start with one line and
 * create neither the data dir nor a key in etcd.
 */
async function openBackends(config: Config, dataDir: string): Promise<Backends> {
  const remoteMeta = parseMetaUrl(config.meta, dataDir).kind !== 'sqlite';
  const remoteStore = parseStoreUrl(config.storage, dataDir).kind !== 'local';
  const etcd = await etcdOptions(config);
  const opened: { close(): Promise<void> }[] = [];
  const openKv = async () => {
    const kv = await openMeta(config.meta, { dataDir, etcd });
    opened.push(kv);
    return kv;
  };
  const openStore = async () => {
    const store = await openObjectStore(config.storage, {
      dataDir,
      local: { copyMode: config.copyMode },
      s3: { endpoint: config.s3Endpoint },
    });
    opened.push(store);
    return store;
  };
  let dirLock: DataDirLock | undefined;
  try {
    const remoteKv = remoteMeta ? await openKv() : undefined;
    const remote = remoteStore ? await openStore() : undefined;
    await mkdir(dataDir, { recursive: true });
    dirLock = await lockDataDir(dataDir);
    const kv = remoteKv ?? (await openKv());
    // Segment and index files of a remote store are also kept on local disk (bounded, validated on every hit), so a
    // restart on the same data dir does not download them again.
    const store =
      remote === undefined
        ? await openStore()
        : config.s3CacheMaxBytes > 0
          ? await CachedObjectStore.open(remote, join(dataDir, 's3-cache'), config.s3CacheMaxBytes)
          : remote;
    // A local store: temp files of puts interrupted by a crash are invisible to readers; reclaim their space.
    await (store as Partial<{ removeTempFiles(): Promise<number> }>).removeTempFiles?.();
    return { kv, store, dirLock };
  } catch (e) {
    for (const o of opened.reverse()) await o.close().catch(() => undefined);
    dirLock?.release();
    throw e;
  }
}

/** etcd auth and TLS from the config; a certificate file that cannot be read refuses the start naming it. */
export async function etcdOptions(
  config: Pick<Config, 'etcdCaFile' | 'etcdCertFile' | 'etcdKeyFile' | 'etcdUsername' | 'etcdPassword'>,
): Promise<Omit<Partial<EtcdMetaKVOptions>, 'hosts' | 'root'>> {
  const read = async (flag: string, path: string | undefined): Promise<Buffer | undefined> => {
    if (path === undefined) return undefined;
    try {
      return await readFile(path);
    } catch (e) {
      throw quiverError('ParameterInvalid', `${flag} ${JSON.stringify(path)}: ${(e as Error).message}`, e);
    }
  };
  const ca = await read('--etcd-ca-file', config.etcdCaFile);
  const cert = await read('--etcd-cert-file', config.etcdCertFile);
  const key = await read('--etcd-key-file', config.etcdKeyFile);
  return {
    tls: ca === undefined ? undefined : { ca, cert, key },
    auth: config.etcdUsername === undefined ? undefined : { username: config.etcdUsername, password: config.etcdPassword ?? '' },
  };
}

/**
 * Test-only fault injection (crash tests): the side effect of one job state (Pending: register,
 * Publishing: publish, RollingBack: rollback) logs "fault: restore paused" and waits `pauseMs` first, so
 * that a test can kill -9 the process while the job is persisted in that state.
 */
function pausedTargets(targets: RestoreTargetOps, state: Config['faultRestorePauseState'], pauseMs: number, log: Logger, clock: Clock): RestoreTargetOps {
  const pause = async (job: CopyJob, phase: string): Promise<void> => {
    if (phase !== state) return;
    log.warn({ jobId: job.id, state: phase, pauseMs }, 'fault: restore paused');
    await clock.sleep(pauseMs);
  };
  return {
    register: async (job) => {
      await pause(job, 'Pending');
      return targets.register(job);
    },
    publish: async (job) => {
      await pause(job, 'Publishing');
      return targets.publish(job);
    },
    rollback: async (job) => {
      await pause(job, 'RollingBack');
      return targets.rollback(job);
    },
  };
}

/** Test-only fault injection: an object store whose copies each wait `delayMs` first (crash tests). */
export function delayedCopies(store: ObjectStore, delayMs: number): ObjectStore {
  return new Proxy(store, {
    get(target, prop, receiver) {
      if (prop === 'copy') {
        return async (src: string, dst: string) => {
          await new Promise((r) => setTimeout(r, delayMs));
          return target.copy(src, dst);
        };
      }
      const v = Reflect.get(target, prop, receiver) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
}
