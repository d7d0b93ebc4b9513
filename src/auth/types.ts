/**
 * The seams between authentication (who is calling: users, passwords, API keys), authorization (may
 * they: roles, grants, privilege groups) and the two front doors that enforce both, gRPC
 * (proxy/server.ts) and REST (src/rest). One implementation of each behind both doors, so a privilege
 * is checked the same way whichever protocol a request comes in by.
 *
 * Milvus keeps credentials and RBAC in RootCoord's metadata; here they live in the MetaKV (SQLite
 * embedded, etcd in a cluster) under the `auth/` prefix.
 */

/** The built-in superuser: never subject to RBAC, cannot be deleted. */
export const ROOT_USER = 'root';

/** What a request carried to prove who it is. */
export interface CallerCredentials {
  /**
   * gRPC: the `authorization` metadata the SDK sends (base64 of `user:password`, or of an API key).
   * REST: the `Authorization: Bearer <user:password | api key>` header, already stripped of `Bearer `
   * and therefore NOT base64 (the REST door passes `encoding: 'plain'`).
   */
  readonly authorization?: string | undefined;
  readonly encoding: 'base64' | 'plain';
  /** Peer address (for rate limiting failed logins per user and address). */
  readonly peer: string;
}

export interface Authenticator {
  /** False when auth is off (the embedded default): authenticate() then answers undefined. */
  readonly enabled: boolean;
  /**
   * The calling user, or undefined when auth is off. Throws QuiverError 'PrivilegeNotAuthenticated'
   * (Milvus code 1400) for missing/wrong credentials, a deleted user, a revoked key, or a rate-limited
   * user/address. Never logs the password.
   */
  authenticate(creds: CallerCredentials): Promise<string | undefined>;
}

/** Read-only view of the users the authenticator knows, for RBAC (selectUser, grant checks). */
export interface UserDirectory {
  has(user: string): boolean;
  list(): readonly string[];
  /** Called after a user is deleted so RBAC can drop its role bindings. Returns an unsubscribe. */
  onDeleted(listener: (user: string) => void | Promise<void>): () => void;
}

export interface Authorizer {
  /**
   * Throws QuiverError 'PrivilegeNotPermitted' (Milvus code 1401) naming the missing privilege and the
   * object, when `user` may not call the MilvusService method `method` (its gRPC name, e.g. 'Search')
   * with request `req` in database `dbName` (already defaulted). `user` undefined means auth is off:
   * always allowed. Aliases are checked as the collection they name.
   */
  authorize(user: string | undefined, method: string, req: unknown, dbName: string): void;
}
