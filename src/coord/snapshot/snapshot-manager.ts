import type { Logger } from 'pino';
import type { Clock } from '../../common/clock.js';
import { isQuiverError, quiverError } from '../../common/errors.js';
import { KeyedMutex } from '../../common/mutex.js';
import type { MetaKV } from '../../meta/meta-kv.js';
import type { ObjectStore } from '../../storage/object-store.js';
import { snapshotMetadataKey } from '../../storage/paths.js';
import type { Catalog } from '../catalog.js';
import type { CollectionRecord, SegmentRecord } from '../records.js';
import {
  encodeMetadata,
  manifestKey,
  readSnapshot,
  sharedManifestsPrefix,
  summarizeEntries,
  writeManifests,
  type ManifestEntry,
  type SnapshotMetadata,
} from '../../storage/snapshot-format/index.js';
import { RefIndex } from './ref-index.js';
import { SnapshotStore, type PinRecord, type SnapshotRecord } from './snapshot-store.js';

/**
 * Collection snapshots (DESIGN.md §4): create (flush, collect segments under the collection lock,
 * manifests + metadata, PENDING → COMMITTED), list, describe, drop (DELETING → files → meta), pins, and the
 * background reaper (expired pins, abandoned PENDING snapshots, snapshots of dropped collections whose
 * pins ended). Restore lives in `restore-service.ts`; it uses `readContents`, the name lock and the pins here.
 *
 * At start (`init`) every PENDING snapshot is removed: no create survives a restart, so each one was
 * abandoned by a crash (files first, meta last), and its name can be created again at once.
 */

/** Exactly what the snapshot manager needs from the coordinator's host (the Engine satisfies it). */
export interface SnapshotHost {
  readonly catalog: Pick<Catalog, 'resolveCollection' | 'collection' | 'indexes'>;
  readonly ids: { alloc(count?: number): Promise<number> };
  /**
   * Flushes the collection and, in the same hold of the collection lock (no flush, compaction commit or
   * index commit in between), runs `fn` with the flush's ts T and the Flushed segments: exactly the writes
   * with ts < T, every write acknowledged before the call included, none acknowledged after it returns.
   */
  flushAndHold<T>(collectionId: number, fn: (flushTs: bigint, segments: SegmentRecord[]) => Promise<T>): Promise<T>;
  addCompactionGuard(guard: (collectionId: number, segmentId: number) => boolean): void;
  onCollectionDropped(hook: (coll: CollectionRecord) => Promise<void>): void;
}

export interface SnapshotOptions {
  /** A PENDING snapshot older than this was abandoned by a crash: its files and meta are removed. */
  readonly pendingTimeoutMs: number;
  readonly pinTtlMaxMs: number;
  readonly compactionProtectionMaxMs: number;
  /**
   * Fault injection for crash tests only (config `QUIVER_FAULT_SNAPSHOT_PAUSE_MS`): wait this long after
   * the files are written and before COMMITTED, so a test can kill the process inside the window.
   */
  readonly faultPauseBeforeCommitMs?: number | undefined;
}

export const SNAPSHOT_DEFAULTS: SnapshotOptions = {
  pendingTimeoutMs: 60 * 60 * 1000,
  pinTtlMaxMs: 30 * 24 * 3600 * 1000,
  compactionProtectionMaxMs: 7 * 24 * 3600 * 1000,
};

export interface SnapshotDeps {
  readonly host: SnapshotHost;
  readonly kv: MetaKV;
  readonly store: ObjectStore;
  readonly clock: Clock;
  readonly log: Logger;
}

function channelOf(collectionId: number): string {
  return `quiver-dml_0_${collectionId}v0`;
}

export class SnapshotManager {
  readonly refs = new RefIndex();
  readonly records: SnapshotStore;
  readonly #host: SnapshotHost;
  readonly #store: ObjectStore;
  readonly #clock: Clock;
  readonly #log: Logger;
  readonly #opts: SnapshotOptions;
  readonly #nameLocks = new KeyedMutex<string>();
  /** Per collection: creates and manifest reclamation exclude each other (a create may reuse a manifest). */
  readonly #manifestLocks = new KeyedMutex<number>();
  /** Compaction protection windows: collectionId → segmentId → until (ms). */
  readonly #protect = new Map<number, Map<number, number>>();
  #pins = new Map<number, PinRecord>();
  /**
   * Shared manifests known to exist: listed by a snapshot record at init, or written or seen by this
   * process since. A create skips the existence check (a store round trip) for these. Only this class
   * deletes manifests (`#reclaimManifests`, which forgets what it deletes, under the same lock as
   * creates), so the set never names a missing file; it only saves work and never decides a delete.
   */
  readonly #manifestsKnown = new Set<string>();

