import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DataType, MilvusClient } from '@zilliz/milvus2-sdk-node';
import { rawRpc } from '../src/cli/export-rpc.js';
import { startTestServer, vectors, type TestServer } from './helpers.js';

/**
 * The privilege matrix through the official SDK with auth on: each snapshot operation × each built-in
 * collection group (granted on one collection), allowed or refused with code 1401 as the issue defines:
 * ReadOnly lists and describes; ReadWrite also creates, pins and unpins; Admin also drops and restores;
 * export and external restore are cluster level, refused to all three. Every user may also write the
 * restore target database, so RestoreSnapshot is decided by the group alone.
 */

const ROOT_PASSWORD = 'matrix-Root-pw-1';
const GROUPS = ['CollectionReadOnly', 'CollectionReadWrite', 'CollectionAdmin'] as const;
type Group = (typeof GROUPS)[number];
const RW: readonly Group[] = ['CollectionReadWrite', 'CollectionAdmin'];

interface Outcome {
  readonly code: number;
  readonly reason: string;
}

function outcome(r: unknown): Outcome {
  const o = r as { status?: { code?: number; reason?: string }; code?: number; reason?: string };
  const st = o.status ?? o;
  return { code: Number(st.code ?? 0), reason: String(st.reason ?? '') };
}

/** ExportSnapshot / RestoreExternalSnapshot: the SDK has no methods for them; raw gRPC (the CLI's) with the caller's credentials. */
async function raw(
  port: number,
  method: 'ExportSnapshot' | 'RestoreExternalSnapshot',
  obj: Record<string, unknown>,
  user: string,
  password: string,
): Promise<Outcome> {
  return outcome(await rawRpc(port, method, obj, { username: user, password }));
}

