/**
 * The garbage collector: reclaims the object-store files (and then the meta records) of what was dropped,
 * and files that no record ever listed.
 *
 * One tick is three passes, in this order:
 *
 *   1. Dropped segments       state Dropped for at least `droppedGraceMs`  → delete listed files → delete meta
 *   2. Dropped collections    state Dropped for at least `droppedGraceMs`  → every segment of it as in 1,
 *                             whatever its state → then the collection record and its checkpoint
 *   3. Orphans                insert_log/ delta_log/ stats_log/ index_files/ keys no segment record lists,
 *                             older than `orphanGraceMs`                   → delete file
 *
 * Why this order and these rules:
 * - Files first, meta last (per segment). The segment record is the only durable list of a dropped
 *   segment's files; deleting it first and then crashing (or meeting a store error) would strand files
 *   that only the much slower orphan pass could find. With files first, a failed delete keeps the record
 *   and the next tick simply retries: deletes are idempotent (an absent key is fine).
 * - Segments before their collection: the collection record carries the schema, which snapshots
 *   referencing any of its segments need, and a segment record without its collection would be an
 *   inconsistency every reader would have to handle. So the collection goes only once no segment
 *   record of it remains.
 * - Orphans last, and from a catalog read taken after the listing. Passes 1-2 have by then removed what
 *   they could, so the listing no longer shows their files; and any record committed before the
 *   catalog read counts as a reference. A file written after the listing is not seen at all; one written
 *   just before it (a flush whose meta commit is still in flight) is younger than `orphanGraceMs`, which
 *   is why that grace must exceed any flush, compaction or index build and is longer than the dropped
 *   grace: an orphan's "drop time" is unknown, so the only safe clock is its age.
 * - The grace of Dropped things (`droppedGraceMs`) lets queries that started before the drop finish
 *   reading the files.
 *
 * Never deleted, whatever the state:
 * - anything of a collection whose guard is not ready (fail-closed: not knowing the references is
 *   treated as "referenced"), and no index file at all unless the guard is ready for every collection
 *   in the catalog (index keys carry no collection id, so their owner cannot be told apart);
 * - a segment the guard references (its files and its record), or one whose index build the guard
 *   references; a Dropped collection keeps its record while any of its segments is kept this way;
 * - a segment `isSegmentInUse` reports (a running compaction or restore reading it);
 * - a key that any remaining segment record lists (of any state or collection), or whose build id a
 *   segment record lists;
 * - any file under an Importing segment (a restore in flight copies its files before it reports their
 *   list, and a hardlink copy keeps the source's old mtime, so age alone would call them orphans);
 *   Importing segments of a live collection are never collected either;
 * - keys that do not parse as a Quiver segment key (foreign files: left alone, reported once), and
 *   everything under `snapshots/` (the snapshot manager owns it).
 *
 * Work per tick is bounded by `maxDeletesPerTick`: each segment costs its file count (at least one, for
 * the meta delete) and is never split across ticks, so one tick may exceed the bound by at most one
 * segment; each orphan costs one.
 *
 * Dry run computes the same plan with the same budget, deletes nothing, commits nothing, and returns
 * the keys it would delete; the report's counters then say what a real run would reclaim.
 */

import type { Clock } from '../../common/clock.js';
import { isQuiverError, quiverError } from '../../common/errors.js';
import { LoopRunner } from '../../common/loop.js';
import type { ObjectInfo, ObjectStore } from '../../storage/object-store.js';
import { DELTA_LOG_ROOT, INDEX_FILES_ROOT, INSERT_LOG_ROOT, parseSegmentKey, STATS_LOG_ROOT, type SegmentKey } from '../../storage/paths.js';
import type { CatalogChange } from '../catalog.js';
import type { CollectionRecord, SegmentRecord } from '../records.js';
import type { ReferenceGuard } from './reference-guard.js';
import { segmentFiles, type SegmentFile } from './segment-files.js';

