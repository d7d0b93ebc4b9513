import { createServer, type Server as HttpServer } from 'node:http';
import { mkdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { randomUUID } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import { pino, type Logger } from 'pino';
import { systemClock, type Clock } from '../common/clock.js';
import type { Config } from '../common/config.js';
import { codeName, quiverError } from '../common/errors.js';
import { Metrics } from '../common/metrics.js';
import { lockDataDir } from '../common/data-dir-lock.js';
import { monitorWrites, WriteHealth } from '../common/write-health.js';
import { SqliteMetaKV } from '../meta/sqlite-kv.js';
import { Engine } from '../node/engine.js';
import { GarbageCollector } from '../coord/gc/garbage-collector.js';
import { SNAPSHOT_DEFAULTS, SnapshotManager } from '../coord/snapshot/snapshot-manager.js';
import type { ObjectStore } from '../storage/object-store.js';
import { RestoreService } from '../coord/snapshot/restore-service.js';
import { snapshotHandlers } from './snapshot-service.js';
import { registerObservability } from './observability.js';
import { LocalObjectStore } from '../storage/local-object-store.js';
import { openLocalWal, type Wal } from '../wal/wal.js';
import { createHandlers, type CallContext, type Handler } from './milvus-service.js';
import { loadServices, root } from './proto.js';
import { OK, statusOf } from './status.js';

/**
 * Composition root of the embedded server: SQLite metadata, a local object store and WAL under the data
 * dir, the engine, the gRPC MilvusService and an HTTP endpoint for /metrics and /healthz.
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
  /** Wraps the object store (fault-injection tests); its failures count as the store's own. */
  readonly wrapStore?: (store: ObjectStore) => ObjectStore;
  /** Wraps the WAL (fault-injection tests, e.g. an injected ENOSPC where a small tmpfs cannot be mounted). */
  readonly wrapWal?: (wal: Wal) => Wal;
  /** Extra handlers (snapshot RPCs are registered by their module). */
  readonly extraHandlers?: (engine: Engine) => Record<string, Handler>;
}

/** Whether a method's reply is a bare Status or a message with a `status` (or `alter_status`) field. */
function replyShapes(): Map<string, 'status' | 'field' | 'alter'> {
  const svc = root.lookupService('milvus.proto.milvus.MilvusService');
  svc.resolveAll();
  const out = new Map<string, 'status' | 'field' | 'alter'>();
  for (const [name, m] of Object.entries(svc.methods)) {
    const t = m.resolvedResponseType!;
    if (t.fullName === '.milvus.proto.common.Status') out.set(name, 'status');
    else if (t.fields['alter_status']) out.set(name, 'alter');
    else out.set(name, 'field');
  }
  return out;
}

