/**
 * CopyJobStore: copy jobs and their tasks as JSON in MetaKV.
 *
 *   quiver/copyjob/{jobId}             one CopyJob   (mappings as [source, target, partition] tuples)
 *   quiver/copytask/{jobId}/{taskId}   one CopyTask  (its slice of the mappings, same tuples)
 *
 * Size: a record holds ids only, and every value and every txn this store writes is checked against
 * etcd's request limit (`VALUE_BYTES_MAX_DEFAULT`, 1.5 MiB) before it is sent: a job of
 * `SEGMENTS_PER_JOB_MAX` mappings with 16-digit ids is about 1 MiB, a task of 100 mappings about 5 KiB.
 * Tasks are written in batches (`TXN_OPS_MAX` ops and `TXN_BYTES_MAX` bytes each) while the job is still
 * Pending, with ids derived from the job's `taskIdBase`, so a crash in between re-writes the same tasks;
 * the flip to Executing is one small CAS.
 *
 * Every update is a compare-and-set on the entry's modRevision after checking the expected state (and,
 * for tasks, the dispatch version), so two loops racing on one record never both win; the loser gets
 * `false`, which is normal, not an error. Illegal transitions are programmer errors (assertions).
 *
 * Task view (`viewTasks`, the coordinator's store): the tasks are read from MetaKV once, on the first
 * task read, and kept in memory with each record's modRevision; every task write this store makes
 * updates the view after its txn (write-through: MetaKV stays the truth, a new store after a restart
 * reads it again). Reads of tasks then cost no round trip, and a task CAS is a single txn on the
 * remembered modRevision instead of a get and a txn. A CAS that loses (a writer outside this store:
 * another coordinator, a test) re-reads that one record, so the view heals where it was wrong and the
 * answer is the same as without a view. It does not see tasks another process creates: one coordinator
 * owns the copy jobs at a time (a new one starts with a fresh store).
 */

import { quiverError } from '../../common/errors.js';
import { decodeJson, encodeJson } from '../../meta/json.js';
import { toBytes, VALUE_BYTES_MAX_DEFAULT, type Compare, type KvEntry, type MetaKV, type Op } from '../../meta/meta-kv.js';
import {
  assertJobTransition,
  assertTaskTransition,
  COPY_JOB_STATES,
  SEGMENTS_PER_JOB_MAX,
  type CopyJob,
  type CopyJobState,
  type CopyTask,
  type CopyTaskState,
  type SegmentMapping,
} from './types.js';

const JOB_PREFIX = 'quiver/copyjob/';
const TASK_PREFIX = 'quiver/copytask/';

/** etcd's default --max-txn-ops is 128; we stay well under it. */
export const TXN_OPS_MAX = 64;
/** Bytes of keys and values in one txn: under etcd's 1.5 MiB request limit with room for framing. */
export const TXN_BYTES_MAX = 1024 * 1024;

export const copyJobKey = (jobId: number): string => `${JOB_PREFIX}${jobId}`;
export const copyTasksPrefix = (jobId: number): string => `${TASK_PREFIX}${jobId}/`;
export const copyTaskKey = (jobId: number, taskId: number): string => `${copyTasksPrefix(jobId)}${taskId}`;

export type CopyJobPatch = Partial<Omit<CopyJob, 'id'>>;
export type CopyTaskPatch = Partial<Omit<CopyTask, 'id' | 'jobId'>>;

/** One task CAS of a batch (`updateTasksInState`): the patch applies if the task is in (expected, expectedVersion). */
export interface TaskUpdate {
  readonly jobId: number;
  readonly taskId: number;
  readonly expected: CopyTaskState;
  readonly expectedVersion: number;
  readonly patch: CopyTaskPatch;
}

export interface CopyJobStoreDeps {
  readonly kv: MetaKV;
  readonly allocId: (count?: number) => Promise<number>;
  /** Keep the task view (see the header): for the one coordinator that writes the tasks. Default false. */
  readonly viewTasks?: boolean | undefined;
}