/** What GC needs of the catalog; the real `Catalog` satisfies it. */
export interface GcCatalog {
  /** Includes Dropped collections. */
  allCollections(): readonly CollectionRecord[];
  /** Includes Dropped and Importing segments. */
  segments(collectionId: number): readonly SegmentRecord[];
  /** Ids of the collections that have segment records. */
  segmentCollections(): readonly number[];
  /** Atomic. GC uses 'deleteSegment', 'deleteCollection' and 'deleteCheckpoint'. */
  commit(changes: readonly CatalogChange[]): Promise<void>;
}

/** Counters the lead wires to prom-client. Called once per real tick (reclaimed) or per tick (errors). */
export interface GcMetrics {
  filesReclaimed(n: number): void;
  bytesReclaimed(n: number): void;
  errors(n: number): void;
}

export interface GcOptions {
  /** How long a Dropped segment or collection keeps its files, so that in-flight readers finish. Default 10 min. */
  readonly droppedGraceMs?: number | undefined;
  /** Minimum age of an unlisted file before it is deleted; must exceed `droppedGraceMs`. Default 24 h. */
  readonly orphanGraceMs?: number | undefined;
  /** Default false. `tick({ dryRun })` overrides it for one tick. */
  readonly dryRun?: boolean | undefined;
  /** Store deletes in flight at once. Default 16. */
  readonly deleteConcurrency?: number | undefined;
  /** Work bound per tick (file and meta deletes). Default 10 000. */
  readonly maxDeletesPerTick?: number | undefined;
}

export const GC_DEFAULTS = {
  droppedGraceMs: 10 * 60_000,
  orphanGraceMs: 24 * 60 * 60_000,
  dryRun: false,
  deleteConcurrency: 16,
  maxDeletesPerTick: 10_000,
} as const;

export interface GcDeps {
  readonly catalog: GcCatalog;
  readonly store: ObjectStore;
  readonly clock: Clock;
  readonly guard: ReferenceGuard;
  readonly log?: ((msg: string, extra?: object) => void) | undefined;
  /** true = someone is reading or writing this segment right now (compaction, restore): skip it. */
  readonly isSegmentInUse?: ((collectionId: number, segmentId: number) => boolean) | undefined;
  readonly metrics?: GcMetrics | undefined;
}

export interface GcReport {
  readonly dryRun: boolean;
  /** Files deleted (or, in a dry run, that would be), segment files and orphans together. */
  readonly filesDeleted: number;
  readonly bytesDeleted: number;
  readonly segmentsRemoved: number;
  readonly collectionsRemoved: number;
  /** The part of `filesDeleted` that were orphans. */
  readonly orphanFilesDeleted: number;
  /** Dry run only: every key it would delete (segment files in pass order, then orphans). Empty otherwise. */
  readonly wouldDelete: readonly string[];
  /** At most ERRORS_REPORTED_MAX messages; the last one then says how many more there were. */
  readonly errors: readonly string[];
  /** Collections of which something was kept because their guard was not ready. Sorted. */
  readonly skippedNotReady: readonly number[];
  /** Unparseable keys under the GC roots seen for the first time by this collector. */
  readonly foreignKeys: readonly string[];
  /** true when `maxDeletesPerTick` cut the tick short: more work is left for the next tick. */
  readonly budgetExhausted: boolean;
}

export const ERRORS_REPORTED_MAX = 100;
/** Foreign keys remembered (to report each once); past this, new ones are left alone silently. */
const FOREIGN_REMEMBERED_MAX = 10_000;
const DELETE_CONCURRENCY_MAX = 1024;
const ORPHAN_ROOTS = [INSERT_LOG_ROOT, DELTA_LOG_ROOT, STATS_LOG_ROOT, INDEX_FILES_ROOT] as const;

type Verdict = 'collect' | 'notReady' | 'referenced' | 'inUse';

