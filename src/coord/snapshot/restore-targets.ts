/**
 * RestoreTargets: the catalog side of a restore (the target collection, its segments and indexes),
 * moved here from the Engine so the coordinator owns it. It works on the `Catalog` through guarded
 * commits (each compares the records it changes on their current value in the same txn) and is the
 * `RestoreTargetOps` the copy checker drives:
 *
 *   startChanges  the Restoring collection (name reserved, invisible), its indexes and WAL checkpoint,
 *                 committed by the restore start in ONE txn with the pin and the Pending job
 *   register      Pending: one Importing record per target segment (ids and rows only), in batches
 *   publish       Publishing: each target segment Importing → Flushed with the file lists re-derived from
 *                 the source manifests (batches, collection still invisible), then one small txn
 *                 Restoring → Created: that flip alone makes the restore visible; then the host sets
 *                 up the runtime (`collectionPublished`) and the pin is released
 *   rollback      RollingBack: every target key deleted, then the segment records (batches), then the
 *                 collection with its indexes and checkpoint in one txn; then the pin is released
 *   removeOrphan  reconcile at start: a Restoring collection no job owns (a crash between allocating and
 *                 the start txn cannot produce one, but an older version or a lost job record can)
 *
 * Why Importing records are not in the start txn: 10,000 of them are ~2 MiB, over etcd's request limit;
 * the job's mappings already reserve the ids, and the checker registers the records (bounded batches,
 * idempotent) before any copy starts, which is when GC needs them. Every step here is idempotent and
 * derived from the catalog, so the checker can repeat it after a crash or a lost lease.
 */

import { isQuiverError, quiverError } from '../../common/errors.js';
import { verifyRestoredRows } from './restore-verify.js';
import type { Op } from '../../meta/meta-kv.js';
import type { ObjectStore } from '../../storage/object-store.js';
import { collectionFilePrefixes } from '../../storage/paths.js';
import type { Catalog, CatalogChange } from '../catalog.js';
import { TargetRefused } from '../copy/checker.js';
import { batchOps, TXN_BYTES_MAX, TXN_OPS_MAX } from '../copy/copy-job-store.js';
import { resolveMappings, rewriteSegmentRecord, targetKeysOf } from '../../storage/snapshot-format/segment-rewrite.js';
import { snapshotRefOf, type CopyJob, type CopyLogger, type RestoreTargetOps, type SegmentMapping, type SourceSegmentReader } from '../copy/types.js';
import type { CollectionRecord, IndexRecord, PartitionRecord, SegmentRecord } from '../records.js';

export const DEFAULT_PARTITION_NAME = '_default';
/** Source segments read from the manifests at once while publishing or rolling back. */
const SEGMENTS_READ_MAX = 256;

/** Exactly what restore needs from the coordinator's host (the Engine satisfies it). */
export interface RestoreHost {
  readonly catalog: Catalog;
  readonly ids: { alloc(count?: number): Promise<number> };
  readonly tso: { next(): bigint };
  readonly wal: { endPosition(): number };
  /** Serializes DDL: a name check and the commit that takes the name are one step. */
  withDdlLock<T>(fn: () => Promise<T>): Promise<T>;
  /**
   * After the catalog commit that made a restored collection visible, set up its in-memory state:
   * runtime, pk columns, index builds. Idempotent.
   */
  collectionPublished(collectionId: number): Promise<void>;
}

export interface RestoreTargetsDeps {
  readonly host: RestoreHost;
  readonly sources: SourceSegmentReader;
  /** Where the copies were written (rollback deletes them). */
  readonly store: ObjectStore;
  /** Releases the job's pin on its source snapshot (idempotent). */
  readonly releasePin: (pinId: number) => Promise<void>;
  readonly log: CopyLogger;
  /** The check before publish (restore-verify.ts); tests over record fixtures without files replace it. */
  readonly verify?: typeof verifyRestoredRows | undefined;
}

export interface TargetPlan {
  readonly collection: CollectionRecord;
  readonly changes: CatalogChange[];
  readonly mappings: SegmentMapping[];
}

