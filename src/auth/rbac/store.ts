import { assert, quiverError } from '../../common/errors.js';
import { decodeJson, encodeJson } from '../../meta/json.js';
import type { Compare, KvEntry, MetaKV, Op } from '../../meta/meta-kv.js';
import { splitBySize, opBytes } from '../../meta/txn-limits.js';
import type { UserDirectory } from '../types.js';
import { ALL_PRIVILEGES, ANY, BUILTIN_GROUPS, isBuiltinGroup, isPrivilege, OBJECT_TYPES, type ObjectType } from './privileges.js';

/**
 * RBAC metadata (Milvus: RootCoord's role, user-role and grant tables), kept in memory for the
 * synchronous authorizer and persisted in the MetaKV:
 *
 *   auth/rbac/roles/{role}     → RoleDoc: the role, the users bound to it and its grants
 *   auth/rbac/groups/{group}   → GroupDoc: a custom privilege group and its privileges
 *
 * Everything about one role is one key, so each operation (grant, revoke, bind, drop) is one
 * compare-and-set write on the role's modRevision: two writers never lose each other's change; the loser
 * re-reads the key and applies its change again. The built-in roles `admin` (every privilege) and
 * `public` (every user holds it) always exist; their docs are written on first use, public's with
 * Milvus's default grants (DescribeCollection, ShowCollections, IndexDetail on every object).
 *
 * Limits: role/group names as Milvus (letters, digits, `_`; at most 32), at most ROLE_GRANTS_MAX grants and
 * ROLE_USERS_MAX users per role, so a RoleDoc stays far under etcd's request limit.
 */

export const ADMIN_ROLE = 'admin';
export const PUBLIC_ROLE = 'public';
export const BUILTIN_ROLES: readonly string[] = [ADMIN_ROLE, PUBLIC_ROLE];
export const ROLE_GRANTS_MAX = 4096;
export const ROLE_USERS_MAX = 4096;
export const ROLES_MAX = 1024;
export const GROUPS_MAX = 1024;
const NAME_MAX = 32;
const CAS_ATTEMPTS_MAX = 8;

const PREFIX = 'auth/rbac/';
const ROLES = `${PREFIX}roles/`;
const GROUPS = `${PREFIX}groups/`;

export interface Grant {
  readonly role: string;
  readonly type: ObjectType;
  /** `*` for every object of the type. */
  readonly name: string;
  /** `*` for every database. */
  readonly db: string;
  /** A privilege, `*` (all), a built-in group or a custom group. */
  readonly privilege: string;
  /** Who granted it ('' when auth was off). */
  readonly grantor: string;
}

interface RoleDoc {
  readonly name: string;
  readonly users: readonly string[];
  readonly grants: readonly Grant[];
}

interface GroupDoc {
  readonly name: string;
  readonly privileges: readonly string[];
}

interface Cached<T> {
  readonly doc: T;
  /** 0: not persisted yet (a built-in role never written). */
  readonly modRevision: number;
}

export interface RbacBackup {
  readonly roles: readonly string[];
  readonly bindings: readonly { readonly user: string; readonly roles: readonly string[] }[];
  readonly grants: readonly Grant[];
  readonly groups: readonly { readonly name: string; readonly privileges: readonly string[] }[];
}

const PUBLIC_DEFAULT_GRANTS: readonly Omit<Grant, 'role'>[] = [
  { type: 'Global', name: ANY, db: ANY, privilege: 'DescribeCollection', grantor: '' },
  { type: 'Global', name: ANY, db: ANY, privilege: 'ShowCollections', grantor: '' },
  { type: 'Collection', name: ANY, db: ANY, privilege: 'IndexDetail', grantor: '' },
];

export function validateRbacName(kind: 'role' | 'privilege group', name: unknown): string {
  const bad = (why: string): never => {
    throw quiverError('ParameterInvalid', `invalid ${kind} name ${JSON.stringify(name)}: ${why}`);
  };
  if (typeof name !== 'string' || name === '') return bad('it is empty');
  if (name.length > NAME_MAX) bad(`longer than ${NAME_MAX} characters`);
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) bad('only letters, digits and underscores, not starting with a digit');
  return name;
}

function sameGrant(a: Omit<Grant, 'grantor'>, b: Omit<Grant, 'grantor'>): boolean {
  return a.role === b.role && a.type === b.type && a.name === b.name && a.db === b.db && a.privilege === b.privilege;
}

