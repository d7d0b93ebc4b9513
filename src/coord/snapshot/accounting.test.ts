import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { deltaLogKey } from '../../storage/paths.js';
import { segmentRecord } from '../../testing/index.js';
import { GarbageCollector } from '../gc/garbage-collector.js';
import { GcEnv, HOUR_MS, MINUTE_MS } from '../gc/test-helpers.js';
import type { SegmentRecord } from '../records.js';
import { computeUsage, type SnapshotSegments } from './accounting.js';
import { RefIndex } from './ref-index.js';

const C = 1;

type Action =
  | { readonly t: 'create'; readonly index: boolean }
  | { readonly t: 'delete'; readonly pick: number }
  | { readonly t: 'compact'; readonly pick: number }
  | { readonly t: 'snapshot' }
  | { readonly t: 'dropSnapshot'; readonly pick: number };

const action: fc.Arbitrary<Action> = fc.oneof(
  { weight: 3, arbitrary: fc.record({ t: fc.constant('create' as const), index: fc.boolean() }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('delete' as const), pick: fc.nat() }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('compact' as const), pick: fc.nat() }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('snapshot' as const) }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('dropSnapshot' as const), pick: fc.nat() }) },
);

/** A history of flushes, deletes (a new deltalog on a live segment), compactions and snapshots over real GC. */
class World {
  readonly env = new GcEnv();
  readonly refs = new RefIndex();
  readonly snaps: SnapshotSegments[] = [];
  readonly gc: GarbageCollector;
  #nextSeg = 1;
  #nextSnap = 1;
  #nextLog = 10_000;

  constructor() {
    this.refs.markLoaded();
    this.gc = new GarbageCollector(
      { catalog: this.env.catalog, store: this.env.store, clock: this.env.clock, guard: this.refs },
      { droppedGraceMs: 10 * MINUTE_MS, orphanGraceMs: 24 * HOUR_MS },
    );
  }

  live(): SegmentRecord[] {
    return this.env.catalog.segments(C).filter((s) => s.state !== 'Dropped');
  }

