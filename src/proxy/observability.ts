import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { systemClock, type Clock } from '../common/clock.js';
import { COPY_JOB_STATES, type CopyJob, type CopyTaskState } from '../coord/copy/types.js';
import type { GcMetrics } from '../coord/gc/garbage-collector.js';
import type { RestoreService } from '../coord/snapshot/restore-service.js';
import type { SnapshotManager } from '../coord/snapshot/snapshot-manager.js';

/**
 * Prometheus metrics of snapshots, restore (copy-segment) jobs and GC.
 *
 * Gauges are computed at scrape time (prom-client `collect()`), from the same persisted state the RPCs
 * read, so they cannot drift from it and cost nothing between scrapes. Each collect reads first and only
 * then resets and sets its series synchronously: two scrapes overlapping cannot interleave a reset of one
 * with the sets of the other. The two snapshot gauges share one read of the snapshot records per scrape
 * (registry.metrics() runs every collect concurrently).
 *
 * Durations are observed when a job finishes (RestoreService.onJobFinished). The checker may run a
 * finalizer again after a crash or a lost state flip, so a job id is observed at most once per process.
 */

const TASK_STATES: readonly CopyTaskState[] = ['Pending', 'InProgress', 'Completed', 'Failed'];
/** Restores take from milliseconds (empty collection) to hours (the default job timeout is 24 h). */
const DURATION_BUCKETS_SECONDS = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 4 * 3600, 24 * 3600];
/** Bound on the "already observed" job ids; older ids are forgotten first (jobs finish in id order, roughly). */
const OBSERVED_JOBS_MAX = 4096;

export interface ObservabilityDeps {
  readonly snapshots: Pick<SnapshotManager, 'records' | 'activePinsAll'>;
  readonly restores: Pick<RestoreService, 'jobs' | 'onJobFinished'>;
  /** Defaults to the system clock. */
  readonly clock?: Clock | undefined;
}

export interface Observability {
  /** Pass to the GarbageCollector (`deps.metrics`). */
  readonly gcMetrics: GcMetrics;
  /** Resolves once every duration observation started so far is recorded (tests; scrapes await it too). */
  settled(): Promise<void>;
}

interface CollectionSnapshots {
  db: string;
  name: string;
  latestCreatedAtMs: number;
  count: number;
  bytes: number;
}

