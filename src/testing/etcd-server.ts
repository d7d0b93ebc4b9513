/**
 * A throwaway single-member etcd for tests and benchmarks: the `etcd` binary (Debian `etcd-server`) on
 * free loopback ports with a temporary data dir, removed on stop. It can be frozen (SIGSTOP), halted
 * and restarted on the same data dir and ports (an outage that etcd survives), and serve TLS.
 */

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { get as httpGet, type IncomingMessage } from 'node:http';
import { get as httpsGet } from 'node:https';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './free-port.js';

/** Why etcd cannot run here (for a skip message), or undefined when the binary is available. */
export function etcdUnavailableReason(binary = 'etcd'): string | undefined {
  const r = spawnSync(binary, ['--version'], { encoding: 'utf8' });
  if (r.error !== undefined) return `no '${binary}' binary on PATH (apt-get install etcd-server): ${r.error.message}`;
  if (r.status !== 0) return `'${binary} --version' exited with ${r.status}: ${r.stderr}`;
  return undefined;
}

export interface EtcdServerOptions {
  readonly binary?: string | undefined;
  /** --max-txn-ops (etcd default 128). */
  readonly maxTxnOps?: number | undefined;
  readonly startTimeoutMs?: number | undefined;
  /**
   * Serve clients over TLS (PEM file paths): the server's certificate and key, and the CA that client
   * certificates must be signed by (--client-cert-auth). The health check presents `client`.
   */
  readonly tls?:
    | {
        readonly certFile: string;
        readonly keyFile: string;
        readonly caFile: string;
        readonly client: { readonly certFile: string; readonly keyFile: string };
      }
    | undefined;
}

export class EtcdServer {
  /** host:port of the client URL (http, or https with `tls`). */
  readonly endpoint: string;
  readonly #args: readonly string[];
  readonly #binary: string;
  readonly #dataDir: string;
  readonly #options: EtcdServerOptions;
  #child: ChildProcess;
  #stderr = '';
  #exited: Promise<void>;

  private constructor(endpoint: string, binary: string, args: readonly string[], dataDir: string, options: EtcdServerOptions) {
    this.endpoint = endpoint;
    this.#binary = binary;
    this.#args = args;
    this.#dataDir = dataDir;
    this.#options = options;
    [this.#child, this.#exited] = this.#spawn();
  }

  #spawn(): [ChildProcess, Promise<void>] {
    const child = spawn(this.#binary, this.#args, { stdio: ['ignore', 'ignore', 'pipe'] });
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (chunk: string) => {
      this.#stderr = (this.#stderr + chunk).slice(-4000);
    });
    return [child, new Promise((resolve) => child.once('exit', () => resolve()))];
  }

  get pid(): number {
    const pid = this.#child.pid;
    if (pid === undefined) throw new Error('etcd has no pid');
    return pid;
  }

  get running(): boolean {
    return this.#child.exitCode === null && this.#child.signalCode === null;
  }

  /**
   * Freezes etcd (SIGSTOP) and resolves once every thread is stopped: a signalled thread that is on a
   * CPU can still answer a request or two before it stops, so "signal sent" is not "frozen".
   */
  async freeze(timeoutMs = 5_000): Promise<void> {
    const pid = this.pid;
    process.kill(pid, 'SIGSTOP');
    const deadline = Date.now() + timeoutMs;
    while (!allThreadsStopped(pid)) {
      if (Date.now() > deadline) throw new Error(`etcd (pid ${pid}) not stopped ${timeoutMs} ms after SIGSTOP`);
      await new Promise((resolve) => setTimeout(resolve, 1));
    }
  }

  thaw(): void {
    if (this.running) process.kill(this.pid, 'SIGCONT');
  }

