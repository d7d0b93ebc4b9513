import type { Logger } from 'pino';
import type { Clock } from '../common/clock.js';
import { LoopRunner } from '../common/loop.js';
import { ScheduleStore } from '../coord/snapshot/policy/schedule-store.js';
import { SnapshotScheduler } from '../coord/snapshot/policy/scheduler.js';
import type { SnapshotManager } from '../coord/snapshot/snapshot-manager.js';
import type { MetaKV } from '../meta/meta-kv.js';
import type { Engine } from './engine.js';

/** Schedules are in whole seconds: a pass a second is enough and costs one meta scan when nothing is due. */
export const SCHEDULER_TICK_MS = 1000;

/** Builds and starts the snapshot-policy loop (coord/snapshot/policy); the caller stops it at shutdown. */
export function snapshotScheduler(deps: { engine: Engine; snapshots: SnapshotManager; kv: MetaKV; clock: Clock; log: Logger }): LoopRunner {
  const { engine, snapshots } = deps;
  const scheduler = new SnapshotScheduler({
    collections: () =>
      engine.catalog
        .allCollections()
        .filter((c) => c.state === 'Created')
        .flatMap((c) => {
          const db = engine.catalog.databaseById(c.dbId);
          return db ? [{ id: c.id, dbName: db.name, name: c.name, properties: c.properties }] : [];
        }),
    snapshots,
    store: new ScheduleStore(deps.kv),
    clock: deps.clock,
    log: deps.log,
  });
  const loop = new LoopRunner(
    'snapshot-scheduler',
    SCHEDULER_TICK_MS,
    async () => {
      await scheduler.tick();
    },
    deps.log,
  );
  loop.start();
  return loop;
}
