/**
 * Multi-process cluster for the cluster tests: etcd + s3rver + `quiver serve` + `quiver datanode`
 * processes, each in its own process group (kill -9 / SIGSTOP hit the whole group), on free loopback
 * ports. Everything started here is killed by `Cluster.stop()` (call it in afterAll/afterEach) and by the
 * exit hook, also when a test fails.
 */

import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { MilvusClient } from '@zilliz/milvus2-sdk-node';
import { EtcdServer } from '../../src/testing/etcd-server.js';
import { freePort } from '../../src/testing/free-port.js';
import { S3RVER_CREDENTIALS, S3Server } from '../../src/testing/s3-server.js';
import { S3ObjectStore } from '../../src/storage/s3-object-store.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const BUCKET = 'quiver-cluster';
const PREFIX = 'c1';

const groups = new Set<number>();
process.once('exit', () => {
  for (const pid of groups) killGroup(pid, 'SIGKILL');
});

function killGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // Already gone.
  }
}

export interface QuiverProcess {
  readonly child: ChildProcess;
  readonly args: readonly string[];
  readonly exited: Promise<number | null>;
  output(): string;
  kill9(): Promise<void>;
  stop(): Promise<void>;
  freeze(): void;
  thaw(): void;
}

function spawnQuiver(args: readonly string[], env: Record<string, string>): QuiverProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'src/cli/main.ts'), ...args], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  const pid = child.pid!;
  groups.add(pid);
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  void exited.then(() => groups.delete(pid));
  return {
    child,
    args,
    exited,
    output: () => out,
    kill9: async () => {
      killGroup(pid, 'SIGKILL');
      await exited;
    },
    stop: async () => {
      child.kill('SIGTERM');
      const timer = setTimeout(() => killGroup(pid, 'SIGKILL'), 20_000);
      await exited;
      clearTimeout(timer);
    },
    freeze: () => killGroup(pid, 'SIGSTOP'),
    thaw: () => killGroup(pid, 'SIGCONT'),
  };
}

async function waitFor(p: QuiverProcess, what: string, ready: () => boolean | Promise<boolean>, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await ready()) return;
    if (p.child.exitCode !== null || p.child.signalCode !== null)
      throw new Error(`${what} exited with ${p.child.exitCode ?? p.child.signalCode}:\n${p.output()}`);
    if (Date.now() > deadline) throw new Error(`${what} not ready within ${timeoutMs} ms:\n${p.output()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export async function httpGet(address: string, path: string): Promise<{ status: number; body: string }> {
  const res = await fetch(`http://${address}${path}`);
  return { status: res.status, body: await res.text() };
}

export interface ServeProcess extends QuiverProcess {
  readonly port: number;
  readonly metricsAddress: string;
  readonly client: MilvusClient;
}

export interface DataNodeProcess extends QuiverProcess {
  readonly metricsAddress: string;
}

export class Cluster {
  readonly etcd: EtcdServer;
  readonly #s3: S3Server | undefined;
  #store: S3ObjectStore | undefined;
  readonly env: Record<string, string>;
  readonly #dirs: string[] = [];
  readonly #procs = new Set<QuiverProcess>();

  private constructor(etcd: EtcdServer, s3: S3Server | undefined, metaRoot: string, localStorageDir: string | undefined) {
    this.etcd = etcd;
    this.#s3 = s3;
    this.env = {
      AWS_ACCESS_KEY_ID: S3RVER_CREDENTIALS.accessKeyId,
      AWS_SECRET_ACCESS_KEY: S3RVER_CREDENTIALS.secretAccessKey,
      AWS_REGION: 'us-east-1',
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
      QUIVER_META: `etcd://${etcd.endpoint}/${metaRoot}`,
      ...(s3 ? { QUIVER_STORAGE: `s3://${BUCKET}/${PREFIX}`, QUIVER_S3_ENDPOINT: s3.endpoint } : { QUIVER_STORAGE: `local:${localStorageDir!}` }),
    };
  }

