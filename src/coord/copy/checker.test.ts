import { describe, expect, it } from 'vitest';
import { CopyJobChecker } from './checker.js';
import { createJob, FakeWorkers, harness, mappings, mustGetJob, RecordingFinalizer, resultsFor, type Harness } from './copy.test-util.js';
import { targetKeysOf } from './segment-rewrite.js';
import { jobProgress } from './progress.js';
import type { CopyTask } from './types.js';

function setup(h: Harness = harness()) {
  const finalizer = new RecordingFinalizer();
  const workers = new FakeWorkers();
  let tasksCreated = 0;
  const checker = new CopyJobChecker({ store: h.store, finalizer, workers, clock: h.clock, options: h.options, onTasksCreated: () => tasksCreated++ });
  return { h, finalizer, workers, checker, tasksCreated: () => tasksCreated };
}

/** Plays the inspector: dispatches and completes a task in the store. */
async function complete(h: Harness, t: CopyTask): Promise<void> {
  expect(await h.store.updateTaskInState(t.jobId, t.id, 'Pending', t.version, { state: 'InProgress', nodeId: 'node-1', version: t.version + 1 })).toBe(true);
  expect(await h.store.updateTaskInState(t.jobId, t.id, 'InProgress', t.version + 1, { state: 'Completed', results: resultsFor(t) })).toBe(true);
}

async function start(h: Harness, t: CopyTask, nodeId = 'node-1'): Promise<void> {
  expect(await h.store.updateTaskInState(t.jobId, t.id, 'Pending', t.version, { state: 'InProgress', nodeId, version: t.version + 1 })).toBe(true);
}