describe('privilege matrix: snapshot operations × built-in collection groups (SDK, auth on)', () => {
  let t: TestServer;
  let admin: MilvusClient;
  const users = new Map<Group, MilvusClient>();
  const rootPins = new Map<Group, string>();

  beforeAll(async () => {
    t = await startTestServer({ auth: true, rootPassword: ROOT_PASSWORD, autoCompaction: false } as never);
    admin = new MilvusClient({
      address: `127.0.0.1:${t.server.port}`,
      username: 'root',
      password: ROOT_PASSWORD,
      telemetry: { enabled: false },
      logLevel: 'error',
    } as never);
    await admin.connectPromise;
    const ok = (r: unknown) => expect(outcome(r)).toEqual({ code: 0, reason: '' });
    ok(await admin.createDatabase({ db_name: 'dst' }));
    ok(
      await admin.createCollection({
        collection_name: 'c1',
        fields: [
          { name: 'id', data_type: DataType.Int64, is_primary_key: true },
          { name: 'v', data_type: DataType.FloatVector, dim: 4 },
        ],
      }),
    );
    ok(await admin.insert({ collection_name: 'c1', data: vectors(20, 4).map((v, i) => ({ id: i, v })) }));
    ok(await admin.createSnapshot({ collection_name: 'c1', snapshot_name: 'base' }));
    for (const g of GROUPS) {
      const user = `u_${g}`;
      const role = `r_${g}`;
      ok(await admin.createUser({ username: user, password: `pw-${g}-123` }));
      ok(await admin.createRole({ roleName: role }));
      ok(await admin.grantPrivilegeV2({ role, privilege: g, db_name: 'default', collection_name: 'c1' } as never));
      ok(await admin.grantPrivilegeV2({ role, privilege: 'DatabaseAdmin', db_name: 'dst', collection_name: '*' } as never));
      ok(await admin.addUserToRole({ username: user, roleName: role }));
      ok(await admin.createSnapshot({ collection_name: 'c1', snapshot_name: `drop_${g}` }));
      const pin = await admin.pinSnapshotData({ collection_name: 'c1', snapshot_name: 'base', ttl_seconds: 600 });
      ok(pin);
      rootPins.set(g, String((pin as unknown as { pin_id: string }).pin_id));
      const c = new MilvusClient({
        address: `127.0.0.1:${t.server.port}`,
        username: user,
        password: `pw-${g}-123`,
        telemetry: { enabled: false },
        logLevel: 'error',
      } as never);
      await c.connectPromise;
      users.set(g, c);
    }
  });

  afterAll(async () => {
    for (const c of users.values()) await c.closeConnection();
    await admin?.closeConnection();
    await t?.close();
  });

  const ops: Record<string, { allowed: readonly Group[]; run: (c: MilvusClient, g: Group) => Promise<Outcome> }> = {
    ListSnapshots: { allowed: GROUPS, run: async (c) => outcome(await c.listSnapshots({ collection_name: 'c1' })) },
    DescribeSnapshot: { allowed: GROUPS, run: async (c) => outcome(await c.describeSnapshot({ collection_name: 'c1', snapshot_name: 'base' })) },
    CreateSnapshot: { allowed: RW, run: async (c, g) => outcome(await c.createSnapshot({ collection_name: 'c1', snapshot_name: `made_${g}` })) },
    PinSnapshotData: { allowed: RW, run: async (c) => outcome(await c.pinSnapshotData({ collection_name: 'c1', snapshot_name: 'base', ttl_seconds: 60 })) },
    UnpinSnapshotData: { allowed: RW, run: async (c, g) => outcome(await c.unpinSnapshotData({ pin_id: rootPins.get(g)! } as never)) },
    DropSnapshot: {
      allowed: ['CollectionAdmin'],
      run: async (c, g) => outcome(await c.dropSnapshot({ collection_name: 'c1', snapshot_name: `drop_${g}` })),
    },
    RestoreSnapshot: {
      allowed: ['CollectionAdmin'],
      run: async (c, g) =>
        outcome(
          await c.restoreSnapshot({
            snapshot_name: 'base',
            source_collection_name: 'c1',
            target_db_name: 'dst',
            target_collection_name: `restored_${g}`,
          } as never),
        ),
    },
    ExportSnapshot: {
      allowed: [],
      run: (_c, g) =>
        raw(t.server.port, 'ExportSnapshot', { collection_name: 'c1', name: 'base', target_s3_path: 'file:///tmp/nowhere' }, `u_${g}`, `pw-${g}-123`),
    },
    RestoreExternalSnapshot: {
      allowed: [],
      run: (_c, g) =>
        raw(
          t.server.port,
          'RestoreExternalSnapshot',
          { target_collection_name: `ext_${g}`, snapshot_metadata_uri: 'file:///tmp/nowhere' },
          `u_${g}`,
          `pw-${g}-123`,
        ),
    },
  };

  for (const [op, { allowed, run }] of Object.entries(ops)) {
    for (const g of GROUPS) {
      const expected = allowed.includes(g);
      it(`${op} × ${g}: ${expected ? 'allowed' : 'denied (1401)'}`, async () => {
        const r = await run(users.get(g)!, g);
        if (expected) {
          expect(r).toEqual({ code: 0, reason: '' });
        } else {
          expect(r.code).toBe(1401);
          expect(r.reason).toContain(op === 'RestoreSnapshot' ? 'RestoreSnapshot' : op === 'UnpinSnapshotData' ? 'UnpinSnapshotData' : op);
        }
      });
    }
  }

  it('attack through the SDK: an alias to a collection the user may not read is refused', async () => {
    expect(
      outcome(
        await admin.createCollection({
          collection_name: 'secret',
          fields: [
            { name: 'id', data_type: DataType.Int64, is_primary_key: true },
            { name: 'v', data_type: DataType.FloatVector, dim: 4 },
          ],
        }),
      ).code,
    ).toBe(0);
    expect(outcome(await admin.createAlias({ collection_name: 'secret', alias: 'innocent' })).code).toBe(0);
    const reader = users.get('CollectionReadOnly')!;
    const r = outcome(await reader.query({ collection_name: 'innocent', filter: 'id >= 0', output_fields: ['id'] }));
    expect(r.code).toBe(1401);
    expect(r.reason).toMatch(/Query on Collection "secret"/);
  });

  it('attack through the SDK: a role granted on one database is refused in another', async () => {
    expect(outcome(await admin.createDatabase({ db_name: 'other' })).code).toBe(0);
    const schema = [
      { name: 'id', data_type: DataType.Int64, is_primary_key: true },
      { name: 'v', data_type: DataType.FloatVector, dim: 4 },
    ];
    expect(outcome(await admin.createCollection({ db_name: 'other', collection_name: 'c1', fields: schema })).code).toBe(0);
    // The ReadWrite user may insert into default.c1, not into other.c1 (by db_name or by the connection's database).
    const rw = users.get('CollectionReadWrite')!;
    expect(outcome(await rw.insert({ collection_name: 'c1', data: [{ id: 100, v: [0, 0, 0, 1] }] })).code).toBe(0);
    const r = outcome(await rw.insert({ db_name: 'other', collection_name: 'c1', data: [{ id: 101, v: [0, 0, 0, 1] }] }));
    expect(r.code).toBe(1401);
    expect(r.reason).toMatch(/Insert on Collection "c1" in database "other"/);
  });

  it('attack through the SDK: a restore into a database the user may not write is refused', async () => {
    const a = users.get('CollectionAdmin')!;
    const r = outcome(
      await a.restoreSnapshot({ snapshot_name: 'base', source_collection_name: 'c1', target_db_name: 'other', target_collection_name: 'stolen' } as never),
    );
    expect(r.code).toBe(1401);
    expect(r.reason).toMatch(/CreateCollection on Collection "stolen" in database "other"/);
  });

  it('attack through the SDK: a user with ManageOwnership cannot grant itself more', async () => {
    const ok = (x: unknown) => expect(outcome(x)).toEqual({ code: 0, reason: '' });
    ok(await admin.createUser({ username: 'owner', password: 'owner-pw-123' }));
    ok(await admin.createRole({ roleName: 'owners' }));
    ok(await admin.grantPrivilegeV2({ role: 'owners', privilege: 'ManageOwnership', db_name: '*', collection_name: '*' } as never));
    ok(await admin.addUserToRole({ username: 'owner', roleName: 'owners' }));
    const owner = new MilvusClient({
      address: `127.0.0.1:${t.server.port}`,
      username: 'owner',
      password: 'owner-pw-123',
      telemetry: { enabled: false },
      logLevel: 'error',
    } as never);
    await owner.connectPromise;
    try {
      for (const attempt of [
        () => owner.grantPrivilegeV2({ role: 'owners', privilege: 'CollectionAdmin', db_name: 'default', collection_name: 'c1' } as never),
        () => owner.grantPrivilegeV2({ role: 'public', privilege: 'Search', db_name: 'default', collection_name: 'c1' } as never),
        () => owner.addUserToRole({ username: 'owner', roleName: 'admin' }),
        () => owner.addUserToRole({ username: 'owner', roleName: 'r_CollectionAdmin' }),
      ]) {
        expect(outcome(await attempt()).code).toBe(1401);
      }
      expect(outcome(await owner.search({ collection_name: 'c1', data: [0, 0, 0, 1], limit: 1 })).code).toBe(1401);
    } finally {
      await owner.closeConnection();
    }
  });
});
