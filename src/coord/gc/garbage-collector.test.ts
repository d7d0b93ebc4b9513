import { afterEach, describe, expect, it, vi } from 'vitest';
import { isQuiverError } from '../../common/errors.js';
import { failKeysWithPrefix } from '../../storage/faulty-object-store.js';
import { indexFileKey, insertLogKey } from '../../storage/paths.js';
import type { CatalogChange } from '../catalog.js';
import { GarbageCollector, GC_DEFAULTS, type GcCatalog } from './garbage-collector.js';
import { PARTITION_ID } from '../../testing/index.js';
import { GcEnv, HOUR_MS, MINUTE_MS } from './test-helpers.js';
import { segmentFiles } from './segment-files.js';

const GRACE_MS = 10 * MINUTE_MS;
const ORPHAN_GRACE_MS = 24 * HOUR_MS;

async function metaKeys(env: GcEnv): Promise<string[]> {
  return (await env.kv.scan('')).map((e) => e.key);
}

describe('GarbageCollector options', () => {
  it('applies the defaults', () => {
    const env = new GcEnv();
    const gc = new GarbageCollector({ catalog: env.catalog, store: env.store, clock: env.clock, guard: env.guard });
    expect(gc.options).toEqual(GC_DEFAULTS);
  });

  it('refuses an orphan grace not longer than the dropped grace, naming both', () => {
    const env = new GcEnv();
    let caught: unknown;
    try {
      env.gc({ droppedGraceMs: 1000, orphanGraceMs: 1000 });
    } catch (e) {
      caught = e;
    }
    expect(isQuiverError(caught, 'ParameterInvalid')).toBe(true);
    expect((caught as Error).message).toContain('orphanGraceMs (1000)');
    expect(() => env.gc({ deleteConcurrency: 0 })).toThrow(/deleteConcurrency/);
    expect(() => env.gc({ maxDeletesPerTick: 0.5 })).toThrow(/maxDeletesPerTick/);
    expect(() => env.gc({ droppedGraceMs: -1 })).toThrow(/droppedGraceMs/);
  });
});

