import type { IncomingMessage, ServerResponse } from 'node:http';
import { ROOT_USER, type CallerCredentials } from '../auth/types.js';
import { quiverError } from '../common/errors.js';
import type { CallContext, Handler } from './milvus-service.js';
import { OK, statusOf } from './status.js';

/**
 * Milvus's credential RPCs (the SDK's createUser, updateUser, deleteUser, listUsers) and the API-key
 * admin routes on the HTTP port (`quiver apikey create|list|revoke`; the Milvus protocol has no
 * message for keys).
 *
 * As in Milvus they work with auth off too (users can be prepared before auth is turned on). Who may
 * call them with auth on is the Authorizer's question; without one (`rootOnlyAdmin`), only root may
 * create or delete users and a user may change only its own password, so a plain authenticated user
 * cannot make itself an account or remove root's.
 *
 * Passwords arrive base64-encoded (the SDK's encoding). They are never put in an error reason or a
 * log field: a rejected request is logged by method and reason only (proxy/server.ts).
 */

/** The part of the credential store these handlers use (src/auth/credentials.ts implements it). */
export interface CredentialAdmin {
  createUser(name: string, password: string, description?: string): Promise<void>;
  updatePassword(name: string, oldPassword: string, newPassword: string, address: string): Promise<void>;
  updateDescription(name: string, description: string): Promise<void>;
  deleteUser(name: string): Promise<void>;
  listUsers(): Promise<string[]>;
  verify(creds: CallerCredentials): Promise<string>;
  createApiKey(user: string, description?: string): Promise<{ id: string; key: string; user: string; description: string; createdAtMs: number }>;
  listApiKeys(): Promise<{ id: string; user: string; description: string; createdAtMs: number }[]>;
  revokeApiKey(id: string): Promise<void>;
}

export interface CredentialServiceOptions {
  /** No Authorizer is wired: keep user administration to root (see above). */
  readonly rootOnlyAdmin: boolean;
}

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

function decodePassword(value: unknown, field: string): string {
  if (typeof value !== 'string' || !BASE64.test(value)) throw quiverError('ParameterInvalid', `${field} must be base64-encoded`);
  return Buffer.from(value, 'base64').toString('utf8');
}

function userName(req: { username?: unknown }): string {
  if (typeof req.username !== 'string' || req.username === '') throw quiverError('ParameterMissing', 'username is required');
  return req.username;
}

export function credentialHandlers(admin: CredentialAdmin, options: CredentialServiceOptions): Record<string, Handler> {
  const requireRoot = (ctx: CallContext, what: string) => {
    if (options.rootOnlyAdmin && ctx.user !== undefined && ctx.user !== ROOT_USER) {
      throw quiverError('PrivilegeNotPermitted', `user ${JSON.stringify(ctx.user)} may not ${what}: only root may`);
    }
  };
  return {
    CreateCredential: async (req: { username?: unknown; password?: unknown; description?: unknown }, ctx: CallContext) => {
      requireRoot(ctx, 'create users');
      const name = userName(req);
      await admin.createUser(name, decodePassword(req.password, 'password'), typeof req.description === 'string' ? req.description : '');
      return OK;
    },
    UpdateCredential: async (req: { username?: unknown; oldPassword?: unknown; newPassword?: unknown; description?: unknown }, ctx: CallContext) => {
      const name = userName(req);
      if (options.rootOnlyAdmin && ctx.user !== undefined && ctx.user !== ROOT_USER && ctx.user !== name) {
        throw quiverError('PrivilegeNotPermitted', `user ${JSON.stringify(ctx.user)} may not update user ${JSON.stringify(name)}`);
      }
      const description = typeof req.description === 'string' ? req.description : '';
      const newPassword = typeof req.newPassword === 'string' ? req.newPassword : '';
      if (newPassword === '') {
        // The SDK's updateUser with only a description.
        await admin.updateDescription(name, description);
        return OK;
      }
      await admin.updatePassword(name, decodePassword(req.oldPassword ?? '', 'oldPassword'), decodePassword(newPassword, 'newPassword'), ctx.peer ?? '');
      if (description !== '') await admin.updateDescription(name, description);
      return OK;
    },
    DeleteCredential: async (req: { username?: unknown }, ctx: CallContext) => {
      requireRoot(ctx, 'delete users');
      await admin.deleteUser(userName(req));
      return OK;
    },
    ListCredUsers: async () => ({ status: OK, usernames: await admin.listUsers() }),
  };
}

