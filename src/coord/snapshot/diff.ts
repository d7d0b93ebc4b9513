import { quiverError } from '../../common/errors.js';
import { columnKindOf, type CollectionSchema, type FieldSchema } from '../../schema/types.js';
import { decodeColumn, decodeDeltas } from '../../storage/binlog.js';
import type { ObjectStore } from '../../storage/object-store.js';
import { mapLimit } from '../../storage/snapshot-format/concurrency.js';
import { TIMESTAMP_FIELD_ID, type CollectionRecord, type SegmentRecord } from '../records.js';
import type { SnapshotRecord } from './snapshot-store.js';

/**
 * Row-level diff of two segment sets (two snapshots, or a snapshot and the collection now): which primary
 * keys were inserted, deleted or updated (an upsert is a delete and an insert of the same pk) between them.
 *
 * Its cost follows what changed, not the collection's size, because segment files are immutable and a
 * segment's only mutable part is its growing list of deltalogs:
 *   - a segment on both sides with the same deltalogs contributes the same rows to both: skipped unread;
 *   - a segment on both sides whose deltalog lists differ: only the deltalogs one side has and the other
 *     lacks are read. A deltalog entry is written for exactly one row the delete hit (segcore's
 *     applyDelete), so its pks are the rows that side lost, without reading the segment's binlogs;
 *   - a segment on one side only (a new flush, a compaction's output or its dropped inputs): its pk and
 *     timestamp binlogs and deltalogs are read, and its visible rows count as removed (side A) or added
 *     (side B).
 * A row version is (pk, insert timestamp): compaction copies rows with their timestamps, so the rows a
 * compaction moved appear removed from its inputs and added to its output with equal versions, and
 * cancel out. What is left, per pk: removed and added → updated; removed only → deleted; added only →
 * inserted. Primary keys are assumed unique among visible rows (Milvus does not enforce it on insert; a
 * duplicated pk reads as one key here).
 */

export type DiffOp = 'insert' | 'delete' | 'update';

export interface DiffChange {
  readonly op: DiffOp;
  readonly pk: bigint | string;
}

export interface DiffResult {
  readonly inserted: number;
  readonly deleted: number;
  readonly updated: number;
  /** Ordered by pk (numbers numerically, strings by code unit). */
  readonly changes: readonly DiffChange[];
  /** Segments skipped unread (same on both sides). */
  readonly segmentsSkipped: number;
  /** Segments whose binlogs were read (on one side only). */
  readonly segmentsRead: number;
  /** Deltalogs read for segments on both sides. */
  readonly deltalogsRead: number;
}

export interface DiffOptions {
  /** Files read at once. Default 16. */
  readonly concurrency?: number | undefined;
}

type Pk = bigint | string;

/** Per pk: versions removed going from A to B, and versions added. */
class Ledger {
  readonly removed = new Map<Pk, Set<string>>();
  readonly added = new Map<Pk, Set<string>>();

  note(side: 'removed' | 'added', pk: Pk, version: string): void {
    const m = this[side];
    let s = m.get(pk);
    if (!s) m.set(pk, (s = new Set()));
    s.add(version);
  }

  result(): Pick<DiffResult, 'inserted' | 'deleted' | 'updated' | 'changes'> {
    const changes: DiffChange[] = [];
    const keys = new Set<Pk>([...this.removed.keys(), ...this.added.keys()]);
    for (const pk of keys) {
      const r = new Set(this.removed.get(pk));
      const a = new Set(this.added.get(pk));
      for (const v of [...r]) if (a.delete(v)) r.delete(v); // moved by a compaction: unchanged
      if (r.size > 0 && a.size > 0) changes.push({ op: 'update', pk });
      else if (r.size > 0) changes.push({ op: 'delete', pk });
      else if (a.size > 0) changes.push({ op: 'insert', pk });
    }
    changes.sort((x, y) => (x.pk < y.pk ? -1 : x.pk > y.pk ? 1 : 0));
    let inserted = 0;
    let deleted = 0;
    let updated = 0;
    for (const c of changes) {
      if (c.op === 'insert') inserted++;
      else if (c.op === 'delete') deleted++;
      else updated++;
    }
    return { inserted, deleted, updated, changes };
  }
}

