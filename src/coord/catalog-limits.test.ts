/**
 * Every catalog commit whose size grows with the data fits a default etcd cluster (128 ops, 1.5 MiB):
 * run over a MetaKV that refuses what etcd refuses (LimitedMetaKV), at sizes well over one txn. And a
 * split commit cut short after its first batch leaves a state that is safe and that the next start
 * completes (flush: checkpoint not moved; drops: the drop took effect, the cleanup is finished at init).
 */

import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { FakeClock } from '../common/clock.js';
import { isQuiverError } from '../common/errors.js';
import { MemoryMetaKV } from '../meta/memory-kv.js';
import { TXN_OPS_MAX } from '../meta/txn-limits.js';
import { LimitedMetaKV } from '../testing/limited-meta-kv.js';
import { collectionRecord, PARTITION_ID, segmentRecord } from '../testing/records.js';
import { Catalog, type CatalogChange } from './catalog.js';
import { CatalogService } from './catalog-service.js';
import type { CollectionRecord, SegmentRecord } from './records.js';
import { SegmentManager } from './segment-manager.js';
import type { CollectionEvents } from './types.js';

/** Far over one txn: 300 segments with 8 fields and 20 deltalogs each (~8 KiB a record, ~2.4 MiB in all). */
const SEGMENTS = 300;
const bigSegment = (collectionId: number, id: number, partitionId = PARTITION_ID, buildId?: number): SegmentRecord =>
  segmentRecord({ collectionId, id, partitionId, fieldIds: [1, 100, 101, 102, 103, 104, 105, 106], deltalogs: 20, buildId });

const noEvents: CollectionEvents = {
  collectionCreated: () => undefined,
  collectionChanged: () => undefined,
  collectionDropped: () => undefined,
  partitionDropped: () => undefined,
  segmentsCommitted: () => undefined,
};

async function service(kv: LimitedMetaKV): Promise<CatalogService> {
  const s = new CatalogService({
    kv,
    clock: new FakeClock(),
    log: pino({ level: 'silent' }),
    walEnd: () => 0,
    locks: { withCollectionLock: (_id, fn) => fn() },
    events: noEvents,
    onIndexCreated: () => undefined,
  });
  await s.init();
  return s;
}

/** Collection 1 in the default db with partitions `_default` and `p1`, an index 900, and `SEGMENTS` indexed segments in p1. */
async function seed(s: CatalogService): Promise<CollectionRecord> {
  const db = s.catalog.requireDatabase('default');
  const coll: CollectionRecord = {
    ...collectionRecord(1),
    dbId: db.id,
    partitions: [...collectionRecord(1).partitions, { id: 8, name: 'p1', createdTs: '1' }],
  };
  const changes: CatalogChange[] = [
    { type: 'putCollection', record: coll },
    {
      type: 'putIndex',
      record: { id: 900, collectionId: 1, fieldId: 101, name: 'v_idx', indexType: 'HNSW', metric: 'L2', buildParams: {}, createdTs: '1' } as never,
    },
  ];
  for (let i = 0; i < SEGMENTS; i++) changes.push({ type: 'putSegment', record: bigSegment(1, 1000 + i, 8, 5000 + i) });
  await s.catalog.commitInBatches(changes);
  return coll;
}

