import { execFile } from 'node:child_process';
import { createServer } from 'node:net';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { Metrics } from '../common/metrics.js';
import { OK } from '../proxy/status.js';
import { makeTestCertificates, opensslUnavailableReason, type TestCertificates } from '../testing/tls-certs.js';
import { serveRest, type RestEndpoint } from './server.js';

const run = promisify(execFile);
const noOpenssl = opensslUnavailableReason();

/** One route over a stub handler table: what the door adds (TLS, status mapping, metrics), not the handlers. */
async function serve(tls?: TestCertificates): Promise<{ ep: RestEndpoint; metrics: Metrics }> {
  const metrics = new Metrics();
  const ep = await serveRest(
    {
      host: '127.0.0.1',
      port: 0,
      bodyMaxBytes: 1 << 20,
      tls: tls && { certFile: tls.serverCertFile, keyFile: tls.serverKeyFile, caFile: tls.caFile },
    },
    {
      log: pino({ level: 'silent' }),
      metrics,
      handlers: {
        ListDatabases: () => ({ status: OK, db_names: ['default'] }),
        DropDatabase: () => ({ ...OK, code: 800, error_code: 'UnexpectedError', reason: 'database not found[database=x]' }),
      },
      routes: [
        {
          path: 'databases/list',
          body: z.object({}).passthrough(),
          run: async (_b, call) => ((await call('ListDatabases', {})) as { db_names: string[] }).db_names,
        },
        {
          path: 'databases/drop',
          body: z.object({ dbName: z.string() }),
          run: async (b: { dbName: string }, call) => {
            await call('DropDatabase', { db_name: b.dbName });
            return {};
          },
        },
      ],
    },
  );
  return { ep, metrics };
}

describe('REST server', () => {
  it('answers a failed reply status as {code, message} with HTTP 200 and counts requests by route', async () => {
    const { ep, metrics } = await serve();
    try {
      const drop = await fetch(`${ep.url}/v2/vectordb/databases/drop`, { method: 'POST', body: '{"dbName":"x"}' });
      expect(drop.status).toBe(200);
      expect(await drop.json()).toEqual({ code: 800, message: 'database not found[database=x]' });
      const list = await fetch(`${ep.url}/v2/vectordb/databases/list`, { method: 'POST', body: '{}' });
      expect(await list.json()).toEqual({ code: 0, data: ['default'] });
      const text = await metrics.registry.metrics();
      expect(text).toMatch(/quiver_requests_total\{method="rest:databases\/drop",status="DatabaseNotFound"\} 1/);
      expect(text).toMatch(/quiver_requests_total\{method="rest:databases\/list",status="Success"\} 1/);
    } finally {
      await ep.close();
    }
  });

  it('refuses to start on a taken port, naming --http-port', async () => {
    const taken = createServer();
    await new Promise<void>((r) => taken.listen(0, '127.0.0.1', r));
    const port = (taken.address() as { port: number }).port;
    try {
      const metrics = new Metrics();
      await expect(
        serveRest({ host: '127.0.0.1', port, bodyMaxBytes: 1 << 20 }, { log: pino({ level: 'silent' }), metrics, handlers: {}, routes: [] }),
      ).rejects.toMatchObject({ code: 1100, message: expect.stringMatching(/--http-port/) as unknown });
    } finally {
      await new Promise((r) => taken.close(r));
    }
  });

  describe.skipIf(noOpenssl !== undefined)('with mutual TLS', () => {
    let dir: string;
    let certs: TestCertificates;
    let ep: RestEndpoint;
    beforeAll(async () => {
      dir = await mkdtemp(join(tmpdir(), 'quiver-rest-tls-'));
      certs = makeTestCertificates(dir);
      ep = (await serve(certs)).ep;
    });
    afterAll(async () => {
      await ep?.close();
      await rm(dir, { recursive: true, force: true });
    });

    const curl = async (args: readonly string[]): Promise<{ ok: boolean; out: string }> =>
      run('curl', ['-s', '-X', 'POST', '-d', '{}', '--cacert', certs.caFile, ...args, `${ep.url}/v2/vectordb/databases/list`]).then(
        (r) => ({ ok: true, out: r.stdout }),
        (e: { stdout?: string }) => ({ ok: false, out: e.stdout ?? '' }),
      );

    it('serves a client with a certificate the CA signed and refuses one without', async () => {
      expect(ep.url).toMatch(/^https:/);
      const good = await curl(['--cert', certs.clientCertFile, '--key', certs.clientKeyFile]);
      expect(good).toEqual({ ok: true, out: '{"code":0,"data":["default"]}' });
      const none = await curl([]);
      expect(none.ok).toBe(false);
      expect(none.out).toBe('');
    });
  });
});
