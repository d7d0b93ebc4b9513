/**
 * Snapshot benchmark (issue 4 targets, dim 128, clustered, HNSW M=16 efConstruction=64, flushed):
 *  - create: median of 7 `createSnapshot` calls through the SDK after a flush ≤ 50 ms at 160k rows, and
 *    t(160k) / t(10k) ≤ 1.5 (a snapshot writes metadata, never data); one create with 5,000 unflushed
 *    rows pending is reported apart (it includes that flush);
 *  - restore end to end (restoreSnapshot → job Completed → load → one search with hits) ≤ 2 s at 160k, and
 *    t(160k) / t(10k) ≤ 2; on a local disk the restore copies are hardlinks;
 *  - byte copies forced: the restore's copy path (`executeCopy` over a LocalObjectStore with copyMode
 *    'copy') on the 160k snapshot's files, in MB/s, against `cp -r` of the same segment directories:
 *    ratio ≥ 0.8;
 *  - LanceDB 0.31 side by side: the same rows with an IVF_HNSW_SQ index; `tags.create` (its snapshot),
 *    then `checkout(tag)` + `restore()` (its "restore an old version") after 5,000 more rows were added,
 *    and one search after the restore.
 * The server runs in this process (startServer) with the official SDK client over loopback gRPC.
 *
 * Usage: npx tsx bench/snapshot.ts   (BENCH_SIZES=10000,160000 BENCH_DIM=128 BENCH_EFC=64 BENCH_CREATES=7
 *        BENCH_RESTORES=3 BENCH_SEGMENT_ROWS=<flush every n rows; default one flush>; BENCH_QUICK=1 = 2k,16k)
 */
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import * as lancedb from '@lancedb/lancedb';
import type { MilvusClient } from '@zilliz/milvus2-sdk-node';
import type { ResolvedMapping } from '../src/coord/copy/types.js';
import { copyPlanOf } from '../src/storage/snapshot-format/segment-rewrite.js';
import { executeCopy, targetKeysOf } from '../src/datanode/copy-worker/index.js';
import { LocalObjectStore } from '../src/storage/local-object-store.js';
import { parseSegmentKey } from '../src/storage/paths.js';
import { waitRestore } from '../src/testing/index.js';
import { startTestServer, type TestServer } from '../test/helpers.js';
import { clustered, envInt, machine, median, rowsOf, table } from './common.js';
import { collectionId, createHnsw, createVectorCollection, insertRange, loadLine, MB, quick } from './fixture.js';

const SIZES = (process.env.BENCH_SIZES ?? (quick ? '2000,16000' : '10000,160000')).split(',').map(Number);
const DIM = envInt('BENCH_DIM', 128);
const M = envInt('BENCH_M', 16);
const EFC = envInt('BENCH_EFC', 64);
const CREATES = envInt('BENCH_CREATES', 7);
const RESTORES = envInt('BENCH_RESTORES', 3);
const COPY_RUNS = envInt('BENCH_COPY_RUNS', 3);
const PENDING_ROWS = envInt('BENCH_PENDING_ROWS', 5000);
const BATCH = 5000;
const run = promisify(execFile);
const ms = (t0: number): number => performance.now() - t0;

interface QuiverResult {
  readonly n: number;
  readonly segments: number;
  readonly createMs: number[];
  readonly createPendingMs: number;
  readonly restore: { totalMs: number; jobMs: number; loadMs: number; searchMs: number }[];
  /** The same with the source collection released (nothing to share: the restored data is read from disk). */
  readonly restoreCold: { totalMs: number; jobMs: number; loadMs: number; searchMs: number }[];
  readonly restoreSyncMs: number;
  readonly copy?: { bytes: number; files: number; copyMs: number[]; copyFsyncMs: number[]; cpMs: number[] };
}

/** Polls every 5 ms (the job's duration is what is measured); a failed job ends the benchmark. */
async function restoreCompleted(client: MilvusClient, jobId: string): Promise<void> {
  const info = await waitRestore(client, jobId, { intervalMs: 5, timeoutMs: 3_600_000 });
  if (info.state !== 'RestoreSnapshotCompleted') throw new Error(`restore ${jobId} failed: ${JSON.stringify(info)}`);
}