describe('Dropped segments', () => {
  it('keeps files before the grace period and removes files, then meta, after it', async () => {
    const env = new GcEnv();
    await env.createCollection(1);
    const seg = await env.createSegment({ collectionId: 1, id: 10, buildId: 500 });
    const live = await env.createSegment({ collectionId: 1, id: 11 });
    await env.dropSegment(1, 10);

    // Every meta delete is checked against the store at the moment it is committed.
    const order: string[] = [];
    const spy: GcCatalog = {
      allCollections: () => env.catalog.allCollections(),
      segments: (c) => env.catalog.segments(c),
      segmentCollections: () => env.catalog.segmentCollections(),
      commit: async (changes: readonly CatalogChange[]) => {
        for (const c of changes) {
          if (c.type === 'deleteSegment') {
            const rec = env.catalog.segment(c.collectionId, c.segmentId);
            expect(rec).toBeDefined();
            expect(await env.hasNone(rec!)).toBe(true);
            order.push(`meta ${c.segmentId}`);
          }
        }
        await env.catalog.commit(changes);
      },
    };
    const metrics = { files: 0, bytes: 0, errors: 0 };
    const gc = new GarbageCollector(
      {
        catalog: spy,
        store: env.store,
        clock: env.clock,
        guard: env.guard,
        metrics: { filesReclaimed: (n) => (metrics.files += n), bytesReclaimed: (n) => (metrics.bytes += n), errors: (n) => (metrics.errors += n) },
      },
      { droppedGraceMs: GRACE_MS, orphanGraceMs: ORPHAN_GRACE_MS },
    );

    env.clock.advance(GRACE_MS - 1);
    const early = await gc.tick();
    expect(early.filesDeleted).toBe(0);
    expect(await env.hasAll(seg)).toBe(true);
    expect(env.catalog.segment(1, 10)).toBeDefined();

    env.clock.advance(1);
    const r = await gc.tick();
    const files = segmentFiles(seg);
    expect(r.filesDeleted).toBe(files.length);
    expect(r.bytesDeleted).toBe(files.reduce((a, f) => a + f.size, 0));
    expect(r.segmentsRemoved).toBe(1);
    expect(r.errors).toEqual([]);
    expect(await env.hasNone(seg)).toBe(true);
    expect(env.catalog.segment(1, 10)).toBeUndefined();
    expect(order).toEqual(['meta 10']);
    expect(metrics).toEqual({ files: files.length, bytes: r.bytesDeleted, errors: 0 });
    // The live segment and the collection are untouched.
    expect(await env.hasAll(live)).toBe(true);
    expect(env.catalog.collection(1)).toBeDefined();
  });

  it('starts the grace of a Dropped record without droppedAtMs when it first sees it', async () => {
    const env = new GcEnv();
    await env.createCollection(1);
    const seg = await env.createSegment({ collectionId: 1, id: 10, state: 'Dropped' });
    const gc = env.gc();
    env.clock.advance(HOUR_MS);
    await gc.tick();
    expect(await env.hasAll(seg)).toBe(true);
    env.clock.advance(GRACE_MS);
    expect((await gc.tick()).segmentsRemoved).toBe(1);
    expect(await env.hasNone(seg)).toBe(true);
  });

  it('skips a segment in use and collects it once released', async () => {
    const env = new GcEnv();
    await env.createCollection(1);
    const seg = await env.createSegment({ collectionId: 1, id: 10 });
    await env.dropSegment(1, 10);
    env.inUse.add('1/10');
    const gc = env.gc();
    env.clock.advance(GRACE_MS);
    expect((await gc.tick()).filesDeleted).toBe(0);
    expect(await env.hasAll(seg)).toBe(true);
    env.inUse.delete('1/10');
    expect((await gc.tick()).segmentsRemoved).toBe(1);
  });

  it('never deletes a key that a live segment also lists', async () => {
    const env = new GcEnv();
    await env.createCollection(1);
    const dropped = await env.createSegment({ collectionId: 1, id: 10 });
    const shared = segmentFiles(dropped)[0]!;
    const live = await env.createSegment({ collectionId: 1, id: 11 });
    await env.catalog.commit([{ type: 'putSegment', record: { ...live, deltalogs: [...live.deltalogs, { ...dropped.deltalogs[0]!, path: shared.key }] } }]);
    await env.dropSegment(1, 10);
    env.clock.advance(GRACE_MS);
    await env.gc().tick();
    expect(env.catalog.segment(1, 10)).toBeUndefined();
    expect(await env.has(shared.key)).toBe(true);
  });

  it('runs concurrent ticks one after the other', async () => {
    const env = new GcEnv();
    await env.createCollection(1);
    await env.createSegment({ collectionId: 1, id: 10 });
    await env.dropSegment(1, 10);
    env.clock.advance(GRACE_MS);
    const gc = env.gc();
    const [a, b] = await Promise.all([gc.tick(), gc.tick()]);
    expect(a.segmentsRemoved + b.segmentsRemoved).toBe(1);
    expect(a.filesDeleted + b.filesDeleted).toBe(5);
  });
});

