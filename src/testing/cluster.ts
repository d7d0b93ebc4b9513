/**
 * A multi-process Quiver cluster for tests and benchmarks: a throwaway etcd and s3rver, and `quiver serve`
 * / `quiver datanode` processes started through `bin/quiver.mjs` (the command users run), each detached
 * into its own process group so that kill -9 and SIGSTOP hit the whole process at once.
 *
 * - Ports are free loopback ports; a restarted process keeps its ports, data dir, arguments and env.
 * - Output goes to one log file per process under the cluster's temp dir (appended across restarts);
 *   `printLogs()` shows them, e.g. from `onTestFailed`. Files rather than pipes: a frozen test runner
 *   never blocks a child on a full pipe, and the log survives the child.
 * - Ready means `/healthz` answers 200 on the process's metrics port.
 * - `stop()` kills everything it started (every process group, etcd, s3rver) and removes the temp dir;
 *   an exit hook SIGKILLs the groups if a test runner dies before that.
 *
 * Current source: `bin/quiver.mjs` runs `dist/` only when it is at least as new as every file under
 * `src/`, and compiles `src/` with tsx otherwise, so an edited checkout is what runs.
 */

import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { MilvusClient } from '@zilliz/milvus2-sdk-node';
import { EtcdServer } from './etcd-server.js';
import { freePort } from './free-port.js';
import { S3RVER_CREDENTIALS, S3Server } from './s3-server.js';
import { S3ObjectStore } from '../storage/s3-object-store.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const BIN = join(ROOT, 'bin', 'quiver.mjs');
export const CLUSTER_BUCKET = 'quiver-cluster';
const READY_TIMEOUT_MS_DEFAULT = 60_000;
const STOP_GRACE_MS = 20_000;
/** A restart right after kill -9 can find the data-dir lock not yet released (test/process.ts): retry that only. */
const DATA_DIR_IN_USE = /data dir .* is in use by another Quiver process/;

/** Process groups alive in this runner, killed at exit whatever happened. */
const liveGroups = new Set<number>();
process.once('exit', () => {
  for (const pid of liveGroups) signalGroup(pid, 'SIGKILL');
});

function signalGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // Already gone.
  }
}

export interface QuiverProcessSpec {
  /** Log name, unique in the cluster: 'serve', 'datanode-1'. */
  readonly name: string;
  /** After `quiver`: ['serve', '--port', ...]. */
  readonly args: readonly string[];
  readonly env: Readonly<Record<string, string>>;
  /** The gRPC port (Milvus protocol for serve, the task service for a data node). */
  readonly port: number;
  readonly metricsPort: number;
  readonly dataDir: string | undefined;
}

export interface QuiverProcess extends QuiverProcessSpec {
  readonly child: ChildProcess;
  readonly pid: number;
  readonly logFile: string;
  /** `127.0.0.1:{metricsPort}` */
  readonly metricsAddress: string;
  /** `127.0.0.1:{port}` */
  readonly address: string;
  /** Resolves with the exit code (null when killed by a signal) once the process is gone. */
  readonly exited: Promise<number | null>;
  readonly running: boolean;
  /** Everything it printed so far (its log file). */
  output(): string;
}

export interface ServeProcess extends QuiverProcess {
  /** An SDK client connected to it (closed by `stop`, `kill9`, `restart`). */
  readonly client: MilvusClient;
}

export interface ClusterOptions {
  /** Root of this cluster's keys in etcd (the --meta URL's /ROOT). */
  readonly metaRoot?: string | undefined;
  /** Prefix inside the bucket (the --storage URL's /PREFIX). */
  readonly storagePrefix?: string | undefined;
  /**
   * No s3rver: every process shares this directory (`--storage local:DIR`; one machine only). Benchmarks
   * use it to force byte copies (`datanode --copy-mode copy`) without s3rver's own CPU in the figures.
   */
  readonly localStorageDir?: string | undefined;
}

