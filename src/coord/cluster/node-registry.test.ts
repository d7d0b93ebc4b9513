import { describe, expect, it } from 'vitest';
import { FakeClock } from '../../common/clock.js';
import { MemoryMetaKV } from '../../meta/memory-kv.js';
import { MemorySessionStore } from '../../meta/memory-sessions.js';
import type { NodeSessionInfo } from '../../meta/sessions.js';
import { NodeRegistry } from './node-registry.js';
import { NODE_TRANSITIONS, assertNodeTransition } from './types.js';

const SUSPECT_MS = 5_000;
const RETENTION_MS = 60_000;
const TTL_MS = 10_000;
const log = { error: (fields: object, msg: string) => console.error(msg, fields) };
const info = (address: string): Omit<NodeSessionInfo, 'nodeId'> => ({
  role: 'datanode',
  address,
  metricsAddress: `${address.split(':')[0]}:9100`,
  slots: 4,
  startedAtMs: 0,
  version: 't',
});

async function setup() {
  const clock = new FakeClock();
  const sessions = new MemorySessionStore({ meta: new MemoryMetaKV(), clock });
  const registry = new NodeRegistry({ sessions, clock, log }, { suspectAfterMs: SUSPECT_MS, lostRetentionMs: RETENTION_MS });
  const joined: number[] = [];
  const lost: number[] = [];
  registry.onJoined((n) => joined.push(n.nodeId));
  registry.onLost((n) => lost.push(n.nodeId));
  registry.start();
  return { clock, sessions, registry, joined, lost };
}

describe('NodeRegistry', () => {
  it('follows sessions: join, heartbeat, lease expiry → Lost (reported once, kept for a while, then forgotten)', async () => {
    const { clock, sessions, registry, joined, lost } = await setup();
    const a = await sessions.register(info('a:1'), TTL_MS);
    const b = await sessions.register(info('b:1'), TTL_MS);
    expect(joined).toEqual([a.nodeId, b.nodeId]);
    expect(registry.nodes().map((n) => [n.nodeId, n.state, n.slotsTotal, n.slotsUsed])).toEqual([
      [a.nodeId, 'Healthy', 4, 0],
      [b.nodeId, 'Healthy', 4, 0],
    ]);
    clock.advance(1_000);
    expect(registry.recordHeartbeat(a.nodeId, { slotsTotal: 4, slotsUsed: 3, tasksByType: { 'copy-segment': 3 } })).toBe(true);
    const sa = registry.status().nodes.find((n) => n.nodeId === a.nodeId);
    expect(sa).toEqual({
      nodeId: a.nodeId,
      address: 'a:1',
      metricsAddress: 'a:9100',
      slotsTotal: 4,
      slotsUsed: 3,
      tasksByType: { 'copy-segment': 3 },
      lastHeartbeatMs: clock.nowMs(),
      state: 'Healthy',
    });

    a.pauseKeepAlive();
    clock.advance(TTL_MS);
    await sessions.tick();
    expect(lost).toEqual([a.nodeId]);
    expect(registry.nodes().map((n) => n.nodeId)).toEqual([b.nodeId]);
    expect(registry.status().nodes.map((n) => [n.nodeId, n.state])).toEqual([
      [a.nodeId, 'Lost'],
      // b was silent past suspectAfterMs too, but only tick() decides that.
      [b.nodeId, 'Healthy'],
    ]);
    // A late answer of the lost node changes nothing.
    expect(registry.recordHeartbeat(a.nodeId, { slotsTotal: 4, slotsUsed: 0, tasksByType: {} })).toBe(false);
    expect(registry.node(a.nodeId)?.state).toBe('Lost');
    await registry.tick();
    expect(lost).toEqual([a.nodeId]);
    clock.advance(RETENTION_MS);
    await registry.tick();
    expect(registry.status().nodes.map((n) => n.nodeId)).toEqual([b.nodeId]);
    expect(registry.recordHeartbeat(999, { slotsTotal: 1, slotsUsed: 0, tasksByType: {} })).toBe(false);
    await registry.stop();
  });

  it('a silent node turns Suspect at suspectAfterMs and Healthy on its next heartbeat', async () => {
    const { clock, sessions, registry } = await setup();
    const a = await sessions.register(info('a:1'), TTL_MS);
    clock.advance(SUSPECT_MS - 1);
    await registry.tick();
    expect(registry.node(a.nodeId)?.state).toBe('Healthy');
    clock.advance(1);
    await registry.tick();
    expect(registry.node(a.nodeId)?.state).toBe('Suspect');
    expect(registry.nodes().map((n) => n.state)).toEqual(['Suspect']);
    expect(registry.dispatchable()).toEqual([]);
    expect(registry.recordHeartbeat(a.nodeId, { slotsTotal: 4, slotsUsed: 1, tasksByType: { 'index-build': 1 } })).toBe(true);
    expect(registry.node(a.nodeId)?.state).toBe('Healthy');
    expect(registry.dispatchable().map((n) => [n.nodeId, n.slots, n.address])).toEqual([[a.nodeId, 4, 'a:1']]);
    // Suspect → Lost when the session goes.
    clock.advance(SUSPECT_MS);
    await registry.tick();
    await a.close();
    expect(registry.node(a.nodeId)?.state).toBe('Lost');
    await registry.stop();
  });

  it('a node that comes back is a new node; the old id stays Lost', async () => {
    const { sessions, registry, joined, lost } = await setup();
    const a = await sessions.register(info('a:1'), TTL_MS);
    await a.close();
    const again = await sessions.register(info('a:1'), TTL_MS);
    expect(joined).toEqual([a.nodeId, again.nodeId]);
    expect(lost).toEqual([a.nodeId]);
    expect(registry.node(a.nodeId)?.state).toBe('Lost');
    expect(registry.nodes().map((n) => n.nodeId)).toEqual([again.nodeId]);
    await registry.stop();
  });

  it('onJoined replays the nodes already there; unsubscribed listeners hear nothing; stop ends the watch', async () => {
    const { sessions, registry } = await setup();
    const a = await sessions.register(info('a:1'), TTL_MS);
    const seen: number[] = [];
    const off = registry.onJoined((n) => seen.push(n.nodeId));
    expect(seen).toEqual([a.nodeId]);
    off();
    await sessions.register(info('b:1'), TTL_MS);
    expect(seen).toEqual([a.nodeId]);
    await registry.stop();
    await sessions.register(info('c:1'), TTL_MS);
    expect(registry.nodes()).toHaveLength(2);
  });

  it('the transition table: Lost is final, and illegal transitions assert', () => {
    expect(NODE_TRANSITIONS.Lost).toEqual([]);
    expect(() => assertNodeTransition('Lost', 'Healthy')).toThrow(/illegal node transition Lost → Healthy/);
    expect(() => assertNodeTransition('Healthy', 'Suspect')).not.toThrow();
  });
});
