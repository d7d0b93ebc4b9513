import type { Logger } from 'pino';
import type { Clock } from '../../common/clock.js';
import { quiverError } from '../../common/errors.js';
import type { MetaKV } from '../../meta/meta-kv.js';
import type { Engine } from '../../node/engine.js';
import { InProcessWorkerPool } from '../../node/copy-worker/index.js';
import type { ObjectStore } from '../../storage/object-store.js';
import {
  CopyJobChecker,
  CopyJobStore,
  DEFAULT_COPY_OPTIONS,
  TaskInspector,
  jobProgress,
  newCopyJob,
  type CopiedSegment,
  type CopyJob,
  type CopyOptions,
  type JobFinalizer,
  type SegmentMapping,
  type WorkerClient,
} from '../copy/index.js';
import type { SnapshotManager } from './snapshot-manager.js';

/**
 * Restore a snapshot into a new collection (DESIGN.md §4 "Restore"). `restore` validates, creates the
 * invisible target (collection state Restoring, segments Importing), pins the source snapshot and saves a
 * CopySegmentJob; the checker and inspector loops drive it; this class is also the job's finalizer:
 * `complete` publishes every target segment and the collection in one transaction, `rollback` deletes the
 * copied files and the target. Both are idempotent, as the checker may call them again after a crash.
 */

export interface RestoreDeps {
  readonly engine: Engine;
  readonly snapshots: SnapshotManager;
  readonly kv: MetaKV;
  readonly store: ObjectStore;
  readonly clock: Clock;
  readonly log: Logger;
  /** Defaults to one in-process worker node over `store`. */
  readonly workers?: WorkerClient;
}

export class RestoreService implements JobFinalizer {
  readonly jobs: CopyJobStore;
  readonly checker: CopyJobChecker;
  readonly inspector: TaskInspector;
  readonly workers: WorkerClient;
  readonly #engine: Engine;
  readonly #snapshots: SnapshotManager;
  readonly #store: ObjectStore;
  readonly #clock: Clock;
  readonly #log: Logger;
  readonly #options: CopyOptions;
  /** Observers of finished jobs (metrics). */
  readonly onJobFinished: ((job: CopyJob, outcome: 'Completed' | 'Failed') => void)[] = [];

  constructor(deps: RestoreDeps, options: CopyOptions = DEFAULT_COPY_OPTIONS) {
    this.#engine = deps.engine;
    this.#snapshots = deps.snapshots;
    this.#store = deps.store;
    this.#clock = deps.clock;
    this.#log = deps.log;
    this.#options = options;
    this.jobs = new CopyJobStore({ kv: deps.kv, allocId: () => deps.engine.ids.alloc() });
    let inspector: TaskInspector | undefined;
    const pool =
      deps.workers ??
      new InProcessWorkerPool({
        store: deps.store,
        // A finished copy kicks the inspector, whose report kicks the checker: no waiting for ticks.
        onTaskFinished: () => void inspector?.kick(),
      });
    this.workers = pool;
    this.checker = new CopyJobChecker({
      store: this.jobs,
      finalizer: this,
      workers: pool,
      clock: deps.clock,
      options,
      log: deps.log,
      onTasksCreated: () => void inspector?.kick(),
    });
    inspector = new TaskInspector({
      store: this.jobs,
      workers: pool,
      clock: deps.clock,
      log: deps.log,
      intervalMs: options.checkIntervalMs,
      onTaskDone: () => void this.checker.kick(),
    });
    this.inspector = inspector;
  }

  start(): void {
    this.checker.start();
    this.inspector.start();
  }

  async stop(): Promise<void> {
    await this.inspector.stop();
    await this.checker.stop();
  }