/** A task as last read or written by this store, with the modRevision its next CAS compares. */
interface ViewedTask {
  readonly task: CopyTask;
  readonly modRevision: number;
}

/** Tasks whose CAS lost are re-read and the CAS tried again at most this many times (each loss = a change). */
const TASK_CAS_ATTEMPTS_MAX = 3;

export class CopyJobStore {
  readonly #kv: MetaKV;
  readonly #allocId: (count?: number) => Promise<number>;
  readonly #viewTasks: boolean;
  /** Task key → task; loaded once (memoised promise, reset when the load fails). */
  #view: Promise<Map<string, ViewedTask>> | undefined;

  constructor(deps: CopyJobStoreDeps) {
    this.#kv = deps.kv;
    this.#allocId = deps.allocId;
    this.#viewTasks = deps.viewTasks ?? false;
  }

  /** The task view, read from MetaKV on first use; undefined when this store keeps none. */
  #tasksView(): Promise<Map<string, ViewedTask>> | undefined {
    if (!this.#viewTasks) return undefined;
    this.#view ??= this.#kv.scan(TASK_PREFIX).then(
      (entries) => new Map(entries.map((e) => [e.key, { task: readTask(e), modRevision: e.modRevision }] as const)),
      (e: unknown) => {
        this.#view = undefined;
        throw e;
      },
    );
    return this.#view;
  }

  /** Drops the task view: the next task read loads it from MetaKV again (what a restarted coordinator does). */
  reloadTasks(): void {
    this.#view = undefined;
  }

  /** `count` consecutive fresh ids (from the injected allocator); returns the first. */
  allocId(count = 1): Promise<number> {
    return this.#allocId(count);
  }

  /** The put (and its "absent" compare) of a new job, for a caller that commits it in its own txn. */
  createJobTxn(job: CopyJob): { compare: Compare; op: Op } {
    checkJob(job);
    const key = copyJobKey(job.id);
    return { compare: { key, target: 'version', op: '==', value: 0 }, op: { type: 'put', key, value: encodeSized(key, encodeJob(job)) } };
  }

  /** Writes a new job; ParameterInvalid if a job with that id exists. */
  async createJob(job: CopyJob): Promise<void> {
    const { compare, op } = this.createJobTxn(job);
    const r = await this.#kv.txn([compare], [op]);
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
    return this.#updateJob(id, expected, patch, undefined);
  }

  /** CAS on the exact record read (`cur`): false when anything changed since. */
  async updateJobIfUnchanged(cur: CopyJob, patch: CopyJobPatch): Promise<boolean> {
    return this.#updateJob(cur.id, cur.state, patch, cur);
  }

  /**
   * Writes a Pending job's tasks (new, or the same again after a crash) in bounded batches. Each batch
   * is a CAS on the job's record as read here, so once the job moved on (another checker started it and
   * the inspector may be dispatching) no late batch can overwrite a task. False when that happened.
   */
  async putTasksWhilePending(jobId: number, tasks: readonly CopyTask[]): Promise<boolean> {
    const e = await this.#kv.get(copyJobKey(jobId));
    if (e === undefined || readJob(e).state !== 'Pending') return false;
    const ops = tasks.map((t): Op => {
      if (t.jobId !== jobId) throw new Error(`assertion failed: task ${t.id} belongs to job ${t.jobId}, not ${jobId}`);
      checkTask(t);
      const key = copyTaskKey(t.jobId, t.id);
      return { type: 'put', key, value: encodeSized(key, encodeTask(t)) };
    });
    const view = await this.#tasksView();
    for (const batch of batchOps(ops)) {
      const r = await this.#kv.txn([{ key: e.key, target: 'modRevision', op: '==', value: e.modRevision }], batch);
      if (!r.succeeded) return false;
      if (view === undefined) continue;
      for (const op of batch) if (op.type === 'put') remember(view, op.key, { task: decodeTask(op.key, toBytes(op.value)), modRevision: r.revision });
    }
    return true;
  }

  /** Deletes the job and all its tasks in one txn. Idempotent. */
  async deleteJob(id: number): Promise<void> {
    const view = await this.#tasksView();
    await this.#kv.txn(
      [],
      [
        { type: 'delete', key: copyJobKey(id) },
        { type: 'deletePrefix', prefix: copyTasksPrefix(id) },
      ],
    );
    if (view === undefined) return;
    const prefix = copyTasksPrefix(id);
    for (const key of [...view.keys()]) if (key.startsWith(prefix)) view.delete(key);
  }

  /** The tasks of one job, ordered by task id. */
  async listTasks(jobId: number): Promise<CopyTask[]> {
    const view = await this.#tasksView();
    if (view === undefined) return sortTasks((await this.#kv.scan(copyTasksPrefix(jobId))).map(readTask));
    return sortTasks([...view.values()].filter((v) => v.task.jobId === jobId).map((v) => v.task));
  }

  /** Every task of every job, ordered by (job id, task id). */
  async listAllTasks(): Promise<CopyTask[]> {
    const view = await this.#tasksView();
    if (view === undefined) return sortTasks((await this.#kv.scan(TASK_PREFIX)).map(readTask));
    return sortTasks([...view.values()].map((v) => v.task));
  }

  async getTask(jobId: number, taskId: number): Promise<CopyTask | undefined> {
    const view = await this.#tasksView();
    if (view !== undefined) return view.get(copyTaskKey(jobId, taskId))?.task;
    const e = await this.#kv.get(copyTaskKey(jobId, taskId));
    return e === undefined ? undefined : readTask(e);
  }

  /** CAS on (state, version): false when the task is gone, moved on, or was re-dispatched meanwhile. */
  async updateTaskInState(jobId: number, taskId: number, expected: CopyTaskState, expectedVersion: number, patch: CopyTaskPatch): Promise<boolean> {
    const key = copyTaskKey(jobId, taskId);
    const view = await this.#tasksView();
    let cur: ViewedTask | undefined = view?.get(key);
    for (let attempt = 0; attempt < TASK_CAS_ATTEMPTS_MAX; attempt++) {
      if (cur === undefined || attempt > 0) {
        // No view, or the view was wrong (a writer outside this store): read the record itself.
        const e = await this.#kv.get(key);
        cur = e === undefined ? undefined : { task: readTask(e), modRevision: e.modRevision };
        if (view !== undefined) {
          if (cur === undefined) view.delete(key);
          else remember(view, key, cur);
        }
      }
      if (cur === undefined) return false;
      if (cur.task.state !== expected || cur.task.version !== expectedVersion) return false;
      if (patch.state !== undefined && patch.state !== expected) assertTaskTransition(expected, patch.state);
      const next: CopyTask = { ...cur.task, ...patch };
      checkTask(next);
      const value = encodeSized(key, encodeTask(next));
      const r = await this.#kv.txn([{ key, target: 'modRevision', op: '==', value: cur.modRevision }], [{ type: 'put', key, value }]);
      if (r.succeeded) {
        if (view !== undefined) remember(view, key, { task: decodeTask(key, value), modRevision: r.revision });
        return true;
      }
      // Without a view the record was read just before: a lost CAS is a lost race, as it always was.
      if (view === undefined) return false;
    }
    return false;
  }

  /**
   * The same CASes as `updateTaskInState`, one per update (same answers), committed together: with the
   * task view, the updates the view admits go in as few txns as the size limits allow (one per inspector
   * pass in practice: every completion it heard and every dispatch it placed), each txn comparing every
   * record's modRevision. A txn is all or nothing, so one that loses (a writer outside this store) is
   * retried update by update, where each loser re-reads its own record. Without a view, one CAS each.
   */
  async updateTasksInState(updates: readonly TaskUpdate[]): Promise<boolean[]> {
    const view = await this.#tasksView();
    const out = new Array<boolean>(updates.length).fill(false);
    if (view === undefined) {
      for (const [i, u] of updates.entries()) out[i] = await this.updateTaskInState(u.jobId, u.taskId, u.expected, u.expectedVersion, u.patch);
      return out;
    }
    const keys = new Set<string>();
    const staged: { readonly i: number; readonly key: string; readonly modRevision: number; readonly value: Uint8Array }[] = [];
    for (const [i, u] of updates.entries()) {
      const key = copyTaskKey(u.jobId, u.taskId);
      if (keys.has(key)) throw new Error(`assertion failed: task ${u.taskId} of job ${u.jobId} updated twice in one batch`);
      keys.add(key);
      const cur = view.get(key);
      // What the single CAS answers on its first look (the view is what it compares against).
      if (cur === undefined || cur.task.state !== u.expected || cur.task.version !== u.expectedVersion) continue;
      if (u.patch.state !== undefined && u.patch.state !== u.expected) assertTaskTransition(u.expected, u.patch.state);
      const next: CopyTask = { ...cur.task, ...u.patch };
      checkTask(next);
      staged.push({ i, key, modRevision: cur.modRevision, value: encodeSized(key, encodeTask(next)) });
    }
    // Each update is one compare and one put: halve the op limit, and bound the bytes as batchOps does.
    for (const chunk of chunkStaged(staged)) {
      const r = await this.#kv.txn(
        chunk.map((s) => ({ key: s.key, target: 'modRevision' as const, op: '==' as const, value: s.modRevision })),
        chunk.map((s): Op => ({ type: 'put', key: s.key, value: s.value })),
      );
      if (r.succeeded) {
        for (const s of chunk) {
          remember(view, s.key, { task: decodeTask(s.key, s.value), modRevision: r.revision });
          out[s.i] = true;
        }
        continue;
      }
      for (const s of chunk) {
        const u = updates[s.i]!;
        out[s.i] = await this.updateTaskInState(u.jobId, u.taskId, u.expected, u.expectedVersion, u.patch);
      }
    }
    return out;
  }

  async #updateJob(id: number, expected: CopyJobState, patch: CopyJobPatch, exact: CopyJob | undefined): Promise<boolean> {
    const key = copyJobKey(id);
    const e = await this.#kv.get(key);
    if (e === undefined) return false;
    const cur = readJob(e);
    if (cur.state !== expected) return false;
    if (exact !== undefined && (cur.deadlineMs !== exact.deadlineMs || cur.attempts !== exact.attempts)) return false;
    if (patch.state !== undefined && patch.state !== expected) assertJobTransition(expected, patch.state);
    const next: CopyJob = { ...cur, ...patch };
    checkJob(next);
    return this.#cas(e, [{ type: 'put', key, value: encodeSized(key, encodeJob(next)) }]);
  }

  async #cas(e: KvEntry, ops: readonly Op[]): Promise<boolean> {
    const r = await this.#kv.txn([{ key: e.key, target: 'modRevision', op: '==', value: e.modRevision }], ops);
    return r.succeeded;
  }
}

