import { describe, expect, it } from 'vitest';
import { isQuiverError } from '../../common/errors.js';
import { CopyJobChecker } from './checker.js';
import { createJob, FakeWorkers, harness, mappings, mustGetJob, RecordingTargets, resultsFor, sourcesFor, type Harness } from './copy.test-util.js';
import { TaskInspector } from './inspector.js';
import { CANCELLED_REASON, type CopyJob } from './types.js';

/** A checker and an inspector over one store, with recording targets and scriptable workers. */
function setup(h: Harness = harness({ maxSegmentsPerTask: 1 })) {
  const targets = new RecordingTargets(sourcesFor(10));
  const workers = new FakeWorkers();
  const finished: CopyJob[] = [];
  const checker = new CopyJobChecker({ store: h.store, targets, workers, clock: h.clock, options: h.options, onJobFinished: (j) => finished.push(j) });
  const inspector = new TaskInspector({ store: h.store, workers, clock: h.clock });
  return { h, targets, workers, checker, inspector, finished };
}

async function refusal(p: Promise<unknown>): Promise<{ kind: string; code: number; message: string }> {
  try {
    await p;
  } catch (e) {
    if (isQuiverError(e)) return { kind: e.kind, code: e.code, message: e.message };
    throw e;
  }
  throw new Error('expected a refusal');
}

