import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { FakeClock } from '../../../common/clock.js';
import { quiverError } from '../../../common/errors.js';
import { MemoryMetaKV } from '../../../meta/memory-kv.js';
import type { SnapshotRecord } from '../snapshot-store.js';
import { parseSnapshotPolicy, scheduledSnapshotName } from './policy.js';
import { ScheduleStore } from './schedule-store.js';
import { SnapshotScheduler, type ScheduledCollection, type SchedulerSnapshots } from './scheduler.js';

/** An in-memory snapshot manager: names, creation times, pins; `failNext` makes the next create fail. */
class FakeSnapshots implements SchedulerSnapshots {
  readonly recs = new Map<string, SnapshotRecord>();
  readonly pinned = new Set<number>();
  failNext = false;
  creates = 0;
  #id = 1;
  constructor(readonly clock: FakeClock) {}
  create(_db: string, coll: string, name: string): Promise<SnapshotRecord> {
    this.creates++;
    if (this.failNext) {
      this.failNext = false;
      return Promise.reject(quiverError('ServiceInternal', 'disk full'));
    }
    if (this.recs.has(name)) return Promise.reject(quiverError('SnapshotAlreadyExists', name));
    const rec = { id: this.#id++, name, collectionName: coll, createdAtMs: this.clock.nowMs(), state: 'COMMITTED' } as SnapshotRecord;
    this.recs.set(name, rec);
    return Promise.resolve(rec);
  }
  list(): Promise<SnapshotRecord[]> {
    return Promise.resolve([...this.recs.values()]);
  }
  drop(_db: string, _coll: string, name: string): Promise<void> {
    const r = this.recs.get(name);
    if (r && this.pinned.has(r.id)) return Promise.reject(quiverError('SnapshotPinned', name));
    this.recs.delete(name);
    return Promise.resolve();
  }
  activePins(id: number): readonly unknown[] {
    return this.pinned.has(id) ? [id] : [];
  }
  names(): string[] {
    return [...this.recs.keys()].sort();
  }
}

function setup(properties: Record<string, string>, kv = new MemoryMetaKV(), clock = new FakeClock(Date.UTC(2026, 0, 1))) {
  const snaps = new FakeSnapshots(clock);
  const colls: ScheduledCollection[] = [{ id: 7, dbName: 'default', name: 'docs', properties }];
  const make = (s: FakeSnapshots) =>
    new SnapshotScheduler({ collections: () => colls, snapshots: s, store: new ScheduleStore(kv), clock, log: pino({ level: 'silent' }) });
  return { kv, clock, snaps, colls, make, scheduler: make(snaps) };
}

describe('snapshot policy properties', () => {
  it('parses the three keys, 0 and absent meaning off', () => {
    expect(parseSnapshotPolicy({})).toEqual({ intervalSeconds: 0, retentionCount: 0, maxAgeSeconds: 0 });
    expect(
      parseSnapshotPolicy({ 'snapshot.schedule.interval.seconds': '3600', 'snapshot.retention.count': '24', 'snapshot.retention.max_age.seconds': '0' }),
    ).toEqual({ intervalSeconds: 3600, retentionCount: 24, maxAgeSeconds: 0 });
  });

  it.each(['-1', '1.5', 'abc', '1e3', ' 5', '99999999999'])('refuses %j naming key and value', (v) => {
    expect(() => parseSnapshotPolicy({ 'snapshot.schedule.interval.seconds': v })).toThrow(
      `snapshot.schedule.interval.seconds ${JSON.stringify(v)} is invalid`,
    );
    expect(() => parseSnapshotPolicy({ 'snapshot.retention.count': v })).toThrow(`snapshot.retention.count ${JSON.stringify(v)}`);
  });

  it('generates valid, sortable snapshot names', () => {
    const a = scheduledSnapshotName(Date.UTC(2026, 11, 3, 14, 50, 0, 123));
    expect(a).toBe('auto_20261203T145000123Z');
    expect(a).toMatch(/^[A-Za-z_][A-Za-z0-9_]*$/);
    expect(scheduledSnapshotName(Date.UTC(2026, 11, 3, 15)) > a).toBe(true);
  });
});

describe('SnapshotScheduler', () => {
  it('takes a snapshot every interval, starting one interval after it is first seen', async () => {
    const { clock, snaps, scheduler } = setup({ 'snapshot.schedule.interval.seconds': '60' });
    await scheduler.tick();
    expect(snaps.names()).toEqual([]);
    clock.advance(59_000);
    await scheduler.tick();
    expect(snaps.names()).toEqual([]);
    clock.advance(1_000);
    expect((await scheduler.tick()).taken).toHaveLength(1);
    clock.advance(30_000);
    await scheduler.tick();
    expect(snaps.recs.size).toBe(1);
    clock.advance(30_000);
    await scheduler.tick();
    expect(snaps.recs.size).toBe(2);
  });

  it('a missed schedule (server down for many intervals) takes one snapshot, not a burst', async () => {
    const { kv, clock, snaps, make } = setup({ 'snapshot.schedule.interval.seconds': '60' });
    await make(snaps).tick();
    clock.advance(10 * 60_000 + 5_000); // "down" for ten intervals
    const restarted = make(snaps); // a new scheduler over the same persisted state
    await restarted.tick();
    await restarted.tick();
    expect(snaps.recs.size).toBe(1);
    clock.advance(59_000);
    await restarted.tick();
    expect(snaps.recs.size).toBe(1);
    clock.advance(1_000);
    await restarted.tick();
    expect(snaps.recs.size).toBe(2);
    expect((await new ScheduleStore(kv).list())[0]!.record.state).toBe('Idle');
  });

  it('a crash between choosing the name and the create resumes the same snapshot once', async () => {
    const { kv, clock, snaps, make } = setup({ 'snapshot.schedule.interval.seconds': '60' });
    await make(snaps).tick();
    clock.advance(60_000);
    // Simulate the crash: persist Taking as step (1) would, and no snapshot.
    const store = new ScheduleStore(kv);
    const [cur] = await store.list();
    await store.update(cur!, { state: 'Taking', takingName: scheduledSnapshotName(clock.nowMs()) });
    clock.advance(1_000);
    await make(snaps).tick();
    expect(snaps.names()).toEqual([scheduledSnapshotName(clock.nowMs() - 1_000)]);
    // And when the snapshot had been committed before the crash, it is not taken again.
    clock.advance(60_000);
    const [cur2] = await store.list();
    const name = scheduledSnapshotName(clock.nowMs());
    await store.update(cur2!, { state: 'Taking', takingName: name });
    await snaps.create('default', 'docs', name);
    const before = snaps.creates;
    await make(snaps).tick();
    expect(snaps.creates).toBe(before);
    expect((await store.list())[0]!.record.state).toBe('Idle');
  });

  it('a failed create is retried one interval later, not on every tick', async () => {
    const { clock, snaps, scheduler } = setup({ 'snapshot.schedule.interval.seconds': '60' });
    await scheduler.tick();
    clock.advance(60_000);
    snaps.failNext = true;
    expect((await scheduler.tick()).failed).toHaveLength(1);
    clock.advance(1_000);
    await scheduler.tick();
    expect(snaps.creates).toBe(1);
    clock.advance(59_000);
    await scheduler.tick();
    expect(snaps.recs.size).toBe(1);
  });

  it('retention by count drops the oldest scheduled snapshots, never pinned or user-named ones', async () => {
    const { clock, snaps, scheduler } = setup({ 'snapshot.schedule.interval.seconds': '10', 'snapshot.retention.count': '2' });
    await snaps.create('default', 'docs', 'mine'); // user-named: retention never touches it
    await scheduler.tick();
    const taken: string[] = [];
    for (let i = 0; i < 5; i++) {
      clock.advance(10_000);
      taken.push(...(await scheduler.tick()).taken.map((t) => t.split('/')[1]!));
      if (i === 0) snaps.pinned.add(snaps.recs.get(taken[0]!)!.id);
    }
    expect(snaps.names()).toEqual([taken[0], taken[3], taken[4], 'mine'].sort());
  });

  it('retention by age drops scheduled snapshots older than the max age', async () => {
    const { clock, snaps, scheduler } = setup({ 'snapshot.schedule.interval.seconds': '10', 'snapshot.retention.max_age.seconds': '25' });
    await scheduler.tick();
    const taken: string[] = [];
    for (let i = 0; i < 4; i++) {
      clock.advance(10_000);
      taken.push(...(await scheduler.tick()).taken.map((t) => t.split('/')[1]!));
    }
    // At t=40 s: snapshots taken at 10, 20, 30, 40; 10 s is 30 s old (> 25).
    expect(snaps.names()).toEqual(taken.slice(1).sort());
  });

  it('interval 0 takes nothing and forgets the schedule; retention still applies', async () => {
    const { kv, clock, snaps, colls, scheduler } = setup({ 'snapshot.schedule.interval.seconds': '10' });
    await scheduler.tick();
    clock.advance(10_000);
    await scheduler.tick();
    expect(snaps.recs.size).toBe(1);
    colls[0] = { ...colls[0]!, properties: { 'snapshot.schedule.interval.seconds': '0' } };
    clock.advance(100_000);
    await scheduler.tick();
    expect(snaps.recs.size).toBe(1);
    expect(await new ScheduleStore(kv).list()).toEqual([]);
    colls[0] = { ...colls[0]!, properties: { 'snapshot.retention.count': '0', 'snapshot.retention.max_age.seconds': '1' } };
    await scheduler.tick();
    expect(snaps.recs.size).toBe(0);
  });
});
