/**
 * Cluster benchmark: restores on `quiver datanode` processes (issue 10). Real processes: etcd, `quiver
 * serve --datanode-slots 0`, and 1, 2, then 3 data nodes (2 slots each), sharing one local directory
 * as the object store with byte copies forced (`--copy-mode copy`: every byte read and written by the
 * data node, not a hardlink or a server-side copy). Prints tables; no assertions.
 *
 *  - restore of BENCH_SEGMENTS (64) segments of BENCH_ROWS_PER_SEGMENT × BENCH_DIM vectors, one task per
 *    segment: job time (restoreSnapshot → Completed), segments/s and MB/s, with 1, 2 and 3 nodes, and
 *    where the time goes (plan, dispatch + copy, publish from the coordinator's log; the nodes' own task
 *    run times from their metrics, so idle slots show);
 *  - re-dispatch after a node loss: 2 nodes with slowed copies, kill -9 of one while it runs tasks; the
 *    time from the kill to the coordinator's "copy task re-queued" log line (the session TTL is
 *    BENCH_TTL_MS; target: TTL + 2 s).
 *
 *  - index build of BENCH_BUILD_SEGMENTS (4) segments of BENCH_BUILD_ROWS (50k) × BENCH_DIM on 1 then 2
 *    data nodes, each with ONE build thread (`--index-build-threads 1`) and one slot, so that two nodes on
 *    one machine are compared fairly: createIndex → every segment indexed, then the index is dropped and
 *    built again after the second node joined.
 *
 * Usage: npx tsx bench/cluster.ts   (BENCH_QUICK=1: 16 segments of 500 rows; BENCH_PART=index|restore)
 */
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir, loadavg } from 'node:os';
import { join } from 'node:path';
import { ErrorCode, type MilvusClient } from '@zilliz/milvus2-sdk-node';
import { etcdUnavailableReason } from '../src/testing/etcd-server.js';
import { waitRestore } from '../src/testing/wait.js';
import { Cluster, metricSum, scrapeMetrics, type QuiverProcess } from '../src/testing/cluster.js';
import { clustered, envInt, machine, rowsOf, table } from './common.js';
import { createHnsw, createVectorCollection, quick } from './fixture.js';

const SEGMENTS = envInt('BENCH_SEGMENTS', quick ? 16 : 64);
const ROWS = envInt('BENCH_ROWS_PER_SEGMENT', quick ? 500 : 2_000);
const DIM = envInt('BENCH_DIM', 128);
const TTL_MS = envInt('BENCH_TTL_MS', 2_000);
const BUILD_SEGMENTS = envInt('BENCH_BUILD_SEGMENTS', 4);
const BUILD_ROWS = envInt('BENCH_BUILD_ROWS', quick ? 5_000 : 50_000);
const PART = process.env['BENCH_PART'] ?? 'all';

async function dirBytes(dir: string): Promise<number> {
  let total = 0;
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (e.isFile()) total += (await stat(join(e.parentPath, e.name))).size;
  }
  return total;
}

interface RestorePhases {
  /** restoreSnapshot → Completed, as the client sees it. */
  readonly jobS: number;
  /** restoreSnapshot → the job Executing (job written, targets registered, tasks written): from the coordinator's log. */
  readonly planS: number;
  /** Executing → Publishing: dispatching the tasks, the copies, collecting the answers. */
  readonly copyS: number;
  /** Publishing → Completed (the restored segments committed). */
  readonly publishS: number;
  /** Sum of the copy task run times on the nodes (their duration histograms), in seconds. */
  readonly nodeTaskS: number;
}

/** The `time` of the first log line in `output` whose msg is `msg` and whose fields match. */
function logTimeMs(output: string, msg: string, fields: Readonly<Record<string, unknown>>): number {
  for (const line of output.split('\n')) {
    if (!line.includes(msg)) continue;
    const rec = JSON.parse(line) as Record<string, unknown>;
    if (rec['msg'] === msg && Object.entries(fields).every(([k, v]) => rec[k] === v)) return rec['time'] as number;
  }
  throw new Error(`no log line ${msg} ${JSON.stringify(fields)} in the coordinator's output`);
}

async function nodeTaskSeconds(nodes: readonly QuiverProcess[]): Promise<number> {
  let total = 0;
  for (const n of nodes) total += metricSum(await scrapeMetrics(n.metricsAddress), 'quiver_datanode_task_duration_seconds_sum', { type: 'copy_segment' });
  return total;
}

