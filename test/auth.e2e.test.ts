/**
 * Authentication through the official SDK (issue 14, "Authentication" and "Bad input and attacks"):
 * auth off works as before (user RPCs included); auth on refuses no credentials, a wrong password, a
 * deleted user's old token, a revoked API key, a locked-out user and a user changing another's password;
 * the root bootstrap refuses to start without a password or with Milvus's default; and nothing the
 * server printed holds a password or a key.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DataType, MilvusClient } from '@zilliz/milvus2-sdk-node';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { createApiKey, listApiKeys, revokeApiKey } from '../src/cli/apikey-commands.js';
import { startTestServer, type TestServer } from './helpers.js';
import { killAllServers, spawnServer, type ServerProcess } from './process.js';

const ROOT_PW = 'r00t-Secret-e2e';
const ALICE_PW = 'alice-Secret-1';
const BOB_PW = 'bob-Secret-22';
const CAROL_PW = 'carol-Secret-333';

const clients: MilvusClient[] = [];
function client(port: number, auth: { username?: string; password?: string; token?: string } = {}): MilvusClient {
  const c = new MilvusClient({ address: `127.0.0.1:${port}`, telemetry: { enabled: false }, logLevel: 'error', ...auth } as never);
  clients.push(c);
  return c;
}

const dirs: string[] = [];
async function tempDir(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'quiver-auth-e2e-'));
  dirs.push(d);
  return d;
}

afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.closeConnection().catch(() => undefined)));
});
afterAll(async () => {
  killAllServers();
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

function lines(out: string): string[] {
  return out.split('\n').filter(Boolean);
}

describe('auth off (the embedded default)', () => {
  let t: TestServer | undefined;
  afterAll(async () => {
    await t?.close();
  });

  it('serves callers without credentials and ignores credentials; user RPCs still work', async () => {
    t = await startTestServer();
    const anon = t.client;
    const withCreds = client(t.server.port, { username: 'nobody', password: 'whatever-1' });
    await anon.createCollection({
      collection_name: 'docs',
      fields: [
        { name: 'id', data_type: DataType.Int64, is_primary_key: true },
        { name: 'v', data_type: DataType.FloatVector, dim: 2 },
      ],
    });
    expect((await anon.insert({ collection_name: 'docs', data: [{ id: 1, v: [1, 0] }] })).status.code).toBe(0);
    expect((await withCreds.listCollections()).status.code).toBe(0);
    // Milvus lets users be managed with auth off (so they exist before auth is turned on).
    expect((await anon.createUser({ username: 'alice', password: ALICE_PW })).code).toBe(0);
    expect((await anon.listUsers()).usernames).toEqual(['alice']);
    expect((await anon.updateUser({ username: 'alice', oldPassword: 'wrong-old-pw', newPassword: 'alice-New-1' })).code).toBe(1400);
    expect((await anon.updateUser({ username: 'alice', oldPassword: ALICE_PW, newPassword: 'alice-New-1' })).code).toBe(0);
    const badName = await anon.createUser({ username: '../etc/passwd', password: ALICE_PW });
    expect(badName).toMatchObject({ code: 1100 });
    expect(badName.reason).toContain('"../etc/passwd"');
    expect((await anon.deleteUser({ username: 'alice' })).code).toBe(0);
    expect((await anon.listUsers()).usernames).toEqual([]);
  });
});

describe('auth on (a spawned `quiver serve --auth`)', () => {
  let srv: ServerProcess | undefined;
  afterAll(async () => {
    await srv?.stop();
  });

  it('refuses to start without a root password, or with the well-known one', async () => {
    const none = await spawnServer(await tempDir(), { QUIVER_AUTH: 'true' }).then(
      () => 'started',
      (e: Error) => e.message,
    );
    expect(none).toMatch(/server exited with 1/);
    expect(none).toMatch(/no root user exists yet: set QUIVER_ROOT_PASSWORD or --root-password-file/);
    const milvus = await spawnServer(await tempDir(), { QUIVER_AUTH: 'true', QUIVER_ROOT_PASSWORD: 'Milvus' }).then(
      () => 'started',
      (e: Error) => e.message,
    );
    expect(milvus).toMatch(/server exited with 1/);
    expect(milvus).toMatch(/well-known default/);
  }, 180_000);

  it('refuses bad credentials, deleted users, revoked keys, locked-out users; never logs a secret', async () => {
    const dir = await tempDir();
    const pwFile = join(dir, 'root-password');
    await writeFile(pwFile, `${ROOT_PW}\n`);
    srv = await spawnServer(join(dir, 'data'), { QUIVER_AUTH: 'true', QUIVER_ROOT_PASSWORD_FILE: pwFile, QUIVER_LOG_LEVEL: 'debug' });
    const port = srv.port;
    const serving = lines(srv.output())
      .map((l) => JSON.parse(l) as { msg?: string; metricsPort?: number })
      .find((l) => l.msg === 'quiver is serving');
    const httpAddress = `127.0.0.1:${serving!.metricsPort!}`;

    // No credentials: every call, Connect's successors included, answers 1400.
    const anon = client(port);
    const noCreds = await anon.listCollections();
    expect(noCreds.status).toMatchObject({ code: 1400, error_code: 'UnexpectedError' });
    expect(noCreds.status.reason).toMatch(/missing authorization/);
    expect((await anon.checkHealth()).isHealthy).toBeFalsy();

    const root = client(port, { username: 'root', password: ROOT_PW });
    expect((await root.listCollections()).status.code).toBe(0);
    expect((await client(port, { username: 'root', password: 'not-the-password' }).listCollections()).status.code).toBe(1400);

    // A user, its token, and the same token failing the moment the user is deleted.
    expect((await root.createUser({ username: 'alice', password: ALICE_PW })).code).toBe(0);
    expect((await root.createUser({ username: 'bob', password: BOB_PW })).code).toBe(0);
    expect((await root.createUser({ username: 'carol', password: CAROL_PW })).code).toBe(0);
    const alice = client(port, { token: `alice:${ALICE_PW}` });
    expect((await alice.listCollections()).status.code).toBe(0);
    expect((await root.deleteUser({ username: 'alice' })).code).toBe(0);
    const gone = await alice.listCollections();
    expect(gone.status.code).toBe(1400);
    expect((await root.deleteUser({ username: 'root' })).code).toBe(1100);

    // Changing another user's password: never without the old one (root included), and not by another user.
    const bob = client(port, { username: 'bob', password: BOB_PW });
    const byBob = await bob.updateUser({ username: 'carol', oldPassword: '', newPassword: 'carol-Hacked-1' });
    expect(byBob.code).toBe(1401);
    const byRoot = await root.updateUser({ username: 'carol', oldPassword: 'a-wrong-guess', newPassword: 'carol-Hacked-1' });
    expect(byRoot.code).toBe(1400);
    expect(byRoot.reason).toMatch(/old password not correct/);
    expect((await bob.createUser({ username: 'mallory', password: 'mallory-pw-1' })).code).toBe(1401);
    expect((await bob.deleteUser({ username: 'carol' })).code).toBe(1401);
    expect((await client(port, { username: 'carol', password: CAROL_PW }).listCollections()).status.code).toBe(0);
    // Bob may change his own password with the old one; his old credentials then fail.
    expect((await bob.updateUser({ username: 'bob', oldPassword: BOB_PW, newPassword: 'bob-Newer-22' })).code).toBe(0);
    expect((await bob.listCollections()).status.code).toBe(1400);

    // API keys through the CLI's commands (HTTP port, root only): the key is the SDK's token until revoked.
    const out: string[] = [];
    const errs: string[] = [];
    const sink = { out: (l: string) => void out.push(l), err: (l: string) => void errs.push(l) };
    const rootAccess = { username: 'root', password: ROOT_PW };
    expect(await createApiKey({ httpAddress, access: { username: 'carol', password: CAROL_PW } }, sink)).toBe(1);
    expect(errs.pop()).toMatch(/only root may.*1401/);
    expect(await createApiKey({ httpAddress, access: rootAccess, user: 'carol', description: 'ci' }, sink)).toBe(0);
    const key = out.pop()!;
    expect(key).toMatch(/^qvk_/);
    const keyed = client(port, { token: key });
    expect((await keyed.listCollections()).status.code).toBe(0);
    expect(await listApiKeys({ httpAddress, access: rootAccess, json: true }, sink)).toBe(0);
    const listed = JSON.parse(out.pop()!) as { id: string; user: string }[];
    expect(listed).toHaveLength(1);
    expect(listed[0]!.user).toBe('carol');
    expect(JSON.stringify(listed)).not.toContain(key.slice(21));
    expect(await revokeApiKey({ httpAddress, access: rootAccess, id: listed[0]!.id }, sink)).toBe(0);
    expect((await keyed.listCollections()).status.code).toBe(1400);

    // The HTTP port: /healthz and /metrics stay open; the rest (diffs, GC dry runs, cancel) needs credentials.
    expect((await fetch(`http://${httpAddress}/healthz`)).status).toBe(200);
    expect((await fetch(`http://${httpAddress}/metrics`)).status).toBe(200);
    const noAuthHttp = await fetch(`http://${httpAddress}/gc/dry-run`);
    expect(noAuthHttp.status).toBe(401);
    expect(((await noAuthHttp.json()) as { code: number }).code).toBe(1400);
    expect((await fetch(`http://${httpAddress}/gc/dry-run`, { headers: { authorization: `Bearer root:${ROOT_PW}` } })).status).toBe(200);
    expect((await fetch(`http://${httpAddress}/restore-jobs/1/cancel`, { method: 'POST' })).status).toBe(401);

    // Failed logins: after 5 wrong passwords from this address, the right one is refused too (no scrypt run).
    for (let i = 0; i < 5; i++) expect((await client(port, { username: 'carol', password: `guess-${i}-x` }).listCollections()).status.code).toBe(1400);
    const locked = await client(port, { username: 'carol', password: CAROL_PW }).listCollections();
    expect(locked.status.code).toBe(1400);
    expect(locked.status.reason).toMatch(/too many failed logins for "carol"/);
    // The server stays up and other users are not affected.
    expect((await root.listCollections()).status.code).toBe(0);

    // Nothing printed holds a password or the key, plain or base64.
    const output = srv.output();
    expect(output).toMatch(/request rejected/);
    for (const secret of [ROOT_PW, ALICE_PW, BOB_PW, CAROL_PW, 'bob-Newer-22', 'carol-Hacked-1', key, key.slice(21)]) {
      expect(output).not.toContain(secret);
      expect(output).not.toContain(Buffer.from(secret).toString('base64'));
    }
    for (const user of ['root', 'alice', 'bob', 'carol']) {
      for (const pw of [ROOT_PW, ALICE_PW, BOB_PW, CAROL_PW]) expect(output).not.toContain(Buffer.from(`${user}:${pw}`).toString('base64'));
    }
    // A spawned server and ~20 scrypt hashes: minutes on a loaded 2-core machine.
  }, 300_000);
});
