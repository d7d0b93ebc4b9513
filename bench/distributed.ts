/**
 * Distributed storage benchmark: the same server on etcd (metadata) + S3 (files) against the embedded
 * default (SQLite + local dir). Prints tables; no assertions. Real etcd (the `etcd` binary) and s3rver
 * (a JS fake of S3 on the loopback, much slower than MinIO or AWS S3: read the S3 figures as an upper
 * bound on cost, not as S3 performance).
 *
 *  - snapshot create: median of BENCH_RUNS `createSnapshot` calls at each size in BENCH_SIZES, after a
 *    flush (targets: ≤ 20 ms, and t(largest)/t(smallest) ≤ 1.5);
 *  - restore at the largest size with an HNSW index: job time (restoreSnapshot → Completed) with
 *    server-side copies (CopyObject), bytes of the copied files per second, next to a client-side
 *    download + upload of the same files (the same S3 client, 4 files in flight);
 *  - insert throughput (engine.insert in batches of 5,000, then flush) on etcd + S3 vs embedded;
 *  - restart to first search (server closed, started again in this process on the same metadata,
 *    files and WAL, first search that returns hits; the collection is loaded) vs embedded; with
 *    BENCH_RESTART_ROWS (and BENCH_RESTART_DIM/_M/_EFC) on a collection of its own of that size.
 *
 * Usage: npx tsx bench/distributed.ts   (BENCH_SIZES=10000,160000 BENCH_DIM=32 BENCH_M=8 BENCH_EFC=32
 *        BENCH_RUNS=7; BENCH_QUICK=1 = 2,000 and 20,000 rows)
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Config } from '../src/common/config.js';
import { S3ObjectStore } from '../src/storage/s3-object-store.js';
import { EtcdServer, etcdUnavailableReason } from '../src/testing/etcd-server.js';
import { S3RVER_CREDENTIALS, S3Server } from '../src/testing/s3-server.js';
import { startTestServer, type TestServer } from '../test/helpers.js';
import { clustered, envInt, machine, median, rowsOf, table } from './common.js';
import { collectionId, createHnsw, createVectorCollection, insertRange, loadLine, quick } from './fixture.js';

const SIZES = (process.env['BENCH_SIZES'] ?? (quick ? '2000,20000' : '10000,160000')).split(',').map(Number);
const DIM = envInt('BENCH_DIM', 32);
const M = envInt('BENCH_M', 8);
const EFC = envInt('BENCH_EFC', 32);
const RUNS = envInt('BENCH_RUNS', 7);
const BATCH = 5000;
const SEAL_ROWS = envInt('BENCH_SEAL_ROWS', 40_000);
const BUCKET = 'quiver-bench';
/** Restart measured on a collection of this size (default: the largest size, the one indexed above). */
const RESTART_ROWS = envInt('BENCH_RESTART_ROWS', 0) || Math.max(...SIZES);
const RESTART_DIM = envInt('BENCH_RESTART_DIM', DIM);
const RESTART_M = envInt('BENCH_RESTART_M', M);
const RESTART_EFC = envInt('BENCH_RESTART_EFC', EFC);

const f1 = (x: number) => x.toFixed(1);
const f0 = (x: number) => x.toFixed(0);
const mbps = (bytes: number, ms: number) => (bytes / 2 ** 20 / (ms / 1000)).toFixed(1);

interface Backend {
  readonly name: string;
  readonly config: Partial<Config>;
}

async function timed<T>(fn: () => Promise<T>): Promise<{ ms: number; value: T }> {
  const t0 = performance.now();
  const value = await fn();
  return { ms: performance.now() - t0, value };
}

/** Inserts `rows` rows, then flushes (each timed), optionally indexes (HNSW). */
async function build(
  t: TestServer,
  name: string,
  data: Float32Array,
  dim: number,
  rows: number,
  index: { m: number; efc: number } | undefined,
): Promise<{ insertMs: number; flushMs: number }> {
  const c = t.client;
  await createVectorCollection(c, name, dim);
  const id = collectionId(t.server.engine, name);
  const { ms: insertMs } = await timed(() => insertRange(t.server.engine, id, data, dim, 0, rows, BATCH));
  const { ms: flushMs } = await timed(() => c.flushSync({ collection_names: [name] }));
  if (index) {
    await createHnsw(c, name, index.m, index.efc);
    await t.server.engine.waitForIndexes(id);
  }
  return { insertMs, flushMs };
}

