import { describe, expect, it } from 'vitest';
import { until } from '../../testing/wait.js';
import { FakeClock } from '../../common/clock.js';
import { quiverError } from '../../common/errors.js';
import { MemoryMetaKV } from '../../meta/memory-kv.js';
import type { CreateTaskRequest, QueryTaskResponse } from '../../taskrpc/protocol.js';
import { silentLogger, type WorkerNodeInfo } from '../copy/types.js';
import { NodeTaskDispatcher, type TaskNodes } from './node-task-dispatcher.js';
import { NodeTaskStore, type NodeTaskRecord } from './node-task-store.js';
import type { TaskRpc } from './remote-workers.js';

const PARAMS = { collectionId: 10, segmentId: 20, indexId: 30 };
const BUILD = { type: 'index-build' as const, params: PARAMS };

/** Scripted data nodes: each remembers the runs it was given and answers what the test says. */
class FakeNodes implements TaskNodes {
  readonly live = new Map<string, { slots: number; usedSlots: number }>();
  readonly created: { nodeId: string; req: CreateTaskRequest; stored: NodeTaskRecord | undefined }[] = [];
  readonly dropped: { nodeId: string; taskId: number }[] = [];
  /** Answer per node (default: IN_PROGRESS for the version it got). */
  answer = new Map<string, (taskId: number, version: number) => QueryTaskResponse | Error>();
  refuse = new Set<string>();
  /** The wait_ms of every QueryTask asked. */
  readonly waits: number[] = [];

  constructor(readonly store: NodeTaskStore) {}

  nodes(): readonly WorkerNodeInfo[] {
    return [...this.live].map(([nodeId, n]) => ({ nodeId, slots: n.slots, usedSlots: n.usedSlots }));
  }

  client(nodeId: string): { session: number; rpc: TaskRpc } {
    if (!this.live.has(nodeId)) throw quiverError('ServiceNotReady', `data node ${nodeId} is not live`);
    const rpc: TaskRpc = {
      createTask: async (req) => {
        const stored = (await this.store.list()).find((r) => r.id === req.task_id);
        this.created.push({ nodeId, req, stored });
        if (this.refuse.has(nodeId)) throw quiverError('ParameterInvalid', `data node ${nodeId} is full`);
      },
      queryTask: async (req) => {
        this.waits.push(req.wait_ms ?? 0);
        const a = this.answer.get(nodeId)?.(req.task_id, req.version);
        if (a instanceof Error) throw a;
        if (a !== undefined) return a;
        const ran = this.created.some((c) => c.nodeId === nodeId && c.req.task_id === req.task_id && c.req.version === req.version);
        return ran
          ? { state: 'IN_PROGRESS', version: req.version, reason: '', copied_segments: [] }
          : { state: 'UNKNOWN', version: 0, reason: '', copied_segments: [] };
      },
      dropTask: async (req) => {
        this.dropped.push({ nodeId, taskId: req.task_id });
      },
      querySlots: () => Promise.reject(new Error('not used')),
      close: () => {},
    };
    return { session: 1, rpc };
  }
}

function completed(version: number, buildId: number): QueryTaskResponse {
  return {
    state: 'COMPLETED',
    version,
    reason: '',
    copied_segments: [],
    built_index: {
      index_id: PARAMS.indexId,
      build_id: buildId,
      index_version: version,
      files: [`index_files/${buildId}/${version}/1/20/hnsw.qvx`],
      size: 7,
      rows: 3,
    },
  };
}

