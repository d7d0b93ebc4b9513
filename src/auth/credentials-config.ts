import { readFile } from 'node:fs/promises';
import type { Clock } from '../common/clock.js';
import type { Config } from '../common/config.js';
import { quiverError } from '../common/errors.js';
import type { MetaKV } from '../meta/meta-kv.js';
import { CREDENTIAL_DEFAULTS, CredentialStore } from './credentials.js';
import { LOGIN_RATE_LIMIT_DEFAULTS } from './rate-limit.js';

/**
 * The credential store as `quiver serve` runs it: auth on or off from the config, the login rate limit's
 * knobs, and the root bootstrap (with auth on and no root user stored, the start is refused without a
 * first root password; Milvus's well-known default and short passwords are refused always).
 */
export async function openCredentials(
  config: Pick<Config, 'auth' | 'rootPassword' | 'rootPasswordFile' | 'authFailuresFree' | 'authLockoutMs'>,
  deps: { readonly kv: MetaKV; readonly clock: Clock },
): Promise<CredentialStore> {
  const store = new CredentialStore(deps, {
    ...CREDENTIAL_DEFAULTS,
    enabled: config.auth,
    rateLimit: {
      ...LOGIN_RATE_LIMIT_DEFAULTS,
      failuresFree: config.authFailuresFree,
      lockoutBaseMs: config.authLockoutMs,
      lockoutMaxMs: Math.max(LOGIN_RATE_LIMIT_DEFAULTS.lockoutMaxMs, config.authLockoutMs),
    },
  });
  await store.bootstrapRoot(await rootPassword(config));
  return store;
}

async function rootPassword(config: Pick<Config, 'rootPassword' | 'rootPasswordFile'>): Promise<string | undefined> {
  if (config.rootPasswordFile === undefined) return config.rootPassword;
  try {
    // One trailing newline is what `echo secret > file` adds; it is not part of the password.
    return (await readFile(config.rootPasswordFile, 'utf8')).replace(/\r?\n$/, '');
  } catch (e) {
    // The error names the file, never its content.
    throw quiverError(
      'ParameterInvalid',
      `--root-password-file ${JSON.stringify(config.rootPasswordFile)}: ${(e as NodeJS.ErrnoException).code ?? 'unreadable'}`,
      e,
    );
  }
}

/**
 * pino redaction paths for every field that may hold a secret, should one ever be logged: the config's
 * passwords, an SDK request's password fields, an authorization header or metadata value.
 */
export const LOG_REDACT_PATHS: readonly string[] = [
  'password',
  'rootPassword',
  'etcdPassword',
  'oldPassword',
  'newPassword',
  'authorization',
  'token',
  '*.password',
  '*.rootPassword',
  '*.etcdPassword',
  '*.oldPassword',
  '*.newPassword',
  '*.authorization',
  '*.token',
  'req.headers.authorization',
  'config.rootPassword',
  'config.etcdPassword',
];
