/** What the wiring builds and the proxy may import from `auth` (values only from here or types.ts). */
export {
  CREDENTIAL_DEFAULTS,
  CredentialStore,
  PASSWORD_LENGTH_MIN,
  SCRYPT_DEFAULTS,
  validatePassword,
  validateUserName,
  WELL_KNOWN_ROOT_PASSWORD,
  type ApiKeyInfo,
  type CreatedApiKey,
  type CredentialStoreOptions,
  type ScryptParams,
} from './credentials.js';
export { LOGIN_RATE_LIMIT_DEFAULTS, LoginRateLimiter, type LoginRateLimitOptions } from './rate-limit.js';
export * from './types.js';
export { LOG_REDACT_PATHS, openCredentials } from './credentials-config.js';
export * from './rbac/index.js';
