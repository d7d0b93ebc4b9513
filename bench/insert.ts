/**
 * Insert throughput (issue 2 target: the server ingests ≥ 50,000 rows/s in batches of 5,000, dim 128, when
 * the client is not the bottleneck). Three measurements in one run:
 *  1. server: InsertRequests encoded once and replayed over raw gRPC (4 in flight), server in its own process;
 *  2. one official-SDK client inserting row objects (the SDK spends much CPU per row);
 *  3. LanceDB's embedded `table.add` of the same rows.
 * Usage: npx tsx bench/insert.ts   (BENCH_ROWS=200000 BENCH_DIM=128 BENCH_BATCH=5000)
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { DataType } from '@zilliz/milvus2-sdk-node';
import * as lancedb from '@lancedb/lancedb';
import { root } from '../src/proxy/proto.js';
import { spawnServer } from '../test/process.js';
import { clustered, envInt, machine, rowsOf, table } from './common.js';

const ROWS = envInt('BENCH_ROWS', 200_000);
const DIM = envInt('BENCH_DIM', 128);
const BATCH = envInt('BENCH_BATCH', 5000);
const INFLIGHT = envInt('BENCH_INFLIGHT', 4);

async function main(): Promise<void> {
  console.log(`# Insert benchmark\n\nmachine: ${machine()}\nrows ${ROWS}, dim ${DIM}, batch ${BATCH}`);
  const data = clustered(ROWS, DIM, 7);
  const dir = await mkdtemp(join(tmpdir(), 'quiver-bench-insert-'));
  const srv = await spawnServer(dir, {
    QUIVER_LOG_LEVEL: 'warn',
    QUIVER_SEAL_ROWS: '1000000',
    ...(process.env.BENCH_PROF ? { QUIVER_NODE_ARGS: '--cpu-prof --cpu-prof-dir=/tmp/prof' } : {}),
  });
  const results: Record<string, string | number>[] = [];
  try {
    const fields = [
      { name: 'id', data_type: DataType.Int64, is_primary_key: true },
      { name: 'v', data_type: DataType.FloatVector, dim: DIM },
    ];
    await srv.client.createCollection({ collection_name: 'raw', fields });
    await srv.client.createCollection({ collection_name: 'sdk', fields });

    // 1. pre-encoded requests, replayed
    const InsertRequest = root.lookupType('milvus.proto.milvus.InsertRequest');
    const MutationResult = root.lookupType('milvus.proto.milvus.MutationResult');
    const batches = Math.ceil(ROWS / BATCH);
    const encoded: Buffer[] = [];
    for (let b = 0; b < batches; b++) {
      const from = b * BATCH;
      const to = Math.min(ROWS, from + BATCH);
      const msg = InsertRequest.fromObject({
        collection_name: 'raw',
        num_rows: to - from,
        fields_data: [
          { type: 5, field_name: 'id', scalars: { long_data: { data: Array.from({ length: to - from }, (_, i) => from + i) } } },
          { type: 101, field_name: 'v', vectors: { dim: DIM, float_vector: { data: Array.from(data.subarray(from * DIM, to * DIM)) } } },
        ],
      });
      encoded.push(Buffer.from(InsertRequest.encode(msg).finish()));
    }
    const client = new grpc.Client(`127.0.0.1:${srv.port}`, grpc.credentials.createInsecure(), {
      'grpc.max_send_message_length': -1,
      'grpc.max_receive_message_length': -1,
    });
    const send = (buf: Buffer) =>
      new Promise<void>((resolve, reject) => {
        client.makeUnaryRequest(
          '/milvus.proto.milvus.MilvusService/Insert',
          (x: Buffer) => x,
          (x: Buffer) => x,
          buf,
          (err, res) => {
            if (err) return reject(err);
            const r = MutationResult.toObject(MutationResult.decode(res!), { enums: String }) as { status?: { error_code?: string; reason?: string } };
            if (r.status?.error_code && r.status.error_code !== 'Success') return reject(new Error(r.status.reason));
            resolve();
          },
        );
      });
    const t0 = performance.now();
    let next = 0;
    await Promise.all(
      Array.from({ length: INFLIGHT }, async () => {
        while (next < encoded.length) await send(encoded[next++]!);
      }),
    );
    const rawSec = (performance.now() - t0) / 1000;
    client.close();
    results.push({ path: `server, pre-encoded gRPC (${INFLIGHT} in flight)`, rows: ROWS, seconds: rawSec.toFixed(2), 'rows/s': Math.round(ROWS / rawSec) });

    // 2. one SDK client with row objects
    const sdkRows = Math.min(ROWS, envInt('BENCH_SDK_ROWS', 50_000));
    const rowObjs = rowsOf(data, DIM, 0, sdkRows).map((v, i) => ({ id: i, v }));
    const t1 = performance.now();
    for (let from = 0; from < sdkRows; from += BATCH) {
      const r = await srv.client.insert({ collection_name: 'sdk', data: rowObjs.slice(from, from + BATCH) });
      if (r.status.error_code !== 'Success') throw new Error(r.status.reason);
    }
    const sdkSec = (performance.now() - t1) / 1000;
    results.push({ path: 'one official SDK client (row objects)', rows: sdkRows, seconds: sdkSec.toFixed(2), 'rows/s': Math.round(sdkRows / sdkSec) });

    // 3. LanceDB table.add of the same rows
    const ldir = await mkdtemp(join(tmpdir(), 'lancedb-bench-'));
    try {
      const db = await lancedb.connect(ldir);
      const first = rowObjs.slice(0, BATCH).map((r) => ({ id: r.id, vector: r.v }));
      const t2 = performance.now();
      const tbl = await db.createTable('t', first);
      for (let from = BATCH; from < sdkRows; from += BATCH) {
        await tbl.add(rowObjs.slice(from, from + BATCH).map((r) => ({ id: r.id, vector: r.v })));
      }
      const lSec = (performance.now() - t2) / 1000;
      results.push({
        path: 'LanceDB 0.31 embedded table.add (row objects)',
        rows: sdkRows,
        seconds: lSec.toFixed(2),
        'rows/s': Math.round(sdkRows / lSec),
      });
    } finally {
      await rm(ldir, { recursive: true, force: true });
    }
  } finally {
    await srv.stop();
    await rm(dir, { recursive: true, force: true });
  }
  table('Insert throughput', results);
}

await main();