export type NewCopyJobInput = Pick<
  CopyJob,
  | 'id'
  | 'snapshotId'
  | 'snapshotName'
  | 'sourceCollectionId'
  | 'sourcePrefix'
  | 'sourceDbName'
  | 'sourceCollectionName'
  | 'targetCollectionId'
  | 'targetDbName'
  | 'targetCollectionName'
  | 'pinId'
  | 'mappings'
  | 'createdAtMs'
  | 'timeoutMs'
>;

/** A Pending job with its counters derived from the mappings; its deadline is the job timeout. */
export function newCopyJob(input: NewCopyJobInput): CopyJob {
  return {
    ...input,
    state: 'Pending',
    stateSinceMs: input.createdAtMs,
    deadlineMs: input.createdAtMs + input.timeoutMs,
    attempts: 0,
    reason: '',
    totalSegments: input.mappings.length,
    copiedSegments: 0,
  };
}

// ---------------------------------------------------------------------------------------------------
// Encoding: mappings as [sourceSegmentId, targetSegmentId, targetPartitionId] tuples (a third of the
// bytes of objects with field names, which is what keeps a 10,000-segment job under the limit).

type MappingTuple = readonly [number, number, number];

function toTuples(ms: readonly SegmentMapping[]): MappingTuple[] {
  return ms.map((m) => [m.sourceSegmentId, m.targetSegmentId, m.targetPartitionId] as const);
}