/** Largest API-key request body read (it holds a user name and a description). */
const API_KEY_BODY_BYTES_MAX = 16 * 1024;

/**
 * The API-key admin routes, root's credentials required (`Authorization: Bearer root:PASSWORD`, or
 * Basic), with auth on or off:
 *   POST   /auth/apikeys        {"user"?: "alice", "description"?: "..."} → 201 {id, key, user, description, createdAtMs}
 *   GET    /auth/apikeys        → 200 [{id, user, description, createdAtMs}]
 *   DELETE /auth/apikeys/{id}   → 200 {id}
 * Errors answer `{code, reason}` with the Milvus code: 401 for 1400, 403 for 1401, 400 for bad input.
 */
export function apiKeyRoutes(admin: CredentialAdmin): (req: IncomingMessage, res: ServerResponse) => boolean {
  return (req, res) => {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    const one = /^\/auth\/apikeys\/([^/]{1,64})$/.exec(path);
    if (path !== '/auth/apikeys' && one === null) return false;
    const send = (http: number, body: unknown) => {
      // A body left unread (refused before reading it, or too large): close rather than drain it.
      const close = req.complete ? {} : { connection: 'close' };
      res.writeHead(http, { 'content-type': 'application/json', 'cache-control': 'no-store', ...close });
      res.end(JSON.stringify(body));
    };
    const fail = (err: unknown) => {
      const s = statusOf(err);
      send(s.code === 1400 ? 401 : s.code === 1401 ? 403 : s.code === 1100 || s.code === 1101 || s.code === 1102 ? 400 : 500, {
        code: s.code,
        reason: s.reason,
      });
    };
    const allowed = one ? ['DELETE'] : ['GET', 'POST'];
    if (!allowed.includes(req.method ?? '')) {
      req.resume();
      res.writeHead(405, { allow: allowed.join(', ') });
      res.end('method not allowed');
      return true;
    }
    const run = async () => {
      const caller = await admin.verify({ authorization: httpAuthorization(req), encoding: 'plain', peer: req.socket.remoteAddress ?? '' });
      if (caller !== ROOT_USER) throw quiverError('PrivilegeNotPermitted', `user ${JSON.stringify(caller)} may not manage API keys: only root may`);
      if (one) {
        req.resume();
        await admin.revokeApiKey(decodeURIComponent(one[1]!));
        send(200, { id: one[1] });
      } else if (req.method === 'GET') {
        req.resume();
        send(200, await admin.listApiKeys());
      } else {
        const body = await readJson(req);
        const user = body['user'] ?? ROOT_USER;
        const description = body['description'] ?? '';
        if (typeof user !== 'string' || typeof description !== 'string') throw quiverError('ParameterInvalid', 'user and description must be strings');
        send(201, await admin.createApiKey(user, description));
      }
    };
    run().catch(fail);
    return true;
  };
}

/** `Bearer user:password` / `Bearer KEY` (as Milvus's REST API) or `Basic base64(user:password)`, decoded to plain. */
function httpAuthorization(req: IncomingMessage): string | undefined {
  const h = req.headers.authorization;
  if (h === undefined) return undefined;
  const m = /^(Bearer|Basic)\s+(\S+)$/i.exec(h.trim());
  if (m === null) return undefined;
  return m[1]!.toLowerCase() === 'basic' ? Buffer.from(m[2]!, 'base64').toString('utf8') : m[2];
}

async function readJson(req: IncomingMessage): Promise<Record<string, unknown>> {
  const chunks: Buffer[] = [];
  let bytes = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    bytes += chunk.length;
    if (bytes > API_KEY_BODY_BYTES_MAX) {
      req.pause();
      throw quiverError('ParameterTooLarge', `request body over ${API_KEY_BODY_BYTES_MAX} bytes`);
    }
    chunks.push(chunk);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  if (text.trim() === '') return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw quiverError('ParameterInvalid', 'the request body is not valid JSON');
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed))
    throw quiverError('ParameterInvalid', 'the request body must be a JSON object');
  return parsed as Record<string, unknown>;
}
