/**
 * A throwaway single-member etcd for tests and benchmarks: the `etcd` binary (Debian `etcd-server`) on
 * free loopback ports with a temporary data dir, removed on stop.
 */

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
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
}

export class EtcdServer {
  readonly endpoint: string;
  readonly #child: ChildProcess;
  readonly #dataDir: string;
  #stderr = '';
  #exited: Promise<void>;

  private constructor(endpoint: string, child: ChildProcess, dataDir: string) {
    this.endpoint = endpoint;
    this.#child = child;
    this.#dataDir = dataDir;
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (chunk: string) => {
      this.#stderr = (this.#stderr + chunk).slice(-4000);
    });
    this.#exited = new Promise((resolve) => child.once('exit', () => resolve()));
  }

  get pid(): number {
    const pid = this.#child.pid;
    if (pid === undefined) throw new Error('etcd has no pid');
    return pid;
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
    process.kill(this.pid, 'SIGCONT');
  }

  static async start(options: EtcdServerOptions = {}): Promise<EtcdServer> {
    const dataDir = mkdtempSync(join(tmpdir(), 'quiver-etcd-'));
    const [clientPort, peerPort] = [await freePort(), await freePort()];
    const client = `http://127.0.0.1:${clientPort}`;
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
    ];
    const child = spawn(options.binary ?? 'etcd', args, { stdio: ['ignore', 'ignore', 'pipe'] });
    const server = new EtcdServer(`127.0.0.1:${clientPort}`, child, dataDir);
    try {
      await server.#waitHealthy(options.startTimeoutMs ?? 30_000);
    } catch (e) {
      await server.stop();
      throw e;
    }
    return server;
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
        const res = await fetch(`http://${this.endpoint}/health`);
        const body = (await res.json()) as { health?: string };
        if (body.health === 'true') return;
      } catch {
        // not listening yet
      }
      if (Date.now() > deadline) throw new Error(`etcd not healthy after ${timeoutMs} ms: ${this.#stderr}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  async stop(): Promise<void> {
    if (this.#child.exitCode === null && this.#child.signalCode === null) {
      this.#child.kill('SIGTERM');
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