interface Candidate {
  readonly segment: SegmentRecord;
  readonly files: readonly SegmentFile[];
}

interface Plan {
  readonly droppedSegments: readonly Candidate[];
  readonly collectionSegments: readonly Candidate[];
  /** Dropped collections past grace whose guard is ready and none of whose segments is kept or deferred. */
  readonly collections: readonly number[];
  /** Keys listed by any segment record this tick does not collect. */
  readonly protectedKeys: ReadonlySet<string>;
}

/** GcOptions with every default applied. */
export interface ResolvedGcOptions {
  readonly droppedGraceMs: number;
  readonly orphanGraceMs: number;
  readonly dryRun: boolean;
  readonly deleteConcurrency: number;
  readonly maxDeletesPerTick: number;
}

export class GarbageCollector {
  readonly #catalog: GcCatalog;
  readonly #store: ObjectStore;
  readonly #clock: Clock;
  readonly #guard: ReferenceGuard;
  readonly #log: (msg: string, extra?: object) => void;
  readonly #isSegmentInUse: (collectionId: number, segmentId: number) => boolean;
  readonly #metrics: GcMetrics | undefined;
  readonly #opts: ResolvedGcOptions;
  /** When this collector first saw a Dropped record that lacks `droppedAtMs` (its grace starts then). */
  readonly #firstSeenDroppedMs = new Map<string, number>();
  readonly #reportedForeign = new Set<string>();
  /** Ticks run one after another: a manual tick while the loop's tick runs waits for it. */
  #queue: Promise<unknown> = Promise.resolve();
  #loop: LoopRunner | undefined;

  constructor(deps: GcDeps, opts: GcOptions = {}) {
    this.#catalog = deps.catalog;
    this.#store = deps.store;
    this.#clock = deps.clock;
    this.#guard = deps.guard;
    this.#log = deps.log ?? (() => {});
    this.#isSegmentInUse = deps.isSegmentInUse ?? (() => false);
    this.#metrics = deps.metrics;
    this.#opts = resolveOptions(opts);
  }

  get options(): ResolvedGcOptions {
    return this.#opts;
  }

  /** One full pass. Operating errors (store, meta) are reported, not thrown; the next tick retries. */
  tick(options: { readonly dryRun?: boolean | undefined } = {}): Promise<GcReport> {
    const dryRun = options.dryRun ?? this.#opts.dryRun;
    const run = this.#queue.then(() => this.#runTick(dryRun));
    this.#queue = run.catch(() => {});
    return run;
  }