async function restorePhases(c: MilvusClient, serve: QuiverProcess, nodes: readonly QuiverProcess[], target: string): Promise<RestorePhases> {
  const logFrom = serve.output().length;
  const nodeBefore = await nodeTaskSeconds(nodes);
  const startedAtMs = Date.now();
  const t0 = performance.now();
  const r = await c.restoreSnapshot({ snapshot_name: 'snap', source_collection_name: 'src', target_collection_name: target });
  if (r.status.error_code !== ErrorCode.SUCCESS) throw new Error(`restore: ${r.status.reason}`);
  const info = await waitRestore(c, r.job_id, { timeoutMs: 600_000, intervalMs: 10 });
  if (info.state !== 'RestoreSnapshotCompleted') throw new Error(`restore ${target}: ${info.state} ${info.reason}`);
  const jobS = (performance.now() - t0) / 1000;
  const jobId = Number(r.job_id);
  // The coordinator logs "completed" after the CAS a client may already have seen: wait for the line.
  for (let i = 0; i < 100 && !serve.output().slice(logFrom).includes('"copy job completed"'); i++) await new Promise((res) => setTimeout(res, 50));
  const out = serve.output().slice(logFrom);
  const executingMs = logTimeMs(out, 'copy job executing', { jobId });
  const publishingMs = logTimeMs(out, 'copy job transition', { jobId, to: 'Publishing' });
  const completedMs = logTimeMs(out, 'copy job completed', { jobId });
  return {
    jobS,
    planS: (executingMs - startedAtMs) / 1000,
    copyS: (publishingMs - executingMs) / 1000,
    publishS: (completedMs - publishingMs) / 1000,
    nodeTaskS: (await nodeTaskSeconds(nodes)) - nodeBefore,
  };
}

/** createIndex → every segment indexed (describeIndex Finished), in seconds. */
async function buildSeconds(c: MilvusClient): Promise<number> {
  const t0 = performance.now();
  await createHnsw(c, 'big', 16, 100);
  for (;;) {
    const d = await c.describeIndex({ collection_name: 'big', field_name: 'v' });
    if (d.index_descriptions[0]?.state === 'Finished') break;
    if (performance.now() - t0 > 900_000) throw new Error('index build did not finish within 15 minutes');
    await new Promise((r) => setTimeout(r, 50));
  }
  return (performance.now() - t0) / 1000;
}

