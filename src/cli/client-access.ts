import { readFileSync } from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import type { Command } from 'commander';

/**
 * How the CLI's clients reach a server with auth and/or TLS on: credentials (the SDK's username/password,
 * or token: `user:password` or an API key) and TLS client options (the SDK's `tls`). Flags win over the
 * environment: QUIVER_USER, QUIVER_PASSWORD, QUIVER_TOKEN, QUIVER_CLIENT_TLS_CA, QUIVER_CLIENT_TLS_CERT,
 * QUIVER_CLIENT_TLS_KEY, QUIVER_CLIENT_TLS_SERVER_NAME (QUIVER_TLS_* are the server's own files).
 */
export interface ClientAccess {
  readonly username?: string | undefined;
  readonly password?: string | undefined;
  readonly token?: string | undefined;
  readonly tls?:
    | {
        /** CA that signed the server's certificate. */
        readonly rootCertPath?: string | undefined;
        /** Client certificate and key, for a server with mutual TLS. */
        readonly certChainPath?: string | undefined;
        readonly privateKeyPath?: string | undefined;
        readonly serverName?: string | undefined;
      }
    | undefined;
}

export interface AccessOpts {
  readonly user?: string;
  readonly password?: string;
  readonly token?: string;
  readonly tlsCa?: string;
  readonly tlsCert?: string;
  readonly tlsKey?: string;
  readonly tlsServerName?: string;
}

/** Adds the credential flags to a command. */
export function withCredentialOptions(cmd: Command): Command {
  return cmd
    .option('--user <name>', 'user name, with auth on (env QUIVER_USER)')
    .option('--password <password>', 'password (env QUIVER_PASSWORD; prefer the env: a flag shows in `ps`)')
    .option('--token <token>', 'API key or user:password instead of --user/--password (env QUIVER_TOKEN)');
}

/** Adds the credential and TLS client flags to a command. */
export function withAccessOptions(cmd: Command): Command {
  return withCredentialOptions(cmd)
    .option('--tls-ca <file>', "CA of the server's certificate: talk TLS (env QUIVER_CLIENT_TLS_CA)")
    .option('--tls-cert <file>', 'client certificate, for mutual TLS (env QUIVER_CLIENT_TLS_CERT)')
    .option('--tls-key <file>', 'client key, for mutual TLS (env QUIVER_CLIENT_TLS_KEY)')
    .option('--tls-server-name <name>', 'name to check the server certificate against (env QUIVER_CLIENT_TLS_SERVER_NAME)');
}

export function clientAccess(o: AccessOpts, env: NodeJS.ProcessEnv = process.env): ClientAccess {
  const pick = (flag: string | undefined, name: string) => flag ?? (env[name] || undefined);
  const rootCertPath = pick(o.tlsCa, 'QUIVER_CLIENT_TLS_CA');
  const certChainPath = pick(o.tlsCert, 'QUIVER_CLIENT_TLS_CERT');
  const privateKeyPath = pick(o.tlsKey, 'QUIVER_CLIENT_TLS_KEY');
  const serverName = pick(o.tlsServerName, 'QUIVER_CLIENT_TLS_SERVER_NAME');
  const tls = (rootCertPath ?? certChainPath ?? privateKeyPath) ? { rootCertPath, certChainPath, privateKeyPath, serverName } : undefined;
  return { username: pick(o.user, 'QUIVER_USER'), password: pick(o.password, 'QUIVER_PASSWORD'), token: pick(o.token, 'QUIVER_TOKEN'), tls };
}

/** The SDK's MilvusClient options for `access` (spread into its config). */
export function sdkAccessConfig(access: ClientAccess | undefined): Record<string, unknown> {
  if (access === undefined) return {};
  return {
    ...(access.token !== undefined ? { token: access.token } : {}),
    ...(access.username !== undefined ? { username: access.username, password: access.password ?? '' } : {}),
    ...(access.tls !== undefined ? { tls: access.tls } : {}),
  };
}

/** For raw gRPC calls (cli/export-rpc.ts): channel credentials and the `authorization` metadata the SDK would send. */
export function grpcAccess(access: ClientAccess | undefined): {
  credentials: grpc.ChannelCredentials;
  metadata: grpc.Metadata;
  options: grpc.ChannelOptions;
} {
  const metadata = new grpc.Metadata();
  const secret = access?.token ?? (access?.username !== undefined ? `${access.username}:${access.password ?? ''}` : undefined);
  if (secret !== undefined) metadata.set('authorization', Buffer.from(secret, 'utf8').toString('base64'));
  const tls = access?.tls;
  if (tls === undefined) return { credentials: grpc.credentials.createInsecure(), metadata, options: {} };
  const read = (p: string | undefined) => (p === undefined ? null : readFileSync(p));
  return {
    credentials: grpc.credentials.createSsl(read(tls.rootCertPath), read(tls.privateKeyPath), read(tls.certChainPath)),
    metadata,
    options: tls.serverName !== undefined ? { 'grpc.ssl_target_name_override': tls.serverName } : {},
  };
}