/** restoreSnapshot → Completed → load → one search with hits; `syncLoad` uses the SDK's loadCollectionSync. */
async function restoreOnce(client: MilvusClient, source: string, snapshot: string, target: string, query: number[], syncLoad: boolean) {
  const t0 = performance.now();
  const r = await client.restoreSnapshot({ snapshot_name: snapshot, source_collection_name: source, target_collection_name: target });
  if (r.status.error_code !== 'Success') throw new Error(`restoreSnapshot: ${r.status.reason}`);
  await restoreCompleted(client, r.job_id);
  const jobMs = ms(t0);
  const tl = performance.now();
  if (syncLoad) {
    const l = await client.loadCollectionSync({ collection_name: target });
    if (l.error_code !== 'Success') throw new Error(`load: ${l.reason}`);
  } else {
    // loadCollectionSync (= loadCollection in SDK 3.0) sleeps 400 ms after every progress poll, even the
    // last: at least 400 ms that are the client's. This polls the load state every 5 ms instead.
    const l = await client.loadCollectionAsync({ collection_name: target });
    if (l.error_code !== 'Success') throw new Error(`load: ${l.reason}`);
    while ((await client.getLoadState({ collection_name: target })).state !== 'LoadStateLoaded') await new Promise((res) => setTimeout(res, 5));
  }
  const loadMs = ms(tl);
  const ts = performance.now();
  const s = await client.search({ collection_name: target, data: [query], limit: 10, params: { ef: 64 } });
  if (s.status.error_code !== 'Success' || s.results.length === 0) throw new Error(`search after restore: ${s.status.reason} (${s.results.length} hits)`);
  return { totalMs: ms(t0), jobMs, loadMs, searchMs: ms(ts) };
}

/** The segment-level directory of an object key (what `cp -r` copies). */
function segmentDir(key: string): string {
  const k = parseSegmentKey(key);
  if (!k) throw new Error(`not a segment key: ${key}`);
  const parts = key.split('/');
  const drop = k.kind === 'insert' || k.kind === 'stats' ? 2 : 1;
  return parts.slice(0, parts.length - drop).join('/');
}

/** The restore's copy path with byte copies forced, against `cp -r` of the same segment directories. */
async function copyComparison(t: TestServer, source: string, snapshot: string): Promise<NonNullable<QuiverResult['copy']>> {
  const root = join(t.dataDir, 'objects');
  const rec = await t.server.snapshots.describe('default', source, snapshot);
  const contents = await t.server.snapshots.readContents(rec);
  // Target ids no catalog knows: the copies are scratch files, deleted after each run.
  const mappings: ResolvedMapping[] = contents.entries.map((e, i) => ({
    source: e.segment,
    targetCollectionId: 990_000_001,
    targetPartitionId: 990_000_002,
    targetSegmentId: 990_000_100 + i,
  }));
  const plan = mappings.flatMap(copyPlanOf);
  let bytes = 0;
  for (const step of plan) bytes += (await stat(join(root, step.src))).size;
  const dirs = [...new Set(plan.map((s) => segmentDir(s.src)))];
  const scratch = join(t.dataDir, 'cp-scratch');
  const out = { bytes, files: plan.length, copyMs: [] as number[], copyFsyncMs: [] as number[], cpMs: [] as number[] };
  for (let i = 0; i < COPY_RUNS; i++) {
    for (const fsync of [false, true]) {
      const store = new LocalObjectStore(root, { copyMode: 'copy', fsync });
      const t0 = performance.now();
      const r = await executeCopy(
        store,
        { read: async () => new Map(mappings.map((m) => [m.source.id, m.source] as const)) },
        {
          snapshot: { collectionId: rec.collectionId, snapshotId: rec.id },
          targetCollectionId: 990_000_001,
          mappings: mappings.map((m) => ({ sourceSegmentId: m.source.id, targetSegmentId: m.targetSegmentId, targetPartitionId: m.targetPartitionId })),
        },
      );
      const took = ms(t0);
      if (!r.ok) throw new Error(`executeCopy: ${r.reason}`);
      (fsync ? out.copyFsyncMs : out.copyMs).push(took);
      for (const key of targetKeysOf(mappings)) await store.delete(key);
      await store.close();
    }
    await mkdir(scratch, { recursive: true });
    const t1 = performance.now();
    await run('cp', ['-r', '--parents', ...dirs, scratch + '/'], { cwd: root });
    out.cpMs.push(ms(t1));
    await rm(scratch, { recursive: true, force: true });
  }
  await rm(scratch, { recursive: true, force: true });
  return out;
}

