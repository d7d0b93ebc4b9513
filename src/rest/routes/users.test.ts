import { describe, expect, it } from 'vitest';
import { refusal, runRoute } from './fake-call.test-util.js';
import { userRoutes } from './users.js';

const b64 = (s: string) => Buffer.from(s).toString('base64');

describe('REST users routes', () => {
  it('create sends CreateCredential with the password base64-encoded, as the SDK does', async () => {
    const { data, calls } = await runRoute(userRoutes, 'users/create', { userName: 'alice', password: 'S3cret!pw' });
    expect(calls).toEqual([{ method: 'CreateCredential', req: { username: 'alice', password: b64('S3cret!pw') } }]);
    expect(data).toEqual({});
  });

  it('update_password sends the old and new passwords, both encoded', async () => {
    const { calls } = await runRoute(userRoutes, 'users/update_password', { userName: 'alice', password: 'old-pw-1', newPassword: 'new-pw-2' });
    expect(calls).toEqual([{ method: 'UpdateCredential', req: { username: 'alice', oldPassword: b64('old-pw-1'), newPassword: b64('new-pw-2') } }]);
  });

  it('drop, grant_role and revoke_role translate to DeleteCredential and OperateUserRole', async () => {
    expect((await runRoute(userRoutes, 'users/drop', { userName: 'alice' })).calls).toEqual([{ method: 'DeleteCredential', req: { username: 'alice' } }]);
    expect((await runRoute(userRoutes, 'users/grant_role', { userName: 'alice', roleName: 'reader' })).calls).toEqual([
      { method: 'OperateUserRole', req: { username: 'alice', role_name: 'reader', type: 'AddUserToRole' } },
    ]);
    expect((await runRoute(userRoutes, 'users/revoke_role', { userName: 'alice', roleName: 'reader' })).calls).toEqual([
      { method: 'OperateUserRole', req: { username: 'alice', role_name: 'reader', type: 'RemoveUserFromRole' } },
    ]);
  });

  it('describe answers the role names of SelectUser; list the user names of ListCredUsers', async () => {
    const d = await runRoute(
      userRoutes,
      'users/describe',
      { userName: 'alice' },
      {
        SelectUser: { results: [{ user: { name: 'alice' }, roles: [{ name: 'reader' }, { name: 'writer' }] }] },
      },
    );
    expect(d.calls).toEqual([{ method: 'SelectUser', req: { user: { name: 'alice' }, include_role_info: true } }]);
    expect(d.data).toEqual(['reader', 'writer']);
    const l = await runRoute(userRoutes, 'users/list', {}, { ListCredUsers: { usernames: ['root', 'alice'] } });
    expect(l.calls).toEqual([{ method: 'ListCredUsers', req: {} }]);
    expect(l.data).toEqual(['root', 'alice']);
  });

  it('refuses names with path characters and missing fields, naming the field and never echoing a password', () => {
    for (const userName of ['../root', 'a/b', 'a\\b', 'x..y', ' alice', '']) {
      expect(refusal(userRoutes, 'users/create', { userName, password: 'pw-123456' }).fields).toContain('userName');
    }
    expect(refusal(userRoutes, 'users/create', { userName: 'alice' }).fields).toEqual(['password']);
    expect(refusal(userRoutes, 'users/update_password', { userName: 'alice', password: 'x' }).fields).toEqual(['newPassword']);
    expect(refusal(userRoutes, 'users/grant_role', { userName: 'alice', roleName: 'r/../admin' }).fields).toEqual(['roleName']);
    const secret = 'x'.repeat(2000);
    const r = refusal(userRoutes, 'users/create', { userName: 'alice', password: secret });
    expect(r.fields).toEqual(['password']);
    expect(r.messages.join(' ')).not.toContain('xxxx');
  });
});
