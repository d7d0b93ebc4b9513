import { describe, expect, it } from 'vitest';
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

function setup(opts: { taskTimeoutMs?: number; jobTimeoutMs?: number; attemptsMax?: number } = {}) {
  const kv = new MemoryMetaKV();
  const store = new NodeTaskStore(kv);
  const nodes = new FakeNodes(store);
  const clock = new FakeClock();
  let next = 100;
  const d = new NodeTaskDispatcher(
    { store, nodes, ids: { alloc: async () => next++ }, clock, log: silentLogger },
    { taskTimeoutMs: opts.taskTimeoutMs ?? 10_000, jobTimeoutMs: opts.jobTimeoutMs ?? 100_000, attemptsMax: opts.attemptsMax ?? 3, tickIntervalMs: 1_000 },
  );
  return { kv, store, nodes, clock, d };
}

describe('NodeTaskDispatcher', () => {
  it('persists node and version before dispatching, and completes on the answer for that version', async () => {
    const { store, nodes, d } = setup();
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

  it('waits for a node and says why, then dispatches when one registers', async () => {
    const { nodes, d } = setup();
    const id = await d.submit(BUILD);
    await d.tick();
    expect(d.task(id)).toMatchObject({ state: 'Waiting', reason: 'waiting for a data node to register' });
    nodes.live.set('datanode-4', { slots: 2, usedSlots: 0 });
    await d.tick();
    expect(d.task(id)).toMatchObject({ state: 'Dispatched', nodeId: 'datanode-4' });
  });

  it('keeps the task on a transient poll error and re-dispatches on confirmed loss (UNKNOWN)', async () => {
    const { nodes, d } = setup();
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
    const { nodes, d } = setup();
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
    const { nodes, clock, d, store } = setup({ taskTimeoutMs: 5_000, attemptsMax: 2 });
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
    const { clock, d } = setup({ jobTimeoutMs: 60_000 });
    const id = await d.submit(BUILD);
    await d.tick();
    clock.advance(60_001);
    await d.tick();
    const o = await d.wait(id);
    expect(o.state === 'Failed' && o.reason).toMatch(/timed out waiting for a data node .*job timeout/);
  });

  it('puts a refused dispatch back to Waiting without counting an attempt', async () => {
    const { nodes, d } = setup();
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
    const { nodes, d } = setup();
    nodes.live.set('datanode-1', { slots: 1, usedSlots: 0 });
    const id = await d.submit(BUILD);
    await d.tick();
    nodes.answer.set('datanode-1', (_t, v) => ({ state: 'FAILED', version: v, reason: 'segment 20 is Dropped', copied_segments: [] }));
    await d.tick();
    const o = await d.wait(id);
    expect(o.state === 'Failed' && o.reason).toMatch(/failed on data node datanode-1: segment 20 is Dropped/);
  });

  it('spreads tasks over nodes by free slots and does not over-fill a node', async () => {
    const { nodes, d } = setup();
    nodes.live.set('datanode-1', { slots: 1, usedSlots: 0 });
    nodes.live.set('datanode-2', { slots: 1, usedSlots: 0 });
    const ids = [await d.submit(BUILD), await d.submit(BUILD), await d.submit(BUILD)];
    await d.tick();
    expect(ids.map((id) => d.task(id)?.nodeId).sort()).toEqual(['', 'datanode-1', 'datanode-2']);
    expect(d.slots()).toEqual({ total: 2, free: 0 });
  });

  it('init drops the runs a previous coordinator left and deletes their records', async () => {
    const a = setup();
    a.nodes.live.set('datanode-1', { slots: 1, usedSlots: 0 });
    const id = await a.d.submit(BUILD);
    await a.d.tick();
    // A new coordinator over the same metadata.
    let next = 500;
    const d2 = new NodeTaskDispatcher(
      { store: a.store, nodes: a.nodes, ids: { alloc: async () => next++ }, clock: a.clock, log: silentLogger },
      { taskTimeoutMs: 1, jobTimeoutMs: 1, attemptsMax: 1, tickIntervalMs: 1_000 },
    );
    await d2.init();
    expect(a.nodes.dropped).toEqual([{ nodeId: 'datanode-1', taskId: id }]);
    expect(await a.store.list()).toEqual([]);
  });
});
