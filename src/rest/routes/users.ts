import { z } from 'zod';
import type { RestRoute } from '../types.js';
import { principalName } from './admin-fields.js';

/**
 * `/v2/vectordb/users/*` → the credential and user-role RPCs (CreateCredential, UpdateCredential,
 * DeleteCredential, ListCredUsers, SelectUser, OperateUserRole). Passwords travel base64-encoded in those
 * requests, as the SDK's gRPC client and Milvus's REST handlers send them, so one handler serves both
 * doors. A password never appears in a validation message: zod reports only the field and the rule.
 */

/** Long enough for any passphrase; the handler applies the real length rules. */
const PASSWORD_MAX = 1024;
const password = (what: string) =>
  z
    .string({ required_error: `${what} is required`, invalid_type_error: `${what} must be a string` })
    .min(1, `${what} must not be empty`)
    .max(PASSWORD_MAX, `${what} must be at most ${PASSWORD_MAX} characters`);

const b64 = (s: string): string => Buffer.from(s, 'utf8').toString('base64');

const userName = principalName('userName');
const roleName = principalName('roleName');

const create: RestRoute<{ userName: string; password: string }> = {
  path: 'users/create',
  body: z.object({ userName, password: password('password') }),
  async run(b, call) {
    await call('CreateCredential', { username: b.userName, password: b64(b.password) });
    return {};
  },
};

const updatePassword: RestRoute<{ userName: string; password: string; newPassword: string }> = {
  path: 'users/update_password',
  body: z.object({ userName, password: password('password'), newPassword: password('newPassword') }),
  async run(b, call) {
    await call('UpdateCredential', { username: b.userName, oldPassword: b64(b.password), newPassword: b64(b.newPassword) });
    return {};
  },
};

const drop: RestRoute<{ userName: string }> = {
  path: 'users/drop',
  body: z.object({ userName }),
  async run(b, call) {
    await call('DeleteCredential', { username: b.userName });
    return {};
  },
};

/** Milvus answers the names of the user's roles. */
const describe: RestRoute<{ userName: string }> = {
  path: 'users/describe',
  body: z.object({ userName }),
  async run(b, call) {
    const r = (await call('SelectUser', { user: { name: b.userName }, include_role_info: true })) as {
      results?: { roles?: { name?: string }[] }[];
    };
    return (r.results ?? []).flatMap((u) => (u.roles ?? []).map((role) => String(role.name ?? '')));
  },
};

const list: RestRoute<object> = {
  path: 'users/list',
  body: z.object({}),
  async run(_b, call) {
    const r = (await call('ListCredUsers', {})) as { usernames?: string[] };
    return r.usernames ?? [];
  },
};

const grantRole: RestRoute<{ userName: string; roleName: string }> = {
  path: 'users/grant_role',
  body: z.object({ userName, roleName }),
  async run(b, call) {
    await call('OperateUserRole', { username: b.userName, role_name: b.roleName, type: 'AddUserToRole' });
    return {};
  },
};

const revokeRole: RestRoute<{ userName: string; roleName: string }> = {
  path: 'users/revoke_role',
  body: z.object({ userName, roleName }),
  async run(b, call) {
    await call('OperateUserRole', { username: b.userName, role_name: b.roleName, type: 'RemoveUserFromRole' });
    return {};
  },
};

export const userRoutes: readonly RestRoute[] = [create, updatePassword, drop, describe, list, grantRole, revokeRole];