export class RbacStore {
  readonly #kv: MetaKV;
  #roles = new Map<string, Cached<RoleDoc>>();
  #groups = new Map<string, Cached<GroupDoc>>();
  #unsubscribe: (() => void) | undefined;
  #initPromise: Promise<void> | undefined;

  constructor(deps: { kv: MetaKV; directory?: UserDirectory | undefined }) {
    this.#kv = deps.kv;
    // A deleted user's bindings go with it, so a new user of the same name starts with no roles.
    this.#unsubscribe = deps.directory?.onDeleted((user) => this.dropUser(user));
  }

  /** Loads the persisted state (once; retried after a failure). */
  init(): Promise<void> {
    this.#initPromise ??= this.reload().catch((e: unknown) => {
      this.#initPromise = undefined;
      throw e;
    });
    return this.#initPromise;
  }

  close(): void {
    this.#unsubscribe?.();
    this.#unsubscribe = undefined;
  }

  /** Re-reads everything (after a lost compare-and-set, another process may have written). */
  async reload(): Promise<void> {
    const roles = new Map<string, Cached<RoleDoc>>();
    for (const e of await this.#kv.scan(ROLES)) {
      const doc = readRole(e);
      roles.set(doc.name, { doc, modRevision: e.modRevision });
    }
    const groups = new Map<string, Cached<GroupDoc>>();
    for (const e of await this.#kv.scan(GROUPS)) {
      const doc = readGroup(e);
      groups.set(doc.name, { doc, modRevision: e.modRevision });
    }
    this.#roles = roles;
    this.#groups = groups;
  }

  // ------------------------------------------------------------------ reads (synchronous, in memory)

  hasRole(name: string): boolean {
    return BUILTIN_ROLES.includes(name) || this.#roles.has(name);
  }

  roles(): string[] {
    return [...new Set([...BUILTIN_ROLES, ...this.#roles.keys()])];
  }

  /** Roles explicitly bound to a user (not `public`, which everyone holds). */
  rolesOf(user: string): string[] {
    const out: string[] = [];
    for (const [name, c] of this.#roles) if (c.doc.users.includes(user)) out.push(name);
    return out;
  }

  usersOf(role: string): string[] {
    return [...(this.#roles.get(role)?.doc.users ?? [])];
  }

  /** Every user bound to some role. */
  boundUsers(): string[] {
    const out = new Set<string>();
    for (const c of this.#roles.values()) for (const u of c.doc.users) out.add(u);
    return [...out];
  }

  grantsOf(role: string): readonly Grant[] {
    const c = this.#roles.get(role);
    if (c) return c.doc.grants;
    return role === PUBLIC_ROLE ? PUBLIC_DEFAULT_GRANTS.map((g) => ({ ...g, role })) : [];
  }

  isGroup(name: string): boolean {
    return isBuiltinGroup(name) || this.#groups.has(name);
  }

  /** Privileges of a group (built-in or custom); undefined when there is no such group. */
  groupPrivileges(name: string): readonly string[] | undefined {
    return BUILTIN_GROUPS[name] ?? this.#groups.get(name)?.doc.privileges;
  }

  customGroups(): { readonly name: string; readonly privileges: readonly string[] }[] {
    return [...this.#groups.values()].map((c) => c.doc);
  }

  /** Whether granting `privilege` (single, `*`, or a group) covers the single privilege `wanted`. */
  covers(privilege: string, wanted: string): boolean {
    if (privilege === ALL_PRIVILEGES || privilege === wanted) return true;
    return this.groupPrivileges(privilege)?.includes(wanted) ?? false;
  }

  // ------------------------------------------------------------------ roles

  async createRole(name: string): Promise<void> {
    validateRbacName('role', name);
    if (this.hasRole(name)) throw quiverError('ParameterInvalid', `role ${JSON.stringify(name)} already exists`);
    if (this.#roles.size >= ROLES_MAX) throw quiverError('ParameterTooLarge', `at most ${ROLES_MAX} roles`);
    await this.#mutateRole(name, (doc) => {
      if (doc) throw quiverError('ParameterInvalid', `role ${JSON.stringify(name)} already exists`);
      return { name, users: [], grants: [] };
    });
  }

  /**
   * Drops a custom role. As Milvus: a role that still holds grants is refused unless `force`, which drops
   * its grants with it; its user bindings always go with it.
   */
  async dropRole(name: string, force: boolean): Promise<void> {
    if (BUILTIN_ROLES.includes(name)) throw quiverError('ParameterInvalid', `the built-in role ${JSON.stringify(name)} cannot be dropped`);
    if (!this.#roles.has(name)) throw quiverError('ParameterInvalid', `role ${JSON.stringify(name)} does not exist`);
    await this.#mutateRole(name, (doc) => {
      if (!doc) throw quiverError('ParameterInvalid', `role ${JSON.stringify(name)} does not exist`);
      if (doc.grants.length > 0 && !force) {
        throw quiverError(
          'ParameterInvalid',
          `role ${JSON.stringify(name)} still holds ${doc.grants.length} grant(s); revoke them first or drop with force_drop`,
        );
      }
      return null;
    });
  }

  async bindUser(user: string, role: string): Promise<void> {
    this.#requireRole(role);
    await this.#mutateRole(role, (doc) => {
      const d = doc ?? this.#builtinDoc(role);
      if (d.users.includes(user)) return d;
      if (d.users.length >= ROLE_USERS_MAX) throw quiverError('ParameterTooLarge', `role ${role} already has ${ROLE_USERS_MAX} users`);
      return { ...d, users: [...d.users, user] };
    });
  }

  async unbindUser(user: string, role: string): Promise<void> {
    this.#requireRole(role);
    await this.#mutateRole(role, (doc) => (doc ? { ...doc, users: doc.users.filter((u) => u !== user) } : undefined));
  }

  /** Removes every binding of a deleted user (idempotent). */
  async dropUser(user: string): Promise<void> {
    for (const role of this.rolesOf(user)) await this.unbindUser(user, role);
  }

  // ------------------------------------------------------------------ grants

  async grant(g: Grant): Promise<void> {
    this.#requireRole(g.role);
    if (g.role === ADMIN_ROLE) throw quiverError('ParameterInvalid', 'the admin role already holds every privilege');
    if (!OBJECT_TYPES.includes(g.type)) throw quiverError('ParameterInvalid', `unknown object type ${JSON.stringify(g.type)}`);
    this.#requirePrivilege(g.privilege);
    await this.#mutateRole(g.role, (doc) => {
      const d = doc ?? this.#builtinDoc(g.role);
      if (d.grants.some((x) => sameGrant(x, g))) return d;
      if (d.grants.length >= ROLE_GRANTS_MAX) throw quiverError('ParameterTooLarge', `role ${g.role} already holds ${ROLE_GRANTS_MAX} grants`);
      return { ...d, grants: [...d.grants, g] };
    });
  }

  /** Idempotent: revoking a grant that does not exist succeeds. */
  async revoke(g: Omit<Grant, 'grantor'>): Promise<void> {
    this.#requireRole(g.role);
    await this.#mutateRole(g.role, (doc) => {
      const d = doc ?? (g.role === PUBLIC_ROLE ? this.#builtinDoc(g.role) : undefined);
      return d ? { ...d, grants: d.grants.filter((x) => !sameGrant(x, g)) } : undefined;
    });
  }

  // ------------------------------------------------------------------ privilege groups

  async createGroup(name: string): Promise<void> {
    validateRbacName('privilege group', name);
    if (isBuiltinGroup(name) || isPrivilege(name) || name === 'All') {
      throw quiverError('ParameterInvalid', `${JSON.stringify(name)} is a built-in privilege or group name`);
    }
    if (this.#groups.size >= GROUPS_MAX) throw quiverError('ParameterTooLarge', `at most ${GROUPS_MAX} privilege groups`);
    await this.#mutateGroup(name, (doc) => {
      if (doc) throw quiverError('ParameterInvalid', `privilege group ${JSON.stringify(name)} already exists`);
      return { name, privileges: [] };
    });
  }

  /** Refused for built-in groups and (as Milvus) for a group still granted to a role. */
  async dropGroup(name: string): Promise<void> {
    if (isBuiltinGroup(name)) throw quiverError('ParameterInvalid', `the built-in privilege group ${name} cannot be dropped`);
    const holders = this.roles().filter((r) => this.grantsOf(r).some((g) => g.privilege === name));
    if (holders.length > 0) throw quiverError('ParameterInvalid', `privilege group ${name} is still granted to role(s) ${holders.join(', ')}`);
    if (!this.#groups.has(name)) return; // idempotent, as Milvus
    await this.#mutateGroup(name, () => null);
  }

  async alterGroup(name: string, privileges: readonly string[], op: 'add' | 'remove'): Promise<void> {
    if (isBuiltinGroup(name)) throw quiverError('ParameterInvalid', `the built-in privilege group ${name} cannot be changed`);
    if (!this.#groups.has(name)) throw quiverError('ParameterInvalid', `privilege group ${JSON.stringify(name)} does not exist`);
    for (const p of privileges) {
      if (!isPrivilege(p)) throw quiverError('ParameterInvalid', `${JSON.stringify(p)} is not a privilege (groups hold single privileges only)`);
    }
    await this.#mutateGroup(name, (doc) => {
      if (!doc) throw quiverError('ParameterInvalid', `privilege group ${JSON.stringify(name)} does not exist`);
      const set = new Set(doc.privileges);
      for (const p of privileges) {
        if (op === 'add') set.add(p);
        else set.delete(p);
      }
      return { name, privileges: [...set] };
    });
  }

  // ------------------------------------------------------------------ backup / restore

  backup(): RbacBackup {
    const roles = this.roles().filter((r) => !BUILTIN_ROLES.includes(r));
    const byUser = new Map<string, string[]>();
    for (const [role, c] of this.#roles) for (const u of c.doc.users) byUser.set(u, [...(byUser.get(u) ?? []), role]);
    return {
      roles,
      bindings: [...byUser].map(([user, r]) => ({ user, roles: r })),
      grants: this.roles().flatMap((r) => (r === ADMIN_ROLE ? [] : this.grantsOf(r))),
      groups: this.customGroups(),
    };
  }

  /**
   * Restores a backup into this store (Milvus's RestoreRBAC): refused as a whole, before anything is
   * written, when one of its custom roles or groups already exists or a grant names something unknown.
   * Each role and group is then one compare-and-set write (create-if-absent), so a concurrent writer of the
   * same name makes the restore fail rather than be overwritten; the built-in roles get the backup's
   * grants and bindings added to theirs.
   */
  async restore(b: RbacBackup): Promise<void> {
    const roles = new Set(b.roles);
    for (const r of roles) {
      validateRbacName('role', r);
      if (this.hasRole(r)) throw quiverError('ParameterInvalid', `cannot restore: role ${r} already exists`);
    }
    for (const g of b.groups) {
      validateRbacName('privilege group', g.name);
      if (this.isGroup(g.name)) throw quiverError('ParameterInvalid', `cannot restore: privilege group ${g.name} already exists`);
      for (const p of g.privileges)
        if (!isPrivilege(p)) throw quiverError('ParameterInvalid', `cannot restore: group ${g.name} holds unknown privilege ${p}`);
    }
    const groupNames = new Set(b.groups.map((g) => g.name));
    for (const g of b.grants) {
      if (!roles.has(g.role) && !BUILTIN_ROLES.includes(g.role)) throw quiverError('ParameterInvalid', `cannot restore: grant for unknown role ${g.role}`);
      if (g.role === ADMIN_ROLE) throw quiverError('ParameterInvalid', 'cannot restore: grants to the admin role');
      if (!OBJECT_TYPES.includes(g.type)) throw quiverError('ParameterInvalid', `cannot restore: unknown object type ${g.type}`);
      if (!groupNames.has(g.privilege)) this.#requirePrivilege(g.privilege);
    }
    for (const u of b.bindings)
      for (const r of u.roles)
        if (!roles.has(r) && !BUILTIN_ROLES.includes(r)) throw quiverError('ParameterInvalid', `cannot restore: binding to unknown role ${r}`);

    const docs = new Map<string, { name: string; users: string[]; grants: Grant[] }>();
    const docOf = (r: string) => {
      let d = docs.get(r);
      if (!d) docs.set(r, (d = { name: r, users: [], grants: [] }));
      return d;
    };
    for (const r of roles) docOf(r);
    for (const g of b.grants) docOf(g.role).grants.push({ ...g });
    for (const u of b.bindings) for (const r of u.roles) docOf(r).users.push(u.user);

    // Groups first: a grant of a restored group must never be visible before the group is.
    const ops: { key: string; doc: unknown }[] = b.groups.map((g) => ({ key: GROUPS + enc(g.name), doc: { name: g.name, privileges: [...g.privileges] } }));
    for (const chunk of splitBySize(ops, (o) => opBytes({ type: 'put', key: o.key, value: encodeJson(o.doc) }))) {
      const compares: Compare[] = chunk.map((o) => ({ key: o.key, target: 'version', op: '==', value: 0 }));
      const res = await this.#kv.txn(
        compares,
        chunk.map((o): Op => ({ type: 'put', key: o.key, value: encodeJson(o.doc) })),
      );
      if (!res.succeeded) throw quiverError('ParameterInvalid', 'cannot restore: a privilege group of the backup was created meanwhile');
    }
    await this.reload();
    for (const [name, d] of docs) {
      if (BUILTIN_ROLES.includes(name)) {
        for (const g of d.grants) await this.grant(g);
        for (const u of d.users) await this.bindUser(u, name);
      } else {
        await this.#mutateRole(name, (doc) => {
          if (doc) throw quiverError('ParameterInvalid', `cannot restore: role ${name} was created meanwhile`);
          return { name, users: [...new Set(d.users)], grants: d.grants };
        });
      }
    }
  }

  // ------------------------------------------------------------------ internals

  #requireRole(role: string): void {
    if (!this.hasRole(role)) throw quiverError('ParameterInvalid', `role ${JSON.stringify(role)} does not exist`);
  }

  #requirePrivilege(p: string): void {
    if (p !== ALL_PRIVILEGES && !isPrivilege(p) && !this.isGroup(p)) {
      throw quiverError('ParameterInvalid', `${JSON.stringify(p)} is neither a privilege nor a privilege group`);
    }
  }

  #builtinDoc(role: string): RoleDoc {
    assert(BUILTIN_ROLES.includes(role), `role ${role} has no doc`);
    return { name: role, users: [], grants: role === PUBLIC_ROLE ? PUBLIC_DEFAULT_GRANTS.map((g) => ({ ...g, role })) : [] };
  }

  /**
   * One compare-and-set write of a role's doc: `fn` gets the current doc (undefined when absent) and
   * answers the new one, `null` to delete it, or undefined for no change. A lost race re-reads the key
   * and runs `fn` again on what the other writer left.
   */
  async #mutateRole(name: string, fn: (doc: RoleDoc | undefined) => RoleDoc | null | undefined): Promise<void> {
    await this.#mutate(ROLES + enc(name), this.#roles, name, fn, readRole);
  }

  async #mutateGroup(name: string, fn: (doc: GroupDoc | undefined) => GroupDoc | null | undefined): Promise<void> {
    await this.#mutate(GROUPS + enc(name), this.#groups, name, fn, readGroup);
  }

  async #mutate<T>(
    key: string,
    cache: Map<string, Cached<T>>,
    name: string,
    fn: (doc: T | undefined) => T | null | undefined,
    read: (e: KvEntry) => T,
  ): Promise<void> {
    for (let attempt = 0; attempt < CAS_ATTEMPTS_MAX; attempt++) {
      const cached = cache.get(name);
      const next = fn(cached?.doc);
      if (next === undefined) return;
      const compare: Compare = { key, target: 'modRevision', op: '==', value: cached?.modRevision ?? 0 };
      const op: Op = next === null ? { type: 'delete', key } : { type: 'put', key, value: encodeJson(next) };
      const res = await this.#kv.txn([compare], [op]);
      if (res.succeeded) {
        if (next === null) cache.delete(name);
        else cache.set(name, { doc: next, modRevision: res.revision });
        return;
      }
      // Another writer got there first: take its version and try again.
      const fresh = await this.#kv.get(key);
      if (fresh) cache.set(name, { doc: read(fresh), modRevision: fresh.modRevision });
      else cache.delete(name);
    }
    throw quiverError('ServiceNotReady', `RBAC metadata ${key} kept changing under ${CAS_ATTEMPTS_MAX} attempts; retry`);
  }
}

function enc(name: string): string {
  return encodeURIComponent(name);
}

function readRole(e: KvEntry): RoleDoc {
  const d = decodeJson<RoleDoc>(e);
  // Assert right after reading: a corrupt doc must not silently grant or deny.
  const ok =
    typeof d === 'object' &&
    d !== null &&
    typeof d.name === 'string' &&
    Array.isArray(d.users) &&
    d.users.every((u) => typeof u === 'string') &&
    Array.isArray(d.grants) &&
    d.grants.every(
      (g) =>
        typeof g.role === 'string' &&
        g.role === d.name &&
        OBJECT_TYPES.includes(g.type) &&
        typeof g.name === 'string' &&
        typeof g.db === 'string' &&
        typeof g.privilege === 'string',
    );
  if (!ok) throw quiverError('ServiceInternal', `RBAC role record ${e.key} is malformed`);
  return d;
}

function readGroup(e: KvEntry): GroupDoc {
  const d = decodeJson<GroupDoc>(e);
  if (typeof d?.name !== 'string' || !Array.isArray(d.privileges) || !d.privileges.every((p) => typeof p === 'string')) {
    throw quiverError('ServiceInternal', `RBAC privilege group record ${e.key} is malformed`);
  }
  return d;
}