  async restore(input: { sourceDb: string; sourceCollection: string; name: string; targetDb: string; targetCollection: string }): Promise<CopyJob> {
    const rec = await this.#snapshots.describe(input.sourceDb, input.sourceCollection, input.name);
    const db = this.#engine.catalog.requireDatabase(input.targetDb);
    if (this.#engine.catalog.nameTaken(db.id, input.targetCollection)) {
      throw quiverError('ParameterInvalid', `collection already exists: ${input.targetCollection} in database ${input.targetDb}; restore needs a new collection name`);
    }
    const contents = await this.#snapshots.readContents(rec);
    const md = contents.metadata;
    const partitionName = new Map(md.partitions.map((p) => [p.id, p.name]));
    const { collection, segmentIds } = await this.#engine.createRestoreTarget({
      dbName: input.targetDb,
      name: input.targetCollection,
      source: {
        id: md.collection_id,
        dbId: 0,
        name: md.collection_name,
        schema: md.schema,
        shardsNum: md.shards_num,
        consistencyLevel: md.consistency_level,
        properties: md.properties,
        partitions: [],
        createdTs: md.create_ts,
        updateTs: md.create_ts,
        state: 'Created',
        loaded: false,
      },
      partitions: md.partitions.map((p) => ({ name: p.name })),
      indexes: md.indexes,
      segments: contents.entries.map((e) => ({ sourceId: e.segment.id, partitionName: partitionName.get(e.segment.partitionId) ?? '_default', numRows: e.segment.numRows })),
    });
    const mappings: SegmentMapping[] = contents.entries.map((e) => {
      const t = segmentIds.get(e.segment.id)!;
      return { source: e.segment, targetSegmentId: t.targetId, targetPartitionId: t.partitionId, targetCollectionId: collection.id };
    });
    let jobId = 0;
    let job: CopyJob;
    try {
      jobId = await this.jobs.allocId();
      // The source snapshot cannot be dropped while the job reads its files.
      await this.#snapshots.pin(input.sourceDb, input.sourceCollection, input.name, 0, jobId);
      job = newCopyJob({
        id: jobId,
        snapshotName: input.name,
        sourceCollectionId: md.collection_id,
        sourceDbName: input.sourceDb,
        sourceCollectionName: input.sourceCollection,
        targetCollectionId: collection.id,
        targetDbName: input.targetDb,
        targetCollectionName: input.targetCollection,
        mappings,
        createdAtMs: this.#clock.nowMs(),
        timeoutMs: this.#options.jobTimeoutMs,
      });
      await this.jobs.createJob(job);
    } catch (err) {
      // Nothing may stay half-made: the invisible target would keep its name reserved forever.
      await this.#engine.abortRestore(collection.id).catch(() => undefined);
      await this.#releasePins(jobId).catch(() => undefined);
      throw err;
    }
    this.#log.info({ jobId, snapshot: input.name, target: input.targetCollection, segments: mappings.length }, 'restore job created');
    void this.checker.kick();
    return job;
  }

  async complete(job: CopyJob, results: readonly CopiedSegment[]): Promise<void> {
    await this.#engine.completeRestore(job.targetCollectionId, results.map((r) => r.record));
    await this.#releasePins(job.id);
    this.#log.info({ jobId: job.id, target: job.targetCollectionName, segments: results.length }, 'restore completed');
    for (const f of this.onJobFinished) f(job, 'Completed');
  }

  async rollback(job: CopyJob, copiedKeys: readonly string[]): Promise<void> {
    for (const key of copiedKeys) await this.#store.delete(key);
    await this.#engine.abortRestore(job.targetCollectionId);
    await this.#releasePins(job.id);
    this.#log.warn({ jobId: job.id, target: job.targetCollectionName, reason: job.reason }, 'restore failed and was rolled back');
    for (const f of this.onJobFinished) f(job, 'Failed');
  }

  async #releasePins(jobId: number): Promise<void> {
    for (const p of this.#snapshots.activePinsAll()) if (p.jobId === jobId) await this.#snapshots.unpin(p.id);
  }

  async job(jobId: number): Promise<CopyJob> {
    const job = await this.jobs.getJob(jobId);
    if (!job) throw quiverError('RestoreJobNotFound', `restore job not found[job_id=${jobId}]`);
    return job;
  }

  async list(filter: { dbName?: string; collectionName?: string }): Promise<CopyJob[]> {
    return (await this.jobs.listJobs()).filter(
      (j) => (!filter.dbName || j.targetDbName === filter.dbName) && (!filter.collectionName || j.targetCollectionName === filter.collectionName),
    );
  }

  /** Awaits the end of a job (tests, CLI in-process): polls persisted state. */
  async waitFor(jobId: number, timeoutMs = 60_000): Promise<CopyJob> {
    const end = this.#clock.nowMs() + timeoutMs;
    for (;;) {
      const job = await this.job(jobId);
      if (job.state === 'Completed' || job.state === 'Failed') return job;
      if (this.#clock.nowMs() > end) throw new Error(`restore job ${jobId} did not finish within ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 10));
    }
  }
}

export function restoreInfo(job: CopyJob, nowMs: number): Record<string, unknown> {
  const state = { Pending: 'RestoreSnapshotPending', Executing: 'RestoreSnapshotExecuting', Completed: 'RestoreSnapshotCompleted', Failed: 'RestoreSnapshotFailed' }[job.state];
  const start = job.startedAtMs ?? job.createdAtMs;
  const end = job.finishedAtMs ?? nowMs;
  return {
    job_id: String(job.id),
    snapshot_name: job.snapshotName,
    db_name: job.targetDbName,
    collection_name: job.targetCollectionName,
    state,
    progress: jobProgress(job),
    reason: job.reason,
    start_time: String(job.createdAtMs),
    time_cost: String(Math.max(0, end - start)),
  };
}
