import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FakeClock } from '../../common/clock.js';
import { isQuiverError } from '../../common/errors.js';
import { MemoryMetaKV } from '../../meta/memory-kv.js';
import { Engine } from '../../wiring/engine.js';
import { MemoryObjectStore } from '../../storage/memory-object-store.js';
import { openLocalWal, type LocalWal } from '../../wal/wal.js';
import type { FieldSchema } from '../../schema/types.js';
import { RefIndex } from './ref-index.js';
import { SNAPSHOT_DEFAULTS, SnapshotManager, type SnapshotHost } from './snapshot-manager.js';
import { readSegment } from '../../segcore/segment-io.js';

const HOUR = 3600_000;

function field(f: Partial<FieldSchema> & Pick<FieldSchema, 'name' | 'dataType'>): Omit<FieldSchema, 'fieldId'> {
  return {
    description: '',
    isPrimaryKey: false,
    autoId: false,
    nullable: false,
    isDynamic: false,
    isPartitionKey: false,
    isClusteringKey: false,
    typeParams: {},
    ...f,
  };
}

describe('SnapshotManager state machine (fake clock, tick())', () => {
  let dir: string;
  let clock: FakeClock;
  let engine: Engine;
  let wal: LocalWal;
  let kv: MemoryMetaKV;
  let store: MemoryObjectStore;
  let mgr: SnapshotManager;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'quiver-snapmgr-'));
    clock = new FakeClock(Date.now());
    kv = new MemoryMetaKV();
    store = new MemoryObjectStore();
    wal = await openLocalWal(join(dir, 'wal'));
    const log = pino({ level: 'silent' });
    engine = await Engine.open(
      { kv, store, wal, clock, log },
      { sealRows: 1000, flushIdleMs: 60_000, backgroundIntervalMs: 1000, tmpDir: join(dir, 'tmp'), indexBuildInline: true, autoCompaction: false },
    );
    mgr = new SnapshotManager({ host: engine, kv, store, clock, log }, { ...SNAPSHOT_DEFAULTS, pendingTimeoutMs: HOUR });
    await mgr.init();
    await engine.createCollection({
      dbName: 'default',
      name: 'c',
      fields: [field({ name: 'id', dataType: 'Int64', isPrimaryKey: true }), field({ name: 'v', dataType: 'FloatVector', dim: 2 })],
      description: '',
      enableDynamicField: false,
      autoId: false,
      shardsNum: 1,
      consistencyLevel: 'Bounded',
      properties: {},
      numPartitions: 0,
    });
    const id = engine.catalog.resolveCollection('default', 'c').id;
    await engine.insert(
      id,
      undefined,
      new Map([
        ['id', { kind: 'int64', data: BigInt64Array.from([1n, 2n, 3n]) }],
        ['v', { kind: 'vector', dim: 2, data: Float32Array.from([1, 0, 0, 1, 1, 1]) }],
      ]),
      3,
      false,
    );
  });

  afterEach(async () => {
    await engine.close();
    await wal.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('create: PENDING → COMMITTED, segments registered in the RefIndex, metadata and manifests written', async () => {
    const rec = await mgr.create('default', 'c', 's1', 'd', 0);
    expect(rec.state).toBe('COMMITTED');
    expect(rec.segmentIds.length).toBe(1);
    expect(mgr.refs.isSegmentReferenced(rec.collectionId, rec.segmentIds[0]!)).toBe(true);
    expect(await store.stat(rec.metadataKey)).toBeDefined();
    for (const k of rec.manifestKeys) expect(await store.stat(k)).toBeDefined();
  });

  it('pins: TTL expiry is reaped by tick(); drop is refused (2601) until then', async () => {
    await mgr.create('default', 'c', 's1', '', 0);
    const pin = await mgr.pin('default', 'c', 's1', 60);
    await expect(mgr.drop('default', 'c', 's1')).rejects.toSatisfy(
      (e: unknown) => isQuiverError(e, 'SnapshotPinned') && (e as { code: number }).code === 2601,
    );
    clock.advance(59_000);
    expect((await mgr.tick()).pinsReaped).toBe(0);
    clock.advance(2_000);
    expect((await mgr.tick()).pinsReaped).toBe(1);
    expect(mgr.activePins(pin.snapshotId)).toEqual([]);
    await mgr.drop('default', 'c', 's1');
    expect(await mgr.list('default', 'c')).toEqual([]);
  });

  it('an abandoned PENDING snapshot is removed after the pending timeout: files first, meta last', async () => {
    const coll = engine.catalog.resolveCollection('default', 'c');
    const pending = {
      id: 4242,
      name: 'crashed',
      description: '',
      collectionId: coll.id,
      collectionName: 'c',
      dbName: 'default',
      state: 'PENDING' as const,
      createTs: '',
      createdAtMs: clock.nowMs(),
      metadataKey: `snapshots/${coll.id}/metadata/4242.json`,
      manifestKeys: [],
      segmentIds: [],
      buildIds: [],
      partitionNames: [],
      totalRows: 0,
      totalBytes: 0,
      compactionProtectUntilMs: 0,
    };
    expect(await mgr.records.createPending(pending)).toBe(true);
    await store.put(pending.metadataKey, new TextEncoder().encode('{}'));
    clock.advance(HOUR - 1);
    expect((await mgr.tick()).snapshotsRemoved).toBe(0);
    expect(await mgr.records.get(coll.id, 'crashed')).toBeDefined();
    clock.advance(2);
    expect((await mgr.tick()).snapshotsRemoved).toBe(1);
    expect(await store.stat(pending.metadataKey)).toBeUndefined();
    expect(await mgr.records.get(coll.id, 'crashed')).toBeUndefined();
  });

  it('dropping the collection drops unpinned snapshots at once and pinned ones when their pin ends', async () => {
    const coll = engine.catalog.resolveCollection('default', 'c');
    await mgr.create('default', 'c', 'free', '', 0);
    const held = await mgr.create('default', 'c', 'held', '', 0);
    await mgr.pin('default', 'c', 'held', 600);
    await engine.dropCollection('default', 'c');
    const left = await mgr.records.list(coll.id);
    expect(left.map((r) => r.name)).toEqual(['held']);
    expect(left[0]!.collectionDropped).toBe(true);
    expect(mgr.refs.isSegmentReferenced(coll.id, held.segmentIds[0]!)).toBe(true);
    clock.advance(601_000);
    await mgr.tick();
    expect(await mgr.records.list(coll.id)).toEqual([]);
    expect(mgr.refs.isSegmentReferenced(coll.id, held.segmentIds[0]!)).toBe(false);
  });

  it('an upsert and a compaction racing the create: the snapshot is the collection exactly at its ts', async () => {
    const coll = engine.catalog.resolveCollection('default', 'c');
    const upsertKey1 = () =>
      engine.insert(
        coll.id,
        undefined,
        new Map([
          ['id', { kind: 'int64', data: BigInt64Array.from([1n]) }],
          ['v', { kind: 'vector', dim: 2, data: Float32Array.from([9, 9]) }],
        ]),
        1,
        true,
      );
    // The window the e2e race hits by chance, made deterministic: after an earlier flush and before the
    // snapshot's own, an upsert of key 1 (delete pending on the flushed segment, insert growing) and a
    // compaction. Before the fix the snapshot flushed first and took its ts later, so a write acknowledged
    // in between had a ts below the snapshot's and was missing from it.
    // A second flushed segment, so the forced compaction merges both.
    await engine.flushCollection(coll.id);
    await engine.insert(
      coll.id,
      undefined,
      new Map([
        ['id', { kind: 'int64', data: BigInt64Array.from([4n, 5n]) }],
        ['v', { kind: 'vector', dim: 2, data: Float32Array.from([4, 4, 5, 5]) }],
      ]),
      2,
      false,
    );
    let compaction: Awaited<ReturnType<typeof engine.compact>> | undefined;
    let upsertTs = 0n;
    const host: SnapshotHost = {
      catalog: engine.catalog,
      ids: engine.ids,
      flushAndHold: async (id, fn) => {
        await engine.flushCollection(id);
        upsertTs = (await upsertKey1()).ts;
        compaction = await engine.compact(id, { force: true, wait: true });
        return engine.flushAndHold(id, fn);
      },
      addCompactionGuard: (g) => engine.addCompactionGuard(g),
      onCollectionDropped: (h) => engine.onCollectionDropped(h),
    };
    const racing = new SnapshotManager({ host, kv, store, clock, log: pino({ level: 'silent' }) }, SNAPSHOT_DEFAULTS);
    await racing.init();
    const rec = await racing.create('default', 'c', 'raced', '', 0);
    // A write after the create returned is not in it.
    await upsertKey1().then(() => engine.flushCollection(coll.id));
    const { entries } = await racing.readContents(rec);
    const rows = new Map<bigint, number[]>();
    for (const e of entries) {
      const chunk = await readSegment(store, coll, e.segment, coll.schema.fields);
      const ids = chunk.columns.get('id')!.data as BigInt64Array;
      const v = chunk.columns.get('v')!.data as Float32Array;
      for (let i = 0; i < chunk.numRows; i++) if (chunk.deleted[i] === 0) rows.set(ids[i]!, [v[2 * i]!, v[2 * i + 1]!]);
    }
    expect(compaction?.plans.length).toBeGreaterThan(0);
    expect(compaction?.plans.every((p) => p.state === 'Completed')).toBe(true);
    expect(upsertTs).toBeLessThan(BigInt(rec.createTs));
    // Key 1 once, in its upserted version (acknowledged before the snapshot's ts); the old one deleted.
    expect([...rows.keys()].sort()).toEqual([1n, 2n, 3n, 4n, 5n]);
    expect(rows.get(1n)).toEqual([9, 9]);
  });

  it('compaction protection keeps the snapshot segments out of compaction until it expires', async () => {
    const coll = engine.catalog.resolveCollection('default', 'c');
    await engine.insert(
      coll.id,
      undefined,
      new Map([
        ['id', { kind: 'int64', data: BigInt64Array.from([4n]) }],
        ['v', { kind: 'vector', dim: 2, data: Float32Array.from([2, 2]) }],
      ]),
      1,
      false,
    );
    const guarded = await mgr.create('default', 'c', 'guarded', '', 3600);
    // Read before compacting: which segments the snapshot protects.
    const protectedIds = [...guarded.segmentIds];
    expect(protectedIds.length).toBeGreaterThan(0);
    await engine.insert(
      coll.id,
      undefined,
      new Map([
        ['id', { kind: 'int64', data: BigInt64Array.from([5n]) }],
        ['v', { kind: 'vector', dim: 2, data: Float32Array.from([3, 3]) }],
      ]),
      1,
      false,
    );
    await engine.flushCollection(coll.id);
    const flushedIds = () => engine.flushedSegments(coll.id).map((s) => s.id);
    // Something else is compactable, so a forced compaction runs; it must leave the protected segments alone.
    expect(flushedIds().filter((id) => !protectedIds.includes(id)).length).toBeGreaterThan(0);
    const blocked = await engine.compact(coll.id, { force: true, wait: true });
    for (const id of protectedIds) expect(blocked.plans.flatMap((p) => p.sources)).not.toContain(id);
    for (const id of protectedIds) expect(flushedIds()).toContain(id);
    clock.advance(3600_001);
    const later = await engine.compact(coll.id, { force: true, wait: true });
    // Once the window ended they are compactable: compacted away into a new segment.
    for (const id of protectedIds) expect(later.plans.flatMap((p) => p.sources)).toContain(id);
    for (const id of protectedIds) expect(flushedIds()).not.toContain(id);
  });
});

describe('RefIndex', () => {
  it('is fail-closed until loaded and reference-counts shared segments and builds', () => {
    const r = new RefIndex();
    expect(r.isReady()).toBe(false);
    r.add(1, 10, [100, 101], [7]);
    r.add(2, 10, [101], [7]);
    r.markLoaded();
    expect(r.isReady()).toBe(true);
    r.remove(1);
    expect(r.isSegmentReferenced(10, 100)).toBe(false);
    expect(r.isSegmentReferenced(10, 101)).toBe(true);
    expect(r.isBuildReferenced(7)).toBe(true);
    r.remove(2);
    expect(r.isBuildReferenced(7)).toBe(false);
    expect(r.isCollectionReferenced(10)).toBe(false);
  });
});
