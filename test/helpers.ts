import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { MilvusClient } from '@zilliz/milvus2-sdk-node';
import { loadConfig, type Config } from '../src/common/config.js';
import { startServer, type RunningServer, type ServerOverrides } from '../src/wiring/server.js';

export interface TestServer {
  readonly server: RunningServer;
  readonly client: MilvusClient;
  readonly dataDir: string;
  restart(): Promise<TestServer>;
  close(opts?: { keepData?: boolean }): Promise<void>;
}

/** Starts a real server on a free loopback port with a fresh data dir, and an official SDK client. */
export async function startTestServer(config: Partial<Config> = {}, overrides: ServerOverrides = {}, dataDir?: string): Promise<TestServer> {
  const dir = dataDir ?? (await mkdtemp(join(tmpdir(), 'quiver-e2e-')));
  const cfg = loadConfig({ port: 0, metricsPort: 0, dataDir: dir, logLevel: 'silent', ...config }, {});
  const server = await startServer(cfg, { log: pino({ level: 'silent' }), ...overrides });
  const client = new MilvusClient({ address: `127.0.0.1:${server.port}`, telemetry: { enabled: false }, logLevel: 'error' } as never);
  await client.connectPromise;
  const t: TestServer = {
    server,
    client,
    dataDir: dir,
    restart: async () => {
      await t.close({ keepData: true });
      return startTestServer(config, overrides, dir);
    },
    close: async (opts) => {
      await client.closeConnection();
      await server.close();
      if (!opts?.keepData) await rm(dir, { recursive: true, force: true });
    },
  };
  return t;
}

/** Deterministic clustered float32 vectors. */
export function vectors(n: number, dim: number, seed = 1): number[][] {
  let s = seed >>> 0;
  const rnd = () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const centers = Array.from({ length: 8 }, () => Array.from({ length: dim }, () => rnd() * 2 - 1));
  return Array.from({ length: n }, (_, i) => {
    const c = centers[i % centers.length]!;
    return c.map((x) => x + (rnd() - 0.5) * 0.2);
  });
}

/** Polls `cond` until it holds (or throws after `timeoutMs`). */
export async function until(cond: () => boolean | Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** Polls a restore job until it is Completed or Failed; returns its info. */
export async function waitRestore(client: MilvusClient, jobId: string, timeoutMs = 60_000) {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const s = await client.getRestoreSnapshotState({ job_id: jobId });
    if (s.info?.state === 'RestoreSnapshotCompleted' || s.info?.state === 'RestoreSnapshotFailed') return s.info;
    if (Date.now() > end) throw new Error(`restore job ${jobId} still ${s.info?.state}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
