import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DataType, ErrorCode } from '@zilliz/milvus2-sdk-node';
import { startTestServer, type TestServer } from './helpers.js';

describe('bad input never crashes the server or loses data', () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer({ maxMessageBytes: 256 * 1024 });
    await t.client.createCollection({
      collection_name: 'guarded',
      fields: [
        { name: 'id', data_type: DataType.Int64, is_primary_key: true },
        { name: 'n', data_type: DataType.Int8 },
        { name: 'v', data_type: DataType.FloatVector, dim: 4 },
      ],
    });
    await t.client.insert({ collection_name: 'guarded', data: [{ id: 1, n: 1, v: [1, 2, 3, 4] }] });
  });
  afterAll(async () => {
    await t?.close();
  });

  it('NaN/Inf in a vector, an out-of-range Int8, a missing field and an unknown field are refused with reasons', async () => {
    const c = t.client;
    const nan = await c.insert({ collection_name: 'guarded', data: [{ id: 2, n: 1, v: [1, NaN, 3, 4] }] });
    expect(nan.status.error_code).not.toBe(ErrorCode.SUCCESS);
    expect(nan.status.reason).toMatch(/NaN/);
    const inf = await c.insert({ collection_name: 'guarded', data: [{ id: 2, n: 1, v: [1, Infinity, 3, 4] }] });
    expect(inf.status.reason).toMatch(/Inf/);
    const range = await c.insert({ collection_name: 'guarded', data: [{ id: 2, n: 300, v: [1, 2, 3, 4] }] });
    expect(range.status.reason).toMatch(/out of range for Int8/);
    const missing = await c.insert({ collection_name: 'guarded', fields_data: [{ id: 2, v: [1, 2, 3, 4] }] } as never);
    expect(missing.status.error_code).not.toBe(ErrorCode.SUCCESS);
    // None of them was applied: only the fixture row is there.
    await c.loadCollectionSync({ collection_name: 'guarded' });
    const n = await c.count({ collection_name: 'guarded' });
    expect(n.status.error_code, n.status.reason).toBe(ErrorCode.SUCCESS);
    expect(n.data).toBe(1);
  });

  it('a message over the configured size limit is refused clearly (gRPC RESOURCE_EXHAUSTED) and the server keeps serving', async () => {
    const c = t.client;
    const rows = Array.from({ length: 20_000 }, (_, i) => ({ id: 10 + i, n: 1, v: [1, 2, 3, 4] }));
    const err = await c.insert({ collection_name: 'guarded', data: rows }).then(
      (r) => r.status.reason,
      (e: Error) => e.message,
    );
    expect(err).toMatch(/larger than max|RESOURCE_EXHAUSTED/i);
    expect((await c.getVersion()).version).toMatch(/quiver/);
  });

  it('garbage bytes to every write RPC answer an error, never crash the server', async () => {
    const raw = new grpc.Client(`127.0.0.1:${t.server.port}`, grpc.credentials.createInsecure());
    const call = (method: string, body: Buffer) =>
      new Promise<string>((resolve) =>
        raw.makeUnaryRequest(
          `/milvus.proto.milvus.MilvusService/${method}`,
          (x: Buffer) => x,
          (x: Buffer) => x,
          body,
          (e, r) => resolve(e ? e.message : `ok:${r?.length}`),
        ),
      );
    let seed = 7;
    const rnd = () => (seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32;
    for (const method of ['Insert', 'Search', 'Query', 'Delete', 'CreateCollection', 'CreateIndex', 'CreateSnapshot', 'RestoreSnapshot']) {
      for (let i = 0; i < 20; i++) {
        const body = Buffer.from(Array.from({ length: 1 + Math.floor(rnd() * 200) }, () => Math.floor(rnd() * 256)));
        await call(method, body);
      }
    }
    raw.close();
    expect((await t.client.getVersion()).version).toMatch(/quiver/);
    await t.client.loadCollectionSync({ collection_name: 'guarded' });
    expect((await t.client.count({ collection_name: 'guarded' })).data).toBe(1);
  });

  it('RPCs Quiver does not implement answer a Status saying so (not a silent success)', async () => {
    const r = await t.client.createResourceGroup({ name: 'rg1' } as never);
    expect(r.error_code).not.toBe(ErrorCode.SUCCESS);
    expect(r.reason).toMatch(/not supported by Quiver/);
  });
});
