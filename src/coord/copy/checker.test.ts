import { describe, expect, it } from 'vitest';
import { CopyJobChecker, PROGRESS_WRITE_MIN_MS, TargetRefused } from './checker.js';
import { createJob, FakeWorkers, harness, mappings, mustGetJob, RecordingTargets, resultsFor, sourcesFor, type Harness } from './copy.test-util.js';
import { jobProgress } from './progress.js';
import { resolveMappings, targetKeysOf } from '../../storage/snapshot-format/segment-rewrite.js';
import { DEFAULT_COPY_OPTIONS, publicJobState, type CopyJob, type CopyTask } from './types.js';

function setup(h: Harness = harness(), segments = 300) {
  const targets = new RecordingTargets(sourcesFor(segments));
  const workers = new FakeWorkers();
  let tasksCreated = 0;
  const finished: CopyJob[] = [];
  const checker = new CopyJobChecker({
    store: h.store,
    targets,
    workers,
    clock: h.clock,
    options: h.options,
    onTasksCreated: () => tasksCreated++,
    onJobFinished: (j) => finished.push(j),
  });
  return { h, targets, workers, checker, finished, tasksCreated: () => tasksCreated };
}

/** Plays the inspector: dispatches and completes a task in the store. */
async function complete(h: Harness, t: CopyTask): Promise<void> {
  expect(await h.store.updateTaskInState(t.jobId, t.id, 'Pending', t.version, { state: 'InProgress', nodeId: 'node-1', version: t.version + 1 })).toBe(
    true,
  );
  expect(await h.store.updateTaskInState(t.jobId, t.id, 'InProgress', t.version + 1, { state: 'Completed', results: resultsFor(t) })).toBe(true);
}

async function start(h: Harness, t: CopyTask, nodeId = 'node-1'): Promise<void> {
  expect(await h.store.updateTaskInState(t.jobId, t.id, 'Pending', t.version, { state: 'InProgress', nodeId, version: t.version + 1 })).toBe(true);
}

const LEASE = DEFAULT_COPY_OPTIONS.finalizeLeaseMs!;

