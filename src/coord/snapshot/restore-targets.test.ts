import { describe, expect, it } from 'vitest';
import { VALUE_BYTES_MAX_DEFAULT } from '../../meta/meta-kv.js';
import { MemoryObjectStore } from '../../storage/memory-object-store.js';
import { Catalog } from '../catalog.js';
import { newCopyJob } from '../copy/copy-job-store.js';
import { MeasuringKV, MemorySources, SNAPSHOT_ID, SOURCE_COLLECTION, sourceSegment } from '../copy/copy.test-util.js';
import { silentLogger, type CopyJob } from '../copy/types.js';
import { TargetRefused } from '../copy/checker.js';
import { RestoreTargets, type RestoreHost } from './restore-targets.js';

function setup(segmentCount: number) {
  const kv = new MeasuringKV();
  const catalog = new Catalog(kv);
  let next = 1_000_000;
  let ts = 1n;
  const published: number[] = [];
  const released: number[] = [];
  const host: RestoreHost = {
    catalog,
    ids: { alloc: async (count = 1) => ((next += count), next - count) },
    tso: { next: () => ts++ },
    wal: { endPosition: () => 0 },
    withDdlLock: (fn) => fn(),
    collectionPublished: async (id) => void published.push(id),
  };
  const segments = Array.from({ length: segmentCount }, (_, i) => sourceSegment(i + 1));
  const sources = new MemorySources(segments);
  const store = new MemoryObjectStore();
  // The fixtures are records without files: the row check before publish has nothing to read (restore-verify.test.ts covers it).
  const targets = new RestoreTargets({
    host,
    sources,
    store,
    releasePin: async (id) => void released.push(id),
    log: silentLogger,
    verify: async () => ({ rows: 0, pkSum: 0n, deletes: 0, deleteSum: 0n }),
  });
  return { kv, catalog, host, targets, sources, store, published, released, segments };
}

async function started(s: ReturnType<typeof setup>, jobId = 7): Promise<CopyJob> {
  const plan = s.targets.plan({
    firstId: await s.host.ids.alloc(RestoreTargets.idsNeeded([{ name: '_default' }], s.segments.length)),
    dbId: 1,
    name: 'dst',
    source: {
      schema: { name: 'src', description: '', autoId: false, enableDynamicField: false, fields: [] },
      shardsNum: 1,
      consistencyLevel: 'Bounded',
      properties: {},
    },
    partitions: [{ name: '_default' }],
    indexes: [],
    segments: s.segments.map((g) => ({ sourceId: g.id, partitionName: '_default' })),
  });
  expect(await s.catalog.commitGuarded(plan.changes, { expect: [{ kind: 'collection', id: plan.collection.id, state: 'absent' }] })).toBe(true);
  return newCopyJob({
    id: jobId,
    snapshotId: SNAPSHOT_ID,
    snapshotName: 'snap',
    sourceCollectionId: SOURCE_COLLECTION,
    sourceDbName: 'default',
    sourceCollectionName: 'src',
    targetCollectionId: plan.collection.id,
    targetDbName: 'default',
    targetCollectionName: 'dst',
    pinId: 99,
    mappings: plan.mappings,
    createdAtMs: 0,
    timeoutMs: 1,
  });
}

describe('RestoreTargets', () => {
  it('register → publish for 10,000 segments: every txn fits etcd limits; only the last small txn makes it visible', async () => {
    const s = setup(10_000);
    const job = await started(s);
    await s.targets.register(job);
    expect(s.catalog.segments(job.targetCollectionId).every((g) => g.state === 'Importing')).toBe(true);
    s.kv.txns.length = 0;
    await s.targets.publish(job);
    const coll = s.catalog.collectionIncludingDropped(job.targetCollectionId)!;
    expect(coll.state).toBe('Created');
    const segs = s.catalog.segments(job.targetCollectionId);
    expect(segs).toHaveLength(10_000);
    expect(segs.every((g) => g.state === 'Flushed' && Object.keys(g.binlogs).length === 3)).toBe(true);
    expect(s.kv.txns.length).toBeGreaterThan(100);
    for (const t of s.kv.txns) {
      expect(t.bytes).toBeLessThanOrEqual(VALUE_BYTES_MAX_DEFAULT);
      expect(t.ops).toBeLessThanOrEqual(64);
    }
    expect(s.kv.txns.at(-1)!.ops).toBe(1); // the visibility flip
    expect(s.published).toEqual([job.targetCollectionId]);
    expect(s.released).toEqual([99]);
  });

  it('publish is idempotent and resumes after a crash mid-way (some segments already Flushed)', async () => {
    const s = setup(300);
    const job = await started(s);
    await s.targets.register(job);
    // A first attempt that dies after its first 256-segment publish read: fake it by failing the second
    // one (the row check before publish reads the two chunks first).
    let reads = 0;
    const read = s.sources.read.bind(s.sources);
    s.sources.read = async (ref, ids) => {
      if (++reads === 4) throw new Error('crash');
      return read(ref, ids);
    };
    await expect(s.targets.publish(job)).rejects.toThrow('crash');
    const states = s.catalog.segments(job.targetCollectionId).map((g) => g.state);
    expect(states.filter((x) => x === 'Flushed').length).toBe(256);
    expect(s.catalog.collectionIncludingDropped(job.targetCollectionId)!.state).toBe('Restoring');
    await s.targets.publish(job);
    await s.targets.publish(job);
    expect(s.catalog.segments(job.targetCollectionId).every((g) => g.state === 'Flushed')).toBe(true);
    expect(s.catalog.collectionIncludingDropped(job.targetCollectionId)!.state).toBe('Created');
  });

  it('publish of a target that is gone is refused for good (the job rolls back)', async () => {
    const s = setup(2);
    const job = await started(s);
    await s.targets.register(job);
    await s.targets.rollback(job);
    await expect(s.targets.publish(job)).rejects.toBeInstanceOf(TargetRefused);
  });

  it('rollback deletes the copies and every record, idempotently, and refuses a visible collection', async () => {
    const s = setup(3);
    const job = await started(s);
    await s.targets.register(job);
    await s.store.put(`insert_log/${job.targetCollectionId}/1/2/3/4`, new Uint8Array([1]));
    await s.targets.rollback(job);
    await s.targets.rollback(job);
    expect(s.catalog.collectionIncludingDropped(job.targetCollectionId)).toBeUndefined();
    expect(s.catalog.segments(job.targetCollectionId)).toEqual([]);
    expect(s.released).toEqual([99, 99]);
    const visible = setup(1);
    const j2 = await started(visible);
    await visible.targets.register(j2);
    await visible.targets.publish(j2);
    await expect(visible.targets.rollback(j2)).rejects.toThrow(/refusing to roll it back/);
  });
});
