/**
 * The SessionStore contract as a test suite, run over every implementation (memory-sessions.test.ts,
 * etcd-sessions.test.ts).
 */

import { afterEach, describe, expect, it } from 'vitest';
import { until } from '../testing/wait.js';
import type { NodeSessionInfo, SessionRegistration, SessionStore } from './sessions.js';

export interface SessionsHarness {
  /** A store over the shared backing state: a second call is another process, or a restart. */
  open(): Promise<SessionStore>;
  /** The lease TTL the suite registers with. */
  readonly ttlMs: number;
  /** Stops the registration's keep-alive, as if its process froze. */
  pauseKeepAlive(reg: SessionRegistration): void;
  /**
   * Lets lease time pass: called repeatedly while the suite waits for an expiry (memory: advance the
   * fake clock and tick; etcd: nothing, real time passes).
   */
  letTimePass(store: SessionStore): Promise<void>;
  /** Bound on waiting for an expiry. */
  readonly expiryWaitMs: number;
}

const info = (address: string): Omit<NodeSessionInfo, 'nodeId'> => ({
  role: 'datanode',
  address,
  metricsAddress: `${address}-metrics`,
  slots: 4,
  startedAtMs: 1_700_000_000_000,
  version: 'test',
});

/** Records every set a watch delivers. */
function recorder(): { sets: (readonly NodeSessionInfo[])[]; ids: () => number[] | undefined } {
  const sets: (readonly NodeSessionInfo[])[] = [];
  return { sets, ids: () => sets[sets.length - 1]?.map((n) => n.nodeId) };
}

export function runSessionsConformance(name: string, harness: SessionsHarness): void {
  describe(`SessionStore conformance: ${name}`, () => {
    const opened: SessionStore[] = [];
    const open = async (): Promise<SessionStore> => {
      const s = await harness.open();
      opened.push(s);
      return s;
    };
    afterEach(async () => {
      for (const s of opened.splice(0)) await s.close();
    });

    it('registers with increasing ids and lists the live sessions by id', async () => {
      const store = await open();
      const a = await store.register(info('a:1'), harness.ttlMs);
      const b = await store.register(info('b:1'), harness.ttlMs);
      expect(b.nodeId).toBeGreaterThan(a.nodeId);
      const listed = await store.list('datanode');
      expect(listed.map((n) => [n.nodeId, n.address])).toEqual([
        [a.nodeId, 'a:1'],
        [b.nodeId, 'b:1'],
      ]);
      expect(listed[0]).toEqual({ ...info('a:1'), nodeId: a.nodeId });
    });

    it('never reuses an id: not after close and re-register, not across a store restart', async () => {
      const first = await open();
      const a = await first.register(info('a:1'), harness.ttlMs);
      await a.close();
      const again = await first.register(info('a:1'), harness.ttlMs);
      expect(again.nodeId).toBeGreaterThan(a.nodeId);
      await first.close();
      const restarted = await open();
      const afterRestart = await restarted.register(info('a:1'), harness.ttlMs);
      expect(afterRestart.nodeId).toBeGreaterThan(again.nodeId);
      // Concurrent registrations each get their own id.
      const many = await Promise.all([1, 2, 3, 4, 5].map((i) => restarted.register(info(`n:${i}`), harness.ttlMs)));
      const ids = many.map((r) => r.nodeId);
      expect(new Set(ids).size).toBe(5);
      expect(Math.min(...ids)).toBeGreaterThan(afterRestart.nodeId);
    });

    it('close deregisters, resolves lost, and is idempotent', async () => {
      const store = await open();
      const a = await store.register(info('a:1'), harness.ttlMs);
      const b = await store.register(info('b:1'), harness.ttlMs);
      await Promise.all([a.close(), a.close()]);
      await a.close();
      await a.lost;
      expect((await store.list('datanode')).map((n) => n.nodeId)).toEqual([b.nodeId]);
      await store.close();
      await store.close();
      await b.lost;
    });

    it('watch delivers the full live set at start and after join and leave', async () => {
      const store = await open();
      const a = await store.register(info('a:1'), harness.ttlMs);
      const rec = recorder();
      const unwatch = store.watch('datanode', (nodes) => rec.sets.push(nodes));
      await until(() => rec.sets.length > 0, { what: 'the initial set' });
      expect(rec.ids()).toEqual([a.nodeId]);
      const b = await store.register(info('b:1'), harness.ttlMs);
      await until(() => rec.ids()?.length === 2, { what: 'the join' });
      expect(rec.ids()).toEqual([a.nodeId, b.nodeId]);
      expect(rec.sets[rec.sets.length - 1]?.[1]?.address).toBe('b:1');
      await a.close();
      await until(() => rec.ids()?.length === 1, { what: 'the leave' });
      expect(rec.ids()).toEqual([b.nodeId]);
      unwatch();
      unwatch();
      const seen = rec.sets.length;
      await b.close();
      // The watch is stopped: the list changes, the listener hears nothing.
      await until(async () => (await store.list('datanode')).length === 0);
      expect(rec.sets.length).toBe(seen);
    });

    it('a registration whose keep-alive stops expires: lost resolves, watchers see it leave, others stay', async () => {
      const store = await open();
      const frozen = await store.register(info('frozen:1'), harness.ttlMs);
      const healthy = await store.register(info('healthy:1'), harness.ttlMs);
      const rec = recorder();
      store.watch('datanode', (nodes) => rec.sets.push(nodes));
      await until(() => rec.ids()?.length === 2, { what: 'both nodes' });
      harness.pauseKeepAlive(frozen);
      let lost = false;
      void frozen.lost.then(() => (lost = true));
      await until(
        async () => {
          await harness.letTimePass(store);
          return lost && rec.ids()?.length === 1;
        },
        { what: 'the frozen node to expire', timeoutMs: harness.expiryWaitMs, intervalMs: 50 },
      );
      expect(rec.ids()).toEqual([healthy.nodeId]);
      expect((await store.list('datanode')).map((n) => n.nodeId)).toEqual([healthy.nodeId]);
      // Closing an expired registration is harmless.
      await frozen.close();
      let healthyLost = false;
      void healthy.lost.then(() => (healthyLost = true));
      await harness.letTimePass(store);
      await harness.letTimePass(store);
      expect(healthyLost).toBe(false);
    });
  });
}
