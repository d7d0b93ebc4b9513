import { quiverError } from '../../../common/errors.js';
import type { MetaKV } from '../../../meta/meta-kv.js';

/**
 * The scheduler's persisted state, one record per collection with a schedule
 * (`quiver/snapshot-schedule/{collectionId}`):
 *
 *   (first seen) ──▶ Idle ──(1) due: name chosen and persisted──▶ Taking
 *                     ▲                                             │
 *                     └──(2) snapshot committed, or (3) create failed┘   lastRunMs = when it ended
 *
 * The name is persisted before the create (1), so a crash mid-create resumes the same snapshot rather
 * than taking a second one: at the next tick a Taking record whose snapshot exists goes (2) at once,
 * otherwise the create is tried again under the same name (the snapshot manager's init removed the
 * PENDING leftover). lastRunMs is set when a run ends, never advanced by whole intervals, so a server
 * that was down for ten intervals takes one snapshot on restart, not ten.
 */

export type ScheduleState = 'Idle' | 'Taking';

export const SCHEDULE_TRANSITIONS: Readonly<Record<ScheduleState, readonly ScheduleState[]>> = {
  Idle: ['Taking'], // (1)
  Taking: ['Idle'], // (2), (3)
};

export function assertScheduleTransition(from: ScheduleState, to: ScheduleState): void {
  if (!SCHEDULE_TRANSITIONS[from].includes(to)) throw new Error(`assertion failed: illegal schedule transition ${from} → ${to}`);
}

export interface ScheduleRecord {
  readonly collectionId: number;
  readonly state: ScheduleState;
  /** When the last run ended (or when the schedule was first seen): the next is due one interval later. */
  readonly lastRunMs: number;
  /** Taking: the snapshot being taken. */
  readonly takingName?: string | undefined;
  /** The last run's failure, cleared by a success (shown in logs; kept for operators reading meta). */
  readonly lastError?: string | undefined;
}

const PREFIX = 'quiver/snapshot-schedule/';
const keyOf = (collectionId: number) => `${PREFIX}${collectionId}`;
const enc = new TextEncoder();
const dec = new TextDecoder();

export interface VersionedSchedule {
  readonly record: ScheduleRecord;
  readonly revision: number;
}

export class ScheduleStore {
  readonly #kv: MetaKV;

  constructor(kv: MetaKV) {
    this.#kv = kv;
  }

  async list(): Promise<VersionedSchedule[]> {
    return (await this.#kv.scan(PREFIX)).map((e) => ({ record: read(e.key, e.value), revision: e.modRevision }));
  }

  /** Creates the record if absent (CAS on version 0); false if another writer created it first. */
  async create(rec: ScheduleRecord): Promise<boolean> {
    assertValid(rec);
    const key = keyOf(rec.collectionId);
    const res = await this.#kv.txn([{ key, target: 'version', op: '==', value: 0 }], [{ type: 'put', key, value: enc.encode(JSON.stringify(rec)) }]);
    return res.succeeded;
  }

  /** CAS on the mod revision, with the transition checked; false when someone else wrote first. */
  async update(cur: VersionedSchedule, patch: Partial<Omit<ScheduleRecord, 'collectionId'>>): Promise<VersionedSchedule | undefined> {
    const next: ScheduleRecord = { ...cur.record, ...patch };
    if (next.state !== cur.record.state) assertScheduleTransition(cur.record.state, next.state);
    assertValid(next);
    const key = keyOf(cur.record.collectionId);
    const res = await this.#kv.txn(
      [{ key, target: 'modRevision', op: '==', value: cur.revision }],
      [{ type: 'put', key, value: enc.encode(JSON.stringify(next)) }],
    );
    return res.succeeded ? { record: next, revision: res.revision } : undefined;
  }

  async delete(collectionId: number): Promise<void> {
    await this.#kv.delete(keyOf(collectionId));
  }
}

function assertValid(r: ScheduleRecord): void {
  if (!Number.isSafeInteger(r.collectionId) || !Number.isFinite(r.lastRunMs) || (r.state === 'Taking') !== (typeof r.takingName === 'string')) {
    throw new Error(`assertion failed: invalid schedule record ${JSON.stringify(r)}`);
  }
}

// Checked right after the read: a damaged record is reported with its key, never half-used.
function read(key: string, value: Uint8Array): ScheduleRecord {
  let r: ScheduleRecord;
  try {
    r = JSON.parse(dec.decode(value)) as ScheduleRecord;
  } catch (e) {
    throw quiverError('ServiceInternal', `meta key ${key} is not valid JSON: ${(e as Error).message}`);
  }
  const ok =
    typeof r === 'object' &&
    r !== null &&
    Number.isSafeInteger(r.collectionId) &&
    (r.state === 'Idle' || r.state === 'Taking') &&
    Number.isFinite(r.lastRunMs) &&
    (r.state === 'Taking') === (typeof r.takingName === 'string');
  if (!ok) throw quiverError('ServiceInternal', `meta key ${key}: not a valid snapshot schedule record`);
  return r;
}
