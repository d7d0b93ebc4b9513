import { z } from 'zod';
import type { RestRoute } from '../types.js';
import { dbNameField, grantTarget, objectName, principalName } from './admin-fields.js';

/**
 * `/v2/vectordb/roles/*` and `/v2/vectordb/privilege_groups/*` → the RBAC RPCs (CreateRole, DropRole,
 * SelectRole, SelectGrant, OperatePrivilege, OperatePrivilegeV2, CreatePrivilegeGroup, DropPrivilegeGroup,
 * ListPrivilegeGroups, OperatePrivilegeGroup), with the request fields the SDK's gRPC client fills and
 * the reply shapes Milvus's REST v2 answers.
 */

const roleName = principalName('roleName');
/** A privilege or privilege-group name (`Search`, `CollectionReadOnly`, a custom group) or `*`. */
const privilege = z.union([z.literal('*'), objectName('privilege')]);
/** Milvus's object types: Global, Collection, User, Database (the handler refuses the unknown ones). */
const objectType = objectName('objectType');
const groupName = objectName('privilegeGroupName');

const create: RestRoute<{ roleName: string }> = {
  path: 'roles/create',
  body: z.object({ roleName }),
  async run(b, call) {
    await call('CreateRole', { entity: { name: b.roleName } });
    return {};
  },
};

const drop: RestRoute<{ roleName: string; forceDrop?: boolean | undefined }> = {
  path: 'roles/drop',
  body: z.object({ roleName, forceDrop: z.boolean().optional() }),
  async run(b, call) {
    await call('DropRole', { role_name: b.roleName, force_drop: b.forceDrop ?? false });
    return {};
  },
};

/** Milvus answers the role names. */
const list: RestRoute<object> = {
  path: 'roles/list',
  body: z.object({}),
  async run(_b, call) {
    const r = (await call('SelectRole', { include_user_info: false })) as { results?: { role?: { name?: string } }[] };
    return (r.results ?? []).map((x) => String(x.role?.name ?? ''));
  },
};

interface GrantEntity {
  object?: { name?: string };
  object_name?: string;
  db_name?: string;
  grantor?: { user?: { name?: string }; privilege?: { name?: string } };
}

/** The role's grants in the request's database, one object per grant as Milvus's REST answers them. */
const describe: RestRoute<{ roleName: string; dbName?: string | undefined }> = {
  path: 'roles/describe',
  body: z.object({ roleName, dbName: dbNameField }),
  async run(b, call, ctx) {
    const r = (await call('SelectGrant', { entity: { role: { name: b.roleName }, db_name: ctx.dbName } })) as { entities?: GrantEntity[] };
    return (r.entities ?? []).map((e) => ({
      objectType: e.object?.name ?? '',
      objectName: e.object_name ?? '',
      privilege: e.grantor?.privilege?.name ?? '',
      dbName: e.db_name ?? '',
      grantor: e.grantor?.user?.name ?? '',
    }));
  },
};

type GrantBody = { roleName: string; objectType: string; objectName: string; privilege: string; dbName?: string | undefined };
const grantBody = z.object({ roleName, objectType, objectName: grantTarget('objectName'), privilege, dbName: dbNameField });

function operatePrivilege(path: string, type: 'Grant' | 'Revoke'): RestRoute<GrantBody> {
  return {
    path,
    body: grantBody,
    async run(b, call, ctx) {
      await call('OperatePrivilege', {
        entity: {
          role: { name: b.roleName },
          object: { name: b.objectType },
          object_name: b.objectName,
          db_name: ctx.dbName,
          // The grantor's user is the caller: the handler takes it from the call, never from the body.
          grantor: { privilege: { name: b.privilege } },
        },
        type,
      });
      return {};
    },
  };
}

type GrantV2Body = { roleName: string; privilege: string; dbName?: string | undefined; collectionName?: string | undefined };
/** `*` stands for every database or every collection here, so both accept it. */
const grantV2Body = z.object({ roleName, privilege, dbName: grantTarget('dbName').optional(), collectionName: grantTarget('collectionName').optional() });

function operatePrivilegeV2(path: string, type: 'Grant' | 'Revoke'): RestRoute<GrantV2Body> {
  return {
    path,
    body: grantV2Body,
    async run(b, call) {
      // As the SDK sends them: the names as given (empty when absent), for the handler to default.
      await call('OperatePrivilegeV2', {
        role: { name: b.roleName },
        grantor: { privilege: { name: b.privilege } },
        type,
        db_name: b.dbName ?? '',
        collection_name: b.collectionName ?? '',
      });
      return {};
    },
  };
}

const privileges = z.array(privilege).max(1024, 'privileges must list at most 1024 names');

const groupCreate: RestRoute<{ privilegeGroupName: string; privileges?: string[] | undefined }> = {
  path: 'privilege_groups/create',
  body: z.object({ privilegeGroupName: groupName, privileges: privileges.optional() }),
  async run(b, call) {
    await call('CreatePrivilegeGroup', { group_name: b.privilegeGroupName });
    // Milvus's create takes the initial privileges too; the proto has no field for them, so a second call.
    if (b.privileges && b.privileges.length > 0) {
      await call('OperatePrivilegeGroup', {
        group_name: b.privilegeGroupName,
        privileges: b.privileges.map((name) => ({ name })),
        type: 'AddPrivilegesToGroup',
      });
    }
    return {};
  },
};

const groupDrop: RestRoute<{ privilegeGroupName: string }> = {
  path: 'privilege_groups/drop',
  body: z.object({ privilegeGroupName: groupName }),
  async run(b, call) {
    await call('DropPrivilegeGroup', { group_name: b.privilegeGroupName });
    return {};
  },
};

const groupList: RestRoute<object> = {
  path: 'privilege_groups/list',
  body: z.object({}),
  async run(_b, call) {
    const r = (await call('ListPrivilegeGroups', {})) as { privilege_groups?: { group_name?: string; privileges?: { name?: string }[] }[] };
    return (r.privilege_groups ?? []).map((g) => ({
      privilegeGroupName: g.group_name ?? '',
      privileges: (g.privileges ?? []).map((p) => String(p.name ?? '')),
    }));
  },
};

function operateGroup(
  path: string,
  type: 'AddPrivilegesToGroup' | 'RemovePrivilegesFromGroup',
): RestRoute<{ privilegeGroupName: string; privileges: string[] }> {
  return {
    path,
    body: z.object({ privilegeGroupName: groupName, privileges: privileges.min(1, 'privileges must name at least one privilege') }),
    async run(b, call) {
      await call('OperatePrivilegeGroup', { group_name: b.privilegeGroupName, privileges: b.privileges.map((name) => ({ name })), type });
      return {};
    },
  };
}

export const roleRoutes: readonly RestRoute[] = [
  create,
  drop,
  list,
  describe,
  operatePrivilege('roles/grant_privilege', 'Grant'),
  operatePrivilege('roles/revoke_privilege', 'Revoke'),
  operatePrivilegeV2('roles/grant_privilege_v2', 'Grant'),
  operatePrivilegeV2('roles/revoke_privilege_v2', 'Revoke'),
  groupCreate,
  groupDrop,
  groupList,
  operateGroup('privilege_groups/add_privileges_to_group', 'AddPrivilegesToGroup'),
  operateGroup('privilege_groups/remove_privileges_from_group', 'RemovePrivilegesFromGroup'),
];
