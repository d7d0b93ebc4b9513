import type { Clock } from '../common/clock.js';
import { isQuiverError, quiverError } from '../common/errors.js';
import { LoopRunner, type LoopLogger } from '../common/loop.js';
import type { CollectionRecord, SegmentRecord } from '../coord/records.js';
import { IMPORT_FILES_MAX } from './job-store.js';
import type { ImportExecutor } from './import-executor.js';
import { formatOf, SUPPORTED_FILES } from './readers.js';
import { csvOptions, IMPORT_OPTIONS } from './text-readers.js';
import { isTerminal, type ImportApi, type ImportJob, type ImportJobStore, type ImportRequest } from './types.js';

/**
 * The import manager (Milvus: DataCoord's import checker, one process): accepts jobs, and its loop runs
 * up to `jobsMax` of them at once in submit order; the others wait Pending (ImportPending to the SDK).
 * The state machine and its numbered transitions are in types.ts.
 *
 * - a pass: (5) fails Pending jobs whose collection is gone; (1) takes the oldest Pending jobs to
 *   Importing while fewer than `jobsMax` run, each running in the background to (2) Completed or (4)
 *   Failed (its end kicks another pass); removes terminal jobs older than `retentionMs`. `stop()` aborts
 *   the runs between batches, awaits them and leaves their jobs Importing for the next start.
 * - tick(): one pass, then awaits every run in flight (tests and callers that want a settled state).
 * - init(): (3) every job left Importing by a previous process goes back to Pending; its written files
 *   were never listed by any segment record, so the garbage collector reclaims them. A job interrupted
 *   `attemptsMax` times fails instead of looping forever on, say, a file that kills the process. A job
 *   whose segments were already committed (the process died between the publish and the Completed write:
 *   the ids are recorded in the job before the publish) is Completed instead: running it again would
 *   import its rows twice.
 */

export interface ImportCatalog {
  collection(id: number): CollectionRecord | undefined;
  /** A committed segment record (any state), to tell a published job from an interrupted one at init. */
  segment(collectionId: number, segmentId: number): SegmentRecord | undefined;
  resolveCollection(dbName: string, nameOrAlias: string): CollectionRecord;
}

export interface ImportManagerDeps {
  readonly jobs: ImportJobStore;
  readonly executor: Pick<ImportExecutor, 'run'>;
  readonly catalog: ImportCatalog;
  readonly ids: { alloc(count?: number): Promise<number> };
  readonly tso: { next(): bigint };
  /** Commits every record in one catalog transaction and makes them visible; false if the collection is gone. */
  readonly publish: (collectionId: number, records: readonly SegmentRecord[]) => Promise<boolean>;
  readonly clock: Clock;
  readonly log: LoopLogger & { info(fields: object, msg: string): void; warn(fields: object, msg: string): void };
}

export interface ImportManagerOptions {
  readonly intervalMs: number;
  readonly retentionMs: number;
  readonly attemptsMax: number;
  /** Jobs that run at once (env QUIVER_IMPORT_JOBS_MAX). */
  readonly jobsMax: number;
}

export const IMPORT_DEFAULTS: ImportManagerOptions = { intervalMs: 2000, retentionMs: 3 * 60 * 60_000, attemptsMax: 3, jobsMax: 2 };

export class ImportManager implements ImportApi {
  readonly #deps: ImportManagerDeps;
  readonly #opts: ImportManagerOptions;
  readonly loop: LoopRunner;
  readonly #abort = new AbortController();
  /** Runs in flight, by job id. */
  readonly #running = new Map<number, Promise<void>>();

