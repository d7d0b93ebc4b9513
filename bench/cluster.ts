/**
 * Cluster benchmark: restores on `quiver datanode` processes (issue 10). Real processes: etcd, `quiver
 * serve --datanode-slots 0`, and 1, 2, then 3 data nodes (2 slots each), sharing one local directory
 * as the object store with byte copies forced (`--copy-mode copy`: every byte read and written by the
 * data node, not a hardlink or a server-side copy). Prints tables; no assertions.
 *
 *  - restore of BENCH_SEGMENTS (64) segments of BENCH_ROWS_PER_SEGMENT × BENCH_DIM vectors, one task per
 *    segment: job time (restoreSnapshot → Completed), segments/s and MB/s, with 1, 2 and 3 nodes;
 *  - re-dispatch after a node loss: 2 nodes with slowed copies, kill -9 of one while it runs tasks; the
 *    time from the kill to the coordinator's "copy task re-queued" log line (the session TTL is
 *    BENCH_TTL_MS; target: TTL + 2 s).
 *
 * Index builds do not run on data nodes yet, so the index-build comparison of the issue is not measured.
 *
 * Usage: npx tsx bench/cluster.ts   (BENCH_QUICK=1: 16 segments of 500 rows)
 */
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir, loadavg } from 'node:os';
import { join } from 'node:path';
import { ErrorCode, type MilvusClient } from '@zilliz/milvus2-sdk-node';
import { etcdUnavailableReason } from '../src/testing/etcd-server.js';
import { waitRestore } from '../src/testing/wait.js';
import { Cluster, metricValue, type DataNodeProcess } from '../test/cluster/harness.js';
import { clustered, envInt, machine, rowsOf, table } from './common.js';
import { createVectorCollection, quick } from './fixture.js';

const SEGMENTS = envInt('BENCH_SEGMENTS', quick ? 16 : 64);
const ROWS = envInt('BENCH_ROWS_PER_SEGMENT', quick ? 500 : 2_000);
const DIM = envInt('BENCH_DIM', 128);
const TTL_MS = envInt('BENCH_TTL_MS', 2_000);

async function dirBytes(dir: string): Promise<number> {
  let total = 0;
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (e.isFile()) total += (await stat(join(e.parentPath, e.name))).size;
  }
  return total;
}

async function restoreSeconds(c: MilvusClient, target: string): Promise<number> {
  const t0 = performance.now();
  const r = await c.restoreSnapshot({ snapshot_name: 'snap', source_collection_name: 'src', target_collection_name: target });
  if (r.status.error_code !== ErrorCode.SUCCESS) throw new Error(`restore: ${r.status.reason}`);
  const info = await waitRestore(c, r.job_id, { timeoutMs: 600_000, intervalMs: 10 });
  if (info.state !== 'RestoreSnapshotCompleted') throw new Error(`restore ${target}: ${info.state} ${info.reason}`);
  return (performance.now() - t0) / 1000;
}

async function main(): Promise<void> {
  const skip = etcdUnavailableReason();
  if (skip !== undefined) {
    console.log(`bench/cluster skipped: ${skip}`);
    return;
  }
  const objects = await mkdtemp(join(tmpdir(), 'quiver-bench-cluster-'));
  const cluster = await Cluster.start('bench', { localStorageDir: objects });
  try {
    const serve = await cluster.serve(await cluster.dataDir(), {
      QUIVER_AUTO_COMPACTION: 'false',
      QUIVER_COPY_MAX_SEGMENTS_PER_TASK: '1',
      QUIVER_COPY_CHECK_INTERVAL_MS: '200',
      QUIVER_LOG_LEVEL: 'info',
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
    const nodes: DataNodeProcess[] = [];
    let base = 0;
    for (let n = 1; n <= 3; n++) {
      nodes.push(await cluster.datanode({ slots: 2, args: ['--copy-mode', 'copy'], sessionTtlMs: TTL_MS }));
      const load = loadavg()[0]!.toFixed(2);
      const s = await restoreSeconds(c, `back${n}`);
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
    }
    table(`restore on data nodes, byte copies forced (${machine()})`, results);
    for (const node of nodes) await node.kill9();

    // Re-dispatch latency: slow copies on two fresh nodes, kill -9 one while it runs tasks.
    const slow = { slots: 2, sessionTtlMs: TTL_MS, args: ['--copy-mode', 'copy'], env: { QUIVER_FAULT_COPY_DELAY_MS: '1000' } };
    const [victim] = await Promise.all([cluster.datanode(slow), cluster.datanode(slow)]);
    const r = await c.restoreSnapshot({ snapshot_name: 'snap', source_collection_name: 'src', target_collection_name: 'back_loss' });
    if (r.status.error_code !== ErrorCode.SUCCESS) throw new Error(`restore: ${r.status.reason}`);
    const before = serve.output().length;
    const deadline = Date.now() + 60_000;
    // The victim runs tasks when its own gauge says so (scraped directly: the coordinator's heartbeat is 1 s).
    for (;;) {
      const text = await (await fetch(`http://${victim!.metricsAddress}/metrics`)).text();
      if (metricValue(text, 'quiver_datanode_slots', { kind: 'used' }) > 0) break;
      if (Date.now() > deadline) {
        const st = await c.getRestoreSnapshotState({ job_id: r.job_id });
        throw new Error(
          `the victim never ran a task: job ${JSON.stringify(st.info)}\n${serve.output().slice(before).slice(-4000)}\n${victim!.output().slice(-2000)}`,
        );
      }
      await new Promise((res) => setTimeout(res, 20));
    }
    const killedAtMs = Date.now();
    await victim!.kill9();
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
