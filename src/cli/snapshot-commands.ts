import { setTimeout as sleepMs } from 'node:timers/promises';
import type { MilvusClient, ResStatus, RestoreSnapshotJobInfo } from '@zilliz/milvus2-sdk-node';
import { LOGICAL_BITS } from '../common/tso.js';
import { barProgressView, lineProgressView, type ProgressView } from './progress-view.js';
import type { RawReply } from './export-rpc.js';

/**
 * `quiver snapshot ...`: the command bodies, over an SDK client and an output sink, so that tests drive
 * them in-process against a real server. Each returns the process exit code; main.ts only parses argv.
 *
 * Failures are printed as `error: <reason> (code <code>)` on the error sink: for a non-Success status
 * the reason and the Milvus code the server sent; for a thrown error (server unreachable, SDK-side
 * validation) its message and, when it has one, its gRPC code.
 */

/** The SDK methods the commands use (a test may pass a stub). */
export type SnapshotClient = Pick<
  MilvusClient,
  'createSnapshot' | 'listSnapshots' | 'describeSnapshot' | 'dropSnapshot' | 'restoreSnapshot' | 'getRestoreSnapshotState' | 'listRestoreSnapshotJobs'
>;

export interface OutputSink {
  out(line: string): void;
  err(line: string): void;
  /** Where to draw the restore progress bar; undefined (stdout is not a TTY): print progress lines instead. */
  readonly tty?: NodeJS.WritableStream | undefined;
}

export type ExitCode = 0 | 1;

/**
 * What the SDK cannot do (it has no cancel RPC): the server's HTTP endpoint on its metrics port. Throws
 * an error carrying the Milvus `code` the server answered.
 */
export interface AdminClient {
  cancelRestoreJob(jobId: string): Promise<RestoreSnapshotJobInfo>;
}

/** `POST http://{address}/restore-jobs/{id}/cancel`; address is the server's metrics `host:port`. */
export function httpAdminClient(address: string, headers: Record<string, string> = {}): AdminClient {
  return {
    async cancelRestoreJob(jobId) {
      const res = await fetch(`http://${address}/restore-jobs/${encodeURIComponent(jobId)}/cancel`, { method: 'POST', headers });
      const text = await res.text();
      let body: unknown;
      try {
        body = JSON.parse(text);
      } catch {
        throw new CommandFailure(`${address} answered HTTP ${res.status}: ${text.slice(0, 200)} (is it the server's metrics port?)`, undefined);
      }
      if (!res.ok) {
        const b = body as { code?: number; reason?: string };
        throw new CommandFailure(b.reason ?? `HTTP ${res.status}`, b.code);
      }
      return body as RestoreSnapshotJobInfo;
    },
  };
}

/**
 * The RPCs the SDK has no method for (ExportSnapshot, RestoreExternalSnapshot: raw gRPC with the SDK's
 * proto, cli/export-rpc.ts) and the export progress the server shows on its HTTP port (`GET /exports`).
 */
export interface ExternalClient {
  exportSnapshot(req: { db_name: string; collection_name: string; name: string; target_s3_path: string; external_spec?: string }): Promise<RawReply>;
  restoreExternal(req: { db_name: string; target_collection_name: string; snapshot_metadata_uri: string; external_spec?: string }): Promise<RawReply>;
  /** Exports in flight (`target` ends with `#collection/snapshot`); [] when the HTTP port is unknown. */
  exportsInFlight(): Promise<{ target: string; bytesDone: number; bytesTotal: number; bytesWritten: number }[]>;
}

export interface SnapshotCommandsDeps {
  readonly client: SnapshotClient;
  /** For `export` and `import`; without it they fail with an explanation. */
  readonly external?: ExternalClient | undefined;
  /** Wall clock for ETAs (injected for tests). */
  readonly nowMs?: (() => number) | undefined;
  /** For `cancel`; without it `cancel` fails with an explanation. */
  readonly admin?: AdminClient | undefined;
  readonly sink: OutputSink;
  /** Restore polling period. Default 200 ms. */
  readonly pollIntervalMs?: number | undefined;
  /** Injected for tests; defaults to a timer. */
  readonly sleep?: ((ms: number) => Promise<void>) | undefined;
}

export interface CollectionArgs {
  readonly db: string;
  readonly collection: string;
}

export interface SnapshotArgs extends CollectionArgs {
  readonly name: string;
}

export interface CreateArgs extends SnapshotArgs {
  readonly description?: string | undefined;
  readonly protectSeconds?: number | undefined;
}

export interface RestoreArgs extends SnapshotArgs {
  readonly targetCollection: string;
  /** Defaults to `db`. */
  readonly targetDb?: string | undefined;
  readonly wait: boolean;
}

