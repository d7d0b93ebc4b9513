import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { DataType, ErrorCode, MetricType } from '@zilliz/milvus2-sdk-node';
import { spawnServer, type ServerProcess } from './process.js';
import { until, vectors } from './helpers.js';
import { WriteModel, tagOf, v0Of } from './crash/write-model.js';

describe('durability: acknowledged writes survive kill -9', () => {
  const dirs: string[] = [];
  const servers = new Set<ServerProcess>();
  afterEach(async () => {
    // A failed test must not leave its server running.
    for (const s of servers) await s.kill9();
    servers.clear();
  });
  afterAll(async () => {
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });

  it('keeps every acknowledged insert and delete, flushed or not, and every database, collection and index', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'quiver-kill-'));
    dirs.push(dir);
    let srv = await spawnServer(dir);
    servers.add(srv);
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
    await c.createIndex({
      collection_name: 'items',
      field_name: 'v',
      index_type: 'HNSW',
      metric_type: MetricType.COSINE,
      params: { M: 8, efConstruction: 32 },
    });
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
    servers.add(srv);
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

  it('survives kill -9 during a stream of inserts, upserts and deletes: every acknowledged write is there with its value', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'quiver-kill-'));
    dirs.push(dir);
    let srv = await spawnServer(dir, { QUIVER_SEAL_ROWS: '500', QUIVER_BACKGROUND_INTERVAL_MS: '20' });
    servers.add(srv);
    await srv.client.createCollection({
      collection_name: 'stream',
      fields: [
        { name: 'id', data_type: DataType.Int64, is_primary_key: true },
        { name: 'val', data_type: DataType.Int64 },
        { name: 'tag', data_type: DataType.VarChar, max_length: 64 },
        { name: 'v', data_type: DataType.FloatVector, dim: 4 },
      ],
    });
    const model = new WriteModel();
    const rowsOf = (keys: number[], val: number) => keys.map((id) => ({ id, val, tag: tagOf(id, val), v: [v0Of(val), 1, 2, 3] }));
    let stopped = false;
    let next = 0;
    let ackedOps = 0;
    let failedOps = 0;
    const c = srv.client;
    const writer = (async () => {
      for (let i = 0; !stopped; i++) {
        // Mostly new keys; every third op rewrites or deletes keys written earlier (only keys whose fate is known).
        const known = Array.from({ length: next }, (_, k) => k).filter((k) => !model.isUncertain(k) && model.current(k) !== undefined);
        const kind = i % 3 === 2 && known.length >= 10 ? (i % 2 ? 'upsert' : 'delete') : 'insert';
        const keys = kind === 'insert' ? Array.from({ length: 50 }, () => next++) : known.slice((i * 7) % (known.length - 9)).slice(0, 10);
        const seq = model.nextSeq();
        const op = model.begin(keys, kind, seq);
        try {
          const r =
            kind === 'delete'
              ? await c.delete({ collection_name: 'stream', ids: keys })
              : kind === 'upsert'
                ? await c.upsert({ collection_name: 'stream', data: rowsOf(keys, seq) })
                : await c.insert({ collection_name: 'stream', data: rowsOf(keys, seq) });
          if (r.status.error_code === ErrorCode.SUCCESS) {
            op.ack();
            ackedOps++;
          } else {
            op.fail();
            failedOps++;
          }
        } catch {
          // Keep writing: one failed call says nothing about the next one.
          op.fail();
          failedOps++;
        }
      }
    })();
    // Kill once a good number of writes (some flushed by the seal policy, some only in the WAL) are acknowledged.
    await until(() => ackedOps >= 60);
    stopped = true;
    await srv.kill9();
    await writer;
    srv = await spawnServer(dir);
    servers.add(srv);
    await srv.client.loadCollectionSync({ collection_name: 'stream' });
    const q = await srv.client.query({ collection_name: 'stream', filter: 'id >= 0', output_fields: ['id', 'val', 'tag', 'v'] });
    const rows = q.data.map((r) => ({ id: Number(r['id']), val: Number(r['val']), tag: String(r['tag']), v0: Number((r['v'] as number[])[0]) }));
    expect(model.check(rows), `${ackedOps} acknowledged, ${failedOps} failed or in flight`).toEqual([]);
    await srv.stop();
  });
});

describe('durability: deletes of unflushed rows survive a flush and a restart', () => {
  it('a row deleted while growing stays deleted after flush + restart', async () => {
    const { startTestServer } = await import('./helpers.js');
    let t = await startTestServer({ autoCompaction: false });
    try {
      const c = t.client;
      await c.createCollection({
        collection_name: 'g',
        fields: [
          { name: 'id', data_type: DataType.Int64, is_primary_key: true },
          { name: 'v', data_type: DataType.FloatVector, dim: 2 },
        ],
      });
      await c.insert({
        collection_name: 'g',
        data: [
          { id: 1, v: [1, 0] },
          { id: 2, v: [0, 1] },
        ],
      });
      await c.delete({ collection_name: 'g', ids: [1] });
      await c.flushSync({ collection_names: ['g'] });
      t = await t.restart();
      await t.client.loadCollectionSync({ collection_name: 'g' });
      const q = await t.client.query({ collection_name: 'g', filter: 'id >= 0', output_fields: ['id'] });
      expect(q.data.map((r) => r.id)).toEqual(['2']);
    } finally {
      await t.close();
    }
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
    try {
      const cfg = loadConfig({ port: 0, metricsPort: 0, httpPort: 0, dataDir: dir }, {});
      await expect(startServer(cfg, { log: pino({ level: 'silent' }) })).rejects.toThrow(/in use by another Quiver process/);
      await srv.kill9();
      const again = await startServer(cfg, { log: pino({ level: 'silent' }) });
      await again.close();
    } finally {
      await srv.kill9();
      await rmr(dir, { recursive: true, force: true });
    }
  });
});
