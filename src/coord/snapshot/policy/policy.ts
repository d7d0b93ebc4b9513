import { quiverError } from '../../../common/errors.js';

/**
 * A collection's snapshot policy, carried by three collection properties (set at createCollection or
 * with alterCollectionProperties, so the SDK needs no new method):
 *   snapshot.schedule.interval.seconds   0 or absent = no schedule
 *   snapshot.retention.count             keep at most this many scheduled snapshots (0 / absent = no limit)
 *   snapshot.retention.max_age.seconds   drop scheduled snapshots older than this (0 / absent = no limit)
 * Retention applies only to snapshots the scheduler took (name prefix `SCHEDULED_PREFIX`): a snapshot a
 * user named is never dropped by a policy.
 */

export const SCHEDULE_INTERVAL_KEY = 'snapshot.schedule.interval.seconds';
export const RETENTION_COUNT_KEY = 'snapshot.retention.count';
export const RETENTION_MAX_AGE_KEY = 'snapshot.retention.max_age.seconds';
export const SCHEDULED_PREFIX = 'auto_';

/** Limits: a year between snapshots, 10,000 kept, ten years of age. */
export const INTERVAL_SECONDS_MAX = 365 * 24 * 3600;
export const RETENTION_COUNT_MAX = 10_000;
export const MAX_AGE_SECONDS_MAX = 10 * 365 * 24 * 3600;

export interface SnapshotPolicy {
  /** 0: no schedule. */
  readonly intervalSeconds: number;
  /** 0: no count limit. */
  readonly retentionCount: number;
  /** 0: no age limit. */
  readonly maxAgeSeconds: number;
}

const LIMITS: readonly (readonly [key: string, max: number])[] = [
  [SCHEDULE_INTERVAL_KEY, INTERVAL_SECONDS_MAX],
  [RETENTION_COUNT_KEY, RETENTION_COUNT_MAX],
  [RETENTION_MAX_AGE_KEY, MAX_AGE_SECONDS_MAX],
];

function parseOne(props: Readonly<Record<string, string>>, key: string, max: number): number {
  const raw = props[key];
  if (raw === undefined || raw === '') return 0;
  // Decimal digits only: "1e3", "0x10", " 5" and "3.5" are refused rather than guessed at.
  if (!/^\d{1,12}$/.test(raw.trim()) || raw.trim() !== raw || Number(raw) > max) {
    throw quiverError('ParameterInvalid', `${key} ${JSON.stringify(raw)} is invalid: must be an integer in [0, ${max}] (0 turns it off)`);
  }
  return Number(raw);
}

/** The policy in a collection's properties; ParameterInvalid naming the key and value when one is bad. */
export function parseSnapshotPolicy(props: Readonly<Record<string, string>>): SnapshotPolicy {
  const [interval, count, age] = LIMITS.map(([k, max]) => parseOne(props, k, max)) as [number, number, number];
  return { intervalSeconds: interval, retentionCount: count, maxAgeSeconds: age };
}

/** For DDL: refuses properties a scheduler could not follow, before they are stored. */
export function validateSnapshotPolicyProperties(props: Readonly<Record<string, string>>): void {
  parseSnapshotPolicy(props);
}

/** `auto_20261203T145000123Z`: sortable, and a valid snapshot name (letters, digits, underscores). */
export function scheduledSnapshotName(nowMs: number): string {
  const iso = new Date(nowMs).toISOString(); // 2026-12-03T14:50:00.123Z
  return SCHEDULED_PREFIX + iso.replace(/[-:.]/g, '');
}
