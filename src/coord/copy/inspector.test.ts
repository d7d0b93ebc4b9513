import { describe, expect, it, vi } from 'vitest';
import { createJob, FakeWorkers, harness, mappings, resultsFor, SNAPSHOT, TARGET_COLLECTION, type Harness } from './copy.test-util.js';
import { CopyJobStore } from './copy-job-store.js';
import { TaskInspector } from './inspector.js';
import type { CopyTask, WorkerNodeInfo } from './types.js';

/** A job already Executing with `count` single-segment Pending tasks. */
async function executingJob(h: Harness, count: number, firstSegmentId = 1): Promise<{ jobId: number; tasks: CopyTask[] }> {
  const job = await createJob(h, mappings(count, firstSegmentId));
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
  return { jobId: job.id, tasks };
}

function setup(nodes?: readonly WorkerNodeInfo[], maxDispatchAttempts?: number) {
  const h = harness();
  const workers = new FakeWorkers(nodes);
  let doneKicks = 0;
  const inspector = new TaskInspector({ store: h.store, workers, clock: h.clock, onTaskDone: () => doneKicks++, maxDispatchAttempts });
  return { h, workers, inspector, doneKicks: () => doneKicks };
}

const byId = async (h: Harness, jobId: number): Promise<Map<number, CopyTask>> => new Map((await h.store.listTasks(jobId)).map((t) => [t.id, t]));

