import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { Clock } from '../common/clock.js';
import { LoopRunner } from '../common/loop.js';
import { SnapshotAccounting } from '../coord/snapshot/accounting.js';
import { SnapshotDiffer } from '../coord/snapshot/diff.js';
import { ScheduleStore } from '../coord/snapshot/policy/schedule-store.js';
import { SnapshotScheduler } from '../coord/snapshot/policy/scheduler.js';
import type { SnapshotManager } from '../coord/snapshot/snapshot-manager.js';
import type { MetaKV } from '../meta/meta-kv.js';
import { registerSnapshotUsageMetrics, snapshotInsightRoutes } from '../proxy/snapshot-insights.js';
import type { ObjectStore } from '../storage/object-store.js';
import type { Engine } from './engine.js';

/** Schedules are in whole seconds: a pass a second is enough and costs one meta scan when nothing is due. */
export const SCHEDULER_TICK_MS = 1000;

export interface SnapshotExtras {
  /** The snapshot-policy loop (coord/snapshot/policy); stopped at shutdown. */
  readonly scheduler: LoopRunner;
  /** The scheduler's persisted state (read by tests and operators' tools). */
  readonly schedules: ScheduleStore;
  readonly accounting: SnapshotAccounting;
  readonly differ: SnapshotDiffer;
  /** HTTP routes for usage and diff (proxy/snapshot-insights.ts). */
  readonly routes: ReturnType<typeof snapshotInsightRoutes>;
}

/** Snapshot policies, accounting and diff over the server's engine and snapshot manager; starts the scheduler. */
export function snapshotExtras(deps: {
  engine: Engine;
  snapshots: SnapshotManager;
  kv: MetaKV;
  store: ObjectStore;
  clock: Clock;
  log: Logger;
  registry: Registry;
}): SnapshotExtras {
  const { engine, snapshots } = deps;
  const liveCollections = () =>
    engine.catalog
      .allCollections()
      .filter((c) => c.state === 'Created')
      .flatMap((c) => {
        const db = engine.catalog.databaseById(c.dbId);
        return db ? [{ id: c.id, dbName: db.name, name: c.name, properties: c.properties }] : [];
      });
  const schedules = new ScheduleStore(deps.kv);
  const scheduler = new SnapshotScheduler({ collections: liveCollections, snapshots, store: schedules, clock: deps.clock, log: deps.log });
  const loop = new LoopRunner(
    'snapshot-scheduler',
    SCHEDULER_TICK_MS,
    async () => {
      await scheduler.tick();
    },
    deps.log,
  );
  loop.start();
  const accounting = new SnapshotAccounting({
    segments: (id) => engine.catalog.segments(id),
    listCommitted: async (id) => (await snapshots.records.list(id)).filter((r) => r.state === 'COMMITTED'),
    readSegments: async (rec) => (await snapshots.readContents(rec)).entries.map((e) => e.segment),
  });
  const differ = new SnapshotDiffer({ snapshots, host: engine, store: deps.store });
  registerSnapshotUsageMetrics(deps.registry, {
    collections: async () => {
      const withSnapshots = new Set((await snapshots.records.list()).filter((r) => r.state === 'COMMITTED').map((r) => r.collectionId));
      return liveCollections()
        .filter((c) => withSnapshots.has(c.id))
        .map((c) => ({ id: c.id, db: c.dbName, name: c.name }));
    },
    usage: (id) => accounting.collection(id),
  });
  const routes = snapshotInsightRoutes({
    usage: async (db, name) => {
      const coll = engine.catalog.resolveCollection(db, name);
      return { collectionId: coll.id, ...(await accounting.collection(coll.id)) };
    },
    diff: (db, name, from, to) => differ.diff(db, name, from, to),
  });
  return { scheduler: loop, schedules, accounting, differ, routes };
}