describe('Orphans', () => {
  it('removes an unlisted file only after the orphan grace, and never a file a live segment lists', async () => {
    const env = new GcEnv();
    await env.createCollection(1);
    const live = await env.createSegment({ collectionId: 1, id: 10, buildId: 77 });
    const orphan = insertLogKey(1, PARTITION_ID, 99, 100, 1);
    const orphanIndex = indexFileKey(88, 1, PARTITION_ID, 99, 'hnsw.bin');
    await env.memory.put(orphan, new Uint8Array(42));
    await env.memory.put(orphanIndex, new Uint8Array(8));
    const gc = env.gc();

    env.clock.advance(ORPHAN_GRACE_MS - 1);
    expect((await gc.tick()).filesDeleted).toBe(0);
    expect(await env.has(orphan)).toBe(true);

    env.clock.advance(1);
    const r = await gc.tick();
    expect(r.orphanFilesDeleted).toBe(2);
    expect(r.bytesDeleted).toBe(50);
    expect(await env.has(orphan)).toBe(false);
    expect(await env.has(orphanIndex)).toBe(false);

    env.clock.advance(30 * 24 * HOUR_MS);
    await gc.tick();
    expect(await env.hasAll(live)).toBe(true);
  });

  it('keeps an unlisted index file whose build id a segment record lists', async () => {
    const env = new GcEnv();
    await env.createCollection(1);
    await env.createSegment({ collectionId: 1, id: 10, buildId: 77 });
    const extra = indexFileKey(77, 1, PARTITION_ID, 10, 'extra.bin');
    await env.memory.put(extra, new Uint8Array(1));
    env.clock.advance(2 * ORPHAN_GRACE_MS);
    await env.gc().tick();
    expect(await env.has(extra)).toBe(true);
  });

  it('leaves foreign keys and snapshots/ alone and reports each foreign key once', async () => {
    const env = new GcEnv();
    const foreign = ['insert_log/README', 'delta_log/1/2/x/4', 'index_files/5/1/7/9/a/b'];
    for (const k of foreign) await env.memory.put(k, new Uint8Array(1));
    await env.memory.put('snapshots/1/metadata/5.json', new Uint8Array(1));
    await env.memory.put('other/1/7/99/100/1', new Uint8Array(1));
    env.clock.advance(2 * ORPHAN_GRACE_MS);
    const gc = env.gc();
    const first = await gc.tick();
    expect([...first.foreignKeys].sort()).toEqual([...foreign].sort());
    expect(first.filesDeleted).toBe(0);
    expect((await gc.tick()).foreignKeys).toEqual([]);
    expect((await env.keys()).length).toBe(5);
  });

  it('treats files under an Importing segment as in use, listed or not', async () => {
    const env = new GcEnv();
    await env.createCollection(1);
    const importing = await env.createSegment({ collectionId: 1, id: 10, state: 'Importing', buildId: 5 });
    // Copied (a hardlink keeps the source's old mtime) but not yet reported in the record.
    const copied = insertLogKey(1, PARTITION_ID, 10, 102, 50);
    const copiedIndex = indexFileKey(6, 1, PARTITION_ID, 10, 'hnsw.bin');
    await env.memory.put(copied, new Uint8Array(1));
    await env.memory.put(copiedIndex, new Uint8Array(1));
    env.clock.advance(10 * ORPHAN_GRACE_MS);
    const r = await env.gc().tick();
    expect(r.filesDeleted).toBe(0);
    expect(await env.hasAll(importing)).toBe(true);
    expect(await env.has(copied)).toBe(true);
    expect(await env.has(copiedIndex)).toBe(true);
    expect(env.catalog.segment(1, 10)?.state).toBe('Importing');
  });

  it('skips an orphan of a segment the guard references or that is in use', async () => {
    const env = new GcEnv();
    await env.createCollection(1);
    const a = insertLogKey(1, PARTITION_ID, 20, 100, 1);
    const b = insertLogKey(1, PARTITION_ID, 21, 100, 1);
    await env.memory.put(a, new Uint8Array(1));
    await env.memory.put(b, new Uint8Array(1));
    env.guard.referenceSegment(1, 20);
    env.inUse.add('1/21');
    env.clock.advance(2 * ORPHAN_GRACE_MS);
    const gc = env.gc();
    expect((await gc.tick()).filesDeleted).toBe(0);
    env.guard.releaseSegment(1, 20);
    env.inUse.delete('1/21');
    expect((await gc.tick()).orphanFilesDeleted).toBe(2);
  });
});

