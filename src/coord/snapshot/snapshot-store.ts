import { quiverError } from '../../common/errors.js';
import type { MetaKV, Op } from '../../meta/meta-kv.js';

/**
 * Snapshot and pin records in MetaKV.
 *
 *   (1) create ──▶ PENDING ──(2) manifests + metadata written──▶ COMMITTED ──(3) drop──▶ DELETING ──(4)──▶ (gone)
 *                    │                                                                         ▲
 *                    └──(5) stale: left by a crashed or failed create ──────────────────────────┘
 *
 *   (5) A PENDING record is stale when no create of it can still be running: at coordinator start (a
 *       restart ends every create), when a create of the same name finds it under the name lock (a
 *       create holds that lock for its whole run, and the coordinator is the only writer), or when it
 *       is older than `pendingTimeout` (the reaper's fallback). Stale records go DELETING → files → meta,
 *       so a crash mid-create never makes a later create of that name fail.
 *
 * Every transition is a compare-and-set on the record's mod revision, so two creators of one name, or a
 * dropper racing the GC, cannot both win.
 */

export type SnapshotState = 'PENDING' | 'COMMITTED' | 'DELETING';

export const SNAPSHOT_TRANSITIONS: Readonly<Record<SnapshotState, readonly SnapshotState[]>> = {
  PENDING: ['COMMITTED', 'DELETING'],
  COMMITTED: ['DELETING'],
  DELETING: [],
};

export function assertSnapshotTransition(from: SnapshotState, to: SnapshotState): void {
  if (!SNAPSHOT_TRANSITIONS[from].includes(to)) throw new Error(`assertion failed: illegal snapshot transition ${from} → ${to}`);
}

export interface SnapshotRecord {
  readonly id: number;
  readonly name: string;
  readonly description: string;
  readonly collectionId: number;
  readonly collectionName: string;
  readonly dbName: string;
  readonly state: SnapshotState;
  /** Hybrid timestamp of the snapshot ('' while PENDING). */
  readonly createTs: string;
  readonly createdAtMs: number;
  readonly metadataKey: string;
  readonly manifestKeys: readonly string[];
  readonly segmentIds: readonly number[];
  readonly buildIds: readonly number[];
  readonly partitionNames: readonly string[];
  readonly totalRows: number;
  readonly totalBytes: number;
  /** Segments of this snapshot stay out of compaction until then. */
  readonly compactionProtectUntilMs: number;
  /** The source collection was dropped: the snapshot goes as soon as no pin holds it. */
  readonly collectionDropped?: boolean | undefined;
}

export interface PinRecord {
  readonly id: number;
  readonly snapshotId: number;
  readonly collectionId: number;
  readonly snapshotName: string;
  readonly createdAtMs: number;
  /** undefined: until unpinned. */
  readonly expiresAtMs?: number | undefined;
  /** Set for pins a restore job holds on its source. */
  readonly jobId?: number | undefined;
}

const enc = new TextEncoder();
const dec = new TextDecoder();
const SNAP = 'quiver/snapshot/';
const PIN = 'quiver/snapshot-pin/';
const snapKey = (collectionId: number, name: string) => `${SNAP}${collectionId}/${name}`;
const pinKey = (id: number) => `${PIN}${id}`;

export class SnapshotStore {
  readonly #kv: MetaKV;

  constructor(kv: MetaKV) {
    this.#kv = kv;
  }

  /** Creates a PENDING record; false if the name is taken in this collection. */
  async createPending(rec: SnapshotRecord): Promise<boolean> {
    return (await this.createPendingAt(rec)) !== undefined;
  }

  /** `createPending` that returns the record's mod revision (undefined: the name is taken). */
  async createPendingAt(rec: SnapshotRecord): Promise<number | undefined> {
    const key = snapKey(rec.collectionId, rec.name);
    const res = await this.#kv.txn([{ key, target: 'version', op: '==', value: 0 }], [{ type: 'put', key, value: enc.encode(JSON.stringify(rec)) }]);
    return res.succeeded ? res.revision : undefined;
  }

