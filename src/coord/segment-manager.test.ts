import { describe, expect, it } from 'vitest';
import { MemoryMetaKV } from '../meta/memory-kv.js';
import { Catalog } from './catalog.js';
import type { CollectionRecord, SegmentRecord } from './records.js';
import { SegmentManager } from './segment-manager.js';

function collection(id: number, state: CollectionRecord['state'] = 'Created'): CollectionRecord {
  return {
    id,
    dbId: 1,
    name: `c${id}`,
    schema: { name: `c${id}`, description: '', autoId: false, enableDynamicField: false, fields: [] },
    shardsNum: 1,
    consistencyLevel: 'Bounded',
    properties: {},
    partitions: [{ id: 10, name: '_default', createdTs: '1' }],
    createdTs: '1',
    updateTs: '1',
    state,
    loaded: false,
  };
}

function segment(collectionId: number, id: number): SegmentRecord {
  return { id, collectionId, partitionId: 10, state: 'Flushed', numRows: 5, binlogs: {}, deltalogs: [], statslogs: [], indexes: [], createdTs: '1' };
}

async function setup(): Promise<{ catalog: Catalog; segments: SegmentManager }> {
  const catalog = new Catalog(new MemoryMetaKV());
  await catalog.load();
  let next = 1000;
  const ids = { alloc: async (n = 1) => ((next += n), next - n) };
  const segments = new SegmentManager({ catalog, ids }, { sealRows: 100, sealBytes: 1_000, flushIdleMs: 50 });
  return { catalog, segments };
}

describe('SegmentManager', () => {
  it('flushes full (rows or bytes) or idle collections, and nothing else', async () => {
    const { segments } = await setup();
    const now = 1_000;
    expect(segments.shouldFlush({ maxRows: 0, maxBytes: 0, dirtySinceMs: undefined }, now)).toBe(false);
    expect(segments.shouldFlush({ maxRows: 99, maxBytes: 999, dirtySinceMs: now - 49 }, now)).toBe(false);
    expect(segments.shouldFlush({ maxRows: 100, maxBytes: 0, dirtySinceMs: now }, now)).toBe(true);
    expect(segments.shouldFlush({ maxRows: 1, maxBytes: 1_000, dirtySinceMs: now }, now)).toBe(true);
    expect(segments.shouldFlush({ maxRows: 1, maxBytes: 1, dirtySinceMs: now - 50 }, now)).toBe(true);
  });

  it('hands out distinct segment ids across refills', async () => {
    const { segments } = await setup();
    const seen = new Set<number>();
    for (let i = 0; i < 40; i++) seen.add((await segments.segmentIds())());
    expect(seen.size).toBe(40);
  });

  it('commits a flush with its checkpoint, but not for a collection that is gone', async () => {
    const { catalog, segments } = await setup();
    await catalog.commit([
      { type: 'putCollection', record: collection(1) },
      { type: 'putCollection', record: collection(2, 'Dropped') },
    ]);
    expect(await segments.commitFlush(1, [segment(1, 7)], 42)).toBe(true);
    expect(catalog.segment(1, 7)?.state).toBe('Flushed');
    expect(catalog.checkpoint(1)).toBe(42);
    expect(await segments.commitFlush(2, [segment(2, 8)], 43)).toBe(false);
    expect(catalog.segment(2, 8)).toBeUndefined();
    expect(await segments.commitFlush(3, [segment(3, 9)], 44)).toBe(false);
  });

  it('raises checkpoints, never lowers them', async () => {
    const { catalog, segments } = await setup();
    await catalog.commit([
      { type: 'putCheckpoint', collectionId: 1, position: 10 },
      { type: 'putCheckpoint', collectionId: 2, position: 30 },
    ]);
    await segments.raiseCheckpoints([1, 2, 3], 20);
    expect([catalog.checkpoint(1), catalog.checkpoint(2), catalog.checkpoint(3)]).toEqual([20, 30, 20]);
  });
});