  constructor(deps: SnapshotDeps, opts: SnapshotOptions = SNAPSHOT_DEFAULTS) {
    this.#host = deps.host;
    this.#store = deps.store;
    this.#clock = deps.clock;
    this.#log = deps.log;
    this.#opts = opts;
    this.records = new SnapshotStore(deps.kv);
    deps.host.addCompactionGuard((collectionId, segmentId) => {
      const until = this.#protect.get(collectionId)?.get(segmentId);
      return until !== undefined && until > this.#clock.nowMs();
    });
    deps.host.onCollectionDropped((coll) => this.#collectionDropped(coll));
  }

  /**
   * Loads every snapshot's references (GC stays fail-closed until this ran) and the pins, and removes
   * the PENDING snapshots a crashed coordinator left (no create survives a restart).
   */
  async init(): Promise<{ pendingRemoved: number }> {
    const all = await this.records.list();
    for (const rec of all) this.#track(rec);
    for (const pin of await this.records.pins()) this.#pins.set(pin.id, pin);
    let pendingRemoved = 0;
    for (const rec of all) {
      if (rec.state !== 'PENDING') continue;
      await this.#nameLocks.run(`${rec.collectionId}/${rec.name}`, () => this.#dropRecord(rec));
      this.#log.warn({ snapshot: rec.name, collectionId: rec.collectionId }, 'removed a snapshot left PENDING by a crash');
      pendingRemoved++;
    }
    this.refs.markLoaded();
    return { pendingRemoved };
  }

  /** Runs `fn` under the snapshot's name lock (the one create and drop take). */
  withNameLock<T>(collectionId: number, name: string, fn: () => Promise<T>): Promise<T> {
    return this.#nameLocks.run(`${collectionId}/${name}`, fn);
  }

  #track(rec: SnapshotRecord): void {
    this.refs.add(rec.id, rec.collectionId, rec.segmentIds, rec.buildIds);
    if (rec.state === 'COMMITTED') for (const k of rec.manifestKeys) this.#manifestsKnown.add(k);
    if (rec.compactionProtectUntilMs > this.#clock.nowMs()) {
      const m = this.#protect.get(rec.collectionId) ?? new Map<number, number>();
      for (const s of rec.segmentIds) m.set(s, Math.max(m.get(s) ?? 0, rec.compactionProtectUntilMs));
      this.#protect.set(rec.collectionId, m);
    }
  }

  // ------------------------------------------------------------------ create