describe('Reference guard', () => {
  it('keeps a referenced Dropped segment (files and meta) until it is released', async () => {
    const env = new GcEnv();
    await env.createCollection(1);
    const seg = await env.createSegment({ collectionId: 1, id: 10 });
    await env.dropSegment(1, 10);
    env.guard.referenceSegment(1, 10);
    const gc = env.gc();
    for (let i = 0; i < 5; i++) {
      env.clock.advance(10 * ORPHAN_GRACE_MS);
      await gc.tick();
    }
    expect(await env.hasAll(seg)).toBe(true);
    expect(env.catalog.segment(1, 10)).toBeDefined();
    env.guard.releaseSegment(1, 10);
    expect((await gc.tick()).segmentsRemoved).toBe(1);
    expect(await env.hasNone(seg)).toBe(true);
  });

  it('deletes nothing of a collection whose guard is not ready, then collects it once ready', async () => {
    const env = new GcEnv();
    await env.createCollection(1);
    await env.createCollection(2);
    const seg1 = await env.createSegment({ collectionId: 1, id: 10 });
    const seg2 = await env.createSegment({ collectionId: 2, id: 20 });
    await env.dropSegment(1, 10);
    await env.dropSegment(2, 20);
    const orphan1 = insertLogKey(1, PARTITION_ID, 99, 100, 1);
    await env.memory.put(orphan1, new Uint8Array(1));
    const orphanIndex = indexFileKey(123, 1, PARTITION_ID, 98, 'hnsw.bin');
    await env.memory.put(orphanIndex, new Uint8Array(1));
    env.guard.setReady(1, false);
    env.clock.advance(2 * ORPHAN_GRACE_MS);
    const gc = env.gc();

    const r = await gc.tick();
    expect(r.skippedNotReady).toEqual([1]);
    expect(await env.hasAll(seg1)).toBe(true);
    expect(env.catalog.segment(1, 10)).toBeDefined();
    expect(await env.has(orphan1)).toBe(true);
    // Index keys carry no collection id: one collection not ready keeps every index orphan.
    expect(await env.has(orphanIndex)).toBe(true);
    // Collection 2 is ready and collected.
    expect(await env.hasNone(seg2)).toBe(true);

    env.guard.setReady(1, true);
    const r2 = await gc.tick();
    expect(r2.skippedNotReady).toEqual([]);
    expect(await env.hasNone(seg1)).toBe(true);
    expect(env.catalog.segment(1, 10)).toBeUndefined();
    expect(await env.has(orphan1)).toBe(false);
    expect(await env.has(orphanIndex)).toBe(false);
  });

  it('keeps index files of a referenced build id', async () => {
    const env = new GcEnv();
    await env.createCollection(1);
    const seg = await env.createSegment({ collectionId: 1, id: 10, buildId: 500 });
    await env.dropSegment(1, 10);
    const orphanIndex = indexFileKey(600, 1, PARTITION_ID, 99, 'hnsw.bin');
    await env.memory.put(orphanIndex, new Uint8Array(1));
    env.guard.referenceBuild(500);
    env.guard.referenceBuild(600);
    env.clock.advance(2 * ORPHAN_GRACE_MS);
    const gc = env.gc();
    await gc.tick();
    expect(await env.hasAll(seg)).toBe(true);
    expect(env.catalog.segment(1, 10)).toBeDefined();
    expect(await env.has(orphanIndex)).toBe(true);
    env.guard.releaseBuild(500);
    env.guard.releaseBuild(600);
    const r = await gc.tick();
    expect(r.segmentsRemoved).toBe(1);
    expect(r.orphanFilesDeleted).toBe(1);
  });

  it('fails closed when the guard throws', async () => {
    const env = new GcEnv();
    await env.createCollection(1);
    const seg = await env.createSegment({ collectionId: 1, id: 10 });
    await env.dropSegment(1, 10);
    await env.memory.put(insertLogKey(1, PARTITION_ID, 99, 100, 1), new Uint8Array(1));
    env.clock.advance(2 * ORPHAN_GRACE_MS);
    const boom = (): boolean => {
      throw new Error('refs not loaded');
    };
    for (const guard of [
      { isReady: boom, isSegmentReferenced: () => false, isBuildReferenced: () => false },
      { isReady: () => true, isSegmentReferenced: boom, isBuildReferenced: () => false },
    ]) {
      const gc = new GarbageCollector(
        { catalog: env.catalog, store: env.store, clock: env.clock, guard },
        { droppedGraceMs: GRACE_MS, orphanGraceMs: ORPHAN_GRACE_MS },
      );
      const r = await gc.tick();
      expect(r.filesDeleted).toBe(0);
      expect(r.errors.join('\n')).toContain('refs not loaded');
    }
    expect(await env.hasAll(seg)).toBe(true);
  });
});