describe('catalog commits fit etcd limits', () => {
  it('the test store refuses an unsplit commit of this size (so the tests below can fail)', async () => {
    const catalog = new Catalog(new LimitedMetaKV(new MemoryMetaKV()));
    const changes: CatalogChange[] = Array.from({ length: SEGMENTS }, (_, i) => ({ type: 'putSegment', record: bigSegment(1, i + 1) }));
    const err = await catalog.commit(changes).catch((e: unknown) => e);
    expect(isQuiverError(err, 'ParameterTooLarge')).toBe(true);
  });

  it('a flush of hundreds of segments commits in bounded batches, the checkpoint in the last one', async () => {
    const kv = new LimitedMetaKV(new MemoryMetaKV());
    const catalog = new Catalog(kv);
    await catalog.commit([
      { type: 'putCollection', record: collectionRecord(1) },
      { type: 'putCheckpoint', collectionId: 1, position: 10 },
    ]);
    const segments = new SegmentManager({ catalog, ids: { alloc: async () => 1 } }, { sealRows: 1, sealBytes: 1024, flushIdleMs: 100 });
    const records = Array.from({ length: SEGMENTS }, (_, i) => bigSegment(1, i + 1));
    expect(await segments.commitFlush(1, records, 99)).toBe(true);
    expect(catalog.segments(1)).toHaveLength(SEGMENTS);
    expect(catalog.checkpoint(1)).toBe(99);
    expect(kv.maxOps).toBeLessThanOrEqual(TXN_OPS_MAX);
    // Reloaded from the store: the same.
    const again = new Catalog(kv);
    await again.load();
    expect(again.segments(1)).toHaveLength(SEGMENTS);
    expect(again.checkpoint(1)).toBe(99);
  });

  it('a flush cut short after its first batch has not moved the checkpoint (the WAL replays the rest)', async () => {
    const kv = new LimitedMetaKV(new MemoryMetaKV());
    const catalog = new Catalog(kv);
    await catalog.commit([
      { type: 'putCollection', record: collectionRecord(1) },
      { type: 'putCheckpoint', collectionId: 1, position: 10 },
    ]);
    const segments = new SegmentManager({ catalog, ids: { alloc: async () => 1 } }, { sealRows: 1, sealBytes: 1024, flushIdleMs: 100 });
    kv.failTxnAt = kv.txnCount + 2;
    const records = Array.from({ length: SEGMENTS }, (_, i) => bigSegment(1, i + 1));
    await expect(segments.commitFlush(1, records, 99)).rejects.toThrow(/injected/);
    const reloaded = new Catalog(kv);
    await reloaded.load();
    const committed = reloaded.segments(1).length;
    expect(committed).toBeGreaterThan(0);
    expect(committed).toBeLessThan(SEGMENTS);
    expect(reloaded.checkpoint(1)).toBe(10);
  });

  it('raising the checkpoints of hundreds of collections commits in batches', async () => {
    const kv = new LimitedMetaKV(new MemoryMetaKV());
    const catalog = new Catalog(kv);
    const ids = Array.from({ length: SEGMENTS }, (_, i) => i + 1);
    await catalog.commitInBatches(
      ids.flatMap((id): CatalogChange[] => [
        { type: 'putCollection', record: collectionRecord(id) },
        { type: 'putCheckpoint', collectionId: id, position: 1 },
      ]),
    );
    const segments = new SegmentManager({ catalog, ids: { alloc: async () => 1 } }, { sealRows: 1, sealBytes: 1024, flushIdleMs: 100 });
    await segments.raiseCheckpoints(ids, 50);
    expect(ids.every((id) => catalog.checkpoint(id) === 50)).toBe(true);
  });

  it('drop partition, drop index and drop collection with hundreds of segments or aliases fit', async () => {
    const kv = new LimitedMetaKV(new MemoryMetaKV());
    const s = await service(kv);
    await seed(s);
    await s.dropIndex(1, s.catalog.indexes(1)[0]!);
    expect(s.catalog.segments(1).every((x) => x.indexes.length === 0)).toBe(true);
    await s.dropPartition('default', 'c1', 'p1');
    expect(s.catalog.segments(1).every((x) => x.state === 'Dropped')).toBe(true);
    for (let i = 0; i < 200; i++) await s.createAlias('default', 'c1', `a${i}`);
    await s.dropCollection('default', 'c1');
    expect(s.catalog.aliasesIn(s.catalog.requireDatabase('default').id)).toEqual([]);
    expect(kv.maxOps).toBeLessThanOrEqual(TXN_OPS_MAX);
  });

  it('a drop cut short after its first batch took effect, and the next start finishes its cleanup', async () => {
    const kv = new LimitedMetaKV(new MemoryMetaKV());
    const s = await service(kv);
    await seed(s);
    for (let i = 0; i < 200; i++) await s.createAlias('default', 'c1', `a${i}`);

    kv.failTxnAt = kv.txnCount + 2;
    await expect(s.dropIndex(1, s.catalog.indexes(1)[0]!)).rejects.toThrow(/injected/);
    expect(s.catalog.indexes(1)).toEqual([]);
    expect(s.catalog.segments(1).some((x) => x.indexes.length > 0)).toBe(true);

    kv.failTxnAt = undefined;
    const s2 = await service(kv);
    expect(s2.catalog.segments(1).every((x) => x.state === 'Flushed' && x.indexes.length === 0)).toBe(true);

    kv.failTxnAt = kv.txnCount + 2;
    await expect(s2.dropPartition('default', 'c1', 'p1')).rejects.toThrow(/injected/);
    expect(s2.catalog.collection(1)?.partitions.map((p) => p.name)).toEqual(['_default']);
    expect(s2.catalog.segments(1).some((x) => x.state === 'Flushed')).toBe(true);
    kv.failTxnAt = undefined;
    const s3 = await service(kv);
    expect(s3.catalog.segments(1).every((x) => x.state === 'Dropped')).toBe(true);

    kv.failTxnAt = kv.txnCount + 2;
    await expect(s3.dropCollection('default', 'c1')).rejects.toThrow(/injected/);
    expect(s3.catalog.collection(1)).toBeUndefined();
    const dbId = s3.catalog.requireDatabase('default').id;
    expect(s3.catalog.aliasesIn(dbId).length).toBeGreaterThan(0);
    kv.failTxnAt = undefined;
    const s4 = await service(kv);
    expect(s4.catalog.aliasesIn(dbId)).toEqual([]);
    expect(s4.catalog.nameTaken(dbId, 'a7')).toBe(false);
  });
});