  constructor(deps: ImportManagerDeps, opts: ImportManagerOptions = IMPORT_DEFAULTS) {
    this.#deps = deps;
    this.#opts = opts;
    this.loop = new LoopRunner('import', opts.intervalMs, () => this.#pass(), deps.log);
  }

  /** (3) for every job a previous process left Importing. Call before start(). */
  async init(): Promise<void> {
    const now = this.#deps.clock.nowMs();
    for (const j of await this.#deps.jobs.list()) {
      if (j.state !== 'Importing') continue;
      const published = j.segmentIds.length > 0 ? j.segmentIds.map((id) => this.#deps.catalog.segment(j.collectionId, id)) : [];
      if (published.length > 0 && published.every((r) => r !== undefined)) {
        const rows = published.reduce((a, r) => a + r!.numRows, 0);
        await this.#deps.jobs.updateInState(j.id, 'Importing', { state: 'Completed', rows, readBytes: j.totalBytes }, now);
        this.#deps.log.info({ jobId: j.id, rows }, 'import job was published before a restart: completed');
        continue;
      }
      if (j.attempts >= this.#opts.attemptsMax) {
        await this.#deps.jobs.updateInState(
          j.id,
          'Importing',
          { state: 'Failed', reason: `interrupted ${j.attempts} times by restarts; nothing of it was imported` },
          now,
        );
      } else {
        // Counters restart with the run; its earlier files are orphans for GC.
        await this.#deps.jobs.updateInState(j.id, 'Importing', { state: 'Pending', rows: 0, readBytes: 0, segmentIds: [] }, now);
        this.#deps.log.warn({ jobId: j.id }, 'import job interrupted by a restart: starting it again');
      }
    }
  }

  start(): void {
    this.loop.start();
  }

  async stop(): Promise<void> {
    this.#abort.abort();
    await this.loop.stop();
    await Promise.allSettled([...this.#running.values()]);
  }

  async tick(): Promise<void> {
    await this.loop.tick();
    while (this.#running.size > 0) {
      await Promise.allSettled([...this.#running.values()]);
      // A finished run kicks the next pass; run it here so the queue drains within the tick.
      await this.loop.tick();
    }
  }

  async submit(req: ImportRequest): Promise<ImportJob> {
    const coll = this.#deps.catalog.resolveCollection(req.dbName, req.collectionName);
    const files = req.files.filter((f) => f !== '');
    if (files.length === 0) throw quiverError('ParameterInvalid', 'import requires at least one file');
    if (files.length > IMPORT_FILES_MAX) throw quiverError('ParameterTooLarge', `an import takes at most ${IMPORT_FILES_MAX} files, got ${files.length}`);
    for (const f of files) {
      if (formatOf(f) === undefined) {
        throw quiverError('ParameterInvalid', `import file ${JSON.stringify(f)}: unsupported file type; ${SUPPORTED_FILES}`);
      }
      if (f.startsWith('/') || f.split('/').includes('..'))
        throw quiverError('ParameterInvalid', `import file ${JSON.stringify(f)}: keys are relative to the object store root`);
    }
    const options = { ...(req.options ?? {}) };
    const unknown = Object.keys(options).filter((k) => !IMPORT_OPTIONS.includes(k));
    if (unknown.length > 0) {
      // Ignoring e.g. a timeout or a backup flag would import something other than what was asked.
      throw quiverError('ParameterInvalid', `import options ${unknown.join(', ')} are not supported by Quiver (supported: ${IMPORT_OPTIONS.join(', ')})`);
    }
    if (files.some((f) => formatOf(f) === 'csv')) csvOptions(options);
    // A partition-key collection routes each row by its key (import-executor.ts), as an insert does.
    const keyed = coll.schema.fields.some((f) => f.isPartitionKey);
    if (keyed && req.partitionName) {
      throw quiverError('ParameterInvalid', `collection ${coll.name} uses a partition key: partition names cannot be specified (got ${req.partitionName})`);
    }
    const partName = keyed ? coll.partitions[0]!.name : req.partitionName || '_default';
    const part = coll.partitions.find((p) => p.name === partName);
    if (!part) throw quiverError('PartitionNotFound', `partition not found[partition=${partName}]`);
    const now = this.#deps.clock.nowMs();
    const job: ImportJob = {
      id: await this.#deps.ids.alloc(),
      dbName: req.dbName,
      collectionId: coll.id,
      collectionName: coll.name,
      partitionId: part.id,
      files,
      ...(Object.keys(options).length > 0 ? { options } : {}),
      state: 'Pending',
      rows: 0,
      totalBytes: 0,
      readBytes: 0,
      segmentIds: [],
      reason: '',
      attempts: 0,
      createdMs: now,
      updatedMs: now,
      createTs: this.#deps.tso.next().toString(),
    };
    await this.#deps.jobs.create(job);
    // The pass runs in the background; its failures are the loop's to log.
    void this.loop.kick();
    return job;
  }

  get(id: number): Promise<ImportJob | undefined> {
    return this.#deps.jobs.get(id);
  }

  async list(_dbName: string, collectionName: string | undefined, limit: number): Promise<ImportJob[]> {
    let all = (await this.#deps.jobs.list()).sort((a, b) => a.id - b.id);
    if (collectionName) {
      // By collection id: a job keeps naming the collection it imported into after a rename.
      const coll = this.#deps.catalog.resolveCollection(_dbName, collectionName);
      all = all.filter((j) => j.collectionId === coll.id);
    } else all = all.filter((j) => j.dbName === _dbName);
    return limit > 0 ? all.slice(-limit) : all;
  }

  async #pass(): Promise<void> {
    const now = this.#deps.clock.nowMs();
    const jobs = (await this.#deps.jobs.list()).sort((a, b) => a.id - b.id);
    for (const j of jobs) {
      if (isTerminal(j.state) && now - j.updatedMs >= this.#opts.retentionMs) await this.#deps.jobs.delete(j.id);
    }
    for (const j of jobs) {
      if (this.loop.stopping || this.#abort.signal.aborted) return;
      if (j.state !== 'Pending' || this.#running.has(j.id)) continue;
      const coll = this.#deps.catalog.collection(j.collectionId);
      if (!coll || coll.state !== 'Created') {
        await this.#deps.jobs.updateInState(
          j.id,
          'Pending',
          { state: 'Failed', reason: `collection ${j.collectionName} was dropped before the import ran` },
          now,
        );
        continue;
      }
      if (this.#running.size >= this.#opts.jobsMax) continue;
      const run = this.#run(j, coll)
        .catch((e: unknown) => this.#deps.log.error({ err: e, jobId: j.id }, 'import job run failed'))
        .finally(() => {
          this.#running.delete(j.id);
          if (!this.loop.stopping && !this.#abort.signal.aborted) void this.loop.kick();
        });
      this.#running.set(j.id, run);
    }
  }

  async #run(job: ImportJob, coll: CollectionRecord): Promise<void> {
    const { jobs, clock, log } = this.#deps;
    if (!(await jobs.updateInState(job.id, 'Pending', { state: 'Importing', attempts: job.attempts + 1 }, clock.nowMs()))) return;
    log.info({ jobId: job.id, collection: coll.name, files: job.files.length }, 'import job started');
    let failure: string;
    try {
      const run = await this.#deps.executor.run(
        job,
        coll,
        (p) => jobs.updateInState(job.id, 'Importing', { rows: p.rows, readBytes: p.readBytes, totalBytes: p.totalBytes }, clock.nowMs()),
        this.#abort.signal,
      );
      if (this.#abort.signal.aborted) return;
      // The ids go into the job before the commit: a restart between the commit and the Completed write
      // finds them published (init) instead of importing the rows a second time.
      const ids = run.records.map((r) => r.id);
      if (!(await jobs.updateInState(job.id, 'Importing', { segmentIds: ids, totalBytes: run.totalBytes }, clock.nowMs()))) {
        throw quiverError('ServiceNotReady', `import job ${job.id} was taken over before its publish`);
      }
      if (!(await this.#deps.publish(coll.id, run.records))) {
        failure = `collection ${coll.name} was dropped during the import`;
      } else {
        const total = run.records.reduce((a, r) => a + r.numRows, 0);
        const done = await jobs.updateInState(
          job.id,
          'Importing',
          { state: 'Completed', rows: total, segmentIds: run.records.map((r) => r.id), readBytes: run.totalBytes, totalBytes: run.totalBytes },
          clock.nowMs(),
        );
        if (!done) log.warn({ jobId: job.id }, 'import job record changed while publishing');
        log.info({ jobId: job.id, rows: total, segments: run.records.length }, 'import job completed');
        return;
      }
    } catch (e) {
      // Shutdown: leave it Importing; the next start runs it again (init).
      if (this.#abort.signal.aborted) return;
      if (!isQuiverError(e)) log.error({ err: e, jobId: job.id }, 'import job failed unexpectedly');
      failure = e instanceof Error ? e.message : String(e);
    }
    await jobs.updateInState(job.id, 'Importing', { state: 'Failed', reason: `${failure}; nothing of the job was imported` }, clock.nowMs());
    log.info({ jobId: job.id, reason: failure }, 'import job failed');
  }
}
