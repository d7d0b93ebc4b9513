/**
 * `quiver cluster status`: GET /cluster on the serving process's metrics port, printed as two tables
 * (data nodes, jobs in flight) or as the JSON the server sent. The command body takes an output sink and
 * an address so that tests run it in-process against a local HTTP server; main.ts only parses argv.
 */

import type { ClusterJobStatus } from '../coord/cluster/types.js';
import type { ExitCode, OutputSink } from './snapshot-commands.js';

export interface ClusterStatusArgs {
  /** host:port of `quiver serve`'s metrics endpoint. */
  readonly metricsAddress: string;
  readonly json?: boolean | undefined;
  readonly timeoutMs?: number | undefined;
  /** `Authorization` for a server with auth on (cli/client-access.ts). */
  readonly headers?: Record<string, string> | undefined;
}

const TIMEOUT_MS_DEFAULT = 10_000;

export async function clusterStatus(args: ClusterStatusArgs, sink: OutputSink): Promise<ExitCode> {
  const url = `http://${args.metricsAddress}/cluster`;
  let res: Response;
  let text: string;
  try {
    res = await fetch(url, { headers: args.headers, signal: AbortSignal.timeout(args.timeoutMs ?? TIMEOUT_MS_DEFAULT) });
    text = await res.text();
  } catch (e) {
    sink.err(
      `error: cannot reach Quiver at ${url}: ${describeFetchError(e)} (is \`quiver serve\` running, and is this its metrics port? --metrics-address)`,
    );
    return 1;
  }
  if (!res.ok) {
    const hint = res.status === 404 ? ' (not the metrics port of a `quiver serve` that reports its cluster?)' : '';
    sink.err(`error: ${url} answered HTTP ${res.status}: ${oneLine(text).slice(0, 200)}${hint}`);
    return 1;
  }
  let body: unknown;
  let status: ClusterStatusView;
  try {
    body = JSON.parse(text);
    status = parseClusterStatus(body);
  } catch (e) {
    sink.err(`error: ${url} answered something other than a cluster status: ${e instanceof Error ? e.message : String(e)}`);
    return 1;
  }
  if (args.json === true) {
    // What the server said, checked but not rewritten: scripts get every field it sends.
    sink.out(JSON.stringify(body, null, 2));
    return 0;
  }
  for (const line of formatClusterStatus(status)) sink.out(line);
  return 0;
}

/**
 * A /cluster answer as printed. Lenient on purpose: node ids may be numbers or strings, a node that never
 * answered has no heartbeat time, and states are shown as the server names them (NodeRegistry: Healthy,
 * Suspect, Lost), so that the command keeps working across server versions.
 */
export interface ClusterStatusView {
  readonly nowMs: number;
  readonly nodes: readonly {
    readonly nodeId: string;
    readonly address: string;
    readonly slotsTotal: number;
    readonly slotsUsed: number;
    readonly tasksByType: Readonly<Record<string, number>>;
    readonly lastHeartbeatMs: number | undefined;
    readonly state: string;
  }[];
  readonly jobs: readonly ClusterJobStatus[];
}

