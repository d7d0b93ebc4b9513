import { createHash, randomBytes, scrypt as scryptCb, timingSafeEqual, type ScryptOptions } from 'node:crypto';
import type { Clock } from '../common/clock.js';
import { assert, isQuiverError, quiverError } from '../common/errors.js';
import type { KvEntry, MetaKV } from '../meta/meta-kv.js';
import { LOGIN_RATE_LIMIT_DEFAULTS, LoginRateLimiter, type LoginRateLimitOptions } from './rate-limit.js';
import { ROOT_USER, type Authenticator, type CallerCredentials, type UserDirectory } from './types.js';

/**
 * Users, passwords and API keys (Milvus: RootCoord's credential metadata), persisted in the MetaKV:
 *
 *   auth/users/{name}    {format, name, password: {algo: 'scrypt', N, r, p, keyLen, salt, hash}, description, createdAtMs, updatedAtMs}
 *   auth/apikeys/{id}    {format, id, user, sha256, description, createdAtMs}
 *
 * Every write is compare-and-set on the key's modRevision (create: version 0), so two proxies sharing
 * one etcd never lose each other's change. Passwords are hashed with scrypt (memory-hard, node:crypto),
 * a random salt per user and the parameters stored beside the hash (raising N later keeps old hashes
 * verifiable). An API key is 32 random bytes, so a plain SHA-256 of it cannot be brute-forced; it is
 * shown once, at creation. The key's id is part of the key, so checking one is a single MetaKV get.
 *
 * scrypt costs tens of milliseconds by design, far too much per RPC: a verified authorization value
 * is cached, keyed by its SHA-256, with the modRevision of the record that proved it. A cache hit still
 * reads that record (one get) and compares the revision, so a password change, a deleted user or a
 * revoked key, made by this process or by another proxy on the same etcd, fails the very next call.
 */

export interface ScryptParams {
  /** CPU/memory cost, a power of two; at least 2^14. */
  readonly N: number;
  readonly r: number;
  readonly p: number;
  readonly keyLen: number;
}

/** 32 MiB and a few tens of ms per hash (OWASP's floor is N=2^17 with r=8 for new systems; raise N when hardware allows). */
export const SCRYPT_DEFAULTS: ScryptParams = { N: 2 ** 15, r: 8, p: 1, keyLen: 32 };
const SCRYPT_N_MIN = 2 ** 14;

/** Milvus's limits: a user name of at most 32 characters, a password of 6 to 256. */
export const USER_NAME_LENGTH_MAX = 32;
export const PASSWORD_LENGTH_MIN = 6;
export const PASSWORD_LENGTH_MAX = 256;
/** Milvus's documented default root password: never accepted here. */
export const WELL_KNOWN_ROOT_PASSWORD = 'Milvus';
/** Longest `authorization` value looked at (a user name, a password and base64 overhead fit easily). */
const AUTHORIZATION_LENGTH_MAX = 1024;

const USERS_PREFIX = 'auth/users/';
const API_KEYS_PREFIX = 'auth/apikeys/';
const API_KEY_PATTERN = /^qvk_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$/;
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;
const USER_NAME = /^[A-Za-z][A-Za-z0-9_]*$/;

interface PasswordHash {
  readonly algo: 'scrypt';
  readonly N: number;
  readonly r: number;
  readonly p: number;
  readonly keyLen: number;
  readonly salt: string;
  readonly hash: string;
}

interface UserRecord {
  readonly format: 1;
  readonly name: string;
  readonly password: PasswordHash;
  readonly description: string;
  readonly createdAtMs: number;
  readonly updatedAtMs: number;
}

interface ApiKeyRecord {
  readonly format: 1;
  readonly id: string;
  readonly user: string;
  readonly sha256: string;
  readonly description: string;
  readonly createdAtMs: number;
}

/** What `quiver apikey list` shows: never the key or its hash. */
export interface ApiKeyInfo {
  readonly id: string;
  readonly user: string;
  readonly description: string;
  readonly createdAtMs: number;
}

export interface CreatedApiKey extends ApiKeyInfo {
  /** The key itself: shown once, never stored. */
  readonly key: string;
}

export interface CredentialStoreDeps {
  readonly kv: MetaKV;
  readonly clock: Clock;
}

