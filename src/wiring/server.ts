import { mkdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { pino, type Logger } from 'pino';
import { systemClock, type Clock } from '../common/clock.js';
import type { Config } from '../common/config.js';
import { LoopRunner } from '../common/loop.js';
import { Metrics } from '../common/metrics.js';
import type { CopyJob, RestoreTargetOps } from '../coord/copy/index.js';
import { GarbageCollector } from '../coord/gc/garbage-collector.js';
import { RestoreService } from '../coord/snapshot/restore-service.js';
import { SNAPSHOT_DEFAULTS, SnapshotManager } from '../coord/snapshot/snapshot-manager.js';
import { SqliteMetaKV } from '../meta/sqlite-kv.js';
import { createHandlers, type Handler } from '../proxy/milvus-service.js';
import { registerObservability } from '../proxy/observability.js';
import { lockDataDir, serveProxy } from '../proxy/server.js';
import { snapshotHandlers } from '../proxy/snapshot-service.js';
import { LocalObjectStore } from '../storage/local-object-store.js';
import type { ObjectStore } from '../storage/object-store.js';
import { openLocalWal } from '../wal/wal.js';
import { Engine } from './engine.js';

/**
 * Composition root of the embedded server (what `npm start` runs): SQLite metadata, a local object store
 * and WAL under the data dir, every role in this process (wiring/engine.ts), the snapshot and restore
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
  readonly address: string;
  readonly engine: Engine;
  readonly snapshots: SnapshotManager;
  readonly restores: RestoreService;
  readonly gc: GarbageCollector;
  readonly log: Logger;
  close(): Promise<void>;
}

export interface ServerOverrides {
  readonly clock?: Clock;
  readonly log?: Logger;
  /** Wraps the object store (fault-injection tests). */
  readonly wrapStore?: (store: ObjectStore) => ObjectStore;
  /** Extra handlers (snapshot RPCs are registered by their module). */
  readonly extraHandlers?: (engine: Engine) => Record<string, Handler>;
}

export async function startServer(config: Config, overrides: ServerOverrides = {}): Promise<RunningServer> {
  const log = overrides.log ?? pino({ level: config.logLevel, base: { service: 'quiver' } });
  const clock = overrides.clock ?? systemClock;
  const dataDir = resolve(config.dataDir);
  await mkdir(dataDir, { recursive: true });
  const releaseLock = await lockDataDir(dataDir);
  const kv = new SqliteMetaKV(join(dataDir, 'meta.db'));
  const local = new LocalObjectStore(join(dataDir, 'objects'), { copyMode: config.copyMode });
  const store: ObjectStore = overrides.wrapStore ? overrides.wrapStore(local) : local;
  // Temp files of puts interrupted by a crash are invisible to readers; reclaim their space at start.
  await local.removeTempFiles();
  const wal = await openLocalWal(join(dataDir, 'wal'), { fsync: config.walFsync, onWarn: (msg) => log.warn({ wal: true }, msg) });
  const engine = await Engine.open(
    { kv, store, wal, clock, log },
    {
      sealRows: config.sealRows,
      sealBytes: config.sealBytes,
      flushIdleMs: config.flushIdleMs,
      backgroundIntervalMs: config.backgroundIntervalMs,
      tmpDir: join(dataDir, 'tmp'),
      autoCompaction: config.autoCompaction,
      compactionDeleteRatio: config.compactionDeleteRatio,
    },
  );
  engine.start();
  const snapshots = new SnapshotManager(
    { host: engine, kv, store, clock, log },
    { ...SNAPSHOT_DEFAULTS, pendingTimeoutMs: config.snapshotPendingTimeoutMs, faultPauseBeforeCommitMs: config.faultSnapshotPauseMs || undefined },
  );
  await snapshots.init();
  const copyStore = config.faultCopyDelayMs > 0 ? delayedCopies(store, config.faultCopyDelayMs) : store;
  const restores = new RestoreService(
    {
      host: engine,
      snapshots,
      kv,
      store: copyStore,
      clock,
      log,
      ...(config.faultRestorePauseState !== '' && config.faultRestorePauseMs > 0
        ? { wrapTargets: (t: RestoreTargetOps) => pausedTargets(t, config.faultRestorePauseState, config.faultRestorePauseMs, log) }
        : {}),
    },
    {
      checkIntervalMs: config.copyCheckIntervalMs,
      maxSegmentsPerTask: config.copyMaxSegmentsPerTask,
      taskRetentionMs: config.copyTaskRetentionMs,
      jobTimeoutMs: config.copyJobTimeoutMs,
      finalizeLeaseMs: config.copyFinalizeLeaseMs,
    },
  );
  // Reconcile what a crash left (restore targets without a job, pins of gone jobs) before the loops run.
  await restores.init();
  restores.start();
  const metrics = new Metrics();
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
  const housekeeping = new LoopRunner('housekeeping', config.gcIntervalMs, async () => {
    await snapshots.tick();
    await gc.tick();
  }, log, { immediate: false });
  housekeeping.start();
  const startedAtMs = clock.nowMs();
  const handlers: Record<string, Handler> = {
    ...createHandlers(engine.roles, { serverId: String(startedAtMs), startedAtMs }),
    ...snapshotHandlers(snapshots, restores, clock),
    ...(overrides.extraHandlers?.(engine) ?? {}),
  };
  const proxy = await serveProxy(config, {
    log,
    metrics,
    handlers,
    segmentPhases: () => engine.data.segmentPhases(),
    gcDryRun: () => gc.tick({ dryRun: true }),
    liveCollections: () => engine.catalog.allCollections().filter((c) => c.state === 'Created').length,
  });
  log.info({ address: `${config.host}:${proxy.port}`, metricsPort: proxy.metricsPort, dataDir }, 'quiver is serving');

  let closed: Promise<void> | undefined;
  return {
    port: proxy.port,
    metricsPort: proxy.metricsPort,
    address: `${config.host}:${proxy.port}`,
    engine,
    snapshots,
    restores,
    gc,
    log,
    close: () =>
      (closed ??= (async () => {
        await proxy.shutdown();
        await Promise.all([restores.stop(), housekeeping.stop(), gc.stop()]);
        await engine.close();
        await wal.close();
        await local.close();
        await kv.close();
        await releaseLock();
      })()),
  };
}

/**
 * Test-only fault injection (crash tests): the side effect of one job state (Pending: register,
 * Publishing: publish, RollingBack: rollback) logs "fault: restore paused" and waits `pauseMs` first, so
 * that a test can kill -9 the process while the job is persisted in that state.
 */
function pausedTargets(targets: RestoreTargetOps, state: Config['faultRestorePauseState'], pauseMs: number, log: Logger): RestoreTargetOps {
  const pause = async (job: CopyJob, phase: string): Promise<void> => {
    if (phase !== state) return;
    log.warn({ jobId: job.id, state: phase, pauseMs }, 'fault: restore paused');
    await new Promise((r) => setTimeout(r, pauseMs));
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
function delayedCopies(store: ObjectStore, delayMs: number): ObjectStore {
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