function fromTuples(raw: unknown, where: string): SegmentMapping[] {
  if (!Array.isArray(raw)) throw quiverError('ServiceInternal', `${where}: mappings are not a list`);
  return raw.map((t: unknown) => {
    if (!Array.isArray(t) || t.length !== 3 || !t.every((x) => Number.isSafeInteger(x))) {
      throw quiverError('ServiceInternal', `${where}: mapping ${JSON.stringify(t)} is not [source, target, partition]`);
    }
    return { sourceSegmentId: t[0] as number, targetSegmentId: t[1] as number, targetPartitionId: t[2] as number };
  });
}

export function encodeJob(job: CopyJob): Uint8Array {
  return encodeJson({ ...job, mappings: toTuples(job.mappings) });
}

export function encodeTask(task: CopyTask): Uint8Array {
  return encodeJson({ ...task, mappings: toTuples(task.mappings) });
}

/** The bytes of a value, asserted to fit one etcd request. */
function encodeSized(key: string, value: Uint8Array): Uint8Array {
  if (value.byteLength + key.length > VALUE_BYTES_MAX_DEFAULT) {
    throw quiverError('ParameterInvalid', `meta value ${key} is ${value.byteLength} bytes, over the ${VALUE_BYTES_MAX_DEFAULT}-byte request limit`);
  }
  return value;
}