export interface JobsArgs {
  /** Filter: jobs restoring into this database. */
  readonly db?: string | undefined;
  /** Filter: jobs restoring into this collection. */
  readonly collection?: string | undefined;
  readonly json?: boolean | undefined;
}

export const POLL_INTERVAL_MS_DEFAULT = 200;

/** A failure with what to print; thrown inside a command, turned into output + exit 1 at its edge. */
class CommandFailure extends Error {
  constructor(
    readonly reason: string,
    readonly code: string | number | undefined,
  ) {
    super(reason);
  }
}

export class SnapshotCommands {
  readonly #client: SnapshotClient;
  readonly #admin: AdminClient | undefined;
  readonly #external: ExternalClient | undefined;
  readonly #nowMs: () => number;
  readonly #sink: OutputSink;
  readonly #pollIntervalMs: number;
  readonly #sleep: (ms: number) => Promise<void>;

  constructor(deps: SnapshotCommandsDeps) {
    this.#client = deps.client;
    this.#admin = deps.admin;
    this.#external = deps.external;
    this.#nowMs = deps.nowMs ?? Date.now;
    this.#sink = deps.sink;
    this.#pollIntervalMs = deps.pollIntervalMs ?? POLL_INTERVAL_MS_DEFAULT;
    if (!Number.isSafeInteger(this.#pollIntervalMs) || this.#pollIntervalMs < 0) {
      throw new Error(`assertion failed: pollIntervalMs must be a non-negative integer, got ${this.#pollIntervalMs}`);
    }
    this.#sleep = deps.sleep ?? ((ms) => sleepMs(ms).then(() => undefined));
  }

  create(a: CreateArgs): Promise<ExitCode> {
    return this.#run(async () => {
      checkStatus(
        await this.#client.createSnapshot({
          db_name: a.db,
          collection_name: a.collection,
          snapshot_name: a.name,
          description: a.description ?? '',
          compaction_protection_seconds: a.protectSeconds ?? 0,
        }),
      );
      this.#sink.out(`created snapshot ${a.name} of collection ${a.collection}`);
    });
  }

  list(a: CollectionArgs & { readonly json?: boolean | undefined }): Promise<ExitCode> {
    return this.#run(async () => {
      const r = await this.#client.listSnapshots({ db_name: a.db, collection_name: a.collection });
      checkStatus(r.status);
      const names = r.snapshots ?? [];
      if (a.json) this.#sink.out(JSON.stringify(names));
      else for (const n of names) this.#sink.out(n);
    });
  }

  describe(a: SnapshotArgs & { readonly json?: boolean | undefined }): Promise<ExitCode> {
    return this.#run(async () => {
      const r = await this.#client.describeSnapshot({ db_name: a.db, collection_name: a.collection, snapshot_name: a.name });
      checkStatus(r.status);
      const createdAtMs = physicalMs(r.create_ts);
      const createdAt = createdAtMs === undefined ? '' : new Date(createdAtMs).toISOString();
      if (a.json) {
        this.#sink.out(
          JSON.stringify({
            name: r.name,
            description: r.description,
            db_name: a.db,
            collection_name: r.collection_name,
            partition_names: r.partition_names ?? [],
            create_ts: r.create_ts,
            created_at: createdAt,
            s3_location: r.s3_location,
          }),
        );
        return;
      }
      for (const line of table([
        ['name:', r.name],
        ['description:', r.description || '-'],
        ['collection:', `${a.db}.${r.collection_name}`],
        ['partitions:', (r.partition_names ?? []).join(', ')],
        ['created:', createdAt ? `${createdAt} (ts ${r.create_ts})` : `ts ${r.create_ts}`],
        ['location:', r.s3_location],
      ])) {
        this.#sink.out(line);
      }
    });
  }

  drop(a: SnapshotArgs): Promise<ExitCode> {
    return this.#run(async () => {
      // The server's drop is idempotent (a missing snapshot drops successfully), so ask first: the
      // output must not claim a drop that did not happen. Exit code 0 either way: the snapshot is gone.
      const d = await this.#client.describeSnapshot({ db_name: a.db, collection_name: a.collection, snapshot_name: a.name });
      if (d.status?.code === SNAPSHOT_NOT_FOUND) {
        this.#sink.out(`snapshot ${a.name} of collection ${a.collection} did not exist; nothing dropped`);
        return;
      }
      checkStatus(d.status);
      checkStatus(await this.#client.dropSnapshot({ db_name: a.db, collection_name: a.collection, snapshot_name: a.name }));
      this.#sink.out(`dropped snapshot ${a.name} of collection ${a.collection}`);
    });
  }

  /** Prints the job id (alone on its line, for scripts); unless `wait` is false, follows the job to its end. */
  restore(a: RestoreArgs): Promise<ExitCode> {
    return this.#run(async () => {
      const targetDb = a.targetDb ?? a.db;
      const r = await this.#client.restoreSnapshot({
        snapshot_name: a.name,
        source_db_name: a.db,
        source_collection_name: a.collection,
        target_db_name: targetDb,
        target_collection_name: a.targetCollection,
      });
      checkStatus(r.status);
      this.#sink.out(r.job_id);
      if (!a.wait) return;
      const info = await this.#follow(r.job_id);
      if (shortState(info.state) === 'Failed') {
        throw new CommandFailure(`restore job ${info.job_id} failed: ${info.reason || 'no reason given'}`, undefined);
      }
      this.#sink.out(`restored snapshot ${a.name} of ${a.db}.${a.collection} into ${targetDb}.${a.targetCollection} in ${info.time_cost} ms`);
    });
  }

  /**
   * Cancels a restore job: the server stops its tasks, removes the copied files and the target, and the
   * job ends Failed with reason "cancelled". With `wait`, follows the job until then.
   */
  cancel(a: { readonly jobId: string; readonly wait: boolean }): Promise<ExitCode> {
    return this.#run(async () => {
      if (!/^\d{1,16}$/.test(a.jobId)) throw new CommandFailure(`job id must be a number, got "${a.jobId}"`, undefined);
      if (this.#admin === undefined) throw new CommandFailure('cancel needs the server HTTP address (--http-address)', undefined);
      const info = await this.#admin.cancelRestoreJob(a.jobId);
      this.#sink.out(`cancel of restore job ${info.job_id} requested (state ${shortState(info.state)})`);
      if (!a.wait) return;
      const end = await this.#follow(a.jobId);
      this.#sink.out(
        `restore job ${end.job_id} ${shortState(end.state) === 'Failed' ? 'cancelled' : 'ended'}: ${shortState(end.state)}${end.reason ? ` (${end.reason})` : ''}`,
      );
    });
  }

  /**
   * Exports a snapshot as a bundle to `target` (file:///DIR or s3://BUCKET/PREFIX, under the server's
   * QUIVER_EXPORT_ROOTS), showing bytes read and an ETA while it runs; prints the bundle manifest URI.
   */
  export(a: SnapshotArgs & { readonly target: string; readonly externalSpec?: string | undefined }): Promise<ExitCode> {
    return this.#run(async () => {
      const ext = this.#needExternal();
      const view = this.#view(`export ${a.collection}/${a.name}`);
      const startMs = this.#nowMs();
      try {
        let finished = false;
        const call = ext
          .exportSnapshot({
            db_name: a.db,
            collection_name: a.collection,
            name: a.name,
            target_s3_path: a.target,
            ...(a.externalSpec ? { external_spec: a.externalSpec } : {}),
          })
          .finally(() => (finished = true));
        while (!finished) {
          await Promise.race([call.then(noop, noop), this.#sleep(this.#pollIntervalMs)]);
          if (finished) break;
          const p = (await ext.exportsInFlight().catch(() => [])).find((x) => x.target.endsWith(`#${a.collection}/${a.name}`));
          if (p !== undefined) view.update(percent(p.bytesDone, p.bytesTotal), bytesAndEta(p.bytesDone, p.bytesTotal, this.#nowMs() - startMs));
        }
        const r = await call;
        checkRaw(r);
        view.update(100, 'Completed');
        view.stop();
        this.#sink.out(r.snapshot_metadata_uri ?? '');
      } finally {
        view.stop();
      }
    });
  }

  /** Restores a bundle (its manifest URI) into a new collection; prints the job id, then follows it. */
  import(a: {
    readonly db: string;
    readonly uri: string;
    readonly targetCollection: string;
    readonly externalSpec?: string | undefined;
    readonly wait: boolean;
  }): Promise<ExitCode> {
    return this.#run(async () => {
      const ext = this.#needExternal();
      const r = await ext.restoreExternal({
        db_name: a.db,
        target_collection_name: a.targetCollection,
        snapshot_metadata_uri: a.uri,
        ...(a.externalSpec ? { external_spec: a.externalSpec } : {}),
      });
      checkRaw(r);
      const jobId = r.job_id ?? '';
      this.#sink.out(jobId);
      if (!a.wait) return;
      const startMs = this.#nowMs();
      const info = await this.#follow(jobId, (i) => {
        // While the bundle is verified the server says how many bytes: show them with an ETA.
        const m = /verifying bundle: (\d+) of (\d+) bytes/.exec(i.reason ?? '');
        return m ? bytesAndEta(Number(m[1]), Number(m[2]), this.#nowMs() - startMs) : undefined;
      });
      if (shortState(info.state) === 'Failed')
        throw new CommandFailure(`restore job ${info.job_id} failed: ${info.reason || 'no reason given'}`, undefined);
      this.#sink.out(`restored bundle ${a.uri} into ${a.db}.${a.targetCollection} in ${info.time_cost} ms`);
    });
  }

  #needExternal(): ExternalClient {
    if (this.#external === undefined) throw new CommandFailure('export and import need a gRPC connection to the server', undefined);
    return this.#external;
  }

  #view(label: string): ProgressView {
    return this.#sink.tty ? barProgressView(this.#sink.tty, label) : lineProgressView((l) => this.#sink.out(l));
  }

  jobs(a: JobsArgs): Promise<ExitCode> {
    return this.#run(async () => {
      const r = await this.#client.listRestoreSnapshotJobs({ db_name: a.db ?? '', collection_name: a.collection ?? '' });
      checkStatus(r.status);
      const jobs = r.jobs ?? [];
      if (a.json) {
        this.#sink.out(JSON.stringify(jobs.map((j) => ({ ...j, state: shortState(j.state) }))));
        return;
      }
      if (jobs.length === 0) return;
      const rows = jobs.map((j) => [
        j.job_id,
        shortState(j.state),
        `${j.progress}%`,
        j.snapshot_name,
        `${j.db_name}.${j.collection_name}`,
        `${j.time_cost}ms`,
        j.reason || '',
      ]);
      for (const line of table([['JOB', 'STATE', 'PROGRESS', 'SNAPSHOT', 'TARGET', 'TIME', 'REASON'], ...rows])) this.#sink.out(line);
    });
  }

  /** Polls the job until it is Completed or Failed, showing its progress. */
  async #follow(jobId: string, detail?: (info: RestoreSnapshotJobInfo) => string | undefined): Promise<RestoreSnapshotJobInfo> {
    const view = this.#view(`restore job ${jobId}`);
    try {
      for (;;) {
        const s = await this.#client.getRestoreSnapshotState({ job_id: jobId });
        checkStatus(s.status);
        const state = shortState(s.info.state);
        view.update(Number(s.info.progress ?? 0), (detail?.(s.info) ?? '') ? `${state} ${detail?.(s.info)}` : state);
        if (state === 'Completed' || state === 'Failed') return s.info;
        await this.#sleep(this.#pollIntervalMs);
      }
    } finally {
      view.stop();
    }
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