async function setup(
  opts: {
    taskTimeoutMs?: number;
    jobTimeoutMs?: number;
    attemptsMax?: number;
    unclaimedTimeoutMs?: number;
    tickIntervalMs?: number;
    longPollMs?: number;
  } = {},
) {
  const kv = new MemoryMetaKV();
  const store = new NodeTaskStore(kv);
  const nodes = new FakeNodes(store);
  const clock = new FakeClock();
  let next = 100;
  const d = new NodeTaskDispatcher(
    { store, nodes, ids: { alloc: async () => next++ }, clock, log: silentLogger },
    {
      taskTimeoutMs: opts.taskTimeoutMs ?? 10_000,
      jobTimeoutMs: opts.jobTimeoutMs ?? 100_000,
      attemptsMax: opts.attemptsMax ?? 3,
      tickIntervalMs: opts.tickIntervalMs ?? 1_000,
      longPollMs: opts.longPollMs,
    },
  );
  await d.init();
  return { kv, store, nodes, clock, d };
}

describe('NodeTaskDispatcher', () => {
  it('persists node and version before dispatching, and completes on the answer for that version', async () => {
    const { store, nodes, d } = await setup();
    nodes.live.set('datanode-1', { slots: 1, usedSlots: 0 });
    const id = await d.submit(BUILD);
    await d.tick();
    expect(nodes.created).toHaveLength(1);
    const c = nodes.created[0]!;
    expect(c.req).toMatchObject({ task_id: id, version: 1, type: 'INDEX_BUILD', index_build: { collection_id: 10, segment_id: 20, index_id: 30 } });
    expect(c.stored).toMatchObject({ state: 'Dispatched', nodeId: 'datanode-1', version: 1 });
    await d.tick();
    expect(d.outcome(id)).toBeUndefined();
    nodes.answer.set('datanode-1', (taskId, v) => completed(v, taskId));
    await d.tick();
    const o = await d.wait(id);
    expect(o).toMatchObject({ state: 'Completed', built: { build_id: id, index_version: 1 } });
    expect(await store.list()).toEqual([]);
  });

  it('a watcher long-polls the dispatched run and collects it the moment it ends, not at the next tick', async () => {
    // The fallback tick is an hour: only the start pass, the submit's kick and the watcher's kick run passes.
    const { nodes, clock, d } = await setup({ tickIntervalMs: 3_600_000, longPollMs: 2_000 });
    nodes.live.set('datanode-1', { slots: 1, usedSlots: 0 });
    d.start();
    try {
      const id = await d.submit(BUILD);
      await until(() => nodes.waits.includes(2_000), { what: 'the watcher asked with wait_ms' });
      expect(d.outcome(id)).toBeUndefined();
      // The node (which here answers at once) finishes: the watcher's next question hears it and kicks.
      nodes.answer.set('datanode-1', (_t, v) => completed(v, id));
      await until(() => clock.sleeping() > 0, { what: 'the watcher waiting out its least interval' });
      clock.advance(100);
      expect(await d.wait(id)).toMatchObject({ state: 'Completed', built: { build_id: id } });
    } finally {
      await d.stop();
    }
  });

  it('longPollMs 0: no watcher, the passes alone poll (without wait_ms)', async () => {
    const { nodes, d } = await setup({ longPollMs: 0 });
    nodes.live.set('datanode-1', { slots: 1, usedSlots: 0 });
    const id = await d.submit(BUILD);
    await d.tick();
    await d.tick();
    nodes.answer.set('datanode-1', (_t, v) => completed(v, id));
    await d.tick();
    expect(d.outcome(id)).toMatchObject({ state: 'Completed' });
    expect(nodes.waits.every((w) => w === 0)).toBe(true);
  });

  it('waits for a node and says why, then dispatches when one registers', async () => {
    const { nodes, d } = await setup();
    const id = await d.submit(BUILD);
    await d.tick();
    expect(d.task(id)).toMatchObject({ state: 'Waiting', reason: 'waiting for a data node to register' });
    nodes.live.set('datanode-4', { slots: 2, usedSlots: 0 });
    await d.tick();
    expect(d.task(id)).toMatchObject({ state: 'Dispatched', nodeId: 'datanode-4' });
  });

  it('keeps the task on a transient poll error and re-dispatches on confirmed loss (UNKNOWN)', async () => {
    const { nodes, d } = await setup();
    nodes.live.set('datanode-1', { slots: 1, usedSlots: 0 });
    const id = await d.submit(BUILD);
    await d.tick();
    nodes.answer.set('datanode-1', () => quiverError('ServiceNotReady', 'connection reset'));
    await d.tick();
    await d.tick();
    expect(d.task(id)).toMatchObject({ state: 'Dispatched', version: 1, attempts: 0 });
    nodes.answer.set('datanode-1', () => ({ state: 'UNKNOWN', version: 0, reason: '', copied_segments: [] }));
    await d.tick();
    expect(d.task(id)).toMatchObject({ state: 'Waiting', attempts: 1 });
    nodes.answer.delete('datanode-1');
    await d.tick();
    expect(d.task(id)).toMatchObject({ state: 'Dispatched', version: 2 });
  });

  it('ignores a late answer about an older version (fencing)', async () => {
    const { nodes, d } = await setup();
    nodes.live.set('datanode-1', { slots: 1, usedSlots: 0 });
    const id = await d.submit(BUILD);
    await d.tick();
    // Node 1 loses its session (frozen past its lease); node 2 gets version 2.
    nodes.live.delete('datanode-1');
    nodes.live.set('datanode-2', { slots: 1, usedSlots: 0 });
    await d.tick();
    await d.tick();
    expect(d.task(id)).toMatchObject({ state: 'Dispatched', nodeId: 'datanode-2', version: 2 });
    // Node 2 is asked about version 2 but answers about version 1 (a stale run): ignored.
    nodes.answer.set('datanode-2', (taskId) => completed(1, taskId));
    await d.tick();
    expect(d.outcome(id)).toBeUndefined();
    nodes.answer.set('datanode-2', (taskId, v) => completed(v, taskId));
    await d.tick();
    expect(await d.wait(id)).toMatchObject({ state: 'Completed', built: { index_version: 2 } });
  });

  it('drops a run over the task timeout, re-dispatches, and fails after the last attempt naming task and node', async () => {
    const { nodes, clock, d, store } = await setup({ taskTimeoutMs: 5_000, attemptsMax: 2 });
    nodes.live.set('datanode-1', { slots: 1, usedSlots: 0 });
    const id = await d.submit(BUILD);
    await d.tick();
    clock.advance(5_001);
    await d.tick();
    expect(nodes.dropped).toEqual([{ nodeId: 'datanode-1', taskId: id }]);
    expect(d.task(id)).toMatchObject({ state: 'Waiting', attempts: 1 });
    await d.tick();
    expect(d.task(id)).toMatchObject({ state: 'Dispatched', version: 2 });
    clock.advance(5_001);
    await d.tick();
    const o = await d.wait(id);
    expect(o.state).toBe('Failed');
    expect(o.state === 'Failed' && o.reason).toMatch(new RegExp(`index-build task ${id} .*timed out on data node datanode-1 .*2 attempts`));
    expect(await store.list()).toEqual([]);
  });

  it('fails a task still waiting for a node at the job timeout', async () => {
    const { clock, d } = await setup({ jobTimeoutMs: 60_000 });
    const id = await d.submit(BUILD);
    await d.tick();
    clock.advance(60_001);
    await d.tick();
    const o = await d.wait(id);
    expect(o.state === 'Failed' && o.reason).toMatch(/timed out waiting for a data node .*job timeout/);
  });

  it('puts a refused dispatch back to Waiting without counting an attempt', async () => {
    const { nodes, d } = await setup();
    nodes.live.set('datanode-1', { slots: 1, usedSlots: 0 });
    nodes.refuse.add('datanode-1');
    const id = await d.submit(BUILD);
    await d.tick();
    expect(d.task(id)).toMatchObject({ state: 'Waiting', attempts: 0, version: 1 });
    expect(d.task(id)?.reason).toMatch(/refused by data node datanode-1/);
    nodes.refuse.clear();
    await d.tick();
    expect(d.task(id)).toMatchObject({ state: 'Dispatched', version: 2 });
  });

  it('fails on a node-side failure with its reason', async () => {
    const { nodes, d } = await setup();
    nodes.live.set('datanode-1', { slots: 1, usedSlots: 0 });
    const id = await d.submit(BUILD);
    await d.tick();
    nodes.answer.set('datanode-1', (_t, v) => ({ state: 'FAILED', version: v, reason: 'segment 20 is Dropped', copied_segments: [] }));
    await d.tick();
    const o = await d.wait(id);
    expect(o.state === 'Failed' && o.reason).toMatch(/failed on data node datanode-1: segment 20 is Dropped/);
  });

  it('spreads tasks over nodes by free slots and does not over-fill a node', async () => {
    const { nodes, d } = await setup();
    nodes.live.set('datanode-1', { slots: 1, usedSlots: 0 });
    nodes.live.set('datanode-2', { slots: 1, usedSlots: 0 });
    const ids = [await d.submit(BUILD), await d.submit(BUILD), await d.submit(BUILD)];
    await d.tick();
    expect(ids.map((id) => d.task(id)?.nodeId).sort()).toEqual(['', 'datanode-1', 'datanode-2']);
    expect(d.slots()).toEqual({ total: 2, free: 0 });
  });

  /** A second coordinator over the same metadata and nodes (the first one was killed). */
  async function restarted(a: Awaited<ReturnType<typeof setup>>, unclaimedTimeoutMs = 60_000) {
    let next = 500;
    const d2 = new NodeTaskDispatcher(
      { store: a.store, nodes: a.nodes, ids: { alloc: async () => next++ }, clock: a.clock, log: silentLogger },
      { taskTimeoutMs: 10_000, jobTimeoutMs: 100_000, attemptsMax: 3, tickIntervalMs: 1_000, unclaimedTimeoutMs },
    );
    await d2.init();
    return d2;
  }

  it('after a restart, re-attaches to a run still going on its node: same version, no second dispatch, claimed by the same work', async () => {
    const a = await setup();
    a.nodes.live.set('datanode-1', { slots: 1, usedSlots: 0 });
    const id = await a.d.submit(BUILD);
    await a.d.tick();
    expect(a.nodes.created).toHaveLength(1);
    const d2 = await restarted(a);
    await d2.tick();
    await d2.tick();
    // Still running there (IN_PROGRESS for version 1): nothing dispatched again, nothing dropped.
    expect(a.nodes.created).toHaveLength(1);
    expect(a.nodes.dropped).toEqual([]);
    expect(d2.task(id)).toMatchObject({ state: 'Dispatched', nodeId: 'datanode-1', version: 1 });
    expect(await d2.holds(BUILD)).toBe(true);
    // The scheduler asks for the same build again: it gets the adopted task, not a new one.
    expect(await d2.submit(BUILD)).toBe(id);
    expect(await d2.holds(BUILD)).toBe(false);
    a.nodes.answer.set('datanode-1', (taskId, v) => completed(v, taskId));
    await d2.tick();
    expect(await d2.wait(id)).toMatchObject({ state: 'Completed', built: { build_id: id, index_version: 1 } });
    expect(a.nodes.created).toHaveLength(1);
    expect(await a.store.list()).toEqual([]);
  });

  it('after a restart, collects a run that finished meanwhile, and keeps it for a claim that comes later', async () => {
    const a = await setup();
    a.nodes.live.set('datanode-1', { slots: 1, usedSlots: 0 });
    const id = await a.d.submit(BUILD);
    await a.d.tick();
    a.nodes.answer.set('datanode-1', (taskId, v) => completed(v, taskId));
    const d2 = await restarted(a);
    await d2.tick();
    expect(d2.outcome(id)).toMatchObject({ state: 'Completed' });
    expect(await a.store.list()).toEqual([]);
    expect(await d2.submit(BUILD)).toBe(id);
    expect(await d2.wait(id)).toMatchObject({ state: 'Completed', built: { build_id: id, index_version: 1 } });
    expect(a.nodes.created).toHaveLength(1);
  });

  it('after a restart, re-dispatches only on confirmed loss (UNKNOWN or session gone), not on a transient error', async () => {
    const a = await setup();
    a.nodes.live.set('datanode-1', { slots: 1, usedSlots: 0 });
    const id = await a.d.submit(BUILD);
    await a.d.tick();
    const d2 = await restarted(a);
    a.nodes.answer.set('datanode-1', () => quiverError('ServiceNotReady', 'connection reset'));
    await d2.tick();
    expect(d2.task(id)).toMatchObject({ state: 'Dispatched', version: 1, attempts: 0 });
    // The node restarted meanwhile (knows nothing): confirmed loss, re-dispatched under version 2.
    a.nodes.answer.set('datanode-1', () => ({ state: 'UNKNOWN', version: 0, reason: '', copied_segments: [] }));
    await d2.tick();
    expect(d2.task(id)).toMatchObject({ state: 'Waiting', attempts: 1 });
    a.nodes.answer.delete('datanode-1');
    await d2.tick();
    expect(d2.task(id)).toMatchObject({ state: 'Dispatched', version: 2 });
    expect(a.nodes.created.map((c) => c.req.version)).toEqual([1, 2]);
  });

  it('after a restart, drops an adopted run nobody claims within the unclaimed timeout; Waiting records are deleted', async () => {
    const a = await setup();
    a.nodes.live.set('datanode-1', { slots: 1, usedSlots: 0 });
    const running = await a.d.submit(BUILD);
    await a.d.tick();
    const waiting = await a.d.submit({ type: 'index-build', params: { ...PARAMS, segmentId: 21 } });
    const d2 = await restarted(a, 30_000);
    expect(d2.task(waiting)).toBeUndefined();
    expect((await a.store.list()).map((r) => r.id)).toEqual([running]);
    await d2.tick();
    expect(d2.task(running)).toMatchObject({ state: 'Dispatched' });
    a.clock.advance(30_001);
    await d2.tick();
    expect(d2.task(running)).toBeUndefined();
    expect(a.nodes.dropped).toEqual([{ nodeId: 'datanode-1', taskId: running }]);
    expect(await a.store.list()).toEqual([]);
    // The same build asked for now is a new task.
    expect(await d2.submit(BUILD)).not.toBe(running);
  });

  it('claims a merge by its inputs, not by the target id or output keys the new coordinator chose', async () => {
    const merge = (target: number, buildId: number) => ({
      type: 'compaction-merge' as const,
      params: {
        collection_id: 10,
        source_segment_ids: [1, 2],
        target_segment_id: target,
        fields: [{ field_id: 100, kind: 'int64', output_key: `insert_log/10/1/${target}/100/${target * 10}` }],
        sources: [
          { binlogs: { '100': 'insert_log/10/1/1/100/5' }, keep_ranges: [0, 3] },
          { binlogs: { '100': 'insert_log/10/1/2/100/6' }, keep_ranges: [1, 2] },
        ],
        partition_id: 1,
        indexes: [{ index_id: 30, build_id: buildId }],
      },
    });
    const a = await setup();
    a.nodes.live.set('datanode-1', { slots: 1, usedSlots: 0 });
    const id = await a.d.submit(merge(7, 70));
    await a.d.tick();
    const d2 = await restarted(a);
    // Other kept rows: other work.
    const other = merge(8, 80);
    expect(
      await d2.holds({ ...other, params: { ...other.params, sources: [other.params.sources[0]!, { ...other.params.sources[1]!, keep_ranges: [0, 2] }] } }),
    ).toBe(false);
    expect(await d2.submit(merge(9, 90))).toBe(id);
    expect(d2.task(id)).toMatchObject({ params: { target_segment_id: 7, indexes: [{ build_id: 70 }] } });
  });
});