  async get(collectionId: number, name: string): Promise<{ record: SnapshotRecord; revision: number } | undefined> {
    const e = await this.#kv.get(snapKey(collectionId, name));
    return e ? { record: readSnapshot(e.key, e.value), revision: e.modRevision } : undefined;
  }

  async list(collectionId?: number): Promise<SnapshotRecord[]> {
    const entries = await this.#kv.scan(collectionId === undefined ? SNAP : `${SNAP}${collectionId}/`);
    return entries.map((e) => readSnapshot(e.key, e.value));
  }

  /**
   * Compare-and-set on state: false when the record is gone or no longer in `expected`. `known`: the
   * record as this caller wrote it and its mod revision, which spares the read (the CAS on the mod
   * revision still decides; a stale `known` just loses).
   */
  async updateInState(
    collectionId: number,
    name: string,
    expected: SnapshotState,
    patch: Partial<SnapshotRecord>,
    known?: { readonly record: SnapshotRecord; readonly revision: number },
  ): Promise<boolean> {
    const cur = known ?? (await this.get(collectionId, name));
    if (!cur || cur.record.state !== expected) return false;
    if (patch.state && patch.state !== expected) assertSnapshotTransition(expected, patch.state);
    const key = snapKey(collectionId, name);
    const next = { ...cur.record, ...patch };
    const res = await this.#kv.txn(
      [{ key, target: 'modRevision', op: '==', value: cur.revision }],
      [{ type: 'put', key, value: enc.encode(JSON.stringify(next)) }],
    );
    return res.succeeded;
  }

  async delete(collectionId: number, name: string): Promise<void> {
    await this.#kv.delete(snapKey(collectionId, name));
  }

  async putPin(pin: PinRecord): Promise<void> {
    await this.#kv.put(pinKey(pin.id), enc.encode(JSON.stringify(pin)));
  }

  /** The put of a pin, for a caller that commits it in its own txn (a restore start). */
  pinOp(pin: PinRecord): Op {
    return { type: 'put', key: pinKey(pin.id), value: enc.encode(JSON.stringify(pin)) };
  }

  async deletePin(id: number): Promise<boolean> {
    return this.#kv.delete(pinKey(id));
  }

  async pins(): Promise<PinRecord[]> {
    return (await this.#kv.scan(PIN)).map((e) => readPin(e.key, e.value));
  }
}

// Asserted right after the read: a damaged record is reported with its key, never half-used.

function parse(key: string, value: Uint8Array): unknown {
  try {
    return JSON.parse(dec.decode(value));
  } catch (e) {
    throw quiverError('ServiceInternal', `meta key ${key} is not valid JSON: ${e instanceof Error ? e.message : String(e)}`);
  }
}

function readSnapshot(key: string, value: Uint8Array): SnapshotRecord {
  const r = parse(key, value) as SnapshotRecord;
  const ok =
    typeof r === 'object' &&
    r !== null &&
    Number.isSafeInteger(r.id) &&
    Number.isSafeInteger(r.collectionId) &&
    typeof r.name === 'string' &&
    (r.state === 'PENDING' || r.state === 'COMMITTED' || r.state === 'DELETING') &&
    typeof r.metadataKey === 'string' &&
    Array.isArray(r.manifestKeys) &&
    Array.isArray(r.segmentIds) &&
    Array.isArray(r.buildIds) &&
    Number.isFinite(r.createdAtMs);
  if (!ok) throw quiverError('ServiceInternal', `meta key ${key}: not a valid snapshot record (state ${String((r as { state?: unknown })?.state)})`);
  return r;
}

function readPin(key: string, value: Uint8Array): PinRecord {
  const p = parse(key, value) as PinRecord;
  const ok =
    typeof p === 'object' &&
    p !== null &&
    Number.isSafeInteger(p.id) &&
    Number.isSafeInteger(p.snapshotId) &&
    Number.isSafeInteger(p.collectionId) &&
    (p.expiresAtMs === undefined || Number.isFinite(p.expiresAtMs)) &&
    (p.jobId === undefined || Number.isSafeInteger(p.jobId));
  if (!ok) throw quiverError('ServiceInternal', `meta key ${key}: not a valid snapshot pin`);
  return p;
}