  static async start(options: EtcdServerOptions = {}): Promise<EtcdServer> {
    const dataDir = mkdtempSync(join(tmpdir(), 'quiver-etcd-'));
    const [clientPort, peerPort] = [await freePort(), await freePort()];
    const tls = options.tls;
    const client = `${tls === undefined ? 'http' : 'https'}://127.0.0.1:${clientPort}`;
    const peer = `http://127.0.0.1:${peerPort}`;
    const args = [
      '--name',
      'quiver-test',
      '--data-dir',
      join(dataDir, 'data'),
      '--listen-client-urls',
      client,
      '--advertise-client-urls',
      client,
      '--listen-peer-urls',
      peer,
      '--initial-advertise-peer-urls',
      peer,
      '--initial-cluster',
      `quiver-test=${peer}`,
      '--log-level',
      'warn',
      '--logger',
      'zap',
      ...(options.maxTxnOps === undefined ? [] : ['--max-txn-ops', String(options.maxTxnOps)]),
      ...(tls === undefined ? [] : ['--cert-file', tls.certFile, '--key-file', tls.keyFile, '--trusted-ca-file', tls.caFile, '--client-cert-auth']),
    ];
    const server = new EtcdServer(`127.0.0.1:${clientPort}`, options.binary ?? 'etcd', args, dataDir, options);
    try {
      await server.#waitHealthy(options.startTimeoutMs ?? 30_000);
    } catch (e) {
      await server.stop();
      throw e;
    }
    return server;
  }

  /**
   * A clean shutdown (SIGTERM) or a crash (SIGKILL) that keeps the data dir and the ports, for
   * `restart`. A frozen etcd is thawed first so that it can exit.
   */
  async halt(signal: 'SIGTERM' | 'SIGKILL' = 'SIGTERM'): Promise<void> {
    if (!this.running) return;
    this.#child.kill(signal);
    if (signal === 'SIGTERM') this.thaw();
    await this.#exited;
  }

  /** Starts etcd again on the same data dir and ports (after `halt`); resolves once it is healthy. */
  async restart(): Promise<void> {
    if (this.running) throw new Error('etcd is running: halt() it first');
    this.#stderr = '';
    [this.#child, this.#exited] = this.#spawn();
    await this.#waitHealthy(this.#options.startTimeoutMs ?? 30_000);
  }

  /** Polls etcd's /health endpoint until it reports a leader (single member: right after start). */
  async #waitHealthy(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let exited = false;
    void this.#exited.then(() => {
      exited = true;
    });
    for (;;) {
      if (exited) throw new Error(`etcd exited during start: ${this.#stderr}`);
      try {
        if ((await this.#health()) === 'true') return;
      } catch {
        // not listening yet
      }
      if (Date.now() > deadline) throw new Error(`etcd not healthy after ${timeoutMs} ms: ${this.#stderr}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  /** The `health` field of GET /health (over TLS with the client certificate when configured). */
  #health(): Promise<string | undefined> {
    const tls = this.#options.tls;
    return new Promise((resolve, reject) => {
      const onRes = (res: IncomingMessage) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => {
          try {
            resolve((JSON.parse(body) as { health?: string }).health);
          } catch (e) {
            reject(e as Error);
          }
        });
        res.on('error', reject);
      };
      const url = `${tls === undefined ? 'http' : 'https'}://${this.endpoint}/health`;
      const req =
        tls === undefined
          ? httpGet(url, { timeout: 2_000 }, onRes)
          : httpsGet(
              url,
              { timeout: 2_000, ca: readFileSync(tls.caFile), cert: readFileSync(tls.client.certFile), key: readFileSync(tls.client.keyFile) },
              onRes,
            );
      req.on('timeout', () => req.destroy(new Error('health check timed out')));
      req.on('error', reject);
    });
  }

  async stop(): Promise<void> {
    if (this.running) {
      this.#child.kill('SIGKILL');
      await this.#exited;
    }
    rmSync(this.#dataDir, { recursive: true, force: true });
  }
}

/** Linux: state 'T' (stopped) in /proc/PID/task/TID/stat for every thread. */
function allThreadsStopped(pid: number): boolean {
  const tids = readdirSync(`/proc/${pid}/task`);
  return tids.every((tid) => {
    const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
    // The state follows the parenthesised command name, which may itself hold spaces.
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state === 'T' || state === 't';
  });
}
