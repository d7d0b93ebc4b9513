import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RbacObjects, type MilvusClient } from '@zilliz/milvus2-sdk-node';
import { startTestServer, type TestServer } from './helpers.js';

/**
 * The role, grant and privilege-group RPCs through the official SDK (auth off, as Milvus allows: roles
 * can be prepared before auth is switched on), and a backupRBAC → restoreRBAC round trip into a second
 * server.
 */
describe('RBAC RPCs through the SDK', () => {
  let a: TestServer;
  let b: TestServer;
  let c: MilvusClient;

  beforeAll(async () => {
    a = await startTestServer();
    b = await startTestServer();
    c = a.client;
  });
  afterAll(async () => {
    await a?.close();
    await b?.close();
  });

  it('creates roles, grants (V1 and V2), lists grants, and revokes', async () => {
    expect((await c.createRole({ roleName: 'reader' })).error_code).toBe('Success');
    expect((await c.createRole({ roleName: 'reader' })).reason).toMatch(/already exists/);
    expect((await c.grantPrivilege({ roleName: 'reader', object: RbacObjects.Collection, objectName: 'books', privilegeName: 'Search' })).error_code).toBe(
      'Success',
    );
    expect(
      (await c.grantPrivilegeV2({ role: 'reader', privilege: 'CollectionReadOnly', db_name: 'default', collection_name: 'films' } as never)).error_code,
    ).toBe('Success');
    const bad = await c.grantPrivilegeV2({ role: 'reader', privilege: 'ClusterAdmin', db_name: 'default', collection_name: '*' } as never);
    expect(bad.error_code).not.toBe('Success');
    expect(bad.reason).toMatch(/cluster-level/);

    const grants = await c.listGrants({ roleName: 'reader' } as never);
    expect(grants.status.error_code).toBe('Success');
    const summary = grants.entities.map((e) => `${e.object.name}:${e.object_name}:${e.db_name}:${e.grantor.privilege.name}`).sort();
    expect(summary).toEqual(['Collection:books:default:Search', 'Collection:films:default:CollectionReadOnly']);

    const one = await c.selectGrant({ roleName: 'reader', object: 'Collection', objectName: 'books' } as never);
    expect(one.entities.map((e) => e.grantor.privilege.name)).toEqual(['Search']);

    expect((await c.revokePrivilege({ roleName: 'reader', object: RbacObjects.Collection, objectName: 'books', privilegeName: 'Search' })).error_code).toBe(
      'Success',
    );
    const after = await c.listGrants({ roleName: 'reader' } as never);
    expect(after.entities.map((e) => e.object_name)).toEqual(['films']);
  });

  it('binds users to roles and reports them in listRoles / describeUser', async () => {
    expect((await c.addUserToRole({ username: 'alice', roleName: 'reader' })).reason).toMatch(/user "alice" does not exist/);
    expect((await c.createUser({ username: 'alice', password: 'alice-pw-123' })).error_code).toBe('Success');
    expect((await c.addUserToRole({ username: 'alice', roleName: 'reader' })).error_code).toBe('Success');
    const roles = await c.listRoles({ includeUserInfo: true });
    const reader = roles.results.find((r) => r.role.name === 'reader');
    expect(reader?.users.map((u) => u.name)).toEqual(['alice']);
    expect(roles.results.map((r) => r.role.name)).toEqual(expect.arrayContaining(['admin', 'public', 'reader']));
    const user = await c.describeUser({ username: 'alice', includeRoleInfo: true });
    expect(user.results[0]?.roles.map((r) => r.name)).toEqual(['reader']);
    // Still granted: refused without force, as Milvus.
    const drop = await c.dropRole({ roleName: 'reader' });
    expect(drop.error_code).not.toBe('Success');
    expect(drop.reason).toMatch(/still holds/);
    expect((await c.dropRole({ roleName: 'admin' })).reason).toMatch(/built-in/);
  });

  it('manages custom privilege groups and lists the built-in ones with their snapshot privileges', async () => {
    expect((await c.createPrivilegeGroup({ group_name: 'snapshot_readers' })).error_code).toBe('Success');
    expect((await c.addPrivilegesToGroup({ group_name: 'snapshot_readers', privileges: ['ListSnapshots', 'DescribeSnapshot'] } as never)).error_code).toBe(
      'Success',
    );
    const bad = await c.addPrivilegesToGroup({ group_name: 'snapshot_readers', privileges: ['NotAPrivilege'] } as never);
    expect(bad.reason).toMatch(/not a privilege/);
    const list = await c.listPrivilegeGroups();
    const byName = new Map(list.privilege_groups.map((g) => [g.group_name, g.privileges.map((p) => p.name)]));
    expect(byName.get('snapshot_readers')).toEqual(['ListSnapshots', 'DescribeSnapshot']);
    expect(byName.get('CollectionAdmin')).toEqual(expect.arrayContaining(['DropSnapshot', 'RestoreSnapshot', 'CreateSnapshot']));
    expect(byName.get('CollectionReadOnly')).not.toContain('CreateSnapshot');
    expect(
      (await c.grantPrivilegeV2({ role: 'reader', privilege: 'snapshot_readers', db_name: 'default', collection_name: 'books' } as never)).error_code,
    ).toBe('Success');
    expect((await c.dropPrivilegeGroup({ group_name: 'snapshot_readers' })).reason).toMatch(/still granted/);
  });

  it('round-trips backupRBAC → restoreRBAC into another server', async () => {
    const backup = await c.backupRBAC();
    expect(backup.status.error_code).toBe('Success');
    expect(backup.RBAC_meta.roles.map((r) => r.name)).toContain('reader');
    for (const u of backup.RBAC_meta.users as unknown as { password: string }[]) expect(u.password).toBe('');
    const restored = await b.client.restoreRBAC({ RBAC_meta: backup.RBAC_meta });
    expect(restored.error_code).toBe('Success');
    const grantsA = await c.listGrants({ roleName: 'reader' } as never);
    const grantsB = await b.client.listGrants({ roleName: 'reader' } as never);
    const key = (e: (typeof grantsA.entities)[number]) => `${e.object.name}:${e.object_name}:${e.db_name}:${e.grantor.privilege.name}`;
    expect(grantsB.entities.map(key).sort()).toEqual(grantsA.entities.map(key).sort());
    const groups = await b.client.listPrivilegeGroups();
    expect(groups.privilege_groups.find((g) => g.group_name === 'snapshot_readers')?.privileges.map((p) => p.name)).toEqual([
      'ListSnapshots',
      'DescribeSnapshot',
    ]);
    const users = await b.client.describeUser({ username: 'alice', includeRoleInfo: true });
    expect(users.results[0]?.roles.map((r) => r.name)).toEqual(['reader']);
    // Restoring again conflicts (the role exists) and changes nothing.
    expect((await b.client.restoreRBAC({ RBAC_meta: backup.RBAC_meta })).reason).toMatch(/already exists/);
    // And it survives a restart (persisted in the MetaKV).
    b = await b.restart();
    const again = await b.client.listGrants({ roleName: 'reader' } as never);
    expect(again.entities.map(key).sort()).toEqual(grantsA.entities.map(key).sort());
  });

  it('drops a deleted user’s role bindings (a new user of the same name starts with none)', async () => {
    expect((await c.createUser({ username: 'dave', password: 'dave-pw-123' })).error_code).toBe('Success');
    expect((await c.addUserToRole({ username: 'dave', roleName: 'reader' })).error_code).toBe('Success');
    expect((await c.deleteUser({ username: 'dave' })).error_code).toBe('Success');
    expect((await c.createUser({ username: 'dave', password: 'dave-pw-456' })).error_code).toBe('Success');
    const d = await c.describeUser({ username: 'dave', includeRoleInfo: true });
    expect(d.results[0]?.roles).toEqual([]);
  });
});