describe('CopyJobChecker', () => {
  it('(1) Pending → Executing registers the targets, splits 250 mappings into tasks of at most 100, in order', async () => {
    const { h, checker, targets, tasksCreated } = setup(harness({ maxSegmentsPerTask: 100 }));
    const job = await createJob(h, mappings(250));
    await checker.tick();
    const read = await mustGetJob(h.store, job.id);
    expect(read).toMatchObject({ state: 'Executing', startedAtMs: h.clock.nowMs(), copiedSegments: 0, deadlineMs: h.clock.nowMs() + job.timeoutMs });
    expect(targets.registered.map((j) => j.id)).toEqual([job.id]);
    const tasks = await h.store.listTasks(job.id);
    expect(tasks.map((t) => t.mappings.length)).toEqual([100, 100, 50]);
    expect(tasks.map((t) => t.id)).toEqual([read.taskIdBase, read.taskIdBase! + 1, read.taskIdBase! + 2]);
    expect(tasks.flatMap((t) => t.mappings)).toEqual(job.mappings);
    expect(tasks.every((t) => t.state === 'Pending' && t.version === 0 && t.nodeId === undefined && t.snapshot.snapshotId === job.snapshotId)).toBe(true);
    expect(tasksCreated()).toBe(1);
    // Idempotent: another pass creates nothing more.
    await checker.tick();
    expect(await h.store.listTasks(job.id)).toHaveLength(3);
  });

  it('a crash in Pending after some tasks were written re-writes the same tasks (ids from taskIdBase)', async () => {
    const { h, checker, targets } = setup(harness({ maxSegmentsPerTask: 10 }));
    const job = await createJob(h, mappings(25));
    targets.failNext = 1; // register throws after taskIdBase was recorded
    await checker.tick();
    const pending = await mustGetJob(h.store, job.id);
    expect(pending.state).toBe('Pending');
    expect(pending.taskIdBase).toBeDefined();
    await checker.tick();
    const tasks = await h.store.listTasks(job.id);
    expect(tasks.map((t) => t.id)).toEqual([0, 1, 2].map((i) => pending.taskIdBase! + i));
    expect((await mustGetJob(h.store, job.id)).state).toBe('Executing');
  });

  it('(3)(5) Executing → Publishing → Completed publishes once, with progress', async () => {
    const { h, checker, targets, finished } = setup(harness({ maxSegmentsPerTask: 2 }));
    const job = await createJob(h, mappings(5));
    await checker.tick();
    const tasks = await h.store.listTasks(job.id);
    expect(tasks).toHaveLength(3);
    await complete(h, tasks[2]!);
    await checker.tick();
    expect(await mustGetJob(h.store, job.id)).toMatchObject({ state: 'Executing', copiedSegments: 1 });
    expect(jobProgress(await mustGetJob(h.store, job.id))).toBe(20);
    await complete(h, tasks[0]!);
    await complete(h, tasks[1]!);
    await checker.tick();
    const done = await mustGetJob(h.store, job.id);
    expect(done).toMatchObject({ state: 'Completed', copiedSegments: 5, finishedAtMs: h.clock.nowMs(), reason: '', attempts: 0 });
    expect(done.deadlineMs).toBe(h.clock.nowMs() + h.options.taskRetentionMs);
    expect(jobProgress(done)).toBe(100);
    expect(targets.completed.map((j) => j.id)).toEqual([job.id]);
    expect(targets.rolledBack).toHaveLength(0);
    expect(finished.map((j) => j.state)).toEqual(['Completed']);
    await checker.tick();
    expect(targets.completed).toHaveLength(1);
  });

  it('progress is written at most every PROGRESS_WRITE_MIN_MS per job, and never lags past the next pass after it', async () => {
    const { h, checker } = setup(harness({ maxSegmentsPerTask: 1 }));
    const job = await createJob(h, mappings(4));
    await checker.tick();
    const tasks = await h.store.listTasks(job.id);
    await complete(h, tasks[0]!);
    await checker.tick();
    expect((await mustGetJob(h.store, job.id)).copiedSegments).toBe(1); // the first write is at once
    await complete(h, tasks[1]!);
    h.clock.advance(PROGRESS_WRITE_MIN_MS - 1);
    await checker.tick();
    expect((await mustGetJob(h.store, job.id)).copiedSegments).toBe(1); // too soon: no write
    h.clock.advance(1);
    await checker.tick();
    expect((await mustGetJob(h.store, job.id)).copiedSegments).toBe(2);
    await complete(h, tasks[2]!);
    await complete(h, tasks[3]!);
    await checker.tick(); // all done: Publishing and Completed are not throttled
    expect(await mustGetJob(h.store, job.id)).toMatchObject({ state: 'Completed', copiedSegments: 4 });
  });

  it('a job with no segments completes in one pass with progress 100', async () => {
    const { h, checker, targets } = setup();
    const job = await createJob(h, []);
    await checker.tick();
    const done = await mustGetJob(h.store, job.id);
    expect(done.state).toBe('Completed');
    expect(jobProgress(done)).toBe(100);
    expect(targets.completed.map((j) => j.id)).toEqual([job.id]);
  });

  it('(4)(7) fail-fast: one Failed task → RollingBack, the others cancelled, rollback with every target key → Failed', async () => {
    const { h, checker, targets, workers } = setup(harness({ maxSegmentsPerTask: 1 }));
    const job = await createJob(h, mappings(4));
    await checker.tick();
    const [a, b, c, d] = await h.store.listTasks(job.id);
    await complete(h, a!);
    await start(h, b!, 'node-1');
    await start(h, c!, 'node-2');
    expect(await h.store.updateTaskInState(job.id, c!.id, 'InProgress', 1, { state: 'Failed', reason: 'disk on fire' })).toBe(true);
    let order: string[] = [];
    workers.cancel = async (nodeId, taskId) => void order.push(`cancel ${nodeId}/${taskId}`);
    targets.onRollback = async () => void order.push('rollback');
    await checker.tick();

    const failed = await mustGetJob(h.store, job.id);
    expect(failed.state).toBe('Failed');
    expect(failed.reason).toBe(`task ${c!.id} failed: disk on fire`);
    expect(failed.finishedAtMs).toBe(h.clock.nowMs());
    expect(order).toEqual([`cancel node-1/${b!.id}`, 'rollback']);
    const tasks = new Map((await h.store.listTasks(job.id)).map((t) => [t.id, t]));
    expect(tasks.get(a!.id)!.state).toBe('Completed');
    expect(tasks.get(b!.id)).toMatchObject({
      state: 'Failed',
      reason: expect.stringMatching(/^cancelled: job \d+ is rolling back: task \d+ failed: disk on fire$/),
    });
    expect(tasks.get(d!.id)!.state).toBe('Failed');
    expect(targets.rolledBack).toHaveLength(1);
    const records = await targets.sources.read(
      { collectionId: 0, snapshotId: 0 },
      job.mappings.map((m) => m.sourceSegmentId),
    );
    expect(targets.rolledBack[0]!.keys).toEqual(targetKeysOf(resolveMappings(job.mappings, job.targetCollectionId, records)));
    expect(targets.rolledBack[0]!.keys).toHaveLength(32);
    expect(targets.completed).toHaveLength(0);
    order = [];
    await checker.tick();
    expect(targets.rolledBack).toHaveLength(1);
    expect(order).toEqual([]);
  });

  it('(4) Executing → RollingBack on its deadline (strictly after timeoutMs), cancelling running tasks', async () => {
    const { h, checker, targets, workers } = setup();
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
    expect(targets.rolledBack).toHaveLength(1);
  });

  it('a job whose tasks all completed is published even if the timeout passed meanwhile', async () => {
    const { h, checker, targets } = setup();
    const job = await createJob(h, mappings(1), 1_000);
    await checker.tick();
    await complete(h, (await h.store.listTasks(job.id))[0]!);
    h.clock.advance(5_000);
    await checker.tick();
    expect((await mustGetJob(h.store, job.id)).state).toBe('Completed');
    expect(targets.completed).toHaveLength(1);
  });

  it('(2) Pending → RollingBack → Failed on its deadline, and on invalid mappings', async () => {
    const { h, checker, targets } = setup();
    const late = await createJob(h, mappings(1), 1_000);
    h.clock.advance(1_001);
    const ms = mappings(2);
    const bad = await createJob(h, [ms[0]!, { ...ms[1]!, targetSegmentId: ms[0]!.targetSegmentId }]);
    await checker.tick();
    expect(await mustGetJob(h.store, late.id)).toMatchObject({ state: 'Failed', reason: 'timed out: not started within 1000 ms' });
    expect(await mustGetJob(h.store, bad.id)).toMatchObject({ state: 'Failed', reason: expect.stringContaining('appears in more than one mapping') });
    expect(targets.rolledBack.map((r) => r.job.id).sort()).toEqual([late.id, bad.id].sort());
    expect(await h.store.listTasks(late.id)).toEqual([]);
  });

  it('retention deletes a finished job and its tasks only after its deadline', async () => {
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

  it('Publishing: a publish that throws stays Publishing with the error as reason, retried after its deadline, never rolled back', async () => {
    const { h, checker, targets } = setup(harness({ checkIntervalMs: 2_000 }));
    const job = await createJob(h, mappings(1), 10_000);
    await checker.tick();
    await complete(h, (await h.store.listTasks(job.id))[0]!);
    targets.failNext = 1;
    await checker.tick();
    const stuck = await mustGetJob(h.store, job.id);
    expect(stuck).toMatchObject({
      state: 'Publishing',
      attempts: 1,
      reason: 'every segment copied',
      lastError: 'publish attempt 1 failed: injected publish failure',
    });
    expect(stuck.deadlineMs).toBe(h.clock.nowMs() + 2_000);
    expect(publicJobState(stuck.state)).toBe('RestoreSnapshotExecuting');
    expect(jobProgress(stuck)).toBe(99);
    await checker.tick(); // before the deadline: nothing
    expect(targets.completed).toHaveLength(0);
    // Even past the job timeout: copied work is published, not thrown away.
    h.clock.advance(20_000);
    await checker.tick();
    expect(await mustGetJob(h.store, job.id)).toMatchObject({ state: 'Completed', reason: '' });
    expect(targets.completed).toHaveLength(1);
    expect(targets.rolledBack).toHaveLength(0);
  });

  it('(6) Publishing → RollingBack when publish is refused for good', async () => {
    const { h, checker, targets } = setup();
    const job = await createJob(h, mappings(1));
    await checker.tick();
    await complete(h, (await h.store.listTasks(job.id))[0]!);
    targets.publishError = new TargetRefused('target collection dst is gone');
    await checker.tick();
    expect(await mustGetJob(h.store, job.id)).toMatchObject({ state: 'Failed', reason: 'publish refused: target collection dst is gone' });
    expect(targets.rolledBack).toHaveLength(1);
  });

  it('(2) Pending → RollingBack at once when the target is refused for good (not after the job timeout)', async () => {
    const { h, checker, targets } = setup();
    const job = await createJob(h, mappings(1));
    targets.registerError = new TargetRefused('target collection dst (200) is gone');
    await checker.tick();
    expect(await mustGetJob(h.store, job.id)).toMatchObject({ state: 'Failed', reason: 'target refused: target collection dst (200) is gone' });
    expect(await h.store.listTasks(job.id)).toEqual([]);
  });

  it('crash resume: a Publishing job whose checker died is resumed by a new checker after the lease deadline', async () => {
    const h = harness();
    const job = await createJob(h, mappings(1));
    const first = setup(h);
    await first.checker.tick();
    await complete(h, (await h.store.listTasks(job.id))[0]!);
    // What a checker that crashed right after entering Publishing leaves behind.
    const t0 = h.clock.nowMs();
    expect(
      await h.store.updateJobInState(job.id, 'Executing', {
        state: 'Publishing',
        stateSinceMs: t0,
        deadlineMs: t0 + LEASE,
        attempts: 1,
        reason: 'every segment copied',
      }),
    ).toBe(true);
    const second = setup(h);
    await second.checker.tick();
    expect((await mustGetJob(h.store, job.id)).state).toBe('Publishing'); // the lease may still be held
    expect(second.targets.completed).toHaveLength(0);
    h.clock.advance(LEASE);
    await second.checker.tick();
    expect(await mustGetJob(h.store, job.id)).toMatchObject({ state: 'Completed' });
    expect(second.targets.completed).toHaveLength(1);
  });

  it('crash resume: a RollingBack job is rolled back by a new checker after the lease deadline; a failing rollback is retried', async () => {
    const h = harness({ checkIntervalMs: 1_000 });
    const job = await createJob(h, mappings(2));
    const t0 = h.clock.nowMs();
    expect(
      await h.store.updateJobInState(job.id, 'Pending', { state: 'RollingBack', stateSinceMs: t0, deadlineMs: t0 + LEASE, attempts: 1, reason: 'boom' }),
    ).toBe(true);
    const { checker, targets } = setup(h);
    await checker.tick();
    expect(targets.rolledBack).toHaveLength(0);
    h.clock.advance(LEASE);
    targets.failNext = 1;
    await checker.tick();
    expect(await mustGetJob(h.store, job.id)).toMatchObject({
      state: 'RollingBack',
      attempts: 2,
      reason: 'boom',
      lastError: 'rollback attempt 2 failed: injected rollback failure',
    });
    h.clock.advance(1_000);
    await checker.tick();
    expect(await mustGetJob(h.store, job.id)).toMatchObject({ state: 'Failed', reason: 'boom' });
    expect((await mustGetJob(h.store, job.id)).lastError).toBeUndefined();
    expect(targets.rolledBack).toHaveLength(1);
  });

  it('two checkers racing on one expired lease: only one claims it', async () => {
    const h = harness();
    const job = await createJob(h, mappings(1));
    const t0 = h.clock.nowMs();
    expect(await h.store.updateJobInState(job.id, 'Pending', { state: 'RollingBack', stateSinceMs: t0, deadlineMs: t0, attempts: 1, reason: 'x' })).toBe(
      true,
    );
    const targets = new RecordingTargets(sourcesFor(5));
    const workers = new FakeWorkers();
    const a = new CopyJobChecker({ store: h.store, targets, workers, clock: h.clock, options: h.options });
    const b = new CopyJobChecker({ store: h.store, targets, workers, clock: h.clock, options: h.options });
    await Promise.all([a.tick(), b.tick()]);
    expect(targets.rolledBack).toHaveLength(1);
    expect((await mustGetJob(h.store, job.id)).state).toBe('Failed');
  });

  it('CAS race: two checkers ticking concurrently never double-finalize', async () => {
    for (const outcome of ['Completed', 'Failed'] as const) {
      // One task is failed by a write straight into the kv, outside the store: no task view.
      const h = harness({ maxSegmentsPerTask: 3 }, { viewTasks: false });
      const targets = new RecordingTargets(sourcesFor(30));
      const workers = new FakeWorkers();
      const a = new CopyJobChecker({ store: h.store, targets, workers, clock: h.clock, options: h.options });
      const b = new CopyJobChecker({ store: h.store, targets, workers, clock: h.clock, options: h.options });
      const jobs = [await createJob(h, mappings(7)), await createJob(h, mappings(4, 20)), await createJob(h, [])];
      await Promise.all([a.tick(), b.tick()]);
      expect((await h.store.listAllTasks()).length).toBe(3 + 2); // one set of tasks per job, not two
      for (const job of jobs.slice(0, 2)) {
        const tasks = await h.store.listTasks(job.id);
        for (const t of tasks) await complete(h, t);
        if (outcome === 'Failed') {
          const t = tasks[0]!;
          await h.kv.put(
            `quiver/copytask/${job.id}/${t.id}`,
            JSON.stringify({
              ...t,
              state: 'Failed',
              reason: 'x',
              results: [],
              mappings: t.mappings.map((m) => [m.sourceSegmentId, m.targetSegmentId, m.targetPartitionId]),
            }),
          );
        }
      }
      for (let round = 0; round < 3; round++) await Promise.all([a.tick(), b.tick(), a.tick()]);
      const states = (await h.store.listJobs()).map((j) => j.state);
      expect(states).toEqual(outcome === 'Completed' ? ['Completed', 'Completed', 'Completed'] : ['Failed', 'Failed', 'Completed']);
      const completedIds = targets.completed.map((j) => j.id);
      const rolledBackIds = targets.rolledBack.map((c) => c.job.id);
      expect(new Set(completedIds).size).toBe(completedIds.length);
      expect(new Set(rolledBackIds).size).toBe(rolledBackIds.length);
      expect(completedIds.length + rolledBackIds.length).toBe(3);
    }
  });

  it('keeps going past a job whose step throws', async () => {
    const { h, checker, targets } = setup();
    const empty = await createJob(h, []);
    const next = await createJob(h, mappings(1));
    targets.failNext = 1; // register of the first job throws once
    await checker.tick();
    expect((await mustGetJob(h.store, empty.id)).state).toBe('Pending');
    expect((await mustGetJob(h.store, next.id)).state).toBe('Executing');
    expect(await h.store.listTasks(next.id)).toHaveLength(1);
  });
});
