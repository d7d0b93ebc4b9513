/**
 * `npm start` is the one command to run the server, and SIGTERM (or SIGINT) sent to the process the user
 * started stops it cleanly: the port is released, no process is left behind, and nothing is logged at
 * error level. (Issue 8: `npm start` used to run npm → sh → tsx → node, and a
 * SIGTERM to npm orphaned the server, still holding its port.)
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DataType, ErrorCode, MilvusClient } from '@zilliz/milvus2-sdk-node';
import { afterAll, describe, expect, it } from 'vitest';
import { OK } from '../src/proxy/status.js';
import { startTestServer } from './helpers.js';
import { freePort } from './process.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');

/** Pids of live processes whose command line mentions `needle`. */
async function processesMentioning(needle: string): Promise<number[]> {
  const out: number[] = [];
  for (const name of await readdir('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const cmd = await readFile(`/proc/${name}/cmdline`, 'utf8').catch(() => '');
    const stat = await readFile(`/proc/${name}/stat`, 'utf8').catch(() => '');
    if (cmd.includes(needle) && !/^\d+ \(.*\) Z/.test(stat)) out.push(Number(name));
  }
  return out;
}

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

describe('npm start', () => {
  const dirs: string[] = [];
  afterAll(async () => {
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });

  it.each(['SIGTERM', 'SIGINT'] as const)('stops cleanly on %s sent to the npm process', async (signal) => {
    const dataDir = await mkdtemp(join(tmpdir(), 'quiver-start-'));
    dirs.push(dataDir);
    const port = await freePort();
    const npm = spawn('npm', ['start', '--', '--port', String(port), '--metrics-port', '0', '--data-dir', dataDir], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, QUIVER_LOG_LEVEL: 'info' },
    });
    let output = '';
    npm.stdout!.on('data', (d: Buffer) => (output += d.toString()));
    npm.stderr!.on('data', (d: Buffer) => (output += d.toString()));
    const exited = new Promise<number | null>((r) => npm.once('exit', (code) => r(code)));
    try {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`server did not start:\n${output}`)), 60_000);
        npm.stdout!.on('data', () => {
          if (output.includes('quiver is serving')) {
            clearTimeout(timer);
            resolve();
          }
        });
        npm.once('exit', (code) => reject(new Error(`npm exited with ${code}:\n${output}`)));
      });
      const client = new MilvusClient({ address: `127.0.0.1:${port}`, telemetry: { enabled: false }, logLevel: 'error' } as never);
      await client.connectPromise;
      const created = await client.createCollection({
        collection_name: 'c',
        fields: [
          { name: 'id', data_type: DataType.Int64, is_primary_key: true },
          { name: 'v', data_type: DataType.FloatVector, dim: 4 },
        ],
      });
      expect(created.error_code).toBe(ErrorCode.SUCCESS);
      const r = await client.insert({ collection_name: 'c', data: Array.from({ length: 2000 }, (_, i) => ({ id: i, v: [i, 1, 2, 3] })) });
      expect(r.status.error_code).toBe(ErrorCode.SUCCESS);
      await client.closeConnection().catch(() => undefined);
      npm.kill(signal);
      await exited;
      expect(await portFree(port)).toBe(true);
      expect(await processesMentioning(dataDir)).toEqual([]);
      expect(output).toContain('"msg":"stopped"');
      const errors = output.split('\n').filter((l) => /"level":(50|60)/.test(l));
      expect(errors).toEqual([]);
    } finally {
      npm.kill('SIGKILL');
      for (const pid of await processesMentioning(dataDir)) process.kill(pid, 'SIGKILL');
    }
  });
});

describe('server.close', () => {
  it('lets a call in flight finish before it resolves', async () => {
    let entered!: () => void;
    const inHandler = new Promise<void>((r) => (entered = r));
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    // A handler that holds the call until the test releases it.
    const t = await startTestServer({}, { extraHandlers: () => ({ GetVersion: async () => (entered(), await gate, { status: OK, version: 'held' }) }) });
    try {
      const call = t.client.getVersion();
      await inHandler;
      let closed = false;
      const closing = t.server.close().then(() => (closed = true));
      await new Promise((r) => setTimeout(r, 200)); // close has had every chance to finish early
      expect(closed).toBe(false);
      release();
      expect((await call).version).toBe('held');
      await closing;
      expect(closed).toBe(true);
    } finally {
      release();
      await t.close();
    }
  });
});
