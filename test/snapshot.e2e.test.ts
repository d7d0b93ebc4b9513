import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { DataType, ErrorCode } from '@zilliz/milvus2-sdk-node';
import { collectionFileKeys, objectKeys } from './data-dir.js';
import { startTestServer, until, vectors, waitRestore, type TestServer } from './helpers.js';
import { spawnServer, type ServerProcess } from './process.js';

describe('collection snapshots through the SDK', () => {
  let t: TestServer;
  const vs = vectors(300, 8, 11);
  beforeAll(async () => {
    t = await startTestServer({ autoCompaction: false });
    const c = t.client;
    await c.createCollection({
      collection_name: 'src',
      description: 'source collection',
      fields: [
        { name: 'id', data_type: DataType.Int64, is_primary_key: true },
        { name: 'title', data_type: DataType.VarChar, max_length: 32 },
        { name: 'v', data_type: DataType.FloatVector, dim: 8 },
      ],
      properties: { 'collection.ttl.seconds': '0' },
    });
    await c.createPartition({ collection_name: 'src', partition_name: 'p1' });
    await c.insert({ collection_name: 'src', data: vs.slice(0, 200).map((v, i) => ({ id: i, title: `t${i}`, v })) });
    await c.flushSync({ collection_names: ['src'] });
    await c.createIndex({ collection_name: 'src', field_name: 'v', index_type: 'HNSW', metric_type: 'L2', params: { M: 8, efConstruction: 64 } });
    await t.server.engine.waitForIndexes(t.server.engine.catalog.resolveCollection('default', 'src').id);
    // Unflushed rows and an unflushed delete: a snapshot must contain them (Milvus silently drops them).
    await c.insert({ collection_name: 'src', partition_name: 'p1', data: vs.slice(200, 300).map((v, i) => ({ id: 200 + i, title: `t${200 + i}`, v })) });
    await c.delete({ collection_name: 'src', ids: [0, 250] });
  });
  afterAll(async () => {
    await t?.close();
  });

  it('creates, lists and describes snapshots; names are unique per collection and validated', async () => {
    const c = t.client;
    const r = await c.createSnapshot({ collection_name: 'src', snapshot_name: 'before_migration', description: 'safe point' });
    expect(r.error_code).toBe(ErrorCode.SUCCESS);
    const dup = await c.createSnapshot({ collection_name: 'src', snapshot_name: 'before_migration' });
    expect(dup.error_code).not.toBe(ErrorCode.SUCCESS);
    expect(dup.reason).toMatch(/already exists/);
    for (const bad of [' ', '1abc', 'a-b', 'x'.repeat(256)]) {
      const b = await c.createSnapshot({ collection_name: 'src', snapshot_name: bad });
      expect(b.error_code, bad).not.toBe(ErrorCode.SUCCESS);
    }
    const badProt = await c.createSnapshot({ collection_name: 'src', snapshot_name: 'p', compaction_protection_seconds: 8 * 24 * 3600 });
    expect(badProt.reason).toMatch(/compaction_protection_seconds/);
    const missing = await c.createSnapshot({ collection_name: 'nope', snapshot_name: 's' });
    expect(missing.error_code).not.toBe(ErrorCode.SUCCESS);
    const list = await c.listSnapshots({ collection_name: 'src' });
    expect(list.snapshots.filter((n) => n === 'before_migration')).toEqual(['before_migration']);
    const d = await c.describeSnapshot({ collection_name: 'src', snapshot_name: 'before_migration' });
    expect(d.status.error_code).toBe(ErrorCode.SUCCESS);
    expect(d.description).toBe('safe point');
    expect(d.collection_name).toBe('src');
    expect(d.partition_names).toEqual(['_default', 'p1']);
    expect(BigInt(d.create_ts) > 0n).toBe(true);
    expect(d.s3_location).toMatch(/^snapshots\/\d+\/metadata\/\d+\.json$/);
    const nf = await c.describeSnapshot({ collection_name: 'src', snapshot_name: 'ghost' });
    expect(nf.status.error_code).not.toBe(ErrorCode.SUCCESS);
  });

  it('restores into a new collection with the same schema, partitions, indexes and exactly the snapshot data', async () => {
    const c = t.client;
    expect((await c.createSnapshot({ collection_name: 'src', snapshot_name: 'for_restore' })).error_code).toBe(ErrorCode.SUCCESS);
    // Writes after the snapshot must not appear in the restore.
    await c.insert({ collection_name: 'src', data: [{ id: 999, title: 'late', v: vs[0]! }] });
    await c.delete({ collection_name: 'src', ids: [1] });
    const r = await c.restoreSnapshot({ snapshot_name: 'for_restore', source_collection_name: 'src', target_collection_name: 'restored' });
    expect(r.status.error_code).toBe(ErrorCode.SUCCESS);
    expect(Number(r.job_id)).toBeGreaterThan(0);
    const info = await waitRestore(t.client, r.job_id);
    expect(info.state).toBe('RestoreSnapshotCompleted');
    expect(Number(info.progress)).toBe(100);
    const jobs = await c.listRestoreSnapshotJobs({ collection_name: 'restored' });
    expect(jobs.jobs.map((j) => j.job_id)).toContain(r.job_id);

    const src = await c.describeCollection({ collection_name: 'src' });
    const dst = await c.describeCollection({ collection_name: 'restored' });
    expect(dst.schema.fields.map((f) => [f.name, f.fieldID, f.data_type])).toEqual(src.schema.fields.map((f) => [f.name, f.fieldID, f.data_type]));
    expect(dst.schema.description).toBe('source collection');
    expect((await c.listPartitions({ collection_name: 'restored' })).partition_names).toEqual(['_default', 'p1']);
    const di = await c.describeIndex({ collection_name: 'restored', field_name: 'v' });
    expect(di.index_descriptions[0]!.params.find((p) => p.key === 'index_type')?.value).toBe('HNSW');
    // The segment that was indexed when the snapshot was taken brings its index file (same build, not
    // rebuilt); the one flushed by the snapshot itself gets its index built after the restore.
    const engine = t.server.engine;
    const srcSegs = engine.catalog.segments(engine.catalog.resolveCollection('default', 'src').id).filter((x) => x.indexes.length > 0);
    const dstSegs = engine.catalog.segments(engine.catalog.resolveCollection('default', 'restored').id);
    const srcBuilds = new Set(srcSegs.flatMap((x) => x.indexes.map((i) => i.buildId)));
    expect(dstSegs.some((x) => x.indexes.some((i) => srcBuilds.has(i.buildId)))).toBe(true);
    await engine.waitForIndexes(engine.catalog.resolveCollection('default', 'restored').id);
    expect((await c.describeIndex({ collection_name: 'restored', field_name: 'v' })).index_descriptions[0]!.state).toBe('Finished');

    await c.loadCollectionSync({ collection_name: 'restored' });
    expect((await c.count({ collection_name: 'restored' })).data).toBe(298);
    const gone = await c.query({ collection_name: 'restored', filter: 'id in [0, 250, 999]', output_fields: ['id'] });
    expect(gone.data).toHaveLength(0);
    const kept = await c.query({ collection_name: 'restored', filter: 'id in [1, 299]', output_fields: ['title'], partition_names: [] });
    expect(kept.data.map((x) => x.title).sort()).toEqual(['t1', 't299']);
    const s = await c.search({ collection_name: 'restored', data: [vs[42]!], limit: 1, output_fields: ['title'] });
    expect(s.results[0]!.title).toBe('t42');

    // Independent: writable, and dropping the source never affects it.
    await c.insert({ collection_name: 'restored', data: [{ id: 5000, title: 'new', v: vs[1]! }] });
    const again = await c.restoreSnapshot({ snapshot_name: 'for_restore', source_collection_name: 'src', target_collection_name: 'restored' });
    expect(again.status.error_code).not.toBe(ErrorCode.SUCCESS);
    expect(again.status.reason).toMatch(/already exists/);
  });

  it('pins block drop (2601); unpin, unknown pins and idempotent drop succeed; TTL is validated', async () => {
    const c = t.client;
    await c.createSnapshot({ collection_name: 'src', snapshot_name: 'pinned' });
    const pin = await c.pinSnapshotData({ collection_name: 'src', snapshot_name: 'pinned', ttl_seconds: 3600 });
    expect(pin.status.error_code).toBe(ErrorCode.SUCCESS);
    expect(Number(pin.pin_id)).toBeGreaterThan(0);
    const refused = await c.dropSnapshot({ collection_name: 'src', snapshot_name: 'pinned' });
    expect(refused.error_code).not.toBe(ErrorCode.SUCCESS);
    expect(refused.code).toBe(2601);
    const badTtl = await c.pinSnapshotData({ collection_name: 'src', snapshot_name: 'pinned', ttl_seconds: 31 * 24 * 3600 });
    expect(badTtl.status.error_code).not.toBe(ErrorCode.SUCCESS);
    expect((await c.unpinSnapshotData({ pin_id: pin.pin_id })).error_code).toBe(ErrorCode.SUCCESS);
    expect((await c.unpinSnapshotData({ pin_id: '123456789' })).error_code).toBe(ErrorCode.SUCCESS);
    expect((await c.dropSnapshot({ collection_name: 'src', snapshot_name: 'pinned' })).error_code).toBe(ErrorCode.SUCCESS);
    expect((await c.dropSnapshot({ collection_name: 'src', snapshot_name: 'pinned' })).error_code).toBe(ErrorCode.SUCCESS);
    expect((await c.listSnapshots({ collection_name: 'src' })).snapshots).not.toContain('pinned');
  });

  it('the same snapshot name in two collections is fine; concurrent creates of one name: exactly one wins', async () => {
    const c = t.client;
    await c.createCollection({
      collection_name: 'other',
      fields: [
        { name: 'id', data_type: DataType.Int64, is_primary_key: true },
        { name: 'v', data_type: DataType.FloatVector, dim: 2 },
      ],
    });
    expect((await c.createSnapshot({ collection_name: 'other', snapshot_name: 'before_migration' })).error_code).toBe(ErrorCode.SUCCESS);
    const results = await Promise.all(Array.from({ length: 5 }, () => c.createSnapshot({ collection_name: 'other', snapshot_name: 'race' })));
    expect(results.filter((r) => r.error_code === ErrorCode.SUCCESS)).toHaveLength(1);
  });
});

