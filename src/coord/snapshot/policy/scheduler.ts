import type { Logger } from 'pino';
import type { Clock } from '../../../common/clock.js';
import { isQuiverError } from '../../../common/errors.js';
import type { SnapshotRecord } from '../snapshot-store.js';
import { parseSnapshotPolicy, scheduledSnapshotName, SCHEDULED_PREFIX, type SnapshotPolicy } from './policy.js';
import type { ScheduleStore, VersionedSchedule } from './schedule-store.js';

/**
 * Takes scheduled snapshots and applies retention (policy.ts), one `tick()` at a time: the server runs it
 * from a loop; tests drive it with a fake clock. The per-collection state machine and why a missed
 * schedule takes one snapshot, not a burst, are in schedule-store.ts.
 */

/** A live collection as the scheduler sees it. */
export interface ScheduledCollection {
  readonly id: number;
  readonly dbName: string;
  readonly name: string;
  readonly properties: Readonly<Record<string, string>>;
}

/** Exactly what the scheduler needs from the snapshot manager. */
export interface SchedulerSnapshots {
  create(dbName: string, collectionName: string, name: string, description: string, protectionSeconds: number): Promise<SnapshotRecord>;
  list(dbName: string, collectionName: string): Promise<SnapshotRecord[]>;
  drop(dbName: string, collectionName: string, name: string): Promise<void>;
  activePins(snapshotId: number): readonly unknown[];
}

export interface SchedulerDeps {
  readonly collections: () => readonly ScheduledCollection[];
  readonly snapshots: SchedulerSnapshots;
  readonly store: ScheduleStore;
  readonly clock: Clock;
  readonly log: Pick<Logger, 'info' | 'warn'>;
}

export interface TickReport {
  readonly taken: string[];
  readonly dropped: string[];
  readonly failed: string[];
}

export class SnapshotScheduler {
  readonly #d: SchedulerDeps;

  constructor(deps: SchedulerDeps) {
    this.#d = deps;
  }

  async tick(): Promise<TickReport> {
    const report: TickReport = { taken: [], dropped: [], failed: [] };
    const schedules = new Map((await this.#d.store.list()).map((s) => [s.record.collectionId, s] as const));
    const live = new Set<number>();
    for (const coll of this.#d.collections()) {
      let policy: SnapshotPolicy;
      try {
        policy = parseSnapshotPolicy(coll.properties);
      } catch (e) {
        // DDL validates these; a value stored before that check existed is reported and skipped.
        this.#d.log.warn({ collection: coll.name, err: (e as Error).message }, 'snapshot policy ignored');
        continue;
      }
      if (policy.intervalSeconds === 0 && policy.retentionCount === 0 && policy.maxAgeSeconds === 0) continue;
      live.add(coll.id);
      if (policy.intervalSeconds > 0) await this.#runSchedule(coll, policy, schedules.get(coll.id), report);
      await this.#retain(coll, policy, report);
    }
    // A schedule whose collection is gone or whose policy was removed: forget it.
    for (const id of schedules.keys()) if (!live.has(id)) await this.#d.store.delete(id);
    return report;
  }

  async #runSchedule(coll: ScheduledCollection, policy: SnapshotPolicy, found: VersionedSchedule | undefined, report: TickReport): Promise<void> {
    const now = this.#d.clock.nowMs();
    let cur = found;
    if (cur === undefined) {
      // First seen: the first snapshot is one interval from now (as a new cron entry would).
      await this.#d.store.create({ collectionId: coll.id, state: 'Idle', lastRunMs: now });
      return;
    }
    if (cur.record.state === 'Idle') {
      if (now < cur.record.lastRunMs + policy.intervalSeconds * 1000) return;
      cur = await this.#d.store.update(cur, { state: 'Taking', takingName: scheduledSnapshotName(now) }); // (1)
      if (cur === undefined) return; // another writer moved it: its tick owns this run
    }
    const name = cur.record.takingName!;
    try {
      const existing = (await this.#d.snapshots.list(coll.dbName, coll.name)).some((s) => s.name === name);
      if (!existing) await this.#d.snapshots.create(coll.dbName, coll.name, name, `scheduled every ${policy.intervalSeconds}s`, 0);
      await this.#d.store.update(cur, { state: 'Idle', takingName: undefined, lastRunMs: this.#d.clock.nowMs(), lastError: undefined }); // (2)
      report.taken.push(`${coll.name}/${name}`);
      this.#d.log.info({ collection: coll.name, snapshot: name }, 'scheduled snapshot taken');
    } catch (e) {
      const reason = e instanceof Error ? e.message : String(e);
      // (3): the next attempt is one interval later; a failing collection must not retry every tick.
      await this.#d.store.update(cur, { state: 'Idle', takingName: undefined, lastRunMs: this.#d.clock.nowMs(), lastError: reason });
      report.failed.push(`${coll.name}/${name}`);
      this.#d.log.warn({ collection: coll.name, snapshot: name, err: reason }, 'scheduled snapshot failed');
    }
  }

  /** Drops scheduled snapshots beyond the count or older than the max age, newest kept first; pinned ones stay. */
  async #retain(coll: ScheduledCollection, policy: SnapshotPolicy, report: TickReport): Promise<void> {
    if (policy.retentionCount === 0 && policy.maxAgeSeconds === 0) return;
    const now = this.#d.clock.nowMs();
    const scheduled = (await this.#d.snapshots.list(coll.dbName, coll.name))
      .filter((s) => s.name.startsWith(SCHEDULED_PREFIX))
      .sort((a, b) => b.createdAtMs - a.createdAtMs || b.id - a.id);
    let kept = 0;
    for (const s of scheduled) {
      const tooMany = policy.retentionCount > 0 && kept >= policy.retentionCount;
      const tooOld = policy.maxAgeSeconds > 0 && now - s.createdAtMs > policy.maxAgeSeconds * 1000;
      if ((!tooMany && !tooOld) || this.#d.snapshots.activePins(s.id).length > 0) {
        kept++;
        continue;
      }
      try {
        await this.#d.snapshots.drop(coll.dbName, coll.name, s.name);
        report.dropped.push(`${coll.name}/${s.name}`);
        this.#d.log.info({ collection: coll.name, snapshot: s.name, tooMany, tooOld }, 'snapshot dropped by retention');
      } catch (e) {
        // Pinned between the check and the drop: it stays; the next tick looks again.
        if (!isQuiverError(e, 'SnapshotPinned')) throw e;
        kept++;
      }
    }
  }
}
