import { quiverError } from '../common/errors.js';
import {
  ADMIN_ROLE,
  ALL_PRIVILEGES,
  ANY,
  BUILTIN_GROUPS,
  PRIVILEGE_LEVELS,
  PUBLIC_ROLE,
  builtinGroupLevel,
  isBuiltinGroup,
  objectTypeOfLevel,
  validateRbacName,
  type Grant,
  type ObjectType,
  type PrivilegeLevel,
  type RbacAuthorizer,
  type RbacBackup,
  type RbacStore,
} from '../auth/index.js';
import type { UserDirectory } from '../auth/types.js';
import type { CallContext, Handler } from './milvus-service.js';
import { OK } from './status.js';

/* eslint-disable @typescript-eslint/no-explicit-any */

/**
 * Milvus's role, grant and privilege-group RPCs over the RBAC store (auth/rbac). The authorizer has
 * already checked the method's own privilege (ManageOwnership for a grant, ...) before a handler runs;
 * the handlers add what no method-level check can see:
 * - granting is delegation: a caller who is neither root nor `admin` may grant only privileges it holds
 *   itself on that object, and never to a role it holds (its own roles or `public`), so nobody can raise
 *   their own privileges with ManageOwnership alone;
 * - binding a user to a role likewise: not to `admin`, not oneself, and only a role whose every grant the
 *   caller holds.
 * With auth off (no caller) every RPC works, as in Milvus, so roles can be prepared before auth is on.
 */

export interface RbacServiceDeps {
  readonly store: RbacStore;
  readonly authorizer: RbacAuthorizer;
  /** The users authentication knows (optional: without it, users are not checked for existence). */
  readonly directory?: UserDirectory | undefined;
}

const OBJECT_TYPES: readonly ObjectType[] = ['Global', 'Collection', 'User'];
const USER_PRIVILEGES = ['UpdateUser', 'SelectUser'];

function str(v: unknown): string {
  return typeof v === 'string' ? v : '';
}

function required(what: string, v: unknown): string {
  const s = str(v);
  if (s === '') throw quiverError('ParameterMissing', `${what} is required`);
  return s;
}

/** `All` is Milvus's API name of PrivilegeAll; stored as `*`. */
function privilegeName(v: unknown): string {
  const p = required('privilege name', v);
  return p === 'All' ? ALL_PRIVILEGES : p;
}

function connectionDb(ctx: CallContext): string {
  return ctx.dbName || 'default';
}