async function quiver(n: number, data: Float32Array, query: number[], withCopy: boolean): Promise<QuiverResult> {
  const t = await startTestServer({ autoCompaction: false, sealRows: Math.max(200_000, n + PENDING_ROWS + 1) });
  const name = `snap_${n}`;
  try {
    const c = t.client;
    const engine = t.server.engine;
    await createVectorCollection(c, name, DIM);
    const id = collectionId(engine, name);
    const segRows = envInt('BENCH_SEGMENT_ROWS', n);
    for (let from = 0; from < n; from += segRows) {
      await insertRange(engine, id, data, DIM, from, Math.min(n, from + segRows), BATCH);
      await engine.flushCollection(id);
    }
    await createHnsw(c, name, M, EFC);
    await engine.waitForIndexes(id);
    const l = await c.loadCollectionSync({ collection_name: name });
    if (l.error_code !== 'Success') throw new Error(`load: ${l.reason}`);
    const segments = engine.flushedSegments(id).length;

    // create latency, nothing pending
    await c.flushSync({ collection_names: [name] });
    const createMs: number[] = [];
    for (let i = 0; i < CREATES; i++) {
      const t0 = performance.now();
      const r = await c.createSnapshot({ collection_name: name, snapshot_name: `s${i}` });
      createMs.push(ms(t0));
      if (r.error_code !== 'Success') throw new Error(`createSnapshot: ${r.reason}`);
    }

    // restore end to end
    const restore: QuiverResult['restore'][number][] = [];
    for (let i = 0; i < RESTORES; i++) {
      const target = `r${i}_${n}`;
      restore.push(await restoreOnce(c, name, 's0', target, query, false));
      await c.releaseCollection({ collection_name: target });
      await c.dropCollection({ collection_name: target });
    }
    const restoreSyncMs = (await restoreOnce(c, name, 's0', `rsync_${n}`, query, true)).totalMs;
    await c.dropCollection({ collection_name: `rsync_${n}` });
    await c.releaseCollection({ collection_name: name });
    const restoreCold: QuiverResult['restore'][number][] = [];
    for (let i = 0; i < RESTORES; i++) {
      const target = `rc${i}_${n}`;
      restoreCold.push(await restoreOnce(c, name, 's0', target, query, false));
      await c.releaseCollection({ collection_name: target });
      await c.dropCollection({ collection_name: target });
    }
    await c.loadCollectionSync({ collection_name: name });

    const copy = withCopy ? await copyComparison(t, name, 's0') : undefined;

    // one create with unflushed rows pending (the create flushes them first)
    await insertRange(engine, id, data, DIM, 0, PENDING_ROWS, BATCH, 50_000_000);
    const t0 = performance.now();
    const r = await c.createSnapshot({ collection_name: name, snapshot_name: 'pending' });
    const createPendingMs = ms(t0);
    if (r.error_code !== 'Success') throw new Error(`createSnapshot: ${r.reason}`);
    // The flushed rows get their index built in the background; closing the server while hnswlib builds
    // aborts the process (the worker is terminated inside addPoint), so let the build finish.
    await engine.waitForIndexes(id);
    return { n, segments, createMs, createPendingMs, restore, restoreCold, restoreSyncMs, ...(copy ? { copy } : {}) };
  } finally {
    await t.close();
  }
}