/** Checks the shape of a /cluster answer (assert right after reading). `localNowMs` when the server sends no clock. */
export function parseClusterStatus(body: unknown, localNowMs = Date.now()): ClusterStatusView {
  const b = body as { nowMs?: unknown; nodes?: unknown; jobs?: unknown } | null;
  if (typeof b !== 'object' || b === null || !Array.isArray(b.nodes)) throw new Error('no "nodes" array');
  if (b.jobs !== undefined && !Array.isArray(b.jobs)) throw new Error('"jobs" is not an array');
  const jobs: unknown[] = Array.isArray(b.jobs) ? b.jobs : [];
  const nodes = b.nodes.map((n: unknown, i: number) => {
    const x = n as Record<string, unknown> | null;
    if (typeof x !== 'object' || x === null) throw new Error(`node ${i} is not an object`);
    const num = (k: string): number => {
      const v = x[k];
      if (typeof v !== 'number' || !Number.isFinite(v)) throw new Error(`node ${i}: "${k}" is not a number`);
      return v;
    };
    const str = (k: string): string => {
      const v = x[k];
      if (typeof v !== 'string') throw new Error(`node ${i}: "${k}" is not a string`);
      return v;
    };
    const id = x['nodeId'];
    if (typeof id !== 'string' && typeof id !== 'number') throw new Error(`node ${i}: "nodeId" is not a number or string`);
    const tasks = x['tasksByType'];
    if (tasks !== undefined && (typeof tasks !== 'object' || tasks === null)) throw new Error(`node ${i}: "tasksByType" is not an object`);
    const heartbeat = x['lastHeartbeatMs'];
    return {
      nodeId: String(id),
      address: str('address'),
      slotsTotal: num('slotsTotal'),
      slotsUsed: num('slotsUsed'),
      tasksByType: Object.fromEntries(
        Object.entries((tasks ?? {}) as Record<string, unknown>).filter((e): e is [string, number] => typeof e[1] === 'number'),
      ),
      lastHeartbeatMs: heartbeat === null || heartbeat === undefined ? undefined : num('lastHeartbeatMs'),
      state: str('state'),
    };
  });
  return {
    nowMs: typeof b.nowMs === 'number' ? b.nowMs : localNowMs,
    nodes,
    jobs: jobs.map((j: unknown, i: number): ClusterJobStatus => {
      const x = j as Record<string, unknown> | null;
      if (typeof x !== 'object' || x === null) throw new Error(`job ${i} is not an object`);
      if (typeof x['jobId'] !== 'string' && typeof x['jobId'] !== 'number') throw new Error(`job ${i}: no "jobId"`);
      return {
        jobId: String(x['jobId']),
        kind: typeof x['kind'] === 'string' ? x['kind'] : '?',
        state: typeof x['state'] === 'string' ? x['state'] : '?',
        progress: typeof x['progress'] === 'number' ? x['progress'] : 0,
        reason: typeof x['reason'] === 'string' && x['reason'] !== '' ? x['reason'] : undefined,
      };
    }),
  };
}

/** The two tables; ages are measured on the server's clock (`nowMs`), so a skewed client clock does not matter. */
export function formatClusterStatus(status: ClusterStatusView): string[] {
  const lines: string[] = [];
  if (status.nodes.length === 0) {
    lines.push('data nodes: none registered');
  } else {
    lines.push(
      ...table(
        ['NODE', 'ADDRESS', 'SLOTS', 'TASKS', 'HEARTBEAT', 'STATE'],
        status.nodes.map((n) => [
          n.nodeId,
          n.address,
          `${n.slotsUsed}/${n.slotsTotal}`,
          formatTasks(n.tasksByType),
          n.lastHeartbeatMs === undefined ? '-' : `${formatAge(status.nowMs - n.lastHeartbeatMs)} ago`,
          n.state,
        ]),
      ),
    );
  }
  lines.push('');
  if (status.jobs.length === 0) {
    lines.push('jobs in flight: none');
  } else {
    lines.push(
      ...table(
        ['JOB', 'KIND', 'STATE', 'PROGRESS', 'REASON'],
        status.jobs.map((j) => [j.jobId, j.kind, j.state, `${Math.round(j.progress)}%`, j.reason ?? '']),
      ),
    );
  }
  return lines;
}

function formatTasks(tasks: Readonly<Record<string, number>>): string {
  const parts = Object.entries(tasks)
    .filter(([, n]) => n > 0)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([type, n]) => `${type}=${n}`);
  return parts.length === 0 ? '-' : parts.join(',');
}

export function formatAge(ms: number): string {
  const t = Math.max(0, ms);
  if (t < 10_000) return `${(t / 1000).toFixed(1)}s`;
  if (t < 120_000) return `${Math.round(t / 1000)}s`;
  if (t < 7_200_000) return `${Math.round(t / 60_000)}m`;
  return `${Math.round(t / 3_600_000)}h`;
}

function table(header: readonly string[], rows: readonly (readonly string[])[]): string[] {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const render = (cells: readonly string[]): string =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  return [render(header), ...rows.map(render)];
}

function describeFetchError(e: unknown): string {
  if (e instanceof Error && e.name === 'TimeoutError') return 'no answer in time';
  const cause = e instanceof Error ? (e.cause as { code?: string; message?: string } | undefined) : undefined;
  return oneLine(cause?.code ?? cause?.message ?? (e instanceof Error ? e.message : String(e)));
}

function oneLine(text: string): string {
  return text.replace(/\s*\n\s*/g, ' ').trim();
}