export function rbacHandlers(deps: RbacServiceDeps): Record<string, Handler> {
  const { store, authorizer, directory } = deps;

  const denied = (why: string): never => {
    throw quiverError('PrivilegeNotPermitted', `permission denied: ${why}`);
  };

  /** The single privileges a grant of `privilege` hands out. */
  const expand = (privilege: string): readonly string[] => {
    if (privilege === ALL_PRIVILEGES) return [...PRIVILEGE_LEVELS.keys()];
    return store.groupPrivileges(privilege) ?? [privilege];
  };

  /** Delegation: the caller must hold everything it grants, and not grant to itself. */
  const checkDelegation = (caller: string | undefined, g: Omit<Grant, 'grantor'>): void => {
    if (authorizer.isAdmin(caller)) return;
    const user = caller!;
    if (g.role === PUBLIC_ROLE || store.rolesOf(user).includes(g.role)) {
      denied(`user ${JSON.stringify(user)} cannot grant privileges to role ${g.role}, which it holds itself`);
    }
    if (g.privilege === ALL_PRIVILEGES) denied(`only root or the admin role may grant every privilege (*)`);
    const type: ObjectType = g.type === 'User' ? 'User' : g.type;
    for (const p of expand(g.privilege)) {
      if (!authorizer.can(user, { privilege: p, type, name: g.name, db: g.db })) {
        denied(
          `user ${JSON.stringify(user)} cannot grant ${p} on ${g.type} ${JSON.stringify(g.name)} in database ${JSON.stringify(g.db)}: it does not hold it`,
        );
      }
    }
  };

  const operate = async (g: Grant, type: unknown, caller: string | undefined): Promise<void> => {
    if (type === 'Revoke' || type === 1) return store.revoke(g);
    if (type !== 'Grant' && type !== 0 && type !== undefined) throw quiverError('ParameterInvalid', `unknown operate type ${String(type)}`);
    if (!store.hasRole(g.role)) throw quiverError('ParameterInvalid', `role ${JSON.stringify(g.role)} does not exist`);
    checkDelegation(caller, g);
    await store.grant(g);
  };

  const grantEntity = (g: Grant) => ({
    role: { name: g.role },
    object: { name: g.type },
    object_name: g.name,
    db_name: g.db,
    grantor: { user: { name: g.grantor }, privilege: { name: g.privilege === ALL_PRIVILEGES ? ALL_PRIVILEGES : g.privilege } },
  });

  const knownUsers = (): string[] => [...new Set([...(directory?.list() ?? []), ...store.boundUsers()])];

  return {
    CreateRole: async (req) => {
      await store.createRole(validateRbacName('role', req?.entity?.name));
      return OK;
    },
    DropRole: async (req) => {
      await store.dropRole(required('role name', req?.role_name), Boolean(req?.force_drop));
      return OK;
    },
    OperateUserRole: async (req, ctx) => {
      const user = required('username', req?.username);
      const role = required('role name', req?.role_name);
      if (!store.hasRole(role)) throw quiverError('ParameterInvalid', `role ${JSON.stringify(role)} does not exist`);
      if (req?.type === 'RemoveUserFromRole' || req?.type === 1) {
        await store.unbindUser(user, role);
        return OK;
      }
      if (directory && !directory.has(user)) throw quiverError('ParameterInvalid', `user ${JSON.stringify(user)} does not exist`);
      if (!authorizer.isAdmin(ctx.user)) {
        const caller = ctx.user!;
        if (user === caller) denied(`user ${JSON.stringify(caller)} cannot add itself to a role`);
        if (role === ADMIN_ROLE) denied(`only root or the admin role may add users to the admin role`);
        for (const g of store.grantsOf(role)) {
          for (const p of expand(g.privilege)) {
            if (!authorizer.can(caller, { privilege: p, type: g.type, name: g.name, db: g.db })) {
              denied(`user ${JSON.stringify(caller)} cannot add users to role ${role}: it does not hold ${p} on ${g.type} ${JSON.stringify(g.name)}`);
            }
          }
        }
      }
      await store.bindUser(user, role);
      return OK;
    },
    SelectRole: (req) => {
      const name = str(req?.role?.name);
      const roles = name === '' ? store.roles() : store.hasRole(name) ? [name] : [];
      return {
        status: OK,
        results: roles.map((r) => ({ role: { name: r }, users: req?.include_user_info ? store.usersOf(r).map((u) => ({ name: u })) : [] })),
      };
    },
    SelectUser: (req) => {
      const name = str(req?.user?.name);
      const all = knownUsers();
      const users = name === '' ? all : all.includes(name) || directory?.has(name) ? [name] : [];
      return {
        status: OK,
        results: users.map((u) => ({
          user: { name: u },
          roles: req?.include_role_info ? store.rolesOf(u).map((r) => ({ name: r })) : [],
          description: '',
        })),
      };
    },
    OperatePrivilege: async (req, ctx) => {
      const e = req?.entity ?? {};
      const role = required('role name', e.role?.name);
      const type = required('object type', e.object?.name) as ObjectType;
      if (!OBJECT_TYPES.includes(type))
        throw quiverError('ParameterInvalid', `object type must be one of ${OBJECT_TYPES.join(', ')}, got ${JSON.stringify(type)}`);
      const name = required('object name', e.object_name);
      const privilege = privilegeName(e.grantor?.privilege?.name);
      checkObjectType(store, type, name, privilege);
      const db = type === 'User' ? ANY : str(e.db_name) || connectionDb(ctx);
      await operate({ role, type, name, db, privilege, grantor: ctx.user ?? '' }, req?.type, ctx.user);
      return OK;
    },
    OperatePrivilegeV2: async (req, ctx) => {
      const role = required('role name', req?.role?.name);
      const privilege = privilegeName(req?.grantor?.privilege?.name);
      const db = str(req?.db_name) || connectionDb(ctx);
      const collection = str(req?.collection_name) || ANY;
      const level = levelOf(store, privilege);
      if (level === 'Cluster' && (db !== ANY || collection !== ANY)) {
        throw quiverError('ParameterInvalid', `${privilege} is a cluster-level privilege: db_name and collection_name must both be *`);
      }
      if (level === 'Database' && collection !== ANY) {
        throw quiverError('ParameterInvalid', `${privilege} is a database-level privilege: collection_name must be *`);
      }
      const type: ObjectType = level === undefined ? (collection === ANY ? 'Global' : 'Collection') : objectTypeOfLevel(level);
      await operate({ role, type, name: collection, db, privilege, grantor: ctx.user ?? '' }, req?.type, ctx.user);
      return OK;
    },
    SelectGrant: (req, ctx) => {
      const e = req?.entity ?? {};
      const role = required('role name', e.role?.name);
      if (!store.hasRole(role)) throw quiverError('ParameterInvalid', `role ${JSON.stringify(role)} does not exist`);
      const type = str(e.object?.name);
      const name = str(e.object_name);
      const db = str(e.db_name) || connectionDb(ctx);
      const grants = store
        .grantsOf(role)
        .filter((g) => (type === '' || g.type === type) && (name === '' || g.name === name) && (db === ANY || g.db === db || g.db === ANY));
      return { status: OK, entities: grants.map(grantEntity) };
    },
    CreatePrivilegeGroup: async (req) => {
      await store.createGroup(validateRbacName('privilege group', req?.group_name));
      return OK;
    },
    DropPrivilegeGroup: async (req) => {
      await store.dropGroup(required('privilege group name', req?.group_name));
      return OK;
    },
    ListPrivilegeGroups: () => ({
      status: OK,
      privilege_groups: [
        ...Object.entries(BUILTIN_GROUPS).map(([group_name, ps]) => ({ group_name, privileges: ps.map((name) => ({ name })) })),
        ...store.customGroups().map((g) => ({ group_name: g.name, privileges: g.privileges.map((name) => ({ name })) })),
      ],
    }),
    OperatePrivilegeGroup: async (req) => {
      const name = required('privilege group name', req?.group_name);
      const privileges: string[] = (Array.isArray(req?.privileges) ? req.privileges : []).map((p: any) => required('privilege name', p?.name));
      if (privileges.length === 0) throw quiverError('ParameterMissing', 'privileges are required');
      const op = req?.type === 'RemovePrivilegesFromGroup' || req?.type === 1 ? 'remove' : 'add';
      await store.alterGroup(name, privileges, op);
      return OK;
    },
    BackupRBAC: () => {
      const b = store.backup();
      return {
        status: OK,
        RBAC_meta: {
          // Passwords never leave the server: a restore binds roles to users that exist (or are created later).
          users: b.bindings.map((u) => ({ user: u.user, password: '', roles: u.roles.map((name) => ({ name })) })),
          roles: b.roles.map((name) => ({ name, description: '' })),
          grants: b.grants.map(grantEntity),
          privilege_groups: b.groups.map((g) => ({ group_name: g.name, privileges: g.privileges.map((name) => ({ name })) })),
        },
      };
    },
    RestoreRBAC: async (req, ctx) => {
      const m = req?.RBAC_meta ?? {};
      const list = (v: unknown): any[] => (Array.isArray(v) ? v : []);
      const backup: RbacBackup = {
        roles: list(m.roles).map((r) => required('role name', r?.name)),
        bindings: list(m.users).map((u) => ({ user: required('user name', u?.user), roles: list(u?.roles).map((r) => required('role name', r?.name)) })),
        grants: list(m.grants).map((g): Grant => {
          const type = required('object type', g?.object?.name) as ObjectType;
          return {
            role: required('role name', g?.role?.name),
            type,
            name: required('object name', g?.object_name),
            db: type === 'User' ? ANY : str(g?.db_name) || connectionDb(ctx),
            privilege: privilegeName(g?.grantor?.privilege?.name),
            grantor: str(g?.grantor?.user?.name),
          };
        }),
        groups: list(m.privilege_groups).map((g) => ({
          name: required('privilege group name', g?.group_name),
          privileges: list(g?.privileges).map((p) => required('privilege name', p?.name)),
        })),
      };
      await store.restore(backup);
      return OK;
    },
  };
}