interface LanceResult {
  readonly n: number;
  readonly indexSec: number;
  readonly tagMs: number[];
  readonly restoreMs: number[];
  readonly searchMs: number[];
}

async function lance(n: number, data: Float32Array, query: number[]): Promise<LanceResult> {
  const dir = await mkdtemp(join(tmpdir(), 'lancedb-bench-snapshot-'));
  try {
    const db = await lancedb.connect(dir);
    const tbl = await db.createTable(
      't',
      rowsOf(data, DIM, 0, n).map((vector, id) => ({ id, vector })),
    );
    const ti = performance.now();
    await tbl.createIndex('vector', { config: lancedb.Index.hnswSq({ distanceType: 'l2', numPartitions: 1, m: M, efConstruction: EFC }) });
    const indexSec = ms(ti) / 1000;
    const tags = await tbl.tags();
    const tagMs: number[] = [];
    for (let i = 0; i < CREATES; i++) {
      const v = await tbl.version();
      const t0 = performance.now();
      await tags.create(`s${i}`, v);
      tagMs.push(ms(t0));
    }
    const extra = rowsOf(data, DIM, 0, PENDING_ROWS).map((vector, i) => ({ id: 50_000_000 + i, vector }));
    const restoreMs: number[] = [];
    const searchMs: number[] = [];
    for (let i = 0; i < RESTORES; i++) {
      await tbl.add(extra);
      const t0 = performance.now();
      await tbl.checkout('s0');
      await tbl.restore();
      restoreMs.push(ms(t0));
      const ts = performance.now();
      const hits = await (tbl.search(query) as lancedb.VectorQuery).limit(10).ef(64).toArray();
      searchMs.push(ms(ts));
      if (hits.length === 0) throw new Error('LanceDB search after restore returned no hits');
      const rows = await tbl.countRows();
      if (rows !== n) throw new Error(`LanceDB restore left ${rows} rows, expected ${n}`);
    }
    return { n, indexSec, tagMs, restoreMs, searchMs };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

const f0 = (x: number): string => x.toFixed(0);
const f1 = (x: number): string => x.toFixed(1);
const f2 = (x: number): string => x.toFixed(2);

async function main(): Promise<void> {
  console.log(`# Snapshot benchmark\n\nmachine: ${machine()}\n${loadLine()} at start`);
  console.log(
    `sizes ${SIZES.join(', ')}, dim ${DIM}, HNSW M=${M} efConstruction=${EFC}; ${CREATES} creates, ${RESTORES} restores per size; server in-process, official SDK over loopback`,
  );
  const biggest = Math.max(...SIZES);
  const data = clustered(biggest, DIM, 11);
  const query = rowsOf(clustered(1, DIM, 12), DIM, 0, 1)[0]!;
  const q: QuiverResult[] = [];
  const l: LanceResult[] = [];
  for (const n of SIZES) {
    console.log(`  quiver ${n} rows...`);
    q.push(await quiver(n, data, query, n === biggest));
    console.log(`  lancedb ${n} rows...`);
    l.push(await lance(n, data, query));
  }
  const first = q[0]!;
  const last = q[q.length - 1]!;
  const med = (r: QuiverResult) => median(r.createMs);
  const tot = (r: QuiverResult) => median(r.restore.map((x) => x.totalMs));

  table('Snapshot create through the SDK (after a flush; median of ' + CREATES + ')', [
    ...q.map((r) => ({
      rows: r.n,
      segments: r.segments,
      'median ms': f1(med(r)),
      'min–max ms': `${f1(Math.min(...r.createMs))}–${f1(Math.max(...r.createMs))}`,
      [`with ${PENDING_ROWS} unflushed rows, ms`]: f1(r.createPendingMs),
      target: r === last ? '≤ 50 ms' : '',
    })),
    {
      rows: `ratio ${last.n}/${first.n}`,
      segments: '',
      'median ms': f2(med(last) / med(first)),
      'min–max ms': '',
      [`with ${PENDING_ROWS} unflushed rows, ms`]: '',
      target: '≤ 1.5',
    },
  ]);

  table('Restore end to end: restoreSnapshot → Completed → load → one search (median of ' + RESTORES + ')', [
    ...q.map((r) => ({
      rows: r.n,
      'total s': f2(tot(r) / 1000),
      'restore job ms': f0(median(r.restore.map((x) => x.jobMs))),
      'load ms': f0(median(r.restore.map((x) => x.loadMs))),
      'search ms': f1(median(r.restore.map((x) => x.searchMs))),
      'total with loadCollectionSync, s': f2(r.restoreSyncMs / 1000),
      target: r === last ? '≤ 2 s' : '',
    })),
    {
      rows: `ratio ${last.n}/${first.n}`,
      'total s': f2(tot(last) / tot(first)),
      'restore job ms': '',
      'load ms': '',
      'search ms': '',
      'total with loadCollectionSync, s': '',
      target: '≤ 2',
    },
  ]);
  const totCold = (r: QuiverResult) => median(r.restoreCold.map((x) => x.totalMs));
  table('Restore end to end with the source collection released (restored data read from disk; median of ' + RESTORES + ')', [
    ...q.map((r) => ({
      rows: r.n,
      'total s': f2(totCold(r) / 1000),
      'restore job ms': f0(median(r.restoreCold.map((x) => x.jobMs))),
      'load ms': f0(median(r.restoreCold.map((x) => x.loadMs))),
      'search ms': f1(median(r.restoreCold.map((x) => x.searchMs))),
    })),
    { rows: `ratio ${last.n}/${first.n}`, 'total s': f2(totCold(last) / totCold(first)), 'restore job ms': '', 'load ms': '', 'search ms': '' },
  ]);

  const c = last.copy;
  if (c) {
    const mbps = (xs: number[]) => c.bytes / MB / (median(xs) / 1000);
    table(
      `Byte copies forced: restore copy path vs cp -r, ${last.n}-row snapshot (${c.files} files, ${f1(c.bytes / MB)} MB, median of ${COPY_RUNS}, warm page cache)`,
      [
        {
          path: "executeCopy, LocalObjectStore copyMode 'copy', fsync off",
          'median ms': f0(median(c.copyMs)),
          'MB/s': f0(mbps(c.copyMs)),
          'ratio to cp -r': f2(mbps(c.copyMs) / mbps(c.cpMs)),
          target: '≥ 0.8',
        },
        {
          path: "executeCopy, copyMode 'copy', fsync on (the server's setting)",
          'median ms': f0(median(c.copyFsyncMs)),
          'MB/s': f0(mbps(c.copyFsyncMs)),
          'ratio to cp -r': f2(mbps(c.copyFsyncMs) / mbps(c.cpMs)),
          target: '',
        },
        {
          path: 'cp -r --parents of the segment directories (one process, no fsync)',
          'median ms': f0(median(c.cpMs)),
          'MB/s': f0(mbps(c.cpMs)),
          'ratio to cp -r': '1.00',
          target: '',
        },
      ],
    );
  }

  table(`Side by side with LanceDB 0.31 (IVF_HNSW_SQ, 1 partition, m=${M}, efC=${EFC}); medians`, [
    ...q.flatMap((r, i) => {
      const lr = l[i]!;
      return [
        {
          system: 'Quiver',
          rows: r.n,
          'snapshot ms': f1(med(r)),
          'restore ms (incl. load for Quiver)': f0(tot(r) - median(r.restore.map((x) => x.searchMs))),
          'search after restore ms': f1(median(r.restore.map((x) => x.searchMs))),
          note: 'createSnapshot; restore into a new collection',
        },
        {
          system: 'LanceDB',
          rows: lr.n,
          'snapshot ms': f1(median(lr.tagMs)),
          'restore ms (incl. load for Quiver)': f1(median(lr.restoreMs)),
          'search after restore ms': f1(median(lr.searchMs)),
          note: `tags.create; checkout(tag)+restore() in place (index build ${f1(lr.indexSec)} s)`,
        },
      ];
    }),
  ]);
  console.log(`\n${loadLine()} at end`);
}

await main();