export interface CredentialStoreOptions {
  /** Auth on: `authenticate` checks every call. Off (the embedded default): it answers undefined. */
  readonly enabled: boolean;
  readonly scrypt: ScryptParams;
  readonly rateLimit: LoginRateLimitOptions;
  /** Bound of the verified-credential cache. */
  readonly cacheEntriesMax: number;
}

export const CREDENTIAL_DEFAULTS: CredentialStoreOptions = {
  enabled: false,
  scrypt: SCRYPT_DEFAULTS,
  rateLimit: LOGIN_RATE_LIMIT_DEFAULTS,
  cacheEntriesMax: 10_000,
};

interface Verified {
  readonly user: string;
  /** The MetaKV key whose unchanged modRevision keeps this verification valid. */
  readonly recordKey: string;
  readonly modRevision: number;
}

/** An authorization value, decoded: a user and password, or an API key. */
type Claim = { readonly kind: 'password'; readonly user: string; readonly password: string } | { readonly kind: 'apikey'; readonly key: string };

/** Throws ParameterInvalid naming the value unless `name` follows Milvus's user-name rules. */
export function validateUserName(name: unknown): asserts name is string {
  if (typeof name !== 'string' || name.trim() === '') throw quiverError('ParameterInvalid', 'user name should not be empty');
  const shown = JSON.stringify(name.length > 64 ? `${name.slice(0, 64)}...` : name);
  if (name.length > USER_NAME_LENGTH_MAX) {
    throw quiverError('ParameterInvalid', `invalid user name ${shown}: the length of a user name must be at most ${USER_NAME_LENGTH_MAX} characters`);
  }
  if (!/^[A-Za-z]/.test(name)) throw quiverError('ParameterInvalid', `invalid user name ${shown}: the first character of a user name must be a letter`);
  // Also what keeps path characters (/ \ ..) and control characters out of the MetaKV key.
  if (!USER_NAME.test(name)) {
    throw quiverError('ParameterInvalid', `invalid user name ${shown}: a user name may only contain letters, digits and underscores`);
  }
}

/** Throws ParameterInvalid (never quoting the password) unless it has an allowed length. */
export function validatePassword(password: unknown, what = 'password'): asserts password is string {
  if (typeof password !== 'string' || password.length < PASSWORD_LENGTH_MIN || password.length > PASSWORD_LENGTH_MAX) {
    throw quiverError(
      'ParameterInvalid',
      `invalid ${what}: the length of a password must be between ${PASSWORD_LENGTH_MIN} and ${PASSWORD_LENGTH_MAX} characters`,
    );
  }
}

function scrypt(password: string, salt: Buffer, p: ScryptParams): Promise<Buffer> {
  // Node refuses N*r*128 bytes above maxmem (32 MiB by default): give it room for the stored parameters.
  const options: ScryptOptions = { N: p.N, r: p.r, p: p.p, maxmem: 128 * p.N * p.r * 2 };
  return new Promise((resolve, reject) => scryptCb(password, salt, p.keyLen, options, (err, key) => (err ? reject(err) : resolve(key))));
}

function sha256(text: string): Buffer {
  return createHash('sha256').update(text, 'utf8').digest();
}

function notAuthenticated(reason = 'auth check failure, please check username and password are correct') {
  return quiverError('PrivilegeNotAuthenticated', reason);
}

/** Decodes the authorization value, or undefined for one that is malformed (too long, not base64, empty). */
function parseClaim(creds: CallerCredentials): Claim | undefined {
  const raw = creds.authorization;
  if (raw === undefined || raw.length === 0 || raw.length > AUTHORIZATION_LENGTH_MAX) return undefined;
  let text: string;
  if (creds.encoding === 'base64') {
    if (!BASE64.test(raw)) return undefined;
    text = Buffer.from(raw, 'base64').toString('utf8');
  } else text = raw;
  // As Milvus: a value with the separator is user:password (split at the first one), else an API key.
  const sep = text.indexOf(':');
  if (sep < 0) return text.length > 0 ? { kind: 'apikey', key: text } : undefined;
  return { kind: 'password', user: text.slice(0, sep), password: text.slice(sep + 1) };
}

