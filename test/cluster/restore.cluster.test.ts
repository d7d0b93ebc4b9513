/**
 * Restores on data nodes as separate processes (issue 10): etcd + s3rver + `quiver serve
 * --datanode-slots 0` + `quiver datanode` processes, driven with the official SDK.
 *
 * Skipped, with the reason printed, only when the `etcd` binary is missing (CI installs it).
 */

import { execFile } from 'node:child_process';
import { afterEach, beforeEach, describe, expect, it, onTestFailed } from 'vitest';
import { DataType, ErrorCode, type MilvusClient } from '@zilliz/milvus2-sdk-node';
import { etcdUnavailableReason } from '../../src/testing/etcd-server.js';
import { until, waitRestore } from '../../src/testing/wait.js';
import { vectors } from '../helpers.js';
import { Cluster, httpGet, metricSum, scrapeMetrics, type QuiverProcess } from '../../src/testing/cluster.js';

const skipReason = etcdUnavailableReason();
if (skipReason !== undefined) console.warn(`cluster tests skipped: ${skipReason}`);

const SEGMENTS = 42;
const ROWS_PER_SEGMENT = 10;

/** A collection `src` of SEGMENTS flushed segments (one flush each), snapshotted as `snap`. */
async function sourceWithSnapshot(cluster: Cluster, c: MilvusClient, segments = SEGMENTS): Promise<{ rows: string[]; collectionId: number }> {
  const dim = 4;
  await c.createCollection({
    collection_name: 'src',
    fields: [
      { name: 'id', data_type: DataType.Int64, is_primary_key: true },
      { name: 'title', data_type: DataType.VarChar, max_length: 32 },
      { name: 'v', data_type: DataType.FloatVector, dim },
    ],
  });
  const vs = vectors(segments * ROWS_PER_SEGMENT, dim, 7);
  for (let s = 0; s < segments; s++) {
    const data = Array.from({ length: ROWS_PER_SEGMENT }, (_, i) => {
      const id = s * ROWS_PER_SEGMENT + i;
      return { id, title: `t${id}`, v: vs[id]! };
    });
    const r = await c.insert({ collection_name: 'src', data });
    expect(r.status.error_code).toBe(ErrorCode.SUCCESS);
    await c.flushSync({ collection_names: ['src'] });
  }
  expect((await c.createSnapshot({ collection_name: 'src', snapshot_name: 'snap' })).error_code).toBe(ErrorCode.SUCCESS);
  const collectionId = Number((await c.describeCollection({ collection_name: 'src' })).collectionID);
  expect(await segmentCount(cluster, collectionId)).toBe(segments);
  expect((await c.loadCollectionSync({ collection_name: 'src' })).error_code).toBe(ErrorCode.SUCCESS);
  return { rows: await rowsOf(c, 'src'), collectionId };
}

/** Distinct segment ids under insert_log/{collection}/{partition}/{segment}/... */
async function segmentCount(cluster: Cluster, collectionId: number): Promise<number> {
  return new Set((await cluster.store.list(`insert_log/${collectionId}/`)).map((o) => o.key.split('/')[3])).size;
}

async function rowsOf(c: MilvusClient, collection: string): Promise<string[]> {
  const r = await c.query({ collection_name: collection, filter: 'id >= 0', output_fields: ['id', 'title'], limit: 16_384 });
  expect(r.status.error_code).toBe(ErrorCode.SUCCESS);
  return r.data.map((x) => `${String(x['id'])}:${String(x['title'])}`).sort((a, b) => parseInt(a) - parseInt(b));
}

async function restore(c: MilvusClient, target: string): Promise<string> {
  const r = await c.restoreSnapshot({ snapshot_name: 'snap', source_collection_name: 'src', target_collection_name: target });
  expect(r.status.error_code).toBe(ErrorCode.SUCCESS);
  return r.job_id;
}

/** Runs `quiver <args>` to its end. */
function runCli(args: readonly string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], { timeout: 30_000 }, (err, stdout, stderr) =>
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

async function completed(c: MilvusClient, jobId: string): Promise<void> {
  const info = await waitRestore(c, jobId, { timeoutMs: 120_000 });
  expect(info.state, info.reason).toBe('RestoreSnapshotCompleted');
}

async function tasksRun(node: QuiverProcess): Promise<number> {
  return metricSum(await scrapeMetrics(node.metricsAddress), 'quiver_datanode_tasks_total', { outcome: 'completed' });
}