export class RestoreTargets implements RestoreTargetOps {
  readonly #host: RestoreHost;
  readonly #catalog: Catalog;
  readonly #sources: SourceSegmentReader;
  readonly #store: ObjectStore;
  readonly #verifyRows: typeof verifyRestoredRows;
  readonly #releasePin: (pinId: number) => Promise<void>;
  readonly #log: CopyLogger;

  constructor(deps: RestoreTargetsDeps) {
    this.#host = deps.host;
    this.#catalog = deps.host.catalog;
    this.#sources = deps.sources;
    this.#store = deps.store;
    this.#verifyRows = deps.verify ?? verifyRestoredRows;
    this.#releasePin = deps.releasePin;
    this.#log = deps.log;
  }

  /**
   * The target collection (state Restoring), its indexes and checkpoint, and the id mappings, with ids
   * from `firstId` on (a block the caller allocated: collection, partitions, then one per segment).
   * Pure apart from the TSO: nothing is written.
   */
  plan(input: {
    firstId: number;
    dbId: number;
    name: string;
    source: Omit<CollectionRecord, 'id' | 'dbId' | 'name' | 'partitions' | 'createdTs' | 'updateTs' | 'state' | 'loaded'>;
    partitions: readonly { readonly name: string }[];
    indexes: readonly IndexRecord[];
    segments: readonly { readonly sourceId: number; readonly partitionName: string }[];
  }): TargetPlan {
    let next = input.firstId;
    const ts = this.#host.tso.next().toString();
    const id = next++;
    const partitions: PartitionRecord[] = input.partitions.map((p) => ({ id: next++, name: p.name, createdTs: ts }));
    if (!partitions.some((p) => p.name === DEFAULT_PARTITION_NAME)) partitions.unshift({ id: next++, name: DEFAULT_PARTITION_NAME, createdTs: ts });
    const collection: CollectionRecord = {
      ...input.source,
      id,
      dbId: input.dbId,
      name: input.name,
      schema: { ...input.source.schema, name: input.name },
      partitions,
      createdTs: ts,
      updateTs: ts,
      state: 'Restoring',
      droppedAtMs: undefined,
      loaded: false,
      loadedPartitions: undefined,
    };
    const changes: CatalogChange[] = [{ type: 'putCollection', record: collection }];
    for (const idx of input.indexes) changes.push({ type: 'putIndex', record: { ...idx, collectionId: id } });
    changes.push({ type: 'putCheckpoint', collectionId: id, position: this.#host.wal.endPosition() });
    const byName = new Map(partitions.map((p) => [p.name, p.id] as const));
    const mappings = input.segments.map((s) => ({
      sourceSegmentId: s.sourceId,
      targetSegmentId: next++,
      targetPartitionId: byName.get(s.partitionName) ?? byName.get(DEFAULT_PARTITION_NAME)!,
    }));
    return { collection, changes, mappings };
  }

  /** How many ids `plan` uses. */
  static idsNeeded(partitions: readonly { readonly name: string }[], segments: number): number {
    return 1 + partitions.length + (partitions.some((p) => p.name === DEFAULT_PARTITION_NAME) ? 0 : 1) + segments;
  }

  async register(job: CopyJob): Promise<void> {
    const cid = job.targetCollectionId;
    const coll = this.#catalog.collectionIncludingDropped(cid);
    if (coll?.state !== 'Restoring') throw new TargetRefused(`target collection ${job.targetCollectionName} (${cid}) is ${coll?.state ?? 'gone'}`);
    const missing = job.mappings.filter((m) => this.#catalog.segment(cid, m.targetSegmentId) === undefined);
    const ts = coll.createdTs;
    for (const batch of chunk(missing, TXN_OPS_MAX - 1)) {
      const changes: CatalogChange[] = batch.map((m) => ({
        type: 'putSegment',
        record: {
          id: m.targetSegmentId,
          collectionId: cid,
          partitionId: m.targetPartitionId,
          state: 'Importing',
          numRows: 0,
          binlogs: {},
          deltalogs: [],
          statslogs: [],
          indexes: [],
          createdTs: ts,
        },
      }));
      const expect = [
        { kind: 'collection' as const, id: cid, state: 'Restoring' as const },
        ...batch.map((m) => ({ kind: 'segment' as const, collectionId: cid, segmentId: m.targetSegmentId, state: 'absent' as const })),
      ];
      if (!(await this.#catalog.commitGuarded(changes, { expect }))) {
        throw quiverError('ServiceNotReady', `restore job ${job.id}: registering target segments lost a race; retried next pass`);
      }
    }
  }

  async publish(job: CopyJob): Promise<void> {
    const cid = job.targetCollectionId;
    const coll = this.#catalog.collectionIncludingDropped(cid);
    if (coll?.state === 'Created') {
      // Published before a crash or a lost lease: only the steps after the flip may be missing.
      await this.#host.collectionPublished(cid);
      await this.#releasePin(job.pinId);
      return;
    }
    if (coll?.state !== 'Restoring') throw new TargetRefused(`target collection ${job.targetCollectionName} (${cid}) is ${coll?.state ?? 'gone'}`);
    // Nothing becomes visible unless the copies hold exactly the snapshot's keys and deletes (restore-verify.ts).
    await this.#verify(job, coll.schema);
    const todo = job.mappings.filter((m) => this.#catalog.segment(cid, m.targetSegmentId)?.state !== 'Flushed');
    for (const part of chunk(todo, SEGMENTS_READ_MAX)) {
      const records = (await this.#resolve(job, part)).map((m) => rewriteSegmentRecord(m, 'Flushed'));
      for (const batch of recordBatches(records)) {
        const changes: CatalogChange[] = batch.map((record) => ({ type: 'putSegment', record }));
        const expect = [
          { kind: 'collection' as const, id: cid, state: 'Restoring' as const },
          ...batch.map((r) => ({ kind: 'segment' as const, collectionId: cid, segmentId: r.id, state: 'Importing' as const })),
        ];
        if (!(await this.#catalog.commitGuarded(changes, { expect }))) {
          throw quiverError('ServiceNotReady', `restore job ${job.id}: publishing segments lost a race; retried`);
        }
      }
    }
    const visible: CollectionRecord = { ...coll, state: 'Created', updateTs: this.#host.tso.next().toString() };
    const flipped = await this.#catalog.commitGuarded([{ type: 'putCollection', record: visible }], {
      expect: [{ kind: 'collection', id: cid, state: 'Restoring' }],
    });
    if (!flipped && this.#catalog.collectionIncludingDropped(cid)?.state !== 'Created') {
      throw quiverError('ServiceNotReady', `restore job ${job.id}: making ${job.targetCollectionName} visible lost a race; retried`);
    }
    await this.#host.collectionPublished(cid);
    await this.#releasePin(job.pinId);
    this.#log.info({ jobId: job.id, target: job.targetCollectionName, segments: job.mappings.length }, 'restore published');
  }

  async rollback(job: CopyJob): Promise<void> {
    const cid = job.targetCollectionId;
    const coll = this.#catalog.collectionIncludingDropped(cid);
    if (coll !== undefined && coll.state !== 'Restoring') {
      // Never drop a collection users can see (or one that is not ours any more).
      throw quiverError('ServiceInternal', `restore job ${job.id}: target ${job.targetCollectionName} is ${coll.state}; refusing to roll it back`);
    }
    await this.#deleteCopies(job);
    if (coll !== undefined) await this.#removeRecords(cid);
    await this.#releasePin(job.pinId);
    this.#log.warn({ jobId: job.id, target: job.targetCollectionName, reason: job.reason }, 'restore rolled back');
  }

  /** Reconcile: removes a Restoring collection no job owns (no copy ran for it, but prefixes are cleared anyway). */
  async removeOrphan(collectionId: number): Promise<boolean> {
    const coll = this.#catalog.collectionIncludingDropped(collectionId);
    if (coll?.state !== 'Restoring') return false;
    for (const prefix of collectionFilePrefixes(collectionId)) await this.#store.deletePrefix(prefix);
    await this.#removeRecords(collectionId);
    this.#log.warn({ collectionId, name: coll.name }, 'removed a restore target without a job');
    return true;
  }

  /** Every key the job's copies may have written; when the manifests cannot be read, the collection's prefixes. */
  async #deleteCopies(job: CopyJob): Promise<void> {
    for (const part of chunk(job.mappings, SEGMENTS_READ_MAX)) {
      let keys: string[];
      try {
        keys = targetKeysOf(await this.#resolve(job, part));
      } catch (e) {
        // Index files (keyed by build, not collection) of these segments stay for GC's orphan sweep.
        this.#log.warn({ jobId: job.id, err: e }, 'restore rollback: source manifests unreadable; deleting the target collection prefixes');
        for (const prefix of collectionFilePrefixes(job.targetCollectionId)) await this.#store.deletePrefix(prefix);
        return;
      }
      for (const key of keys) await this.#store.delete(key);
    }
  }

  async #removeRecords(cid: number): Promise<void> {
    const expectRestoring = [{ kind: 'collection' as const, id: cid, state: 'Restoring' as const }];
    const segs = this.#catalog.segments(cid);
    for (const batch of chunk(segs, TXN_OPS_MAX - 1)) {
      const changes: CatalogChange[] = batch.map((s) => ({ type: 'deleteSegment', collectionId: cid, segmentId: s.id }));
      if (!(await this.#catalog.commitGuarded(changes, { expect: expectRestoring }))) {
        throw quiverError('ServiceNotReady', `removing restore target ${cid}: lost a race; retried`);
      }
    }
    const changes: CatalogChange[] = this.#catalog.indexes(cid).map((i) => ({ type: 'deleteIndex', collectionId: cid, indexId: i.id }));
    changes.push({ type: 'deleteCheckpoint', collectionId: cid }, { type: 'deleteCollection', id: cid });
    if (!(await this.#catalog.commitGuarded(changes, { expect: expectRestoring })) && this.#catalog.collectionIncludingDropped(cid) !== undefined) {
      throw quiverError('ServiceNotReady', `removing restore target ${cid}: lost a race; retried`);
    }
  }

  async #verify(job: CopyJob, schema: CollectionRecord['schema']): Promise<void> {
    const pairs: { source: SegmentRecord; target: SegmentRecord }[] = [];
    for (const part of chunk(job.mappings, SEGMENTS_READ_MAX)) {
      for (const m of await this.#resolve(job, part)) pairs.push({ source: m.source, target: rewriteSegmentRecord(m, 'Flushed') });
    }
    try {
      await this.#verifyRows(this.#store, schema, pairs, job.sourcePrefix ?? '');
    } catch (e) {
      // A mismatch, a damaged or a missing file does not heal by retrying: roll back.
      if (isQuiverError(e, 'DataInvalid') || isQuiverError(e, 'SegmentLoadFailed') || isQuiverError(e, 'IoKeyNotFound')) throw new TargetRefused(e.message);
      throw e;
    }
  }

  async #resolve(job: CopyJob, mappings: readonly SegmentMapping[]) {
    const records = await this.#sources.read(
      snapshotRefOf(job),
      mappings.map((m) => m.sourceSegmentId),
    );
    return resolveMappings(mappings, job.targetCollectionId, records);
  }
}

function chunk<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

/** Segment records grouped so that each txn stays under the op and byte limits. */
function recordBatches(records: readonly SegmentRecord[]): SegmentRecord[][] {
  const enc = new TextEncoder();
  const ops: Op[] = records.map((r) => ({ type: 'put', key: String(r.id), value: enc.encode(JSON.stringify(r)) }));
  const batches = batchOps(ops, TXN_OPS_MAX - 1, TXN_BYTES_MAX);
  let i = 0;
  return batches.map((b) => {
    const out = records.slice(i, i + b.length);
    i += b.length;
    return out;
  });
}
