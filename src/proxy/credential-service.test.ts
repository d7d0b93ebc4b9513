import { createServer, type Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CredentialStore } from '../auth/credentials.js';
import { LOGIN_RATE_LIMIT_DEFAULTS } from '../auth/rate-limit.js';
import { FakeClock } from '../common/clock.js';
import { MemoryMetaKV } from '../meta/memory-kv.js';
import { apiKeyRoutes, credentialHandlers } from './credential-service.js';

const store = new CredentialStore(
  { kv: new MemoryMetaKV(), clock: new FakeClock() },
  { enabled: true, scrypt: { N: 2 ** 14, r: 8, p: 1, keyLen: 32 }, rateLimit: LOGIN_RATE_LIMIT_DEFAULTS, cacheEntriesMax: 100 },
);
const b64 = (s: string) => Buffer.from(s).toString('base64');

describe('credential RPC handlers', () => {
  const h = credentialHandlers(store, { rootOnlyAdmin: true });
  const ctx = (user?: string) => ({ dbName: '', requestId: 'r', user, peer: '127.0.0.1' });

  it('decode base64 passwords, keep user administration to root without an authorizer, never echo a password', async () => {
    await store.bootstrapRoot('root-pw-1');
    expect(await h['CreateCredential']!({ username: 'alice', password: b64('alice-pw') }, ctx('root'))).toMatchObject({ code: 0 });
    await expect(h['CreateCredential']!({ username: 'bob', password: b64('bob-pw-1') }, ctx('alice'))).rejects.toMatchObject({ code: 1401 });
    await expect(h['DeleteCredential']!({ username: 'root' }, ctx('root'))).rejects.toMatchObject({ code: 1100 });
    await expect(
      h['UpdateCredential']!({ username: 'root', oldPassword: b64('root-pw-1'), newPassword: b64('x-pw-123') }, ctx('alice')),
    ).rejects.toMatchObject({
      code: 1401,
    });
    const bad = await h['CreateCredential']!({ username: 'carol', password: '%%%secret-not-base64' }, ctx('root')).catch((e: Error) => e);
    expect((bad as Error).message).not.toContain('secret');
    expect(await h['UpdateCredential']!({ username: 'alice', oldPassword: b64('alice-pw'), newPassword: b64('alice-pw-2') }, ctx('alice'))).toMatchObject({
      code: 0,
    });
    expect(await h['ListCredUsers']!({}, ctx('root'))).toMatchObject({ usernames: ['alice', 'root'] });
  });
});

describe('API-key HTTP routes', () => {
  let server: Server;
  let base: string;
  beforeAll(async () => {
    await store.bootstrapRoot('root-pw-1');
    const routes = apiKeyRoutes(store);
    server = createServer((req, res) => {
      if (!routes(req, res)) {
        res.writeHead(404);
        res.end();
      }
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const a = server.address();
    base = `http://127.0.0.1:${typeof a === 'object' && a ? a.port : 0}`;
  });
  afterAll(async () => {
    await new Promise((r) => server.close(r));
  });
  const root = { authorization: `Basic ${b64('root:root-pw-1')}` };

  it('refuses without root credentials, refuses bad bodies, and creates / lists / revokes with them', async () => {
    expect((await fetch(`${base}/auth/apikeys`)).status).toBe(401);
    expect((await fetch(`${base}/auth/apikeys`, { headers: { authorization: 'Bearer root:wrong-pw' } })).status).toBe(401);
    expect((await fetch(`${base}/auth/apikeys`, { method: 'PUT', headers: root })).status).toBe(405);
    const notJson = await fetch(`${base}/auth/apikeys`, { method: 'POST', headers: root, body: '{nope' });
    expect([notJson.status, ((await notJson.json()) as { code: number }).code]).toEqual([400, 1100]);
    const huge = await fetch(`${base}/auth/apikeys`, { method: 'POST', headers: root, body: 'x'.repeat(1 << 20) }).catch(() => undefined);
    // Either the 400 arrives before the server closes the connection, or the client sees the close.
    if (huge !== undefined) expect(huge.status).toBe(400);
    const created = await fetch(`${base}/auth/apikeys`, { method: 'POST', headers: root, body: JSON.stringify({ description: 'ops' }) });
    expect(created.status).toBe(201);
    const k = (await created.json()) as { id: string; key: string; user: string };
    expect(k.user).toBe('root');
    expect(await store.verify({ authorization: k.key, encoding: 'plain', peer: 'p' })).toBe('root');
    // A key cannot manage keys unless it is root's own: this one is.
    expect((await fetch(`${base}/auth/apikeys`, { headers: { authorization: `Bearer ${k.key}` } })).status).toBe(200);
    expect((await fetch(`${base}/auth/apikeys/${k.id}`, { method: 'DELETE', headers: root })).status).toBe(200);
    expect((await fetch(`${base}/auth/apikeys/${k.id}`, { method: 'DELETE', headers: root })).status).toBe(400);
    expect(await (await fetch(`${base}/auth/apikeys`, { headers: root })).json()).toEqual([]);
  });
});
