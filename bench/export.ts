/**
 * Export benchmark (issue 13 targets; dim 128, clustered, HNSW M=16 efConstruction=64, flushed):
 *  - ExportSnapshot of N rows + HNSW to a local dir (local→local: a kernel copy per file; segment files are
 *    not read, their SHA-256 was recorded when they were written; the snapshot's own metadata and manifests
 *    are hashed on worker threads beside the copy; every written blob fsynced at the end)
 *    against `cp -r` of the same object directories: throughput ratio ≥ 0.8;
 *  - a second export into the same dir after 1% of the rows changed (1% new rows plus 1% deleted, flushed,
 *    a new snapshot): bytes written ≤ 5% of the first export's;
 *  - RestoreExternalSnapshot of the bundle on a second server (own data dir) to searchable (job Completed,
 *    load, one search with hits) against a local restore with byte copies forced (QUIVER_COPY_MODE=copy)
 *    on the source server to searchable: ratio ≤ 2.
 * Both servers run in this process (startServer) with the official SDK client over loopback gRPC.
 *
 * Usage: npx tsx bench/export.ts   (BENCH_ROWS=160000 BENCH_DIM=128 BENCH_EFC=64 BENCH_RUNS=3 BENCH_RESTORE=0|1)
 */
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { MilvusClient } from '@zilliz/milvus2-sdk-node';
import { exportSnapshot, restoreExternal } from '../src/cli/export-rpc.js';
import { syncLocation } from '../src/coord/snapshot/export/export-location.js';
import { waitRestore } from '../src/testing/index.js';
import { startTestServer } from '../test/helpers.js';
import { clustered, envInt, machine, median, rowsOf, table } from './common.js';
import { collectionId, createHnsw, createVectorCollection, insertRange, loadLine, MB } from './fixture.js';

const ROWS = envInt('BENCH_ROWS', 160_000);
const DIM = envInt('BENCH_DIM', 128);
const EFC = envInt('BENCH_EFC', 64);
const RUNS = envInt('BENCH_RUNS', 3);
const run = promisify(execFile);
const ms = (t0: number): number => performance.now() - t0;
const T0 = performance.now();
/** Phase lines on stderr, so a run cut by a timeout shows where it was. */
const phase = (what: string): void => void process.stderr.write(`[${(ms(T0) / 1000).toFixed(1)}s] ${what}\n`);

async function dirBytes(dir: string): Promise<{ bytes: number; files: number }> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true }).catch(() => []);
  let bytes = 0;
  let files = 0;
  for (const e of entries) {
    if (!e.isFile()) continue;
    bytes += (await stat(join(e.parentPath, e.name))).size;
    files++;
  }
  return { bytes, files };
}

async function searchable(client: MilvusClient, name: string, query: number[]): Promise<void> {
  const l = await client.loadCollectionAsync({ collection_name: name });
  if (l.error_code !== 'Success') throw new Error(`load ${name}: ${l.reason}`);
  while ((await client.getLoadState({ collection_name: name })).state !== 'LoadStateLoaded') await new Promise((r) => setTimeout(r, 5));
  const s = await client.search({ collection_name: name, data: [query], limit: 10, params: { ef: 64 } });
  if (s.status.error_code !== 'Success' || s.results.length === 0) throw new Error(`search ${name}: ${s.status.reason}`);
}

