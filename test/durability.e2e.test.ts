import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { DataType, ErrorCode, MetricType } from '@zilliz/milvus2-sdk-node';
import { spawnServer } from './process.js';
import { vectors } from './helpers.js';

describe('durability: acknowledged writes survive kill -9', () => {
  const dirs: string[] = [];
  afterAll(async () => {
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });

  it('keeps every acknowledged insert and delete, flushed or not, and every database, collection and index', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'quiver-kill-'));
    dirs.push(dir);
    let srv = await spawnServer(dir);
    const c = srv.client;
    await c.createDatabase({ db_name: 'shop' });
    await c.useDatabase({ db_name: 'shop' });
    await c.createCollection({
      collection_name: 'items',
      fields: [
        { name: 'id', data_type: DataType.Int64, is_primary_key: true, autoID: true },
        { name: 'name', data_type: DataType.VarChar, max_length: 32 },
        { name: 'v', data_type: DataType.FloatVector, dim: 4 },
      ],
    });
    await c.createPartition({ collection_name: 'items', partition_name: 'p1' });
    const vs = vectors(300, 4);
    const first = await c.insert({ collection_name: 'items', data: vs.slice(0, 100).map((v, i) => ({ name: `n${i}`, v })) });
    expect(first.status.error_code).toBe(ErrorCode.SUCCESS);
    await c.flushSync({ collection_names: ['items'] });
    await c.createIndex({ collection_name: 'items', field_name: 'v', index_type: 'HNSW', metric_type: MetricType.COSINE, params: { M: 8, efConstruction: 32 } });
    // Unflushed: lives only in the WAL.
    const second = await c.insert({ collection_name: 'items', partition_name: 'p1', data: vs.slice(100, 300).map((v, i) => ({ name: `m${i}`, v })) });
    expect(second.status.error_code).toBe(ErrorCode.SUCCESS);
    const ids1 = (first.IDs as unknown as { int_id: { data: string[] } }).int_id.data;
    const ids2 = (second.IDs as unknown as { int_id: { data: string[] } }).int_id.data;
    // Delete one flushed and one growing row; acknowledged, not flushed.
    const del = await c.delete({ collection_name: 'items', filter: `id in [${ids1[0]}, ${ids2[0]}]` });
    expect(del.status.error_code).toBe(ErrorCode.SUCCESS);
    await srv.kill9();

    srv = await spawnServer(dir);
    const c2 = srv.client;
    await c2.useDatabase({ db_name: 'shop' });
    expect((await c2.listDatabases()).db_names).toContain('shop');
    expect((await c2.hasPartition({ collection_name: 'items', partition_name: 'p1' })).value).toBe(true);
    const di = await c2.describeIndex({ collection_name: 'items', field_name: 'v' });
    expect(di.status.error_code).toBe(ErrorCode.SUCCESS);
    await c2.loadCollectionSync({ collection_name: 'items' });
    expect((await c2.count({ collection_name: 'items' })).data).toBe(298);
    const gone = await c2.query({ collection_name: 'items', filter: `id in [${ids1[0]}, ${ids2[0]}]`, output_fields: ['id'] });
    expect(gone.data).toHaveLength(0);
    const kept = await c2.query({ collection_name: 'items', filter: `id == ${ids2[199]}`, output_fields: ['name'] });
    expect(kept.data[0]?.name).toBe('m199');
    // New ids never collide with ids handed out before the crash.
    const third = await c2.insert({ collection_name: 'items', data: [{ name: 'after', v: vs[0]! }] });
    const id3 = (third.IDs as unknown as { int_id: { data: string[] } }).int_id.data[0]!;
    expect([...ids1, ...ids2]).not.toContain(id3);
    const s = await c2.search({ collection_name: 'items', data: [vs[150]!], limit: 1, output_fields: ['name'] });
    expect(s.results[0]?.name).toBe('m50');
    await srv.stop();
  });

  it('survives kill -9 during a stream of inserts: every acknowledged batch is there after restart', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'quiver-kill-'));
    dirs.push(dir);
    let srv = await spawnServer(dir, { QUIVER_SEAL_ROWS: '500', QUIVER_BACKGROUND_INTERVAL_MS: '20' });
    await srv.client.createCollection({
      collection_name: 'stream',
      fields: [
        { name: 'id', data_type: DataType.Int64, is_primary_key: true },
        { name: 'v', data_type: DataType.FloatVector, dim: 4 },
      ],
    });
    const acked = new Set<number>();
    let next = 0;
    const writer = (async () => {
      for (;;) {
        const base = next;
        next += 50;
        const rows = Array.from({ length: 50 }, (_, i) => ({ id: base + i, v: [1, 2, 3, (base + i) % 7] }));
        try {
          const r = await srv.client.insert({ collection_name: 'stream', data: rows });
          if (r.status.error_code !== ErrorCode.SUCCESS) return;
          for (const row of rows) acked.add(row.id);
        } catch {
          return;
        }
      }
    })();
    await new Promise((r) => setTimeout(r, 1500));
    await srv.kill9();
    await writer;
    expect(acked.size).toBeGreaterThan(0);
    srv = await spawnServer(dir);
    await srv.client.loadCollectionSync({ collection_name: 'stream' });
    const n = (await srv.client.count({ collection_name: 'stream' })).data;
    expect(n).toBeGreaterThanOrEqual(acked.size);
    const maxAcked = Math.max(...acked);
    const q = await srv.client.query({ collection_name: 'stream', filter: `id in [0, ${maxAcked}]`, output_fields: ['id'] });
    expect(q.data).toHaveLength(2);
    await srv.stop();
  });
});

describe('durability: deletes of unflushed rows survive a flush and a restart', () => {
  it('a row deleted while growing stays deleted after flush + restart', async () => {
    const { startTestServer } = await import('./helpers.js');
    let t = await startTestServer({ autoCompaction: false });
    const c = t.client;
    await c.createCollection({ collection_name: 'g', fields: [{ name: 'id', data_type: DataType.Int64, is_primary_key: true }, { name: 'v', data_type: DataType.FloatVector, dim: 2 }] });
    await c.insert({ collection_name: 'g', data: [{ id: 1, v: [1, 0] }, { id: 2, v: [0, 1] }] });
    await c.delete({ collection_name: 'g', ids: [1] });
    await c.flushSync({ collection_names: ['g'] });
    t = await t.restart();
    await t.client.loadCollectionSync({ collection_name: 'g' });
    const q = await t.client.query({ collection_name: 'g', filter: 'id >= 0', output_fields: ['id'] });
    expect(q.data.map((r) => r.id)).toEqual(['2']);
    await t.close();
  });
});

describe('one server per data dir', () => {
  it('a second server on a data dir in use is refused; after kill -9 the lock is taken over', async () => {
    const { mkdtemp: mk, rm: rmr } = await import('node:fs/promises');
    const { loadConfig } = await import('../src/common/config.js');
    const { startServer } = await import('../src/wiring/server.js');
    const { pino } = await import('pino');
    const dir = await mk(join(tmpdir(), 'quiver-lock-'));
    const srv = await spawnServer(dir);
    const cfg = loadConfig({ port: 0, metricsPort: 0, dataDir: dir }, {});
    await expect(startServer(cfg, { log: pino({ level: 'silent' }) })).rejects.toThrow(/in use by another Quiver process/);
    await srv.kill9();
    const again = await startServer(cfg, { log: pino({ level: 'silent' }) });
    await again.close();
    await rmr(dir, { recursive: true, force: true });
  });
});