export interface ServeOptions {
  readonly dataDir?: string | undefined;
  /** Extra arguments after the standard ones (e.g. ['--datanode-slots', '0']). */
  readonly args?: readonly string[] | undefined;
  readonly env?: Readonly<Record<string, string>> | undefined;
}

export interface DataNodeOptions {
  readonly slots?: number | undefined;
  readonly sessionTtlMs?: number | undefined;
  readonly args?: readonly string[] | undefined;
  readonly env?: Readonly<Record<string, string>> | undefined;
}

export class Cluster {
  readonly etcd: EtcdServer;
  /** Undefined with `localStorageDir`. */
  readonly s3: S3Server | undefined;
  /** The cluster's temp dir: logs/ and the data dirs it made. */
  readonly dir: string;
  /** --meta of every process. */
  readonly metaUrl: string;
  /** --storage of every process. */
  readonly storageUrl: string;
  /** Environment of every process: S3 credentials, QUIVER_META/STORAGE/S3_ENDPOINT. */
  readonly env: Readonly<Record<string, string>>;
  readonly #procs = new Set<QuiverProcess>();
  readonly #clients = new Set<MilvusClient>();
  readonly #names = new Map<string, number>();
  readonly #prefix: string;
  #store: S3ObjectStore | undefined;
  #stopped = false;

  private constructor(etcd: EtcdServer, s3: S3Server | undefined, dir: string, options: ClusterOptions) {
    this.etcd = etcd;
    this.s3 = s3;
    this.dir = dir;
    this.#prefix = options.storagePrefix ?? 'c1';
    this.metaUrl = `etcd://${etcd.endpoint}/${options.metaRoot ?? 'quiver-cluster'}`;
    this.storageUrl = s3 ? `s3://${CLUSTER_BUCKET}/${this.#prefix}` : `local:${options.localStorageDir!}`;
    this.env = {
      AWS_ACCESS_KEY_ID: S3RVER_CREDENTIALS.accessKeyId,
      AWS_SECRET_ACCESS_KEY: S3RVER_CREDENTIALS.secretAccessKey,
      AWS_REGION: 'us-east-1',
      // The AWS SDK's multi-line notice about Node < 22 would fill every log.
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
      QUIVER_META: this.metaUrl,
      QUIVER_STORAGE: this.storageUrl,
      ...(s3 ? { QUIVER_S3_ENDPOINT: s3.endpoint } : {}),
    };
  }

  /** Starts etcd and s3rver (with the cluster's bucket; no s3rver with `localStorageDir`). */
  static async start(options: ClusterOptions = {}): Promise<Cluster> {
    const dir = mkdtempSync(join(tmpdir(), 'quiver-cluster-'));
    mkdirSync(join(dir, 'logs'));
    const local = options.localStorageDir !== undefined;
    const s3Start: Promise<S3Server | undefined> = local ? Promise.resolve(undefined) : S3Server.start([CLUSTER_BUCKET]);
    const started = await Promise.allSettled([EtcdServer.start(), s3Start]);
    const [etcd, s3] = started;
    if (etcd.status === 'rejected' || s3.status === 'rejected') {
      await Promise.all(started.map(async (s) => (s.status === 'fulfilled' ? s.value?.stop() : undefined)));
      rmSync(dir, { recursive: true, force: true });
      throw started.find((s): s is PromiseRejectedResult => s.status === 'rejected')?.reason;
    }
    return new Cluster(etcd.value, s3.value, dir, options);
  }

