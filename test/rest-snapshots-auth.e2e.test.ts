import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { HttpClient } from '@zilliz/milvus2-sdk-node';
import { startTestServer, until, vectors, type TestServer } from './helpers.js';

/**
 * Users, roles and snapshot privileges over the RESTful API v2 with authentication on: the SDK's
 * HttpClient for users and roles (src/rest/routes/users.ts, roles.ts), fetch with a Bearer header for the
 * snapshot endpoints it has no methods for, a collection ReadOnly user refused the writes (403, code 1401).
 */

const ROOT_PASSWORD = 'Quiver-root-restx-41';
const BOB_PASSWORD = 'bob-Passw0rd-first';
const BOB_NEW_PASSWORD = 'bob-Passw0rd-second';
const CAROL_PASSWORD = 'carol-Passw0rd-ro';

interface Answer {
  readonly http: number;
  readonly code: number;
  readonly data?: unknown;
  readonly message?: string;
}

describe('REST v2 users, roles and snapshot privileges with auth on', () => {
  let t: TestServer;
  let base: string;
  let root: HttpClient;
  const logLines: string[] = [];
  const post = async (path: string, body: unknown, auth: string): Promise<Answer> => {
    const res = await fetch(`${base}/v2/vectordb/${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${auth}` },
      body: JSON.stringify(body),
    });
    return { http: res.status, ...((await res.json()) as { code: number; data?: unknown; message?: string }) };
  };
  const asRoot = (path: string, body: unknown) => post(path, body, `root:${ROOT_PASSWORD}`);
  const asCarol = (path: string, body: unknown) => post(path, body, `carol:${CAROL_PASSWORD}`);

  beforeAll(async () => {
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        logLines.push(chunk.toString());
        done();
      },
    });
    t = await startTestServer(
      { auth: true, rootPassword: ROOT_PASSWORD, authFailuresFree: 50, copyCheckIntervalMs: 100 },
      { log: pino({ level: 'debug' }, sink) },
    );
    base = `http://127.0.0.1:${t.server.httpPort}`;
    root = new HttpClient({ endpoint: base, username: 'root', password: ROOT_PASSWORD });
    // The quick form: an Int64 `id`, a `vector` field with an index, loaded.
    expect((await root.createCollection({ collectionName: 'books', dimension: 4 })).code).toBe(0);
    const data = vectors(10, 4, 5).map((vector, i) => ({ id: i, vector }));
    expect((await root.insert({ collectionName: 'books', data } as never)).code).toBe(0);
  });
  afterAll(async () => {
    await t?.close();
  });

  it('users: create, list, describe, update_password (old one stops working), drop through the HttpClient', async () => {
    expect((await root.createUser({ userName: 'bob', password: BOB_PASSWORD })).code).toBe(0);
    expect((await root.listUsers()).data).toEqual(expect.arrayContaining(['root', 'bob']));
    expect((await root.describeUser({ userName: 'bob' })).data).toEqual([]);
    const bob = new HttpClient({ endpoint: base, username: 'bob', password: BOB_PASSWORD });
    expect((await bob.listDatabases()).code).toBe(0);
    expect((await bob.updateUserPassword({ userName: 'bob', password: BOB_PASSWORD, newPassword: BOB_NEW_PASSWORD })).code).toBe(0);
    await expect(bob.listDatabases()).rejects.toMatchObject({ status: 401 });
    const bobNew = new HttpClient({ endpoint: base, username: 'bob', password: BOB_NEW_PASSWORD });
    expect((await bobNew.listDatabases()).code).toBe(0);
    expect((await root.dropUser({ userName: 'bob' })).code).toBe(0);
    await expect(bobNew.listDatabases()).rejects.toMatchObject({ status: 401 });
    expect((await root.listUsers()).data).not.toContain('bob');
    // A name with path characters never reaches the credential store.
    const bad = await asRoot('users/create', { userName: '../root', password: BOB_PASSWORD });
    expect(bad.code).toBe(1100);
    expect(bad.message).toContain('userName');
  });

  it('roles: a role with CollectionReadOnly on books, granted to carol, shows in describe', async () => {
    expect((await root.createRole({ roleName: 'books_reader' })).code).toBe(0);
    expect((await root.listRoles()).data).toContain('books_reader');
    const g = await asRoot('roles/grant_privilege_v2', {
      roleName: 'books_reader',
      privilege: 'CollectionReadOnly',
      dbName: 'default',
      collectionName: 'books',
    });
    expect(g.code, g.message).toBe(0);
    expect((await root.createUser({ userName: 'carol', password: CAROL_PASSWORD })).code).toBe(0);
    expect((await root.grantRoleToUser({ userName: 'carol', roleName: 'books_reader' })).code).toBe(0);
    expect((await root.describeUser({ userName: 'carol' })).data).toEqual(['books_reader']);
    const d = await root.describeRole({ roleName: 'books_reader' });
    expect(d.data).toEqual(
      expect.arrayContaining([expect.objectContaining({ objectType: 'Collection', objectName: 'books', privilege: 'CollectionReadOnly' })]),
    );
  });

  it('snapshots: the ReadOnly user lists and describes, and is refused create, restore and cancel (403, 1401)', async () => {
    expect((await asRoot('snapshots/create', { collectionName: 'books', snapshotName: 's1' })).code).toBe(0);
    expect((await asCarol('snapshots/list', { collectionName: 'books' })).data).toEqual(['s1']);
    expect((await asCarol('snapshots/describe', { collectionName: 'books', snapshotName: 's1' })).code).toBe(0);
    const create = await asCarol('snapshots/create', { collectionName: 'books', snapshotName: 's2' });
    expect([create.http, create.code]).toEqual([403, 1401]);
    expect(create.message).toContain('CreateSnapshot');
    const restore = await asCarol('snapshots/restore', { collectionName: 'books', snapshotName: 's1', targetCollectionName: 'books_c' });
    expect([restore.http, restore.code]).toEqual([403, 1401]);

    const r = await asRoot('snapshots/restore', { collectionName: 'books', snapshotName: 's1', targetCollectionName: 'books_r' });
    expect(r.code, r.message).toBe(0);
    const jobId = (r.data as { jobId: string }).jobId;
    await until(async () => ((await asRoot('jobs/snapshot/describe', { jobId })).data as { state: string }).state === 'RestoreSnapshotCompleted', {
      what: 'restore',
    });
    // Cancel needs RestoreSnapshot on the job's target: refused before the cancel runs.
    const cancel = await asCarol('jobs/snapshot/cancel', { jobId });
    expect([cancel.http, cancel.code]).toEqual([403, 1401]);
    // Diff reads the snapshot and the collection, which the ReadOnly group allows.
    const diff = await asCarol('snapshots/diff', { collectionName: 'books', from: 's1', to: 'now' });
    expect(diff.code, diff.message).toBe(0);
    expect(diff.data).toMatchObject({ inserted: 0, deleted: 0, updated: 0 });
  });

  it('no request log line holds a password', () => {
    const all = logLines.join('');
    expect(all).toContain('rest request');
    for (const pw of [ROOT_PASSWORD, BOB_PASSWORD, BOB_NEW_PASSWORD, CAROL_PASSWORD]) expect(all).not.toContain(pw);
  });
});
