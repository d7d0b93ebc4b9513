import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import { MilvusClient } from '@zilliz/milvus2-sdk-node';
import { afterAll, afterEach } from 'vitest';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      const port = typeof a === 'object' && a ? a.port : 0;
      s.close(() => resolve(port));
    });
  });
}

export interface ServerProcess {
  readonly child: ChildProcess;
  readonly port: number;
  readonly client: MilvusClient;
  /** Everything the server printed so far (pino JSON lines). */
  output(): string;
  /** SIGKILL to the server's whole process group; resolves once the process is gone. */
  kill9(): Promise<void>;
  /** SIGTERM (graceful close); SIGKILL to the group if it has not exited within 20 s. */
  stop(): Promise<void>;
}

/**
 * Process groups of servers still running. A test that fails (or a worker that exits) must not leave a
 * server holding a port and a data dir: `killAllServers` in afterEach/afterAll, and the exit hook below.
 */
const live = new Set<number>();
process.once('exit', () => {
  for (const pid of live) killGroup(pid);
});

function killGroup(pid: number): void {
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    // Already gone.
  }
}

/** SIGKILLs every server this worker spawned and has not stopped yet. */
export function killAllServers(): void {
  for (const pid of live) killGroup(pid);
  live.clear();
}

/**
 * Runs `quiver serve` as a separate process, detached into its own process group (so a test can kill -9
 * it and anything it started at once), and connects the official SDK.
 */
export async function spawnServer(dataDir: string, env: Record<string, string> = {}): Promise<ServerProcess> {
  const port = await freePort();
  const nodeArgs = (env['QUIVER_NODE_ARGS'] ?? process.env['QUIVER_NODE_ARGS'])?.split(' ').filter(Boolean) ?? [];
  const child = spawn(
    process.execPath,
    [
      ...nodeArgs,
      '--import',
      'tsx',
      join(ROOT, 'src/cli/main.ts'),
      'serve',
      '--port',
      String(port),
      '--metrics-port',
      '0',
      '--data-dir',
      dataDir,
      '--log-level',
      env['QUIVER_LOG_LEVEL'] ?? 'info',
    ],
    {
      cwd: ROOT,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    },
  );
  const pid = child.pid!;
  live.add(pid);
  let output = '';
  child.stdout!.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  void exited.then(() => live.delete(pid));
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`server did not start within 60s:\n${output}`)), 60_000);
      // The "quiver is serving" line is logged at info; with a quieter log level, a listening port says it.
      let portOpen = false;
      const probe = () => {
        const sock = connect(port, '127.0.0.1');
        sock.once('connect', () => {
          portOpen = true;
          sock.destroy();
        });
        sock.once('error', () => sock.destroy());
      };
      const check = () => {
        if (!portOpen && (env['QUIVER_LOG_LEVEL'] ?? 'info') !== 'info') probe();
        if (output.includes('quiver is serving') || portOpen) {
          clearTimeout(timer);
          resolve();
        } else if (child.exitCode !== null || child.signalCode !== null) {
          clearTimeout(timer);
          reject(new Error(`server exited with ${child.exitCode ?? child.signalCode}:\n${output}`));
        } else setTimeout(check, 20);
      };
      check();
    });
  } catch (err) {
    killGroup(pid);
    await exited;
    throw err;
  }
  const client = await connectClient(port, child, () => output).catch(async (err: unknown) => {
    killGroup(pid);
    await exited;
    throw err;
  });
  return {
    child,
    port,
    client,
    output: () => output,
    kill9: async () => {
      // Kill first: closing the client first would wait for calls in flight.
      killGroup(pid);
      await exited;
      void client.closeConnection().catch(() => undefined);
    },
    stop: async () => {
      await client.closeConnection().catch(() => undefined);
      child.kill('SIGTERM');
      const timer = setTimeout(() => killGroup(pid), 20_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/**
 * Connects the official SDK to a server that has said it is serving. The client keeps its own subchannel
 * pool: grpc-js otherwise shares subchannels per address across clients in a test process, and a port
 * reused from a server killed earlier in the same test hands the new client a subchannel still in its
 * failure backoff (UNAVAILABLE "No connection established. Last error: null" within milliseconds).
 * A connect that still fails is retried while the process lives, for up to 15 s; the error names the
 * process state and its output's tail.
 */
async function connectClient(port: number, child: ChildProcess, output: () => string): Promise<MilvusClient> {
  const deadline = performance.now() + 15_000;
  for (;;) {
    const client = new MilvusClient({
      address: `127.0.0.1:${port}`,
      telemetry: { enabled: false },
      logLevel: 'error',
      channelOptions: { 'grpc.use_local_subchannel_pool': 1 },
    } as never);
    try {
      await client.connectPromise;
      return client;
    } catch (err) {
      void client.closeConnection().catch(() => undefined);
      const exited = child.exitCode !== null || child.signalCode !== null;
      if (exited || performance.now() > deadline) {
        const state = exited ? `exited with ${child.exitCode ?? child.signalCode}` : 'still running';
        throw new Error(`SDK could not connect to 127.0.0.1:${port} (server ${state}): ${(err as Error).message}\n${output().slice(-3000)}`);
      }
      await new Promise((r) => setTimeout(r, 250));
    }
  }
}

/** The one start failure a restart right after kill -9 may hit (stale LOCK); see `spawnServerRetrying`. */
export const DATA_DIR_IN_USE = /data dir .* is in use by another Quiver process/;

/**
 * Restart on a data dir right after a kill -9. Retries (short backoff) only when the start failed with
 * the data-dir-in-use message, and reports how many times that happened: a known bug is counted, not hidden.
 */
export async function spawnServerRetrying(
  dataDir: string,
  env: Record<string, string> = {},
  attempts = 5,
): Promise<{ server: ServerProcess; inUseRetries: number }> {
  for (let i = 0; ; i++) {
    try {
      return { server: await spawnServer(dataDir, env), inUseRetries: i };
    } catch (err) {
      if (i + 1 >= attempts || !DATA_DIR_IN_USE.test((err as Error).message)) throw err;
      await new Promise((r) => setTimeout(r, 100 * 2 ** i));
    }
  }
}

/**
 * The spawned server of a test file's kill -9 tests: `start()` spawns one on a fresh data dir, `restart()` kills it
 * with SIGKILL and spawns again on the same dir. The server is killed after each test and the dirs are removed
 * after the file. Call it at the top of a `describe`.
 */
export function killableServer(prefix: string): { start(): Promise<ServerProcess>; restart(): Promise<ServerProcess>; dataDir(): string } {
  const dirs: string[] = [];
  let srv: ServerProcess | undefined;
  afterEach(async () => {
    await srv?.kill9();
    srv = undefined;
  });
  afterAll(async () => {
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });
  return {
    async start() {
      const dir = await mkdtemp(join(tmpdir(), prefix));
      dirs.push(dir);
      srv = await spawnServer(dir);
      return srv;
    },
    async restart() {
      const dir = dirs.at(-1);
      if (srv === undefined || dir === undefined) throw new Error('restart() before start()');
      await srv.kill9();
      srv = await spawnServer(dir);
      return srv;
    },
    dataDir() {
      const dir = dirs.at(-1);
      if (dir === undefined) throw new Error('dataDir() before start()');
      return dir;
    },
  };
}
