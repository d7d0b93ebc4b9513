import { describe, expect, it } from 'vitest';
import { isQuiverError } from '../../common/errors.js';
import { VALUE_BYTES_MAX_DEFAULT, type Compare, type Op, type ScanOptions } from '../../meta/meta-kv.js';
import { MemoryMetaKV } from '../../meta/memory-kv.js';
import { FakeClock } from '../../common/clock.js';
import { CopyJobChecker } from './checker.js';
import { batchOps, copyJobKey, copyTaskKey, CopyJobStore, encodeTask, newCopyJob } from './copy-job-store.js';
import {
  createJob,
  FakeWorkers,
  harness,
  idAllocator,
  mappings,
  MeasuringKV,
  mustGetJob,
  RecordingTargets,
  SNAPSHOT,
  type Harness,
} from './copy.test-util.js';
import { DEFAULT_COPY_OPTIONS, SEGMENTS_PER_JOB_MAX, type CopiedSegment, type CopyTask } from './types.js';

function task(jobId: number, id: number, over: Partial<CopyTask> = {}): CopyTask {
  return {
    id,
    jobId,
    state: 'Pending',
    snapshot: SNAPSHOT,
    targetCollectionId: 200,
    mappings: [],
    version: 0,
    attempts: 0,
    reason: '',
    results: [],
    createdAtMs: 1,
    updatedAtMs: 1,
    ...over,
  };
}

/** Writes tasks straight into the kv (whatever their job's state), as a test fixture. */
async function seed(h: Harness, tasks: readonly CopyTask[]): Promise<void> {
  for (const t of tasks) await h.kv.put(copyTaskKey(t.jobId, t.id), encodeTask(t));
}

