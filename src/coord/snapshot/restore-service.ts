import type { Logger } from 'pino';
import type { Clock } from '../../common/clock.js';
import { quiverError } from '../../common/errors.js';
import type { MetaKV } from '../../meta/meta-kv.js';
import type { ObjectStore } from '../../storage/object-store.js';
import {
  CopyJobChecker,
  CopyJobStore,
  DEFAULT_COPY_OPTIONS,
  SEGMENTS_PER_JOB_MAX,
  TaskInspector,
  isTerminalJobState,
  newCopyJob,
  type CopyJob,
  type CopyOptions,
  type RestoreTargetOps,
  type SourceSegmentReader,
  type WorkerClient,
} from '../copy/index.js';
import { RestoreTargets, type RestoreHost } from './restore-targets.js';
import type { SnapshotManager } from './snapshot-manager.js';
import { ManifestSourceReader } from '../../storage/snapshot-format/source-reader.js';

/**
 * Restore a snapshot into a new collection (DESIGN.md §4 "Restore").
 *
 * Start (`restore`), crash-safe: read and validate the source, allocate every id first (job, pin, target
 * collection, partitions, segments), then, under the snapshot's name lock (the one `drop` takes, so a
 * drop cannot slip between the check and the pin) and the DDL lock (the target name check), commit in
 * ONE MetaKV txn: the target collection (Restoring), its indexes and checkpoint, the pin (carrying the
 * job id) and the Pending job (id mappings only). A crash before the txn leaves only unused ids; after
 * it, a complete Pending job that the checker drives. Nothing in between.
 *
 * Reconcile at coordinator start (`init`): a Restoring collection no live job owns is removed (its name is
 * free again), a pin whose job is gone or finished is released (so `dropSnapshot` works). PENDING
 * snapshots of a crashed coordinator are removed by `SnapshotManager.init`.
 *
 * The checker and inspector loops drive jobs; `RestoreTargets` does the catalog side (register, publish,
 * rollback). Records and state machines: coord/copy/types.ts.
 */

export interface RestoreDeps {
  readonly host: RestoreHost;
  readonly snapshots: SnapshotManager;
  readonly kv: MetaKV;
  readonly store: ObjectStore;
  readonly clock: Clock;
  readonly log: Logger;
  /**
   * The copy workers (the wiring builds them: in-process workers, or a remote pool). Their "task
   * finished" signal goes to `taskFinished()`, so a finished copy is reported without waiting for a tick.
   */
  readonly workers: WorkerClient;
  /** Defaults to the snapshot manifests in `store`. */
  readonly sources?: SourceSegmentReader;
  /** Test-only (crash tests): wraps the checker's view of the targets, e.g. to pause inside a phase. */
  readonly wrapTargets?: (targets: RestoreTargetOps) => RestoreTargetOps;
}

export interface RestoreFaults {
  /**
   * Fault injection for crash tests only (config `QUIVER_FAULT_RESTORE_START_PAUSE_MS`): wait this long
   * (on the injected clock) right before the one restore-start txn commits, with every check done and
   * every id allocated, so a test can kill the process there and prove that nothing was left.
   */
  readonly faultPauseBeforeStartCommitMs?: number | undefined;
}

export class RestoreService {
  readonly jobs: CopyJobStore;
  readonly checker: CopyJobChecker;
  readonly inspector: TaskInspector;
  readonly workers: WorkerClient;
  readonly targets: RestoreTargets;
  readonly #host: RestoreHost;
  readonly #snapshots: SnapshotManager;
  readonly #clock: Clock;
  readonly #log: Logger;
  readonly #options: CopyOptions;
  readonly #faults: RestoreFaults;
  /** Observers of finished jobs (metrics). */
  readonly onJobFinished: ((job: CopyJob, outcome: 'Completed' | 'Failed') => void)[] = [];

