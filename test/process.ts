import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import { MilvusClient } from '@zilliz/milvus2-sdk-node';

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
  /** Everything the process wrote to stdout and stderr so far (pino JSON lines). */
  output(): string;
  kill9(): Promise<void>;
  stop(): Promise<void>;
}

/** Runs `quiver serve` as a separate process (so a test can kill -9 it) and connects the official SDK. */
export async function spawnServer(dataDir: string, env: Record<string, string> = {}): Promise<ServerProcess> {
  const port = await freePort();
  const nodeArgs = (env['QUIVER_NODE_ARGS'] ?? process.env['QUIVER_NODE_ARGS'])?.split(' ').filter(Boolean) ?? [];
  const child = spawn(process.execPath, [...nodeArgs, '--import', 'tsx', join(ROOT, 'src/cli/main.ts'), 'serve', '--port', String(port), '--metrics-port', '0', '--data-dir', dataDir, '--log-level', 'info'], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout!.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start within 60s:\n${output}`)), 60_000);
    const check = () => {
      if (output.includes('quiver is serving')) {
        clearTimeout(timer);
        resolve();
      } else if (child.exitCode !== null) {
        clearTimeout(timer);
        reject(new Error(`server exited with ${child.exitCode}:\n${output}`));
      } else setTimeout(check, 50);
    };
    check();
  });
  const client = new MilvusClient({ address: `127.0.0.1:${port}`, telemetry: { enabled: false }, logLevel: 'error' } as never);
  await client.connectPromise;
  return {
    child,
    port,
    client,
    output: () => output,
    kill9: async () => {
      // Kill first: closing the client first would wait for calls in flight.
      child.kill('SIGKILL');
      await exited;
      void client.closeConnection().catch(() => undefined);
    },
    stop: async () => {
      await client.closeConnection().catch(() => undefined);
      child.kill('SIGTERM');
      await exited;
    },
  };
}