export async function diffSegments(
  store: ObjectStore,
  pkField: Pick<FieldSchema, 'fieldId' | 'dataType'>,
  a: readonly SegmentRecord[],
  b: readonly SegmentRecord[],
  opts: DiffOptions = {},
): Promise<DiffResult> {
  if (pkField.dataType !== 'Int64' && pkField.dataType !== 'VarChar') {
    throw new Error(`assertion failed: primary key type ${pkField.dataType}`);
  }
  const concurrency = opts.concurrency ?? 16;
  const ledger = new Ledger();
  const inA = new Map(a.map((s) => [s.id, s] as const));
  const inB = new Map(b.map((s) => [s.id, s] as const));
  const oneSide: { seg: SegmentRecord; side: 'removed' | 'added' }[] = [];
  const deltaWork: { seg: number; path: string; side: 'removed' | 'added' }[] = [];
  let skipped = 0;
  for (const [id, sa] of inA) {
    const sb = inB.get(id);
    if (!sb) {
      oneSide.push({ seg: sa, side: 'removed' });
      continue;
    }
    const pa = new Set(sa.deltalogs.map((l) => l.path));
    const pb = new Set(sb.deltalogs.map((l) => l.path));
    let same = pa.size === pb.size;
    for (const p of pb) {
      if (!pa.has(p)) {
        deltaWork.push({ seg: id, path: p, side: 'removed' });
        same = false;
      }
    }
    for (const p of pa) {
      if (!pb.has(p)) {
        deltaWork.push({ seg: id, path: p, side: 'added' });
        same = false;
      }
    }
    if (same) skipped++;
  }
  for (const [id, sb] of inB) if (!inA.has(id)) oneSide.push({ seg: sb, side: 'added' });

  // Deletes on a segment both sides hold: the version is "that row of that segment", which no
  // compaction output can equal (a compacted segment is not on both sides).
  await mapLimit(deltaWork, concurrency, async (w) => {
    const d = decodeDeltas(await getOrExplain(store, w.path, `segment ${w.seg}: deltalog`));
    for (let i = 0; i < d.ts.length; i++) ledger.note(w.side, d.pks[i]!, `seg${w.seg}`);
  });
  await mapLimit(oneSide, Math.max(1, Math.floor(concurrency / 2)), async ({ seg, side }) => {
    const rows = await visibleRows(store, pkField, seg);
    for (let i = 0; i < rows.pks.length; i++) ledger.note(side, rows.pks[i]!, `t${rows.ts[i]!}`);
  });
  return { ...ledger.result(), segmentsSkipped: skipped, segmentsRead: oneSide.length, deltalogsRead: deltaWork.length };
}

/** A segment's visible rows (pk, insert ts) after its deltalogs: the rule segcore's applyDeltalogs uses. */
export async function visibleRows(
  store: ObjectStore,
  pkField: Pick<FieldSchema, 'fieldId' | 'dataType'>,
  seg: SegmentRecord,
): Promise<{ pks: ArrayLike<Pk>; ts: BigInt64Array }> {
  const single = (fieldId: number) => {
    const logs = seg.binlogs[String(fieldId)] ?? [];
    if (logs.length !== 1) throw quiverError('SegmentLoadFailed', `segment ${seg.id}: field ${fieldId} has ${logs.length} binlogs, expected 1`);
    return logs[0]!.path;
  };
  const [pkBytes, tsBytes, deltas] = await Promise.all([
    getOrExplain(store, single(pkField.fieldId), `segment ${seg.id}: pk binlog`),
    getOrExplain(store, single(TIMESTAMP_FIELD_ID), `segment ${seg.id}: timestamp binlog`),
    Promise.all(seg.deltalogs.map(async (l) => decodeDeltas(await getOrExplain(store, l.path, `segment ${seg.id}: deltalog`)))),
  ]);
  const pkCol = decodeColumn(pkBytes, columnKindOf(pkField.dataType));
  const tsCol = decodeColumn(tsBytes, 'int64');
  if ((pkCol.kind !== 'int64' && pkCol.kind !== 'string') || tsCol.kind !== 'int64') {
    throw quiverError('SegmentLoadFailed', `segment ${seg.id}: unexpected pk or timestamp column kind`);
  }
  const pks = pkCol.data as ArrayLike<Pk>;
  if (deltas.length === 0) return { pks, ts: tsCol.data };
  const latest = new Map<Pk, bigint>();
  for (const d of deltas) {
    for (let i = 0; i < d.ts.length; i++) {
      const prev = latest.get(d.pks[i]!);
      if (prev === undefined || d.ts[i]! > prev) latest.set(d.pks[i]!, d.ts[i]!);
    }
  }
  const keepPks: Pk[] = [];
  const keepTs: bigint[] = [];
  for (let i = 0; i < pks.length; i++) {
    const del = latest.get(pks[i]!);
    if (del !== undefined && tsCol.data[i]! < del) continue;
    keepPks.push(pks[i]!);
    keepTs.push(tsCol.data[i]!);
  }
  return { pks: keepPks, ts: BigInt64Array.from(keepTs) };
}