  /** The bucket as an ObjectStore, as the processes see it (S3 clusters only; closed by `stop`). */
  get store(): S3ObjectStore {
    if (this.s3 === undefined) throw new Error('this cluster has no S3 server (local storage)');
    this.#store ??= new S3ObjectStore({
      bucket: CLUSTER_BUCKET,
      prefix: this.#prefix,
      endpoint: this.s3.endpoint,
      region: 'us-east-1',
      credentials: S3RVER_CREDENTIALS,
    });
    return this.#store;
  }

  /** A fresh data dir under the cluster's temp dir (removed by `stop`). */
  dataDir(): string {
    return mkdtempSync(join(this.dir, 'data-'));
  }

  /** `quiver serve` on etcd + S3, on free ports; resolves once /healthz answers and the SDK is connected. */
  async serve(options: ServeOptions = {}): Promise<ServeProcess> {
    const [port, metricsPort] = [await freePort(), await freePort()];
    const dataDir = options.dataDir ?? this.dataDir();
    const args = [
      'serve',
      '--port',
      String(port),
      '--metrics-port',
      String(metricsPort),
      '--host',
      '127.0.0.1',
      '--data-dir',
      dataDir,
      ...(options.args ?? []),
    ];
    const spec: QuiverProcessSpec = { name: this.#uniqueName('serve'), args, env: { ...this.env, ...options.env }, port, metricsPort, dataDir };
    return this.#startServe(spec);
  }

  /** `quiver datanode` on free ports; resolves once its /healthz answers. */
  async datanode(options: DataNodeOptions = {}): Promise<QuiverProcess> {
    const [port, metricsPort] = [await freePort(), await freePort()];
    const args = [
      'datanode',
      '--host',
      '127.0.0.1',
      '--port',
      String(port),
      '--metrics-port',
      String(metricsPort),
      '--slots',
      String(options.slots ?? 2),
      ...(options.sessionTtlMs === undefined ? [] : ['--session-ttl-ms', String(options.sessionTtlMs)]),
      ...(options.args ?? []),
    ];
    const spec: QuiverProcessSpec = {
      name: this.#uniqueName('datanode'),
      args,
      env: { ...this.env, ...options.env },
      port,
      metricsPort,
      dataDir: undefined,
    };
    return this.#startReady(spec);
  }

  /** Any `quiver` command as a cluster process (ready when its /healthz on `metricsPort` answers 200). */
  async spawn(spec: QuiverProcessSpec): Promise<QuiverProcess> {
    return this.#startReady(spec);
  }

  /** Sends `signal` to the process's whole group; for SIGKILL and SIGTERM, resolves once it exited. */
  async killGroup(proc: QuiverProcess, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    if (!proc.running) return;
    signalGroup(proc.pid, signal);
    // A stopped process does not act on SIGTERM until continued.
    if (signal === 'SIGTERM') signalGroup(proc.pid, 'SIGCONT');
    if (signal === 'SIGKILL' || signal === 'SIGTERM') await proc.exited;
  }

  /** kill -9 of the group; closes its SDK client. */
  async kill9(proc: QuiverProcess): Promise<void> {
    await this.killGroup(proc, 'SIGKILL');
    this.#closeClient(proc);
  }

  /** SIGTERM (a graceful stop, deregistering a data node); SIGKILL to the group past a grace period. */
  async stopProcess(proc: QuiverProcess): Promise<void> {
    if (!proc.running) return;
    const timer = setTimeout(() => signalGroup(proc.pid, 'SIGKILL'), STOP_GRACE_MS);
    this.#closeClient(proc);
    await this.killGroup(proc, 'SIGTERM');
    clearTimeout(timer);
  }

  /**
   * Freezes the group (SIGSTOP) and resolves once every thread is stopped: a thread on a CPU can still
   * act for a moment after the signal, so "sent" is not "frozen".
   */
  async pause(proc: QuiverProcess, timeoutMs = 5_000): Promise<void> {
    signalGroup(proc.pid, 'SIGSTOP');
    const deadline = Date.now() + timeoutMs;
    while (proc.running && !allThreadsStopped(proc.pid)) {
      if (Date.now() > deadline) throw new Error(`${proc.name} (pid ${proc.pid}) not stopped ${timeoutMs} ms after SIGSTOP`);
      await new Promise((r) => setTimeout(r, 2));
    }
  }

  resume(proc: QuiverProcess): void {
    signalGroup(proc.pid, 'SIGCONT');
  }

  /** Kills the process if it still runs (SIGKILL) and starts it again: same command, ports, data dir, env. */
  async restart<P extends QuiverProcess>(proc: P): Promise<P> {
    await this.kill9(proc);
    const spec: QuiverProcessSpec = {
      name: proc.name,
      args: proc.args,
      env: proc.env,
      port: proc.port,
      metricsPort: proc.metricsPort,
      dataDir: proc.dataDir,
    };
    const again = isServe(proc) ? await this.#startServe(spec) : await this.#startReady(spec);
    return again as P;
  }

  /** Every process log, each under a header (the tail of each when long). */
  logs(tailChars = 20_000): string {
    const dir = join(this.dir, 'logs');
    if (!existsSync(dir)) return '';
    return readdirSync(dir)
      .sort()
      .map((f) => {
        const text = readFileSync(join(dir, f), 'utf8');
        return `===== ${f} (${text.length} chars) =====\n${text.length > tailChars ? `…${text.slice(-tailChars)}` : text}`;
      })
      .join('\n');
  }

  printLogs(): void {
    process.stderr.write(`${this.logs()}\n`);
  }

  /** Kills every process started here, stops etcd and s3rver, removes the temp dir. Idempotent. */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    for (const c of this.#clients) void c.closeConnection().catch(() => undefined);
    this.#clients.clear();
    await Promise.all([...this.#procs].map((p) => this.killGroup(p, 'SIGKILL')));
    await this.#store?.close();
    await Promise.allSettled([this.etcd.stop(), this.s3?.stop()]);
    rmSync(this.dir, { recursive: true, force: true });
  }

  #uniqueName(base: string): string {
    const n = (this.#names.get(base) ?? 0) + 1;
    this.#names.set(base, n);
    return base === 'serve' && n === 1 ? 'serve' : `${base}-${n}`;
  }

  async #startServe(spec: QuiverProcessSpec): Promise<ServeProcess> {
    let proc: QuiverProcess | undefined;
    for (let attempt = 0; ; attempt++) {
      try {
        proc = await this.#startReady(spec);
        break;
      } catch (e) {
        if (attempt >= 4 || !DATA_DIR_IN_USE.test((e as Error).message)) throw e;
        await new Promise((r) => setTimeout(r, 100 * 2 ** attempt));
      }
    }
    // A local subchannel pool: grpc-js otherwise shares connections per address across clients, and a
    // restarted server on the same port would be dialled through the dead one's backoff.
    const client = new MilvusClient({
      address: proc.address,
      telemetry: { enabled: false },
      logLevel: 'error',
      channelOptions: { 'grpc.use_local_subchannel_pool': 1 },
    } as never);
    this.#clients.add(client);
    await client.connectPromise;
    return Object.assign(proc, { client });
  }

  async #startReady(spec: QuiverProcessSpec): Promise<QuiverProcess> {
    if (this.#stopped) throw new Error('cluster is stopped');
    const proc = this.#spawn(spec);
    try {
      await waitHealthy(proc, READY_TIMEOUT_MS_DEFAULT);
    } catch (e) {
      await this.killGroup(proc, 'SIGKILL');
      throw e;
    }
    return proc;
  }

  #spawn(spec: QuiverProcessSpec): QuiverProcess {
    const logFile = join(this.dir, 'logs', `${spec.name}.log`);
    const fd = openSync(logFile, 'a');
    writeSync(fd, `----- ${new Date().toISOString()} quiver ${spec.args.join(' ')}\n`);
    let child: ChildProcess;
    try {
      child = spawn(process.execPath, [BIN, ...spec.args], { cwd: ROOT, env: { ...process.env, ...spec.env }, stdio: ['ignore', fd, fd], detached: true });
    } finally {
      // The child holds its own copy of the descriptor.
      closeSync(fd);
    }
    const pid = child.pid;
    if (pid === undefined) throw new Error(`cannot spawn quiver ${spec.args.join(' ')}`);
    liveGroups.add(pid);
    let running = true;
    const exited = new Promise<number | null>((resolve) =>
      child.once('exit', (code) => {
        running = false;
        liveGroups.delete(pid);
        resolve(code);
      }),
    );
    const proc: QuiverProcess = {
      ...spec,
      child,
      pid,
      logFile,
      metricsAddress: `127.0.0.1:${spec.metricsPort}`,
      address: `127.0.0.1:${spec.port}`,
      exited,
      get running() {
        return running;
      },
      output: () => readFileSync(logFile, 'utf8'),
    };
    this.#procs.add(proc);
    return proc;
  }

  #closeClient(proc: QuiverProcess): void {
    if (!isServe(proc)) return;
    this.#clients.delete(proc.client);
    void proc.client.closeConnection().catch(() => undefined);
  }
}

