import { describe, expect, it } from 'vitest';
import { isQuiverError } from '../../common/errors.js';
import { copyJobKey, copyTaskKey } from './copy-job-store.js';
import { createJob, harness, mappings, mustGetJob } from './copy.test-util.js';
import type { CopyTask } from './types.js';

function task(jobId: number, id: number, over: Partial<CopyTask> = {}): CopyTask {
  return { id, jobId, state: 'Pending', mappings: [], version: 0, attempts: 0, reason: '', results: [], createdAtMs: 1, updatedAtMs: 1, ...over };
}

describe('CopyJobStore', () => {
  it('creates, reads, lists (by id) and refuses a duplicate job', async () => {
    const h = harness();
    const a = await createJob(h, mappings(2));
    const b = await createJob(h, mappings(1, 10));
    expect(await h.store.getJob(a.id)).toEqual(a);
    expect((await h.store.listJobs()).map((j) => j.id)).toEqual([a.id, b.id]);
    expect(a).toMatchObject({ state: 'Pending', totalSegments: 2, copiedSegments: 0, reason: '' });
    await expect(h.store.createJob(a)).rejects.toSatisfy((e) => isQuiverError(e, 'ParameterInvalid'));
    expect(await h.store.getJob(999_999)).toBeUndefined();
    expect(await h.kv.get(copyJobKey(a.id))).toBeDefined();
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
    // Two writers read the same revision; only one txn can succeed.
    const results = await Promise.all([
      h.store.updateJobInState(job.id, 'Pending', { outcome: 'Failed', reason: 'a' }),
      h.store.updateJobInState(job.id, 'Pending', { outcome: 'Completed', reason: 'b' }),
    ]);
    expect(results.filter(Boolean)).toHaveLength(1);
  });

  it('an illegal job transition is a programmer error', async () => {
    const h = harness();
    const job = await createJob(h, mappings(1));
    await expect(h.store.updateJobInState(job.id, 'Pending', { state: 'Completed' })).rejects.toThrow('illegal copy job transition Pending → Completed');
  });

  it('clears optional fields patched to undefined', async () => {
    const h = harness();
    const job = await createJob(h, mappings(1));
    await h.store.updateJobInState(job.id, 'Pending', { outcome: 'Failed', outcomeAtMs: 7 });
    await h.store.updateJobInState(job.id, 'Pending', { outcome: undefined, outcomeAtMs: undefined });
    const read = await mustGetJob(h.store, job.id);
    expect('outcome' in read).toBe(false);
    expect('outcomeAtMs' in read).toBe(false);
  });

  it('startJob writes the state and the tasks in one txn, and only from Pending', async () => {
    const h = harness();
    const job = await createJob(h, mappings(2));
    const rev = await h.kv.revision();
    const tasks = [task(job.id, 1), task(job.id, 2)];
    expect(await h.store.startJob(job.id, { state: 'Executing', startedAtMs: 9 }, tasks)).toBe(true);
    expect(await h.kv.revision()).toBe(rev + 1);
    expect((await h.store.listTasks(job.id)).map((t) => t.id)).toEqual([1, 2]);
    expect(await h.store.startJob(job.id, { state: 'Executing' }, [task(job.id, 3)])).toBe(false);
    expect(await h.store.listTasks(job.id)).toHaveLength(2);
  });

  it('createTasks is all-or-nothing and tasks list in (job, task) order', async () => {
    const h = harness();
    await h.store.createTasks([task(2, 10), task(1, 11), task(1, 3)]);
    expect((await h.store.listAllTasks()).map((t) => [t.jobId, t.id])).toEqual([[1, 3], [1, 11], [2, 10]]);
    await expect(h.store.createTasks([task(3, 1), task(1, 3)])).rejects.toSatisfy((e) => isQuiverError(e, 'ParameterInvalid'));
    expect(await h.store.listTasks(3)).toEqual([]);
    await h.store.createTasks([]);
  });

  it('updateTaskInState is a CAS on (state, version)', async () => {
    const h = harness();
    await h.store.createTasks([task(1, 1)]);
    expect(await h.store.updateTaskInState(1, 1, 'Pending', 1, { state: 'InProgress', nodeId: 'n', version: 2 })).toBe(false);
    expect(await h.store.updateTaskInState(1, 1, 'InProgress', 0, { state: 'Completed' })).toBe(false);
    expect(await h.store.updateTaskInState(1, 1, 'Pending', 0, { state: 'InProgress', nodeId: 'n', version: 1 })).toBe(true);
    // A stale writer that still believes version 0.
    expect(await h.store.updateTaskInState(1, 1, 'InProgress', 0, { state: 'Completed' })).toBe(false);
    expect(await h.store.updateTaskInState(1, 1, 'InProgress', 1, { state: 'Pending', nodeId: undefined })).toBe(true);
    const t = await h.store.getTask(1, 1);
    expect(t).toMatchObject({ state: 'Pending', version: 1 });
    expect(t && 'nodeId' in t).toBe(false);
    expect(await h.store.updateTaskInState(1, 99, 'Pending', 0, {})).toBe(false);
  });

  it('an illegal task transition is a programmer error; so is an InProgress task without a node', async () => {
    const h = harness();
    await h.store.createTasks([task(1, 1)]);
    await expect(h.store.updateTaskInState(1, 1, 'Pending', 0, { state: 'Completed' })).rejects.toThrow('illegal copy task transition Pending → Completed');
    await expect(h.store.updateTaskInState(1, 1, 'Pending', 0, { state: 'InProgress' })).rejects.toSatisfy((e) =>
      isQuiverError(e, 'ServiceInternal'),
    );
  });

  it('deleteJob removes the job and its tasks only, idempotently', async () => {
    const h = harness();
    const a = await createJob(h, mappings(1));
    const b = await createJob(h, mappings(1, 5));
    await h.store.createTasks([task(a.id, 1), task(a.id, 2), task(b.id, 3)]);
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
  });
});