describe('CopyJobChecker', () => {
  it('(1) Pending → Executing splits 250 mappings into tasks of at most 100, in order', async () => {
    const { h, checker, tasksCreated } = setup(harness({ maxSegmentsPerTask: 100 }));
    const job = await createJob(h, mappings(250));
    await checker.tick();
    const read = await mustGetJob(h.store, job.id);
    expect(read).toMatchObject({ state: 'Executing', startedAtMs: h.clock.nowMs(), copiedSegments: 0 });
    const tasks = await h.store.listTasks(job.id);
    expect(tasks.map((t) => t.mappings.length)).toEqual([100, 100, 50]);
    expect(tasks.flatMap((t) => t.mappings.map((m) => m.targetSegmentId))).toEqual(job.mappings.map((m) => m.targetSegmentId));
    expect(tasks.every((t) => t.state === 'Pending' && t.version === 0 && t.nodeId === undefined)).toBe(true);
    expect(tasksCreated()).toBe(1);
    // Idempotent: another pass creates nothing more.
    await checker.tick();
    expect(await h.store.listTasks(job.id)).toHaveLength(3);
  });

  it('(2) Executing → Completed calls finalizer.complete once with every result in job order', async () => {
    const { h, checker, finalizer } = setup(harness({ maxSegmentsPerTask: 2 }));
    const job = await createJob(h, mappings(5));
    await checker.tick();
    const tasks = await h.store.listTasks(job.id);
    expect(tasks).toHaveLength(3);
    // Completed out of order; progress follows.
    await complete(h, tasks[2]!);
    await checker.tick();
    expect(await mustGetJob(h.store, job.id)).toMatchObject({ state: 'Executing', copiedSegments: 1 });
    expect(jobProgress(await mustGetJob(h.store, job.id))).toBe(20);
    await complete(h, tasks[0]!);
    await complete(h, tasks[1]!);
    await checker.tick();
    const done = await mustGetJob(h.store, job.id);
    expect(done).toMatchObject({ state: 'Completed', copiedSegments: 5, finishedAtMs: h.clock.nowMs(), reason: '' });
    expect(done.outcome).toBeUndefined();
    expect(jobProgress(done)).toBe(100);
    expect(finalizer.completed).toHaveLength(1);
    expect(finalizer.completed[0]!.results.map((r) => r.targetSegmentId)).toEqual(job.mappings.map((m) => m.targetSegmentId));
    expect(finalizer.rolledBack).toHaveLength(0);
    await checker.tick();
    expect(finalizer.completed).toHaveLength(1);
  });

  it('a job with no segments completes in one pass with progress 100', async () => {
    const { h, checker, finalizer } = setup();
    const job = await createJob(h, []);
    await checker.tick();
    const done = await mustGetJob(h.store, job.id);
    expect(done.state).toBe('Completed');
    expect(jobProgress(done)).toBe(100);
    expect(finalizer.completed).toEqual([{ job: expect.objectContaining({ id: job.id }), results: [] }]);
  });

  it('(4) fail-fast: one Failed task fails the job, cancels the others, then rolls back with every target key', async () => {
    const { h, checker, finalizer, workers } = setup(harness({ maxSegmentsPerTask: 1 }));
    const job = await createJob(h, mappings(4));
    await checker.tick();
    const [a, b, c, d] = await h.store.listTasks(job.id);
    await complete(h, a!);
    await start(h, b!, 'node-1');
    await start(h, c!, 'node-2');
    expect(await h.store.updateTaskInState(job.id, c!.id, 'InProgress', 1, { state: 'Failed', reason: 'disk on fire' })).toBe(true);
    // d stays Pending.
    let order: string[] = [];
    workers.cancel = async (nodeId, taskId) => void order.push(`cancel ${nodeId}/${taskId}`);
    finalizer.onRollback = async () => void order.push('rollback');
    await checker.tick();

    const failed = await mustGetJob(h.store, job.id);
    expect(failed.state).toBe('Failed');
    expect(failed.reason).toBe(`task ${c!.id} failed: disk on fire`);
    expect(failed.finishedAtMs).toBe(h.clock.nowMs());
    expect(order).toEqual([`cancel node-1/${b!.id}`, 'rollback']);
    const tasks = new Map((await h.store.listTasks(job.id)).map((t) => [t.id, t]));
    expect(tasks.get(a!.id)!.state).toBe('Completed');
    expect(tasks.get(b!.id)).toMatchObject({ state: 'Failed', reason: expect.stringMatching(/^cancelled: job \d+ failed: task \d+ failed: disk on fire$/) });
    expect(tasks.get(d!.id)!.state).toBe('Failed');
    expect(finalizer.rolledBack).toHaveLength(1);
    expect(finalizer.rolledBack[0]!.keys).toEqual(targetKeysOf(job));
    expect(finalizer.rolledBack[0]!.keys).toHaveLength(32);
    expect(finalizer.completed).toHaveLength(0);
    order = [];
    await checker.tick();
    expect(finalizer.rolledBack).toHaveLength(1);
    expect(order).toEqual([]);
  });

  it('(4) Executing → Failed on timeout (strictly after timeoutMs), cancelling running tasks', async () => {
    const { h, checker, finalizer, workers } = setup();
    const job = await createJob(h, mappings(2), 60_000);
    await checker.tick();
    const [t] = await h.store.listTasks(job.id);
    await start(h, t!);
    h.clock.advance(60_000);
    await checker.tick();
    expect((await mustGetJob(h.store, job.id)).state).toBe('Executing');
    h.clock.advance(1);
    await checker.tick();
    const failed = await mustGetJob(h.store, job.id);
    expect(failed.state).toBe('Failed');
    expect(failed.reason).toMatch(/timed out: running for 60001 ms, over the timeout of 60000 ms/);
    expect(workers.cancelled).toEqual([{ nodeId: 'node-1', taskId: t!.id }]);
    expect(finalizer.rolledBack).toHaveLength(1);
  });

  it('a job whose tasks all completed is published even if the timeout passed meanwhile', async () => {
    const { h, checker, finalizer } = setup();
    const job = await createJob(h, mappings(1), 1_000);
    await checker.tick();
    await complete(h, (await h.store.listTasks(job.id))[0]!);
    h.clock.advance(5_000);
    await checker.tick();
    expect((await mustGetJob(h.store, job.id)).state).toBe('Completed');
    expect(finalizer.completed).toHaveLength(1);
  });

  it('(3) Pending → Failed on timeout before start, and on invalid mappings; both roll back', async () => {
    const { h, checker, finalizer } = setup();
    const late = await createJob(h, mappings(1), 1_000);
    h.clock.advance(1_001);
    const ms = mappings(2);
    const bad = await createJob(h, [ms[0]!, { ...ms[1]!, targetSegmentId: ms[0]!.targetSegmentId }]);
    await checker.tick();
    expect(await mustGetJob(h.store, late.id)).toMatchObject({ state: 'Failed', reason: 'timed out: not started within 1000 ms' });
    expect(await mustGetJob(h.store, bad.id)).toMatchObject({ state: 'Failed', reason: expect.stringContaining('appears in more than one mapping') });
    expect(finalizer.rolledBack.map((r) => r.job.id).sort()).toEqual([late.id, bad.id].sort());
    expect(await h.store.listTasks(late.id)).toEqual([]);
  });

  it('retention deletes a finished job and its tasks only after taskRetentionMs', async () => {
    const { h, checker } = setup(harness({ taskRetentionMs: 10_000, maxSegmentsPerTask: 1 }));
    const job = await createJob(h, mappings(2));
    const other = await createJob(h, mappings(1, 50));
    await checker.tick();
    for (const t of await h.store.listTasks(job.id)) await complete(h, t);
    await checker.tick();
    expect((await mustGetJob(h.store, job.id)).state).toBe('Completed');
    h.clock.advance(10_000);
    await checker.tick();
    expect(await h.store.getJob(job.id)).toBeDefined();
    expect(await h.store.listTasks(job.id)).toHaveLength(2);
    h.clock.advance(1);
    await checker.tick();
    expect(await h.store.getJob(job.id)).toBeUndefined();
    expect(await h.store.listTasks(job.id)).toEqual([]);
    expect((await mustGetJob(h.store, other.id)).state).toBe('Executing');
    expect(await h.store.listTasks(other.id)).toHaveLength(1);
  });

  it('retention applies to Failed jobs too', async () => {
    const { h, checker } = setup(harness({ taskRetentionMs: 5 }));
    const job = await createJob(h, mappings(1), 10);
    h.clock.advance(11);
    await checker.tick();
    expect((await mustGetJob(h.store, job.id)).state).toBe('Failed');
    h.clock.advance(6);
    await checker.tick();
    expect(await h.store.getJob(job.id)).toBeUndefined();
  });

  it('a side effect that throws leaves the decided outcome; it is retried after a check interval, never re-decided', async () => {
    const { h, checker, finalizer } = setup(harness({ checkIntervalMs: 2_000 }));
    const job = await createJob(h, mappings(1), 10_000);
    await checker.tick();
    await complete(h, (await h.store.listTasks(job.id))[0]!);
    finalizer.failNext = 1;
    await checker.tick(); // decides Completed, complete() throws (logged)
    const decided = await mustGetJob(h.store, job.id);
    expect(decided).toMatchObject({ state: 'Executing', outcome: 'Completed' });
    // Even past the timeout, the recorded decision stands.
    h.clock.advance(20_000);
    await checker.tick();
    const done = await mustGetJob(h.store, job.id);
    expect(done.state).toBe('Completed');
    expect(done.outcome).toBeUndefined();
    expect(finalizer.completed).toHaveLength(1);
    expect(finalizer.rolledBack).toHaveLength(0);
  });

  it('after a crash between decision and side effect, a new checker resumes it (rollback)', async () => {
    const h = harness({ checkIntervalMs: 2_000 });
    const job = await createJob(h, mappings(1));
    // What a crashed checker left: decided Failed, nothing else done.
    expect(await h.store.updateJobInState(job.id, 'Pending', { outcome: 'Failed', outcomeAtMs: h.clock.nowMs(), reason: 'boom' })).toBe(true);
    const { checker, finalizer } = setup(h);
    await checker.tick();
    expect((await mustGetJob(h.store, job.id)).state).toBe('Pending'); // too fresh: the decider may be alive
    h.clock.advance(2_000);
    await checker.tick();
    expect(await mustGetJob(h.store, job.id)).toMatchObject({ state: 'Failed', reason: 'boom' });
    expect(finalizer.rolledBack).toHaveLength(1);
  });

  it('CAS race: two checkers ticking concurrently never double-finalize', async () => {
    for (const outcome of ['Completed', 'Failed'] as const) {
      const h = harness({ maxSegmentsPerTask: 3 });
      const finalizer = new RecordingFinalizer();
      const workers = new FakeWorkers();
      const a = new CopyJobChecker({ store: h.store, finalizer, workers, clock: h.clock, options: h.options });
      const b = new CopyJobChecker({ store: h.store, finalizer, workers, clock: h.clock, options: h.options });
      const jobs = [await createJob(h, mappings(7)), await createJob(h, mappings(4, 20)), await createJob(h, [])];
      const firstFreeId = await h.store.allocId();
      await Promise.all([a.tick(), b.tick()]);
      // Both checkers split the jobs (10 ids allocated), only one set of tasks was written: the race happened and CAS held.
      expect((await h.store.allocId()) - firstFreeId - 1).toBe(10);
      expect((await h.store.listAllTasks()).length).toBe(3 + 2); // one set of tasks per job, not two
      for (const job of jobs.slice(0, 2)) {
        const tasks = await h.store.listTasks(job.id);
        for (const t of tasks) await complete(h, t);
        if (outcome === 'Failed') {
          const t = tasks[0]!;
          await h.kv.put(`quiver/copytask/${job.id}/${t.id}`, JSON.stringify({ ...t, state: 'Failed', reason: 'x', results: [] }));
        }
      }
      for (let round = 0; round < 3; round++) await Promise.all([a.tick(), b.tick(), a.tick()]);
      const states = (await h.store.listJobs()).map((j) => j.state);
      expect(states).toEqual(outcome === 'Completed' ? ['Completed', 'Completed', 'Completed'] : ['Failed', 'Failed', 'Completed']);
      const completedIds = finalizer.completed.map((c) => c.job.id);
      const rolledBackIds = finalizer.rolledBack.map((c) => c.job.id);
      expect(new Set(completedIds).size).toBe(completedIds.length);
      expect(new Set(rolledBackIds).size).toBe(rolledBackIds.length);
      expect(completedIds.length + rolledBackIds.length).toBe(3);
    }
  });

  it('keeps going past a job whose step throws', async () => {
    const { h, checker, finalizer } = setup();
    const empty = await createJob(h, []);
    const next = await createJob(h, mappings(1));
    finalizer.failNext = 1; // complete() of the empty job throws once
    await checker.tick();
    expect(await mustGetJob(h.store, empty.id)).toMatchObject({ state: 'Executing', outcome: 'Completed' });
    expect((await mustGetJob(h.store, next.id)).state).toBe('Executing');
    expect(await h.store.listTasks(next.id)).toHaveLength(1);
  });
});