describe('restoring while the source is loaded shares its memory', () => {
  it('the restored collection loads by sharing the source columns and index, with its own deletes', async () => {
    const t = await startTestServer({ autoCompaction: false });
    try {
      const c = t.client;
      const vs = vectors(400, 8, 17);
      await c.createCollection({
        collection_name: 'live',
        fields: [
          { name: 'id', data_type: DataType.Int64, is_primary_key: true },
          { name: 'v', data_type: DataType.FloatVector, dim: 8 },
        ],
      });
      await c.insert({ collection_name: 'live', data: vs.map((v, i) => ({ id: i, v })) });
      await c.flushSync({ collection_names: ['live'] });
      await c.createIndex({ collection_name: 'live', field_name: 'v', index_type: 'HNSW', metric_type: 'L2', params: { M: 8, efConstruction: 32 } });
      const engine = t.server.engine;
      const srcId = engine.catalog.resolveCollection('default', 'live').id;
      await engine.waitForIndexes(srcId);
      await c.loadCollectionSync({ collection_name: 'live' });
      await c.delete({ collection_name: 'live', ids: [1, 2] });
      await c.createSnapshot({ collection_name: 'live', snapshot_name: 'snap' });
      // After the snapshot: more deletes in the source; the restore must not see them.
      await c.delete({ collection_name: 'live', ids: [3, 4, 5] });
      const r = await c.restoreSnapshot({ snapshot_name: 'snap', source_collection_name: 'live', target_collection_name: 'copy' });
      expect((await waitRestore(c, r.job_id)).state).toBe('RestoreSnapshotCompleted');
      await c.loadCollectionSync({ collection_name: 'copy' });
      expect((await c.count({ collection_name: 'copy' })).data).toBe(398);
      expect((await c.count({ collection_name: 'live' })).data).toBe(395);
      const dstId = engine.catalog.resolveCollection('default', 'copy').id;
      const srcSeg = [...engine.runtime(srcId).segments.values()].find((s) => s.phase === 'flushed')!;
      const dstSeg = [...engine.runtime(dstId).segments.values()].find((s) => s.phase === 'flushed')!;
      expect(dstSeg.chunks[0]!.columns.get('v')).toBe(srcSeg.chunks[0]!.columns.get('v'));
      expect(dstSeg.chunks[0]!.indexes.get('v')).toBe(srcSeg.chunks[0]!.indexes.get('v'));
      expect(dstSeg.chunks[0]!.deleted).not.toBe(srcSeg.chunks[0]!.deleted);
      // Searches on each side see their own deletes.
      const sd = await c.search({ collection_name: 'copy', data: [vs[4]!], limit: 1 });
      expect(sd.results[0]!.id).toBe('4');
      const ss = await c.search({ collection_name: 'live', data: [vs[4]!], limit: 1 });
      expect(ss.results[0]!.id).not.toBe('4');
      // Releasing the source does not affect the restored collection.
      await c.releaseCollection({ collection_name: 'live' });
      expect((await c.search({ collection_name: 'copy', data: [vs[7]!], limit: 1 })).results[0]!.id).toBe('7');
    } finally {
      await t.close();
    }
  });
});

