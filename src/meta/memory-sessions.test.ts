import { describe, expect, it } from 'vitest';
import { FakeClock } from '../common/clock.js';
import { isQuiverError } from '../common/errors.js';
import { MemoryMetaKV } from './memory-kv.js';
import { MemorySessionRegistration, MemorySessionStore } from './memory-sessions.js';
import { runSessionsConformance } from './sessions.conformance.js';

const TTL_MS = 10_000;

describe('MemorySessionStore', () => {
  const meta = new MemoryMetaKV();
  const clock = new FakeClock();
  runSessionsConformance('memory', {
    open: async () => new MemorySessionStore({ meta, clock }),
    ttlMs: TTL_MS,
    pauseKeepAlive: (reg) => {
      if (!(reg instanceof MemorySessionRegistration)) throw new Error('not a memory registration');
      reg.pauseKeepAlive();
    },
    letTimePass: async (store) => {
      clock.advance(TTL_MS + 1);
      await (store as MemorySessionStore).tick();
    },
    expiryWaitMs: 5_000,
  });

  it('expires a paused lease exactly at its TTL, and a lease resumed in time survives', async () => {
    const c = new FakeClock();
    const store = new MemorySessionStore({ meta: new MemoryMetaKV(), clock: c });
    const base = { role: 'datanode', address: 'x:1', metricsAddress: 'x:2', slots: 1, startedAtMs: 0, version: 't' } as const;
    const a = await store.register(base, TTL_MS);
    const b = await store.register(base, TTL_MS);
    a.pauseKeepAlive();
    b.pauseKeepAlive();
    c.advance(TTL_MS - 1);
    await store.tick();
    b.resumeKeepAlive();
    expect((await store.list('datanode')).map((n) => n.nodeId)).toEqual([a.nodeId, b.nodeId]);
    c.advance(1);
    await store.tick();
    expect((await store.list('datanode')).map((n) => n.nodeId)).toEqual([b.nodeId]);
    c.advance(10 * TTL_MS);
    await store.tick();
    expect((await store.list('datanode')).map((n) => n.nodeId)).toEqual([b.nodeId]);
    await store.close();
  });

  it('refuses bad registrations and calls after close', async () => {
    const store = new MemorySessionStore({ meta: new MemoryMetaKV(), clock: new FakeClock() });
    const base = { role: 'datanode', address: 'x:1', metricsAddress: 'x:2', slots: 1, startedAtMs: 0, version: 't' } as const;
    await expect(store.register({ ...base, address: '' }, TTL_MS)).rejects.toSatisfy((e) => isQuiverError(e, 'ParameterInvalid'));
    await expect(store.register({ ...base, slots: -1 }, TTL_MS)).rejects.toSatisfy((e) => isQuiverError(e, 'ParameterInvalid'));
    await expect(store.register(base, 10)).rejects.toSatisfy((e) => isQuiverError(e, 'ParameterInvalid'));
    await store.close();
    await expect(store.register(base, TTL_MS)).rejects.toSatisfy((e) => isQuiverError(e, 'ServiceNotReady'));
  });
});
