import { randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import Fastify, { type FastifyReply, type FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import type { ZodError } from 'zod';
import type { Authenticator, Authorizer } from '../auth/types.js';
import { codeName, isQuiverError, quiverError } from '../common/errors.js';
import type { Metrics } from '../common/metrics.js';
import type { Handler } from '../proxy/milvus-service.js';
import { statusOf } from '../proxy/status.js';
import { asDecodedReply, asDecodedRequest, replyError } from './grpc-bridge.js';
import { isEnvelope } from './reply.js';
import type { RestCall, RestCallContext, RestRoute } from './types.js';

/**
 * The RESTful API v2 door (`POST /v2/vectordb/<path>`), beside the gRPC door (proxy/server.ts) and
 * calling the same handler table: a route translates the JSON body into the MilvusService request a gRPC
 * client would send and calls it through `RestCall`, which authorizes it as that gRPC method, runs the
 * handler, and turns a non-Success reply status into the same error. So both doors share every check and
 * every code.
 *
 * Answers, as Milvus's REST v2 does: HTTP 200 with `{code: 0, data}` on success and `{code, message}` with
 * the Milvus code on a failed call; HTTP 401 when authentication fails and 403 when a privilege is
 * missing (Milvus's checkAuthorizationV2); 413 for a body over the limit, refused from its
 * content-length before reading, or as soon as a streamed body passes the limit (the connection is then
 * closed, so the rest of the upload is never read); 404 with a JSON body for an unknown path.
 *
 * grpc-js cannot share its HTTP/2 port with an HTTP/1.1 server, so this listens on its own port (19531).
 */

export interface RestServerOptions {
  readonly host: string;
  /** 0 = any free port (RestEndpoint.port says which). */
  readonly port: number;
  readonly bodyMaxBytes: number;
  /** HTTPS with this certificate and key; mutual TLS (client certificates required) when caFile is set. */
  readonly tls?: { readonly certFile: string; readonly keyFile: string; readonly caFile?: string | undefined } | undefined;
}

export interface RestServerDeps {
  readonly log: Logger;
  readonly metrics: Metrics;
  readonly handlers: Readonly<Record<string, Handler>>;
  readonly routes: readonly RestRoute[];
  /** Absent or not `enabled`: auth is off and every call runs as no user (as on the gRPC door). */
  readonly authenticator?: Authenticator | undefined;
  readonly authorizer?: Authorizer | undefined;
}

export interface RestEndpoint {
  readonly port: number;
  readonly url: string;
  /** Stops accepting requests and waits for the ones in flight. Idempotent. */
  close(): Promise<void>;
}

const PREFIX = '/v2/vectordb/';
/** Milvus's `merr` codes for a failed login and a missing privilege. */
const NOT_AUTHENTICATED = 1400;
const NOT_PERMITTED = 1401;
const NEED_AUTHENTICATE = 1800;

/** HTTP status of a failed call: Milvus answers 200 except for authentication (401) and authorization (403). */
function httpStatusOf(code: number): number {
  if (code === NOT_AUTHENTICATED || code === NEED_AUTHENTICATE) return 401;
  if (code === NOT_PERMITTED) return 403;
  return 200;
}

function zodMessage(e: ZodError): string {
  return e.issues
    .slice(0, 5)
    .map((i) => `${i.path.length > 0 ? i.path.join('.') : 'body'}: ${i.message}`)
    .join('; ');
}

export async function serveRest(opts: RestServerOptions, deps: RestServerDeps): Promise<RestEndpoint> {
  const { log, metrics, handlers, authenticator, authorizer } = deps;
  const https = opts.tls
    ? {
        cert: await readFile(opts.tls.certFile),
        key: await readFile(opts.tls.keyFile),
        ...(opts.tls.caFile ? { ca: await readFile(opts.tls.caFile), requestCert: true, rejectUnauthorized: true } : {}),
      }
    : null;
  const app = Fastify({
    logger: false,
    bodyLimit: opts.bodyMaxBytes,
    https,
    genReqId: (req) => {
      const given = req.headers['request-id'];
      return typeof given === 'string' && /^[\w.:-]{1,128}$/.test(given) ? given : randomUUID();
    },
    // Request bodies are JSON whatever their content type says: the SDK's HttpClient sets a `ContentType`
    // header (not `Content-Type`), so fetch labels its bodies text/plain.
  });
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'string' }, (_req, body, done) => {
    try {
      done(null, JSON.parse(body as string) as unknown);
    } catch (e) {
      done(quiverError('ParameterInvalid', `the request body is not valid JSON: ${(e as Error).message}`), undefined);
    }
  });

  const send = (req: FastifyRequest, reply: FastifyReply, label: string, startedNs: bigint, httpStatus: number, body: Record<string, unknown>): void => {
    const code = Number(body['code'] ?? 0);
    const seconds = Number(process.hrtime.bigint() - startedNs) / 1e9;
    metrics.requests.inc({ method: label, status: codeName(code) });
    metrics.latency.observe({ method: label }, seconds);
    // One line per request, never the body or the Authorization header (it may hold a password).
    const line = { requestId: req.id, method: label, http: httpStatus, code, ms: Math.round(seconds * 1000), peer: req.ip };
    if (code === 0) log.info(line, 'rest request');
    else if (code === 5) log.error({ ...line, message: body['message'] }, 'rest request failed');
    else log.info({ ...line, message: body['message'] }, 'rest request rejected');
    void reply.code(httpStatus).header('content-type', 'application/json; charset=utf-8').header('request-id', req.id).send(JSON.stringify(body));
  };

  // Framework-level failures (malformed JSON, body over the limit) answered in the same envelope.
  app.setErrorHandler((err: Error & { code?: string; statusCode?: number }, req, reply) => {
    const started = (req as FastifyRequest & { startedNs?: bigint }).startedNs ?? process.hrtime.bigint();
    // The matched route, never the raw URL: a metric label must not take arbitrary client text.
    const routeUrl = req.routeOptions.url;
    const label = routeUrl?.startsWith(PREFIX) ? `rest:${routeUrl.slice(PREFIX.length)}` : 'rest:unknown';
    if (err.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
      // Closing the connection stops the client's upload: the rest of the body is never read.
      reply.header('connection', 'close');
      send(req, reply, label, started, 413, {
        code: 1102,
        message: `request body is larger than the limit of ${opts.bodyMaxBytes} bytes (--http-body-max-bytes)`,
      });
      return;
    }
    if (isQuiverError(err)) {
      send(req, reply, label, started, httpStatusOf(err.code), { code: err.code, message: err.message });
      return;
    }
    const status = typeof err.statusCode === 'number' && err.statusCode >= 400 && err.statusCode < 500 ? err.statusCode : 500;
    if (status === 500) log.error({ err, requestId: req.id }, 'rest request crashed');
    send(req, reply, label, started, status, { code: status === 500 ? 5 : 1100, message: err.message });
  });
  app.addHook('onRequest', (req, _reply, done) => {
    (req as FastifyRequest & { startedNs?: bigint }).startedNs = process.hrtime.bigint();
    done();
  });
  app.setNotFoundHandler((req, reply) => {
    send(req, reply, 'rest:unknown', process.hrtime.bigint(), 404, {
      code: 404,
      message: `no such endpoint: ${req.method} ${req.url.split('?')[0]} (the RESTful API v2 serves POST ${PREFIX}<path>)`,
    });
  });

  const seen = new Set<string>();
  for (const route of deps.routes) {
    if (seen.has(route.path)) throw new Error(`REST route ${route.path} is registered twice`);
    seen.add(route.path);
    const label = `rest:${route.path}`;
    app.post(PREFIX + route.path, async (req, reply) => {
      const started = (req as FastifyRequest & { startedNs?: bigint }).startedNs ?? process.hrtime.bigint();
      try {
        const user = await authenticate(req);
        if (req.body === undefined || req.body === null || typeof req.body !== 'object' || Array.isArray(req.body)) {
          throw quiverError('ParameterInvalid', 'the request body must be a JSON object ({} is valid)');
        }
        const parsed = route.body.safeParse(req.body);
        if (!parsed.success) throw quiverError('ParameterInvalid', `invalid parameter: ${zodMessage(parsed.error)}`);
        const rawDb = (req.body as Record<string, unknown>)['dbName'];
        const headerDb = req.headers['db-name'];
        const dbName = (typeof rawDb === 'string' && rawDb) || (typeof headerDb === 'string' && headerDb) || 'default';
        const ctx: RestCallContext & { int64AsNumber: boolean } = {
          dbName,
          requestId: req.id,
          int64AsNumber: String(req.headers['accept-type-allow-int64'] ?? '').toLowerCase() === 'true',
        };
        const call: RestCall = async (method, request, callOpts) => {
          const handler = handlers[method];
          if (!handler) throw quiverError('ServiceUnimplemented', `${method} is not supported by Quiver`);
          const decoded = asDecodedRequest(method, request);
          if (!(callOpts?.internal && method === 'DescribeCollection'))
            authorizer?.authorize(user, method, decoded, (typeof decoded.db_name === 'string' && decoded.db_name) || dbName);
          const out = asDecodedReply(method, await handler(decoded, { dbName, requestId: req.id, user }));
          const failed = replyError(method, out);
          if (failed) throw failed;
          return out;
        };
        const result = await route.run(parsed.data, call, ctx);
        send(req, reply, label, started, 200, isEnvelope(result) ? { code: 0, data: result.data ?? {}, ...result.extra } : { code: 0, data: result ?? {} });
      } catch (e) {
        const st = statusOf(e);
        if (st.code === 5) log.error({ err: e, requestId: req.id, method: label }, 'rest request crashed');
        send(req, reply, label, started, httpStatusOf(st.code), { code: st.code, message: st.reason });
      }
      return reply;
    });
  }

  /** The caller from `Authorization: Bearer <user:password | api key>`; undefined when auth is off. */
  async function authenticate(req: FastifyRequest): Promise<string | undefined> {
    if (!authenticator?.enabled) return undefined;
    const header = req.headers.authorization;
    const m = typeof header === 'string' ? /^Bearer\s+(.*)$/i.exec(header) : null;
    const token = m?.[1]?.trim();
    return authenticator.authenticate({ authorization: token ? token : undefined, encoding: 'plain', peer: req.ip });
  }

  try {
    await app.listen({ host: opts.host, port: opts.port });
  } catch (e) {
    await app.close();
    if ((e as NodeJS.ErrnoException).code === 'EADDRINUSE')
      throw quiverError(
        'ParameterInvalid',
        `REST port ${opts.host}:${opts.port} is in use: choose another with --http-port (QUIVER_HTTP_PORT), 0 = any free port`,
        e,
      );
    throw e;
  }
  const addr = app.server.address();
  const port = typeof addr === 'object' && addr ? addr.port : opts.port;
  let closed: Promise<void> | undefined;
  return {
    port,
    url: `${opts.tls ? 'https' : 'http'}://${opts.host}:${port}`,
    close: () => (closed ??= app.close()),
  };
}