describe('Dropped collections', () => {
  it('reclaims unreferenced segments of any state, keeps referenced ones and the record until none is left', async () => {
    const env = new GcEnv();
    await env.createCollection(1);
    await env.createCollection(2);
    const flushed = await env.createSegment({ collectionId: 1, id: 10, buildId: 1000 });
    const dropped = await env.createSegment({ collectionId: 1, id: 11 });
    const kept = await env.createSegment({ collectionId: 1, id: 12 });
    const importing = await env.createSegment({ collectionId: 1, id: 13, state: 'Importing' });
    const other = await env.createSegment({ collectionId: 2, id: 20 });
    await env.dropSegment(1, 11);
    env.guard.referenceSegment(1, 12);
    await env.dropCollection(1);
    const gc = env.gc();

    env.clock.advance(GRACE_MS - 1);
    expect((await gc.tick()).filesDeleted).toBe(0);
    for (const s of [flushed, dropped, kept, importing]) expect(await env.hasAll(s)).toBe(true);

    env.clock.advance(1);
    const r = await gc.tick();
    expect(r.segmentsRemoved).toBe(3);
    expect(r.collectionsRemoved).toBe(0);
    for (const s of [flushed, dropped, importing]) expect(await env.hasNone(s)).toBe(true);
    expect(await env.hasAll(kept)).toBe(true);
    expect(env.catalog.segments(1).map((s) => s.id)).toEqual([12]);
    expect(env.catalog.collectionIncludingDropped(1)).toBeDefined();

    env.guard.releaseSegment(1, 12);
    const r2 = await gc.tick();
    expect(r2.segmentsRemoved).toBe(1);
    expect(r2.collectionsRemoved).toBe(1);
    expect(env.catalog.collectionIncludingDropped(1)).toBeUndefined();
    expect(env.catalog.checkpoint(1)).toBeUndefined();
    expect(await env.hasNone(kept)).toBe(true);
    expect(await env.hasAll(other)).toBe(true);
    expect(env.catalog.checkpoint(2)).toBe(0);
  });

  it('keeps the record of a collection the guard references, and everything while not ready', async () => {
    const env = new GcEnv();
    await env.createCollection(1);
    const seg = await env.createSegment({ collectionId: 1, id: 10 });
    await env.dropCollection(1);
    env.guard.referenceCollection(1);
    env.guard.setReady(1, false);
    env.clock.advance(GRACE_MS);
    const gc = env.gc();
    expect((await gc.tick()).skippedNotReady).toEqual([1]);
    expect(await env.hasAll(seg)).toBe(true);
    env.guard.setReady(1, true);
    const r = await gc.tick();
    expect(r.segmentsRemoved).toBe(1);
    expect(r.collectionsRemoved).toBe(0);
    expect(env.catalog.collectionIncludingDropped(1)).toBeDefined();
    env.guard.releaseCollection(1);
    expect((await gc.tick()).collectionsRemoved).toBe(1);
  });

  it('removes an empty dropped collection', async () => {
    const env = new GcEnv();
    await env.createCollection(1);
    await env.dropCollection(1);
    env.clock.advance(GRACE_MS);
    expect((await env.gc().tick()).collectionsRemoved).toBe(1);
    expect(await metaKeys(env)).toEqual([]);
  });
});

