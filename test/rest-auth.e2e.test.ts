import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { HttpClient, MilvusClient } from '@zilliz/milvus2-sdk-node';
import { startTestServer, type TestServer } from './helpers.js';

const ROOT_PASSWORD = 'Quiver-root-9f3k';
const USER_PASSWORD = 'alice-Secret-77';

/* eslint-disable @typescript-eslint/no-explicit-any */

describe('RESTful API v2 with authentication on', () => {
  let t: TestServer;
  let base: string;
  let root: MilvusClient;
  const logLines: string[] = [];
  beforeAll(async () => {
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        logLines.push(chunk.toString());
        done();
      },
    });
    t = await startTestServer({ auth: true, rootPassword: ROOT_PASSWORD, authFailuresFree: 50 }, { log: pino({ level: 'debug' }, sink) });
    base = `http://127.0.0.1:${t.server.httpPort}`;
    root = new MilvusClient({ address: `127.0.0.1:${t.server.port}`, username: 'root', password: ROOT_PASSWORD, logLevel: 'error' } as never);
    await root.connectPromise;
  });
  afterAll(async () => {
    await root?.closeConnection();
    await t?.close();
  });

  it('refuses missing and wrong credentials with 401 and serves Bearer user:password', async () => {
    const anonymous = new HttpClient({ endpoint: base });
    await expect(anonymous.listCollections()).rejects.toMatchObject({ status: 401 });
    const res = await fetch(`${base}/v2/vectordb/collections/list`, { method: 'POST', body: '{}' });
    expect(res.status).toBe(401);
    expect(((await res.json()) as { code: number }).code).toBe(1400);

    const wrong = new HttpClient({ endpoint: base, username: 'root', password: 'not-the-password' });
    await expect(wrong.listCollections()).rejects.toMatchObject({ status: 401 });
    const bad = await fetch(`${base}/v2/vectordb/collections/list`, { method: 'POST', body: '{}', headers: { Authorization: 'Basic cm9vdDp4' } });
    expect(bad.status).toBe(401);

    const ok = new HttpClient({ endpoint: base, username: 'root', password: ROOT_PASSWORD });
    expect((await ok.createCollection({ collectionName: 'guarded', dimension: 4 })).code).toBe(0);
    expect((await ok.listCollections()).data).toEqual(['guarded']);
    // A token of the form user:password works as well (HttpClient's `token`).
    const byToken = new HttpClient({ endpoint: base, token: `root:${ROOT_PASSWORD}` });
    expect((await byToken.hasCollection({ collectionName: 'guarded' } as any)).data).toEqual({ has: true });
  });

  it("refuses a deleted user's old credentials, and never logs a password", async () => {
    expect((await root.createUser({ username: 'alice', password: USER_PASSWORD })).error_code).toBe('Success');
    const alice = new HttpClient({ endpoint: base, username: 'alice', password: USER_PASSWORD });
    expect((await alice.listDatabases()).code).toBe(0);
    expect((await root.deleteUser({ username: 'alice' })).error_code).toBe('Success');
    await expect(alice.listDatabases()).rejects.toMatchObject({ status: 401 });
    // The server is still up for the others.
    const ok = new HttpClient({ endpoint: base, username: 'root', password: ROOT_PASSWORD });
    expect((await ok.listDatabases()).code).toBe(0);
    const all = logLines.join('');
    expect(all).toContain('rest request');
    expect(all).not.toContain(ROOT_PASSWORD);
    expect(all).not.toContain(USER_PASSWORD);
    expect(all).not.toContain('not-the-password');
  });
});