  async create(dbName: string, collectionName: string, name: string, description: string, protectionSeconds: number): Promise<SnapshotRecord> {
    if (!Number.isInteger(protectionSeconds) || protectionSeconds < 0 || protectionSeconds * 1000 > this.#opts.compactionProtectionMaxMs) {
      throw quiverError(
        'ParameterInvalid',
        `compaction_protection_seconds ${protectionSeconds} is out of range [0, ${this.#opts.compactionProtectionMaxMs / 1000}] (7 days)`,
      );
    }
    const coll = this.#host.catalog.resolveCollection(dbName, collectionName);
    return this.#nameLocks.run(`${coll.id}/${name}`, async () => {
      const id = await this.#host.ids.alloc();
      const now = this.#clock.nowMs();
      const pending: SnapshotRecord = {
        id,
        name,
        description,
        collectionId: coll.id,
        collectionName: coll.name,
        dbName,
        state: 'PENDING',
        createTs: '',
        createdAtMs: now,
        metadataKey: snapshotMetadataKey(coll.id, id),
        manifestKeys: [],
        segmentIds: [],
        buildIds: [],
        partitionNames: coll.partitions.map((p) => p.name),
        totalRows: 0,
        totalBytes: 0,
        compactionProtectUntilMs: protectionSeconds > 0 ? now + protectionSeconds * 1000 : 0,
      };
      // CAS on "key absent": of concurrent creates of one name (even from other processes), one wins.
      let revision = await this.records.createPendingAt(pending);
      if (revision === undefined) {
        // A PENDING record found under the name lock has no create running (see snapshot-store.ts (5)):
        // it is stale and is replaced; anything else means the name is taken.
        const existing = await this.records.get(coll.id, name);
        if (existing?.record.state !== 'PENDING') {
          throw quiverError('SnapshotAlreadyExists', `snapshot ${name} already exists in collection ${coll.name}`);
        }
        this.#log.warn({ snapshot: name, collection: coll.name, staleId: existing.record.id }, 'replacing a stale PENDING snapshot');
        await this.#dropRecord(existing.record);
        revision = await this.records.createPendingAt(pending);
        if (revision === undefined) {
          throw quiverError('SnapshotAlreadyExists', `snapshot ${name} already exists in collection ${coll.name}`);
        }
      }
      try {
        const committed = await this.#materialize(pending, revision, dbName);
        this.#log.info({ snapshot: name, collection: coll.name, segments: committed.segmentIds.length }, 'snapshot created');
        return committed;
      } catch (err) {
        // Leave nothing half-made: drop the PENDING record's files and the record (the reaper would too).
        await this.#removeFiles(pending).catch(() => undefined);
        await this.records.delete(coll.id, name).catch(() => undefined);
        this.refs.remove(pending.id);
        throw err;
      }
    });
  }

  async #materialize(pending: SnapshotRecord, pendingRevision: number, dbName: string): Promise<SnapshotRecord> {
    const collectionId = pending.collectionId;
    return this.#manifestLocks.run(collectionId, async () => {
      // 1. The snapshot's ts T is its flush's: the flush seals every write with ts < T into flushed
      //    segments and deltalogs, and the segment set is taken in the same hold of the collection lock, so
      //    the snapshot is the collection exactly at T. A write acknowledged while the create runs is in it
      //    iff its ts < T; none after T is in any file the manifests list (the binlogs of the segments this
      //    flush sealed hold rows with ts < T only, and a deltalog list is frozen in the manifest), which is
      //    why the readers (restore, views, diff, export) need no ts filter of their own.
      // 2. The segments are in the RefIndex before the lock is released: no compaction or GC pass can
      //    interleave between choosing a segment and protecting it.
      const { segments, coll, createTs } = await this.#host.flushAndHold(collectionId, async (flushTs, segs) => {
        const buildIds = segs.flatMap((s) => s.indexes.map((i) => i.buildId));
        this.refs.add(
          pending.id,
          collectionId,
          segs.map((s) => s.id),
          buildIds,
        );
        const coll = this.#host.catalog.collection(collectionId);
        if (coll === undefined)
          throw quiverError('CollectionNotFound', `collection ${collectionId} was dropped while snapshot ${pending.name} was being created`);
        return { segments: segs, coll, createTs: flushTs.toString() };
      });
      if (pending.compactionProtectUntilMs > 0) {
        this.#track({ ...pending, segmentIds: segments.map((s) => s.id) });
      }
      // 3. Manifests (shared: a segment unchanged since the last snapshot reuses its file) and metadata.
      const indexes = this.#host.catalog.indexes(collectionId);
      const entries: ManifestEntry[] = segments.map((segment) => ({
        segment,
        channel: channelOf(collectionId),
        indexParams: indexes
          .filter((i) => segment.indexes.some((f) => f.indexId === i.id))
          .map((i) => ({ indexId: i.id, indexType: i.indexType, metric: i.metric, M: i.buildParams.M, efConstruction: i.buildParams.efConstruction })),
      }));
      const keys = entries.map((e) => manifestKey(collectionId, e));
      const summary = summarizeEntries(entries, keys);
      const metadata: SnapshotMetadata = {
        format_version: 1,
        snapshot_id: pending.id,
        name: pending.name,
        description: pending.description,
        collection_id: collectionId,
        collection_name: coll.name,
        db_name: dbName,
        create_ts: createTs,
        created_at_ms: pending.createdAtMs,
        schema: coll.schema,
        shards_num: coll.shardsNum,
        consistency_level: coll.consistencyLevel,
        properties: coll.properties,
        partitions: coll.partitions.map((p) => ({ id: p.id, name: p.name })),
        indexes,
        ...summary,
      };
      // The manifests and the metadata file are independent objects: written side by side (one store
      // round trip, not two); COMMITTED waits for both.
      await Promise.all([this.#writeManifests(collectionId, entries, keys), this.#store.put(pending.metadataKey, encodeMetadata(metadata))]);
      if (this.#opts.faultPauseBeforeCommitMs) await this.#clock.sleep(this.#opts.faultPauseBeforeCommitMs);
      // 4. COMMITTED only once every file it names exists.
      const patch: Partial<SnapshotRecord> = {
        state: 'COMMITTED',
        createTs,
        manifestKeys: summary.manifests,
        segmentIds: summary.segment_ids,
        buildIds: summary.build_ids,
        totalRows: summary.total_rows,
        totalBytes: summary.total_bytes,
        partitionNames: coll.partitions.map((p) => p.name),
      };
      if (!(await this.records.updateInState(collectionId, pending.name, 'PENDING', patch, { record: pending, revision: pendingRevision }))) {
        throw quiverError('ServiceInternal', `snapshot ${pending.name} changed while it was being created`);
      }
      const committed = { ...pending, ...patch } as SnapshotRecord;
      this.#track(committed);
      return committed;
    });
  }

  /** Writes the manifests not known to exist (writeManifests checks those first); call under the manifest lock. */
  async #writeManifests(collectionId: number, entries: readonly ManifestEntry[], keys: readonly string[]): Promise<void> {
    const missing = entries.filter((_e, i) => !this.#manifestsKnown.has(keys[i]!));
    if (missing.length === 0) return;
    const written = await writeManifests(this.#store, collectionId, missing);
    for (const k of written.keys) this.#manifestsKnown.add(k);
  }

  // ------------------------------------------------------------------ read

  /**
   * Which snapshot a (database, collection name, snapshot name) triple means. The RPCs name a snapshot by
   * its collection's name, but a pinned snapshot outlives its collection (README), and a dropped
   * collection's name may be taken again. The rule:
   *   1. the live collection of that name (or alias), if it has a snapshot of that name;
   *   2. otherwise the newest snapshot of that name among collections that are gone and had that
   *      (database, name) when they were dropped (or, for a record from before that was kept, when the
   *      snapshot was taken).
   * So a live collection's own snapshots always win, and a dropped collection's snapshot stays reachable
   * under the old name until it is dropped.
   */
  async #find(dbName: string, collectionName: string, name: string): Promise<{ record: SnapshotRecord | undefined; live: CollectionRecord | undefined }> {
    const live = this.#liveCollection(dbName, collectionName);
    if (live) {
      const own = await this.records.get(live.id, name);
      if (own) return { record: own.record, live };
    }
    const dead = (await this.#ofDroppedCollections(dbName, collectionName)).filter((r) => r.name === name);
    return { record: dead.sort((a, b) => b.createdAtMs - a.createdAtMs || b.id - a.id)[0], live };
  }

  /** The live collection of that name or alias, or undefined (no such collection or database). */
  #liveCollection(dbName: string, collectionName: string): CollectionRecord | undefined {
    try {
      return this.#host.catalog.resolveCollection(dbName, collectionName);
    } catch (e) {
      if (isQuiverError(e, 'CollectionNotFound') || isQuiverError(e, 'DatabaseNotFound')) return undefined;
      throw e;
    }
  }

  /** Snapshots whose collection is gone and was called (db, name). */
  async #ofDroppedCollections(dbName: string, collectionName: string): Promise<SnapshotRecord[]> {
    return (await this.records.list()).filter(
      (r) =>
        r.dbName === dbName &&
        r.collectionName === collectionName &&
        (r.collectionDropped === true || this.#host.catalog.collection(r.collectionId) === undefined),
    );
  }

  /** Throws the error a missing collection gives when neither rule of `#find` applies. */
  #collectionNotFound(dbName: string, collectionName: string): never {
    this.#host.catalog.resolveCollection(dbName, collectionName);
    throw quiverError('CollectionNotFound', `collection not found[database=${dbName}][collection=${collectionName}]`);
  }

  /** The live collection's snapshots, plus those of dropped collections of that name (see `#find`). */
  async list(dbName: string, collectionName: string): Promise<SnapshotRecord[]> {
    const live = this.#liveCollection(dbName, collectionName);
    const own = live ? await this.records.list(live.id) : [];
    const dead = await this.#ofDroppedCollections(dbName, collectionName);
    if (!live && dead.length === 0) this.#collectionNotFound(dbName, collectionName);
    // Per name, the one `#find` would pick.
    const byName = new Map<string, SnapshotRecord>();
    for (const r of [...dead].sort((a, b) => a.createdAtMs - b.createdAtMs || a.id - b.id)) if (r.state === 'COMMITTED') byName.set(r.name, r);
    for (const r of own) if (r.state === 'COMMITTED') byName.set(r.name, r);
    return [...byName.values()].sort((a, b) => a.createdAtMs - b.createdAtMs || a.id - b.id);
  }

  async describe(dbName: string, collectionName: string, name: string): Promise<SnapshotRecord> {
    const { record, live } = await this.#find(dbName, collectionName, name);
    if (!record && !live) this.#collectionNotFound(dbName, collectionName);
    if (record?.state !== 'COMMITTED') {
      throw quiverError('SnapshotNotFound', `snapshot not found[collection=${collectionName}][snapshot=${name}]`);
    }
    return record;
  }

  async readContents(rec: SnapshotRecord): Promise<Awaited<ReturnType<typeof readSnapshot>>> {
    return readSnapshot(this.#store, rec.metadataKey);
  }

  // ------------------------------------------------------------------ drop

  activePins(snapshotId: number): PinRecord[] {
    const now = this.#clock.nowMs();
    return [...this.#pins.values()].filter((p) => p.snapshotId === snapshotId && (p.expiresAtMs === undefined || p.expiresAtMs > now));
  }

  /**
   * Idempotent: dropping a missing snapshot succeeds. Refused (2601) while an unexpired pin exists. Finds
   * snapshots of dropped collections by the old name (see `#find`).
   */
  async drop(dbName: string, collectionName: string, name: string): Promise<void> {
    const { record, live } = await this.#find(dbName, collectionName, name);
    if (!record && !live) this.#collectionNotFound(dbName, collectionName);
    const collectionId = record?.collectionId ?? live!.id;
    await this.#nameLocks.run(`${collectionId}/${name}`, async () => {
      const r = await this.records.get(collectionId, name);
      if (!r) return;
      const pins = this.activePins(r.record.id);
      if (pins.length > 0) {
        throw quiverError(
          'SnapshotPinned',
          `snapshot ${name} of collection ${collectionName} is pinned (pin ids ${pins.map((p) => p.id).join(', ')}); unpin it first`,
        );
      }
      await this.#dropRecord(r.record);
      this.#log.info({ snapshot: name, collection: collectionName, snapshotId: r.record.id }, 'snapshot dropped');
    });
  }

  /** DELETING → metadata file → meta record; shared manifests nobody references any more go last. */
  async #dropRecord(rec: SnapshotRecord): Promise<void> {
    if (rec.state !== 'DELETING') {
      if (!(await this.records.updateInState(rec.collectionId, rec.name, rec.state, { state: 'DELETING' }))) return;
    }
    await this.#removeFiles(rec);
    await this.records.delete(rec.collectionId, rec.name);
    this.refs.remove(rec.id);
    this.#protect.get(rec.collectionId)?.clear();
    for (const other of await this.records.list(rec.collectionId)) this.#track(other);
    await this.#reclaimManifests(rec.collectionId);
  }

  async #removeFiles(rec: SnapshotRecord): Promise<void> {
    await this.#store.delete(rec.metadataKey);
  }

  /** Deletes shared manifests that no remaining snapshot of the collection lists. */
  async #reclaimManifests(collectionId: number): Promise<number> {
    return this.#manifestLocks.run(collectionId, async () => {
      const keep = new Set<string>();
      const remaining = await this.records.list(collectionId);
      for (const r of remaining) {
        if (r.state === 'PENDING') return 0; // a create in flight may reuse any manifest: try again later
        for (const k of r.manifestKeys) keep.add(k);
      }
      let n = 0;
      for (const o of await this.#store.list(sharedManifestsPrefix(collectionId))) {
        if (keep.has(o.key)) continue;
        this.#manifestsKnown.delete(o.key);
        await this.#store.delete(o.key);
        n++;
      }
      return n;
    });
  }

  // ------------------------------------------------------------------ pins

  async pin(dbName: string, collectionName: string, name: string, ttlSeconds: number, jobId?: number): Promise<PinRecord> {
    if (!Number.isInteger(ttlSeconds) || ttlSeconds < 0 || ttlSeconds * 1000 > this.#opts.pinTtlMaxMs) {
      throw quiverError(
        'ParameterInvalid',
        `ttl_seconds ${ttlSeconds} is out of range [0, ${this.#opts.pinTtlMaxMs / 1000}] (30 days; 0 = until unpinned)`,
      );
    }
    const rec = await this.describe(dbName, collectionName, name);
    const now = this.#clock.nowMs();
    const pin: PinRecord = {
      id: await this.#host.ids.alloc(),
      snapshotId: rec.id,
      collectionId: rec.collectionId,
      snapshotName: rec.name,
      createdAtMs: now,
      expiresAtMs: ttlSeconds > 0 ? now + ttlSeconds * 1000 : undefined,
      jobId,
    };
    await this.records.putPin(pin);
    this.#pins.set(pin.id, pin);
    this.#log.info({ pinId: pin.id, snapshot: rec.name, collection: collectionName, expiresAtMs: pin.expiresAtMs, jobId }, 'snapshot pinned');
    return pin;
  }

  /** A pin a restore job holds on its source (no expiry): built here, committed in the job's start txn. */
  jobPin(rec: SnapshotRecord, pinId: number, jobId: number): PinRecord {
    return {
      id: pinId,
      snapshotId: rec.id,
      collectionId: rec.collectionId,
      snapshotName: rec.name,
      createdAtMs: this.#clock.nowMs(),
      expiresAtMs: undefined,
      jobId,
    };
  }

  /** Makes a pin committed elsewhere (a restore start) visible to `drop`; call under the name lock. */
  trackPin(pin: PinRecord): void {
    this.#pins.set(pin.id, pin);
    this.#log.info({ pinId: pin.id, snapshot: pin.snapshotName, expiresAtMs: pin.expiresAtMs, jobId: pin.jobId }, 'snapshot pinned');
  }

  /** Unknown pin ids unpin successfully (idempotent). */
  async unpin(pinId: number): Promise<void> {
    const pin = this.#pins.get(pinId);
    await this.records.deletePin(pinId);
    this.#pins.delete(pinId);
    if (pin) this.#log.info({ pinId, snapshot: pin.snapshotName, jobId: pin.jobId }, 'snapshot unpinned');
  }

  pinCount(): number {
    return this.activePinsAll().length;
  }

  activePinsAll(): PinRecord[] {
    const now = this.#clock.nowMs();
    return [...this.#pins.values()].filter((p) => p.expiresAtMs === undefined || p.expiresAtMs > now);
  }

  // ------------------------------------------------------------------ collection drop and the reaper

  async #collectionDropped(coll: CollectionRecord): Promise<void> {
    for (const rec of await this.records.list(coll.id)) {
      if (this.activePins(rec.id).length > 0) {
        // Kept for its pins; the name it had at the drop is how the RPCs still find it (`#find`).
        await this.records.updateInState(rec.collectionId, rec.name, rec.state, { collectionDropped: true, collectionName: coll.name });
        continue;
      }
      await this.#nameLocks.run(`${rec.collectionId}/${rec.name}`, () => this.#dropRecord(rec));
    }
  }

  /**
   * One pass of snapshot housekeeping: reap expired pins; drop snapshots of dropped collections once no
   * pin holds them; remove PENDING snapshots abandoned longer than the pending timeout (files first, meta
   * last); finish drops interrupted in DELETING.
   */
  async tick(): Promise<{ pinsReaped: number; snapshotsRemoved: number }> {
    const now = this.#clock.nowMs();
    let pinsReaped = 0;
    let snapshotsRemoved = 0;
    for (const pin of [...this.#pins.values()]) {
      if (pin.expiresAtMs !== undefined && pin.expiresAtMs <= now) {
        await this.unpin(pin.id);
        pinsReaped++;
      }
    }
    for (const rec of await this.records.list()) {
      const abandoned = rec.state === 'PENDING' && now - rec.createdAtMs > this.#opts.pendingTimeoutMs;
      const orphaned = rec.collectionDropped === true && this.activePins(rec.id).length === 0;
      if (abandoned || orphaned || rec.state === 'DELETING') {
        await this.#nameLocks.run(`${rec.collectionId}/${rec.name}`, () => this.#dropRecord(rec));
        snapshotsRemoved++;
      }
    }
    return { pinsReaped, snapshotsRemoved };
  }

  /** Referenced bytes and snapshot counts per collection (metrics). */
  async stats(): Promise<Map<number, { count: number; bytes: number }>> {
    const out = new Map<number, { count: number; bytes: number }>();
    for (const r of await this.records.list()) {
      if (r.state !== 'COMMITTED') continue;
      const s = out.get(r.collectionId) ?? { count: 0, bytes: 0 };
      s.count++;
      s.bytes += r.totalBytes;
      out.set(r.collectionId, s);
    }
    return out;
  }
}

export type { SegmentRecord };