function opBytes(op: Op): number {
  switch (op.type) {
    case 'put':
      return op.key.length + (typeof op.value === 'string' ? op.value.length * 3 : op.value.byteLength);
    case 'delete':
      return op.key.length;
    case 'deletePrefix':
      return op.prefix.length;
    default: {
      const never: never = op;
      throw new Error(`assertion failed: unknown op ${JSON.stringify(never)}`);
    }
  }
}

/** Splits ops into txns of at most `TXN_OPS_MAX` ops and `TXN_BYTES_MAX` bytes (one op may be alone over it). */
export function batchOps(ops: readonly Op[], opsMax = TXN_OPS_MAX, bytesMax = TXN_BYTES_MAX): Op[][] {
  const out: Op[][] = [];
  let cur: Op[] = [];
  let bytes = 0;
  for (const op of ops) {
    const b = opBytes(op);
    if (cur.length > 0 && (cur.length >= opsMax || bytes + b > bytesMax)) {
      out.push(cur);
      cur = [];
      bytes = 0;
    }
    cur.push(op);
    bytes += b;
  }
  if (cur.length > 0) out.push(cur);
  return out;
}

/** Staged task CASes in txns of at most TXN_OPS_MAX / 2 updates (a compare and a put each) and TXN_BYTES_MAX bytes. */
function chunkStaged<T extends { readonly key: string; readonly value: Uint8Array }>(staged: readonly T[]): T[][] {
  const out: T[][] = [];
  let cur: T[] = [];
  let bytes = 0;
  for (const s of staged) {
    const b = 2 * s.key.length + s.value.byteLength;
    if (cur.length > 0 && (cur.length >= TXN_OPS_MAX / 2 || bytes + b > TXN_BYTES_MAX)) {
      out.push(cur);
      cur = [];
      bytes = 0;
    }
    cur.push(s);
    bytes += b;
  }
  if (cur.length > 0) out.push(cur);
  return out;
}

