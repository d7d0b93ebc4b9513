/**
 * Search benchmark (issue 2 targets, clustered float32, dim 128):
 *  - through the official SDK, 100k vectors, HNSW M=16 efConstruction=200, ef=64, k=10: recall@10 ≥ 0.95 and
 *    single-client QPS ≥ 2x LanceDB's embedded search at equal or better recall, side by side in one run;
 *  - server-side search time within 1.3x of raw hnswlib-node on the same index file.
 * Usage: npx tsx bench/search.ts   (BENCH_N=100000 BENCH_Q=1000 BENCH_DIM=128)
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import hnswlib from 'hnswlib-node';
import * as lancedb from '@lancedb/lancedb';
import { DataType } from '@zilliz/milvus2-sdk-node';
import { pino } from 'pino';
import { loadConfig } from '../src/common/config.js';
import { readFileSync } from 'node:fs';
import { flatSearch, isIndexContainer } from '../src/index/index.js';
import { startServer } from '../src/wiring/server.js';
import { spawnServer } from '../test/process.js';
import { clustered, envInt, machine, median, rowsOf, table } from './common.js';

const N = envInt('BENCH_N', 100_000);
const Q = envInt('BENCH_Q', 1000);
const DIM = envInt('BENCH_DIM', 128);
const K = 10;
const EF = envInt('BENCH_EF', 64);

function recall(got: readonly number[][], truth: readonly number[][]): number {
  let hit = 0;
  for (let q = 0; q < truth.length; q++) {
    const t = new Set(truth[q]);
    for (const id of got[q] ?? []) if (t.has(id)) hit++;
  }
  return hit / (truth.length * K);
}

async function main(): Promise<void> {
  console.log(`# Search benchmark\n\nmachine: ${machine()}\nN ${N}, queries ${Q}, dim ${DIM}, k ${K}, HNSW M=16 efConstruction=200 ef=${EF}, metric L2`);
  const base = clustered(N, DIM, 1);
  const queries = clustered(Q, DIM, 2);
  const truthHits = flatSearch(base, DIM, 'L2', queries, Q, { k: K });
  const truth = truthHits.map((h) => Array.from(h.rows));
  const rows: Record<string, string | number>[] = [];

  // ---------------------------------------------------------------- Quiver through the SDK (server in its own process)
  const dir = await mkdtemp(join(tmpdir(), 'quiver-bench-search-'));
  try {
    const srv = await spawnServer(dir, { QUIVER_SEAL_ROWS: String(N + 1), QUIVER_LOG_LEVEL: 'warn' });
    const client = srv.client;
    try {
      await client.createCollection({
        collection_name: 'bench',
        fields: [
          { name: 'id', data_type: DataType.Int64, is_primary_key: true },
          { name: 'v', data_type: DataType.FloatVector, dim: DIM },
        ],
      });
      for (let from = 0; from < N; from += 5000) {
        const r = await client.insert({
          collection_name: 'bench',
          data: rowsOf(base, DIM, from, Math.min(N, from + 5000)).map((v, i) => ({ id: from + i, v })),
        });
        if (r.status.error_code !== 'Success') throw new Error(r.status.reason);
      }
      await client.flushSync({ collection_names: ['bench'] });
      const tb = performance.now();
      await client.createIndex({
        collection_name: 'bench',
        field_name: 'v',
        index_type: 'HNSW',
        metric_type: 'L2',
        params: { M: 16, efConstruction: 200 },
      });
      for (;;) {
        const d = await client.describeIndex({ collection_name: 'bench', field_name: 'v' });
        const i = d.index_descriptions[0]!;
        if (i.state === 'Finished' && Number(i.indexed_rows) === N) break;
        await new Promise((r) => setTimeout(r, 200));
      }
      const buildSec = (performance.now() - tb) / 1000;
      await client.loadCollectionSync({ collection_name: 'bench' });
      const qrows = rowsOf(queries, DIM, 0, Q);
      for (let i = 0; i < 20; i++) await client.search({ collection_name: 'bench', data: [qrows[i]!], limit: K, params: { ef: EF } });
      const got: number[][] = [];
      const t0 = performance.now();
      for (let i = 0; i < Q; i++) {
        const r = await client.search({ collection_name: 'bench', data: [qrows[i]!], limit: K, params: { ef: EF } });
        got.push(r.results.map((x) => Number(x.id)));
      }
      const sdkSec = (performance.now() - t0) / 1000;
      rows.push({
        system: 'Quiver via official SDK (server process + 1 client)',
        'index build s': buildSec.toFixed(1),
        QPS: Math.round(Q / sdkSec),
        'recall@10': recall(got, truth).toFixed(4),
      });
    } finally {
      await srv.stop();
    }

    // ------------------------------------------------------------ server-side time vs raw hnswlib on the same index file
    const server = await startServer(loadConfig({ port: 0, metricsPort: 0, httpPort: 0, dataDir: dir, sealRows: N + 1 }, {}), {
      log: pino({ level: 'warn' }),
    });
    try {
      const coll = server.engine.catalog.resolveCollection('default', 'bench');
      await server.engine.waitLoaded(coll.id);
      const field = coll.schema.fields.find((f) => f.name === 'v')!;
      const engineTimes: number[] = [];
      for (let rep = 0; rep < 5; rep++) {
        const t = performance.now();
        for (let i = 0; i < Q; i++) {
          await server.engine.search(coll.id, {
            field,
            queries: queries.subarray(i * DIM, (i + 1) * DIM),
            nq: 1,
            k: K,
            offset: 0,
            metric: 'L2',
            filter: '',
            partitionNames: [],
            ef: EF,
          });
        }
        engineTimes.push((performance.now() - t) / Q);
      }
      const seg = [...server.engine.runtime(coll.id).segments.values()][0]!;
      const key = seg.record!.indexes[0]!.files[0]!;
      if (isIndexContainer(readFileSync(server.engine.store.localPath!(key)!).subarray(0, 8))) {
        // Builds now write usearch graphs in the versioned container; bench/indexes.ts compares raw libraries.
        rows.push({
          system: 'Quiver engine.search (in-process, no gRPC)',
          'index build s': '',
          QPS: Math.round(1000 / median(engineTimes)),
          'recall@10': '',
        });
      } else {
        const raw = new hnswlib.HierarchicalNSW('l2', DIM);
        raw.readIndexSync(server.engine.store.localPath!(key)!);
        raw.setEf(EF);
        const rawTimes: number[] = [];
        const rawGot: number[][] = [];
        for (let rep = 0; rep < 5; rep++) {
          const t = performance.now();
          for (let i = 0; i < Q; i++) {
            const r = raw.searchKnn(Array.from(queries.subarray(i * DIM, (i + 1) * DIM)), K);
            if (rep === 0) rawGot.push(r.neighbors);
          }
          rawTimes.push((performance.now() - t) / Q);
        }
        const eng = median(engineTimes);
        const rw = median(rawTimes);
        rows.push({ system: 'Quiver engine.search (in-process, no gRPC)', 'index build s': '', QPS: Math.round(1000 / eng), 'recall@10': '' });
        rows.push({
          system: 'raw hnswlib-node searchKnn, same index file',
          'index build s': '',
          QPS: Math.round(1000 / rw),
          'recall@10': recall(rawGot, truth).toFixed(4),
        });
        console.log(
          `\nserver-side time per query (median of 5 rounds): engine ${(eng * 1000).toFixed(1)} µs, raw hnswlib ${(rw * 1000).toFixed(1)} µs, ratio ${(eng / rw).toFixed(2)} (target ≤ 1.3)`,
        );
      }
    } finally {
      await server.close();
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }

  // ---------------------------------------------------------------- LanceDB embedded
  const ldir = await mkdtemp(join(tmpdir(), 'lancedb-bench-'));
  try {
    const db = await lancedb.connect(ldir);
    const data = rowsOf(base, DIM, 0, N).map((v, i) => ({ id: i, vector: v }));
    const tbl = await db.createTable('t', data);
    const tb = performance.now();
    await tbl.createIndex('vector', { config: lancedb.Index.hnswSq({ distanceType: 'l2', numPartitions: 1, m: 16, efConstruction: 200 }) });
    const buildSec = (performance.now() - tb) / 1000;
    const qrows = rowsOf(queries, DIM, 0, Q);
    for (const [label, refine] of [
      ['LanceDB 0.31 IVF_HNSW_SQ (1 partition, m=16, efC=200), ef=' + EF, 0],
      ['LanceDB same index + refineFactor 4', 4],
    ] as const) {
      const got: number[][] = [];
      for (let i = 0; i < 20; i++) await tbl.search(qrows[i]!).limit(K).toArray();
      const t0 = performance.now();
      for (let i = 0; i < Q; i++) {
        let q = tbl.search(qrows[i]!) as lancedb.VectorQuery;
        q = q.limit(K).ef(EF);
        if (refine) q = q.refineFactor(refine);
        const r = await q.toArray();
        got.push(r.map((x: { id: number }) => Number(x.id)));
      }
      const sec = (performance.now() - t0) / 1000;
      rows.push({
        system: label,
        'index build s': refine ? '' : buildSec.toFixed(1),
        QPS: Math.round(Q / sec),
        'recall@10': recall(got, truth).toFixed(4),
      });
    }
  } finally {
    await rm(ldir, { recursive: true, force: true });
  }
  table('Search, single client, k=10', rows);
}

await main();