describe('Importing segments of a live collection', () => {
  it('are never collected', async () => {
    const env = new GcEnv();
    await env.createCollection(1);
    const seg = await env.createSegment({ collectionId: 1, id: 10, state: 'Importing', droppedAtMs: 0 });
    env.clock.advance(10 * ORPHAN_GRACE_MS);
    const gc = env.gc();
    await gc.tick();
    await gc.tick();
    expect(await env.hasAll(seg)).toBe(true);
    expect(env.catalog.segment(1, 10)).toBeDefined();
  });
});

describe('Faults', () => {
  it('keeps the meta when a file delete fails, reports it, and completes on the next tick', async () => {
    const env = new GcEnv();
    await env.createCollection(1);
    const bad = await env.createSegment({ collectionId: 1, id: 10 });
    const good = await env.createSegment({ collectionId: 1, id: 11 });
    await env.dropSegment(1, 10);
    await env.dropSegment(1, 11);
    const badKey = segmentFiles(bad)[1]!.key;
    env.store.setFailOn((op, key) => op === 'delete' && key === badKey);
    env.clock.advance(GRACE_MS);
    const errors: number[] = [];
    const gc = new GarbageCollector(
      {
        catalog: env.catalog,
        store: env.store,
        clock: env.clock,
        guard: env.guard,
        metrics: { filesReclaimed: () => {}, bytesReclaimed: () => {}, errors: (n) => errors.push(n) },
      },
      { droppedGraceMs: GRACE_MS, orphanGraceMs: ORPHAN_GRACE_MS },
    );
    const r = await gc.tick();
    expect(r.errors).toHaveLength(1);
    expect(r.errors[0]).toContain(badKey);
    expect(errors).toEqual([1]);
    expect(env.catalog.segment(1, 10)).toBeDefined();
    expect(await env.has(badKey)).toBe(true);
    expect(env.catalog.segment(1, 11)).toBeUndefined();
    expect(await env.hasNone(good)).toBe(true);

    env.store.setFailOn(() => false);
    const r2 = await gc.tick();
    expect(r2.errors).toEqual([]);
    expect(r2.segmentsRemoved).toBe(1);
    expect(await env.hasNone(bad)).toBe(true);
    expect(env.catalog.segment(1, 10)).toBeUndefined();
  });

  it("keeps the meta when the store fails after a delete took effect ('after' faults)", async () => {
    const env = new GcEnv();
    await env.createCollection(1);
    const seg = await env.createSegment({ collectionId: 1, id: 10 });
    await env.dropSegment(1, 10);
    env.store.setFailOn(failKeysWithPrefix('delete', 'insert_log/'), 'after');
    env.clock.advance(GRACE_MS);
    const gc = env.gc();
    expect((await gc.tick()).errors.length).toBe(3);
    expect(env.catalog.segment(1, 10)).toBeDefined();
    env.store.setFailOn(() => false);
    expect((await gc.tick()).segmentsRemoved).toBe(1);
    expect(await env.hasNone(seg)).toBe(true);
  });

  it('retries a failed meta commit on the next tick', async () => {
    const env = new GcEnv();
    await env.createCollection(1);
    const seg = await env.createSegment({ collectionId: 1, id: 10 });
    await env.dropSegment(1, 10);
    let fail = true;
    const flaky: GcCatalog = {
      allCollections: () => env.catalog.allCollections(),
      segments: (c) => env.catalog.segments(c),
      segmentCollections: () => env.catalog.segmentCollections(),
      commit: async (changes) => {
        if (fail) throw new Error('meta unavailable');
        await env.catalog.commit(changes);
      },
    };
    const gc = new GarbageCollector(
      { catalog: flaky, store: env.store, clock: env.clock, guard: env.guard },
      { droppedGraceMs: GRACE_MS, orphanGraceMs: ORPHAN_GRACE_MS },
    );
    env.clock.advance(GRACE_MS);
    const r = await gc.tick();
    expect(r.errors.join()).toContain('meta unavailable');
    expect(await env.hasNone(seg)).toBe(true);
    expect(env.catalog.segment(1, 10)).toBeDefined();
    fail = false;
    const r2 = await gc.tick();
    expect(r2.segmentsRemoved).toBe(1);
    expect(r2.errors).toEqual([]);
  });

  it('reports a failed listing and still collects dropped segments', async () => {
    const env = new GcEnv();
    await env.createCollection(1);
    const seg = await env.createSegment({ collectionId: 1, id: 10 });
    await env.dropSegment(1, 10);
    env.store.setFailOn((op) => op === 'list');
    env.clock.advance(GRACE_MS);
    const r = await env.gc().tick();
    expect(r.errors).toHaveLength(4);
    expect(r.segmentsRemoved).toBe(1);
    expect(await env.hasNone(seg)).toBe(true);
  });

  it('never deletes a live file whatever fails', async () => {
    for (const when of ['before', 'after'] as const) {
      for (let n = 1; n <= 12; n++) {
        const env = new GcEnv();
        await env.createCollection(1);
        const live = await env.createSegment({ collectionId: 1, id: 1, buildId: 3 });
        await env.createSegment({ collectionId: 1, id: 2, buildId: 4 });
        await env.dropSegment(1, 2);
        await env.memory.put(insertLogKey(1, PARTITION_ID, 9, 100, 1), new Uint8Array(1));
        let calls = 0;
        env.store.setFailOn(() => ++calls % n === 0, when);
        const gc = env.gc();
        for (let i = 0; i < 4; i++) {
          env.clock.advance(ORPHAN_GRACE_MS);
          await gc.tick();
          expect(await env.hasAll(live)).toBe(true);
        }
        env.store.setFailOn(() => false);
        await gc.tick();
        expect((await env.keys()).sort()).toEqual(
          segmentFiles(live)
            .map((f) => f.key)
            .sort(),
        );
      }
    }
  });
});