describe('CopyJobStore', () => {
  it('creates, reads, lists (by id) and refuses a duplicate job', async () => {
    const h = harness();
    const a = await createJob(h, mappings(2));
    const b = await createJob(h, mappings(1, 10));
    expect(await h.store.getJob(a.id)).toEqual(a);
    expect((await h.store.listJobs()).map((j) => j.id)).toEqual([a.id, b.id]);
    expect(a).toMatchObject({ state: 'Pending', totalSegments: 2, copiedSegments: 0, reason: '', attempts: 0, deadlineMs: a.createdAtMs + a.timeoutMs });
    await expect(h.store.createJob(a)).rejects.toSatisfy((e) => isQuiverError(e, 'ParameterInvalid'));
    expect(await h.store.getJob(999_999)).toBeUndefined();
    expect(await h.kv.get(copyJobKey(a.id))).toBeDefined();
  });

  it('persists mappings as id tuples, never segment records', async () => {
    const h = harness();
    const job = await createJob(h, mappings(2));
    const raw = JSON.parse(new TextDecoder().decode((await h.kv.get(copyJobKey(job.id)))!.value)) as { mappings: unknown };
    expect(raw.mappings).toEqual(job.mappings.map((m) => [m.sourceSegmentId, m.targetSegmentId, m.targetPartitionId]));
  });

  it('updateJobInState is a CAS on state: a wrong expected state returns false and writes nothing', async () => {
    const h = harness();
    const job = await createJob(h, mappings(1));
    const rev = await h.kv.revision();
    expect(await h.store.updateJobInState(job.id, 'Executing', { copiedSegments: 1 })).toBe(false);
    expect(await h.kv.revision()).toBe(rev);
    expect(await h.store.updateJobInState(job.id, 'Pending', { state: 'Executing', startedAtMs: 5 })).toBe(true);
    expect(await mustGetJob(h.store, job.id)).toMatchObject({ state: 'Executing', startedAtMs: 5 });
    expect(await h.store.updateJobInState(12345, 'Pending', {})).toBe(false);
  });

  it('updateJobInState loses to a write that lands between its read and its txn', async () => {
    const h = harness();
    const job = await createJob(h, mappings(1));
    const results = await Promise.all([
      h.store.updateJobInState(job.id, 'Pending', { state: 'RollingBack', reason: 'a' }),
      h.store.updateJobInState(job.id, 'Pending', { state: 'Executing', reason: 'b' }),
    ]);
    expect(results.filter(Boolean)).toHaveLength(1);
  });

  it('updateJobIfUnchanged loses once the lease (deadline, attempts) moved', async () => {
    const h = harness();
    const job = await createJob(h, mappings(1));
    expect(await h.store.updateJobIfUnchanged(job, { attempts: 1, deadlineMs: 5 })).toBe(true);
    expect(await h.store.updateJobIfUnchanged(job, { attempts: 1, deadlineMs: 9 })).toBe(false);
  });

  it('an illegal job transition is a programmer error (the table is checked on every write)', async () => {
    const h = harness();
    const job = await createJob(h, mappings(1));
    await expect(h.store.updateJobInState(job.id, 'Pending', { state: 'Completed' })).rejects.toThrow('illegal copy job transition Pending → Completed');
    await expect(h.store.updateJobInState(job.id, 'Pending', { state: 'Publishing' })).rejects.toThrow('illegal copy job transition Pending → Publishing');
    expect(await h.store.updateJobInState(job.id, 'Pending', { state: 'Executing' })).toBe(true);
    await expect(h.store.updateJobInState(job.id, 'Executing', { state: 'Failed' })).rejects.toThrow('illegal copy job transition Executing → Failed');
  });

  it('putTasksWhilePending writes only while the job is Pending, and a late batch cannot land after the flip', async () => {
    const h = harness();
    const job = await createJob(h, mappings(2));
    expect(await h.store.putTasksWhilePending(job.id, [task(job.id, 1), task(job.id, 2)])).toBe(true);
    expect((await h.store.listTasks(job.id)).map((t) => t.id)).toEqual([1, 2]);
    // Same tasks again: idempotent.
    expect(await h.store.putTasksWhilePending(job.id, [task(job.id, 1), task(job.id, 2)])).toBe(true);
    expect(await h.store.listTasks(job.id)).toHaveLength(2);
    expect(await h.store.updateJobInState(job.id, 'Pending', { state: 'Executing' })).toBe(true);
    expect(await h.store.putTasksWhilePending(job.id, [task(job.id, 3)])).toBe(false);
    expect(await h.store.listTasks(job.id)).toHaveLength(2);
  });

  it('tasks list in (job, task) order', async () => {
    const h = harness();
    await seed(h, [task(2, 10), task(1, 11), task(1, 3)]);
    expect((await h.store.listAllTasks()).map((t) => [t.jobId, t.id])).toEqual([
      [1, 3],
      [1, 11],
      [2, 10],
    ]);
  });

  it('updateTaskInState is a CAS on (state, version)', async () => {
    const h = harness();
    await seed(h, [task(1, 1)]);
    expect(await h.store.updateTaskInState(1, 1, 'Pending', 1, { state: 'InProgress', nodeId: 'n', version: 2 })).toBe(false);
    expect(await h.store.updateTaskInState(1, 1, 'InProgress', 0, { state: 'Completed' })).toBe(false);
    expect(await h.store.updateTaskInState(1, 1, 'Pending', 0, { state: 'InProgress', nodeId: 'n', version: 1 })).toBe(true);
    expect(await h.store.updateTaskInState(1, 1, 'InProgress', 0, { state: 'Completed' })).toBe(false);
    expect(await h.store.updateTaskInState(1, 1, 'InProgress', 1, { state: 'Pending', nodeId: undefined })).toBe(true);
    const t = await h.store.getTask(1, 1);
    expect(t).toMatchObject({ state: 'Pending', version: 1 });
    expect(t && 'nodeId' in t).toBe(false);
    expect(await h.store.updateTaskInState(1, 99, 'Pending', 0, {})).toBe(false);
  });

  it('task view: reads after the first load cost no kv call, a CAS is one txn, and the kv holds exactly what the view shows', async () => {
    class CountingKV extends MemoryMetaKV {
      reads = 0;
      txns = 0;
      override get(key: string) {
        this.reads++;
        return super.get(key);
      }
      override scan(prefix: string, opts?: ScanOptions) {
        this.reads++;
        return super.scan(prefix, opts);
      }
      override txn(compares: readonly Compare[], success: readonly Op[], failure?: readonly Op[]) {
        this.txns++;
        return super.txn(compares, success, failure);
      }
    }
    const kv = new CountingKV();
    const store = new CopyJobStore({ kv, allocId: idAllocator(), viewTasks: true });
    const job = await createJob({ kv, clock: new FakeClock(), store, options: DEFAULT_COPY_OPTIONS }, mappings(3));
    expect(await store.putTasksWhilePending(job.id, [task(job.id, 1), task(job.id, 2), task(job.id, 3)])).toBe(true);
    await store.listAllTasks();
    const reads = kv.reads;
    const txns = kv.txns;
    expect((await store.listTasks(job.id)).map((t) => t.id)).toEqual([1, 2, 3]);
    expect(await store.getTask(job.id, 2)).toMatchObject({ state: 'Pending', version: 0 });
    expect(await store.updateTaskInState(job.id, 2, 'Pending', 0, { state: 'InProgress', nodeId: 'n', version: 1 })).toBe(true);
    expect(await store.updateTaskInState(job.id, 2, 'Pending', 0, { state: 'InProgress', nodeId: 'n', version: 1 })).toBe(false); // lost: no call at all
    expect(await store.updateTaskInState(job.id, 2, 'InProgress', 1, { state: 'Pending', nodeId: undefined })).toBe(true);
    expect(kv.reads - reads).toBe(0);
    expect(kv.txns - txns).toBe(2);
    const fresh = new CopyJobStore({ kv, allocId: idAllocator() });
    expect(await store.listAllTasks()).toEqual(await fresh.listAllTasks());
    const t2 = await store.getTask(job.id, 2);
    expect(t2 && 'nodeId' in t2).toBe(false); // as a read of the kv returns it
    await store.deleteJob(job.id);
    expect(await store.listAllTasks()).toEqual([]);
    expect(await fresh.listAllTasks()).toEqual([]);
  });

  it('task view: a write from outside the store makes the next CAS lose once, re-read the record and decide on it', async () => {
    const h = harness();
    await seed(h, [task(1, 1), task(1, 2)]);
    expect((await h.store.listAllTasks()).map((t) => t.state)).toEqual(['Pending', 'Pending']); // view loaded
    const other = new CopyJobStore({ kv: h.kv, allocId: idAllocator() });
    expect(await other.updateTaskInState(1, 1, 'Pending', 0, { state: 'InProgress', nodeId: 'elsewhere', version: 1 })).toBe(true);
    expect(await other.updateTaskInState(1, 2, 'Pending', 0, { reason: 'touched' })).toBe(true);
    // Task 1 moved on (another dispatch): the view's CAS loses, the re-read refuses as a plain store would.
    expect(await h.store.updateTaskInState(1, 1, 'Pending', 0, { state: 'InProgress', nodeId: 'here', version: 1 })).toBe(false);
    expect(await h.store.getTask(1, 1)).toMatchObject({ state: 'InProgress', nodeId: 'elsewhere', version: 1 });
    // Task 2 only changed its reason: after the re-read the CAS holds, and keeps the other write's field.
    expect(await h.store.updateTaskInState(1, 2, 'Pending', 0, { state: 'InProgress', nodeId: 'here', version: 1 })).toBe(true);
    expect(await other.getTask(1, 2)).toMatchObject({ state: 'InProgress', nodeId: 'here', version: 1, reason: 'touched' });
    expect(await h.store.listAllTasks()).toEqual(await other.listAllTasks());
  });

  it('updateTasksInState: the CASes of a batch in one txn, with the answers the single CAS gives', async () => {
    class CountingKV extends MemoryMetaKV {
      txns = 0;
      override txn(compares: readonly Compare[], success: readonly Op[], failure?: readonly Op[]) {
        this.txns++;
        return super.txn(compares, success, failure);
      }
    }
    const kv = new CountingKV();
    const store = new CopyJobStore({ kv, allocId: idAllocator(), viewTasks: true });
    const job = await createJob({ kv, clock: new FakeClock(), store, options: DEFAULT_COPY_OPTIONS }, mappings(40));
    const ids = Array.from({ length: 40 }, (_, i) => i + 1);
    expect(
      await store.putTasksWhilePending(
        job.id,
        ids.map((id) => task(job.id, id)),
      ),
    ).toBe(true);
    await store.listAllTasks();
    const before = kv.txns;
    const dispatch = (id: number, expectedVersion = 0) => ({
      jobId: job.id,
      taskId: id,
      expected: 'Pending' as const,
      expectedVersion,
      patch: { state: 'InProgress' as const, nodeId: `n${id % 3}`, version: expectedVersion + 1, attempts: 1 },
    });
    // 40 updates: 32 per txn (a compare and a put each, under TXN_OPS_MAX = 64), so two txns; a wrong
    // version and an absent task are refused without a call.
    const out = await store.updateTasksInState([...ids.map((id) => dispatch(id)), dispatch(1000), { ...dispatch(41), taskId: 41, expectedVersion: 7 }]);
    expect(out).toEqual([...ids.map(() => true), false, false]);
    expect(kv.txns - before).toBe(2);
    const fresh = new CopyJobStore({ kv, allocId: idAllocator() });
    expect(await fresh.listAllTasks()).toEqual(await store.listAllTasks());
    expect((await fresh.listAllTasks()).every((t) => t.state === 'InProgress' && t.version === 1)).toBe(true);
    // A write from outside the store: the batch txn loses, every update is tried on its own, and each
    // answers as the single CAS would (task 1 moved on: false; task 2 only got a reason: true).
    expect(await fresh.updateTaskInState(job.id, 1, 'InProgress', 1, { state: 'Pending', nodeId: undefined })).toBe(true);
    expect(await fresh.updateTaskInState(job.id, 2, 'InProgress', 1, { reason: 'touched' })).toBe(true);
    const done = (id: number) => ({
      jobId: job.id,
      taskId: id,
      expected: 'InProgress' as const,
      expectedVersion: 1,
      patch: { state: 'Completed' as const },
    });
    expect(await store.updateTasksInState([done(1), done(2), done(3)])).toEqual([false, true, true]);
    expect((await fresh.listAllTasks()).slice(0, 3).map((t) => [t.state, t.reason])).toEqual([
      ['Pending', ''],
      ['Completed', 'touched'],
      ['Completed', ''],
    ]);
    expect(await fresh.listAllTasks()).toEqual(await store.listAllTasks());
    await expect(store.updateTasksInState([done(4), done(4)])).rejects.toThrow('updated twice in one batch');
    expect(await store.updateTasksInState([{ ...done(7), patch: { state: 'Pending', nodeId: undefined } }])).toEqual([true]);
    // An illegal transition is still a programmer error, before anything is written.
    const txns = kv.txns;
    await expect(
      store.updateTasksInState([done(9), { jobId: job.id, taskId: 7, expected: 'Pending', expectedVersion: 1, patch: { state: 'Completed' } }]),
    ).rejects.toThrow('illegal copy task transition Pending → Completed');
    expect(kv.txns).toBe(txns);
    // Without a view: one CAS each, same answers.
    const plain = new CopyJobStore({ kv, allocId: idAllocator() });
    expect(await plain.updateTasksInState([done(9), done(3)])).toEqual([true, false]);
  });

  it('an illegal task transition is a programmer error; so is an InProgress task without a node', async () => {
    const h = harness();
    await seed(h, [task(1, 1)]);
    await expect(h.store.updateTaskInState(1, 1, 'Pending', 0, { state: 'Completed' })).rejects.toThrow('illegal copy task transition Pending → Completed');
    await expect(h.store.updateTaskInState(1, 1, 'Pending', 0, { state: 'InProgress' })).rejects.toSatisfy((e) => isQuiverError(e, 'ServiceInternal'));
  });

  it('deleteJob removes the job and its tasks only, idempotently', async () => {
    const h = harness();
    const a = await createJob(h, mappings(1));
    const b = await createJob(h, mappings(1, 5));
    await seed(h, [task(a.id, 1), task(a.id, 2), task(b.id, 3)]);
    await h.store.deleteJob(a.id);
    await h.store.deleteJob(a.id);
    expect(await h.store.getJob(a.id)).toBeUndefined();
    expect(await h.kv.get(copyTaskKey(a.id, 1))).toBeUndefined();
    expect((await h.store.listAllTasks()).map((t) => t.id)).toEqual([3]);
    expect(await h.store.getJob(b.id)).toBeDefined();
  });

  it('corrupt records are refused on read, naming the key', async () => {
    const h = harness();
    await h.kv.put(copyJobKey(1), JSON.stringify({ id: 1, mappings: [], totalSegments: 3, copiedSegments: 0, timeoutMs: 1 }));
    await expect(h.store.getJob(1)).rejects.toThrow(copyJobKey(1));
    await h.kv.put(copyJobKey(2), JSON.stringify({ id: 2, mappings: [{ source: {} }] }));
    await expect(h.store.getJob(2)).rejects.toThrow(copyJobKey(2));
  });

  it('batchOps bounds ops and bytes per txn', () => {
    const ops: Op[] = Array.from({ length: 150 }, (_, i) => ({ type: 'put', key: `k${i}`, value: new Uint8Array(10_000) }));
    const batches = batchOps(ops, 64, 100_000);
    expect(batches.flat()).toHaveLength(150);
    expect(batches.every((b) => b.length <= 64 && b.length * 10_000 <= 100_000)).toBe(true);
  });

  it('a job of 10,000 segment mappings (16-digit ids) writes values and txns that each fit etcd limits, through Executing and completion', async () => {
    const kv = new MeasuringKV();
    const clock = new FakeClock();
    const big = 4_000_000_000_000_000; // ids as large as a safe integer allows, 16 digits
    const store = new CopyJobStore({ kv, allocId: idAllocator(big) });
    const options = { ...DEFAULT_COPY_OPTIONS, maxSegmentsPerTask: 100 };
    const ms = Array.from({ length: 10_000 }, (_, i) => ({
      sourceSegmentId: big + 100_000 + i,
      targetSegmentId: big + 200_000 + i,
      targetPartitionId: big + 7,
    }));
    const job = newCopyJob({
      id: await store.allocId(),
      snapshotId: big + 1,
      snapshotName: 'snap',
      sourceCollectionId: big + 2,
      sourceDbName: 'default',
      sourceCollectionName: 'src',
      targetCollectionId: big + 3,
      targetDbName: 'default',
      targetCollectionName: 'dst',
      pinId: big + 4,
      mappings: ms,
      createdAtMs: clock.nowMs(),
      timeoutMs: 60_000,
    });
    await store.createJob(job);
    const targets = new RecordingTargets();
    const checker = new CopyJobChecker({ store, targets, workers: new FakeWorkers(), clock, options });
    await checker.tick();
    const tasks = await store.listTasks(job.id);
    expect(tasks).toHaveLength(100);
    for (const t of tasks) {
      expect(await store.updateTaskInState(t.jobId, t.id, 'Pending', 0, { state: 'InProgress', nodeId: 'n', version: 1 })).toBe(true);
      const results: CopiedSegment[] = t.mappings.map((m) => ({ targetSegmentId: m.targetSegmentId, numRows: 1_000_000, filesCopied: 500 }));
      expect(await store.updateTaskInState(t.jobId, t.id, 'InProgress', 1, { state: 'Completed', results })).toBe(true);
    }
    await checker.tick();
    expect((await store.getJob(job.id))!.state).toBe('Completed');
    expect(kv.txns.length).toBeGreaterThan(100);
    const worst = kv.txns.reduce((a, b) => ({
      bytes: Math.max(a.bytes, b.bytes),
      ops: Math.max(a.ops, b.ops),
      valueMax: Math.max(a.valueMax, b.valueMax),
    }));
    expect(worst.valueMax).toBeLessThanOrEqual(VALUE_BYTES_MAX_DEFAULT);
    expect(worst.bytes).toBeLessThanOrEqual(VALUE_BYTES_MAX_DEFAULT);
    expect(worst.ops).toBeLessThanOrEqual(128);
    // The job itself is the largest value: about 0.55 MB at this size.
    expect(worst.valueMax).toBeGreaterThan(500_000);
  });

  it('refuses to write a job over the segment limit', async () => {
    const h = harness();
    const ms = Array.from({ length: SEGMENTS_PER_JOB_MAX + 1 }, (_, i) => ({ sourceSegmentId: i, targetSegmentId: 1e6 + i, targetPartitionId: 1 }));
    await expect(createJob(h, ms)).rejects.toSatisfy((e) => isQuiverError(e, 'ServiceInternal'));
  });
});