/** Keys under a collection's binlog prefixes, with the collection id replaced (to compare source and target). */
async function filesOf(cluster: Cluster, collectionId: number): Promise<string[]> {
  const keys: string[] = [];
  for (const p of ['insert_log', 'delta_log', 'stats_log']) {
    for (const o of await cluster.store.list(`${p}/${collectionId}/`)) keys.push(o.key);
  }
  return keys;
}

const SERVE_ENV = {
  QUIVER_AUTO_COMPACTION: 'false',
  QUIVER_COPY_MAX_SEGMENTS_PER_TASK: '1',
  QUIVER_COPY_CHECK_INTERVAL_MS: '200',
};
/** `quiver serve --datanode-slots 0`: only the data nodes run copies. */
const SERVE = { args: ['--datanode-slots', '0'], env: SERVE_ENV };
/** A 2 s session lease, so that a lost node is noticed quickly. */
const NODE = { slots: 2, sessionTtlMs: 2_000 };

describe.skipIf(skipReason !== undefined)('restore on data nodes (multi-process)', () => {
  let cluster: Cluster;
  beforeEach(async () => {
    cluster = await Cluster.start();
    const c0 = cluster;
    onTestFailed(() => c0.printLogs());
  });
  afterEach(async () => {
    await cluster?.stop();
  });

  it('restores a 42-segment collection over 3 data nodes: the target equals the snapshot, every node ran tasks', async () => {
    const nodes = await Promise.all([cluster.datanode(NODE), cluster.datanode(NODE), cluster.datanode(NODE)]);
    const serve = await cluster.serve(SERVE);
    const c = serve.client;
    const { rows, collectionId } = await sourceWithSnapshot(cluster, c);
    const status = JSON.parse((await httpGet(serve.metricsAddress, '/cluster')).body) as { nodes: { nodeId: string; slotsTotal: number }[] };
    expect(status.nodes.map((n) => n.slotsTotal)).toEqual([2, 2, 2]);

    const jobId = await restore(c, 'back');
    await completed(c, jobId);
    expect((await c.loadCollectionSync({ collection_name: 'back' })).error_code).toBe(ErrorCode.SUCCESS);
    expect(await rowsOf(c, 'back')).toEqual(rows);
    const backId = Number((await c.describeCollection({ collection_name: 'back' })).collectionID);
    expect((await filesOf(cluster, backId)).length).toBe((await filesOf(cluster, collectionId)).length);
    expect(await segmentCount(cluster, backId)).toBe(await segmentCount(cluster, collectionId));

    // `quiver cluster status` renders the coordinator's view: the three nodes, live.
    const cli = await runCli(['cluster', 'status', '--metrics-address', serve.metricsAddress]);
    expect(cli.code, cli.stderr).toBe(0);
    for (const n of status.nodes) expect(cli.stdout).toContain(String(n.nodeId));
    expect(cli.stdout.match(/Healthy/g) ?? []).toHaveLength(3);

    const perNode = await Promise.all(nodes.map(tasksRun));
    for (const n of perNode) expect(n).toBeGreaterThan(0);
    expect(perNode.reduce((a, b) => a + b, 0)).toBeGreaterThanOrEqual(SEGMENTS);
    expect(serve.output()).not.toContain('"level":50');
  });
  it('kill -9 of a data node mid-restore: the job completes on the others, nothing extra in the target, nothing left for GC', async () => {
    const slow = { ...NODE, env: { QUIVER_FAULT_COPY_DELAY_MS: '250' } };
    const nodes = await Promise.all([cluster.datanode(slow), cluster.datanode(slow), cluster.datanode(slow)]);
    const serve = await cluster.serve({
      ...SERVE,
      env: { ...SERVE_ENV, QUIVER_GC_INTERVAL_MS: '300', QUIVER_GC_DROPPED_GRACE_MS: '0', QUIVER_GC_ORPHAN_GRACE_MS: '3000' },
    });
    const c = serve.client;
    const { rows, collectionId } = await sourceWithSnapshot(cluster, c);
    const jobId = await restore(c, 'back');
    const victim = nodes[1]!;
    await until(async () => (await tasksRun(victim)) > 0, { timeoutMs: 60_000 });
    await cluster.kill9(victim);
    await completed(c, jobId);
    expect(serve.output()).toContain('data node lost');
    expect((await c.loadCollectionSync({ collection_name: 'back' })).error_code).toBe(ErrorCode.SUCCESS);
    expect(await rowsOf(c, 'back')).toEqual(rows);
    const backId = Number((await c.describeCollection({ collection_name: 'back' })).collectionID);
    const expected = (await filesOf(cluster, collectionId)).length;
    // GC runs every 300 ms with a 3 s orphan grace (files being written are not orphans yet). After the
    // grace, once a dry run has nothing of the target to delete, every file under the target is one the
    // published segments list, and there are exactly as many as the source has.
    await new Promise((r) => setTimeout(r, 3_500));
    await until(async () => !(await httpGet(serve.metricsAddress, '/gc/dry-run')).body.includes(`/${backId}/`), { timeoutMs: 30_000 });
    expect((await filesOf(cluster, backId)).length).toBe(expected);
    expect(await rowsOf(c, 'back')).toEqual(rows);
  });

  it('kill -9 of serve mid-restore, then a restart: the job completes and no finished task runs again', async () => {
    const slow = { ...NODE, env: { QUIVER_FAULT_COPY_DELAY_MS: '250' } };
    const nodes = await Promise.all([cluster.datanode(slow), cluster.datanode(slow)]);
    let serve = await cluster.serve(SERVE);
    const { rows } = await sourceWithSnapshot(cluster, serve.client, 24);
    const jobId = await restore(serve.client, 'back');
    await until(async () => (await Promise.all(nodes.map(tasksRun))).reduce((a, b) => a + b, 0) >= 4, { timeoutMs: 60_000 });
    serve = await cluster.restart(serve);
    const c = serve.client;
    await completed(c, jobId);
    expect((await c.loadCollectionSync({ collection_name: 'back' })).error_code).toBe(ErrorCode.SUCCESS);
    expect(await rowsOf(c, 'back')).toEqual(rows);
    // One task per segment, each run exactly once: the restarted coordinator asked the nodes instead of re-dispatching.
    expect((await Promise.all(nodes.map(tasksRun))).reduce((a, b) => a + b, 0)).toBe(24);
  });

  it('a data node frozen past its lease, then resumed: its tasks ran elsewhere, it takes no more work and exits', async () => {
    const slow = { ...NODE, env: { QUIVER_FAULT_COPY_DELAY_MS: '250' } };
    const [frozen, other] = await Promise.all([cluster.datanode(slow), cluster.datanode(slow)]);
    const serve = await cluster.serve(SERVE);
    const c = serve.client;
    const { rows } = await sourceWithSnapshot(cluster, c, 24);
    const jobId = await restore(c, 'back');
    await until(async () => (await tasksRun(frozen!)) > 0, { timeoutMs: 60_000 });
    await cluster.pause(frozen!);
    // Past the 2 s lease: the coordinator sees the session expire and re-queues the frozen node's tasks.
    await until(() => serve.output().includes('data node lost'), { timeoutMs: 30_000 });
    cluster.resume(frozen!);
    expect(await frozen!.exited).toBe(3);
    expect(frozen!.output()).toContain('lost');
    await completed(c, jobId);
    expect((await c.loadCollectionSync({ collection_name: 'back' })).error_code).toBe(ErrorCode.SUCCESS);
    expect(await rowsOf(c, 'back')).toEqual(rows);
    expect(await tasksRun(other!)).toBeGreaterThan(0);
  });

  it('no data node at all: the job waits (state and reason visible), then runs when one registers', async () => {
    const serve = await cluster.serve(SERVE);
    const c = serve.client;
    const { rows } = await sourceWithSnapshot(cluster, c, 4);
    const jobId = await restore(c, 'back');
    type Status = { nodes: unknown[]; jobs: { jobId: string; state: string; reason?: string }[] };
    const status = async (): Promise<Status> => JSON.parse((await httpGet(serve.metricsAddress, '/cluster')).body) as Status;
    // Executing (tasks written) and the inspector has found no node for them.
    await until(async () => (await status()).jobs.some((j) => j.jobId === jobId && j.state === 'Executing' && j.reason !== undefined));
    const waiting = (await status()).jobs.find((j) => j.jobId === jobId)!;
    expect(waiting.reason).toMatch(/waiting for a data node with a free slot \(0 registered\)/);
    const info = await c.getRestoreSnapshotState({ job_id: jobId });
    expect(info.info?.state).toBe('RestoreSnapshotExecuting');
    expect(info.info?.reason).toMatch(/waiting for a data node/);
    await cluster.datanode(NODE);
    await completed(c, jobId);
    expect((await c.loadCollectionSync({ collection_name: 'back' })).error_code).toBe(ErrorCode.SUCCESS);
    expect(await rowsOf(c, 'back')).toEqual(rows);
  });
});
