import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DataType, ErrorCode, type RowData } from '@zilliz/milvus2-sdk-node';
import { root } from '../src/proxy/proto.js';
import { startTestServer, type TestServer } from './helpers.js';

/**
 * Bad input for the vector types: each answers a Milvus error code (1100 invalid parameter, 701 index
 * not supported) and a reason naming the value; the server stays up and the stored rows do not change.
 */

const COLL = 'vbad';
const FIXTURE: RowData[] = [
  { id: 1, bv: [1, 2], h16: [0.5, 1, 1.5, 2], b16: [0.5, 1, 1.5, 2], i8: [1, 2, 3, 4], sp: { 1: 0.5, 7: 1 }, nv: [1, 0, 0, 0] },
  { id: 2, bv: [3, 4], h16: [1, 1, 1, 1], b16: [1, 1, 1, 1], i8: [-1, -2, -3, -4], sp: { 2: 1 }, nv: null },
  { id: 3, bv: [255, 0], h16: [2, 0, 0, 2], b16: [2, 0, 0, 2], i8: [0, 0, 0, 1], sp: { 1: 2 }, nv: [0, 1, 0, 0] },
];

describe('bad vector input is refused with a reason and changes nothing', () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer();
    const r = await t.client.createCollection({
      collection_name: COLL,
      fields: [
        { name: 'id', data_type: DataType.Int64, is_primary_key: true, autoID: false },
        { name: 'bv', data_type: DataType.BinaryVector, dim: 16 },
        { name: 'h16', data_type: DataType.Float16Vector, dim: 4 },
        { name: 'b16', data_type: DataType.BFloat16Vector, dim: 4 },
        { name: 'i8', data_type: DataType.Int8Vector, dim: 4 },
        { name: 'sp', data_type: DataType.SparseFloatVector },
        { name: 'nv', data_type: DataType.FloatVector, dim: 4, nullable: true },
      ],
    });
    expect(r.error_code, r.reason).toBe(ErrorCode.SUCCESS);
    const ins = await t.client.insert({ collection_name: COLL, data: FIXTURE });
    expect(ins.status.error_code, ins.status.reason).toBe(ErrorCode.SUCCESS);
    await t.client.loadCollection({ collection_name: COLL });
  });
  afterAll(async () => {
    await t?.close();
  });

  /** A raw gRPC call, for input the SDK refuses to send itself. */
  async function raw(method: string, request: string, response: string, obj: Record<string, unknown>): Promise<{ code: number; reason: string }> {
    const Req = root.lookupType(`milvus.proto.${request}`);
    const Res = root.lookupType(`milvus.proto.${response}`);
    const client = new grpc.Client(`127.0.0.1:${t.server.port}`, grpc.credentials.createInsecure());
    try {
      const reply = await new Promise<Buffer>((resolve, reject) =>
        client.makeUnaryRequest(
          `/milvus.proto.milvus.MilvusService/${method}`,
          (x: Buffer) => x,
          (x: Buffer) => x,
          Buffer.from(Req.encode(Req.fromObject(obj)).finish()),
          (e, r) => (e ? reject(e) : resolve(r!)),
        ),
      );
      const o = Res.toObject(Res.decode(reply)) as { status?: { code: number; reason: string }; code?: number; reason?: string };
      return o.status ?? { code: o.code ?? 0, reason: o.reason ?? '' };
    } finally {
      client.close();
    }
  }

  /** Insert columns of one valid row (id 77), with `over` replacing columns by field name. */
  function rawRow(over: Record<string, unknown>): Record<string, unknown> {
    const cols: Record<string, unknown> = {
      id: { field_name: 'id', type: 5, scalars: { long_data: { data: [77] } } },
      bv: { field_name: 'bv', type: 100, vectors: { dim: 16, binary_vector: Buffer.from([1, 2]) } },
      h16: { field_name: 'h16', type: 102, vectors: { dim: 4, float16_vector: Buffer.alloc(8) } },
      b16: { field_name: 'b16', type: 103, vectors: { dim: 4, bfloat16_vector: Buffer.alloc(8) } },
      i8: { field_name: 'i8', type: 105, vectors: { dim: 4, int8_vector: Buffer.alloc(4) } },
      sp: { field_name: 'sp', type: 104, vectors: { dim: 1, sparse_float_vector: { dim: 1, contents: [Buffer.from([1, 0, 0, 0, 0, 0, 128, 63])] } } },
      ...over,
    };
    return { collection_name: COLL, num_rows: 1, fields_data: Object.values(cols) };
  }

  const row = (over: Record<string, unknown>): RowData => ({ ...FIXTURE[0]!, id: 99, ...over }) as RowData;

  async function expectUnchanged(): Promise<void> {
    const q = await t.client.query({ collection_name: COLL, filter: 'id > 0', output_fields: ['id', 'bv', 'i8', 'sp', 'nv'] });
    expect(q.status.error_code).toBe(ErrorCode.SUCCESS);
    expect(q.data.map((r) => Number(r['id'])).sort()).toEqual([1, 2, 3]);
    expect(q.data.find((r) => Number(r['id']) === 2)!['nv']).toBeNull();
    expect((await t.client.getVersion()).version).toMatch(/quiver/);
  }

  it('refuses bad schemas: binary dim not a multiple of 8, a dim on a sparse field, too many vector fields', async () => {
    const make = (fields: unknown[]) =>
      // The high-level createCollection throws the Status it gets back.
      t.client
        .createCollection({ collection_name: 'badschema', fields: [{ name: 'id', data_type: DataType.Int64, is_primary_key: true }, ...fields] } as never)
        .catch((e: { code: number; reason: string }) => e);
    // The SDK checks binary dims itself: send the schema raw.
    const schema = root.lookupType('milvus.proto.schema.CollectionSchema');
    const bytes = schema
      .encode(
        schema.fromObject({
          name: 'badschema',
          fields: [
            { name: 'id', data_type: 5, is_primary_key: true },
            { name: 'b', data_type: 100, type_params: [{ key: 'dim', value: '12' }] },
          ],
        }),
      )
      .finish();
    const bin = await raw('CreateCollection', 'milvus.CreateCollectionRequest', 'common.Status', {
      collection_name: 'badschema',
      schema: Buffer.from(bytes),
    });
    expect(bin.code).toBe(1100);
    expect(bin.reason).toMatch(/dim 12 .*multiple of 8/);
    const sp = await make([{ name: 's', data_type: DataType.SparseFloatVector, dim: 30 }]);
    expect(sp.reason).toMatch(/dim should not be specified for sparse vector field s \(dim 30\)/);
    const many = await make(Array.from({ length: 11 }, (_, i) => ({ name: `v${i}`, data_type: DataType.Int8Vector, dim: 4 })));
    expect(many.reason).toMatch(/limited to 10, got 11/);
  });

  it('refuses wrong dims for every vector type on insert and in queries', async () => {
    const c = t.client;
    const bin = await raw(
      'Insert',
      'milvus.InsertRequest',
      'milvus.MutationResult',
      rawRow({ bv: { field_name: 'bv', type: 100, vectors: { dim: 16, binary_vector: Buffer.from([1, 2, 3]) } } }),
    );
    expect(bin.code).toBe(1100);
    expect(bin.reason).toMatch(/BinaryVector field bv .*not a multiple of its row size \(2 bytes for dim 16\)/);
    const binDim = await raw(
      'Insert',
      'milvus.InsertRequest',
      'milvus.MutationResult',
      rawRow({ bv: { field_name: 'bv', type: 100, vectors: { dim: 24, binary_vector: Buffer.from([1, 2, 3]) } } }),
    );
    expect(binDim.reason).toMatch(/the dim \(24\) of field data\(bv\) is not equal to schema dim \(16\)/);
    const cases: [string, unknown, RegExp][] = [
      ['h16', [1, 2, 3, 4, 5], /Float16Vector field h16 .*row size \(8 bytes for dim 4\)/],
      ['b16', [1, 2, 3], /BFloat16Vector field b16 .*row size \(8 bytes for dim 4\)/],
      ['i8', [1, 2, 3, 4, 5], /Int8Vector field i8 .*row size \(4 bytes for dim 4\)/],
    ];
    for (const [field, value, reason] of cases) {
      const r = await c.insert({ collection_name: COLL, data: [row({ [field]: value })] });
      expect(r.status.code, field).toBe(1100);
      expect(r.status.reason).toMatch(reason);
    }
    const s = await c.search({ collection_name: COLL, anns_field: 'bv', data: [[1, 2, 3]], limit: 2 });
    expect(s.status.code).toBe(1100);
    expect(s.status.reason).toMatch(/the dim \(24\) of query vector 0 is not equal to the dim \(16\) of BinaryVector field bv/);
    const h = await c.search({ collection_name: COLL, anns_field: 'h16', data: [[1, 2]], limit: 2 });
    expect(h.status.reason).toMatch(/the dim \(2\) of query vector 0 is not equal to the dim \(4\)/);
    const nan = await c.insert({ collection_name: COLL, data: [row({ h16: [1, NaN, 1, 1] })] });
    expect(nan.status.reason).toMatch(/h16 contains NaN or Inf at row 0, position 1/);
    await expectUnchanged();
  });

  it('refuses sparse vectors with duplicate, unsorted or negative indices, and non-finite values', async () => {
    const c = t.client;
    const dup = await c.insert({ collection_name: COLL, data: [row({ sp: { indices: [3, 3], values: [1, 2] } })] });
    expect(dup.status.code).toBe(1100);
    expect(dup.status.reason).toMatch(/duplicate index 3/);
    const unsorted = await c.insert({ collection_name: COLL, data: [row({ sp: { indices: [5, 3], values: [1, 2] } })] });
    expect(unsorted.status.reason).toMatch(/unsorted indices \(5 before 3\)/);
    const inf = await c.search({ collection_name: COLL, anns_field: 'sp', data: [{ 4: Infinity }], limit: 2 });
    expect(inf.status.reason).toMatch(/value Infinity at index 4/);
    // The SDK refuses a negative index itself; on the wire it can only arrive as its uint32 form, sent raw here.
    const negative = Buffer.alloc(8);
    negative.writeInt32LE(-1, 0);
    negative.writeFloatLE(1, 4);
    const res = {
      status: await raw(
        'Insert',
        'milvus.InsertRequest',
        'milvus.MutationResult',
        rawRow({ sp: { field_name: 'sp', type: 104, vectors: { dim: 1, sparse_float_vector: { dim: 1, contents: [negative] } } } }),
      ),
    };
    expect(res.status.code).toBe(1100);
    expect(res.status.reason).toMatch(/index 4294967295 \(-1 as a signed int32\)/);
    await expectUnchanged();
  });

  it('refuses a metric the type cannot use, and index types of another vector type', async () => {
    const c = t.client;
    const s = await c.search({ collection_name: COLL, anns_field: 'bv', data: [[1, 2]], metric_type: 'L2', limit: 2 });
    expect(s.status.code).toBe(1100);
    expect(s.status.reason).toMatch(/metric type L2 is not supported for BinaryVector field bv; supported: HAMMING, JACCARD/);
    const idx = await c.createIndex({ collection_name: COLL, field_name: 'bv', index_type: 'BIN_FLAT', metric_type: 'L2' });
    expect(idx.reason).toMatch(/metric type L2 is not supported for BinaryVector/);
    const hnswSparse = await c.createIndex({ collection_name: COLL, field_name: 'sp', index_type: 'HNSW', metric_type: 'IP' });
    expect(hnswSparse.code).toBe(701);
    expect(hnswSparse.reason).toMatch(/index type HNSW is not supported for SparseFloatVector field sp/);
    const cos = await c.createIndex({ collection_name: COLL, field_name: 'sp', index_type: 'SPARSE_INVERTED_INDEX', metric_type: 'COSINE' });
    expect(cos.reason).toMatch(/metric type COSINE is not supported for SparseFloatVector field sp; supported: IP/);
    const drop = await c.search({ collection_name: COLL, anns_field: 'sp', data: [{ 1: 1 }], params: { drop_ratio_search: 1.5 }, limit: 2 });
    expect(drop.status.reason).toMatch(/drop_ratio_search 1.5 is invalid/);
  });

  it('refuses a hybrid search naming one field twice, and limits beyond Milvus bounds', async () => {
    const c = t.client;
    const h = await c.search({
      collection_name: COLL,
      data: [
        { anns_field: 'bv', data: [[1, 2]], limit: 3 },
        { anns_field: 'bv', data: [[3, 4]], limit: 3 },
      ],
      limit: 3,
    });
    expect(h.status.code).toBe(1100);
    expect(h.status.reason).toMatch(/sub-requests 0 and 1 both search field bv/);
    const big = await c.search({ collection_name: COLL, anns_field: 'i8', data: [[1, 2, 3, 4]], limit: 16000, offset: 500 });
    expect(big.status.reason).toMatch(/16000 \+ 500 = 16500\) should be in range \[1, 16384\]/);
    const grp = await c.search({ collection_name: COLL, anns_field: 'i8', data: [[1, 2, 3, 4]], limit: 100, group_by_field: 'bv', group_size: 2 });
    expect(grp.status.reason).toMatch(/group_by_field bv is a BinaryVector/);
  });

  it('handles nullable vectors: nulls are skipped by search, a null cannot go into a non-nullable field or be searched by id', async () => {
    const c = t.client;
    const s = await c.search({ collection_name: COLL, anns_field: 'nv', data: [[1, 0, 0, 0]], limit: 10, metric_type: 'IP' });
    expect(s.status.error_code, s.status.reason).toBe(ErrorCode.SUCCESS);
    expect((s.results as unknown as { id: string }[]).map((r) => Number(r.id)).sort()).toEqual([1, 3]);
    const byNull = await c.search({ collection_name: COLL, anns_field: 'nv', ids: [2], limit: 2 });
    expect(byNull.status.reason).toMatch(/the nv vector of primary key 2 is null/);
    const missing = await c.search({ collection_name: COLL, anns_field: 'i8', ids: [404], limit: 2 });
    expect(missing.status.reason).toMatch(/primary key 404 not found/);
    // The SDK cannot send a null for a non-nullable vector: send valid_data raw.
    const notNullable = await raw(
      'Insert',
      'milvus.InsertRequest',
      'milvus.MutationResult',
      rawRow({ i8: { field_name: 'i8', type: 105, valid_data: [false], vectors: { dim: 4, int8_vector: Buffer.alloc(0) } } }),
    );
    expect(notNullable.code).toBe(1100);
    expect(notNullable.reason).toMatch(/field i8 is not nullable but 1 null vectors were given/);
    await expectUnchanged();
  });
});
