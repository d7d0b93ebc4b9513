import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DataType, ErrorCode } from '@zilliz/milvus2-sdk-node';
import { startTestServer, vectors, type TestServer } from './helpers.js';

/* eslint-disable @typescript-eslint/no-explicit-any */

describe('partial upsert (partial_update) through the SDK', () => {
  let t: TestServer;
  const vs = vectors(10, 4, 3);
  beforeAll(async () => {
    t = await startTestServer({ autoCompaction: false });
    const c = t.client;
    await c.createCollection({
      collection_name: 'pu',
      fields: [
        { name: 'id', data_type: DataType.Int64, is_primary_key: true },
        { name: 'vec', data_type: DataType.FloatVector, dim: 4 },
        { name: 'title', data_type: DataType.VarChar, max_length: 16 },
        { name: 'score', data_type: DataType.Int32, default_value: 7 },
        { name: 'note', data_type: DataType.VarChar, max_length: 16, nullable: true },
      ],
      enable_dynamic_field: true,
    });
    await c.createIndex({ collection_name: 'pu', field_name: 'vec', index_type: 'FLAT', metric_type: 'L2' });
    await c.loadCollectionSync({ collection_name: 'pu' });
    const r = await c.insert({
      collection_name: 'pu',
      data: vs.slice(0, 5).map((v, i) => ({ id: i, vec: v, title: `t${i}`, score: i, note: `n${i}`, color: 'red', size: i })),
    });
    expect(r.status.error_code, r.status.reason).toBe(ErrorCode.SUCCESS);
  });
  afterAll(async () => {
    await t?.close();
  });

  const rows = async (filter: string) => {
    const q = await t.client.query({ collection_name: 'pu', filter, output_fields: ['id', 'vec', 'title', 'score', 'note', '$meta'] });
    expect(q.status.error_code, q.status.reason).toBe(ErrorCode.SUCCESS);
    return new Map(q.data.map((r: any) => [Number(r.id), r]));
  };

  it('updates only the given fields of existing rows, merges dynamic keys, and inserts new pks with defaults', async () => {
    const c = t.client;
    const r = await c.upsert({
      collection_name: 'pu',
      partial_update: true,
      data: [
        { id: 1, title: 'new1', color: 'blue' },
        { id: 3, title: 'new3' },
      ],
    });
    expect(r.status.error_code, r.status.reason).toBe(ErrorCode.SUCCESS);
    const got = await rows('id in [1, 3, 4]');
    expect(got.get(1)).toMatchObject({ title: 'new1', score: 1, note: 'n1', $meta: { color: 'blue', size: 1 } });
    expect(got.get(3)).toMatchObject({ title: 'new3', score: 3, note: 'n3', $meta: { color: 'red', size: 3 } });
    (got.get(1)!.vec as number[]).forEach((x, j) => expect(x).toBeCloseTo(vs[1]![j]!, 5));
    expect(got.get(4)).toMatchObject({ title: 't4', score: 4 });
    // Still one row per pk.
    const n = await c.query({ collection_name: 'pu', filter: 'id >= 0', output_fields: ['count(*)'] });
    expect(Number(n.data[0]!['count(*)'])).toBe(5);

    // A new pk: left-out fields take their default (score) or null (note); a vector must be given.
    const ins = await c.upsert({ collection_name: 'pu', partial_update: true, data: [{ id: 9, vec: vs[9], title: 'nine' }] });
    expect(ins.status.error_code, ins.status.reason).toBe(ErrorCode.SUCCESS);
    expect((await rows('id == 9')).get(9)).toMatchObject({ title: 'nine', score: 7, note: null });
  });

  it('refuses a new pk without a required field, a row without pk and unsupported field ops; nothing changes', async () => {
    const c = t.client;
    const before = await rows('id >= 0');
    const noVec = await c.upsert({
      collection_name: 'pu',
      partial_update: true,
      data: [
        { id: 2, title: 'x2' },
        { id: 20, title: 'x20' },
      ],
    });
    expect(noVec.status.error_code).not.toBe(ErrorCode.SUCCESS);
    expect(noVec.status.reason).toMatch(/row 1 has a new primary key, so field vec/);
    const noPk = await c.upsert({ collection_name: 'pu', partial_update: true, data: [{ title: 'x' }] as any });
    expect(noPk.status.error_code).not.toBe(ErrorCode.SUCCESS);
    const tooLong = await c.upsert({ collection_name: 'pu', partial_update: true, data: [{ id: 2, title: 'x'.repeat(40) }] });
    expect(tooLong.status.reason).toMatch(/exceeds max length/);
    expect(await rows('id >= 0')).toEqual(before);
  });
});