describe('CopyJobChecker.cancel', () => {
  it('Pending: → RollingBack "cancelled" with its deadline at now, so the next pass rolls back → Failed "cancelled"', async () => {
    const { h, checker, targets, finished } = setup();
    const job = await createJob(h, mappings(3));
    const after = await checker.cancel(job.id);
    expect(after).toMatchObject({ state: 'RollingBack', reason: CANCELLED_REASON, deadlineMs: h.clock.nowMs(), attempts: 0 });
    await checker.tick();
    const failed = await mustGetJob(h.store, job.id);
    expect(failed).toMatchObject({ state: 'Failed', reason: CANCELLED_REASON });
    // Never started: no target registered, no task written; the rollback still ran (pin, target records).
    expect(targets.registered).toHaveLength(0);
    expect(await h.store.listTasks(job.id)).toHaveLength(0);
    expect(targets.rolledBack.map((r) => r.job.id)).toEqual([job.id]);
    expect(finished.map((j) => [j.id, j.state])).toEqual([[job.id, 'Failed']]);
  });

  it('Executing with tasks in flight: tasks cancelled on their workers, rollback, Failed; a late report of a cancelled task is ignored', async () => {
    const { h, checker, inspector, targets, workers } = setup();
    const job = await createJob(h, mappings(3));
    await checker.tick();
    await inspector.tick(); // dispatches the three tasks
    const running = await h.store.listTasks(job.id);
    expect(running.map((t) => t.state)).toEqual(['InProgress', 'InProgress', 'InProgress']);

    expect((await checker.cancel(job.id)).state).toBe('RollingBack');
    await checker.tick();
    expect(await mustGetJob(h.store, job.id)).toMatchObject({ state: 'Failed', reason: CANCELLED_REASON });
    expect(workers.cancelled.map((c) => c.taskId).sort()).toEqual(running.map((t) => t.id).sort());
    expect(targets.rolledBack).toHaveLength(1);
    expect(targets.completed).toHaveLength(0);
    const cancelled = await h.store.listTasks(job.id);
    expect(cancelled.every((t) => t.state === 'Failed' && t.reason.includes('cancelled'))).toBe(true);

    // The worker answers "done" for the version it ran: the inspector's CAS on (state, version) loses.
    const t0 = running[0]!;
    workers.answers.set(t0.id, { state: 'Completed', results: resultsFor(t0), version: t0.version });
    await inspector.tick();
    expect(await h.store.getTask(job.id, t0.id)).toMatchObject({ state: 'Failed', results: [] });
    await checker.tick();
    expect((await mustGetJob(h.store, job.id)).state).toBe('Failed');
    expect(targets.completed).toHaveLength(0);
  });

  it('Executing with every task done but not yet published: the cancel wins, nothing is published', async () => {
    const { h, checker, inspector, targets, workers } = setup();
    const job = await createJob(h, mappings(2));
    await checker.tick();
    await inspector.tick();
    for (const t of await h.store.listTasks(job.id)) workers.answers.set(t.id, { state: 'Completed', results: resultsFor(t), version: t.version });
    await inspector.tick();
    expect((await h.store.listTasks(job.id)).every((t) => t.state === 'Completed')).toBe(true);
    await checker.cancel(job.id);
    await checker.tick();
    expect(await mustGetJob(h.store, job.id)).toMatchObject({ state: 'Failed', reason: CANCELLED_REASON });
    expect(targets.completed).toHaveLength(0);
    expect(targets.rolledBack).toHaveLength(1);
  });

  it('a rollback attempt that fails is retried, and the job still ends Failed "cancelled" (the error is lastError meanwhile)', async () => {
    const { h, checker, targets } = setup();
    const job = await createJob(h, mappings(2));
    await checker.cancel(job.id);
    targets.failNext = 1;
    await checker.tick();
    expect(await mustGetJob(h.store, job.id)).toMatchObject({
      state: 'RollingBack',
      reason: CANCELLED_REASON,
      lastError: 'rollback attempt 1 failed: injected rollback failure',
    });
    h.clock.advance(h.options.checkIntervalMs + 1);
    await checker.tick();
    const failed = await mustGetJob(h.store, job.id);
    expect(failed).toMatchObject({ state: 'Failed', reason: CANCELLED_REASON });
    expect(failed.lastError).toBeUndefined();
  });

  it('a cancel racing the checker\'s own steps (Pending → Executing, tasks written) still ends Failed "cancelled", nothing published', async () => {
    const { h, checker, inspector, targets } = setup();
    const job = await createJob(h, mappings(3));
    const [, cancelled] = await Promise.all([checker.tick(), checker.cancel(job.id), inspector.tick()]);
    expect(cancelled.state).toBe('RollingBack');
    await checker.tick();
    expect(await mustGetJob(h.store, job.id)).toMatchObject({ state: 'Failed', reason: CANCELLED_REASON });
    expect((await h.store.listTasks(job.id)).every((t) => t.state === 'Failed')).toBe(true);
    expect(targets.completed).toHaveLength(0);
    expect(targets.rolledBack).toHaveLength(1);
  });

  it('twice: the second cancel while rolling back, and after it ended Failed "cancelled", succeeds and changes nothing', async () => {
    const { h, checker, targets } = setup();
    const job = await createJob(h, mappings(2));
    const first = await checker.cancel(job.id);
    const second = await checker.cancel(job.id);
    expect(second).toEqual(first);
    await checker.tick();
    const failed = await mustGetJob(h.store, job.id);
    expect(await checker.cancel(job.id)).toEqual(failed);
    await checker.tick();
    expect(targets.rolledBack).toHaveLength(1);
  });

  it('Publishing is past the point of no return: refused, and the job still completes', async () => {
    const { h, checker, inspector, targets, workers } = setup();
    const job = await createJob(h, mappings(1));
    await checker.tick();
    await inspector.tick();
    const [t] = await h.store.listTasks(job.id);
    workers.answers.set(t!.id, { state: 'Completed', results: resultsFor(t!), version: t!.version });
    await inspector.tick();
    targets.failNext = 1; // the publish attempt fails once: the job waits in Publishing for a retry
    await checker.tick();
    expect((await mustGetJob(h.store, job.id)).state).toBe('Publishing');
    const r = await refusal(checker.cancel(job.id));
    expect(r).toMatchObject({ kind: 'ParameterInvalid', code: 1100 });
    expect(r.message).toContain(`restore job ${job.id} cannot be cancelled`);
    expect(r.message).toContain('state Publishing');
    h.clock.advance(h.options.checkIntervalMs + 1);
    await checker.tick();
    expect((await mustGetJob(h.store, job.id)).state).toBe('Completed');
    expect(targets.rolledBack).toHaveLength(0);
  });

  it('a Completed job, or one Failed for another reason, is refused with its state; an unknown job is RestoreJobNotFound (2603)', async () => {
    const { h, checker, workers, inspector } = setup();
    const done = await createJob(h, []);
    await checker.tick();
    expect((await mustGetJob(h.store, done.id)).state).toBe('Completed');
    const c = await refusal(checker.cancel(done.id));
    expect(c).toMatchObject({ kind: 'ParameterInvalid' });
    expect(c.message).toContain('state Completed');

    const broken = await createJob(h, mappings(1, 5));
    await checker.tick();
    await inspector.tick();
    const [t] = await h.store.listTasks(broken.id);
    workers.answers.set(t!.id, { state: 'Failed', reason: 'disk on fire', version: t!.version });
    await inspector.tick();
    await checker.tick();
    expect((await mustGetJob(h.store, broken.id)).state).toBe('Failed');
    const f = await refusal(checker.cancel(broken.id));
    expect(f).toMatchObject({ kind: 'ParameterInvalid' });
    expect(f.message).toContain('state Failed');

    expect(await refusal(checker.cancel(987_654))).toMatchObject({ kind: 'RestoreJobNotFound', code: 2603 });
  });
});
