/**
 * `quiver apikey create|list|revoke`: the API-key routes on the serving process's HTTP (metrics) port
 * (proxy/credential-service.ts), with root's credentials. A key is printed once, at creation, alone on
 * stdout (so `KEY=$(quiver apikey create)` works); it is the SDK's `token`.
 */

import type { ClientAccess } from './client-access.js';
import type { ExitCode, OutputSink } from './snapshot-commands.js';

export interface ApiKeyArgs {
  /** host:port of `quiver serve`'s HTTP (metrics) endpoint. */
  readonly httpAddress: string;
  readonly access: ClientAccess;
  readonly timeoutMs?: number | undefined;
}

interface KeyInfo {
  readonly id: string;
  readonly user: string;
  readonly description: string;
  readonly createdAtMs: number;
  readonly key?: string;
}

const TIMEOUT_MS_DEFAULT = 30_000;

async function call(args: ApiKeyArgs, method: string, path: string, body?: unknown): Promise<unknown> {
  const a = args.access;
  const secret = a.token ?? (a.username !== undefined ? `${a.username}:${a.password ?? ''}` : undefined);
  if (secret === undefined) throw new Error("root's credentials are required: --user root with QUIVER_PASSWORD (or --password), or --token");
  const url = `http://${args.httpAddress}${path}`;
  let res: Response;
  try {
    res = await fetch(url, {
      method,
      headers: { authorization: `Bearer ${secret}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(args.timeoutMs ?? TIMEOUT_MS_DEFAULT),
    });
  } catch (e) {
    throw new Error(
      `cannot reach Quiver at ${url}: ${e instanceof Error ? e.message : String(e)} (is this the HTTP port of \`quiver serve\`? --http-address)`,
    );
  }
  const text = await res.text();
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new Error(`${url} answered HTTP ${res.status}: ${text.slice(0, 200)}`);
  }
  if (!res.ok) {
    const p = parsed as { code?: number; reason?: string };
    throw new Error(`${p.reason ?? `HTTP ${res.status}`} (code ${p.code ?? '?'})`);
  }
  return parsed;
}

async function run(sink: OutputSink, body: () => Promise<void>): Promise<ExitCode> {
  try {
    await body();
    return 0;
  } catch (e) {
    sink.err(`error: ${e instanceof Error ? e.message : String(e)}`);
    return 1;
  }
}

export function createApiKey(args: ApiKeyArgs & { user?: string | undefined; description?: string | undefined }, sink: OutputSink): Promise<ExitCode> {
  return run(sink, async () => {
    const k = (await call(args, 'POST', '/auth/apikeys', { user: args.user, description: args.description ?? '' })) as KeyInfo;
    sink.err(`API key ${k.id} acts as user ${k.user}; it is shown only now, store it safely:`);
    sink.out(k.key ?? '');
  });
}

export function listApiKeys(args: ApiKeyArgs & { json?: boolean | undefined }, sink: OutputSink): Promise<ExitCode> {
  return run(sink, async () => {
    const keys = (await call(args, 'GET', '/auth/apikeys')) as KeyInfo[];
    if (args.json) {
      sink.out(JSON.stringify(keys));
      return;
    }
    sink.out(['ID', 'USER', 'CREATED', 'DESCRIPTION'].join('\t'));
    for (const k of keys) sink.out([k.id, k.user, new Date(k.createdAtMs).toISOString(), k.description].join('\t'));
  });
}

export function revokeApiKey(args: ApiKeyArgs & { id: string }, sink: OutputSink): Promise<ExitCode> {
  return run(sink, async () => {
    await call(args, 'DELETE', `/auth/apikeys/${encodeURIComponent(args.id)}`);
    sink.out(`revoked ${args.id}`);
  });
}