  async apply(a: Action): Promise<void> {
    const live = this.live();
    switch (a.t) {
      case 'create': {
        const id = this.#nextSeg++;
        await this.env.createSegment({ collectionId: C, id, deltalogs: 0, ...(a.index ? { buildId: 5000 + id } : {}) });
        return;
      }
      case 'delete': {
        const seg = live[a.pick % Math.max(1, live.length)];
        if (!seg) return;
        const logId = this.#nextLog++;
        const path = deltaLogKey(C, seg.partitionId, seg.id, logId);
        await this.env.memory.put(path, new Uint8Array(17));
        const next = { ...seg, deltalogs: [...seg.deltalogs, { logId, path, entries: 1, tsFrom: '1', tsTo: '1', size: 17 }] };
        await this.env.catalog.commit([{ type: 'putSegment', record: next }]);
        return;
      }
      case 'compact': {
        // Two live segments become one new one (a merge rewrites the rows into new files).
        const [x, y] = [live[a.pick % Math.max(1, live.length)], live[(a.pick + 1) % Math.max(1, live.length)]];
        if (!x || !y || x === y) return;
        await this.env.dropSegment(C, x.id);
        await this.env.dropSegment(C, y.id);
        await this.env.createSegment({ collectionId: C, id: this.#nextSeg++, deltalogs: 0 });
        return;
      }
      case 'snapshot': {
        const id = this.#nextSnap++;
        this.snaps.push({ record: { id, name: `s${id}`, createdAtMs: id }, segments: live });
        this.refs.add(
          id,
          C,
          live.map((s) => s.id),
          live.flatMap((s) => s.indexes.map((i) => i.buildId)),
        );
        return;
      }
      case 'dropSnapshot': {
        const i = a.pick % Math.max(1, this.snaps.length);
        const s = this.snaps[i];
        if (!s) return;
        this.snaps.splice(i, 1);
        this.refs.remove(s.record.id);
        return;
      }
    }
  }

  /** Past every grace, then one GC pass: bytes it deleted. */
  async collect(): Promise<number> {
    this.env.clock.advance(25 * HOUR_MS);
    return (await this.gc.tick()).bytesDeleted;
  }
}

describe('snapshot accounting', () => {
  it('a snapshot alone: referenced = exclusive once the live collection moved on', () => {
    const a = segmentRecord({ collectionId: C, id: 1, deltalogs: 0 });
    const b = segmentRecord({ collectionId: C, id: 2, deltalogs: 0 });
    const bytes = (s: SegmentRecord) =>
      Object.values(s.binlogs)
        .flat()
        .reduce((n, l) => n + l.size, 0) + s.statslogs.reduce((n, l) => n + l.size, 0);
    const snap = { record: { id: 9, name: 's', createdAtMs: 0 }, segments: [a, b] };
    const sharing = computeUsage([a, b], [snap]);
    expect(sharing.snapshots[0]).toMatchObject({ referencedBytes: bytes(a) + bytes(b), exclusiveBytes: 0 });
    expect(sharing.snapshotOnlyBytes).toBe(0);
    const moved = computeUsage([{ ...a, state: 'Dropped' }, b], [snap]);
    expect(moved.snapshots[0]).toMatchObject({ referencedBytes: bytes(a) + bytes(b), exclusiveBytes: bytes(a) });
    expect(moved.liveBytes).toBe(bytes(b));
    // A second snapshot of the same segments: neither keeps anything alone, both keep it together.
    const two = computeUsage([{ ...a, state: 'Dropped' }, b], [snap, { ...snap, record: { id: 10, name: 't', createdAtMs: 1 } }]);
    expect(two.snapshots.map((s) => s.exclusiveBytes)).toEqual([0, 0]);
    expect(two.snapshotOnlyBytes).toBe(bytes(a));
  });

  it('counts deltalogs a Dropped segment gained after the snapshot (GC keeps its whole record)', async () => {
    const w = new World();
    await w.env.createCollection(C);
    for (const a of [
      { t: 'create', index: true },
      { t: 'create', index: false },
      { t: 'snapshot' },
      { t: 'delete', pick: 0 },
      { t: 'compact', pick: 0 },
    ] as const)
      await w.apply(a);
    await w.collect();
    const usage = computeUsage(w.env.catalog.segments(C), w.snaps);
    await w.apply({ t: 'dropSnapshot', pick: 0 });
    expect(await w.collect()).toBe(usage.snapshots[0]!.exclusiveBytes);
    expect(usage.snapshots[0]!.exclusiveBytes).toBeGreaterThan(0);
  });

  it('matches what GC actually frees, over random histories', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(action, { minLength: 1, maxLength: 40 }), async (actions) => {
        const w = new World();
        await w.env.createCollection(C);
        for (const a of actions) await w.apply(a);
        await w.collect(); // garbage that no snapshot holds goes first
        const all = computeUsage(w.env.catalog.segments(C), w.snaps);
        let freedByAll = 0;
        // Drop the snapshots one by one: each drop frees exactly its exclusive bytes at that moment.
        while (w.snaps.length > 0) {
          const usage = computeUsage(w.env.catalog.segments(C), w.snaps);
          const victim = w.snaps[0]!;
          await w.apply({ t: 'dropSnapshot', pick: 0 });
          const freed = await w.collect();
          expect(freed).toBe(usage.snapshots[0]!.exclusiveBytes);
          expect(usage.snapshots[0]!.snapshotId).toBe(victim.record.id);
          freedByAll += freed;
        }
        expect(freedByAll).toBe(all.snapshotOnlyBytes);
        // Nothing but the live collection is left.
        expect(computeUsage(w.env.catalog.segments(C), []).liveBytes).toBe(all.liveBytes);
      }),
      { numRuns: 200 },
    );
  });
});