export class CredentialStore implements Authenticator, UserDirectory {
  readonly enabled: boolean;
  readonly #kv: MetaKV;
  readonly #clock: Clock;
  readonly #options: CredentialStoreOptions;
  readonly #limiter: LoginRateLimiter;
  /** Known users (the UserDirectory is synchronous): loaded by init, kept current by this process's writes and logins and by listUsers. */
  readonly #users = new Set<string>();
  readonly #cache = new Map<string, Verified>();
  /** Verifications in flight by cache key: a burst of calls with new credentials runs scrypt once. */
  readonly #inFlight = new Map<string, Promise<Verified>>();
  readonly #deletedListeners = new Set<(user: string) => void | Promise<void>>();
  /** A hash to check against when the user does not exist, so an unknown name costs as much as a wrong password. */
  #decoy: Promise<PasswordHash> | undefined;
  #initPromise: Promise<void> | undefined;

  constructor(deps: CredentialStoreDeps, options: CredentialStoreOptions = CREDENTIAL_DEFAULTS) {
    assert(options.scrypt.N >= SCRYPT_N_MIN && (options.scrypt.N & (options.scrypt.N - 1)) === 0, 'scrypt N must be a power of two >= 2^14');
    assert(options.cacheEntriesMax >= 1, 'cacheEntriesMax');
    this.#kv = deps.kv;
    this.#clock = deps.clock;
    this.#options = options;
    this.enabled = options.enabled;
    this.#limiter = new LoginRateLimiter(deps.clock, options.rateLimit);
  }