function isServe(proc: QuiverProcess): proc is ServeProcess {
  return 'client' in proc;
}

async function waitHealthy(proc: QuiverProcess, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (!proc.running)
      throw new Error(
        `quiver ${proc.args[0]} (${proc.name}) exited during start with ${String(proc.child.exitCode ?? proc.child.signalCode)}:\n${proc.output().slice(-4000)}`,
      );
    try {
      const res = await fetch(`http://${proc.metricsAddress}/healthz`, { signal: AbortSignal.timeout(2_000) });
      await res.arrayBuffer();
      if (res.status === 200) return;
    } catch {
      // Not listening yet.
    }
    if (Date.now() > deadline) throw new Error(`quiver ${proc.args[0]} (${proc.name}) not healthy within ${timeoutMs} ms:\n${proc.output().slice(-4000)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Linux: state 'T' (stopped) in /proc/PID/task/TID/stat for every thread. */
function allThreadsStopped(pid: number): boolean {
  let tids: string[];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return true; // gone
  }
  return tids.every((tid) => {
    try {
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
      return state === 'T' || state === 't';
    } catch {
      return true; // thread exited
    }
  });
}

/**
 * Prometheus text exposition → values by series, keyed `name` or `name{a="1",b="2"}` (labels sorted,
 * so a key can be written by hand). Comments and malformed lines are skipped.
 */
export function parsePrometheus(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\d+)?$/.exec(line.trim());
    if (m === null || m[1] === undefined || m[3] === undefined) continue;
    const labels = [...(m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)].map((l) => `${l[1]}="${l[2]}"`).sort();
    const value = m[3] === '+Inf' ? Infinity : m[3] === '-Inf' ? -Infinity : Number(m[3]);
    out.set(labels.length === 0 ? m[1] : `${m[1]}{${labels.join(',')}}`, value);
  }
  return out;
}

/** GETs `http://{address}{path}` (a process's /cluster, /gc/dry-run, ...). */
export async function httpGet(address: string, path: string): Promise<{ status: number; body: string }> {
  const res = await fetch(`http://${address}${path}`, { signal: AbortSignal.timeout(10_000) });
  return { status: res.status, body: await res.text() };
}

/** GETs `/metrics` of a process (its metrics port, or host:port) and parses it. */
export async function scrapeMetrics(target: number | string): Promise<Map<string, number>> {
  const address = typeof target === 'number' ? `127.0.0.1:${target}` : target;
  const res = await fetch(`http://${address}/metrics`, { signal: AbortSignal.timeout(10_000) });
  if (res.status !== 200) throw new Error(`GET http://${address}/metrics: ${res.status}`);
  return parsePrometheus(await res.text());
}

/** Sum of the series of `name` whose labels include all of `labels` (0 when none). */
export function metricSum(metrics: ReadonlyMap<string, number>, name: string, labels: Readonly<Record<string, string>> = {}): number {
  let total = 0;
  const wanted = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  for (const [key, value] of metrics) {
    const brace = key.indexOf('{');
    if ((brace < 0 ? key : key.slice(0, brace)) !== name) continue;
    const have = brace < 0 ? [] : key.slice(brace + 1, -1).split(/,(?=[a-zA-Z_][a-zA-Z0-9_]*=")/);
    if (wanted.every((w) => have.includes(w))) total += value;
  }
  return total;
}
