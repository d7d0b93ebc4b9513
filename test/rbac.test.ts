import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { isQuiverError, QuiverError } from '../src/common/errors.js';
import { MemoryMetaKV } from '../src/meta/memory-kv.js';
import { RbacAuthorizer, RbacStore, METHOD_RULES, BUILTIN_GROUPS, PRIVILEGE_LEVELS, type ObjectResolver } from '../src/auth/index.js';
import { PROTO_DEVIATIONS } from '../src/auth/rbac/privileges.js';
import type { UserDirectory } from '../src/auth/types.js';
import { rbacHandlers, withVisibilityFilters } from '../src/proxy/rbac-service.js';
import type { CallContext } from '../src/proxy/milvus-service.js';
import { root } from '../src/proxy/proto.js';
import { servedRpcs } from '../src/wiring/rpc-coverage.js';

/** A UserDirectory stand-in (authn's credential store implements the real one). */
class FakeDirectory implements UserDirectory {
  readonly users = new Set<string>(['root']);
  readonly #listeners: ((u: string) => void | Promise<void>)[] = [];
  has(user: string): boolean {
    return this.users.has(user);
  }
  list(): readonly string[] {
    return [...this.users];
  }
  onDeleted(listener: (user: string) => void | Promise<void>): () => void {
    this.#listeners.push(listener);
    return () => this.#listeners.splice(this.#listeners.indexOf(listener), 1);
  }
  async delete(user: string): Promise<void> {
    this.users.delete(user);
    for (const l of this.#listeners) await l(user);
  }
}

/** Aliases: `a_secret` → `secret`, `a_open` → `open` (in every database). */
const resolver: ObjectResolver = {
  collectionOf: (_db, name) => ({ a_secret: 'secret', a_open: 'open' })[name] ?? name,
  pinTarget: (id) => (id === 7 ? { db: 'db1', collection: 'c1' } : undefined),
};

async function setup() {
  const kv = new MemoryMetaKV();
  const directory = new FakeDirectory();
  for (const u of ['alice', 'bob', 'carol']) directory.users.add(u);
  const store = new RbacStore({ kv, directory });
  await store.init();
  const authorizer = new RbacAuthorizer({ store, resolver });
  const handlers = rbacHandlers({ store, authorizer, directory });
  const call = async (method: string, req: unknown, user?: string, dbName = 'default') => {
    // What the gRPC gate does: authorize, then run the handler.
    authorizer.authorize(user, method, req, dbName);
    const ctx: CallContext = { dbName, requestId: 't', user };
    return handlers[method]!(req, ctx);
  };
  const grantV2 = (role: string, privilege: string, db: string, collection: string, user?: string) =>
    call(
      'OperatePrivilegeV2',
      { role: { name: role }, grantor: { privilege: { name: privilege } }, type: 'Grant', db_name: db, collection_name: collection },
      user,
    );
  const bind = (user: string, role: string, caller?: string) => call('OperateUserRole', { username: user, role_name: role, type: 'AddUserToRole' }, caller);
  return { kv, directory, store, authorizer, handlers, call, grantV2, bind };
}

function denied(fn: () => unknown): QuiverError {
  try {
    fn();
  } catch (e) {
    expect(isQuiverError(e, 'PrivilegeNotPermitted'), String(e)).toBe(true);
    expect((e as QuiverError).code).toBe(1401);
    return e as QuiverError;
  }
  throw new Error('expected PrivilegeNotPermitted, but the call was allowed');
}

async function deniedAsync(p: Promise<unknown>): Promise<QuiverError> {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(isQuiverError(e, 'PrivilegeNotPermitted'), String(e)).toBe(true);
  return e as QuiverError;
}

describe('privilege catalogue', () => {
  it('has a rule for every method the server serves (so a new RPC cannot slip through unchecked)', () => {
    const credentialRpcs = ['CreateCredential', 'UpdateCredential', 'DeleteCredential', 'ListCredUsers'];
    const missing = [...servedRpcs(), ...credentialRpcs].filter((m) => METHOD_RULES[m] === undefined);
    expect(missing).toEqual([]);
  });

  it('checks the privilege the Milvus proto declares, except the documented deviations', () => {
    const svc = root.lookupService('milvus.proto.milvus.MilvusService');
    svc.resolveAll();
    const mismatches: string[] = [];
    for (const [method, rule] of Object.entries(METHOD_RULES)) {
      const opts = svc.methods[method]?.resolvedRequestType?.options as Record<string, unknown> | undefined;
      const declared = opts?.['(common.privilege_ext_obj).object_privilege'];
      if (typeof declared !== 'string' || rule.kind !== 'checks') continue;
      const ours = rule.checks({ collection_name: 'c', collectionName: 'c', alias: 'c', pin_id: '1' }, 'default', resolver)[0]?.privilege;
      if (`Privilege${ours}` !== declared && PROTO_DEVIATIONS[method] === undefined) mismatches.push(`${method}: ${ours} vs ${declared}`);
    }
    expect(mismatches).toEqual([]);
    for (const m of Object.keys(PROTO_DEVIATIONS)) expect(METHOD_RULES[m], m).toBeDefined();
  });

  it('is documented in docs/RBAC.md: every method and every built-in group', () => {
    const doc = readFileSync(new URL('../docs/RBAC.md', import.meta.url), 'utf8');
    for (const m of Object.keys(METHOD_RULES)) expect(doc, m).toContain(`| ${m} |`);
    for (const [g, ps] of Object.entries(BUILTIN_GROUPS)) expect(doc, g).toContain(`| ${g} | ${ps.join(', ')} |`);
  });

  it('holds snapshot privileges in the built-in collection groups from the start', () => {
    const ro = BUILTIN_GROUPS['CollectionReadOnly']!;
    const rw = BUILTIN_GROUPS['CollectionReadWrite']!;
    const admin = BUILTIN_GROUPS['CollectionAdmin']!;
    expect(ro).toEqual(expect.arrayContaining(['ListSnapshots', 'DescribeSnapshot']));
    expect(ro).not.toContain('CreateSnapshot');
    expect(rw).toEqual(expect.arrayContaining(['ListSnapshots', 'DescribeSnapshot', 'CreateSnapshot', 'PinSnapshotData', 'UnpinSnapshotData']));
    expect(rw).not.toContain('DropSnapshot');
    expect(rw).not.toContain('RestoreSnapshot');
    expect(admin).toEqual(expect.arrayContaining([...rw, 'DropSnapshot', 'RestoreSnapshot']));
    for (const p of ['ExportSnapshot', 'RestoreExternalSnapshot']) {
      expect(PRIVILEGE_LEVELS.get(p)).toBe('Cluster');
      expect(admin).not.toContain(p);
    }
  });
});

describe('RBAC store', () => {
  it('persists roles, bindings, grants and groups, and reloads them', async () => {
    const { kv, store, call, grantV2, bind } = await setup();
    await call('CreateRole', { entity: { name: 'reader' } });
    await grantV2('reader', 'CollectionReadOnly', 'db1', 'c1');
    await bind('alice', 'reader');
    await call('CreatePrivilegeGroup', { group_name: 'snaps' });
    await call('OperatePrivilegeGroup', { group_name: 'snaps', privileges: [{ name: 'ListSnapshots' }], type: 'AddPrivilegesToGroup' });
    const again = new RbacStore({ kv });
    await again.init();
    expect(again.rolesOf('alice')).toEqual(['reader']);
    expect(again.grantsOf('reader')).toEqual(store.grantsOf('reader'));
    expect(again.groupPrivileges('snaps')).toEqual(['ListSnapshots']);
  });

  it('two stores on one MetaKV never lose each other’s writes (compare-and-set, re-read on a lost race)', async () => {
    const kv = new MemoryMetaKV();
    const a = new RbacStore({ kv });
    const b = new RbacStore({ kv });
    await a.init();
    await b.init();
    await a.createRole('r');
    await expect(b.createRole('r')).rejects.toThrow(/already exists/);
    await b.reload();
    await Promise.all([
      a.grant({ role: 'r', type: 'Collection', name: 'c1', db: 'default', privilege: 'Search', grantor: '' }),
      b.grant({ role: 'r', type: 'Collection', name: 'c2', db: 'default', privilege: 'Query', grantor: '' }),
    ]);
    const c = new RbacStore({ kv });
    await c.init();
    expect(
      c
        .grantsOf('r')
        .map((g) => g.name)
        .sort(),
    ).toEqual(['c1', 'c2']);
  });

  it('refuses to drop built-in roles and roles still granted (unless force_drop), as Milvus', async () => {
    const { store, call, grantV2, bind } = await setup();
    await expect(call('DropRole', { role_name: 'admin' })).rejects.toThrow(/built-in/);
    await expect(call('DropRole', { role_name: 'public' })).rejects.toThrow(/built-in/);
    await call('CreateRole', { entity: { name: 'w' } });
    await grantV2('w', 'Insert', 'default', 'c1');
    await bind('bob', 'w');
    await expect(call('DropRole', { role_name: 'w' })).rejects.toThrow(/still holds 1 grant/);
    await call('DropRole', { role_name: 'w', force_drop: true });
    expect(store.hasRole('w')).toBe(false);
    expect(store.rolesOf('bob')).toEqual([]);
  });

  it('drops a deleted user’s bindings, so a new user of the same name starts with no roles', async () => {
    const { directory, store, call, bind } = await setup();
    await call('CreateRole', { entity: { name: 'r' } });
    await bind('carol', 'r');
    await directory.delete('carol');
    expect(store.rolesOf('carol')).toEqual([]);
    await expect(bind('carol', 'r')).rejects.toThrow(/does not exist/);
  });

  it('refuses to drop a privilege group still granted, and to alter built-in groups', async () => {
    const { call, grantV2 } = await setup();
    await call('CreatePrivilegeGroup', { group_name: 'g' });
    await call('CreateRole', { entity: { name: 'r' } });
    await grantV2('r', 'g', 'default', 'c1');
    await expect(call('DropPrivilegeGroup', { group_name: 'g' })).rejects.toThrow(/still granted/);
    await expect(
      call('OperatePrivilegeGroup', { group_name: 'CollectionAdmin', privileges: [{ name: 'Insert' }], type: 'AddPrivilegesToGroup' }),
    ).rejects.toThrow(/built-in/);
    await expect(call('CreatePrivilegeGroup', { group_name: 'Search' })).rejects.toThrow(/built-in/);
    await expect(call('CreatePrivilegeGroup', { group_name: '../etc' })).rejects.toThrow(/invalid privilege group name/);
  });

  it('validates V2 levels and V1 object types', async () => {
    const { call, grantV2 } = await setup();
    await call('CreateRole', { entity: { name: 'r' } });
    await expect(grantV2('r', 'ClusterAdmin', 'db1', '*')).rejects.toThrow(/cluster-level/);
    await expect(grantV2('r', 'DatabaseAdmin', 'db1', 'c1')).rejects.toThrow(/database-level/);
    await expect(grantV2('r', 'NoSuchThing', 'db1', 'c1')).rejects.toThrow(/neither a privilege/);
    const v1 = (object: string, objectName: string, privilege: string) =>
      call('OperatePrivilege', {
        entity: { role: { name: 'r' }, object: { name: object }, object_name: objectName, grantor: { privilege: { name: privilege } } },
        type: 'Grant',
      });
    await expect(v1('Collection', 'c1', 'CreateDatabase')).rejects.toThrow(/cluster-level/);
    await expect(v1('Global', 'c1', 'CreateCollection')).rejects.toThrow(/object name \*/);
    await expect(v1('Bucket', '*', 'Search')).rejects.toThrow(/object type/);
    await v1('Collection', 'c1', 'Search');
    const res = await call('SelectGrant', { entity: { role: { name: 'r' }, db_name: '*' } });
    expect(res.entities).toEqual([
      {
        role: { name: 'r' },
        object: { name: 'Collection' },
        object_name: 'c1',
        db_name: 'default',
        grantor: { user: { name: '' }, privilege: { name: 'Search' } },
      },
    ]);
  });

  it('backs up and restores roles, bindings, grants and groups', async () => {
    const a = await setup();
    await a.call('CreateRole', { entity: { name: 'r' } });
    await a.call('CreatePrivilegeGroup', { group_name: 'g' });
    await a.call('OperatePrivilegeGroup', { group_name: 'g', privileges: [{ name: 'Search' }, { name: 'Query' }], type: 'AddPrivilegesToGroup' });
    await a.grantV2('r', 'g', 'db1', 'c1');
    await a.grantV2('r', 'DatabaseReadOnly', 'db1', '*');
    await a.bind('alice', 'r');
    const backup = await a.call('BackupRBAC', {});
    const b = await setup();
    await b.call('RestoreRBAC', { RBAC_meta: backup.RBAC_meta });
    expect(b.store.rolesOf('alice')).toEqual(['r']);
    expect(b.store.grantsOf('r')).toEqual(a.store.grantsOf('r'));
    expect(b.store.groupPrivileges('g')).toEqual(['Search', 'Query']);
    // A second restore conflicts as a whole and writes nothing.
    await expect(b.call('RestoreRBAC', { RBAC_meta: backup.RBAC_meta })).rejects.toThrow(/already exists/);
  });
});

describe('authorizer', () => {
  it('lets root and the admin role do everything, and auth-off calls through', async () => {
    const { authorizer, bind } = await setup();
    authorizer.authorize(undefined, 'DropDatabase', { db_name: 'x' }, 'default');
    authorizer.authorize('root', 'DropDatabase', { db_name: 'x' }, 'default');
    denied(() => authorizer.authorize('alice', 'DropDatabase', { db_name: 'x' }, 'default'));
    await bind('alice', 'admin');
    authorizer.authorize('alice', 'DropDatabase', { db_name: 'x' }, 'default');
  });

  it('fails closed for a method without a rule, and names privilege, object and database on denial', async () => {
    const { authorizer } = await setup();
    denied(() => authorizer.authorize('alice', 'SomeNewRpc', {}, 'default'));
    const e = denied(() => authorizer.authorize('alice', 'Search', { collection_name: 'c1' }, 'db1'));
    expect(e.message).toMatch(/Search/);
    expect(e.message).toMatch(/Collection "c1"/);
    expect(e.message).toMatch(/database "db1"/);
    authorizer.authorize('alice', 'Connect', {}, 'default');
    // public's defaults (as Milvus): DescribeCollection, ShowCollections, IndexDetail.
    authorizer.authorize('alice', 'DescribeCollection', { collection_name: 'c1' }, 'db1');
    authorizer.authorize('alice', 'DescribeIndex', { collection_name: 'c1' }, 'db1');
  });

  it('attack: a role granted on one database does not reach another (not through db_name either)', async () => {
    const { authorizer, call, grantV2, bind } = await setup();
    await call('CreateRole', { entity: { name: 'r' } });
    await grantV2('r', 'CollectionReadWrite', 'db1', '*');
    await bind('alice', 'r');
    authorizer.authorize('alice', 'Insert', { collection_name: 'c1' }, 'db1');
    denied(() => authorizer.authorize('alice', 'Insert', { collection_name: 'c1' }, 'db2'));
    // The connection says db1 but the request names db2: the handler would act on db2, so db2 is checked.
    denied(() => authorizer.authorize('alice', 'Insert', { collection_name: 'c1', db_name: 'db2' }, 'db1'));
  });

  it('attack: an alias (or a snapshot view) is checked as the collection it names', async () => {
    const { authorizer, call, grantV2, bind } = await setup();
    await call('CreateRole', { entity: { name: 'r' } });
    await grantV2('r', 'CollectionReadOnly', 'default', 'open');
    await bind('alice', 'r');
    authorizer.authorize('alice', 'Search', { collection_name: 'a_open' }, 'default');
    authorizer.authorize('alice', 'Query', { collection_name: 'open@snap1' }, 'default');
    denied(() => authorizer.authorize('alice', 'Search', { collection_name: 'a_secret' }, 'default'));
    denied(() => authorizer.authorize('alice', 'Query', { collection_name: 'secret@snap1' }, 'default'));
    denied(() => authorizer.authorize('alice', 'DescribeAlias', { alias: 'a_secret' }, 'default'));
    authorizer.authorize('alice', 'DescribeAlias', { alias: 'a_open' }, 'default');
  });

  it('attack: restore needs RestoreSnapshot on the source AND CreateCollection in the target database', async () => {
    const { authorizer, call, grantV2, bind } = await setup();
    await call('CreateRole', { entity: { name: 'r' } });
    await grantV2('r', 'CollectionAdmin', 'db1', 'c1');
    await bind('alice', 'r');
    const restore = (targetDb: string) => ({ name: 's1', collection_name: 'c1', target_db_name: targetDb, target_collection_name: 'copy' });
    const e = denied(() => authorizer.authorize('alice', 'RestoreSnapshot', restore('db2'), 'db1'));
    expect(e.message).toMatch(/CreateCollection.*database "db2"/);
    await grantV2('r', 'DatabaseAdmin', 'db2', '*');
    authorizer.authorize('alice', 'RestoreSnapshot', restore('db2'), 'db1');
    // Unpin is checked on the pin's collection (pin 7 belongs to db1.c1).
    authorizer.authorize('alice', 'UnpinSnapshotData', { pin_id: '7' }, 'default');
    denied(() => authorizer.authorize('alice', 'UnpinSnapshotData', { pin_id: '8' }, 'default'));
  });

  it('attack: a user cannot grant itself privileges, nor hand out what it does not hold', async () => {
    const { store, call, grantV2, bind } = await setup();
    await call('CreateRole', { entity: { name: 'owner' } });
    await call('CreateRole', { entity: { name: 'other' } });
    await grantV2('owner', 'ManageOwnership', '*', '*');
    await grantV2('owner', 'Search', 'default', 'c1');
    await bind('bob', 'owner');
    // To its own role, to public (everyone's role), or itself into admin / another role: refused.
    await deniedAsync(grantV2('owner', 'Insert', 'default', 'c1', 'bob'));
    await deniedAsync(grantV2('public', 'Insert', 'default', 'c1', 'bob'));
    await deniedAsync(bind('bob', 'admin', 'bob'));
    await deniedAsync(bind('bob', 'other', 'bob'));
    await deniedAsync(bind('alice', 'admin', 'bob'));
    // To another role: only what bob holds himself.
    await deniedAsync(grantV2('other', 'Insert', 'default', 'c1', 'bob'));
    await deniedAsync(grantV2('other', 'Search', 'default', '*', 'bob'));
    await grantV2('other', 'Search', 'default', 'c1', 'bob');
    expect(store.grantsOf('other').map((g) => `${g.privilege}@${g.name}:${g.grantor}`)).toEqual(['Search@c1:bob']);
    // Without ManageOwnership, no granting at all.
    await deniedAsync(grantV2('other', 'Search', 'default', 'c1', 'alice'));
  });

  it('lets a user read itself and its own roles’ grants without SelectUser/SelectOwnership', async () => {
    const { authorizer, call, bind } = await setup();
    await call('CreateRole', { entity: { name: 'r' } });
    await bind('alice', 'r');
    authorizer.authorize('alice', 'SelectUser', { user: { name: 'alice' }, include_role_info: true }, 'default');
    denied(() => authorizer.authorize('alice', 'SelectUser', { user: { name: 'bob' } }, 'default'));
    authorizer.authorize('alice', 'SelectGrant', { entity: { role: { name: 'r' } } }, 'default');
    denied(() => authorizer.authorize('alice', 'SelectGrant', { entity: { role: { name: 'admin' } } }, 'default'));
    authorizer.authorize('alice', 'UpdateCredential', { username: 'alice' }, 'default');
    denied(() => authorizer.authorize('alice', 'UpdateCredential', { username: 'bob' }, 'default'));
  });

  it('filters ListDatabases and ShowCollections to what the caller holds grants on (once public’s defaults are revoked)', async () => {
    const { authorizer, store, call, grantV2, bind } = await setup();
    const inner = {
      ListDatabases: () => ({ db_names: ['default', 'db1', 'db2'], created_timestamp: ['1', '2', '3'], db_ids: ['1', '2', '3'] }),
      ShowCollections: () => ({ collection_names: ['c1', 'c2'], collection_ids: ['10', '20'], created_timestamps: ['1', '2'] }),
    };
    const h = withVisibilityFilters(inner, authorizer);
    const ctx = (user?: string): CallContext => ({ dbName: 'db1', requestId: 't', user });
    // public's defaults are on every database and collection: everyone sees everything, as in Milvus.
    expect((await h['ListDatabases']!({}, ctx('alice'))).db_names).toEqual(['default', 'db1', 'db2']);
    for (const g of store.grantsOf('public')) await store.revoke(g);
    await call('CreateRole', { entity: { name: 'r' } });
    await grantV2('r', 'CollectionReadOnly', 'db1', 'c2');
    await bind('alice', 'r');
    expect(await h['ListDatabases']!({}, ctx('alice'))).toEqual({ db_names: ['db1'], created_timestamp: ['2'], db_ids: ['2'] });
    expect(await h['ShowCollections']!({}, ctx('alice'))).toEqual({ collection_names: ['c2'], collection_ids: ['20'], created_timestamps: ['2'] });
    expect((await h['ShowCollections']!({}, ctx('root'))).collection_names).toEqual(['c1', 'c2']);
    expect((await h['ListDatabases']!({}, ctx(undefined))).db_names).toHaveLength(3);
    expect((await h['ListDatabases']!({}, ctx('bob'))).db_names).toEqual([]);
  });

  it('privilege matrix (unit): each snapshot operation × each built-in collection group', async () => {
    const kv = new MemoryMetaKV();
    const store = new RbacStore({ kv });
    await store.init();
    // Every pin belongs to default.c1 here.
    const authorizer = new RbacAuthorizer({ store, resolver: { ...resolver, pinTarget: () => ({ db: 'default', collection: 'c1' }) } });
    const groups = ['CollectionReadOnly', 'CollectionReadWrite', 'CollectionAdmin'] as const;
    for (const g of groups) {
      await store.createRole(g.toLowerCase());
      await store.grant({ role: g.toLowerCase(), type: 'Collection', name: 'c1', db: 'default', privilege: g, grantor: '' });
      // Write access to the restore target database for all, so the group alone decides RestoreSnapshot.
      await store.grant({ role: g.toLowerCase(), type: 'Global', name: '*', db: 'dst', privilege: 'DatabaseAdmin', grantor: '' });
      await store.bindUser(`u_${g}`, g.toLowerCase());
    }
    const rw = ['CollectionReadWrite', 'CollectionAdmin'];
    const ops: Record<string, { req: object; allowed: readonly string[] }> = {
      ListSnapshots: { req: { collection_name: 'c1' }, allowed: groups },
      DescribeSnapshot: { req: { collection_name: 'c1', name: 's' }, allowed: groups },
      CreateSnapshot: { req: { collection_name: 'c1', name: 's' }, allowed: rw },
      PinSnapshotData: { req: { collection_name: 'c1', name: 's' }, allowed: rw },
      UnpinSnapshotData: { req: { pin_id: '9' }, allowed: rw },
      DropSnapshot: { req: { collection_name: 'c1', name: 's' }, allowed: ['CollectionAdmin'] },
      RestoreSnapshot: { req: { collection_name: 'c1', name: 's', target_db_name: 'dst', target_collection_name: 'c1' }, allowed: ['CollectionAdmin'] },
      ExportSnapshot: { req: { collection_name: 'c1', name: 's' }, allowed: [] },
      RestoreExternalSnapshot: { req: { target_collection_name: 'c1' }, allowed: [] },
    };
    for (const [op, { req, allowed }] of Object.entries(ops)) {
      for (const g of groups) {
        let ok = true;
        try {
          authorizer.authorize(`u_${g}`, op, req, 'default');
        } catch (e) {
          expect(isQuiverError(e, 'PrivilegeNotPermitted')).toBe(true);
          ok = false;
        }
        expect(ok, `${op} × ${g}`).toBe(allowed.includes(g));
      }
    }
  });
});
