import type { MilvusClient, ResStatus } from '@zilliz/milvus2-sdk-node';
import { formatFailure, type ExitCode, type OutputSink } from './snapshot-commands.js';

/**
 * `quiver snapshot schedule | usage | diff` and the `--bytes` columns of list/describe. The schedule is
 * three collection properties set through the SDK; usage and diff have no Milvus RPC and are read from
 * the server's HTTP (metrics) port (proxy/snapshot-insights.ts).
 */

export type PolicyClient = Pick<MilvusClient, 'alterCollectionProperties' | 'describeCollection'>;

/** The HTTP side; throws an error with the server's `reason` and Milvus `code`. */
export interface InsightsClient {
  usage(db: string, collection: string): Promise<UsageJson>;
  /** Yields the summary line first, then one change per line. */
  diff(db: string, collection: string, from: string, to: string): AsyncIterable<Record<string, unknown>>;
}

export interface UsageJson {
  readonly live_bytes: number;
  readonly snapshot_only_bytes: number;
  readonly snapshots: readonly { name: string; created_at_ms: number; referenced_bytes: number; exclusive_bytes: number }[];
}

class HttpFailure extends Error {
  constructor(
    message: string,
    readonly code: number | undefined,
  ) {
    super(message);
  }
}

async function failureOf(res: Response, address: string): Promise<HttpFailure> {
  const text = await res.text();
  try {
    const b = JSON.parse(text) as { code?: number; reason?: string };
    return new HttpFailure(b.reason ?? `HTTP ${res.status}`, b.code);
  } catch {
    return new HttpFailure(`${address} answered HTTP ${res.status}: ${text.slice(0, 200)} (is it the server's metrics port?)`, undefined);
  }
}

export function httpInsightsClient(address: string, headers: Record<string, string> = {}): InsightsClient {
  const url = (path: string, q: Record<string, string>) => `http://${address}${path}?${new URLSearchParams(q).toString()}`;
  return {
    async usage(db, collection) {
      const res = await fetch(url('/snapshots/usage', { db, collection }), { headers });
      if (!res.ok) throw await failureOf(res, address);
      return (await res.json()) as UsageJson;
    },
    async *diff(db, collection, from, to) {
      const res = await fetch(url('/snapshots/diff', { db, collection, from, to }), { headers });
      if (!res.ok || !res.body) throw await failureOf(res, address);
      const decoder = new TextDecoder();
      let rest = '';
      for await (const chunk of res.body) {
        rest += decoder.decode(chunk as Uint8Array, { stream: true });
        const lines = rest.split('\n');
        rest = lines.pop()!;
        for (const l of lines) if (l) yield JSON.parse(l) as Record<string, unknown>;
      }
      if (rest) yield JSON.parse(rest) as Record<string, unknown>;
    },
  };
}

export interface ScheduleArgs {
  readonly db: string;
  readonly collection: string;
  readonly everySeconds?: number | undefined;
  readonly keep?: number | undefined;
  readonly maxAgeSeconds?: number | undefined;
}

const KEYS = {
  every: 'snapshot.schedule.interval.seconds',
  keep: 'snapshot.retention.count',
  maxAge: 'snapshot.retention.max_age.seconds',
} as const;

export class SnapshotInsightCommands {
  readonly #client: PolicyClient | undefined;
  readonly #http: InsightsClient | undefined;
  readonly #sink: OutputSink;

  constructor(deps: { client?: PolicyClient | undefined; http?: InsightsClient | undefined; sink: OutputSink }) {
    this.#client = deps.client;
    this.#http = deps.http;
    this.#sink = deps.sink;
  }

