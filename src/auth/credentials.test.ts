import { describe, expect, it } from 'vitest';
import { FakeClock } from '../common/clock.js';
import { isQuiverError } from '../common/errors.js';
import { MemoryMetaKV } from '../meta/memory-kv.js';
import type { MetaKV } from '../meta/meta-kv.js';
import { CredentialStore, type CredentialStoreOptions } from './credentials.js';
import type { CallerCredentials } from './types.js';

// The floor of N: the cheapest parameters the store accepts, so the tests stay fast.
const OPTIONS: CredentialStoreOptions = {
  enabled: true,
  scrypt: { N: 2 ** 14, r: 8, p: 1, keyLen: 32 },
  rateLimit: { failuresFree: 3, lockoutBaseMs: 10_000, lockoutMaxMs: 60_000, forgetAfterMs: 600_000, entriesMax: 100 },
  cacheEntriesMax: 100,
};

const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64');
const basic = (user: string, password: string, peer = '127.0.0.1'): CallerCredentials => ({
  authorization: b64(`${user}:${password}`),
  encoding: 'base64',
  peer,
});

/** A MetaKV that counts gets: a refused call that never reads the store never ran scrypt either. */
function countingKv(): { kv: MetaKV; gets: () => number } {
  const inner = new MemoryMetaKV();
  let gets = 0;
  const kv = new Proxy(inner, {
    get(target, prop, receiver) {
      if (prop === 'get') return (key: string) => (gets++, target.get(key));
      const v = Reflect.get(target, prop, receiver) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
  return { kv, gets: () => gets };
}

async function rejectsWith(
  p: Promise<unknown>,
  kind: 'PrivilegeNotAuthenticated' | 'ParameterInvalid' | 'ParameterMissing',
  text?: RegExp,
): Promise<string> {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(isQuiverError(e, kind), `expected ${kind}, got ${String(e)}`).toBe(true);
  const message = (e as Error).message;
  if (text) expect(message).toMatch(text);
  return message;
}

function store(kv: MetaKV = new MemoryMetaKV(), clock = new FakeClock(), options = OPTIONS): CredentialStore {
  return new CredentialStore({ kv, clock }, options);
}

describe('CredentialStore users', () => {
  it('refuses user names outside Milvus rules, naming the value', async () => {
    const s = store();
    for (const bad of ['a/b', '../etc', 'a\\b', '1abc', '', ' ', 'x'.repeat(33), 'a b', 'a:b', 'é']) {
      const msg = await rejectsWith(s.createUser(bad, 'secret1'), 'ParameterInvalid');
      if (bad.trim() !== '') expect(msg).toContain(JSON.stringify(bad));
    }
    await rejectsWith(s.createUser('alice', 'short'), 'ParameterInvalid', /between 6 and 256/);
    expect(s.list()).toEqual([]);
  });

  it('stores a salted scrypt hash with its parameters, never the password', async () => {
    const kv = new MemoryMetaKV();
    const s = store(kv);
    await s.createUser('alice', 'same-password');
    await s.createUser('bob', 'same-password');
    const a = JSON.parse(Buffer.from((await kv.get('auth/users/alice'))!.value).toString()) as { password: Record<string, unknown> };
    const b = JSON.parse(Buffer.from((await kv.get('auth/users/bob'))!.value).toString()) as { password: Record<string, unknown> };
    expect(a.password).toMatchObject({ algo: 'scrypt', N: 2 ** 14, r: 8, p: 1, keyLen: 32 });
    expect(a.password['salt']).not.toEqual(b.password['salt']);
    expect(a.password['hash']).not.toEqual(b.password['hash']);
    const all = (await kv.scan('')).map((e) => Buffer.from(e.value).toString()).join('\n');
    expect(all).not.toContain('same-password');
    expect(all).not.toContain(b64('same-password'));
    await rejectsWith(s.createUser('alice', 'another1'), 'ParameterInvalid', /already exists/);
    expect(s.list()).toEqual(['alice', 'bob']);
    expect(await s.listUsers()).toEqual(['alice', 'bob']);
  });

  it('authenticates user:password (base64 and plain); wrong or missing credentials answer 1400', async () => {
    const s = store();
    await s.createUser('alice', 'pa:ss:word');
    expect(await s.authenticate(basic('alice', 'pa:ss:word'))).toBe('alice');
    expect(await s.authenticate({ authorization: 'alice:pa:ss:word', encoding: 'plain', peer: 'p' })).toBe('alice');
    await rejectsWith(s.authenticate(basic('alice', 'wrong-one')), 'PrivilegeNotAuthenticated');
    await rejectsWith(s.authenticate(basic('nobody', 'pa:ss:word')), 'PrivilegeNotAuthenticated');
    await rejectsWith(s.authenticate({ encoding: 'base64', peer: 'p' }), 'PrivilegeNotAuthenticated', /missing authorization/);
    await rejectsWith(s.authenticate({ authorization: '!!not base64!!', encoding: 'base64', peer: 'p' }), 'PrivilegeNotAuthenticated');
    await rejectsWith(s.authenticate({ authorization: 'x'.repeat(5000), encoding: 'plain', peer: 'p' }), 'PrivilegeNotAuthenticated');
  });

  it('with auth off, authenticate answers undefined whatever the credentials', async () => {
    const s = store(new MemoryMetaKV(), new FakeClock(), { ...OPTIONS, enabled: false });
    expect(await s.authenticate({ encoding: 'base64', peer: 'p' })).toBeUndefined();
    expect(await s.authenticate(basic('x', 'y'))).toBeUndefined();
  });

  it('a password change or a delete fails the cached credentials at once, also on another proxy', async () => {
    const kv = new MemoryMetaKV();
    const a = store(kv);
    const b = store(kv);
    await a.createUser('alice', 'first-pw');
    await a.createUser('carol', 'carol-pw');
    expect(await a.authenticate(basic('alice', 'first-pw'))).toBe('alice');
    expect(await b.authenticate(basic('alice', 'first-pw'))).toBe('alice');
    await rejectsWith(a.updatePassword('alice', 'not-the-old', 'second-pw', 'h'), 'PrivilegeNotAuthenticated', /old password not correct/);
    await rejectsWith(a.updatePassword('alice', '', 'second-pw', 'h'), 'PrivilegeNotAuthenticated');
    await a.updatePassword('alice', 'first-pw', 'second-pw', 'h');
    await rejectsWith(a.authenticate(basic('alice', 'first-pw')), 'PrivilegeNotAuthenticated');
    await rejectsWith(b.authenticate(basic('alice', 'first-pw')), 'PrivilegeNotAuthenticated');
    expect(await b.authenticate(basic('alice', 'second-pw'))).toBe('alice');
    expect(await a.authenticate(basic('carol', 'carol-pw'))).toBe('carol');

    const deleted: string[] = [];
    b.onDeleted((u) => void deleted.push(u));
    await b.deleteUser('alice');
    expect(deleted).toEqual(['alice']);
    expect(b.has('alice')).toBe(false);
    await rejectsWith(a.authenticate(basic('alice', 'second-pw')), 'PrivilegeNotAuthenticated');
    await rejectsWith(b.deleteUser('alice'), 'ParameterInvalid', /does not exist/);
    await rejectsWith(b.deleteUser('root'), 'ParameterInvalid', /cannot be deleted/);
  });

  it('a cache hit reads the record once and runs no scrypt; a locked pair reads nothing', async () => {
    const { kv, gets } = countingKv();
    const clock = new FakeClock();
    const s = store(kv, clock);
    await s.createUser('alice', 'right-pw');
    await s.authenticate(basic('alice', 'right-pw'));
    const before = gets();
    await s.authenticate(basic('alice', 'right-pw'));
    expect(gets() - before).toBe(1);

    for (let i = 0; i < 3; i++) await rejectsWith(s.authenticate(basic('alice', `wrong-${i}`, '10.0.0.9')), 'PrivilegeNotAuthenticated');
    const locked = gets();
    // The right password from the locked address is refused too, without touching the store (so without scrypt).
    await rejectsWith(s.authenticate(basic('alice', 'right-pw', '10.0.0.9')), 'PrivilegeNotAuthenticated', /too many failed logins.*try again in 10 s/);
    await rejectsWith(s.updatePassword('alice', 'right-pw', 'new-pw-1', '10.0.0.9'), 'PrivilegeNotAuthenticated', /too many failed logins/);
    expect(gets()).toBe(locked);
    // Another address is not locked; after the lockout the address may try again.
    expect(await s.authenticate(basic('alice', 'right-pw', '10.0.0.8'))).toBe('alice');
    clock.advance(10_000);
    expect(await s.authenticate(basic('alice', 'right-pw', '10.0.0.9'))).toBe('alice');
  });

  it('bootstraps root: refuses a missing, well-known or short password with auth on', async () => {
    const kv = new MemoryMetaKV();
    const s = store(kv);
    await rejectsWith(s.bootstrapRoot(undefined), 'ParameterMissing', /QUIVER_ROOT_PASSWORD/);
    await rejectsWith(s.bootstrapRoot(''), 'ParameterMissing');
    await rejectsWith(s.bootstrapRoot('Milvus'), 'ParameterInvalid', /well-known default/);
    await rejectsWith(s.bootstrapRoot('abc'), 'ParameterInvalid', /between 6/);
    expect(await store(kv, new FakeClock(), { ...OPTIONS, enabled: false }).bootstrapRoot(undefined)).toBe('none');
    expect(await s.bootstrapRoot('root-secret')).toBe('created');
    expect(await s.bootstrapRoot(undefined)).toBe('exists');
    // An existing root keeps its password: a later bootstrap password does not overwrite it.
    expect(await s.bootstrapRoot('other-secret')).toBe('exists');
    expect(await s.authenticate(basic('root', 'root-secret'))).toBe('root');
  });
});

describe('CredentialStore API keys', () => {
  it('a key works as the SDK token, is listed without its secret, and fails at once when revoked', async () => {
    const kv = new MemoryMetaKV();
    const s = store(kv);
    const other = store(kv);
    await s.createUser('alice', 'alice-pw');
    const created = await s.createApiKey('alice', 'ci');
    expect(created.key).toMatch(/^qvk_[0-9a-f]{16}_/);
    expect(await s.authenticate({ authorization: b64(created.key), encoding: 'base64', peer: 'p' })).toBe('alice');
    expect(await other.authenticate({ authorization: created.key, encoding: 'plain', peer: 'p' })).toBe('alice');
    const listed = await s.listApiKeys();
    expect(listed).toEqual([{ id: created.id, user: 'alice', description: 'ci', createdAtMs: created.createdAtMs }]);
    const stored = (await kv.scan('auth/')).map((e) => Buffer.from(e.value).toString()).join('\n');
    expect(stored).not.toContain(created.key.slice(21));

    // A key with a changed secret part, or one that never existed, is refused.
    const forged = `${created.key.slice(0, -4)}AAAA`;
    await rejectsWith(s.authenticate({ authorization: forged, encoding: 'plain', peer: 'p' }), 'PrivilegeNotAuthenticated', /api key/);
    await rejectsWith(s.authenticate({ authorization: 'qvk_nonsense', encoding: 'plain', peer: 'p' }), 'PrivilegeNotAuthenticated');

    await s.revokeApiKey(created.id);
    await rejectsWith(s.authenticate({ authorization: created.key, encoding: 'plain', peer: 'p' }), 'PrivilegeNotAuthenticated');
    await rejectsWith(other.authenticate({ authorization: b64(created.key), encoding: 'base64', peer: 'p' }), 'PrivilegeNotAuthenticated');
    await rejectsWith(s.revokeApiKey(created.id), 'ParameterInvalid', /does not exist/);
    await rejectsWith(s.revokeApiKey('../x'), 'ParameterInvalid');
  });

  it('deleting a user deletes its keys; a key needs an existing user', async () => {
    const s = store();
    await s.createUser('alice', 'alice-pw');
    const k = await s.createApiKey('alice');
    expect(await s.authenticate({ authorization: k.key, encoding: 'plain', peer: 'p' })).toBe('alice');
    await s.deleteUser('alice');
    await rejectsWith(s.authenticate({ authorization: k.key, encoding: 'plain', peer: 'p' }), 'PrivilegeNotAuthenticated');
    expect(await s.listApiKeys()).toEqual([]);
    await rejectsWith(s.createApiKey('alice'), 'ParameterInvalid', /does not exist/);
  });
});