async function main(): Promise<void> {
  const roots = await mkdtemp(join(tmpdir(), 'quiver-bench-exports-'));
  const a = await startTestServer({ autoCompaction: false, exportRoots: roots, copyMode: 'copy', copyCheckIntervalMs: 20 });
  const b = await startTestServer({ autoCompaction: false, exportRoots: roots, copyCheckIntervalMs: 20 });
  try {
    const data = clustered(ROWS + ROWS / 100, DIM);
    const query = rowsOf(data, DIM, 7, 8)[0]!;
    const c = a.client;
    await createVectorCollection(c, 'src', DIM);
    const id = collectionId(a.server.engine, 'src');
    await insertRange(a.server.engine, id, data, DIM, 0, ROWS, 5000);
    await c.flushSync({ collection_names: ['src'] });
    phase('inserted and flushed');
    await createHnsw(c, 'src', 16, EFC);
    await a.server.engine.waitForIndexes(id);
    phase('index built');
    if ((await c.createSnapshot({ collection_name: 'src', snapshot_name: 's1' })).error_code !== 'Success') throw new Error('snapshot s1');
    const objects = join(a.dataDir, 'objects');

    // 1. Export vs cp -r of the same directories (all of them hold this one collection only).
    const exportMs: number[] = [];
    const cpMs: number[] = [];
    const cpSyncMs: number[] = [];
    let firstBytes = 0;
    let uri = '';
    for (let i = 0; i < RUNS; i++) {
      const dir = join(roots, `run${i}`);
      const t0 = performance.now();
      const r = await exportSnapshot(a.server.port, { collection_name: 'src', name: 's1', target_s3_path: `file://${dir}` });
      exportMs.push(ms(t0));
      if (r.status.code !== 0) throw new Error(`export: ${r.status.reason}`);
      uri = r.snapshot_metadata_uri!;
      firstBytes = (await dirBytes(join(dir, 'blobs'))).bytes;
      const scratch = join(roots, `cp${i}`);
      await mkdir(scratch, { recursive: true });
      const t1 = performance.now();
      await run('cp', ['-r', 'insert_log', 'delta_log', 'stats_log', 'index_files', 'snapshots', scratch + '/'], { cwd: objects }).catch(
        async (e: unknown) => {
          // delta_log may not exist (no deletes yet): copy what exists.
          const present = (await readdir(objects)).filter((d) => ['insert_log', 'delta_log', 'stats_log', 'index_files', 'snapshots'].includes(d));
          if (present.length === 5) throw e;
          await run('cp', ['-r', ...present, scratch + '/'], { cwd: objects });
        },
      );
      cpMs.push(ms(t1));
      // The same copy made durable the way the export makes its blobs durable (fsync of every file and directory).
      const copied = (await readdir(scratch, { recursive: true, withFileTypes: true })).filter((e) => e.isFile()).map((e) => join(e.parentPath, e.name));
      await syncLocation({ kind: 'local', dir: scratch }, copied);
      cpSyncMs.push(ms(t1));
      await rm(scratch, { recursive: true, force: true });
    }
    const cpBytes = firstBytes;

    phase('export vs cp done');
    // 2. Second export into the first dir after 1% of rows changed.
    await insertRange(a.server.engine, id, data, DIM, ROWS, ROWS + ROWS / 100, 5000);
    await c.delete({ collection_name: 'src', filter: `id < ${ROWS / 100}` });
    await c.flushSync({ collection_names: ['src'] });
    await a.server.engine.waitForIndexes(id);
    if ((await c.createSnapshot({ collection_name: 'src', snapshot_name: 's2' })).error_code !== 'Success') throw new Error('snapshot s2');
    const before = (await dirBytes(join(roots, 'run0', 'blobs'))).bytes;
    const t2 = performance.now();
    const second = await exportSnapshot(a.server.port, { collection_name: 'src', name: 's2', target_s3_path: `file://${join(roots, 'run0')}` });
    const secondMs = ms(t2);
    if (second.status.code !== 0) throw new Error(`second export: ${second.status.reason}`);
    const secondBytes = (await dirBytes(join(roots, 'run0', 'blobs'))).bytes - before;

    phase('second export done');
    console.log(`# Export benchmark (${ROWS} rows, dim ${DIM}, HNSW M=16 efC=${EFC})\n\n${machine()}; ${loadLine()}`);
    // Run 0 is the server's first export: segment files carry the hashes recorded at write time, only the
    // snapshot's metadata and manifests are hashed; later runs know those too. The headline ratio is the median.
    const coldMs = exportMs[0]!;
    const warmMs = median(exportMs.slice(1).length > 0 ? exportMs.slice(1) : exportMs);
    const exportMBps = firstBytes / MB / (median(exportMs) / 1000);
    const cpMBps = cpBytes / MB / (median(cpMs) / 1000);
    table('export vs cp -r (median of runs, back to back)', [
      {
        what: 'ExportSnapshot, first (kernel copy, hashes recorded at write, fsync)',
        MB: (firstBytes / MB).toFixed(1),
        ms: coldMs.toFixed(0),
        'MB/s': (firstBytes / MB / (coldMs / 1000)).toFixed(0),
      },
      {
        what: 'ExportSnapshot, hashes known (kernel copy, fsync)',
        MB: (firstBytes / MB).toFixed(1),
        ms: warmMs.toFixed(0),
        'MB/s': (firstBytes / MB / (warmMs / 1000)).toFixed(0),
      },
      {
        what: 'ExportSnapshot, median of all runs',
        MB: (firstBytes / MB).toFixed(1),
        ms: median(exportMs).toFixed(0),
        'MB/s': exportMBps.toFixed(0),
      },
      { what: 'cp -r of the same directories', MB: (cpBytes / MB).toFixed(1), ms: median(cpMs).toFixed(0), 'MB/s': cpMBps.toFixed(0) },
      {
        what: 'cp -r, then fsync of every copied file',
        MB: (cpBytes / MB).toFixed(1),
        ms: median(cpSyncMs).toFixed(0),
        'MB/s': (cpBytes / MB / (median(cpSyncMs) / 1000)).toFixed(0),
      },
      { what: 'ratio to cp -r (target ≥ 0.80), median of runs', MB: '', ms: '', 'MB/s': (exportMBps / cpMBps).toFixed(2) },
      { what: 'ratio to cp -r, first export', MB: '', ms: '', 'MB/s': (median(cpMs) / coldMs).toFixed(2) },
      { what: 'ratio to cp -r, hashes known', MB: '', ms: '', 'MB/s': (median(cpMs) / warmMs).toFixed(2) },
      { what: 'ratio to cp -r + fsync, median of runs', MB: '', ms: '', 'MB/s': (median(cpSyncMs) / median(exportMs)).toFixed(2) },
      { what: 'ratio to cp -r + fsync, first export', MB: '', ms: '', 'MB/s': (median(cpSyncMs) / coldMs).toFixed(2) },
    ]);
    table('second export after 1% changed', [
      {
        first_MB: (firstBytes / MB).toFixed(1),
        second_MB: (secondBytes / MB).toFixed(2),
        ratio: `${((100 * secondBytes) / firstBytes).toFixed(2)}% (target ≤ 5%)`,
        ms: secondMs.toFixed(0),
      },
    ]);
    // Restores take longest: BENCH_RESTORE=0 skips them (the export figures above are already printed).
    if (process.env['BENCH_RESTORE'] === '0') return;
    // 3. External restore on server B vs a local byte-copy restore on server A, each to searchable.
    const extMs: number[] = [];
    const localMs: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      const t3 = performance.now();
      const r = await restoreExternal(b.server.port, { target_collection_name: `ext${i}`, snapshot_metadata_uri: uri });
      if (r.status.code !== 0) throw new Error(`restoreExternal: ${r.status.reason}`);
      const info = await waitRestore(b.client, r.job_id!, { intervalMs: 5, timeoutMs: 600_000 });
      if (info.state !== 'RestoreSnapshotCompleted') throw new Error(`external restore: ${info.reason}`);
      await searchable(b.client, `ext${i}`, query);
      extMs.push(ms(t3));
      const t4 = performance.now();
      const l = await c.restoreSnapshot({ snapshot_name: 's1', source_collection_name: 'src', target_collection_name: `loc${i}` });
      if (l.status.error_code !== 'Success') throw new Error(`restoreSnapshot: ${l.status.reason}`);
      const li = await waitRestore(c, l.job_id, { intervalMs: 5, timeoutMs: 600_000 });
      if (li.state !== 'RestoreSnapshotCompleted') throw new Error(`local restore: ${li.reason}`);
      await searchable(c, `loc${i}`, query);
      localMs.push(ms(t4));
      await b.client.dropCollection({ collection_name: `ext${i}` });
      await c.dropCollection({ collection_name: `loc${i}` });
    }

    table('restore to searchable (median)', [
      { what: 'RestoreExternalSnapshot on a second server', ms: median(extMs).toFixed(0) },
      { what: 'local restore, byte copies (QUIVER_COPY_MODE=copy)', ms: median(localMs).toFixed(0) },
      { what: 'ratio (target ≤ 2)', ms: (median(extMs) / median(localMs)).toFixed(2) },
    ]);
  } finally {
    await a.close();
    await b.close();
    await rm(roots, { recursive: true, force: true });
  }
}

await main();