export function registerObservability(registry: Registry, deps: ObservabilityDeps): Observability {
  const clock = deps.clock ?? systemClock;
  const registers = [registry];

  // ---------------------------------------------------------------- copy-segment jobs and tasks
  new Gauge({
    name: 'quiver_copy_segment_jobs',
    help: 'Restore copy-segment jobs by state (finished jobs stay until their retention ends)',
    labelNames: ['state'],
    registers,
    async collect() {
      const jobs = await deps.restores.jobs.listJobs();
      this.reset();
      for (const s of COPY_JOB_STATES) this.set({ state: s }, jobs.filter((j) => j.state === s).length);
    },
  });
  new Gauge({
    name: 'quiver_copy_segment_jobs_overdue',
    help: 'Unfinished restore jobs past their state deadline (Pending/Executing: timing out; Publishing/RollingBack: side effect being retried)',
    labelNames: ['state'],
    registers,
    async collect() {
      const jobs = await deps.restores.jobs.listJobs();
      const nowMs = clock.nowMs();
      this.reset();
      for (const s of COPY_JOB_STATES)
        if (s !== 'Completed' && s !== 'Failed') this.set({ state: s }, jobs.filter((j) => j.state === s && nowMs > j.deadlineMs).length);
    },
  });
  new Gauge({
    name: 'quiver_copy_segment_tasks',
    help: 'Restore copy-segment tasks by state',
    labelNames: ['state'],
    registers,
    async collect() {
      const tasks = await deps.restores.jobs.listAllTasks();
      this.reset();
      for (const s of TASK_STATES) this.set({ state: s }, tasks.filter((t) => t.state === s).length);
    },
  });

  const pending = new Set<Promise<void>>();
  const settled = async (): Promise<void> => {
    while (pending.size > 0) await Promise.all([...pending]);
  };
  const jobDuration = new Histogram({
    name: 'quiver_copy_segment_job_duration_seconds',
    help: 'Restore job duration from its creation (queueing included) to its completion or rollback, by outcome',
    labelNames: ['outcome'],
    buckets: DURATION_BUCKETS_SECONDS,
    registers,
  });
  const taskDuration = new Histogram({
    name: 'quiver_copy_segment_task_duration_seconds',
    help: 'Copy task duration from its creation to its last state change, by final state (observed when its job finishes)',
    labelNames: ['state'],
    buckets: DURATION_BUCKETS_SECONDS,
    registers,
    // Task observations need a read of the job's tasks: a scrape waits for those in flight.
    collect: settled,
  });
  const observed = new Set<number>();
  deps.restores.onJobFinished.push((job: CopyJob, outcome) => {
    if (observed.has(job.id)) return;
    observed.add(job.id);
    if (observed.size > OBSERVED_JOBS_MAX) observed.delete(observed.values().next().value!);
    jobDuration.observe({ outcome }, Math.max(0, clock.nowMs() - job.createdAtMs) / 1000);
    // Tasks are terminal and immutable once the job finished (see copy/types.ts).
    const p = deps.restores.jobs
      .listTasks(job.id)
      .then((tasks) => {
        for (const t of tasks) {
          if (t.state === 'Completed' || t.state === 'Failed') taskDuration.observe({ state: t.state }, Math.max(0, t.updatedAtMs - t.createdAtMs) / 1000);
        }
      })
      // Best effort: a meta read failing here must not fail the finalizer that called us.
      .catch(() => undefined)
      .finally(() => pending.delete(p));
    pending.add(p);
  });

  // ---------------------------------------------------------------- snapshots and pins
  new Gauge({
    name: 'quiver_snapshot_pins_active',
    help: 'Unexpired snapshot pins (restore jobs hold one each)',
    registers,
    collect() {
      this.set(deps.snapshots.activePinsAll().length);
    },
  });

  let inFlight: Promise<Map<number, CollectionSnapshots>> | undefined;
  const snapshotsByCollection = (): Promise<Map<number, CollectionSnapshots>> =>
    (inFlight ??= (async () => {
      const out = new Map<number, CollectionSnapshots>();
      for (const r of await deps.snapshots.records.list()) {
        if (r.state !== 'COMMITTED') continue;
        const s = out.get(r.collectionId) ?? { db: r.dbName, name: r.collectionName, latestCreatedAtMs: r.createdAtMs, count: 0, bytes: 0 };
        // A renamed collection: label the series with the name of its newest snapshot.
        if (r.createdAtMs >= s.latestCreatedAtMs) Object.assign(s, { db: r.dbName, name: r.collectionName, latestCreatedAtMs: r.createdAtMs });
        s.count++;
        s.bytes += r.totalBytes;
        out.set(r.collectionId, s);
      }
      return out;
    })().finally(() => (inFlight = undefined)));
  // Keyed by collection id (names are reused after a drop and differ across databases); the name and the
  // database are labels for humans.
  const labelNames = ['db', 'collection', 'collection_id'] as const;
  const labels = (id: number, s: CollectionSnapshots) => ({ db: s.db, collection: s.name, collection_id: String(id) });
  new Gauge({
    name: 'quiver_snapshots',
    help: 'Committed snapshots per collection',
    labelNames,
    registers,
    async collect() {
      const by = await snapshotsByCollection();
      this.reset();
      for (const [id, s] of by) this.set(labels(id, s), s.count);
    },
  });
  new Gauge({
    name: 'quiver_snapshot_referenced_bytes',
    help: 'Bytes of segment files referenced by the committed snapshots of a collection, summed over snapshots (a file two snapshots share counts twice)',
    labelNames,
    registers,
    async collect() {
      const by = await snapshotsByCollection();
      this.reset();
      for (const [id, s] of by) this.set(labels(id, s), s.bytes);
    },
  });

  // ---------------------------------------------------------------- GC
  const files = new Counter({ name: 'quiver_gc_files_reclaimed_total', help: 'Object-store files deleted by GC', registers });
  const bytes = new Counter({ name: 'quiver_gc_bytes_reclaimed_total', help: 'Bytes of object-store files deleted by GC', registers });
  const errors = new Counter({ name: 'quiver_gc_errors_total', help: 'GC operations (deletes, meta commits) that failed and will be retried', registers });
  const gcMetrics: GcMetrics = {
    filesReclaimed: (n) => files.inc(n),
    bytesReclaimed: (n) => bytes.inc(n),
    errors: (n) => errors.inc(n),
  };

  return { gcMetrics, settled };
}