async function getOrExplain(store: ObjectStore, key: string, what: string): Promise<Uint8Array> {
  try {
    return await store.get(key);
  } catch (e) {
    throw quiverError('SegmentLoadFailed', `${what} ${key} cannot be read: ${(e as Error).message}`, e);
  }
}

/** What the differ needs from the coordinator (the Engine and the SnapshotManager satisfy it). */
export interface SnapshotDiffDeps {
  readonly snapshots: {
    describe(dbName: string, collectionName: string, name: string): Promise<SnapshotRecord>;
    readContents(rec: SnapshotRecord): Promise<{ metadata: { schema: CollectionSchema }; entries: readonly { segment: SegmentRecord }[] }>;
  };
  readonly host: {
    readonly catalog: { resolveCollection(dbName: string, name: string): CollectionRecord };
    /** A flush and the Flushed segments in one collection lock hold (snapshot-manager.ts `SnapshotHost`). */
    flushAndHold<T>(collectionId: number, fn: (flushTs: bigint, segments: SegmentRecord[]) => Promise<T>): Promise<T>;
  };
  readonly store: ObjectStore;
}

/** `NOW` as either side: the collection as it is after a flush (every acknowledged write included). */
export const NOW = 'now';

export interface NamedDiff extends DiffResult {
  readonly from: string;
  readonly to: string;
}

/** `quiver snapshot diff COLLECTION A B`: resolves the two sides and runs `diffSegments`. */
export class SnapshotDiffer {
  readonly #d: SnapshotDiffDeps;

  constructor(deps: SnapshotDiffDeps) {
    this.#d = deps;
  }

  async diff(dbName: string, collectionName: string, from: string, to: string, opts: DiffOptions = {}): Promise<NamedDiff> {
    const [a, b] = await Promise.all([this.#side(dbName, collectionName, from), this.#side(dbName, collectionName, to)]);
    const pkA = a.schema.fields.find((f) => f.isPrimaryKey);
    const pkB = b.schema.fields.find((f) => f.isPrimaryKey);
    if (!pkA || !pkB || pkA.fieldId !== pkB.fieldId || pkA.dataType !== pkB.dataType) {
      throw quiverError('ParameterInvalid', `cannot diff ${from} and ${to} of ${collectionName}: their primary keys differ`);
    }
    return { from, to, ...(await diffSegments(this.#d.store, pkA, a.segments, b.segments, opts)) };
  }

  async #side(dbName: string, collectionName: string, name: string): Promise<{ schema: CollectionSchema; segments: readonly SegmentRecord[] }> {
    if (name === NOW) {
      const coll = this.#d.host.catalog.resolveCollection(dbName, collectionName);
      // The set taken in the flush's own lock hold: the collection exactly at the flush's ts.
      const segments = await this.#d.host.flushAndHold(coll.id, (_ts, segs) => Promise.resolve(segs));
      return { schema: coll.schema, segments };
    }
    const rec = await this.#d.snapshots.describe(dbName, collectionName, name);
    const contents = await this.#d.snapshots.readContents(rec);
    return { schema: contents.metadata.schema, segments: contents.entries.map((e) => e.segment) };
  }
}