async function firstSearch(t: TestServer, name: string, query: number[]): Promise<void> {
  for (;;) {
    const s = await t.client.search({ collection_name: name, data: [query], limit: 10 });
    if (s.status.error_code === 'Success' && s.results.length > 0) return;
    await new Promise((r) => setTimeout(r, 10));
  }
}

async function main(): Promise<void> {
  const skip = etcdUnavailableReason();
  if (skip !== undefined) {
    console.log(`skipped: ${skip}`);
    return;
  }
  process.env['AWS_ACCESS_KEY_ID'] = S3RVER_CREDENTIALS.accessKeyId;
  process.env['AWS_SECRET_ACCESS_KEY'] = S3RVER_CREDENTIALS.secretAccessKey;
  process.env['AWS_REGION'] = 'us-east-1';
  process.env['AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED'] = 'true';
  const [etcd, s3] = await Promise.all([EtcdServer.start(), S3Server.start([BUCKET])]);
  const dirs: string[] = [];
  const largest = Math.max(...SIZES);
  const data = clustered(largest, DIM, 7);
  const query = rowsOf(data, DIM, 3, 4)[0]!;
  const snapshotRows: Record<string, string | number>[] = [];
  const insertRows: Record<string, string | number>[] = [];
  const restartRows: Record<string, string | number>[] = [];
  const restoreRows: Record<string, string | number>[] = [];
  try {
    const backends: Backend[] = [
      {
        name: process.env['BENCH_S3_CACHE'] === '0' ? 'etcd + S3 (s3rver), no file cache' : 'etcd + S3 (s3rver)',
        config: {
          meta: `etcd://${etcd.endpoint}/bench`,
          storage: `s3://${BUCKET}/bench`,
          s3Endpoint: s3.endpoint,
          ...(process.env['BENCH_S3_CACHE'] === '0' ? { s3CacheMaxBytes: 0 } : {}),
        },
      },
      { name: 'embedded (SQLite + local dir)', config: {} },
    ];
    for (const b of backends) {
      const dir = await mkdtemp(join(tmpdir(), 'quiver-bench-dist-'));
      dirs.push(dir);
      const config: Partial<Config> = { ...b.config, autoCompaction: false, sealRows: SEAL_ROWS, copyCheckIntervalMs: 100 };
      let t = await startTestServer(config, {}, dir);
      const creates: number[] = [];
      for (const rows of SIZES) {
        const name = `c${rows}`;
        const indexed = rows === largest;
        const { insertMs, flushMs } = await build(t, name, data, DIM, rows, indexed ? { m: M, efc: EFC } : undefined);
        if (rows === largest)
          insertRows.push({
            backend: b.name,
            rows,
            'insert s': f1(insertMs / 1000),
            'flush s': f1(flushMs / 1000),
            'insert rows/s': f0(rows / (insertMs / 1000)),
            'insert + flush rows/s': f0(rows / ((insertMs + flushMs) / 1000)),
          });
        const times: number[] = [];
        for (let i = 0; i < RUNS; i++) {
          const { ms, value } = await timed(() => t.client.createSnapshot({ collection_name: name, snapshot_name: `s${i}` }));
          if (value.error_code !== 'Success') throw new Error(`createSnapshot: ${value.reason}`);
          times.push(ms);
        }
        creates.push(median(times));
        snapshotRows.push({
          backend: b.name,
          rows,
          'create median ms': f1(median(times)),
          'min ms': f1(Math.min(...times)),
          'max ms': f1(Math.max(...times)),
        });
      }
      snapshotRows.push({
        backend: b.name,
        rows: `t(${largest})/t(${Math.min(...SIZES)})`,
        'create median ms': (creates[creates.length - 1]! / creates[0]!).toFixed(2),
        'min ms': '',
        'max ms': '',
      });

      // Restore of the largest (indexed) collection: a job of server-side copies.
      const src = `c${largest}`;
      const srcId = collectionId(t.server.engine, src);
      const files = t.server.engine.catalog
        .segments(srcId)
        .filter((s) => s.state === 'Flushed')
        .flatMap((s) => [
          ...Object.values(s.binlogs)
            .flat()
            .map((x) => x.path),
          ...s.deltalogs.map((x) => x.path),
          ...s.statslogs.map((x) => x.path),
          ...s.indexes.flatMap((i) => i.files),
        ]);
      let bytes = 0;
      for (const key of files) bytes += (await t.server.engine.store.stat(key))?.size ?? 0;
      const { ms: jobMs } = await timed(async () => {
        const r = await t.client.restoreSnapshot({ snapshot_name: `s${RUNS - 1}`, source_collection_name: src, target_collection_name: 'restored' });
        if (r.status.error_code !== 'Success') throw new Error(`restoreSnapshot: ${r.status.reason}`);
        for (;;) {
          const s = await t.client.getRestoreSnapshotState({ job_id: r.job_id });
          const state = s.info?.state;
          if (state === 'RestoreSnapshotCompleted') break;
          if (state === 'RestoreSnapshotFailed') throw new Error(`restore failed: ${s.info?.reason}`);
          await new Promise((res) => setTimeout(res, 5));
        }
      });
      restoreRows.push({
        backend: b.name,
        path: 'restore job (server-side copy / hardlink)',
        files: files.length,
        MiB: f1(bytes / 2 ** 20),
        ms: f0(jobMs),
        'MiB/s': mbps(bytes, jobMs),
      });
      if (b.name.startsWith('etcd')) {
        const client = new S3ObjectStore({ bucket: BUCKET, prefix: 'bench', endpoint: s3.endpoint, region: 'us-east-1', credentials: S3RVER_CREDENTIALS });
        const { ms } = await timed(async () => {
          const queue = [...files];
          await Promise.all(
            Array.from({ length: 4 }, async () => {
              for (let key = queue.shift(); key !== undefined; key = queue.shift()) await client.put(`client-copy/${key}`, await client.get(key));
            }),
          );
        });
        await client.close();
        restoreRows.push({
          backend: b.name,
          path: 'client-side download + upload, 4 in flight',
          files: files.length,
          MiB: f1(bytes / 2 ** 20),
          ms: f0(ms),
          'MiB/s': mbps(bytes, ms),
        });
      }

      // Restart to first search (the collection is loaded; its load state persists). With
      // BENCH_RESTART_ROWS, of a collection of its own of that size (dim BENCH_RESTART_DIM).
      let restartSrc = src;
      let restartQuery = query;
      if (RESTART_ROWS !== largest) {
        restartSrc = 'restart';
        const restartData = clustered(RESTART_ROWS, RESTART_DIM, 11);
        restartQuery = rowsOf(restartData, RESTART_DIM, 3, 4)[0]!;
        await t.client.releaseCollection({ collection_name: src });
        await build(t, restartSrc, restartData, RESTART_DIM, RESTART_ROWS, { m: RESTART_M, efc: RESTART_EFC });
      }
      await t.client.loadCollectionSync({ collection_name: restartSrc });
      await firstSearch(t, restartSrc, restartQuery);
      await t.close({ keepData: true });
      const { ms: restartMs } = await timed(async () => {
        t = await startTestServer(config, {}, dir);
        await firstSearch(t, restartSrc, restartQuery);
      });
      restartRows.push({ backend: b.name, rows: RESTART_ROWS, dim: RESTART_DIM, 'restart → first search ms': f0(restartMs) });
      await t.close({ keepData: true });
    }
  } finally {
    await Promise.all([etcd.stop(), s3.stop()]);
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  }
  console.log(`# Distributed storage (etcd + S3)\n\n${machine()}; ${loadLine()}`);
  console.log(`dim ${DIM}, HNSW M=${M} efConstruction=${EFC} on the largest size, seal at ${SEAL_ROWS} rows, ${RUNS} snapshot runs per size`);
  table('Snapshot create (SDK createSnapshot after a flush)', snapshotRows);
  table(`Restore of ${largest} rows with HNSW`, restoreRows);
  table(`Insert throughput (${largest} rows, engine.insert in batches of ${BATCH}; then one flush)`, insertRows);
  table(`Restart to first search (in-process restart, collection loaded, HNSW M=${RESTART_M} efConstruction=${RESTART_EFC})`, restartRows);
}

await main();
