import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DataType, ErrorCode } from '@zilliz/milvus2-sdk-node';
import { startTestServer, vectors, type TestServer } from './helpers.js';

/* eslint-disable @typescript-eslint/no-explicit-any */

/**
 * Search iterator v1, the protocol of older SDKs: the client drives the pages itself. Each page is a
 * Search with `iterator: true` (no `search_iter_v2`): the first unbounded, the next ones range searches
 * from the last page's distance (range_filter ≤ d < radius for L2) with a filter excluding the pks
 * already returned at exactly that distance. The SDK 3.0.6 only speaks v2, so the test plays the v1
 * client through `search` and checks the pages against a brute-force ordering of every row.
 */
describe('search iterator v1 pages through the SDK', () => {
  let t: TestServer;
  const N = 400;
  // Coarse values: many rows share a distance, so ties across page boundaries are exercised.
  const vs = vectors(N, 4, 9).map((v) => v.map((x) => Math.round(x * 4) / 4));
  beforeAll(async () => {
    t = await startTestServer({ autoCompaction: false });
    const c = t.client;
    await c.createCollection({
      collection_name: 'v1',
      fields: [
        { name: 'id', data_type: DataType.Int64, is_primary_key: true },
        { name: 'vec', data_type: DataType.FloatVector, dim: 4 },
      ],
    });
    await c.insert({ collection_name: 'v1', data: vs.map((vec, id) => ({ id, vec })) });
    await c.createIndex({ collection_name: 'v1', field_name: 'vec', index_type: 'FLAT', metric_type: 'L2' });
    await c.loadCollectionSync({ collection_name: 'v1' });
  });
  afterAll(async () => {
    await t?.close();
  });

  it('pages bounded by range_filter and a pk exclusion return every row once, nearest first', async () => {
    const c = t.client;
    const q = [0.1, -0.2, 0.3, 0];
    const dist = (v: number[]) => Math.fround(v.reduce((a, x, j) => a + (x - q[j]!) ** 2, 0));
    const batch = 37;
    const seen: { id: number; d: number }[] = [];
    let lastD: number | undefined;
    let atLast: number[] = [];
    for (let page = 0; page < 100; page++) {
      const params: Record<string, unknown> = { iterator: true };
      if (lastD !== undefined) Object.assign(params, { range_filter: lastD, radius: 1e9 });
      const r = await c.search({
        collection_name: 'v1',
        data: [q],
        anns_field: 'vec',
        limit: batch,
        params,
        filter: atLast.length > 0 ? `id not in [${atLast.join(',')}]` : '',
        output_fields: ['id'],
      } as any);
      expect(r.status.error_code, r.status.reason).toBe(ErrorCode.SUCCESS);
      const hits = (r.results as any[]).map((h) => ({ id: Number(h.id), d: Number(h.score) }));
      if (hits.length === 0) break;
      seen.push(...hits);
      const d = hits[hits.length - 1]!.d;
      atLast = d === lastD ? [...atLast, ...hits.filter((h) => h.d === d).map((h) => h.id)] : hits.filter((h) => h.d === d).map((h) => h.id);
      lastD = d;
    }
    expect(seen).toHaveLength(N);
    expect(new Set(seen.map((h) => h.id)).size).toBe(N);
    // Nearest first across every page, and each reported distance is the row's true distance.
    for (let i = 1; i < seen.length; i++) expect(seen[i]!.d).toBeGreaterThanOrEqual(seen[i - 1]!.d);
    for (const h of seen) expect(h.d).toBeCloseTo(dist(vs[h.id]!), 4);
  });
});