describe('Dry run', () => {
  it('lists exactly what a real run then deletes, and changes nothing', async () => {
    const env = new GcEnv();
    await env.createCollection(1);
    await env.createCollection(2);
    await env.createCollection(3);
    await env.createSegment({ collectionId: 1, id: 10, buildId: 100 });
    await env.createSegment({ collectionId: 1, id: 11 });
    await env.createSegment({ collectionId: 1, id: 12 });
    await env.createSegment({ collectionId: 2, id: 20, buildId: 200 });
    await env.createSegment({ collectionId: 2, id: 21, state: 'Importing' });
    await env.createSegment({ collectionId: 3, id: 30 });
    await env.dropSegment(1, 10);
    await env.dropSegment(1, 12);
    env.guard.referenceSegment(1, 12);
    await env.dropCollection(2);
    await env.memory.put(insertLogKey(3, PARTITION_ID, 99, 100, 1), new Uint8Array(3));
    await env.memory.put(indexFileKey(200, 1, PARTITION_ID, 20, 'unlisted.bin'), new Uint8Array(3));
    await env.memory.put(insertLogKey(2, PARTITION_ID, 21, 100, 77), new Uint8Array(3));
    env.clock.advance(ORPHAN_GRACE_MS);
    await env.memory.put(insertLogKey(3, PARTITION_ID, 98, 100, 1), new Uint8Array(3)); // too young

    const gc = env.gc();
    const beforeKeys = await env.keys();
    const beforeMeta = await metaKeys(env);
    const dry = await gc.tick({ dryRun: true });
    expect(dry.dryRun).toBe(true);
    expect(await env.keys()).toEqual(beforeKeys);
    expect(await metaKeys(env)).toEqual(beforeMeta);
    expect(dry.wouldDelete.length).toBeGreaterThan(0);

    const real = await gc.tick();
    const afterKeys = new Set(await env.keys());
    const deleted = beforeKeys.filter((k) => !afterKeys.has(k));
    expect([...dry.wouldDelete].sort()).toEqual(deleted.sort());
    expect(real.wouldDelete).toEqual([]);
    for (const f of ['filesDeleted', 'bytesDeleted', 'segmentsRemoved', 'collectionsRemoved', 'orphanFilesDeleted'] as const) {
      expect(real[f]).toBe(dry[f]);
    }
    expect(real.collectionsRemoved).toBe(1);
  });

  it('is the default when the options say so', async () => {
    const env = new GcEnv();
    await env.createCollection(1);
    const seg = await env.createSegment({ collectionId: 1, id: 10 });
    await env.dropSegment(1, 10);
    env.clock.advance(GRACE_MS);
    const r = await env.gc({ dryRun: true }).tick();
    expect(r.wouldDelete).toEqual(segmentFiles(seg).map((f) => f.key));
    expect(await env.hasAll(seg)).toBe(true);
  });
});

