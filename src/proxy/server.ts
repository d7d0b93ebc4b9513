import { createServer, type IncomingMessage, type Server as HttpServer, type ServerResponse } from 'node:http';
import { randomUUID } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import type { Config } from '../common/config.js';
import { codeName, quiverError } from '../common/errors.js';
import type { Metrics } from '../common/metrics.js';
import type { CallContext, Handler } from './milvus-service.js';
import { loadServices, root } from './proto.js';
import { OK, statusOf } from './status.js';

/**
 * The proxy's network side: the gRPC MilvusService dispatcher (one handler per method, every throw
 * mapped to a Status by statusOf) and the HTTP endpoint for /metrics, /gc/dry-run and /healthz. What it
 * serves (and POST /restore-jobs/{id}/cancel) comes from its caller (wiring/server.ts builds the roles and the handlers).
 */

export interface ProxyDeps {
  readonly log: Logger;
  readonly metrics: Metrics;
  readonly handlers: Record<string, Handler>;
  /** Segment counts by phase, for the segments gauge. */
  readonly segmentPhases: () => Map<string, number>;
  /** What GC would delete right now. */
  readonly gcDryRun: () => Promise<unknown>;
  /** Live (visible) collections, for /healthz. */
  readonly liveCollections: () => number;
  /** Writes failing right now (full disk, EIO): /healthz answers 503 with the reasons while any is. */
  readonly writeFaults: () => readonly { readonly target: string; readonly reason: string }[];
  /**
   * `POST /restore-jobs/{id}/cancel` (the SDK has no cancel RPC): cancels a restore job and answers the
   * job as a RestoreSnapshotInfo. Errors answer `{code, reason}` with the Milvus code.
   */
  readonly cancelRestoreJob?: ((jobId: number) => Promise<unknown>) | undefined;
  /** `GET /exports` (`quiver snapshot export` progress): exports in flight with their bytes, as JSON. */
  readonly exportsInFlight?: (() => unknown) | undefined;
  /** `GET /cluster` (`quiver cluster status`): data nodes and jobs in flight, as JSON. */
  readonly clusterStatus?: (() => Promise<unknown>) | undefined;
  /** More HTTP routes (e.g. proxy/snapshot-insights.ts); returns false for a request it does not serve. */
  readonly extraRoutes?: ((req: IncomingMessage, res: ServerResponse) => boolean) | undefined;
}

export interface ProxyEndpoints {
  readonly port: number;
  readonly metricsPort: number;
  /** Stops accepting requests and waits for the ones in flight. Idempotent. */
  shutdown(): Promise<void>;
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

/** Binds the gRPC server and the HTTP endpoint. */
export async function serveProxy(config: Config, deps: ProxyDeps): Promise<ProxyEndpoints> {
  const { log, metrics, handlers } = deps;
  const shapes = replyShapes();
  const { milvus, telemetry } = loadServices();

  const implementation: grpc.UntypedServiceImplementation = {};
  for (const [key, def] of Object.entries(milvus)) {
    const name = (def as { path: string }).path.split('/').pop()!;
    const shape = shapes.get(name) ?? 'field';
    const handler = handlers[name];
    const handle = async (call: grpc.ServerUnaryCall<unknown, unknown>, callback: grpc.sendUnaryData<unknown>): Promise<void> => {
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
    // grpc-js ignores a handler's promise: a throw after the try block (metrics, callback) must not become an unhandled rejection.
    implementation[key] = (call: grpc.ServerUnaryCall<unknown, unknown>, callback: grpc.sendUnaryData<unknown>) => {
      handle(call, callback).catch((e: unknown) => log.error({ err: e, method: name }, 'request handler failed'));
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
      const segs = deps.segmentPhases();
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
      deps.gcDryRun().then(
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
    const cancel = /^\/restore-jobs\/(\d{1,16})\/cancel$/.exec(req.url ?? '');
    if (cancel && deps.cancelRestoreJob) {
      if (req.method !== 'POST') {
        res.writeHead(405, { allow: 'POST' });
        res.end('method not allowed');
        return;
      }
      req.resume();
      deps.cancelRestoreJob(Number(cancel[1])).then(
        (job) => {
          res.writeHead(200, { 'content-type': 'application/json' });
          res.end(JSON.stringify(job));
        },
        (err: unknown) => {
          const s = statusOf(err);
          // 404 for an unknown job (RestoreJobNotFound), 409 for a job that can no longer be cancelled.
          res.writeHead(s.code === 2603 ? 404 : s.code === 1100 ? 409 : 500, { 'content-type': 'application/json' });
          res.end(JSON.stringify({ code: s.code, reason: s.reason }));
        },
      );
      return;
    }
    if (req.url === '/exports' && deps.exportsInFlight) {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(deps.exportsInFlight()));
      return;
    }
    if (req.url === '/cluster' && deps.clusterStatus) {
      deps.clusterStatus().then(
        (status) => {
          res.writeHead(200, { 'content-type': 'application/json' });
          res.end(JSON.stringify(status));
        },
        (err: Error) => {
          res.writeHead(500);
          res.end(err.message);
        },
      );
      return;
    }
    if (req.url === '/healthz') {
      const collections = deps.liveCollections();
      const faults = deps.writeFaults();
      if (faults.length > 0) {
        // Reads still work, but a load balancer should send writes elsewhere and an operator should look.
        res.writeHead(503, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ healthy: false, reason: faults.map((f) => `${f.target} writes failing: ${f.reason}`).join('; '), faults, collections }));
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ healthy: true, collections }));
      return;
    }
    if (deps.extraRoutes?.(req, res)) return;
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

  let stopped: Promise<void> | undefined;
  return {
    port,
    metricsPort,
    shutdown: () =>
      (stopped ??= (async () => {
        await new Promise<void>((r) => server.tryShutdown(() => r()));
        await new Promise<void>((r) => http.close(() => r()));
      })()),
  };
}