function levelOf(store: RbacStore, privilege: string): PrivilegeLevel | undefined {
  if (privilege === ALL_PRIVILEGES) return 'Cluster';
  const single = PRIVILEGE_LEVELS.get(privilege);
  if (single) return single;
  const group = builtinGroupLevel(privilege);
  if (group) return group;
  if (store.isGroup(privilege)) return undefined;
  throw quiverError('ParameterInvalid', `${JSON.stringify(privilege)} is neither a privilege nor a privilege group`);
}

/** Milvus's V1 rule: a privilege is granted on the object type it belongs to (Global objects are `*`). */
function checkObjectType(store: RbacStore, type: ObjectType, name: string, privilege: string): void {
  if (type === 'Global' && name !== ANY) throw quiverError('ParameterInvalid', `a Global grant is on object name *, got ${JSON.stringify(name)}`);
  const level = levelOf(store, privilege);
  if (type === 'User') {
    if (!USER_PRIVILEGES.includes(privilege))
      throw quiverError('ParameterInvalid', `only ${USER_PRIVILEGES.join(' and ')} are granted on User objects, not ${privilege}`);
    return;
  }
  if (type === 'Collection' && level !== undefined && level !== 'Collection') {
    throw quiverError('ParameterInvalid', `${privilege} is a ${level.toLowerCase()}-level privilege: grant it on object type Global`);
  }
  if (isBuiltinGroup(privilege) && type === 'Collection' && builtinGroupLevel(privilege) !== 'Collection') {
    throw quiverError('ParameterInvalid', `${privilege} is not a collection-level group`);
  }
}