async function indexBuilds(): Promise<void> {
  const objects = await mkdtemp(join(tmpdir(), 'quiver-bench-builds-'));
  const cluster = await Cluster.start({ metaRoot: 'benchidx', localStorageDir: objects });
  try {
    const serve = await cluster.serve({ args: ['--datanode-slots', '0'], env: { QUIVER_AUTO_COMPACTION: 'false' } });
    const c = serve.client;
    await createVectorCollection(c, 'big', DIM);
    const data = clustered(BUILD_SEGMENTS * BUILD_ROWS, DIM);
    const batch = 10_000;
    for (let s = 0; s < BUILD_SEGMENTS; s++) {
      for (let from = s * BUILD_ROWS; from < (s + 1) * BUILD_ROWS; from += batch) {
        const to = Math.min((s + 1) * BUILD_ROWS, from + batch);
        const r = await c.insert({ collection_name: 'big', data: rowsOf(data, DIM, from, to).map((v, i) => ({ id: from + i, v })) });
        if (r.status.error_code !== ErrorCode.SUCCESS) throw new Error(`insert: ${r.status.reason}`);
      }
      await c.flushSync({ collection_names: ['big'] });
    }
    const node = { slots: 1, args: ['--index-build-threads', '1'] };
    const results: Record<string, string | number>[] = [];
    let base = 0;
    for (let n = 1; n <= 2; n++) {
      await cluster.datanode(node);
      if (n > 1) {
        const dropped = await c.dropIndex({ collection_name: 'big', field_name: 'v' });
        if (dropped.error_code !== ErrorCode.SUCCESS) throw new Error(`dropIndex: ${dropped.reason}`);
      }
      const load = loadavg()[0]!.toFixed(2);
      const s = await buildSeconds(c);
      if (n === 1) base = s;
      results.push({
        'data nodes': n,
        segments: BUILD_SEGMENTS,
        'rows/segment': BUILD_ROWS,
        'build s': s.toFixed(2),
        'speed-up vs 1': (base / s).toFixed(2),
        'load (1 min)': load,
      });
    }
    table(`HNSW build (M 16, efConstruction 100) on data nodes, 1 build thread and 1 slot per node (${machine()})`, results);
  } finally {
    await cluster.stop();
    await rm(objects, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const skip = etcdUnavailableReason();
  if (skip !== undefined) {
    console.log(`bench/cluster skipped: ${skip}`);
    return;
  }
  if (PART === 'all' || PART === 'index') await indexBuilds();
  if (PART === 'index') return;
  const objects = await mkdtemp(join(tmpdir(), 'quiver-bench-cluster-'));
  const cluster = await Cluster.start({ metaRoot: 'bench', localStorageDir: objects });
  try {
    const serve = await cluster.serve({
      args: ['--datanode-slots', '0'],
      env: {
        QUIVER_AUTO_COMPACTION: 'false',
        QUIVER_COPY_MAX_SEGMENTS_PER_TASK: '1',
        QUIVER_COPY_CHECK_INTERVAL_MS: '200',
        QUIVER_LOG_LEVEL: 'info',
      },
    });
    const c = serve.client;
    await createVectorCollection(c, 'src', DIM);
    const data = clustered(SEGMENTS * ROWS, DIM);
    for (let s = 0; s < SEGMENTS; s++) {
      const rows = rowsOf(data, DIM, s * ROWS, (s + 1) * ROWS).map((v, i) => ({ id: s * ROWS + i, v }));
      const r = await c.insert({ collection_name: 'src', data: rows });
      if (r.status.error_code !== ErrorCode.SUCCESS) throw new Error(`insert: ${r.status.reason}`);
      await c.flushSync({ collection_names: ['src'] });
    }
    if ((await c.createSnapshot({ collection_name: 'src', snapshot_name: 'snap' })).error_code !== ErrorCode.SUCCESS) throw new Error('snapshot');
    const collId = String((await c.describeCollection({ collection_name: 'src' })).collectionID);
    let sourceBytes = 0;
    for (const p of ['insert_log', 'delta_log', 'stats_log']) sourceBytes += await dirBytes(join(objects, p, collId)).catch(() => 0);
    const mb = sourceBytes / 1e6;

    const results: Record<string, string | number>[] = [];
    const nodes: QuiverProcess[] = [];
    let base = 0;
    const phases: Record<string, string | number>[] = [];
    for (let n = 1; n <= 3; n++) {
      nodes.push(await cluster.datanode({ slots: 2, args: ['--copy-mode', 'copy'], sessionTtlMs: TTL_MS }));
      const load = loadavg()[0]!.toFixed(2);
      const p = await restorePhases(c, serve, nodes, `back${n}`);
      const s = p.jobS;
      if (n === 1) base = s;
      results.push({
        'data nodes': n,
        segments: SEGMENTS,
        MB: mb.toFixed(1),
        'job s': s.toFixed(2),
        'segments/s': (SEGMENTS / s).toFixed(1),
        'MB/s': (mb / s).toFixed(1),
        'speed-up vs 1': (base / s).toFixed(2),
        'load (1 min)': load,
      });
      phases.push({
        'data nodes': n,
        'plan s': p.planS.toFixed(2),
        'dispatch + copy s': p.copyS.toFixed(2),
        'publish s': p.publishS.toFixed(2),
        'rest s (client polls)': (s - p.planS - p.copyS - p.publishS).toFixed(2),
        'node task s (sum)': p.nodeTaskS.toFixed(2),
        'mean task s': (p.nodeTaskS / SEGMENTS).toFixed(3),
        'slots busy %': ((100 * p.nodeTaskS) / (p.copyS * 2 * n)).toFixed(0),
      });
    }
    table(`restore on data nodes, byte copies forced (${machine()})`, results);
    table(
      'restore phases (coordinator log times; node task s: sum of the copy task run times the nodes report; slots busy: that sum over dispatch + copy × slots)',
      phases,
    );
    for (const node of nodes) await cluster.kill9(node);

    // Re-dispatch latency: slow copies on two fresh nodes, kill -9 one while it runs tasks.
    const slow = { slots: 2, sessionTtlMs: TTL_MS, args: ['--copy-mode', 'copy'], env: { QUIVER_FAULT_COPY_DELAY_MS: '1000' } };
    const [victim] = await Promise.all([cluster.datanode(slow), cluster.datanode(slow)]);
    const r = await c.restoreSnapshot({ snapshot_name: 'snap', source_collection_name: 'src', target_collection_name: 'back_loss' });
    if (r.status.error_code !== ErrorCode.SUCCESS) throw new Error(`restore: ${r.status.reason}`);
    const before = serve.output().length;
    const deadline = Date.now() + 60_000;
    // The victim runs tasks when its own gauge says so (scraped directly: the coordinator's heartbeat is 1 s).
    for (;;) {
      if (metricSum(await scrapeMetrics(victim!.metricsAddress), 'quiver_datanode_slots', { kind: 'used' }) > 0) break;
      if (Date.now() > deadline) {
        const st = await c.getRestoreSnapshotState({ job_id: r.job_id });
        throw new Error(
          `the victim never ran a task: job ${JSON.stringify(st.info)}\n${serve.output().slice(before).slice(-4000)}\n${victim!.output().slice(-2000)}`,
        );
      }
      await new Promise((res) => setTimeout(res, 20));
    }
    const killedAtMs = Date.now();
    await cluster.kill9(victim!);
    let requeuedAtMs: number | undefined;
    while (requeuedAtMs === undefined) {
      if (Date.now() > killedAtMs + 60_000) throw new Error(`no task re-queued within 60 s:\n${serve.output().slice(before).slice(-3000)}`);
      for (const line of serve.output().slice(before).split('\n')) {
        if (!line.includes('copy task re-queued')) continue;
        requeuedAtMs = (JSON.parse(line) as { time: number }).time;
        break;
      }
      await new Promise((res) => setTimeout(res, 20));
    }
    const info = await waitRestore(c, r.job_id, { timeoutMs: 600_000 });
    table('re-dispatch after kill -9 of a data node', [
      {
        'session TTL ms': TTL_MS,
        'kill → re-queued ms': requeuedAtMs - killedAtMs,
        'target ms (TTL + 2 s)': TTL_MS + 2_000,
        'job ended': info.state,
      },
    ]);
  } finally {
    await cluster.stop();
    await rm(objects, { recursive: true, force: true });
  }
}

await main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
