import { describe, expect, it } from 'vitest';
import { MemoryMetaKV } from '../meta/memory-kv.js';
import { Catalog } from './catalog.js';
import { assertCollectionTransition, assertSegmentTransition, type CollectionRecord, type SegmentRecord } from './records.js';

function coll(id: number, state: CollectionRecord['state']): CollectionRecord {
  return {
    id,
    dbId: 1,
    name: `c${id}`,
    schema: { name: `c${id}`, description: '', autoId: false, enableDynamicField: false, fields: [] },
    shardsNum: 1,
    consistencyLevel: 'Bounded',
    properties: {},
    partitions: [],
    createdTs: '1',
    updateTs: '1',
    state,
    loaded: false,
  };
}

function seg(collectionId: number, id: number, state: SegmentRecord['state']): SegmentRecord {
  return { id, collectionId, partitionId: 1, state, numRows: 0, binlogs: {}, deltalogs: [], statslogs: [], indexes: [], createdTs: '1' };
}

describe('collection and segment transition tables', () => {
  it('allow exactly Restoring → Created → Dropped and Importing → Flushed → Dropped', () => {
    expect(() => assertCollectionTransition('Restoring', 'Created')).not.toThrow();
    expect(() => assertCollectionTransition('Created', 'Dropped')).not.toThrow();
    expect(() => assertCollectionTransition('Created', 'Restoring')).toThrow('illegal collection transition Created → Restoring');
    expect(() => assertCollectionTransition('Dropped', 'Created')).toThrow();
    expect(() => assertSegmentTransition('Importing', 'Flushed')).not.toThrow();
    expect(() => assertSegmentTransition('Flushed', 'Dropped')).not.toThrow();
    expect(() => assertSegmentTransition('Flushed', 'Importing')).toThrow('illegal segment transition Flushed → Importing');
    expect(() => assertSegmentTransition('Importing', 'Dropped')).toThrow();
  });
});

describe('Catalog.commitGuarded', () => {
  it('commits when every record is in its expected state, and refuses (false, nothing written) otherwise', async () => {
    const kv = new MemoryMetaKV();
    const c = new Catalog(kv);
    expect(
      await c.commitGuarded([{ type: 'putCollection', record: coll(1, 'Restoring') }], { expect: [{ kind: 'collection', id: 1, state: 'absent' }] }),
    ).toBe(true);
    // Name taken: 'absent' no longer holds.
    expect(
      await c.commitGuarded([{ type: 'putCollection', record: coll(1, 'Restoring') }], { expect: [{ kind: 'collection', id: 1, state: 'absent' }] }),
    ).toBe(false);
    const rev = await kv.revision();
    expect(
      await c.commitGuarded([{ type: 'putCollection', record: coll(1, 'Dropped') }], { expect: [{ kind: 'collection', id: 1, state: 'Created' }] }),
    ).toBe(false);
    expect(await kv.revision()).toBe(rev);
    expect(
      await c.commitGuarded([{ type: 'putCollection', record: coll(1, 'Created') }], { expect: [{ kind: 'collection', id: 1, state: 'Restoring' }] }),
    ).toBe(true);
    expect(c.collection(1)?.state).toBe('Created');
  });

  it('loses cleanly to a writer that changed the record behind the mirror (compare on the stored value)', async () => {
    const kv = new MemoryMetaKV();
    const c = new Catalog(kv);
    await c.commit([
      { type: 'putCollection', record: coll(2, 'Restoring') },
      { type: 'putSegment', record: seg(2, 20, 'Importing') },
    ]);
    // Another process (or a stale mirror) wrote the record meanwhile.
    await kv.put('quiver/coll/2', JSON.stringify({ ...coll(2, 'Restoring'), name: 'renamed' }));
    const ok = await c.commitGuarded([{ type: 'putSegment', record: seg(2, 20, 'Flushed') }], {
      expect: [
        { kind: 'collection', id: 2, state: 'Restoring' },
        { kind: 'segment', collectionId: 2, segmentId: 20, state: 'Importing' },
      ],
    });
    expect(ok).toBe(false);
    expect(c.segment(2, 20)?.state).toBe('Importing');
    const reloaded = new Catalog(kv);
    await reloaded.load();
    expect(reloaded.segment(2, 20)?.state).toBe('Importing');
  });

  it('a guarded put that is not a transition of the table is a programmer error', async () => {
    const c = new Catalog(new MemoryMetaKV());
    await c.commit([
      { type: 'putCollection', record: coll(3, 'Created') },
      { type: 'putSegment', record: seg(3, 30, 'Flushed') },
    ]);
    await expect(
      c.commitGuarded([{ type: 'putCollection', record: coll(3, 'Restoring') }], { expect: [{ kind: 'collection', id: 3, state: 'Created' }] }),
    ).rejects.toThrow('illegal collection transition Created → Restoring');
    await expect(
      c.commitGuarded([{ type: 'putSegment', record: seg(3, 30, 'Importing') }], {
        expect: [{ kind: 'segment', collectionId: 3, segmentId: 30, state: 'Flushed' }],
      }),
    ).rejects.toThrow('illegal segment transition Flushed → Importing');
  });

  it('commits extra ops of other stores in the same txn, all or nothing', async () => {
    const kv = new MemoryMetaKV();
    const c = new Catalog(kv);
    await kv.put('other/job', 'taken');
    const ok = await c.commitGuarded([{ type: 'putCollection', record: coll(4, 'Restoring') }], {
      extra: { compares: [{ key: 'other/job', target: 'version', op: '==', value: 0 }], ops: [{ type: 'put', key: 'other/job', value: 'mine' }] },
    });
    expect(ok).toBe(false);
    expect(c.collectionIncludingDropped(4)).toBeUndefined();
    expect(await kv.get('quiver/coll/4')).toBeUndefined();
  });
});