  constructor(deps: RestoreDeps, options: CopyOptions = DEFAULT_COPY_OPTIONS, faults: RestoreFaults = {}) {
    this.#host = deps.host;
    this.#snapshots = deps.snapshots;
    this.#clock = deps.clock;
    this.#log = deps.log;
    this.#options = options;
    this.#faults = faults;
    const sources = deps.sources ?? new ManifestSourceReader(deps.store);
    // The one coordinator writes the copy tasks: it keeps them in memory (write-through, see CopyJobStore).
    this.jobs = new CopyJobStore({ kv: deps.kv, allocId: (count) => deps.host.ids.alloc(count), viewTasks: true });
    this.targets = new RestoreTargets({ host: deps.host, sources, store: deps.store, releasePin: (id) => deps.snapshots.unpin(id), log: deps.log });
    let inspector: TaskInspector | undefined;
    const pool = deps.workers;
    this.workers = pool;
    this.checker = new CopyJobChecker({
      store: this.jobs,
      targets: deps.wrapTargets?.(this.targets) ?? this.targets,
      workers: pool,
      clock: deps.clock,
      options,
      log: deps.log,
      onTasksCreated: () => void inspector?.kick(),
      onJobFinished: (job) => {
        for (const f of this.onJobFinished) f(job, job.state === 'Completed' ? 'Completed' : 'Failed');
      },
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

  /**
   * Reconciles what a crash may have left (see the header). Call after `SnapshotManager.init` and
   * before `start`. Returns what it removed.
   */
  async init(): Promise<{ targetsRemoved: number; pinsReleased: number }> {
    const jobs = new Map((await this.jobs.listJobs()).map((j) => [j.id, j] as const));
    const owned = new Set([...jobs.values()].filter((j) => !isTerminalJobState(j.state)).map((j) => j.targetCollectionId));
    let targetsRemoved = 0;
    for (const coll of this.#host.catalog.allCollections()) {
      if (coll.state === 'Restoring' && !owned.has(coll.id) && (await this.targets.removeOrphan(coll.id))) targetsRemoved++;
    }
    let pinsReleased = 0;
    for (const pin of this.#snapshots.activePinsAll()) {
      if (pin.jobId === undefined) continue;
      const job = jobs.get(pin.jobId);
      if (job === undefined || isTerminalJobState(job.state)) {
        await this.#snapshots.unpin(pin.id);
        this.#log.warn({ pinId: pin.id, jobId: pin.jobId, snapshot: pin.snapshotName }, 'released a restore pin whose job is gone');
        pinsReleased++;
      }
    }
    return { targetsRemoved, pinsReleased };
  }

  /** A worker finished a task: the inspector polls now, and its report kicks the checker. */
  taskFinished(): void {
    void this.inspector.kick();
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
    const catalog = this.#host.catalog;
    const rec = await this.#snapshots.describe(input.sourceDb, input.sourceCollection, input.name);
    const db = catalog.requireDatabase(input.targetDb);
    if (catalog.nameTaken(db.id, input.targetCollection)) throw nameTaken(input.targetCollection, input.targetDb);
    const contents = await this.#snapshots.readContents(rec);
    const md = contents.metadata;
    if (contents.entries.length > SEGMENTS_PER_JOB_MAX) {
      throw quiverError(
        'ParameterInvalid',
        `snapshot ${input.name} has ${contents.entries.length} segments; a restore takes at most ${SEGMENTS_PER_JOB_MAX}`,
      );
    }
    const partitionName = new Map(md.partitions.map((p) => [p.id, p.name]));
    const partitions = md.partitions.map((p) => ({ name: p.name }));
    // Every id first: a crash from here to the txn loses ids, never leaves records.
    const jobId = await this.#host.ids.alloc();
    const pinId = await this.#host.ids.alloc();
    const needed = RestoreTargets.idsNeeded(partitions, contents.entries.length);
    const firstId = await this.#host.ids.alloc(needed);

    const job = await this.#snapshots.withNameLock(rec.collectionId, rec.name, async () => {
      // Re-read under the lock: a drop that won the lock first has removed (or is removing) it.
      const cur = await this.#snapshots.records.get(rec.collectionId, rec.name);
      if (cur?.record.state !== 'COMMITTED' || cur.record.id !== rec.id) {
        throw quiverError('SnapshotNotFound', `snapshot not found[collection=${input.sourceCollection}][snapshot=${input.name}]`);
      }
      return this.#host.withDdlLock(async () => {
        if (catalog.nameTaken(db.id, input.targetCollection)) throw nameTaken(input.targetCollection, input.targetDb);
        const plan = this.targets.plan({
          firstId,
          dbId: db.id,
          name: input.targetCollection,
          source: {
            schema: md.schema,
            shardsNum: md.shards_num,
            consistencyLevel: md.consistency_level,
            properties: md.properties,
          },
          partitions,
          indexes: md.indexes,
          segments: contents.entries.map((e) => ({ sourceId: e.segment.id, partitionName: partitionName.get(e.segment.partitionId) ?? '_default' })),
        });
        const job = newCopyJob({
          id: jobId,
          snapshotId: rec.id,
          snapshotName: rec.name,
          sourceCollectionId: rec.collectionId,
          sourceDbName: input.sourceDb,
          sourceCollectionName: input.sourceCollection,
          targetCollectionId: plan.collection.id,
          targetDbName: input.targetDb,
          targetCollectionName: input.targetCollection,
          pinId,
          mappings: plan.mappings,
          createdAtMs: this.#clock.nowMs(),
          timeoutMs: this.#options.jobTimeoutMs,
        });
        // The source snapshot cannot be dropped while the job reads its files.
        const pin = this.#snapshots.jobPin(rec, pinId, jobId);
        const jobTxn = this.jobs.createJobTxn(job);
        if (this.#faults.faultPauseBeforeStartCommitMs) await this.#clock.sleep(this.#faults.faultPauseBeforeStartCommitMs);
        const ok = await catalog.commitGuarded(plan.changes, {
          expect: [{ kind: 'collection', id: plan.collection.id, state: 'absent' }],
          extra: { compares: [jobTxn.compare], ops: [this.#snapshots.records.pinOp(pin), jobTxn.op] },
        });
        if (!ok) throw quiverError('ServiceNotReady', `restore of ${input.name} into ${input.targetCollection}: lost a race while starting; retry`);
        this.#snapshots.trackPin(pin);
        return job;
      });
    });
    this.#log.info({ jobId: job.id, snapshot: input.name, target: input.targetCollection, segments: job.mappings.length }, 'restore job created');
    void this.checker.kick();
    return job;
  }

  async job(jobId: number): Promise<CopyJob> {
    const job = await this.jobs.getJob(jobId);
    if (!job) throw quiverError('RestoreJobNotFound', `restore job not found[job_id=${jobId}]`);
    return job;
  }

  /** A user's cancel of a restore job (rules in coord/copy/types.ts); the rollback follows in milliseconds. */
  cancel(jobId: number): Promise<CopyJob> {
    return this.checker.cancel(jobId);
  }

  /**
   * A drop of a collection that is still being restored: cancels the job that owns it (its rollback
   * removes the target). CollectionNotFound when no job owns it; the publish rule of `cancel` applies.
   */
  async cancelTarget(target: { readonly id: number; readonly name: string }): Promise<void> {
    const job = (await this.jobs.listJobs()).find((j) => j.targetCollectionId === target.id);
    if (job === undefined) throw quiverError('CollectionNotFound', `collection not found[collection=${target.name}]`);
    // Published between the caller's look-up and here: the collection is visible now, so a retried drop drops it.
    if (job.state === 'Completed') throw quiverError('ServiceNotReady', `collection ${target.name} was just restored (job ${job.id}); retry the drop`);
    await this.checker.cancel(job.id);
  }

  async list(filter: { dbName?: string; collectionName?: string }): Promise<CopyJob[]> {
    return (await this.jobs.listJobs()).filter(
      (j) => (!filter.dbName || j.targetDbName === filter.dbName) && (!filter.collectionName || j.targetCollectionName === filter.collectionName),
    );
  }

  /**
   * Awaits the end of a job (tests, CLI in-process): resolves on the checker's job-finished event, or at
   * once if the persisted job has already ended; rejects after `timeoutMs` on the injected clock.
   */
  async waitFor(jobId: number, timeoutMs = 60_000): Promise<CopyJob> {
    let observer: ((job: CopyJob) => void) | undefined;
    const finished = new Promise<CopyJob>((resolve) => {
      observer = (job) => {
        if (job.id === jobId) resolve(job);
      };
      this.onJobFinished.push(observer);
    });
    let timedOut = false;
    const cancelTimeout = new AbortController();
    const timeout = this.#clock.sleep(timeoutMs, cancelTimeout.signal).then(() => {
      timedOut = !cancelTimeout.signal.aborted;
    });
    try {
      // Subscribed before the read: a job ending between the two is seen by one or the other.
      const job = await this.job(jobId);
      if (isTerminalJobState(job.state)) return job;
      await Promise.race([finished, timeout]);
      if (timedOut) throw quiverError('ServiceNotReady', `restore job ${jobId} did not finish within ${timeoutMs} ms`);
      // The event carries the job as the checker saw it; report the persisted record.
      return await this.job(jobId);
    } finally {
      cancelTimeout.abort();
      const i = this.onJobFinished.indexOf(observer!);
      if (i >= 0) this.onJobFinished.splice(i, 1);
    }
  }
}

function nameTaken(name: string, db: string): Error {
  return quiverError('ParameterInvalid', `collection already exists: ${name} in database ${db}; restore needs a new collection name`);
}
