/**
 * CopyJobStore: copy jobs and their tasks as JSON in MetaKV.
 *
 *   quiver/copyjob/{jobId}             one CopyJob
 *   quiver/copytask/{jobId}/{taskId}   one CopyTask
 *
 * Every update is a compare-and-set on the entry's modRevision after checking the expected state (and,
 * for tasks, the dispatch version), so two loops racing on one record never both win; the loser gets
 * `false`, which is normal, not an error. Illegal transitions are programmer errors (assertions).
 */

import { assert, quiverError } from '../../common/errors.js';
import { decodeJson, encodeJson } from '../../meta/json.js';
import type { KvEntry, MetaKV, Op } from '../../meta/meta-kv.js';
import {
  assertJobTransition,
  assertTaskTransition,
  type CopyJob,
  type CopyJobState,
  type CopyTask,
  type CopyTaskState,
} from './types.js';

const JOB_PREFIX = 'quiver/copyjob/';
const TASK_PREFIX = 'quiver/copytask/';

export const copyJobKey = (jobId: number): string => `${JOB_PREFIX}${jobId}`;
export const copyTasksPrefix = (jobId: number): string => `${TASK_PREFIX}${jobId}/`;
export const copyTaskKey = (jobId: number, taskId: number): string => `${copyTasksPrefix(jobId)}${taskId}`;

export type CopyJobPatch = Partial<Omit<CopyJob, 'id'>>;
export type CopyTaskPatch = Partial<Omit<CopyTask, 'id' | 'jobId'>>;

export interface CopyJobStoreDeps {
  readonly kv: MetaKV;
  readonly allocId: () => Promise<number>;
}

export class CopyJobStore {
  readonly #kv: MetaKV;
  readonly #allocId: () => Promise<number>;

  constructor(deps: CopyJobStoreDeps) {
    this.#kv = deps.kv;
    this.#allocId = deps.allocId;
  }

  /** A fresh id for a job or a task (from the injected allocator). */
  allocId(): Promise<number> {
    return this.#allocId();
  }

  /** Writes a new job; ParameterInvalid if a job with that id exists. */
  async createJob(job: CopyJob): Promise<void> {
    checkJob(job);
    const key = copyJobKey(job.id);
    const r = await this.#kv.txn([{ key, target: 'version', op: '==', value: 0 }], [{ type: 'put', key, value: encodeJson(job) }]);
    if (!r.succeeded) throw quiverError('ParameterInvalid', `copy job ${job.id} already exists`);
  }

  async getJob(id: number): Promise<CopyJob | undefined> {
    const e = await this.#kv.get(copyJobKey(id));
    return e === undefined ? undefined : readJob(e);
  }