  /** Ticks every `intervalMs` (measured from the end of one tick to the start of the next). Idempotent. */
  start(intervalMs: number): void {
    if (!Number.isSafeInteger(intervalMs) || intervalMs <= 0) {
      throw quiverError('ParameterInvalid', `gc: intervalMs must be a positive integer, got ${String(intervalMs)}`);
    }
    if (this.#loop !== undefined) return;
    // A stopped LoopRunner stays stopped: a restart gets a fresh one.
    this.#loop = new LoopRunner(
      'gc',
      intervalMs,
      async () => {
        const r = await this.tick();
        if (r.errors.length > 0) this.#log('gc: tick finished with errors', { errors: r.errors });
      },
      { error: (fields) => this.#log('gc: tick failed', { error: String((fields as { err?: unknown }).err) }) },
      { immediate: false },
    );
    this.#loop.start();
  }

  /** Stops the loop and waits for the tick in flight. Idempotent. */
  async stop(): Promise<void> {
    const loop = this.#loop;
    this.#loop = undefined;
    await loop?.stop();
    await this.#queue;
  }

  async #runTick(dryRun: boolean): Promise<GcReport> {
    const t = new TickState(dryRun, this.#opts.maxDeletesPerTick);
    const nowMs = this.#clock.nowMs();
    const plan = this.#plan(nowMs, t);

    // Pass 1, then pass 2: see the file comment for why segments go before their collection.
    const removed = new Set<string>();
    await this.#collectSegments(plan.droppedSegments, plan.protectedKeys, removed, t);
    await this.#collectSegments(plan.collectionSegments, plan.protectedKeys, removed, t);
    await this.#removeCollections(plan.collections, removed, t);
    // Pass 3.
    await this.#collectOrphans(nowMs, removed, t);

    const report = t.report();
    if (!dryRun) {
      if (report.filesDeleted > 0) this.#metrics?.filesReclaimed(report.filesDeleted);
      if (report.bytesDeleted > 0) this.#metrics?.bytesReclaimed(report.bytesDeleted);
    }
    if (t.errorCount > 0) this.#metrics?.errors(t.errorCount);
    if (report.filesDeleted + report.segmentsRemoved + report.collectionsRemoved + t.errorCount > 0) {
      this.#log(dryRun ? 'gc: dry run' : 'gc: tick', {
        filesDeleted: report.filesDeleted,
        bytesDeleted: report.bytesDeleted,
        segmentsRemoved: report.segmentsRemoved,
        collectionsRemoved: report.collectionsRemoved,
        orphanFilesDeleted: report.orphanFilesDeleted,
        errors: t.errorCount,
      });
    }
    return report;
  }

  // ------------------------------------------------------------------------------------------ planning

  /** Decides from one read of the catalog what passes 1 and 2 may collect this tick. */
  #plan(nowMs: number, t: TickState): Plan {
    const collections = new Map<number, CollectionRecord>();
    for (const c of this.#catalog.allCollections()) collections.set(c.id, c);
    const ids = [...new Set([...collections.keys(), ...this.#catalog.segmentCollections()])].sort((a, b) => a - b);

    const seen = new Set<string>();
    const protectedKeys = new Set<string>();
    const protect = (s: SegmentRecord): void => {
      for (const f of segmentFiles(s)) protectedKeys.add(f.key);
    };
    const pass1: Candidate[] = [];
    const pass2: Candidate[] = [];
    /** Dropped collections past grace, each with whether all its segments are collectable. */
    const dueCollections: { id: number; allCollectable: boolean }[] = [];

    for (const id of ids) {
      const coll = collections.get(id);
      const collDue = coll?.state === 'Dropped' && this.#graceOver(`c/${id}`, coll.droppedAtMs, nowMs, seen);
      const ready = this.#ready(id, t);
      if (!ready && collDue) t.notReady.add(id);
      let allCollectable = ready;
      for (const segment of this.#catalog.segments(id)) {
        const segDue = segment.state === 'Dropped' && this.#graceOver(`s/${id}/${segment.id}`, segment.droppedAtMs, nowMs, seen);
        if (!segDue && !collDue) {
          protect(segment);
          continue;
        }
        const verdict = this.#verdict(segment, t);
        if (verdict !== 'collect') {
          if (verdict === 'notReady') t.notReady.add(id);
          allCollectable = false;
          protect(segment);
          continue;
        }
        (segDue ? pass1 : pass2).push({ segment, files: segmentFiles(segment) });
      }
      if (collDue) dueCollections.push({ id, allCollectable });
    }
    for (const key of [...this.#firstSeenDroppedMs.keys()]) if (!seen.has(key)) this.#firstSeenDroppedMs.delete(key);

    // The budget is spent in pass order; a segment is admitted whole (its files and its meta delete).
    const admit = (list: readonly Candidate[]): Candidate[] => {
      const out: Candidate[] = [];
      for (const c of list) {
        if (t.admit(Math.max(1, c.files.length))) out.push(c);
        else protect(c.segment);
      }
      return out;
    };
    const droppedSegments = admit(pass1);
    const collectionSegments = admit(pass2);
    const admitted = new Set([...droppedSegments, ...collectionSegments].map((c) => segKey(c.segment)));
    const collectionsToRemove = dueCollections
      .filter((d) => d.allCollectable && this.#catalog.segments(d.id).every((s) => admitted.has(segKey(s))))
      .map((d) => d.id);
    return { droppedSegments, collectionSegments, collections: collectionsToRemove, protectedKeys };
  }

  /**
   * Whether a Dropped record's grace is over. A record without `droppedAtMs` (written by an older
   * version, or by hand) starts its grace when this collector first sees it: late, never early.
   */
  #graceOver(id: string, droppedAtMs: number | undefined, nowMs: number, seen: Set<string>): boolean {
    let sinceMs = droppedAtMs;
    if (sinceMs === undefined || !Number.isFinite(sinceMs)) {
      seen.add(id);
      sinceMs = this.#firstSeenDroppedMs.get(id);
      if (sinceMs === undefined) {
        sinceMs = nowMs;
        this.#firstSeenDroppedMs.set(id, nowMs);
      }
    }
    return nowMs - sinceMs >= this.#opts.droppedGraceMs;
  }

  #verdict(segment: SegmentRecord, t: TickState): Verdict {
    const c = segment.collectionId;
    if (!this.#ready(c, t)) return 'notReady';
    if (this.#segmentReferenced(c, segment.id, t)) return 'referenced';
    if (segment.indexes.some((i) => this.#buildReferenced(i.buildId, t))) return 'referenced';
    if (this.#inUse(c, segment.id, t)) return 'inUse';
    return 'collect';
  }

  // ------------------------------------------------------------------------------ passes 1 and 2

  async #collectSegments(candidates: readonly Candidate[], protectedKeys: ReadonlySet<string>, removed: Set<string>, t: TickState): Promise<void> {
    const limit = this.#opts.deleteConcurrency;
    const deletes = new Semaphore(limit);
    await forEachLimit(candidates, limit, async ({ segment, files }) => {
      // Asked again right before deleting: the plan was made before earlier segments' awaits, and a
      // reference or reader may have appeared since (the guard and the in-use hook are live).
      if (this.#verdict(segment, t) !== 'collect') return;
      const victims = files.filter((f) => !protectedKeys.has(f.key));
      if (t.dryRun) {
        for (const f of victims) t.would(f.key, f.size, false);
        t.segmentsRemoved += 1;
        removed.add(segKey(segment));
        return;
      }
      let failed = false;
      await forEachLimit(victims, limit, (f) =>
        deletes.run(async () => {
          if (!(await this.#delete(f, false, t))) failed = true;
        }),
      );
      // A failed delete keeps the record: it is the list the next tick retries from.
      if (failed) return;
      try {
        await this.#catalog.commit([{ type: 'deleteSegment', collectionId: segment.collectionId, segmentId: segment.id }]);
        t.segmentsRemoved += 1;
        removed.add(segKey(segment));
      } catch (e) {
        t.error(`delete meta of segment ${segment.collectionId}/${segment.id}: ${message(e)}`);
      }
    });
  }

  async #removeCollections(ids: readonly number[], removed: ReadonlySet<string>, t: TickState): Promise<void> {
    for (const id of ids) {
      if (!this.#ready(id, t)) {
        t.notReady.add(id);
        continue;
      }
      if (this.#collectionReferenced(id, t)) continue;
      // Re-read: every segment must be gone (real run) or about to be (dry run), including any record
      // that appeared since the plan was made.
      if (!this.#catalog.segments(id).every((s) => removed.has(segKey(s)))) continue;
      if (t.dryRun) {
        t.collectionsRemoved += 1;
        continue;
      }
      try {
        await this.#catalog.commit([
          { type: 'deleteCollection', id },
          { type: 'deleteCheckpoint', collectionId: id },
        ]);
        t.collectionsRemoved += 1;
      } catch (e) {
        t.error(`delete meta of collection ${id}: ${message(e)}`);
      }
    }
  }

  // -------------------------------------------------------------------------------------- pass 3

  async #collectOrphans(nowMs: number, removed: ReadonlySet<string>, t: TickState): Promise<void> {
    if (t.budgetLeft <= 0) {
      t.budgetExhausted = true;
      return;
    }
    const listed: ObjectInfo[] = [];
    for (const root of ORPHAN_ROOTS) {
      try {
        listed.push(...(await this.#store.list(`${root}/`)));
      } catch (e) {
        t.error(`list ${root}/: ${message(e)}`);
      }
    }
    const refs = this.#references(removed);
    let indexFilesAllowed: boolean | undefined;
    const victims: ObjectInfo[] = [];
    for (const info of listed) {
      const parsed = parseSegmentKey(info.key);
      if (parsed === undefined) {
        this.#foreign(info.key, t);
        continue;
      }
      if (refs.keys.has(info.key) || t.claimed.has(info.key)) continue;
      if (nowMs - info.lastModifiedMs < this.#opts.orphanGraceMs) continue;
      if (parsed.kind === 'index') {
        indexFilesAllowed ??= this.#allReady(refs, t);
        if (!indexFilesAllowed) continue;
      }
      if (!this.#orphanDeletable(parsed, refs, t)) continue;
      if (!t.admit(1)) break;
      victims.push(info);
    }
    if (t.dryRun) {
      for (const v of victims) t.would(v.key, v.size, true);
      return;
    }
    await forEachLimit(victims, this.#opts.deleteConcurrency, async (v) => {
      await this.#delete({ key: v.key, size: v.size }, true, t);
    });
  }

  /**
   * What the catalog references, read after the listing (see the file comment). Records passes 1-2
   * removed this tick are left out: in a real run they are gone already, and a dry run must see what
   * the real run would.
   */
  #references(removed: ReadonlySet<string>): References {
    const keys = new Set<string>();
    const buildIds = new Set<number>();
    const importing = new Set<string>();
    const importingSegmentIds = new Set<number>();
    const ownerOf = new Map<number, number>();
    const collectionIds = new Set<number>(this.#catalog.allCollections().map((c) => c.id));
    for (const cid of this.#catalog.segmentCollections()) {
      collectionIds.add(cid);
      for (const s of this.#catalog.segments(cid)) {
        if (removed.has(segKey(s))) continue;
        for (const f of segmentFiles(s)) keys.add(f.key);
        for (const i of s.indexes) buildIds.add(i.buildId);
        ownerOf.set(s.id, cid);
        if (s.state === 'Importing') {
          importing.add(`${cid}/${s.id}`);
          importingSegmentIds.add(s.id);
        }
      }
    }
    return { keys, buildIds, importing, importingSegmentIds, ownerOf, collectionIds };
  }

  /** Index keys carry no collection id: deleting one needs every collection's guard to be ready. */
  #allReady(refs: References, t: TickState): boolean {
    let all = true;
    for (const id of refs.collectionIds) {
      if (!this.#ready(id, t)) {
        t.notReady.add(id);
        all = false;
      }
    }
    return all;
  }

  #orphanDeletable(k: SegmentKey, refs: References, t: TickState): boolean {
    if (k.kind === 'index') {
      if (refs.buildIds.has(k.buildId) || this.#buildReferenced(k.buildId, t)) return false;
      if (refs.importingSegmentIds.has(k.segmentId)) return false;
      const owner = refs.ownerOf.get(k.segmentId);
      if (owner === undefined) return true;
      return !this.#segmentReferenced(owner, k.segmentId, t) && !this.#inUse(owner, k.segmentId, t);
    }
    const c = k.collectionId;
    if (!this.#ready(c, t)) {
      t.notReady.add(c);
      return false;
    }
    if (refs.importing.has(`${c}/${k.segmentId}`)) return false;
    return !this.#segmentReferenced(c, k.segmentId, t) && !this.#inUse(c, k.segmentId, t);
  }

  #foreign(key: string, t: TickState): void {
    if (this.#reportedForeign.has(key) || this.#reportedForeign.size >= FOREIGN_REMEMBERED_MAX) return;
    this.#reportedForeign.add(key);
    t.foreign.push(key);
    this.#log('gc: leaving alone an object that is not a Quiver segment key', { key });
  }

  // --------------------------------------------------------------------------------------- helpers

  /** true when the key is gone (deleted now, or already absent). */
  async #delete(f: SegmentFile, orphan: boolean, t: TickState): Promise<boolean> {
    try {
      await this.#store.delete(f.key);
      t.deleted(f.size, orphan);
      return true;
    } catch (e) {
      // The contract makes deleting an absent key succeed; a backend that still says "not found" means
      // the same thing.
      if (isQuiverError(e, 'IoKeyNotFound')) return true;
      t.error(`delete ${f.key}: ${message(e)}`);
      return false;
    }
  }

  // Guard and hook calls are fail-closed: a throwing guard counts as "not ready" / "referenced".
  #ready(collectionId: number, t: TickState): boolean {
    return this.#ask(() => this.#guard.isReady(collectionId) === true, false, `guard isReady(${collectionId})`, t);
  }
  #segmentReferenced(collectionId: number, segmentId: number, t: TickState): boolean {
    return this.#ask(
      () => this.#guard.isSegmentReferenced(collectionId, segmentId) !== false,
      true,
      `guard isSegmentReferenced(${collectionId}, ${segmentId})`,
      t,
    );
  }
  #buildReferenced(buildId: number, t: TickState): boolean {
    return this.#ask(() => this.#guard.isBuildReferenced(buildId) !== false, true, `guard isBuildReferenced(${buildId})`, t);
  }
  #collectionReferenced(collectionId: number, t: TickState): boolean {
    return this.#ask(
      () => (this.#guard.isCollectionReferenced?.(collectionId) ?? false) !== false,
      true,
      `guard isCollectionReferenced(${collectionId})`,
      t,
    );
  }
  #inUse(collectionId: number, segmentId: number, t: TickState): boolean {
    return this.#ask(() => this.#isSegmentInUse(collectionId, segmentId) !== false, true, `isSegmentInUse(${collectionId}, ${segmentId})`, t);
  }
  #ask(question: () => boolean, onError: boolean, what: string, t: TickState): boolean {
    try {
      return question();
    } catch (e) {
      t.error(`${what} threw, treated as ${onError ? 'yes' : 'no'}: ${message(e)}`);
      return onError;
    }
  }
}

interface References {
  /** Every key any segment record lists. */
  readonly keys: ReadonlySet<string>;
  readonly buildIds: ReadonlySet<number>;
  /** `${collectionId}/${segmentId}` of Importing segments. */
  readonly importing: ReadonlySet<string>;
  readonly importingSegmentIds: ReadonlySet<number>;
  /** segment id → collection id, for index keys (segment ids are allocated globally). */
  readonly ownerOf: ReadonlyMap<number, number>;
  readonly collectionIds: ReadonlySet<number>;
}

/** Accumulates one tick's results. */
class TickState {
  readonly dryRun: boolean;
  budgetLeft: number;
  budgetExhausted = false;
  filesDeleted = 0;
  bytesDeleted = 0;
  segmentsRemoved = 0;
  collectionsRemoved = 0;
  orphanFilesDeleted = 0;
  errorCount = 0;
  readonly wouldDelete: string[] = [];
  /** Keys passes 1-2 delete or (dry run) would delete: pass 3 must not count them again. */
  readonly claimed = new Set<string>();
  readonly errors: string[] = [];
  readonly notReady = new Set<number>();
  readonly foreign: string[] = [];

  constructor(dryRun: boolean, budget: number) {
    this.dryRun = dryRun;
    this.budgetLeft = budget;
  }

  admit(cost: number): boolean {
    if (this.budgetLeft <= 0) {
      this.budgetExhausted = true;
      return false;
    }
    this.budgetLeft -= cost;
    return true;
  }

  deleted(size: number, orphan: boolean): void {
    this.filesDeleted += 1;
    this.bytesDeleted += size;
    if (orphan) this.orphanFilesDeleted += 1;
  }

  would(key: string, size: number, orphan: boolean): void {
    this.wouldDelete.push(key);
    this.claimed.add(key);
    this.deleted(size, orphan);
  }

  error(msg: string): void {
    this.errorCount += 1;
    if (this.errors.length < ERRORS_REPORTED_MAX - 1) this.errors.push(msg);
  }

  report(): GcReport {
    const errors = [...this.errors];
    if (this.errorCount > errors.length) errors.push(`... and ${this.errorCount - errors.length} more errors`);
    return {
      dryRun: this.dryRun,
      filesDeleted: this.filesDeleted,
      bytesDeleted: this.bytesDeleted,
      segmentsRemoved: this.segmentsRemoved,
      collectionsRemoved: this.collectionsRemoved,
      orphanFilesDeleted: this.orphanFilesDeleted,
      wouldDelete: this.wouldDelete,
      errors,
      skippedNotReady: [...this.notReady].sort((a, b) => a - b),
      foreignKeys: this.foreign,
      budgetExhausted: this.budgetExhausted,
    };
  }
}

/** Bounds the store calls in flight across all segments of a tick. */
class Semaphore {
  #free: number;
  readonly #waiters: (() => void)[] = [];

  constructor(permits: number) {
    this.#free = permits;
  }

  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.#free > 0) this.#free -= 1;
    else await new Promise<void>((resolve) => this.#waiters.push(resolve));
    try {
      return await fn();
    } finally {
      const next = this.#waiters.shift();
      if (next) next();
      else this.#free += 1;
    }
  }
}

async function forEachLimit<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const item = items[next] as T;
      next += 1;
      await fn(item);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

function resolveOptions(o: GcOptions): ResolvedGcOptions {
  const r: ResolvedGcOptions = {
    droppedGraceMs: o.droppedGraceMs ?? GC_DEFAULTS.droppedGraceMs,
    orphanGraceMs: o.orphanGraceMs ?? GC_DEFAULTS.orphanGraceMs,
    dryRun: o.dryRun ?? GC_DEFAULTS.dryRun,
    deleteConcurrency: o.deleteConcurrency ?? GC_DEFAULTS.deleteConcurrency,
    maxDeletesPerTick: o.maxDeletesPerTick ?? GC_DEFAULTS.maxDeletesPerTick,
  };
  const int = (name: string, v: number, min: number, max = Number.MAX_SAFE_INTEGER): void => {
    if (!Number.isSafeInteger(v) || v < min || v > max) {
      throw quiverError('ParameterInvalid', `gc: ${name} must be an integer in [${min}, ${max}], got ${String(v)}`);
    }
  };
  int('droppedGraceMs', r.droppedGraceMs, 0);
  int('orphanGraceMs', r.orphanGraceMs, 0);
  int('deleteConcurrency', r.deleteConcurrency, 1, DELETE_CONCURRENCY_MAX);
  int('maxDeletesPerTick', r.maxDeletesPerTick, 1);
  if (r.orphanGraceMs <= r.droppedGraceMs) {
    throw quiverError('ParameterInvalid', `gc: orphanGraceMs (${r.orphanGraceMs}) must be greater than droppedGraceMs (${r.droppedGraceMs})`);
  }
  if (typeof r.dryRun !== 'boolean') throw quiverError('ParameterInvalid', `gc: dryRun must be a boolean, got ${String(r.dryRun)}`);
  return r;
}

function segKey(s: SegmentRecord): string {
  return `${s.collectionId}/${s.id}`;
}

function message(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
