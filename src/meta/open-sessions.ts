/**
 * The one place that turns a --meta URL into a SessionStore, beside `openMeta` (same URL, same parser):
 *
 *   sqlite, sqlite:PATH   MemorySessionStore: every node lives in this process; its node-id counter is
 *                         kept in the MetaKV so that ids survive a restart
 *   etcd://...            EtcdSessionStore under the same root as the MetaKV: sessions other processes see
 *
 * Each backend is imported only when chosen.
 */

import type { Clock } from '../common/clock.js';
import { quiverError } from '../common/errors.js';
import type { EtcdSessionStoreOptions } from './etcd-sessions.js';
import type { MetaKV } from './meta-kv.js';
import { parseMetaUrl } from './open-meta.js';
import type { SessionStore } from './sessions.js';

export interface OpenSessionsOptions {
  readonly dataDir: string;
  /** The MetaKV opened from the same URL (the memory store keeps its id counter there). */
  readonly meta: MetaKV;
  readonly clock?: Clock | undefined;
  /** Connection options of the etcd client (hosts and root come from the URL). */
  readonly etcd?: Omit<Partial<EtcdSessionStoreOptions>, 'hosts' | 'root' | 'clock'> | undefined;
}

/** Opens the session store named by `url`; an etcd store is checked with one list, so an unreachable cluster fails here. */
export async function openSessions(url: string | undefined, options: OpenSessionsOptions): Promise<SessionStore> {
  const where = parseMetaUrl(url, options.dataDir);
  switch (where.kind) {
    case 'sqlite': {
      const { MemorySessionStore } = await import('./memory-sessions.js');
      return new MemorySessionStore({ meta: options.meta, clock: options.clock });
    }
    case 'etcd': {
      const { EtcdSessionStore } = await import('./etcd-sessions.js');
      const store = new EtcdSessionStore({ ...options.etcd, hosts: where.hosts, root: where.root, clock: options.clock });
      try {
        await store.list('datanode');
      } catch (e) {
        await store.close();
        const reason = (e instanceof Error ? e.message : String(e)).replace(/\s*\n\s*/g, ' ');
        throw quiverError('ServiceNotReady', `sessions ${JSON.stringify(url)}: cannot use etcd at ${where.hosts.join(',')}: ${reason}`, e);
      }
      return store;
    }
    default: {
      const never: never = where;
      throw new Error(`unreachable meta location ${JSON.stringify(never)}`);
    }
  }
}
