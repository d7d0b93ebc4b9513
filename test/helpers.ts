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
  const cfg = loadConfig({ port: 0, metricsPort: 0, httpPort: 0, dataDir: dir, logLevel: 'silent', ...config }, {});
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

// The generic pieces live in the shared test kit; re-exported so e2e tests keep importing from here.
export { until, vectorRows as vectors, waitRestore } from '../src/testing/index.js';
