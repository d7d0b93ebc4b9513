import { quiverError } from '../../common/errors.js';
import { ROOT_USER, type Authorizer } from '../types.js';
import { ANY, METHOD_RULES, requestDb, type Check, type ObjectResolver } from './privileges.js';
import { ADMIN_ROLE, PUBLIC_ROLE, type Grant, type RbacStore } from './store.js';

/* eslint-disable @typescript-eslint/no-explicit-any */

/**
 * Milvus's privilege interceptor: before every handler, the checks of the method's rule
 * (privileges.ts) must each be satisfied by a grant of one of the caller's roles (its bound roles plus
 * `public`). Root bypasses everything; the `admin` role holds every privilege.
 *
 * A grant covers a check when
 * - its privilege is the checked one, `*`, or a group (built-in or custom) holding it;
 * - its database is the checked one or `*`;
 * - its object name is the checked one or `*` (a check on `*`, a database- or cluster-level privilege, is
 *   covered only by a grant on `*`), and it is a User grant exactly when the check is about a user (a
 *   Global grant on `*` covers users too: ClusterReadOnly holds SelectUser).
 * Milvus's exceptions are kept: a user may always read and update itself (SelectUser, UpdateCredential on
 * its own name) and read the grants of its own roles (SelectGrant).
 */
export class RbacAuthorizer implements Authorizer {
  readonly #store: RbacStore;
  readonly #resolver: ObjectResolver;

  constructor(deps: { store: RbacStore; resolver: ObjectResolver }) {
    this.#store = deps.store;
    this.#resolver = deps.resolver;
  }

  authorize(user: string | undefined, method: string, req: unknown, dbName: string): void {
    if (user === undefined || user === ROOT_USER) return;
    const rule = METHOD_RULES[method];
    // Fail closed: a method nobody catalogued is refused rather than served unchecked.
    if (rule === undefined)
      throw quiverError('PrivilegeNotPermitted', `permission denied: ${method} has no privilege rule, so no user but root may call it`);
    if (rule.kind === 'open') return;
    const roles = this.rolesOf(user);
    if (roles.includes(ADMIN_ROLE)) return;
    if (isSelfService(user, method, req, roles)) return;
    const db = requestDb(req, dbName);
    for (const check of rule.checks(req, db, this.#resolver)) {
      if (!this.#permits(roles, check)) throw denial(user, check);
    }
  }

  /** The caller's roles: its bindings and `public`. */
  rolesOf(user: string): string[] {
    return [...this.#store.rolesOf(user), PUBLIC_ROLE];
  }

  /** Whether `user` passes `check` (root and the admin role pass everything). */
  can(user: string | undefined, check: Check): boolean {
    if (user === undefined || user === ROOT_USER) return true;
    const roles = this.rolesOf(user);
    return roles.includes(ADMIN_ROLE) || this.#permits(roles, check);
  }

  /** Root, or bound to `admin`. */
  isAdmin(user: string | undefined): boolean {
    return user === undefined || user === ROOT_USER || this.#store.rolesOf(user).includes(ADMIN_ROLE);
  }

  /**
   * Whether `user` holds any grant reaching database `db` (Milvus lists only those databases to a user
   * that is not root or admin).
   */
  seesDatabase(user: string | undefined, db: string): boolean {
    if (this.isAdmin(user)) return true;
    return this.rolesOf(user!).some((r) => this.#store.grantsOf(r).some((g) => g.type !== 'User' && (g.db === ANY || g.db === db)));
  }

  /** Whether `user` holds any grant on collection `name` of database `db` (or on every collection there). */
  seesCollection(user: string | undefined, db: string, name: string): boolean {
    if (this.isAdmin(user)) return true;
    return this.rolesOf(user!).some((r) =>
      this.#store.grantsOf(r).some((g) => g.type !== 'User' && (g.db === ANY || g.db === db) && (g.name === ANY || g.name === name)),
    );
  }

  #permits(roles: readonly string[], check: Check): boolean {
    for (const role of roles) for (const g of this.#store.grantsOf(role)) if (this.#covers(g, check)) return true;
    return false;
  }

  #covers(g: Grant, check: Check): boolean {
    // Users are not per database: a grant about users holds whichever database the connection uses.
    if (check.type !== 'User' && g.db !== ANY && g.db !== check.db) return false;
    if (g.name !== ANY && g.name !== check.name) return false;
    if (check.type === 'User' ? g.type === 'Collection' || (g.type === 'Global' && g.name !== ANY) : g.type === 'User') return false;
    return this.#store.covers(g.privilege, check.privilege);
  }
}

function isSelfService(user: string, method: string, req: any, roles: readonly string[]): boolean {
  switch (method) {
    case 'SelectUser':
      return req?.user?.name === user;
    case 'UpdateCredential':
      return req?.username === user;
    case 'SelectGrant': {
      const role: unknown = req?.entity?.role?.name;
      return typeof role === 'string' && role !== '' && roles.includes(role);
    }
    default:
      return false;
  }
}

function denial(user: string, c: Check): Error {
  const object =
    c.name === ANY ? (c.type === 'Collection' ? 'every collection' : c.type === 'User' ? 'every user' : 'Global *') : `${c.type} ${JSON.stringify(c.name)}`;
  return quiverError(
    'PrivilegeNotPermitted',
    `permission denied: user ${JSON.stringify(user)} lacks privilege ${c.privilege} on ${object} in database ${JSON.stringify(c.db)}`,
  );
}
