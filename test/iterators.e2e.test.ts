import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DataType, ErrorCode } from '@zilliz/milvus2-sdk-node';
import { SeededRandom } from '../src/testing/index.js';
import { startTestServer, type TestServer } from './helpers.js';

/**
 * The SDK's queryIterator and searchIterator over 100k rows: every row exactly once, in order (pk order
 * for the query iterator; best score first, then pk, for the search iterator), with rows in both flushed
 * and growing segments. And an iterator resumed after its collection was dropped answers a clear error.
 */
const ROWS = 100_000;
const DIM = 4;

describe('query and search iterators through the SDK', () => {
  let t: TestServer;
  const vecs = new Float32Array(ROWS * DIM);
  beforeAll(async () => {
    t = await startTestServer();
    const c = t.client;
    await c.createCollection({
      collection_name: 'it',
      fields: [
        { name: 'id', data_type: DataType.Int64, is_primary_key: true },
        { name: 'v', data_type: DataType.FloatVector, dim: DIM },
      ],
    });
    await c.createIndex({ collection_name: 'it', field_name: 'v', index_type: 'FLAT', metric_type: 'L2' });
    await c.loadCollectionSync({ collection_name: 'it' });
    const rnd = new SeededRandom(11);
    for (let i = 0; i < vecs.length; i++) vecs[i] = Math.round(rnd.next() * 8) / 8; // coarse values: many tied distances
    const BATCH = 10_000;
    // Shuffled pk order, so pk order is not insertion order.
    const ids = Array.from({ length: ROWS }, (_, i) => i);
    for (let i = ids.length - 1; i > 0; i--) {
      const j = Math.floor(rnd.next() * (i + 1));
      [ids[i], ids[j]] = [ids[j]!, ids[i]!];
    }
    for (let b = 0; b < ROWS; b += BATCH) {
      const data = ids.slice(b, b + BATCH).map((id) => ({ id, v: Array.from(vecs.subarray(id * DIM, (id + 1) * DIM)) }));
      await c.insert({ collection_name: 'it', data });
      if (b === ROWS / 2) await c.flushSync({ collection_names: ['it'] }); // half flushed, half growing
    }
  }, 180_000);
  afterAll(async () => {
    await t?.close();
  });

  it('queryIterator returns every row once, in pk order', async () => {
    const it = await t.client.queryIterator({ collection_name: 'it', batchSize: 7_000, output_fields: ['id'], expr: 'id >= 0' });
    const seen: number[] = [];
    for await (const page of it) for (const r of page as { id: string }[]) seen.push(Number(r.id));
    expect(seen).toHaveLength(ROWS);
    for (let i = 0; i < ROWS; i++) if (seen[i] !== i) throw new Error(`row ${i}: got ${seen[i]}`);
  }, 120_000);

  it('searchIterator returns every row once, best first, ties by pk', async () => {
    const q = [0.5, 0.5, 0.5, 0.5];
    const it = await t.client.searchIterator({ collection_name: 'it', data: q, batchSize: 9_000, output_fields: ['id'] });
    const ids: number[] = [];
    const scores: number[] = [];
    for await (const page of it) {
      for (const r of page as { id: string; score: number }[]) {
        ids.push(Number(r.id));
        scores.push(r.score);
      }
    }
    expect(ids).toHaveLength(ROWS);
    expect(new Set(ids).size).toBe(ROWS);
    // The exact order: L2 distance ascending (as float32), then pk ascending.
    const dist = new Float32Array(ROWS);
    for (let r = 0; r < ROWS; r++) {
      let d = 0;
      for (let k = 0; k < DIM; k++) d += (vecs[r * DIM + k]! - q[k]!) ** 2;
      dist[r] = d;
    }
    for (let i = 1; i < ROWS; i++) {
      const a = ids[i - 1]!;
      const b = ids[i]!;
      const ok = dist[a]! < dist[b]! || (dist[a] === dist[b] && a < b);
      if (!ok) throw new Error(`position ${i}: ${a} (${dist[a]}) before ${b} (${dist[b]})`);
    }
    expect(Math.abs(scores[0]! - dist[ids[0]!]!)).toBeLessThan(1e-4);
  }, 120_000);

  it('an iterator resumed after its collection was dropped answers a clear error', async () => {
    const c = t.client;
    await c.createCollection({
      collection_name: 'gone',
      fields: [
        { name: 'id', data_type: DataType.Int64, is_primary_key: true },
        { name: 'v', data_type: DataType.FloatVector, dim: 2 },
      ],
    });
    await c.createIndex({ collection_name: 'gone', field_name: 'v', index_type: 'FLAT', metric_type: 'L2' });
    await c.loadCollectionSync({ collection_name: 'gone' });
    await c.insert({ collection_name: 'gone', data: Array.from({ length: 10 }, (_, i) => ({ id: i, v: [i, 0] })) });
    const first = await c.search({
      collection_name: 'gone',
      data: [0, 0],
      limit: 3,
      params: { iterator: true, search_iter_v2: true, search_iter_batch_size: 3 },
    });
    expect(first.results.map((r) => Number(r.id))).toEqual([0, 1, 2]);
    const token = first.search_iterator_v2_results?.token as string;
    expect(token).toBeTruthy();
    const oldId = (await c.describeCollection({ collection_name: 'gone' })).collectionID;
    const qi = await c.queryIterator({ collection_name: 'gone', batchSize: 4, output_fields: ['id'], expr: 'id >= 0' });
    const pages = qi[Symbol.asyncIterator]();
    expect(((await pages.next()).value as unknown[]).length).toBe(4);
    await c.dropCollection({ collection_name: 'gone' });
    // The query iterator's next page is a query on a collection that is gone.
    const q = await c.query({ collection_name: 'gone', expr: 'id > 3', limit: 4 });
    expect(q.status.error_code).not.toBe(ErrorCode.SUCCESS);
    expect(q.status.reason).toMatch(/collection not found.*gone/);
    expect((await pages.next()).done).toBe(true);
    // Re-created under the same name: the old search iterator's token is refused, naming both ids.
    await c.createCollection({
      collection_name: 'gone',
      fields: [
        { name: 'id', data_type: DataType.Int64, is_primary_key: true },
        { name: 'v', data_type: DataType.FloatVector, dim: 2 },
      ],
    });
    await c.createIndex({ collection_name: 'gone', field_name: 'v', index_type: 'FLAT', metric_type: 'L2' });
    await c.loadCollectionSync({ collection_name: 'gone' });
    const resumed = await c.search({
      collection_name: 'gone',
      data: [0, 0],
      limit: 3,
      params: { iterator: true, search_iter_v2: true, search_iter_batch_size: 3, search_iter_id: token, collection_id: oldId },
    });
    expect(resumed.status.error_code).not.toBe(ErrorCode.SUCCESS);
    expect(resumed.status.reason).toMatch(new RegExp(`began on \\(id ${oldId}\\) no longer exists`));
    const badToken = await c.search({
      collection_name: 'gone',
      data: [0, 0],
      limit: 3,
      params: { iterator: true, search_iter_v2: true, search_iter_id: 'garbage' },
    });
    expect(badToken.status.reason).toMatch(/not a search iterator token/);
  });
});
