import { describe, expect, it } from 'vitest';
import { isQuiverError } from '../common/errors.js';
import { EtcdServer, etcdUnavailableReason } from '../testing/etcd-server.js';
import { freePort } from '../testing/free-port.js';
import { EtcdSessionStore } from './etcd-sessions.js';
import { MemoryMetaKV } from './memory-kv.js';
import { MemorySessionStore } from './memory-sessions.js';
import { openSessions } from './open-sessions.js';

const info = { role: 'datanode', address: 'n:1', metricsAddress: 'n:2', slots: 1, startedAtMs: 0, version: 't' } as const;

describe('openSessions', () => {
  it('sqlite URLs give the in-process store, ids counted in the given MetaKV', async () => {
    const meta = new MemoryMetaKV();
    for (const url of [undefined, 'sqlite', 'sqlite:/tmp/x.db']) {
      const store = await openSessions(url, { dataDir: '/tmp/unused', meta });
      expect(store).toBeInstanceOf(MemorySessionStore);
      const reg = await store.register(info, 10_000);
      await store.close();
      expect(reg.nodeId).toBeGreaterThan(0);
    }
    // Three stores over one MetaKV: ids 1, 2, 3.
    const last = await openSessions('sqlite', { dataDir: '/tmp/unused', meta });
    expect((await last.register(info, 10_000)).nodeId).toBe(4);
    await last.close();
  });

  it('refuses a bad URL with the meta URL message', async () => {
    await expect(openSessions('mysql://x', { dataDir: '/tmp', meta: new MemoryMetaKV() })).rejects.toSatisfy((e) => isQuiverError(e, 'ParameterInvalid'));
  });

  it('an unreachable etcd fails at open with one line naming the host', async () => {
    const port = await freePort();
    const err: unknown = await openSessions(`etcd://127.0.0.1:${port}/q`, {
      dataDir: '/tmp',
      meta: new MemoryMetaKV(),
      etcd: { dialTimeoutMs: 300, requestTimeoutMs: 500 },
    }).catch((e: unknown) => e);
    expect(isQuiverError(err, 'ServiceNotReady'), String(err)).toBe(true);
    expect((err as Error).message).toContain(`127.0.0.1:${port}`);
    expect((err as Error).message).not.toContain('\n');
  });

  it.skipIf(etcdUnavailableReason() !== undefined)('etcd:// gives the etcd store under the URL root', async () => {
    const server = await EtcdServer.start();
    try {
      const store = await openSessions(`etcd://${server.endpoint}/open-sessions`, { dataDir: '/tmp', meta: new MemoryMetaKV() });
      expect(store).toBeInstanceOf(EtcdSessionStore);
      const reg = await store.register(info, 5_000);
      const other = new EtcdSessionStore({ hosts: [server.endpoint], root: 'open-sessions' });
      expect((await other.list('datanode')).map((n) => n.nodeId)).toEqual([reg.nodeId]);
      await other.close();
      await store.close();
    } finally {
      await server.stop();
    }
  });
});