const noop = (): void => undefined;

function checkRaw(r: RawReply): void {
  if (r.status.code !== 0) throw new CommandFailure(r.status.reason || 'failed', r.status.code);
}

function percent(done: number, total: number): number {
  return total > 0 ? (100 * done) / total : 0;
}

/** `12.3 MiB / 45.6 MiB, ETA 7s` (no ETA before the first byte). */
export function bytesAndEta(done: number, total: number, elapsedMs: number): string {
  const eta = done > 0 && total >= done ? `, ETA ${Math.ceil((elapsedMs * (total - done)) / done / 1000)}s` : '';
  return `${mib(done)} / ${mib(total)}${eta}`;
}

function mib(bytes: number): string {
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}

/** Milvus code of SnapshotNotFound (src/common/errors.ts). */
const SNAPSHOT_NOT_FOUND = 2600;

/** Create and drop answer a bare Status; the others a message with `status`. */
function checkStatus(s: ResStatus | undefined): void {
  if (s === undefined) throw new CommandFailure('the server sent no status', undefined);
  const ok = (s.error_code === 'Success' || s.error_code === 0) && (s.code === undefined || s.code === 0);
  if (!ok) throw new CommandFailure(s.reason || String(s.error_code), s.code || s.error_code);
}

export function formatFailure(e: unknown): string {
  if (e instanceof CommandFailure) return e.code === undefined ? `error: ${e.reason}` : `error: ${e.reason} (code ${e.code})`;
  const message = e instanceof Error ? e.message : String(e);
  const code = (e as { code?: unknown } | null)?.code;
  return typeof code === 'number' || typeof code === 'string' ? `error: ${message} (code ${code})` : `error: ${message}`;
}

/** `RestoreSnapshotCompleted` → `Completed`. */
function shortState(state: string | undefined): string {
  return (state ?? 'Unknown').replace(/^RestoreSnapshot/, '');
}

/** Physical milliseconds of a hybrid timestamp (decimal string); undefined if it does not parse. */
function physicalMs(ts: string | undefined): number | undefined {
  if (!ts || !/^\d+$/.test(ts)) return undefined;
  const ms = Number(BigInt(ts) >> LOGICAL_BITS);
  return ms > 0 ? ms : undefined;
}

/** Left-aligned columns separated by two spaces; the last column is not padded. */
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