describe('Work bound', () => {
  it('spreads work over ticks with maxDeletesPerTick and finishes', async () => {
    const env = new GcEnv();
    await env.createCollection(1);
    for (let s = 1; s <= 4; s++) {
      await env.createSegment({ collectionId: 1, id: s });
      await env.dropSegment(1, s);
    }
    for (let i = 0; i < 3; i++) await env.memory.put(insertLogKey(1, PARTITION_ID, 90 + i, 100, 1), new Uint8Array(1));
    env.clock.advance(ORPHAN_GRACE_MS);
    const gc = env.gc({ maxDeletesPerTick: 8 });
    const reports = [];
    for (let i = 0; i < 10; i++) {
      const r = await gc.tick();
      reports.push(r);
      // A segment is never split, so a tick overshoots by less than one segment (5 files).
      expect(r.filesDeleted).toBeLessThan(8 + 5);
      if (!r.budgetExhausted) break;
    }
    expect(reports.length).toBeGreaterThan(1);
    expect(reports.reduce((a, r) => a + r.segmentsRemoved, 0)).toBe(4);
    expect(reports.reduce((a, r) => a + r.orphanFilesDeleted, 0)).toBe(3);
    expect(await env.keys()).toEqual([]);
  });
});

describe('Loop', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('ticks on its interval, and stop is idempotent and awaits the tick in flight', async () => {
    vi.useFakeTimers();
    const env = new GcEnv();
    await env.createCollection(1);
    const seg = await env.createSegment({ collectionId: 1, id: 10 });
    await env.dropSegment(1, 10);
    env.clock.advance(GRACE_MS);
    const gc = env.gc();
    gc.start(1000);
    gc.start(1000);
    await vi.advanceTimersByTimeAsync(999);
    expect(await env.hasAll(seg)).toBe(true);
    await vi.advanceTimersByTimeAsync(1);
    await gc.stop();
    await gc.stop();
    expect(await env.hasNone(seg)).toBe(true);
    expect(env.catalog.segment(1, 10)).toBeUndefined();
    expect(vi.getTimerCount()).toBe(0);
    expect(() => gc.start(0)).toThrow(/intervalMs/);
  });

  it('runs one loop after stop and start', async () => {
    vi.useFakeTimers();
    const env = new GcEnv();
    let ticks = 0;
    const counting: GcCatalog = {
      allCollections: () => {
        ticks += 1;
        return env.catalog.allCollections();
      },
      segments: (c) => env.catalog.segments(c),
      segmentCollections: () => env.catalog.segmentCollections(),
      commit: (changes) => env.catalog.commit(changes),
    };
    const gc = new GarbageCollector({ catalog: counting, store: env.store, clock: env.clock, guard: env.guard }, {});
    gc.start(100);
    await vi.advanceTimersByTimeAsync(100);
    const stopping = gc.stop();
    gc.start(100);
    await stopping;
    ticks = 0;
    await vi.advanceTimersByTimeAsync(1000);
    await gc.stop();
    // Each tick reads the collections twice (plan, orphan references): 10 ticks in 1000 ms, not 20.
    expect(ticks).toBe(20);
  });
});
