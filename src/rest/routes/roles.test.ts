import { describe, expect, it } from 'vitest';
import { quiverError } from '../../common/errors.js';
import { refusal, runRoute } from './fake-call.test-util.js';
import { roleRoutes } from './roles.js';

describe('REST roles and privilege-group routes', () => {
  it('create, drop and list translate to CreateRole, DropRole and SelectRole', async () => {
    expect((await runRoute(roleRoutes, 'roles/create', { roleName: 'reader' })).calls).toEqual([
      { method: 'CreateRole', req: { entity: { name: 'reader' } } },
    ]);
    expect((await runRoute(roleRoutes, 'roles/drop', { roleName: 'reader' })).calls).toEqual([
      { method: 'DropRole', req: { role_name: 'reader', force_drop: false } },
    ]);
    expect((await runRoute(roleRoutes, 'roles/drop', { roleName: 'reader', forceDrop: true })).calls[0]!.req.force_drop).toBe(true);
    const l = await runRoute(roleRoutes, 'roles/list', {}, { SelectRole: { results: [{ role: { name: 'admin' } }, { role: { name: 'public' } }] } });
    expect(l.data).toEqual(['admin', 'public']);
  });

  it('grant_privilege / revoke_privilege fill the GrantEntity in the request database', async () => {
    const g = await runRoute(roleRoutes, 'roles/grant_privilege', {
      roleName: 'reader',
      objectType: 'Collection',
      objectName: 'books',
      privilege: 'Search',
      dbName: 'shop',
    });
    expect(g.calls).toEqual([
      {
        method: 'OperatePrivilege',
        req: {
          entity: {
            role: { name: 'reader' },
            object: { name: 'Collection' },
            object_name: 'books',
            db_name: 'shop',
            grantor: { privilege: { name: 'Search' } },
          },
          type: 'Grant',
        },
      },
    ]);
    const r = await runRoute(roleRoutes, 'roles/revoke_privilege', {
      roleName: 'reader',
      objectType: 'Global',
      objectName: '*',
      privilege: 'ListSnapshots',
    });
    expect(r.calls[0]!.req).toMatchObject({ entity: { object_name: '*', db_name: 'default' }, type: 'Revoke' });
  });

  it('grant_privilege_v2 / revoke_privilege_v2 send OperatePrivilegeV2 with the names as given', async () => {
    const g = await runRoute(roleRoutes, 'roles/grant_privilege_v2', {
      roleName: 'reader',
      privilege: 'CollectionReadOnly',
      dbName: 'shop',
      collectionName: '*',
    });
    expect(g.calls).toEqual([
      {
        method: 'OperatePrivilegeV2',
        req: { role: { name: 'reader' }, grantor: { privilege: { name: 'CollectionReadOnly' } }, type: 'Grant', db_name: 'shop', collection_name: '*' },
      },
    ]);
    const r = await runRoute(roleRoutes, 'roles/revoke_privilege_v2', { roleName: 'reader', privilege: 'Search' });
    expect(r.calls[0]!.req).toMatchObject({ type: 'Revoke', db_name: '', collection_name: '' });
  });

  it('describe answers one object per grant of SelectGrant', async () => {
    const d = await runRoute(
      roleRoutes,
      'roles/describe',
      { roleName: 'reader' },
      {
        SelectGrant: {
          entities: [
            {
              role: { name: 'reader' },
              object: { name: 'Collection' },
              object_name: 'books',
              db_name: 'default',
              grantor: { user: { name: 'root' }, privilege: { name: 'Search' } },
            },
          ],
        },
      },
    );
    expect(d.calls).toEqual([{ method: 'SelectGrant', req: { entity: { role: { name: 'reader' }, db_name: 'default' } } }]);
    expect(d.data).toEqual([{ objectType: 'Collection', objectName: 'books', privilege: 'Search', dbName: 'default', grantor: 'root' }]);
  });

  it('privilege_groups: create with privileges adds them; list shapes groups; add/remove operate on the group', async () => {
    const c = await runRoute(roleRoutes, 'privilege_groups/create', { privilegeGroupName: 'snap_ops', privileges: ['CreateSnapshot', 'PinSnapshot'] });
    expect(c.calls).toEqual([
      { method: 'CreatePrivilegeGroup', req: { group_name: 'snap_ops' } },
      {
        method: 'OperatePrivilegeGroup',
        req: { group_name: 'snap_ops', privileges: [{ name: 'CreateSnapshot' }, { name: 'PinSnapshot' }], type: 'AddPrivilegesToGroup' },
      },
    ]);
    expect((await runRoute(roleRoutes, 'privilege_groups/create', { privilegeGroupName: 'empty' })).calls).toHaveLength(1);
    const l = await runRoute(
      roleRoutes,
      'privilege_groups/list',
      {},
      {
        ListPrivilegeGroups: { privilege_groups: [{ group_name: 'snap_ops', privileges: [{ name: 'CreateSnapshot' }] }] },
      },
    );
    expect(l.data).toEqual([{ privilegeGroupName: 'snap_ops', privileges: ['CreateSnapshot'] }]);
    const rm = await runRoute(roleRoutes, 'privilege_groups/remove_privileges_from_group', { privilegeGroupName: 'snap_ops', privileges: ['PinSnapshot'] });
    expect(rm.calls[0]).toEqual({
      method: 'OperatePrivilegeGroup',
      req: { group_name: 'snap_ops', privileges: [{ name: 'PinSnapshot' }], type: 'RemovePrivilegesFromGroup' },
    });
    expect((await runRoute(roleRoutes, 'privilege_groups/drop', { privilegeGroupName: 'snap_ops' })).calls[0]!.method).toBe('DropPrivilegeGroup');
  });

  it("a handler's refusal propagates unchanged (its Milvus code reaches the client)", async () => {
    const denied = quiverError('ParameterInvalid', 'role reader already exists');
    await expect(runRoute(roleRoutes, 'roles/create', { roleName: 'reader' }, { CreateRole: denied })).rejects.toBe(denied);
  });

  it('refuses names with path characters and missing fields, naming the field', () => {
    expect(refusal(roleRoutes, 'roles/create', { roleName: '../admin' }).fields).toEqual(['roleName']);
    expect(refusal(roleRoutes, 'roles/create', {}).fields).toEqual(['roleName']);
    expect(
      refusal(roleRoutes, 'roles/grant_privilege', { roleName: 'r', objectType: 'Collection', objectName: 'a/b', privilege: 'Search' }).fields,
    ).toEqual(['objectName']);
    expect(refusal(roleRoutes, 'roles/grant_privilege', { roleName: 'r', objectType: 'Collection', objectName: 'books' }).fields).toEqual(['privilege']);
    expect(refusal(roleRoutes, 'roles/grant_privilege_v2', { roleName: 'r', privilege: 'Search', dbName: 'x/y' }).fields).toEqual(['dbName']);
    expect(refusal(roleRoutes, 'privilege_groups/add_privileges_to_group', { privilegeGroupName: 'g', privileges: [] }).fields).toEqual(['privileges']);
    expect(refusal(roleRoutes, 'privilege_groups/create', { privilegeGroupName: 'g/../h' }).fields).toEqual(['privilegeGroupName']);
  });
});