export async function startServer(config: Config, overrides: ServerOverrides = {}): Promise<RunningServer> {
  const log = overrides.log ?? pino({ level: config.logLevel, base: { service: 'quiver' } });
  const clock = overrides.clock ?? systemClock;
  const dataDir = resolve(config.dataDir);
  await mkdir(dataDir, { recursive: true });
  const dirLock = await lockDataDir(dataDir);
  const metrics = new Metrics();
  // Failing writes (full disk, EIO) show in /healthz, a counter and the log; each store recovers by itself.
  const health = new WriteHealth({ log, clock, countFailure: (target) => metrics.writeFailures.inc({ target }) });
  const kv = monitorWrites(new SqliteMetaKV(join(dataDir, 'meta.db')), 'meta', ['put', 'delete', 'txn'], health);
  const local = new LocalObjectStore(join(dataDir, 'objects'), { copyMode: config.copyMode });
  const store = monitorWrites<ObjectStore>(overrides.wrapStore ? overrides.wrapStore(local) : local, 'objects', ['put', 'copy'], health);
  // Temp files of puts interrupted by a crash are invisible to readers; reclaim their space at start.
  await local.removeTempFiles();
  const localWal = await openLocalWal(join(dataDir, 'wal'), { fsync: config.walFsync, onWarn: (msg) => log.warn({ wal: true }, msg) });
  const wal = monitorWrites<Wal>(overrides.wrapWal ? overrides.wrapWal(localWal) : localWal, 'wal', ['append'], health);
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
    { engine, kv, store, clock, log },
    { ...SNAPSHOT_DEFAULTS, pendingTimeoutMs: config.snapshotPendingTimeoutMs, faultPauseBeforeCommitMs: config.faultSnapshotPauseMs || undefined },
  );
  await snapshots.init();
  const copyStore = config.faultCopyDelayMs > 0 ? delayedCopies(store, config.faultCopyDelayMs) : store;
  const restores = new RestoreService(
    { engine, snapshots, kv, store: copyStore, clock, log },
    {
      checkIntervalMs: config.copyCheckIntervalMs,
      maxSegmentsPerTask: config.copyMaxSegmentsPerTask,
      taskRetentionMs: config.copyTaskRetentionMs,
      jobTimeoutMs: config.copyJobTimeoutMs,
    },
  );
  restores.start();
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
  let housekeeping: Promise<void> | undefined;
  const housekeepingTimer = setInterval(() => {
    housekeeping ??= (async () => {
      try {
        await snapshots.tick();
        await gc.tick();
      } catch (err) {
        log.error({ err }, 'housekeeping failed');
      }
    })().finally(() => (housekeeping = undefined));
  }, config.gcIntervalMs);
  housekeepingTimer.unref();
  const startedAtMs = clock.nowMs();
  const handlers: Record<string, Handler> = {
    ...createHandlers(engine, { serverId: String(startedAtMs), startedAtMs }),
    ...snapshotHandlers(snapshots, restores, clock),
    // Milvus's CheckHealth: unhealthy, with reasons, while writes fail (as /healthz).
    CheckHealth: () => ({ status: OK, isHealthy: health.healthy, reasons: health.faults().map((f) => `${f.target} writes failing: ${f.reason}`), quota_states: [] }),
    ...(overrides.extraHandlers?.(engine) ?? {}),
  };
  const shapes = replyShapes();
  const { milvus, telemetry } = loadServices();

  const implementation: grpc.UntypedServiceImplementation = {};
  for (const [key, def] of Object.entries(milvus)) {
    const name = (def as { path: string }).path.split('/').pop()!;
    const shape = shapes.get(name) ?? 'field';
    const handler = handlers[name];
    implementation[key] = async (call: grpc.ServerUnaryCall<unknown, unknown>, callback: grpc.sendUnaryData<unknown>) => {
      const started = process.hrtime.bigint();
      const requestId = (call.metadata.get('client-request-id')[0] as string | undefined) ?? randomUUID();
      const dbName = (call.metadata.get('dbname')[0] as string | undefined) ?? '';
      const ctx: CallContext = { dbName, requestId };
      let reply: unknown;
      let status = 'Success';
      try {
        if (!handler) throw quiverError('ServiceUnimplemented', `${name} is not supported by Quiver`);
        reply = await handler(call.request, ctx);
      } catch (e) {
        const st = statusOf(e);
        // Labelled by the new code's name: the deprecated error_code folds most errors into UnexpectedError.
        status = codeName(st.code);
        if (st.code === 5) log.error({ err: e, method: name, requestId }, 'request failed');
        else log.info({ method: name, requestId, code: st.code, reason: st.reason }, 'request rejected');
        reply = shape === 'status' ? st : shape === 'alter' ? { alter_status: st } : { status: st };
      }
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      metrics.requests.inc({ method: name, status });
      metrics.latency.observe({ method: name }, seconds);
      if (name === 'Insert' || name === 'Upsert') {
        if (status === 'Success') metrics.rowsInserted.inc(Number((call.request as { num_rows?: number }).num_rows ?? 0));
      }
      callback(null, reply);
    };
  }

  const server = new grpc.Server({
    'grpc.max_receive_message_length': config.maxMessageBytes,
    'grpc.max_send_message_length': config.maxMessageBytes,
    'grpc.keepalive_permit_without_calls': 1,
  });
  // Insert batches are megabytes: with HTTP/2's default 64 KiB windows every request needs dozens of
  // WINDOW_UPDATE round trips through our event loop. grpc-js has no option for the server's receive
  // window, so set the HTTP/2 settings it passes to http2.createServer (and widen each session's
  // connection window when it opens).
  const http2Options = (server as unknown as { commonServerOptions?: { settings?: Record<string, number> } }).commonServerOptions;
  if (http2Options) http2Options.settings = { ...(http2Options.settings ?? {}), initialWindowSize: 16 << 20 };
  server.addService(milvus, implementation);
  if (telemetry) {
    server.addService(telemetry, {
      ClientHeartbeat: (_call: unknown, cb: grpc.sendUnaryData<unknown>) => cb(null, { status: OK, server_timestamp: String(Date.now()), commands: [] }),
      GetClientTelemetry: (_call: unknown, cb: grpc.sendUnaryData<unknown>) => cb(null, { status: OK }),
      PushClientCommand: (_call: unknown, cb: grpc.sendUnaryData<unknown>) => cb(null, { status: OK }),
      DeleteClientCommand: (_call: unknown, cb: grpc.sendUnaryData<unknown>) => cb(null, { status: OK }),
    });
  }
  const port = await new Promise<number>((res, rej) =>
    server.bindAsync(`${config.host}:${config.port}`, grpc.ServerCredentials.createInsecure(), (err, p) => (err ? rej(err) : res(p))),
  );

  const http: HttpServer = createServer((req, res) => {
    if (req.url === '/metrics') {
      const segs = new Map<string, number>();
      for (const c of engine.catalog.allCollections()) {
        if (c.state !== 'Created') continue;
        for (const s of engine.runtime(c.id).segments.values()) segs.set(s.phase, (segs.get(s.phase) ?? 0) + 1);
      }
      metrics.segments.reset();
      for (const [state, n] of segs) metrics.segments.set({ state }, n);
      metrics.registry.metrics().then(
        (text) => {
          res.writeHead(200, { 'content-type': metrics.registry.contentType });
          res.end(text);
        },
        (err: Error) => {
          res.writeHead(500);
          res.end(err.message);
        },
      );
      return;
    }
    if (req.url === '/gc/dry-run') {
      // What GC would delete right now, without deleting anything.
      gc.tick({ dryRun: true }).then(
        (report) => {
          res.writeHead(200, { 'content-type': 'application/json' });
          res.end(JSON.stringify(report, null, 2));
        },
        (err: Error) => {
          res.writeHead(500);
          res.end(err.message);
        },
      );
      return;
    }
    if (req.url === '/healthz') {
      const collections = engine.catalog.allCollections().filter((c) => c.state === 'Created').length;
      if (!health.healthy) {
        // Reads still work, but a load balancer should send writes elsewhere and an operator should look.
        const faults = health.faults();
        res.writeHead(503, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ healthy: false, reason: faults.map((f) => `${f.target} writes failing: ${f.reason}`).join('; '), faults, collections }));
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ healthy: true, collections }));
      return;
    }
    res.writeHead(404);
    res.end('not found');
  });
  const metricsPort = await new Promise<number>((res, rej) => {
    http.once('error', rej);
    http.listen(config.metricsPort, config.host, () => {
      const a = http.address();
      res(typeof a === 'object' && a ? a.port : config.metricsPort);
    });
  });
  log.info({ address: `${config.host}:${port}`, metricsPort, dataDir }, 'quiver is serving');

  let closed: Promise<void> | undefined;
  return {
    port,
    metricsPort,
    address: `${config.host}:${port}`,
    engine,
    snapshots,
    restores,
    gc,
    log,
    close: () =>
      (closed ??= (async () => {
        await new Promise<void>((r) => server.tryShutdown(() => r()));
        await new Promise<void>((r) => http.close(() => r()));
        clearInterval(housekeepingTimer);
        await housekeeping;
        await restores.stop();
        await engine.close();
        await wal.close();
        await local.close();
        await kv.close();
        dirLock.release();
      })()),
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