  /** The bucket as an ObjectStore (S3 clusters only). */
  get store(): S3ObjectStore {
    if (this.#s3 === undefined) throw new Error('this cluster has no S3 server (local storage)');
    this.#store ??= new S3ObjectStore({
      bucket: BUCKET,
      prefix: PREFIX,
      endpoint: this.#s3.endpoint,
      region: 'us-east-1',
      credentials: S3RVER_CREDENTIALS,
    });
    return this.#store;
  }

  /**
   * Starts etcd and s3rver; with `localStorageDir`, no s3rver: every process shares that directory
   * (`--storage local:DIR`, one machine only; benchmarks that force byte copies).
   */
  static async start(metaRoot = 'qc', opts: { localStorageDir?: string | undefined } = {}): Promise<Cluster> {
    const [etcd, s3] = await Promise.all([EtcdServer.start(), opts.localStorageDir === undefined ? S3Server.start([BUCKET]) : undefined]);
    return new Cluster(etcd, s3, metaRoot, opts.localStorageDir);
  }

  async dataDir(): Promise<string> {
    const d = await mkdtemp(join(tmpdir(), 'quiver-cluster-'));
    this.#dirs.push(d);
    return d;
  }

  /** `quiver serve --datanode-slots 0` (by default) on free ports; resolves once the SDK is connected. */
  async serve(dataDir: string, env: Record<string, string> = {}, args: readonly string[] = ['--datanode-slots', '0']): Promise<ServeProcess> {
    const port = await freePort();
    const metricsPort = await freePort();
    const p = spawnQuiver(['serve', '--port', String(port), '--metrics-port', String(metricsPort), '--data-dir', dataDir, ...args], {
      ...this.env,
      QUIVER_COPY_CHECK_INTERVAL_MS: '200',
      ...env,
    });
    this.#procs.add(p);
    await waitFor(p, 'quiver serve', () => p.output().includes('quiver is serving'));
    const client = new MilvusClient({ address: `127.0.0.1:${port}`, telemetry: { enabled: false }, logLevel: 'error' } as never);
    await client.connectPromise;
    return { ...p, port, metricsAddress: `127.0.0.1:${metricsPort}`, client };
  }

  /** `quiver datanode` on free ports; resolves once /healthz answers (its session is registered). */
  async datanode(opts: { slots?: number; sessionTtlMs?: number; env?: Record<string, string>; args?: readonly string[] } = {}): Promise<DataNodeProcess> {
    const port = await freePort();
    const metricsPort = await freePort();
    const metricsAddress = `127.0.0.1:${metricsPort}`;
    const p = spawnQuiver(
      [
        'datanode',
        '--port',
        String(port),
        '--metrics-port',
        String(metricsPort),
        '--slots',
        String(opts.slots ?? 2),
        '--session-ttl-ms',
        String(opts.sessionTtlMs ?? 2_000),
        ...(opts.args ?? []),
      ],
      { ...this.env, ...opts.env },
    );
    this.#procs.add(p);
    await waitFor(p, 'quiver datanode', async () => {
      try {
        return (await httpGet(metricsAddress, '/healthz')).status === 200;
      } catch {
        return false;
      }
    });
    return { ...p, metricsAddress };
  }

  /** SIGKILLs every process started here, stops etcd and s3rver, removes the data dirs. */
  async stop(): Promise<void> {
    await Promise.all([...this.#procs].map((p) => (p.thaw(), p.kill9())));
    await this.#store?.close();
    await Promise.all([this.etcd.stop(), this.#s3?.stop()]);
    for (const d of this.#dirs) await rm(d, { recursive: true, force: true });
  }
}

/** The counter value of `name{labels}` in a Prometheus text exposition (0 when absent). */
export function metricValue(text: string, name: string, labels: Record<string, string> = {}): number {
  let total = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const m = /^([a-z_]+)(\{[^}]*\})? ([0-9.e+-]+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const ls = m[2] ?? '';
    if (Object.entries(labels).every(([k, v]) => ls.includes(`${k}="${v}"`))) total += Number(m[3]);
  }
  return total;
}