describe('a restored collection is independent of its source', () => {
  it('restores into another database; survives the source being compacted, dropped and garbage-collected; is itself compactable and droppable', async () => {
    const t = await startTestServer({ autoCompaction: false, gcDroppedGraceMs: 0, gcOrphanGraceMs: 1 });
    try {
      const c = t.client;
      const engine = t.server.engine;
      const vs = vectors(300, 4, 23);
      await c.createCollection({
        collection_name: 'orig',
        fields: [
          { name: 'id', data_type: DataType.Int64, is_primary_key: true },
          { name: 'v', data_type: DataType.FloatVector, dim: 4 },
        ],
      });
      for (let b = 0; b < 3; b++) {
        await c.insert({ collection_name: 'orig', data: vs.slice(b * 100, b * 100 + 100).map((v, i) => ({ id: b * 100 + i, v })) });
        await c.flushSync({ collection_names: ['orig'] });
      }
      await c.createSnapshot({ collection_name: 'orig', snapshot_name: 'snap' });
      await c.createDatabase({ db_name: 'archive' });
      const r = await c.restoreSnapshot({
        snapshot_name: 'snap',
        source_collection_name: 'orig',
        target_collection_name: 'copy',
        target_db_name: 'archive',
      });
      expect(r.status.error_code).toBe(ErrorCode.SUCCESS);
      expect((await waitRestore(c, r.job_id)).state).toBe('RestoreSnapshotCompleted');
      expect((await c.listRestoreSnapshotJobs({ db_name: 'archive' } as never)).jobs.map((j) => j.collection_name)).toEqual(['copy']);
      // Compact and drop the source, drop its snapshot, and let GC reclaim everything of it.
      const origId = engine.catalog.resolveCollection('default', 'orig').id;
      await engine.compact(origId, { force: true, wait: true });
      await c.dropSnapshot({ collection_name: 'orig', snapshot_name: 'snap' });
      await c.dropCollection({ collection_name: 'orig' });
      await t.server.gc.tick();
      expect(await engine.store.list(`insert_log/${origId}/`)).toEqual([]);
      // The restored collection, in the other database, still has every row.
      await c.useDatabase({ db_name: 'archive' });
      await c.loadCollectionSync({ collection_name: 'copy' });
      expect((await c.count({ collection_name: 'copy' })).data).toBe(300);
      // Writable, compactable, droppable.
      await c.insert({ collection_name: 'copy', data: [{ id: 1000, v: vs[0]! }] });
      await c.delete({ collection_name: 'copy', ids: [0, 1, 2] });
      const copyId = engine.catalog.resolveCollection('archive', 'copy').id;
      await engine.flushCollection(copyId);
      const task = await engine.compact(copyId, { force: true, wait: true });
      expect(task.plans.every((p) => p.state === 'Completed')).toBe(true);
      expect((await c.count({ collection_name: 'copy' })).data).toBe(298);
      await c.releaseCollection({ collection_name: 'copy' });
      expect((await c.dropCollection({ collection_name: 'copy' })).error_code).toBe(ErrorCode.SUCCESS);
      await c.useDatabase({ db_name: 'default' });
    } finally {
      await t.close();
    }
  });
});