  /** Every job, ordered by id (oldest first, since ids are allocated in order). */
  async listJobs(): Promise<CopyJob[]> {
    return (await this.#kv.scan(JOB_PREFIX)).map(readJob).sort((a, b) => a.id - b.id);
  }

  /** CAS: applies `patch` if the job exists and is in `expected`; false when it lost the race. */
  async updateJobInState(id: number, expected: CopyJobState, patch: CopyJobPatch): Promise<boolean> {
    return this.#updateJob(id, expected, patch, []);
  }

  /**
   * Transition (1): Pending → Executing and the job's tasks in one txn, so that a crash or a lost race
   * never leaves tasks without their job state (or a second set of tasks).
   */
  async startJob(id: number, patch: CopyJobPatch, tasks: readonly CopyTask[]): Promise<boolean> {
    assert(patch.state === 'Executing', `startJob ${id}: patch must move the job to Executing`);
    const puts = tasks.map((t): Op => {
      assert(t.jobId === id, `startJob ${id}: task ${t.id} belongs to job ${t.jobId}`);
      checkTask(t);
      return { type: 'put', key: copyTaskKey(id, t.id), value: encodeJson(t) };
    });
    return this.#updateJob(id, 'Pending', patch, puts);
  }

  /** Deletes the job and all its tasks in one txn. Idempotent. */
  async deleteJob(id: number): Promise<void> {
    await this.#kv.txn([], [
      { type: 'delete', key: copyJobKey(id) },
      { type: 'deletePrefix', prefix: copyTasksPrefix(id) },
    ]);
  }

  /** Writes new tasks in one txn; ParameterInvalid (and nothing written) if any already exists. */
  async createTasks(tasks: readonly CopyTask[]): Promise<void> {
    if (tasks.length === 0) return;
    for (const t of tasks) checkTask(t);
    const keys = tasks.map((t) => copyTaskKey(t.jobId, t.id));
    const r = await this.#kv.txn(
      keys.map((key) => ({ key, target: 'version' as const, op: '==' as const, value: 0 })),
      tasks.map((t, i): Op => ({ type: 'put', key: keys[i]!, value: encodeJson(t) })),
    );
    if (!r.succeeded) throw quiverError('ParameterInvalid', `copy tasks ${tasks.map((t) => t.id).join(',')}: some already exist`);
  }

  /** The tasks of one job, ordered by task id. */
  async listTasks(jobId: number): Promise<CopyTask[]> {
    return sortTasks((await this.#kv.scan(copyTasksPrefix(jobId))).map(readTask));
  }

  /** Every task of every job, ordered by (job id, task id). */
  async listAllTasks(): Promise<CopyTask[]> {
    return sortTasks((await this.#kv.scan(TASK_PREFIX)).map(readTask));
  }

  async getTask(jobId: number, taskId: number): Promise<CopyTask | undefined> {
    const e = await this.#kv.get(copyTaskKey(jobId, taskId));
    return e === undefined ? undefined : readTask(e);
  }

  /** CAS on (state, version): false when the task is gone, moved on, or was re-dispatched meanwhile. */
  async updateTaskInState(
    jobId: number,
    taskId: number,
    expected: CopyTaskState,
    expectedVersion: number,
    patch: CopyTaskPatch,
  ): Promise<boolean> {
    const key = copyTaskKey(jobId, taskId);
    const e = await this.#kv.get(key);
    if (e === undefined) return false;
    const cur = readTask(e);
    if (cur.state !== expected || cur.version !== expectedVersion) return false;
    if (patch.state !== undefined && patch.state !== expected) assertTaskTransition(expected, patch.state);
    const next: CopyTask = { ...cur, ...patch };
    checkTask(next);
    return this.#cas(e, [{ type: 'put', key, value: encodeJson(next) }]);
  }

  async #updateJob(id: number, expected: CopyJobState, patch: CopyJobPatch, extra: readonly Op[]): Promise<boolean> {
    const key = copyJobKey(id);
    const e = await this.#kv.get(key);
    if (e === undefined) return false;
    const cur = readJob(e);
    if (cur.state !== expected) return false;
    if (patch.state !== undefined && patch.state !== expected) assertJobTransition(expected, patch.state);
    const next: CopyJob = { ...cur, ...patch };
    checkJob(next);
    return this.#cas(e, [{ type: 'put', key, value: encodeJson(next) }, ...extra]);
  }

  async #cas(e: KvEntry, ops: readonly Op[]): Promise<boolean> {
    const r = await this.#kv.txn([{ key: e.key, target: 'modRevision', op: '==', value: e.modRevision }], ops);
    return r.succeeded;
  }
}

export type NewCopyJobInput = Pick<
  CopyJob,
  | 'id'
  | 'snapshotName'
  | 'sourceCollectionId'
  | 'sourceDbName'
  | 'sourceCollectionName'
  | 'targetCollectionId'
  | 'targetDbName'
  | 'targetCollectionName'
  | 'mappings'
  | 'createdAtMs'
  | 'timeoutMs'
>;

/** A Pending job with its counters derived from the mappings. */
export function newCopyJob(input: NewCopyJobInput): CopyJob {
  return { ...input, state: 'Pending', reason: '', totalSegments: input.mappings.length, copiedSegments: 0 };
}

// ---------------------------------------------------------------------------------------------------
// Invariants, checked before every write and after every read

function readJob(e: KvEntry): CopyJob {
  const job = decodeJson<CopyJob>(e);
  checkJob(job, e.key);
  return job;
}

function readTask(e: KvEntry): CopyTask {
  const task = decodeJson<CopyTask>(e);
  checkTask(task, e.key);
  return task;
}

function checkJob(j: CopyJob, key?: string): void {
  const where = key ?? `copy job ${String(j?.id)}`;
  const ok =
    typeof j === 'object' &&
    j !== null &&
    Number.isSafeInteger(j.id) &&
    Array.isArray(j.mappings) &&
    j.totalSegments === j.mappings.length &&
    Number.isSafeInteger(j.copiedSegments) &&
    j.copiedSegments >= 0 &&
    j.copiedSegments <= j.totalSegments &&
    Number.isFinite(j.timeoutMs) &&
    j.timeoutMs > 0;
  if (!ok) {
    throw quiverError('ServiceInternal', `${where}: not a valid copy job (total ${j?.totalSegments}, copied ${j?.copiedSegments}, mappings ${j?.mappings?.length})`);
  }
}

function checkTask(t: CopyTask, key?: string): void {
  const where = key ?? `copy task ${String(t?.id)} of job ${String(t?.jobId)}`;
  const ok =
    typeof t === 'object' &&
    t !== null &&
    Number.isSafeInteger(t.id) &&
    Number.isSafeInteger(t.jobId) &&
    Array.isArray(t.mappings) &&
    Array.isArray(t.results) &&
    Number.isSafeInteger(t.version) &&
    t.version >= 0 &&
    (t.state !== 'InProgress' || typeof t.nodeId === 'string');
  if (!ok) throw quiverError('ServiceInternal', `${where}: not a valid copy task (state ${t?.state}, node ${t?.nodeId})`);
}

function sortTasks(tasks: CopyTask[]): CopyTask[] {
  return tasks.sort((a, b) => a.jobId - b.jobId || a.id - b.id);
}
