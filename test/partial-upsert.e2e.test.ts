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

describe('partial upsert field ops ARRAY_APPEND / ARRAY_REMOVE through the SDK', () => {
  let t: TestServer;
  const vs = vectors(6, 4, 5);
  beforeAll(async () => {
    t = await startTestServer({ autoCompaction: false });
    const c = t.client;
    await c.createCollection({
      collection_name: 'arr',
      fields: [
        { name: 'id', data_type: DataType.Int64, is_primary_key: true },
        { name: 'vec', data_type: DataType.FloatVector, dim: 4 },
        { name: 'tags', data_type: DataType.Array, element_type: DataType.VarChar, max_length: 8, max_capacity: 4 },
        { name: 'nums', data_type: DataType.Array, element_type: DataType.Int64, max_capacity: 6, nullable: true },
        { name: 'ws', data_type: DataType.Array, element_type: DataType.Float, max_capacity: 6 },
        { name: 'title', data_type: DataType.VarChar, max_length: 16 },
      ],
    });
    await c.createIndex({ collection_name: 'arr', field_name: 'vec', index_type: 'FLAT', metric_type: 'L2' });
    await c.loadCollectionSync({ collection_name: 'arr' });
    const r = await c.insert({
      collection_name: 'arr',
      data: [
        { id: 1, vec: vs[1], tags: ['a', 'b'], nums: [1, 2, 2, 3], ws: [0.1, 0.2], title: 'one' },
        { id: 2, vec: vs[2], tags: ['c'], nums: null, ws: [], title: 'two' },
        { id: 3, vec: vs[3], tags: ['x', 'y', 'z'], nums: [9], ws: [1.5], title: 'three' },
      ],
    });
    expect(r.status.error_code, r.status.reason).toBe(ErrorCode.SUCCESS);
  });
  afterAll(async () => {
    await t?.close();
  });

  const rows = async () => {
    const q = await t.client.query({ collection_name: 'arr', filter: 'id >= 0', output_fields: ['id', 'tags', 'nums', 'ws', 'title'] });
    expect(q.status.error_code, q.status.reason).toBe(ErrorCode.SUCCESS);
    return new Map(q.data.map((r: any) => [Number(r.id), r]));
  };

  it('appends to and removes from stored arrays, keeps other fields, and treats a new pk or a null array as empty', async () => {
    const c = t.client;
    const app = await c.upsert({
      collection_name: 'arr',
      data: [
        { id: 1, tags: ['c'], nums: [4] },
        { id: 2, tags: ['d', 'e'], nums: [7, 8] },
      ],
      field_ops: [
        { field_name: 'tags', op: 'ARRAY_APPEND' },
        { field_name: 'nums', op: 'ARRAY_APPEND' },
      ],
    } as any);
    expect(app.status.error_code, app.status.reason).toBe(ErrorCode.SUCCESS);
    let got = await rows();
    expect(got.get(1)).toMatchObject({ tags: ['a', 'b', 'c'], title: 'one' });
    expect(got.get(1)!.nums.map(Number)).toEqual([1, 2, 2, 3, 4]);
    expect(got.get(2)).toMatchObject({ tags: ['c', 'd', 'e'], title: 'two' });
    expect(got.get(2)!.nums.map(Number)).toEqual([7, 8]);

    const rm = await c.upsert({
      collection_name: 'arr',
      data: [
        { id: 1, nums: [2, 42], ws: [0.1] },
        { id: 3, nums: [9], ws: [7] },
      ],
      field_ops: [
        { field_name: 'nums', op: 2 },
        { field_name: 'ws', op: 'ARRAY_REMOVE' },
      ],
    } as any);
    expect(rm.status.error_code, rm.status.reason).toBe(ErrorCode.SUCCESS);
    got = await rows();
    expect(got.get(1)!.nums.map(Number)).toEqual([1, 3, 4]); // every 2 removed; 42 was not there
    expect(got.get(1)!.ws).toHaveLength(1);
    expect(got.get(1)!.ws[0]).toBeCloseTo(0.2, 5); // the stored float32 0.1 matched the given 0.1
    expect(got.get(3)!.nums).toEqual([]);
    expect(got.get(3)!.ws).toEqual([1.5]);
    expect(got.get(3)).toMatchObject({ tags: ['x', 'y', 'z'], title: 'three' });

    // A new pk: APPEND stores the given elements (the other required fields must be given, as for any new row).
    const fresh = await c.upsert({
      collection_name: 'arr',
      data: [{ id: 5, vec: vs[5], tags: ['n'], ws: [], title: 'five' }],
      field_ops: [{ field_name: 'tags', op: 'ARRAY_APPEND' }],
    } as any);
    expect(fresh.status.error_code, fresh.status.reason).toBe(ErrorCode.SUCCESS);
    expect((await rows()).get(5)).toMatchObject({ tags: ['n'], title: 'five' });
    const n = await c.query({ collection_name: 'arr', filter: 'id >= 0', output_fields: ['count(*)'] });
    expect(Number(n.data[0]!['count(*)'])).toBe(4);
  });

  it('refuses an append over max_capacity, an array op on a non-array field and an op on a field the rows lack; nothing changes', async () => {
    const c = t.client;
    const before = await rows();
    const over = await c.upsert({
      collection_name: 'arr',
      data: [
        { id: 2, tags: ['f'] },
        { id: 3, tags: ['w', 'v'] },
      ],
      field_ops: [{ field_name: 'tags', op: 'ARRAY_APPEND' }],
    } as any);
    expect(over.status.error_code).not.toBe(ErrorCode.SUCCESS);
    expect(over.status.reason).toMatch(/ARRAY_APPEND on field tags at row 1: 3 \+ 2 elements exceed max capacity 4/);
    const notArray = await c.upsert({
      collection_name: 'arr',
      data: [{ id: 1, title: 'x' }],
      field_ops: [{ field_name: 'title', op: 'ARRAY_APPEND' }],
    } as any);
    expect(notArray.status.error_code).not.toBe(ErrorCode.SUCCESS);
    expect(notArray.status.reason).toMatch(/Array fields only; field title is VarChar/);
    const absent = await c.upsert({
      collection_name: 'arr',
      data: [{ id: 1, title: 'x' }],
      field_ops: [{ field_name: 'tags', op: 'ARRAY_REMOVE' }],
    } as any);
    expect(absent.status.error_code).not.toBe(ErrorCode.SUCCESS);
    expect(absent.status.reason).toMatch(/names field tags, but the rows do not carry it/);
    expect(await rows()).toEqual(before);
  });
});