// ---------------------------------------------------------------------------------------------------
// Invariants, checked before every write and after every read

function readJob(e: KvEntry): CopyJob {
  const raw = decodeJson<CopyJob & { mappings: unknown }>(e);
  const job: CopyJob = { ...raw, mappings: fromTuples(raw?.mappings, e.key) };
  checkJob(job, e.key);
  return job;
}

function readTask(e: KvEntry): CopyTask {
  return decodeTask(e.key, e.value);
}

/** The task as a read of `value` returns it (the view keeps exactly that: absent keys absent, not undefined). */
function decodeTask(key: string, value: Uint8Array): CopyTask {
  const raw = decodeJson<CopyTask & { mappings: unknown }>(value);
  const task: CopyTask = { ...raw, mappings: fromTuples(raw?.mappings, key) };
  checkTask(task, key);
  return task;
}

function checkJob(j: CopyJob, key?: string): void {
  const where = key ?? `copy job ${String(j?.id)}`;
  const ok =
    typeof j === 'object' &&
    j !== null &&
    Number.isSafeInteger(j.id) &&
    COPY_JOB_STATES.includes(j.state) &&
    Number.isSafeInteger(j.snapshotId) &&
    Number.isSafeInteger(j.pinId) &&
    (j.sourcePrefix === undefined || typeof j.sourcePrefix === 'string') &&
    Array.isArray(j.mappings) &&
    j.mappings.length <= SEGMENTS_PER_JOB_MAX &&
    j.totalSegments === j.mappings.length &&
    Number.isSafeInteger(j.copiedSegments) &&
    j.copiedSegments >= 0 &&
    j.copiedSegments <= j.totalSegments &&
    Number.isFinite(j.timeoutMs) &&
    j.timeoutMs > 0 &&
    Number.isFinite(j.deadlineMs) &&
    Number.isFinite(j.stateSinceMs) &&
    Number.isSafeInteger(j.attempts) &&
    j.attempts >= 0 &&
    (j.lastError === undefined || typeof j.lastError === 'string');
  if (!ok) {
    throw quiverError(
      'ServiceInternal',
      `${where}: not a valid copy job (state ${j?.state}, total ${j?.totalSegments}, copied ${j?.copiedSegments}, mappings ${j?.mappings?.length})`,
    );
  }
}

function checkTask(t: CopyTask, key?: string): void {
  const where = key ?? `copy task ${String(t?.id)} of job ${String(t?.jobId)}`;
  const ok =
    typeof t === 'object' &&
    t !== null &&
    Number.isSafeInteger(t.id) &&
    Number.isSafeInteger(t.jobId) &&
    typeof t.snapshot === 'object' &&
    t.snapshot !== null &&
    Number.isSafeInteger(t.snapshot.collectionId) &&
    Number.isSafeInteger(t.snapshot.snapshotId) &&
    (t.snapshot.sourcePrefix === undefined || typeof t.snapshot.sourcePrefix === 'string') &&
    Number.isSafeInteger(t.targetCollectionId) &&
    Array.isArray(t.mappings) &&
    Array.isArray(t.results) &&
    t.results.length <= t.mappings.length &&
    Number.isSafeInteger(t.version) &&
    t.version >= 0 &&
    (t.state !== 'InProgress' || typeof t.nodeId === 'string');
  if (!ok) throw quiverError('ServiceInternal', `${where}: not a valid copy task (state ${t?.state}, node ${t?.nodeId})`);
}

/** Keeps the newer of two versions of a record (answers of concurrent calls may arrive out of order). */
function remember(view: Map<string, ViewedTask>, key: string, v: ViewedTask): void {
  const old = view.get(key);
  if (old === undefined || old.modRevision <= v.modRevision) view.set(key, v);
}

function sortTasks(tasks: CopyTask[]): CopyTask[] {
  return tasks.sort((a, b) => a.jobId - b.jobId || a.id - b.id);
}
