/**
 * The one place that turns a metadata URL into a MetaKV backend (PGlite's `parseDataDir` / `loadFs`
 * pattern): nothing else in the code branches on the backend. Each backend module is imported only
 * when chosen, so an embedded run never loads the etcd client and a cluster never loads SQLite.
 *
 *   sqlite                                     (default) <dataDir>/meta.db
 *   sqlite:PATH                                a database file at PATH
 *   etcd://HOST[:PORT][,HOST[:PORT]...][/ROOT] an etcd cluster; ROOT namespaces this Quiver inside it
 *                                              (default 'quiver'), PORT defaults to 2379
 */

import { join } from 'node:path';
import { quiverError } from '../common/errors.js';
import type { EtcdMetaKVOptions } from './etcd-kv.js';
import type { MetaKV } from './meta-kv.js';

export type MetaLocation =
  { readonly kind: 'sqlite'; readonly path: string } | { readonly kind: 'etcd'; readonly hosts: readonly string[]; readonly root: string };

export interface OpenMetaOptions {
  readonly dataDir: string;
  /** Tuning of the etcd client (hosts and root come from the URL). */
  readonly etcd?: Omit<Partial<EtcdMetaKVOptions>, 'hosts' | 'root'> | undefined;
}

const ETCD_PORT_DEFAULT = 2379;
const ETCD_ROOT_DEFAULT = 'quiver';
const FORMS = "expected 'sqlite', 'sqlite:PATH' or 'etcd://HOST:PORT[,HOST:PORT...][/ROOT]'";

export function parseMetaUrl(url: string | undefined, dataDir: string): MetaLocation {
  const text = (url ?? '').trim();
  if (text === '' || text === 'sqlite') return { kind: 'sqlite', path: join(dataDir, 'meta.db') };
  if (text.startsWith('sqlite:')) {
    const path = text.slice('sqlite:'.length);
    if (path === '' || path.startsWith('//')) throw bad(text, 'sqlite:PATH takes a file path, e.g. sqlite:/var/lib/quiver/meta.db');
    return { kind: 'sqlite', path };
  }
  const scheme = /^([a-zA-Z][a-zA-Z0-9+.-]*):/.exec(text)?.[1];
  if (scheme === undefined) throw bad(text, 'no scheme');
  if (scheme.toLowerCase() !== 'etcd') throw bad(text, `unknown scheme ${JSON.stringify(scheme)}`);
  if (!text.startsWith('etcd://')) throw bad(text, "an etcd URL starts with 'etcd://' (lower case)");
  const rest = text.slice('etcd://'.length);
  const slash = rest.indexOf('/');
  const hostList = slash < 0 ? rest : rest.slice(0, slash);
  const rootText = slash < 0 ? '' : rest.slice(slash + 1).replace(/\/+$/, '');
  if (hostList === '') throw bad(text, 'no host');
  const hosts = hostList.split(',').map((h) => parseHost(text, h));
  if (rootText.split('/').some((s) => s === '') && rootText !== '') throw bad(text, `root ${JSON.stringify(rootText)} has an empty segment`);
  if (/[\s\0]/.test(rootText)) throw bad(text, `root ${JSON.stringify(rootText)} holds whitespace or NUL`);
  return { kind: 'etcd', hosts, root: rootText === '' ? ETCD_ROOT_DEFAULT : rootText };
}

/**
 * Opens the backend named by `url`. An etcd backend is checked with one read, so that an unreachable
 * cluster fails here with one line naming the hosts instead of at the first write.
 */
export async function openMeta(url: string | undefined, options: OpenMetaOptions): Promise<MetaKV> {
  const where = parseMetaUrl(url, options.dataDir);
  switch (where.kind) {
    case 'sqlite': {
      const { SqliteMetaKV } = await import('./sqlite-kv.js');
      return new SqliteMetaKV(where.path);
    }
    case 'etcd': {
      const { EtcdMetaKV } = await import('./etcd-kv.js');
      const kv = new EtcdMetaKV({ retryWindowMs: 5_000, ...options.etcd, hosts: where.hosts, root: where.root });
      try {
        await kv.revision();
      } catch (e) {
        await kv.close();
        const reason = e instanceof Error ? e.message : String(e);
        throw quiverError('ServiceNotReady', `meta ${JSON.stringify(url)}: cannot use etcd at ${where.hosts.join(',')}: ${oneLine(reason)}`, e);
      }
      return kv;
    }
    default: {
      const never: never = where;
      throw new Error(`unreachable meta location ${JSON.stringify(never)}`);
    }
  }
}

function parseHost(url: string, hostPort: string): string {
  // [v6]:port, host:port or host
  const m = /^(\[[0-9a-fA-F:.]+\]|[^:[\]/]+)(?::(\d*))?$/.exec(hostPort);
  if (m === null || m[1] === undefined) throw bad(url, `bad host ${JSON.stringify(hostPort)}`);
  const portText = m[2];
  if (portText === '') throw bad(url, `host ${JSON.stringify(hostPort)} has an empty port`);
  const port = portText === undefined ? ETCD_PORT_DEFAULT : Number(portText);
  if (!Number.isInteger(port) || port < 1 || port > 65_535) throw bad(url, `port ${JSON.stringify(portText)} is not in 1..65535`);
  return `${m[1]}:${port}`;
}

function bad(url: string, problem: string): Error {
  return quiverError('ParameterInvalid', `meta URL ${JSON.stringify(url)}: ${problem}; ${FORMS}`);
}

function oneLine(text: string): string {
  return text.replace(/\s*\n\s*/g, ' ');
}
