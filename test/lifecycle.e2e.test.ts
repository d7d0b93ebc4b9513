import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DataType } from '@zilliz/milvus2-sdk-node';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTestServer, until, vectors, type TestServer } from './helpers.js';
import { spawnServer } from './process.js';

describe('segment lifecycle: sealing, background flush, GC of dropped data', () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer({
      sealRows: 100,
      flushIdleMs: 300,
      backgroundIntervalMs: 20,
      autoCompaction: false,
      gcDroppedGraceMs: 0,
      gcOrphanGraceMs: 1,
    });
  });
  afterAll(async () => {
    await t?.close();
  });

  const fields = [
    { name: 'id', data_type: DataType.Int64, is_primary_key: true },
    { name: 'v', data_type: DataType.FloatVector, dim: 4 },
  ];

  it('seals growing segments by row count and flushes idle data in the background, without blocking inserts', async () => {
    const c = t.client;
    await c.createCollection({ collection_name: 'seal', fields });
    const vs = vectors(330, 4, 2);
    for (let b = 0; b < 11; b++) {
      const r = await c.insert({ collection_name: 'seal', data: vs.slice(b * 30, b * 30 + 30).map((v, i) => ({ id: b * 30 + i, v })) });
      expect(r.status.error_code).toBe('Success');
    }
    const rt = () => t.server.engine.runtime(t.server.engine.catalog.resolveCollection('default', 'seal').id);
    // 330 rows, seal at 100: the row-count policy flushes, then the idle policy flushes the rest.
    await until(() => [...rt().segments.values()].every((s) => s.phase === 'flushed'));
    const flushed = [...rt().segments.values()];
    expect(flushed.reduce((n, s) => n + s.numRows, 0)).toBe(330);
    expect(flushed.length).toBeGreaterThanOrEqual(2);
    await c.loadCollectionSync({ collection_name: 'seal' });
    expect((await c.count({ collection_name: 'seal' })).data).toBe(330);
  });

  it('drop collection is immediate for the user; GC reclaims its files later; dry-run lists them first', async () => {
    const c = t.client;
    const engine = t.server.engine;
    await c.createCollection({ collection_name: 'gone', fields });
    await c.insert({ collection_name: 'gone', data: vectors(150, 4, 3).map((v, i) => ({ id: i, v })) });
    await c.flushSync({ collection_names: ['gone'] });
    const id = engine.catalog.resolveCollection('default', 'gone').id;
    const files = (await engine.store.list(`insert_log/${id}/`)).length;
    expect(files).toBeGreaterThan(0);
    await c.dropCollection({ collection_name: 'gone' });
    expect((await c.hasCollection({ collection_name: 'gone' })).value).toBe(false);
    const res = await fetch(`http://127.0.0.1:${t.server.metricsPort}/gc/dry-run`);
    const dry = (await res.json()) as { wouldDelete: string[] };
    expect(dry.wouldDelete.filter((k) => k.startsWith(`insert_log/${id}/`)).length).toBe(files);
    expect((await engine.store.list(`insert_log/${id}/`)).length).toBe(files);
    const report = await t.server.gc.tick();
    expect(report.filesDeleted).toBeGreaterThanOrEqual(files);
    expect(await engine.store.list(`insert_log/${id}/`)).toEqual([]);
    expect(engine.catalog.collectionIncludingDropped(id)).toBeUndefined();
  });
});

describe('shutdown during background work', () => {
  it('closing the server while an HNSW build runs cancels it cleanly (no native abort); the data dir reopens and the index gets built', async () => {
    const t = await startTestServer({ autoCompaction: false });
    let t2: TestServer | undefined;
    try {
      const c = t.client;
      await c.createCollection({
        collection_name: 'big',
        fields: [
          { name: 'id', data_type: DataType.Int64, is_primary_key: true },
          { name: 'v', data_type: DataType.FloatVector, dim: 32 },
        ],
      });
      const vs = vectors(20_000, 32, 4);
      for (let b = 0; b < 4; b++)
        await c.insert({ collection_name: 'big', data: vs.slice(b * 5000, b * 5000 + 5000).map((v, i) => ({ id: b * 5000 + i, v })) });
      await c.flushSync({ collection_names: ['big'] });
      await c.createIndex({ collection_name: 'big', field_name: 'v', index_type: 'HNSW', metric_type: 'L2', params: { M: 16, efConstruction: 400 } });
      // The build is issued (and takes seconds at this size): close while it is in progress.
      const state = async () => (await c.describeIndex({ collection_name: 'big', field_name: 'v' })).index_descriptions[0]?.state;
      await until(async () => (await state()) === 'InProgress');
      await t.close({ keepData: true });
      // The data dir is consistent: a new server opens it, and the index gets built then.
      t2 = await startTestServer({ autoCompaction: false }, {}, t.dataDir);
      await t2.client.loadCollectionSync({ collection_name: 'big' });
      expect((await t2.client.count({ collection_name: 'big' })).data).toBe(20_000);
      await until(async () => (await t2!.client.describeIndex({ collection_name: 'big', field_name: 'v' })).index_descriptions[0]?.state === 'Finished', {
        timeoutMs: 120_000,
      });
    } finally {
      await t.close({ keepData: true });
      await t2?.close();
    }
  });
});

describe('SIGTERM', () => {
  it('after sustained inserts (flushes, index builds and compactions running) logs no error', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'quiver-sigterm-'));
    // Small seals, a fast background pass and idle flushes: segments keep being flushed, indexed and
    // compacted while the inserts run, so the SIGTERM lands in the middle of background work.
    const srv = await spawnServer(dir, { QUIVER_SEAL_ROWS: '20000', QUIVER_BACKGROUND_INTERVAL_MS: '20', QUIVER_FLUSH_IDLE_MS: '100' });
    try {
      const c = srv.client;
      const fields = [
        { name: 'id', data_type: DataType.Int64, is_primary_key: true },
        { name: 'v', data_type: DataType.FloatVector, dim: 32 },
      ];
      expect((await c.createCollection({ collection_name: 'term', fields })).error_code).toBe('Success');
      const idx = await c.createIndex({
        collection_name: 'term',
        field_name: 'v',
        index_type: 'HNSW',
        metric_type: 'L2',
        params: { M: 8, efConstruction: 64 },
      });
      expect(idx.error_code).toBe('Success');
      const vs = vectors(20_000, 32, 7);
      for (let b = 0; b < 40; b++) {
        const r = await c.insert({ collection_name: 'term', data: vs.slice(b * 500, b * 500 + 500).map((v, i) => ({ id: b * 500 + i, v })) });
        expect(r.status.error_code).toBe('Success');
      }
      // A manual compaction merges the small flushed segments and builds the target's HNSW index in the
      // background: the SIGTERM right after it lands mid-build.
      await c.flush({ collection_names: ['term'] });
      expect((await c.compact({ collection_name: 'term' })).status.error_code).toBe('Success');
    } finally {
      await srv.stop();
      await rm(dir, { recursive: true, force: true });
    }
    const lines = srv
      .output()
      .split('\n')
      .filter((l) => l.startsWith('{'));
    const errors = lines.filter((l) => (JSON.parse(l) as { level: number }).level >= 50);
    expect(errors).toEqual([]);
    expect(lines.some((l) => l.includes('quiver is serving'))).toBe(true);
  }, 120_000);
});
