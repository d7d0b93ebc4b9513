import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { FakeClock } from '../../common/clock.js';
import { isQuiverError } from '../../common/errors.js';
import { DataNodeTaskHost } from '../../datanode/remote/task-host.js';
import type { NodeSessionInfo } from '../../meta/sessions.js';
import { MemoryObjectStore } from '../../storage/memory-object-store.js';
import { copyPlanOf } from '../../storage/snapshot-format/segment-rewrite.js';
import { DataNodeTaskClient, serveDataNodeTasks, type QueryTaskResponse, type TaskServer } from '../../taskrpc/protocol.js';
import { until } from '../../testing/wait.js';
import {
  bytesOf,
  createJob,
  GatedObjectStore,
  harness,
  MemorySources,
  putSourceFiles,
  resolvedOf,
  SNAPSHOT,
  sourceSegment,
  TARGET_COLLECTION,
} from '../copy/copy.test-util.js';
import { TaskInspector } from '../copy/inspector.js';
import type { CopyTask } from '../copy/types.js';
import { CombinedWorkers, RemoteWorkerPool, remoteNodeId, type LiveDataNodes, type TaskRpc } from './remote-workers.js';

/** Data nodes served over real gRPC on loopback, each a `DataNodeTaskHost` over one shared memory store. */
class Cluster implements LiveDataNodes {
  live: NodeSessionInfo[] = [];
  readonly hosts = new Map<number, { host: DataNodeTaskHost; server: TaskServer; registry: Registry }>();
  readonly objects = new MemoryObjectStore({ clock: new FakeClock() });
  readonly sources: MemorySources;

  constructor(readonly segments: ReturnType<typeof sourceSegment>[]) {
    this.sources = new MemorySources(segments);
  }

  nodes() {
    return this.live.map((session) => ({ session, state: 'Healthy' as const }));
  }

  async start(nodeId: number, slots = 2): Promise<void> {
    const registry = new Registry();
    const host = new DataNodeTaskHost({ store: this.objects, clock: new FakeClock(), registry, sources: this.sources }, { nodeId, slots });
    const server = await serveDataNodeTasks(host, '127.0.0.1', 0);
    this.hosts.set(nodeId, { host, server, registry });
    this.live = [
      ...this.live,
      { nodeId, role: 'datanode', address: `127.0.0.1:${server.port}`, metricsAddress: '', slots, startedAtMs: 0, version: 'test' },
    ];
  }

  /** The node's session is gone (its process may still run, as after a SIGSTOP). */
  lose(nodeId: number): void {
    this.live = this.live.filter((n) => n.nodeId !== nodeId);
  }

  async close(): Promise<void> {
    for (const { host, server } of this.hosts.values()) {
      await server.close(0);
      await host.close();
    }
  }
}

let cluster: Cluster | undefined;
let pool: RemoteWorkerPool | undefined;
afterEach(async () => {
  pool?.close();
  await cluster?.close();
  cluster = pool = undefined;
});

async function setup(segmentCount: number, nodeIds: readonly number[]) {
  const segments = Array.from({ length: segmentCount }, (_, i) => sourceSegment(i + 1));
  cluster = new Cluster(segments);
  await putSourceFiles(cluster.objects, segments);
  for (const id of nodeIds) await cluster.start(id);
  pool = new RemoteWorkerPool({ live: cluster });
  const h = harness();
  const job = await createJob(
    h,
    segments.map((s) => ({ sourceSegmentId: s.id, targetSegmentId: s.id + 1_000, targetPartitionId: 201 })),
  );
  const tasks: CopyTask[] = [];
  for (const m of job.mappings) {
    tasks.push({
      id: await h.store.allocId(),
      jobId: job.id,
      state: 'Pending',
      snapshot: SNAPSHOT,
      targetCollectionId: TARGET_COLLECTION,
      mappings: [m],
      version: 0,
      attempts: 0,
      reason: '',
      results: [],
      createdAtMs: 0,
      updatedAtMs: 0,
    });
  }
  expect(await h.store.putTasksWhilePending(job.id, tasks)).toBe(true);
  expect(await h.store.updateJobInState(job.id, 'Pending', { state: 'Executing', startedAtMs: 0 })).toBe(true);
  const inspector = new TaskInspector({ store: h.store, workers: pool, clock: h.clock });
  return { h, jobId: job.id, inspector, segments, cluster, pool };
}

