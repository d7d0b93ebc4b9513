import { expect } from 'vitest';
import type { RestCallContext, RestRoute } from '../types.js';

/** What a route sent through its RestCall, in order. */
export interface SentCall {
  readonly method: string;
  readonly req: Record<string, unknown>;
}

/**
 * Runs one route as the REST door would, minus HTTP: parse the body with the route's schema (throws the
 * ZodError the door turns into code 1100), then `run` with a fake RestCall that records each request and
 * answers from `replies` (a function of the method and request, or a map by method; a returned Error is
 * thrown as a handler's QuiverError would be). `int64AsNumber` stands for the Accept-Type-Allow-Int64 header.
 */
export async function runRoute(
  routes: readonly RestRoute[],
  path: string,
  body: unknown,
  replies: Record<string, unknown> | ((method: string, req: Record<string, unknown>) => unknown) = {},
  opts: { readonly int64AsNumber?: boolean } = {},
): Promise<{ data: unknown; calls: SentCall[] }> {
  const route = routes.find((r) => r.path === path);
  expect(route, `route ${path}`).toBeDefined();
  const parsed: unknown = route!.body.parse(body);
  const calls: SentCall[] = [];
  const ctx: RestCallContext = { dbName: dbNameOf(body), requestId: 'req-1', int64AsNumber: opts.int64AsNumber ?? false };
  const data = await route!.run(
    parsed,
    async (method, req) => {
      calls.push({ method, req });
      const r = typeof replies === 'function' ? replies(method, req) : replies[method];
      return r instanceof Error ? Promise.reject(r) : r;
    },
    ctx,
  );
  return { data, calls };
}

function dbNameOf(body: unknown): string {
  const d = (body as { dbName?: unknown } | null)?.dbName;
  return typeof d === 'string' && d !== '' ? d : 'default';
}

/** The zod issues a body draws: the fields they name (paths joined by '.', each once) and their messages. */
export function refusal(routes: readonly RestRoute[], path: string, body: unknown): { fields: string[]; messages: string[] } {
  const route = routes.find((r) => r.path === path);
  expect(route, `route ${path}`).toBeDefined();
  const r = route!.body.safeParse(body);
  expect(r.success, `${path} should refuse ${JSON.stringify(body)}`).toBe(false);
  const issues = r.success ? [] : r.error.issues;
  return { fields: [...new Set(issues.map((i) => i.path.join('.')))], messages: issues.map((i) => i.message) };
}