  /** Sets the given parts of the policy (0 turns one off), then prints the policy in force. */
  schedule(a: ScheduleArgs): Promise<ExitCode> {
    return this.#run(async () => {
      const client = this.#need(this.#client, 'schedule needs the server address');
      const set: Record<string, string> = {};
      if (a.everySeconds !== undefined) set[KEYS.every] = String(a.everySeconds);
      if (a.keep !== undefined) set[KEYS.keep] = String(a.keep);
      if (a.maxAgeSeconds !== undefined) set[KEYS.maxAge] = String(a.maxAgeSeconds);
      if (Object.keys(set).length > 0) {
        check(await client.alterCollectionProperties({ db_name: a.db, collection_name: a.collection, properties: set }));
      }
      const d = await client.describeCollection({ db_name: a.db, collection_name: a.collection });
      check(d.status);
      const props = new Map((d.properties ?? []).map((p) => [p.key, p.value] as const));
      const n = (k: string) => Number(props.get(k) ?? 0);
      const every = n(KEYS.every);
      this.#sink.out(
        `collection ${a.collection}: ${every > 0 ? `snapshot every ${every}s` : 'no schedule'}, keep ${n(KEYS.keep) || 'all'}, max age ${n(KEYS.maxAge) ? `${n(KEYS.maxAge)}s` : 'none'}`,
      );
    });
  }

  /** `list --bytes`: one row per snapshot, then the collection's total kept alive by snapshots alone. */
  usage(a: { db: string; collection: string; json?: boolean | undefined }): Promise<ExitCode> {
    return this.#run(async () => {
      const u = await this.#need(this.#http, 'byte accounting needs the server HTTP address (--http-address)').usage(a.db, a.collection);
      if (a.json) {
        this.#sink.out(JSON.stringify(u));
        return;
      }
      const rows = u.snapshots.map((s) => [s.name, new Date(s.created_at_ms).toISOString(), bytes(s.referenced_bytes), bytes(s.exclusive_bytes)]);
      for (const line of table([['NAME', 'CREATED', 'REFERENCED', 'EXCLUSIVE'], ...rows])) this.#sink.out(line);
      this.#sink.out(`kept alive by snapshots only: ${bytes(u.snapshot_only_bytes)} (live collection: ${bytes(u.live_bytes)})`);
    });
  }

  /** `describe --bytes`: the lines for one snapshot. */
  usageOf(a: { db: string; collection: string; name: string }): Promise<ExitCode> {
    return this.#run(async () => {
      const u = await this.#need(this.#http, 'byte accounting needs the server HTTP address (--http-address)').usage(a.db, a.collection);
      const s = u.snapshots.find((x) => x.name === a.name);
      if (!s) throw new HttpFailure(`snapshot not found[collection=${a.collection}][snapshot=${a.name}]`, 2600);
      this.#sink.out(`referenced:   ${bytes(s.referenced_bytes)}`);
      this.#sink.out(`exclusive:    ${bytes(s.exclusive_bytes)} (freed by dropping it, once GC runs)`);
    });
  }

  /** Counts by default; `jsonl`: one JSON object per changed pk on stdout, the counts on stderr. */
  diff(a: { db: string; collection: string; from: string; to: string; jsonl?: boolean | undefined }): Promise<ExitCode> {
    return this.#run(async () => {
      const http = this.#need(this.#http, 'diff needs the server HTTP address (--http-address)');
      let summary: Record<string, unknown> | undefined;
      for await (const line of http.diff(a.db, a.collection, a.from, a.to)) {
        if (summary === undefined) {
          summary = line;
          continue;
        }
        if (a.jsonl) this.#sink.out(JSON.stringify(line));
      }
      if (summary === undefined) throw new HttpFailure('the server sent no diff', undefined);
      const text = `${a.from} → ${a.to}: ${String(summary['inserted'])} inserted, ${String(summary['deleted'])} deleted, ${String(summary['updated'])} updated (${String(summary['segments_read'])} segments and ${String(summary['deltalogs_read'])} deltalogs read, ${String(summary['segments_skipped'])} segments unchanged)`;
      if (a.jsonl) this.#sink.err(text);
      else this.#sink.out(text);
    });
  }

  #need<T>(v: T | undefined, why: string): T {
    if (v === undefined) throw new HttpFailure(why, undefined);
    return v;
  }

  async #run(body: () => Promise<void>): Promise<ExitCode> {
    try {
      await body();
      return 0;
    } catch (e) {
      this.#sink.err(formatFailure(e));
      return 1;
    }
  }
}

function check(s: ResStatus | undefined): void {
  if (s === undefined) throw new HttpFailure('the server sent no status', undefined);
  const ok = (s.error_code === 'Success' || s.error_code === 0) && (s.code === undefined || s.code === 0);
  if (!ok) throw new HttpFailure(s.reason || String(s.error_code), s.code || undefined);
}

/** 1536 → "1.5 KiB"; exact byte count below 1 KiB. */
export function bytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${n} B` : `${v.toFixed(1)} ${units[u]}`;
}

function table(rows: readonly (readonly string[])[]): string[] {
  const widths: number[] = [];
  for (const r of rows) r.forEach((c, i) => (widths[i] = Math.max(widths[i] ?? 0, c.length)));
  return rows.map((r) =>
    r
      .map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd(),
  );
}