const allDone = async (h: ReturnType<typeof harness>, jobId: number) => (await h.store.listTasks(jobId)).every((t) => t.state === 'Completed');

describe('RemoteWorkerPool over the task protocol (real gRPC on loopback)', () => {
  it('spreads copy tasks over the live nodes by free slots; every file lands at its target key; each node counts its tasks', async () => {
    const { h, jobId, inspector, segments, cluster } = await setup(6, [1, 2, 3]);
    await until(async () => {
      await inspector.tick();
      return allDone(h, jobId);
    });
    const tasks = await h.store.listTasks(jobId);
    expect(new Set(tasks.map((t) => t.nodeId))).toEqual(new Set(['datanode-1', 'datanode-2', 'datanode-3']));
    for (const s of segments) for (const { src, dst } of copyPlanOf(resolvedOf(s))) expect(await cluster.objects.get(dst)).toEqual(bytesOf(src));
    for (const t of tasks) expect(t.results).toEqual([{ targetSegmentId: t.mappings[0]!.targetSegmentId, numRows: 10, filesCopied: 8 }]);
    let bytesReported = 0;
    for (const { registry } of cluster.hosts.values()) {
      const m = await registry.getSingleMetricAsString('quiver_datanode_tasks_total');
      expect(m).toMatch(/quiver_datanode_tasks_total\{type="copy_segment",outcome="completed"\} 2/);
      bytesReported += Number(/ (\d+)$/m.exec(await registry.getSingleMetricAsString('quiver_datanode_bytes_copied_total'))![1]);
    }
    let bytesCopied = 0;
    for (const s of segments) for (const { src } of copyPlanOf(resolvedOf(s))) bytesCopied += bytesOf(src).byteLength;
    expect(bytesReported).toBe(bytesCopied);
  });

  it('re-queues the tasks of a node whose session is lost; its late answers are ignored (fencing)', async () => {
    const { h, jobId, inspector, cluster, pool } = await setup(4, [1]);
    await inspector.tick(); // two tasks on node 1 (2 slots)
    const onFirst = (await h.store.listTasks(jobId)).filter((t) => t.state === 'InProgress');
    expect(onFirst).toHaveLength(2);
    cluster.lose(1);
    await cluster.start(2);
    await until(async () => {
      await inspector.tick();
      return allDone(h, jobId);
    });
    for (const t of await h.store.listTasks(jobId)) expect(t.nodeId).toBe('datanode-2');
    for (const t of onFirst) {
      const now = (await h.store.listTasks(jobId)).find((x) => x.id === t.id)!;
      expect(now.version).toBe(t.version + 1);
      // Node 1 still answers about the old version; the pool no longer even asks it.
      await expect(pool.poll(remoteNodeId(1), t.id, now.version)).rejects.toThrow(/not live/);
    }
  });

  it('a node answers UNKNOWN for a version it never got, refuses another node id, and refuses a cancelled task', async () => {
    const { cluster, pool } = await setup(1, [7]);
    const node = cluster.hosts.get(7)!.host;
    expect(await pool.poll(remoteNodeId(7), 12345, 3)).toEqual({ state: 'Unknown' });
    const err = await node.createTask({ node_id: 8, task_id: 1, version: 1, type: 'COPY_SEGMENT', copy_segment: null }).catch((e: unknown) => e);
    expect(isQuiverError(err) && !err.retriable).toBe(true);
    await pool.cancel(remoteNodeId(7), 55);
    const t: CopyTask = {
      id: 55,
      jobId: 1,
      state: 'InProgress',
      snapshot: SNAPSHOT,
      targetCollectionId: TARGET_COLLECTION,
      mappings: [{ sourceSegmentId: 1, targetSegmentId: 1001, targetPartitionId: 201 }],
      version: 1,
      attempts: 1,
      reason: '',
      results: [],
      createdAtMs: 0,
      updatedAtMs: 0,
    };
    await expect(pool.dispatch(remoteNodeId(7), t)).rejects.toThrow(/cancelled/);
  });

  it('a transport error on dispatch is not a loss: the poll decides (UNKNOWN re-queues, nothing runs twice)', async () => {
    const { h, jobId, inspector, cluster } = await setup(2, [1]);
    const addr = cluster.live[0]!.address;
    // Node 1's address points at a closed port for the first dispatches: the calls fail in transport.
    cluster.live = [{ ...cluster.live[0]!, address: '127.0.0.1:1' }];
    await inspector.tick();
    const dispatched = await h.store.listTasks(jobId);
    expect(dispatched.every((t) => t.state === 'InProgress' && t.nodeId === 'datanode-1')).toBe(true);
    cluster.live = [{ ...cluster.live[0]!, address: addr }];
    await until(async () => {
      await inspector.tick();
      return allDone(h, jobId);
    });
    for (const t of await h.store.listTasks(jobId)) expect(t.attempts).toBe(2);
  });

  it('long poll: QueryTask with wait_ms holds IN_PROGRESS until the copy finishes (no clock moved), or until wait_ms passed', async () => {
    const segments = [sourceSegment(1), sourceSegment(2)];
    const objects = new MemoryObjectStore({ clock: new FakeClock() });
    await putSourceFiles(objects, segments);
    const gated = new GatedObjectStore(objects, 0);
    const clock = new FakeClock();
    const host = new DataNodeTaskHost({ store: gated, clock, registry: new Registry(), sources: new MemorySources(segments) }, { nodeId: 9, slots: 2 });
    const server = await serveDataNodeTasks(host, '127.0.0.1', 0);
    const rpc = new DataNodeTaskClient(`127.0.0.1:${server.port}`);
    try {
      for (const seg of [1, 2]) {
        await rpc.createTask({
          node_id: 9,
          task_id: seg,
          version: 1,
          type: 'COPY_SEGMENT',
          copy_segment: {
            source_collection_id: SNAPSHOT.collectionId,
            snapshot_id: SNAPSHOT.snapshotId,
            target_collection_id: TARGET_COLLECTION,
            mappings: [{ source_segment_id: seg, target_segment_id: seg + 1_000, target_partition_id: 201 }],
          },
        });
      }
      expect((await rpc.queryTask({ node_id: 9, task_id: 1, version: 1 })).state).toBe('IN_PROGRESS'); // no wait_ms: at once
      let held: QueryTaskResponse | undefined;
      const first = rpc.queryTask({ node_id: 9, task_id: 1, version: 1, wait_ms: 60_000 }).then((r) => (held = r));
      const second = rpc.queryTask({ node_id: 9, task_id: 2, version: 1, wait_ms: 1_000 });
      await until(() => clock.sleeping() === 2, { what: 'both queries held on the node' });
      clock.advance(1_000);
      expect((await second).state).toBe('IN_PROGRESS'); // its wait passed, the copy still runs
      expect(held).toBeUndefined();
      gated.open(); // the copies finish: the first query is answered at once, its 60 s never pass on the clock
      expect((await first).state).toBe('COMPLETED');
      expect(held!.copied_segments).toEqual([{ target_segment_id: 1_001, num_rows: 10, files_copied: 8 }]);
      await host.idle();
      // A finished task is answered at once, wait or not; so is every query once the node stops serving.
      expect((await rpc.queryTask({ node_id: 9, task_id: 2, version: 1, wait_ms: 60_000 })).state).toBe('COMPLETED');
      expect(clock.sleeping()).toBe(0);
    } finally {
      rpc.close();
      host.endLongPolls();
      await server.close(0);
      await host.close();
    }
  });

  it("a watcher's final answer is the inspector's next poll; a watched running task costs no QueryTask", async () => {
    const calls: { waitMs: number }[] = [];
    let finish!: (r: QueryTaskResponse) => void;
    const rpc: TaskRpc = {
      createTask: async () => {},
      queryTask: (req) => {
        calls.push({ waitMs: req.wait_ms ?? 0 });
        if ((req.wait_ms ?? 0) > 0) return new Promise<QueryTaskResponse>((r) => (finish = r)); // held until the copy ends
        return Promise.resolve({ state: 'COMPLETED', version: req.version, reason: 'asked', copied_segments: [] } as QueryTaskResponse);
      },
      dropTask: async () => {},
      querySlots: async () => ({ slots_total: 2, slots_used: 0, tasks: [] }) as never,
      close: () => {},
    };
    const live: NodeSessionInfo[] = [{ nodeId: 3, role: 'datanode', address: '127.0.0.1:9', metricsAddress: '', slots: 2, startedAtMs: 0, version: 't' }];
    let kicks = 0;
    const p = new RemoteWorkerPool({
      live: { nodes: () => live.map((session) => ({ session, state: 'Healthy' as const })) },
      connect: () => rpc,
      onTaskFinished: () => kicks++,
    });
    try {
      const t: CopyTask = {
        id: 5,
        jobId: 1,
        state: 'InProgress',
        snapshot: SNAPSHOT,
        targetCollectionId: TARGET_COLLECTION,
        mappings: [],
        version: 2,
        attempts: 1,
        reason: '',
        results: [],
        createdAtMs: 0,
        updatedAtMs: 0,
      };
      await p.dispatch('datanode-3', t);
      await until(() => calls.length === 1, { what: 'the watcher asked' });
      expect(calls[0]!.waitMs).toBeGreaterThan(0);
      // Running and watched: answered without a call.
      expect(await p.poll('datanode-3', 5, 2)).toEqual({ state: 'InProgress', version: 2 });
      expect(calls).toHaveLength(1);
      finish({ state: 'FAILED', version: 2, reason: 'disk full', copied_segments: [] } as QueryTaskResponse);
      await until(() => kicks === 1, { what: 'the watcher kicked' });
      // The watcher's answer, once, without a call; after that the node is asked again.
      expect(await p.poll('datanode-3', 5, 2)).toEqual({ state: 'Failed', reason: 'disk full', version: 2 });
      expect(calls).toHaveLength(1);
      expect(await p.poll('datanode-3', 5, 2)).toMatchObject({ state: 'Completed', version: 2 });
      expect(calls).toHaveLength(2);
      // A heard answer is not handed out for another version, and not once its node is gone.
      await p.dispatch('datanode-3', { ...t, version: 3 });
      await until(() => calls.length === 3, { what: 'the watcher of version 3 asked' });
      finish({ state: 'COMPLETED', version: 3, reason: '', copied_segments: [] } as QueryTaskResponse);
      await until(() => kicks === 2, { what: 'the second kick' });
      live.length = 0;
      p.nodes(); // the membership is read: the gone node's answers are dropped
      await expect(p.poll('datanode-3', 5, 3)).rejects.toThrow(/not live/);
    } finally {
      p.close();
    }
  });

  it('CombinedWorkers routes remote ids to the remote pool and the rest to the local one', async () => {
    const { cluster, pool } = await setup(1, [4]);
    const local = {
      nodes: () => [{ nodeId: 'node-1', slots: 1, usedSlots: 0 }],
      dispatch: async () => {},
      poll: async () => ({ state: 'Unknown' as const }),
      cancel: async () => {},
    };
    const both = new CombinedWorkers(local, pool);
    expect(both.nodes().map((n) => n.nodeId)).toEqual(['node-1', 'datanode-4']);
    expect(await both.poll('datanode-4', 1, 1)).toEqual({ state: 'Unknown' });
    expect(cluster.live).toHaveLength(1);
  });
});
