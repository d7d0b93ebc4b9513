import { createServer, type IncomingMessage, type Server as HttpServer, type ServerResponse } from 'node:http';
import { randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import type { Authenticator, Authorizer } from '../auth/types.js';
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

/**
 * Who may call (src/auth/types.ts). Every MilvusService and ClientTelemetryService call is
 * authenticated, as Milvus's proxy interceptor does (Connect, GetVersion and CheckHealth included: with
 * auth on, Milvus answers none of them to a caller without credentials); the HTTP port's /healthz and
 * /metrics stay open for load balancers and scrapers. Then the authorizer, then the handler.
 */
export interface ProxyAccess {
  readonly authenticator: Authenticator;
  readonly authorizer?: Authorizer | undefined;
}

export interface ProxyDeps {
  readonly log: Logger;
  readonly access?: ProxyAccess | undefined;
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
  const authenticate = async (call: grpc.ServerUnaryCall<unknown, unknown>): Promise<string | undefined> => {
    if (deps.access === undefined) return undefined;
    const authorization = call.metadata.get('authorization')[0];
    return deps.access.authenticator.authenticate({
      authorization: typeof authorization === 'string' ? authorization : undefined,
      encoding: 'base64',
      peer: peerAddress(call.getPeer()),
    });
  };

  const implementation: grpc.UntypedServiceImplementation = {};
  for (const [key, def] of Object.entries(milvus)) {
    const name = (def as { path: string }).path.split('/').pop()!;
    const shape = shapes.get(name) ?? 'field';
    const handler = handlers[name];
    const handle = async (call: grpc.ServerUnaryCall<unknown, unknown>, callback: grpc.sendUnaryData<unknown>): Promise<void> => {
      const started = process.hrtime.bigint();
      const requestId = (call.metadata.get('client-request-id')[0] as string | undefined) ?? randomUUID();
      const dbName = (call.metadata.get('dbname')[0] as string | undefined) ?? '';
      let ctx: CallContext = { dbName, requestId, peer: peerAddress(call.getPeer()) };
      let reply: unknown;
      let status = 'Success';
      try {
        if (deps.access !== undefined) {
          const user = await authenticate(call);
          ctx = { ...ctx, user };
          const reqDb = (call.request as { db_name?: unknown } | null)?.db_name;
          deps.access.authorizer?.authorize(user, name, call.request, (typeof reqDb === 'string' && reqDb) || dbName || 'default');
        }
        if (!handler) throw quiverError('ServiceUnimplemented', `${name} is not supported by Quiver`);
        reply = await handler(call.request, ctx);
      } catch (e) {
        const st = statusOf(e);
        // Labelled by the new code's name: the deprecated error_code folds most errors into UnexpectedError.
        status = codeName(st.code);
        // Never the request: it may hold a password (CreateCredential) or a user's data.
        if (st.code === 5) log.error({ err: e, method: name, requestId, user: ctx.user }, 'request failed');
        else log.info({ method: name, requestId, user: ctx.user, code: st.code, reason: st.reason }, 'request rejected');
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
    // Authenticated like every other call; the replies carry nothing, so there is nothing to authorize.
    const answer = (reply: () => Record<string, unknown>) => (call: grpc.ServerUnaryCall<unknown, unknown>, cb: grpc.sendUnaryData<unknown>) => {
      authenticate(call).then(
        () => cb(null, { status: OK, ...reply() }),
        (e: unknown) => cb(null, { status: statusOf(e) }),
      );
    };
    server.addService(telemetry, {
      ClientHeartbeat: answer(() => ({ server_timestamp: String(Date.now()), commands: [] })),
      GetClientTelemetry: answer(() => ({})),
      PushClientCommand: answer(() => ({})),
      DeleteClientCommand: answer(() => ({})),
    });
  }
  const credentials = await serverCredentials(config.tls);
  const port = await new Promise<number>((res, rej) =>
    server.bindAsync(`${config.host}:${config.port}`, credentials, (err, p) => (err ? rej(err) : res(p))),
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

/** The address of a gRPC peer without its port (failed logins are counted per address, not per connection). */
export function peerAddress(peer: string): string {
  const p = peer.replace(/^(ipv4|ipv6):/, '');
  const bracketed = /^\[([^\]]*)\](?::\d+)?$/.exec(p);
  if (bracketed) return bracketed[1]!;
  // One colon: host:port. More: a bare IPv6 address (no port to strip).
  return (p.match(/:/g) ?? []).length === 1 ? p.slice(0, p.lastIndexOf(':')) : p;
}

/**
 * TLS on the gRPC port: one-way with a certificate and key; mutual with a CA too (a client must then
 * present a certificate that CA signed, and one without is refused in the handshake). Without
 * `config.tls`, plaintext. A file that cannot be read refuses the start naming the flag and the path.
 */
async function serverCredentials(tls: Config['tls']): Promise<grpc.ServerCredentials> {
  if (tls === undefined) return grpc.ServerCredentials.createInsecure();
  const read = async (flag: string, path: string): Promise<Buffer> => {
    try {
      return await readFile(path);
    } catch (e) {
      throw quiverError('ParameterInvalid', `${flag} ${JSON.stringify(path)}: ${(e as Error).message}`, e);
    }
  };
  const cert = await read('--tls-cert', tls.certFile);
  const key = await read('--tls-key', tls.keyFile);
  const ca = tls.caFile === undefined ? null : await read('--tls-ca', tls.caFile);
  return grpc.ServerCredentials.createSsl(ca, [{ cert_chain: cert, private_key: key }], ca !== null);
}