/**
 * Milvus shows a user that is neither root nor admin only what it holds grants on: ListDatabases lists the
 * databases some grant reaches, ShowCollections the collections some grant names (or covers with `*`).
 * Public's default grants are on `*`, so until they are revoked everyone sees everything, as in Milvus.
 * Wraps the two handlers; the parallel arrays of each reply are filtered together.
 */
export function withVisibilityFilters(handlers: Record<string, Handler>, authorizer: RbacAuthorizer): Record<string, Handler> {
  const out = { ...handlers };
  const listDatabases = handlers['ListDatabases'];
  if (listDatabases) {
    out['ListDatabases'] = async (req, ctx) => {
      const reply = await listDatabases(req, ctx);
      if (authorizer.isAdmin(ctx.user) || !Array.isArray(reply?.db_names)) return reply;
      const keep = (reply.db_names as string[]).map((db) => authorizer.seesDatabase(ctx.user, db));
      return filterParallel(reply, ['db_names', 'created_timestamp', 'db_ids'], keep);
    };
  }
  const showCollections = handlers['ShowCollections'];
  if (showCollections) {
    out['ShowCollections'] = async (req, ctx) => {
      const reply = await showCollections(req, ctx);
      if (authorizer.isAdmin(ctx.user) || !Array.isArray(reply?.collection_names)) return reply;
      const db = str(req?.db_name) || connectionDb(ctx);
      const keep = (reply.collection_names as string[]).map((c) => authorizer.seesCollection(ctx.user, db, c));
      const fields = [
        'collection_names',
        'collection_ids',
        'created_timestamps',
        'created_utc_timestamps',
        'inMemory_percentages',
        'query_service_available',
      ];
      return filterParallel(reply, fields, keep);
    };
  }
  return out;
}

function filterParallel(reply: any, fields: readonly string[], keep: readonly boolean[]): any {
  const out = { ...reply };
  for (const f of fields) if (Array.isArray(reply[f]) && reply[f].length === keep.length) out[f] = reply[f].filter((_: unknown, i: number) => keep[i]);
  return out;
}
