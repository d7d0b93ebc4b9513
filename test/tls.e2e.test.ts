/**
 * TLS on the gRPC port through the official SDK's `tls` options (issue 14, "TLS"): one-way (the client
 * checks the server against a CA), mutual (the server also requires a client certificate its CA signed;
 * a client without one is refused in the handshake and the server stays up), and TLS with auth on
 * through the CLI's client.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MilvusClient } from '@zilliz/milvus2-sdk-node';
import { pino } from 'pino';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { withSnapshotCommands } from '../src/cli/connect.js';
import { loadConfig, type Config } from '../src/common/config.js';
import { makeTestCertificates, opensslUnavailableReason, type TestCertificates } from '../src/testing/tls-certs.js';
import { startServer, type RunningServer } from '../src/wiring/server.js';

const noOpenssl = opensslUnavailableReason();

const dirs: string[] = [];
const servers: RunningServer[] = [];
const clients: MilvusClient[] = [];

afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.closeConnection().catch(() => undefined)));
  await Promise.all(servers.splice(0).map((s) => s.close()));
});
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

async function tempDir(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'quiver-tls-e2e-'));
  dirs.push(d);
  return d;
}

async function serve(flags: Partial<Record<keyof Config, unknown>>): Promise<RunningServer> {
  const cfg = loadConfig({ port: 0, metricsPort: 0, dataDir: await tempDir(), logLevel: 'silent', ...flags }, {});
  const s = await startServer(cfg, { log: pino({ level: 'silent' }) });
  servers.push(s);
  return s;
}

function client(port: number, extra: Record<string, unknown>): MilvusClient {
  // No retries and a short deadline: a refused handshake should fail the call, not be retried for seconds.
  const c = new MilvusClient({
    address: `127.0.0.1:${port}`,
    telemetry: { enabled: false },
    logLevel: 'error',
    maxRetries: 0,
    timeout: 5000,
    ...extra,
  } as never);
  clients.push(c);
  // The SDK connects (Connect RPC) from its constructor: a refused handshake rejects that promise too.
  c.connectPromise?.catch(() => undefined);
  return c;
}

/** The call's outcome: the reply's status code, or 'refused' when the call itself failed (no TLS session). */
async function outcome(c: MilvusClient): Promise<number | 'refused'> {
  try {
    return (await c.listCollections()).status.code ?? 0;
  } catch {
    return 'refused';
  }
}

describe.skipIf(noOpenssl !== undefined)('TLS on gRPC', () => {
  let certs: TestCertificates;

  it('one-way: a client that trusts the CA talks TLS; a plaintext client is refused', async () => {
    certs = makeTestCertificates(await tempDir());
    const s = await serve({ tlsCert: certs.serverCertFile, tlsKey: certs.serverKeyFile });
    expect(await outcome(client(s.port, { tls: { rootCertPath: certs.caFile } }))).toBe(0);
    expect(await outcome(client(s.port, {}))).toBe('refused');
    // A client that trusts another CA does not accept this server.
    expect(await outcome(client(s.port, { tls: { rootCertPath: certs.otherCaFile } }))).toBe('refused');
  });

  it('mutual: a client certificate is required; a client without one is refused and the server stays up', async () => {
    certs ??= makeTestCertificates(await tempDir());
    const s = await serve({ tlsCert: certs.serverCertFile, tlsKey: certs.serverKeyFile, tlsCa: certs.caFile });
    const mtls = { rootCertPath: certs.caFile, privateKeyPath: certs.clientKeyFile, certChainPath: certs.clientCertFile };
    expect(await outcome(client(s.port, { tls: mtls }))).toBe(0);
    expect(await outcome(client(s.port, { tls: { rootCertPath: certs.caFile } }))).toBe('refused');
    expect(await outcome(client(s.port, {}))).toBe('refused');
    // Still serving after the refused handshakes.
    expect(await outcome(client(s.port, { tls: mtls }))).toBe(0);
  });

  it('TLS with auth on: the SDK and the CLI client authenticate over mutual TLS', async () => {
    certs ??= makeTestCertificates(await tempDir());
    const s = await serve({
      tlsCert: certs.serverCertFile,
      tlsKey: certs.serverKeyFile,
      tlsCa: certs.caFile,
      auth: true,
      rootPassword: 'tls-root-Secret',
    });
    const tls = { rootCertPath: certs.caFile, privateKeyPath: certs.clientKeyFile, certChainPath: certs.clientCertFile };
    expect(await outcome(client(s.port, { tls }))).toBe(1400);
    expect(await outcome(client(s.port, { tls, username: 'root', password: 'tls-root-Secret' }))).toBe(0);

    const out: string[] = [];
    const err: string[] = [];
    const sink = { out: (l: string) => void out.push(l), err: (l: string) => void err.push(l) };
    const code = await withSnapshotCommands(`127.0.0.1:${s.port}`, sink, (c) => c.jobs({ json: true }), undefined, {
      username: 'root',
      password: 'tls-root-Secret',
      tls,
    });
    expect({ code, err }).toEqual({ code: 0, err: [] });
    expect(JSON.parse(out.join('\n'))).toEqual([]);
    const denied = await withSnapshotCommands(`127.0.0.1:${s.port}`, sink, (c) => c.jobs({ json: true }), undefined, {
      username: 'root',
      password: 'wrong-password',
      tls,
    });
    expect(denied).toBe(1);
  });
});