describe('TaskInspector', () => {
  it('(1) dispatches Pending tasks oldest first: nodeId set, version and attempts incremented', async () => {
    const { h, workers, inspector, doneKicks } = setup();
    const { jobId, tasks } = await executingJob(h, 2);
    await inspector.tick();
    expect(workers.dispatched.map((d) => [d.nodeId, d.task.id, d.task.version])).toEqual([
      ['node-1', tasks[0]!.id, 1],
      ['node-1', tasks[1]!.id, 1],
    ]);
    for (const t of await h.store.listTasks(jobId)) {
      expect(t).toMatchObject({ state: 'InProgress', nodeId: 'node-1', version: 1, attempts: 1, updatedAtMs: h.clock.nowMs() });
    }
    expect(workers.dispatched[0]!.task.state).toBe('InProgress');
    expect(doneKicks()).toBe(0);
    await inspector.tick(); // nothing new: polls say InProgress
    expect(workers.dispatched).toHaveLength(2);
  });

  it('respects slots: never more InProgress tasks on a node than it has slots, counting what it already runs', async () => {
    const { h, workers, inspector } = setup([
      { nodeId: 'a', slots: 2, usedSlots: 0 },
      { nodeId: 'b', slots: 3, usedSlots: 2 }, // busy with other work
    ]);
    const { jobId } = await executingJob(h, 10);
    for (let i = 0; i < 3; i++) {
      await inspector.tick();
      const perNode = new Map<string, number>();
      for (const t of await h.store.listTasks(jobId)) if (t.state === 'InProgress') perNode.set(t.nodeId!, (perNode.get(t.nodeId!) ?? 0) + 1);
      expect(perNode.get('a')).toBe(2);
      expect(perNode.get('b')).toBe(1);
    }
    expect(workers.dispatched).toHaveLength(3);
    // A finished task frees its slot for the next Pending one in the same pass.
    const first = workers.dispatched[0]!.task;
    workers.answers.set(first.id, { state: 'Completed', results: resultsFor(first), version: 1 });
    await inspector.tick();
    expect(workers.dispatched).toHaveLength(4);
  });

  it('spreads tasks over the nodes with the most free slots', async () => {
    const { h, workers, inspector } = setup([
      { nodeId: 'a', slots: 2, usedSlots: 0 },
      { nodeId: 'b', slots: 2, usedSlots: 0 },
    ]);
    await executingJob(h, 3);
    await inspector.tick();
    expect(workers.dispatched.map((d) => d.nodeId)).toEqual(['a', 'b', 'a']);
  });

  it('(2) stores results of a Completed answer and kicks the checker', async () => {
    const { h, workers, inspector, doneKicks } = setup();
    const { jobId, tasks } = await executingJob(h, 2);
    await inspector.tick();
    workers.answers.set(tasks[0]!.id, { state: 'Completed', results: resultsFor(tasks[0]!), version: 1 });
    h.clock.advance(5);
    await inspector.tick();
    const t = (await byId(h, jobId)).get(tasks[0]!.id)!;
    expect(t).toMatchObject({ state: 'Completed', nodeId: 'node-1', version: 1, updatedAtMs: h.clock.nowMs() });
    expect(t.results).toEqual(resultsFor(tasks[0]!));
    expect(doneKicks()).toBe(1);
  });

  it('(3) stores the worker reason of a Failed answer', async () => {
    const { h, workers, inspector, doneKicks } = setup();
    const { jobId, tasks } = await executingJob(h, 1);
    await inspector.tick();
    workers.answers.set(tasks[0]!.id, { state: 'Failed', reason: 'copy "x" failed after 4 attempts', version: 1 });
    await inspector.tick();
    expect((await byId(h, jobId)).get(tasks[0]!.id)).toMatchObject({ state: 'Failed', reason: 'copy "x" failed after 4 attempts' });
    expect(doneKicks()).toBe(1);
  });

  it('(3) fails a task whose worker returns results that do not match it', async () => {
    const { h, workers, inspector } = setup();
    const { jobId, tasks } = await executingJob(h, 2);
    await inspector.tick();
    workers.answers.set(tasks[0]!.id, { state: 'Completed', results: resultsFor(tasks[1]!), version: 1 });
    await inspector.tick();
    expect((await byId(h, jobId)).get(tasks[0]!.id)).toMatchObject({
      state: 'Failed',
      reason: expect.stringContaining(`is not a target of task ${tasks[0]!.id}`),
    });
  });

  it('(4) re-queues the task of a lost node and dispatches it to another node with a new version', async () => {
    const { h, workers, inspector } = setup([
      { nodeId: 'a', slots: 1, usedSlots: 0 },
      { nodeId: 'b', slots: 1, usedSlots: 0 },
    ]);
    const { jobId, tasks } = await executingJob(h, 1);
    await inspector.tick();
    expect(workers.dispatched.map((d) => d.nodeId)).toEqual(['a']);
    workers.nodeList.splice(0, 1); // node a is gone
    await inspector.tick();
    // Same pass: re-queued (4) then dispatched (1) to b.
    expect(workers.dispatched.map((d) => [d.nodeId, d.task.version])).toEqual([
      ['a', 1],
      ['b', 2],
    ]);
    expect((await byId(h, jobId)).get(tasks[0]!.id)).toMatchObject({
      state: 'InProgress',
      nodeId: 'b',
      version: 2,
      attempts: 2,
      reason: 'worker a lost (not among the worker nodes)',
    });
  });

  it('(4) re-queues when the node answers Unknown (it restarted, or the dispatch never arrived)', async () => {
    const { h, workers, inspector } = setup([{ nodeId: 'a', slots: 0, usedSlots: 0 }]);
    const { jobId, tasks } = await executingJob(h, 1);
    // Simulates a crash between the persisted dispatch and the call.
    expect(await h.store.updateTaskInState(jobId, tasks[0]!.id, 'Pending', 0, { state: 'InProgress', nodeId: 'a', version: 1, attempts: 1 })).toBe(true);
    workers.answers.set(tasks[0]!.id, { state: 'Unknown' });
    await inspector.tick();
    const t = (await byId(h, jobId)).get(tasks[0]!.id)!;
    expect(t).toMatchObject({ state: 'Pending', version: 1, reason: `worker a does not know task ${t.id} version 1` });
    expect(t.nodeId).toBeUndefined();
  });

  it('ignores a poll answer about an older version', async () => {
    const { h, workers, inspector, doneKicks } = setup();
    const { jobId, tasks } = await executingJob(h, 1);
    const id = tasks[0]!.id;
    expect(await h.store.updateTaskInState(jobId, id, 'Pending', 0, { state: 'InProgress', nodeId: 'node-1', version: 3, attempts: 3 })).toBe(true);
    workers.answers.set(id, { state: 'Failed', reason: 'old run died', version: 2 });
    await inspector.tick();
    expect((await byId(h, jobId)).get(id)).toMatchObject({ state: 'InProgress', version: 3, reason: '' });
    workers.answers.set(id, { state: 'Completed', results: resultsFor(tasks[0]!), version: 2 });
    await inspector.tick();
    expect((await byId(h, jobId)).get(id)!.state).toBe('InProgress');
    expect(doneKicks()).toBe(0);
    workers.answers.set(id, { state: 'Completed', results: resultsFor(tasks[0]!), version: 3 });
    await inspector.tick();
    expect((await byId(h, jobId)).get(id)!.state).toBe('Completed');
  });

  it('(4) with no other node free, a re-queued task is committed Pending and placed once a slot frees', async () => {
    const { h, workers, inspector } = setup([{ nodeId: 'a', slots: 1, usedSlots: 0 }]);
    const { jobId, tasks } = await executingJob(h, 1);
    await inspector.tick();
    workers.nodeList.splice(0, 1, { nodeId: 'b', slots: 1, usedSlots: 1 }); // a gone, b busy with other work
    await inspector.tick();
    expect((await byId(h, jobId)).get(tasks[0]!.id)).toMatchObject({
      state: 'Pending',
      version: 1,
      attempts: 1,
      reason: 'worker a lost (not among the worker nodes)',
    });
    expect(inspector.waitingReason(jobId)).toMatch(/waiting for a data node with a free slot \(1 registered\)/);
    workers.nodeList[0] = { nodeId: 'b', slots: 1, usedSlots: 0 };
    await inspector.tick();
    expect((await byId(h, jobId)).get(tasks[0]!.id)).toMatchObject({ state: 'InProgress', nodeId: 'b', version: 2, attempts: 2 });
  });

  it('a refused dispatch puts the task back to Pending; it is retried on a later pass', async () => {
    const { h, workers, inspector } = setup();
    const { jobId, tasks } = await executingJob(h, 2);
    workers.refuseDispatch = true;
    await inspector.tick();
    for (const t of await h.store.listTasks(jobId)) {
      expect(t).toMatchObject({ state: 'Pending', version: 1, attempts: 1, reason: 'dispatch to node-1 failed: node node-1 refuses' });
    }
    workers.refuseDispatch = false;
    await inspector.tick();
    expect(workers.dispatched.map((d) => [d.task.id, d.task.version, d.task.attempts])).toEqual([
      [tasks[0]!.id, 2, 2],
      [tasks[1]!.id, 2, 2],
    ]);
  });

  it('a dispatch refused for want of a slot (node busy with other work) re-queues without using up a dispatch', async () => {
    const { h, workers, inspector, doneKicks } = setup(undefined, 2);
    const { jobId, tasks } = await executingJob(h, 2);
    workers.refuseDispatch = true;
    // The two messages the real workers give: a remote data node, and the in-process pool.
    const messages = [
      (n: string) => `data node ${n} is full (4 slots)`,
      (n: string, t: CopyTask) => `worker node ${n} has no free slot (4 of 4 used) for task ${t.id}`,
    ];
    for (let pass = 0; pass < 6; pass++) {
      workers.refusal = messages[pass % 2];
      await inspector.tick();
      for (const t of await h.store.listTasks(jobId)) expect(t).toMatchObject({ state: 'Pending', attempts: 0, version: pass + 1 });
    }
    expect(doneKicks()).toBe(0); // far past maxDispatchAttempts (2), nothing failed
    workers.refuseDispatch = false;
    await inspector.tick();
    expect((await h.store.listTasks(jobId)).map((t) => [t.id, t.state, t.attempts])).toEqual(tasks.map((t) => [t.id, 'InProgress', 1]));
  });

  it('one pass commits what its polls decided and its placements in one txn', async () => {
    const { h, workers, inspector, doneKicks } = setup([{ nodeId: 'node-1', slots: 8, usedSlots: 0 }]);
    const { jobId, tasks } = await executingJob(h, 16);
    await inspector.tick(); // 8 dispatched
    const first = tasks.slice(0, 8);
    for (const t of first) workers.answers.set(t.id, { state: 'Completed', results: resultsFor(t), version: 1 });
    workers.answers.set(first[0]!.id, { state: 'Failed', reason: 'disk full', version: 1 });
    const txns = vi.spyOn(h.kv, 'txn');
    await inspector.tick();
    expect(txns).toHaveBeenCalledTimes(1);
    const after = await byId(h, jobId);
    expect(after.get(first[0]!.id)).toMatchObject({ state: 'Failed', reason: 'disk full' });
    for (const t of first.slice(1)) expect(after.get(t.id)!.state).toBe('Completed');
    for (const t of tasks.slice(8)) expect(after.get(t.id)).toMatchObject({ state: 'InProgress', nodeId: 'node-1', version: 1 });
    expect(doneKicks()).toBe(1);
    // The kv holds what the view showed.
    const fresh = new CopyJobStore({ kv: h.kv, allocId: async () => 0 });
    expect(await fresh.listAllTasks()).toEqual(await h.store.listAllTasks());
  });

  it('a task that keeps losing its worker fails after maxDispatchAttempts', async () => {
    const { h, workers, inspector, doneKicks } = setup(undefined, 2);
    const { jobId, tasks } = await executingJob(h, 1);
    const id = tasks[0]!.id;
    await inspector.tick(); // attempt 1
    workers.answers.set(id, { state: 'Unknown' });
    await inspector.tick(); // re-queued, attempt 2
    expect((await byId(h, jobId)).get(id)).toMatchObject({ state: 'InProgress', attempts: 2 });
    await inspector.tick();
    expect((await byId(h, jobId)).get(id)).toMatchObject({
      state: 'Failed',
      reason: `worker node-1 does not know task ${id} version 2; gave up after 2 dispatches`,
    });
    expect(doneKicks()).toBe(1);
  });

  it('dispatches only tasks of Executing jobs (not of one rolling back)', async () => {
    const { h, workers, inspector } = setup();
    const decided = await executingJob(h, 1);
    const running = await executingJob(h, 1, 10);
    expect(await h.store.updateJobInState(decided.jobId, 'Executing', { state: 'RollingBack', reason: 'x' })).toBe(true);
    await inspector.tick();
    expect(workers.dispatched.map((d) => d.task.jobId)).toEqual([running.jobId]);
  });

  it('a new inspector over the same store carries on from persisted state', async () => {
    const h = harness();
    const workers = new FakeWorkers();
    const { jobId, tasks } = await executingJob(h, 1);
    await new TaskInspector({ store: h.store, workers, clock: h.clock }).tick();
    workers.answers.set(tasks[0]!.id, { state: 'Completed', results: resultsFor(tasks[0]!), version: 1 });
    await new TaskInspector({ store: h.store, workers, clock: h.clock }).tick();
    expect((await byId(h, jobId)).get(tasks[0]!.id)!.state).toBe('Completed');
  });

  it('task view: a coordinator restart (new store, new inspector over the same kv) sees what the old one wrote, and stale answers stay ignored', async () => {
    const h = harness();
    const workers = new FakeWorkers([
      { nodeId: 'a', slots: 1, usedSlots: 0 },
      { nodeId: 'b', slots: 1, usedSlots: 0 },
    ]);
    const { jobId, tasks } = await executingJob(h, 3);
    const [t1, t2, t3] = tasks as [CopyTask, CopyTask, CopyTask];
    const first = new TaskInspector({ store: h.store, workers, clock: h.clock });
    await first.tick(); // t1 → a, t2 → b (version 1 each); t3 waits for a slot
    workers.answers.set(t1.id, { state: 'Completed', results: resultsFor(t1), version: 1 });
    h.clock.advance(10);
    await first.tick(); // t1 Completed; t3 → a at once, in the same pass
    expect(workers.dispatched.map((d) => [d.task.id, d.nodeId, d.task.version])).toEqual([
      [t1.id, 'a', 1],
      [t2.id, 'b', 1],
      [t3.id, 'a', 1],
    ]);
    // Node b is lost: t2 is re-queued (version stays 1 until the next dispatch) and nobody takes it (a is full).
    workers.nodeList.splice(1, 1);
    await first.tick();

    // The restarted coordinator: a fresh store over the same kv loads its view from it.
    const restarted = new CopyJobStore({ kv: h.kv, allocId: () => h.store.allocId(), viewTasks: true });
    const plain = new CopyJobStore({ kv: h.kv, allocId: () => h.store.allocId() });
    expect(await restarted.listTasks(jobId)).toEqual(await plain.listTasks(jobId));
    expect(await h.store.listTasks(jobId)).toEqual(await plain.listTasks(jobId));
    expect((await plain.listTasks(jobId)).map((t) => [t.state, t.nodeId, t.version])).toEqual([
      ['Completed', 'a', 1],
      ['Pending', undefined, 1],
      ['InProgress', 'a', 1],
    ]);
    const second = new TaskInspector({ store: restarted, workers, clock: h.clock });
    workers.nodeList.push({ nodeId: 'c', slots: 1, usedSlots: 0 });
    await second.tick(); // t2 → c, version 2
    expect((await plain.getTask(jobId, t2.id))!).toMatchObject({ state: 'InProgress', nodeId: 'c', version: 2, attempts: 2 });
    // The old run of t2 (version 1) answers late: fenced, in the view and in the kv.
    workers.answers.set(t2.id, { state: 'Failed', reason: 'the old run died', version: 1 });
    await second.tick();
    expect((await plain.getTask(jobId, t2.id))!).toMatchObject({ state: 'InProgress', version: 2, reason: 'worker b lost (not among the worker nodes)' });
    expect(await restarted.getTask(jobId, t2.id)).toEqual(await plain.getTask(jobId, t2.id));
    workers.answers.set(t2.id, { state: 'Completed', results: resultsFor(t2), version: 2 });
    workers.answers.set(t3.id, { state: 'Completed', results: resultsFor(t3), version: 1 });
    await second.tick();
    expect((await plain.listTasks(jobId)).map((t) => [t.state, t.version])).toEqual([
      ['Completed', 1],
      ['Completed', 2],
      ['Completed', 1],
    ]);
    expect(await restarted.listTasks(jobId)).toEqual(await plain.listTasks(jobId));
  });
});