  /** Loads the user directory. Once; a failure lets the next call try again. */
  init(): Promise<void> {
    this.#initPromise ??= (async () => {
      const entries = await this.#kv.scan(USERS_PREFIX);
      for (const e of entries) this.#users.add(this.#readUser(e).name);
    })().catch((e: unknown) => {
      this.#initPromise = undefined;
      throw e;
    });
    return this.#initPromise;
  }

  /**
   * Creates the root user with `password` when there is none yet. With auth on and no root stored, a
   * missing password refuses the start; Milvus's well-known default is never accepted.
   */
  async bootstrapRoot(password: string | undefined): Promise<'created' | 'exists' | 'none'> {
    await this.init();
    if (await this.#kv.get(userKey(ROOT_USER))) return 'exists';
    if (password === undefined || password === '') {
      if (!this.enabled) return 'none';
      throw quiverError(
        'ParameterMissing',
        'authentication is on and no root user exists yet: set QUIVER_ROOT_PASSWORD or --root-password-file to the first root password',
      );
    }
    if (password === WELL_KNOWN_ROOT_PASSWORD) {
      throw quiverError('ParameterInvalid', `the root password must not be Milvus's well-known default: choose another one`);
    }
    validatePassword(password, 'root password');
    try {
      await this.createUser(ROOT_USER, password);
    } catch (e) {
      // Another proxy on the same etcd created it first: its password stands.
      if (!isQuiverError(e, 'ParameterInvalid') || !(await this.#kv.get(userKey(ROOT_USER)))) throw e;
      return 'exists';
    }
    return 'created';
  }

  // ------------------------------------------------------------------ users

  async createUser(name: string, password: string, description = ''): Promise<void> {
    validateUserName(name);
    validatePassword(password);
    await this.init();
    const now = this.#clock.nowMs();
    const record: UserRecord = { format: 1, name, password: await this.#hash(password), description, createdAtMs: now, updatedAtMs: now };
    const key = userKey(name);
    const r = await this.#kv.txn([{ key, target: 'version', op: '==', value: 0 }], [{ type: 'put', key, value: JSON.stringify(record) }]);
    if (!r.succeeded) throw quiverError('ParameterInvalid', `user ${JSON.stringify(name)} already exists`);
    this.#users.add(name);
  }

  /**
   * Milvus's UpdateCredential: the old password is required and checked for every user, root included
   * (Milvus skips it only for the configured superusers, none by default). A user locked out by failed
   * logins cannot use this to keep guessing: wrong old passwords count as failed logins from `address`.
   */
  async updatePassword(name: string, oldPassword: string, newPassword: string, address: string): Promise<void> {
    validateUserName(name);
    validatePassword(newPassword, 'new password');
    await this.init();
    this.#refuseLocked(name, address);
    const key = userKey(name);
    const entry = await this.#kv.get(key);
    if (entry === undefined) throw quiverError('ParameterInvalid', `user ${JSON.stringify(name)} does not exist`);
    const record = this.#readUser(entry);
    if (!(await this.#matches(oldPassword, record.password))) {
      this.#limiter.recordFailure(name, address);
      throw notAuthenticated(`old password not correct for ${JSON.stringify(name)}`);
    }
    this.#limiter.recordSuccess(name, address);
    const next: UserRecord = { ...record, password: await this.#hash(newPassword), updatedAtMs: this.#clock.nowMs() };
    const r = await this.#kv.txn([{ key, target: 'modRevision', op: '==', value: entry.modRevision }], [{ type: 'put', key, value: JSON.stringify(next) }]);
    // Lost to a concurrent change of the same user (its password or its deletion): that change stands.
    if (!r.succeeded) throw quiverError('ParameterInvalid', `user ${JSON.stringify(name)} was changed concurrently: try again`);
    this.#forgetUser(name);
  }

  /** Changes only the description (the SDK's updateUser without a password). */
  async updateDescription(name: string, description: string): Promise<void> {
    validateUserName(name);
    const key = userKey(name);
    const entry = await this.#kv.get(key);
    if (entry === undefined) throw quiverError('ParameterInvalid', `user ${JSON.stringify(name)} does not exist`);
    const next: UserRecord = { ...this.#readUser(entry), description, updatedAtMs: this.#clock.nowMs() };
    const r = await this.#kv.txn([{ key, target: 'modRevision', op: '==', value: entry.modRevision }], [{ type: 'put', key, value: JSON.stringify(next) }]);
    if (!r.succeeded) throw quiverError('ParameterInvalid', `user ${JSON.stringify(name)} was changed concurrently: try again`);
  }

  /** Deletes a user and its API keys in one transaction; its cached credentials stop working at once. */
  async deleteUser(name: string): Promise<void> {
    validateUserName(name);
    if (name === ROOT_USER) throw quiverError('ParameterInvalid', 'the root user cannot be deleted');
    await this.init();
    const key = userKey(name);
    const entry = await this.#kv.get(key);
    if (entry === undefined) throw quiverError('ParameterInvalid', `user ${JSON.stringify(name)} does not exist`);
    const keys = (await this.#apiKeyRecords()).filter((k) => k.record.user === name);
    const r = await this.#kv.txn(
      [
        { key, target: 'modRevision', op: '==', value: entry.modRevision },
        ...keys.map((k) => ({ key: k.key, target: 'modRevision' as const, op: '==' as const, value: k.modRevision })),
      ],
      [{ type: 'delete', key }, ...keys.map((k) => ({ type: 'delete' as const, key: k.key }))],
    );
    if (!r.succeeded) throw quiverError('ParameterInvalid', `user ${JSON.stringify(name)} was changed concurrently: try again`);
    this.#users.delete(name);
    this.#forgetUser(name);
    for (const listener of this.#deletedListeners) await listener(name);
  }

  /** Users, sorted (ListCredUsers), read from the MetaKV so users created by another proxy show too. */
  async listUsers(): Promise<string[]> {
    const entries = await this.#kv.scan(USERS_PREFIX);
    const names = entries.map((e) => this.#readUser(e).name);
    for (const n of names) this.#users.add(n);
    return names.sort();
  }

  // ------------------------------------------------------------------ UserDirectory

  has(user: string): boolean {
    return this.#users.has(user);
  }

  list(): readonly string[] {
    return [...this.#users].sort();
  }

  onDeleted(listener: (user: string) => void | Promise<void>): () => void {
    this.#deletedListeners.add(listener);
    return () => this.#deletedListeners.delete(listener);
  }

  // ------------------------------------------------------------------ API keys

  /** A new key acting as `user` (which must exist). The key is in the answer only. */
  async createApiKey(user: string, description = ''): Promise<CreatedApiKey> {
    validateUserName(user);
    const userEntry = await this.#kv.get(userKey(user));
    if (userEntry === undefined) throw quiverError('ParameterInvalid', `user ${JSON.stringify(user)} does not exist`);
    const id = randomBytes(8).toString('hex');
    const key = `qvk_${id}_${randomBytes(32).toString('base64url')}`;
    const record: ApiKeyRecord = { format: 1, id, user, sha256: sha256(key).toString('hex'), description, createdAtMs: this.#clock.nowMs() };
    const kvKey = apiKeyKey(id);
    // The user must still be there when the key lands (a concurrent delete would leave a key without a user).
    const r = await this.#kv.txn(
      [
        { key: kvKey, target: 'version', op: '==', value: 0 },
        { key: userKey(user), target: 'modRevision', op: '==', value: userEntry.modRevision },
      ],
      [{ type: 'put', key: kvKey, value: JSON.stringify(record) }],
    );
    if (!r.succeeded) throw quiverError('ParameterInvalid', `user ${JSON.stringify(user)} was changed concurrently: try again`);
    return { id, user, description, createdAtMs: record.createdAtMs, key };
  }

  async listApiKeys(): Promise<ApiKeyInfo[]> {
    return (await this.#apiKeyRecords()).map(({ record: { id, user, description, createdAtMs } }) => ({ id, user, description, createdAtMs }));
  }

  /** Revokes a key: the next call with it fails, here and on every proxy. */
  async revokeApiKey(id: string): Promise<void> {
    if (!/^[0-9a-f]{16}$/.test(id)) throw quiverError('ParameterInvalid', `invalid API key id ${JSON.stringify(id.slice(0, 64))}`);
    if (!(await this.#kv.delete(apiKeyKey(id)))) throw quiverError('ParameterInvalid', `API key ${id} does not exist`);
    for (const [k, v] of this.#cache) if (v.recordKey === apiKeyKey(id)) this.#cache.delete(k);
  }

  // ------------------------------------------------------------------ authentication

  async authenticate(creds: CallerCredentials): Promise<string | undefined> {
    if (!this.enabled) return undefined;
    return this.verify(creds);
  }

  /**
   * The user the credentials prove, whether auth is on or off (the API-key admin route checks root's
   * credentials even with auth off). Throws PrivilegeNotAuthenticated.
   */
  async verify(creds: CallerCredentials): Promise<string> {
    const claim = parseClaim(creds);
    if (claim === undefined) throw notAuthenticated('missing authorization: give a user name and password or an API key');
    const who = claim.kind === 'password' ? claim.user : apiKeyLimitName(claim.key);
    const lockedMs = this.#limiter.lockedForMs(who, creds.peer);
    if (lockedMs > 0) throw this.#lockedError(who, creds.peer, lockedMs);
    const cacheKey = sha256(`${creds.encoding}\n${creds.authorization ?? ''}`).toString('hex');
    const cached = this.#cache.get(cacheKey);
    if (cached !== undefined) {
      const entry = await this.#kv.get(cached.recordKey);
      if (entry?.modRevision === cached.modRevision) return cached.user;
      this.#cache.delete(cacheKey);
    }
    let pending = this.#inFlight.get(cacheKey);
    if (pending === undefined) {
      pending = this.#verifyClaim(claim).finally(() => this.#inFlight.delete(cacheKey));
      this.#inFlight.set(cacheKey, pending);
    }
    let verified: Verified;
    try {
      verified = await pending;
    } catch (e) {
      if (isQuiverError(e, 'PrivilegeNotAuthenticated')) this.#limiter.recordFailure(who, creds.peer);
      throw e;
    }
    this.#limiter.recordSuccess(who, creds.peer);
    // A user another proxy created is known to this one's directory from its first login on.
    this.#users.add(verified.user);
    this.#cache.delete(cacheKey);
    this.#cache.set(cacheKey, verified);
    while (this.#cache.size > this.#options.cacheEntriesMax) this.#cache.delete(this.#cache.keys().next().value as string);
    return verified.user;
  }

  async #verifyClaim(claim: Claim): Promise<Verified> {
    if (claim.kind === 'apikey') {
      const m = API_KEY_PATTERN.exec(claim.key);
      const entry = m === null ? undefined : await this.#kv.get(apiKeyKey(m[1]!));
      const record = entry === undefined ? undefined : this.#readApiKey(entry);
      const expected = Buffer.from(record?.sha256 ?? '00'.repeat(32), 'hex');
      const ok = timingSafeEqual(sha256(claim.key), expected) && record !== undefined;
      if (!ok || entry === undefined || record === undefined) throw notAuthenticated('auth check failure, please check api key is correct');
      return { user: record.user, recordKey: entry.key, modRevision: entry.modRevision };
    }
    const key = USER_NAME.test(claim.user) && claim.user.length <= USER_NAME_LENGTH_MAX ? userKey(claim.user) : undefined;
    const entry = key === undefined ? undefined : await this.#kv.get(key);
    const record = entry === undefined ? undefined : this.#readUser(entry);
    // An unknown user costs one scrypt too, so timing does not tell which names exist.
    const ok = await this.#matches(claim.password, record?.password ?? (await this.#decoyHash()));
    if (!ok || entry === undefined || record === undefined) throw notAuthenticated();
    return { user: record.name, recordKey: entry.key, modRevision: entry.modRevision };
  }

  #refuseLocked(user: string, address: string): void {
    const lockedMs = this.#limiter.lockedForMs(user, address);
    if (lockedMs > 0) throw this.#lockedError(user, address, lockedMs);
  }

  #lockedError(who: string, address: string, lockedMs: number) {
    return notAuthenticated(`too many failed logins for ${JSON.stringify(who)} from ${address}: try again in ${Math.ceil(lockedMs / 1000)} s`);
  }

  /** Drops every cached verification of `user` (this process; other proxies see the new revision). */
  #forgetUser(user: string): void {
    for (const [k, v] of this.#cache) if (v.user === user) this.#cache.delete(k);
  }

  async #hash(password: string): Promise<PasswordHash> {
    const p = this.#options.scrypt;
    const salt = randomBytes(16);
    const hash = await scrypt(password, salt, p);
    return { algo: 'scrypt', N: p.N, r: p.r, p: p.p, keyLen: p.keyLen, salt: salt.toString('base64'), hash: hash.toString('base64') };
  }

  async #matches(password: string, stored: PasswordHash): Promise<boolean> {
    const expected = Buffer.from(stored.hash, 'base64');
    const actual = await scrypt(password, Buffer.from(stored.salt, 'base64'), stored);
    return actual.length === expected.length && timingSafeEqual(actual, expected);
  }

  #decoyHash(): Promise<PasswordHash> {
    this.#decoy ??= this.#hash(randomBytes(16).toString('hex'));
    return this.#decoy;
  }

  async #apiKeyRecords(): Promise<{ key: string; modRevision: number; record: ApiKeyRecord }[]> {
    const entries = await this.#kv.scan(API_KEYS_PREFIX);
    return entries.map((e) => ({ key: e.key, modRevision: e.modRevision, record: this.#readApiKey(e) }));
  }

  /** Checks a stored user right after reading it: a record we cannot trust must not authenticate anyone. */
  #readUser(entry: KvEntry): UserRecord {
    const r = JSON.parse(Buffer.from(entry.value).toString('utf8')) as UserRecord;
    const p = r.password;
    assert(r.format === 1 && entry.key === userKey(r.name), `user record ${entry.key}: format or name`);
    assert(
      p?.algo === 'scrypt' && Number.isSafeInteger(p.N) && p.N >= SCRYPT_N_MIN && p.r >= 1 && p.p >= 1 && p.keyLen >= 16,
      `user record ${entry.key}: password parameters`,
    );
    assert(typeof p.salt === 'string' && typeof p.hash === 'string', `user record ${entry.key}: salt and hash`);
    return r;
  }

  #readApiKey(entry: KvEntry): ApiKeyRecord {
    const r = JSON.parse(Buffer.from(entry.value).toString('utf8')) as ApiKeyRecord;
    assert(r.format === 1 && entry.key === apiKeyKey(r.id) && /^[0-9a-f]{64}$/.test(r.sha256) && typeof r.user === 'string', `API key record ${entry.key}`);
    return r;
  }
}

function userKey(name: string): string {
  return `${USERS_PREFIX}${name}`;
}

function apiKeyKey(id: string): string {
  return `${API_KEYS_PREFIX}${id}`;
}

/** The rate-limit identity of an API key: its id (never the secret), or one bucket for malformed keys. */
function apiKeyLimitName(key: string): string {
  const m = API_KEY_PATTERN.exec(key);
  return m === null ? 'apikey:?' : `apikey:${m[1]!}`;
}