describe('GC after compaction keeps exactly the files a snapshot references (zero grace, real server process)', () => {
  const servers = new Set<ServerProcess>();
  const dirs: string[] = [];
  afterEach(async () => {
    for (const s of servers) await s.kill9();
    servers.clear();
    for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
  });

  it('compacting away the snapshot segments and GC with no grace deletes only unreferenced files; the restore has every row', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'quiver-gc-'));
    dirs.push(dir);
    const srv = await spawnServer(dir, { QUIVER_AUTO_COMPACTION: 'false', QUIVER_GC_DROPPED_GRACE_MS: '0', QUIVER_GC_INTERVAL_MS: '100' });
    servers.add(srv);
    const c = srv.client;
    const vs = vectors(500, 4, 29);
    await c.createCollection({
      collection_name: 'src',
      fields: [
        { name: 'id', data_type: DataType.Int64, is_primary_key: true },
        { name: 'v', data_type: DataType.FloatVector, dim: 4 },
      ],
    });
    const segment = async (b: number) => {
      await c.insert({ collection_name: 'src', data: vs.slice(b * 100, b * 100 + 100).map((v, i) => ({ id: b * 100 + i, v })) });
      await c.flushSync({ collection_names: ['src'] });
    };
    const indexBuilt = async () => (await c.describeIndex({ collection_name: 'src', field_name: 'v' })).index_descriptions[0]?.state === 'Finished';
    const collId = Number((await c.describeCollection({ collection_name: 'src' })).collectionID);
    const segmentFiles = async () => [...(await collectionFileKeys(dir, collId)), ...(await objectKeys(dir, 'index_files'))];
    for (let b = 0; b < 3; b++) await segment(b);
    await c.createIndex({ collection_name: 'src', field_name: 'v', index_type: 'HNSW', metric_type: 'L2', params: { M: 8, efConstruction: 32 } });
    await until(indexBuilt);
    // Every segment file right now (binlogs, stats, index files) belongs to the snapshot.
    const referenced = await segmentFiles();
    expect(referenced.some((k) => k.startsWith('index_files/'))).toBe(true);
    expect((await c.createSnapshot({ collection_name: 'src', snapshot_name: 'keep' })).error_code).toBe(ErrorCode.SUCCESS);
    // Two segments the snapshot does not reference.
    for (let b = 3; b < 5; b++) await segment(b);
    await until(indexBuilt);
    const unreferenced = (await segmentFiles()).filter((k) => !referenced.includes(k));
    expect(unreferenced.length).toBeGreaterThan(0);
    // Merge all five: every one of them is Dropped now, and GC has no grace.
    const task = await c.compact({ collection_name: 'src' });
    await until(async () => String((await c.getCompactionState({ compactionID: task.compactionID })).state) === 'Completed');
    const merged = (await segmentFiles()).filter((k) => !referenced.includes(k) && !unreferenced.includes(k));
    expect(merged.length).toBeGreaterThan(0);
    // GC reclaims the unreferenced sources (the event we wait for) ...
    await until(async () => (await segmentFiles()).every((k) => !unreferenced.includes(k)));
    // ... and kept every file the snapshot references, though its segments are Dropped as well.
    const now = new Set(await segmentFiles());
    expect(referenced.filter((k) => !now.has(k))).toEqual([]);
    expect(merged.filter((k) => !now.has(k))).toEqual([]);
    const r = await c.restoreSnapshot({ snapshot_name: 'keep', source_collection_name: 'src', target_collection_name: 'back' });
    expect((await waitRestore(c, r.job_id)).state).toBe('RestoreSnapshotCompleted');
    await c.loadCollectionSync({ collection_name: 'back' });
    const rows = await c.query({ collection_name: 'back', filter: 'id >= 0', output_fields: ['id'] });
    expect(rows.data.map((x) => Number(x['id'])).sort((a, b) => a - b)).toEqual(Array.from({ length: 300 }, (_, i) => i));
    await srv.stop();
  });
});
