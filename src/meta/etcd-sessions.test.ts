import { createServer, connect, type AddressInfo, type Server, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EtcdServer, etcdUnavailableReason } from '../testing/etcd-server.js';
import { until } from '../testing/wait.js';
import { connectEtcd } from './etcd-kv.js';
import { EtcdSessionRegistration, EtcdSessionStore, type EtcdSessionStoreOptions } from './etcd-sessions.js';
import type { NodeSessionInfo } from './sessions.js';
import { runSessionsConformance } from './sessions.conformance.js';

const unavailable = etcdUnavailableReason();
if (unavailable !== undefined) console.warn(`SKIPPED etcd session tests: ${unavailable}`);

/** etcd's smallest lease TTL on a default single member is about 2 s (1.5 election timeouts, rounded up). */
const TTL_MS = 2_000;

describe.skipIf(unavailable !== undefined)('EtcdSessionStore against a real etcd', () => {
  let server: EtcdServer | undefined;
  let rootCounter = 0;
  let root = '';
  const stores: EtcdSessionStore[] = [];
  const open = (options: Partial<EtcdSessionStoreOptions> = {}): EtcdSessionStore => {
    if (server === undefined) throw new Error('etcd not started');
    const s = new EtcdSessionStore({ hosts: [server.endpoint], root, retryDelayMs: 50, ...options });
    stores.push(s);
    return s;
  };

  beforeAll(async () => {
    server = await EtcdServer.start();
  });
  afterAll(async () => {
    for (const s of stores) await s.close();
    await server?.stop();
  });

  describe('conformance', () => {
    beforeAll(() => {
      root = `sessions/${++rootCounter}`;
    });
    runSessionsConformance('etcd', {
      open: async () => open(),
      ttlMs: TTL_MS,
      pauseKeepAlive: (reg) => {
        if (!(reg instanceof EtcdSessionRegistration)) throw new Error('not an etcd registration');
        reg.pauseKeepAlive();
      },
      letTimePass: async () => undefined,
      // TTL, plus etcd's lease expiry check (every 500 ms), plus the watch and a re-list.
      expiryWaitMs: 4 * TTL_MS + 2_000,
    });
  });

  const info: Omit<NodeSessionInfo, 'nodeId'> = { role: 'datanode', address: 'n:1', metricsAddress: 'n:2', slots: 2, startedAtMs: 1, version: 't' };

  it('another process sees a node join and expire; the frozen node knows it is lost before etcd drops it', async () => {
    root = `sessions/${++rootCounter}`;
    const node = open();
    const coordinator = open();
    const sets: number[][] = [];
    coordinator.watch('datanode', (nodes) => sets.push(nodes.map((n) => n.nodeId)));
    const reg = await node.register(info, TTL_MS);
    await until(() => sets.at(-1)?.[0] === reg.nodeId, { what: 'the join' });
    // Keep-alive keeps the lease well past its TTL.
    const liveUntil = Date.now() + 2 * TTL_MS;
    await until(() => Date.now() > liveUntil, { timeoutMs: 3 * TTL_MS });
    expect(sets.at(-1)).toEqual([reg.nodeId]);
    let emptyAtMs = 0;
    coordinator.watch('datanode', (nodes) => {
      if (nodes.length === 0 && emptyAtMs === 0) emptyAtMs = Date.now();
    });
    reg.pauseKeepAlive();
    let lostAtMs = 0;
    void reg.lost.then(() => (lostAtMs = Date.now()));
    await until(() => lostAtMs > 0 && emptyAtMs > 0, { what: 'the expiry', timeoutMs: 4 * TTL_MS + 2_000 });
    expect(sets.at(-1)).toEqual([]);
    // The node's own deadline (last acknowledged send + TTL) is never later than etcd's expiry.
    expect(lostAtMs).toBeLessThanOrEqual(emptyAtMs);
    // A returning node gets a new id.
    const again = await node.register(info, TTL_MS);
    expect(again.nodeId).toBeGreaterThan(reg.nodeId);
    await until(() => sets.at(-1)?.[0] === again.nodeId, { what: 'the new registration' });
  });

  it("a lease revoked behind the node's back: its keep-alive learns it is gone and lost resolves", async () => {
    root = `sessions/${++rootCounter}`;
    const node = open();
    const coordinator = open();
    const sets: number[][] = [];
    coordinator.watch('datanode', (nodes) => sets.push(nodes.map((n) => n.nodeId)));
    const reg = await node.register(info, TTL_MS);
    await until(() => sets.at(-1)?.[0] === reg.nodeId, { what: 'the join' });
    const admin = connectEtcd({ hosts: [server!.endpoint] });
    try {
      await admin.leaseClient.leaseRevoke({ ID: reg.leaseId });
    } finally {
      admin.close();
    }
    await until(() => sets.at(-1)?.length === 0, { what: 'the leave' });
    await reg.lost;
  });

  it('a watch cut off from etcd re-lists on reconnect: changes made meanwhile arrive as one set', async () => {
    root = `sessions/${++rootCounter}`;
    const proxy = await TcpProxy.start(server!.endpoint);
    try {
      const coordinator = open({ hosts: [proxy.endpoint] });
      const node = open();
      const sets: number[][] = [];
      coordinator.watch('datanode', (nodes) => sets.push(nodes.map((n) => n.nodeId)));
      const a = await node.register(info, 10_000);
      await until(() => sets.at(-1)?.[0] === a.nodeId, { what: 'the join' });
      proxy.cut();
      const b = await node.register(info, 10_000);
      await a.close();
      expect(sets.at(-1)).toEqual([a.nodeId]);
      proxy.reopen();
      await until(() => sets.at(-1)?.[0] === b.nodeId, { what: 'the set after the reconnect', timeoutMs: 20_000 });
      expect(sets.at(-1)).toEqual([b.nodeId]);
    } finally {
      await proxy.close();
    }
  });

  it('a node cut off from etcd declares itself lost at its TTL, and etcd drops it', async () => {
    root = `sessions/${++rootCounter}`;
    const proxy = await TcpProxy.start(server!.endpoint);
    try {
      const node = open({ hosts: [proxy.endpoint], requestTimeoutMs: 500 });
      const coordinator = open();
      const sets: number[][] = [];
      coordinator.watch('datanode', (nodes) => sets.push(nodes.map((n) => n.nodeId)));
      const reg = await node.register(info, TTL_MS);
      await until(() => sets.at(-1)?.[0] === reg.nodeId, { what: 'the join' });
      proxy.cut();
      await reg.lost;
      await until(() => sets.at(-1)?.length === 0, { what: 'etcd to expire the lease', timeoutMs: 4 * TTL_MS });
      await reg.close();
    } finally {
      await proxy.close();
    }
  });
});

/** A loopback TCP proxy to etcd that a test can cut (every connection dropped, new ones refused) and reopen. */
class TcpProxy {
  readonly #server: Server;
  readonly #sockets = new Set<Socket>();
  #open = true;

  private constructor(target: string) {
    const [host, port] = target.split(':');
    this.#server = createServer((client) => {
      if (!this.#open) {
        client.destroy();
        return;
      }
      const upstream = connect(Number(port), host);
      for (const s of [client, upstream]) {
        this.#sockets.add(s);
        s.on('error', () => undefined);
        s.on('close', () => {
          this.#sockets.delete(s);
          client.destroy();
          upstream.destroy();
        });
      }
      client.pipe(upstream).pipe(client);
    });
  }

  static async start(target: string): Promise<TcpProxy> {
    const proxy = new TcpProxy(target);
    await new Promise<void>((resolve) => proxy.#server.listen(0, '127.0.0.1', resolve));
    return proxy;
  }

  get endpoint(): string {
    return `127.0.0.1:${(this.#server.address() as AddressInfo).port}`;
  }

  cut(): void {
    this.#open = false;
    for (const s of this.#sockets) s.destroy();
  }

  reopen(): void {
    this.#open = true;
  }

  async close(): Promise<void> {
    this.cut();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}
