import type { Logger } from 'pino';
import { isQuiverError, quiverError } from '../../common/errors.js';
import type { MetaKV } from '../../meta/meta-kv.js';
import type { CollectionRecord, IndexRecord, SegmentRecord } from '../records.js';
import type { SnapshotContents } from '../../storage/snapshot-format/index.js';
import type { PinRecord, SnapshotRecord } from './snapshot-store.js';

/**
 * Reading a snapshot in place: `COLLECTION@SNAPSHOT` names a read-only collection whose schema, partitions,
 * index definitions and segments are the snapshot's, read from its metadata and manifests. Nothing is
 * copied: its segments are the snapshot's own segment records (immutable files, the snapshot's deltalog
 * lists), loaded by a query node of their own that shares loaded columns and indexes with the live
 * collection where the same segment is loaded there (querynode's content index).
 *
 * A view's id is its snapshot's id: ids come from one allocator, so it never equals a collection's id.
 *
 *   (open: describe + read manifests) ──▶ Open ──(1) load: pin written──▶ Loaded ──(2) release: unpin──▶ (closed)
 *
 * (1) While loaded the view holds a pin on its snapshot (no drop or GC can take its files away) and a
 * persisted entry `quiver/snapshot-view-loaded/{viewId}` (db, name, snapshot id, pin id, loaded
 * partitions), created with a compare-and-set on its absence right after the pin. Both outlive the process,
 * so a loaded view is loaded again after a restart, as a loaded collection is: `init` lists the entries and
 * `reload` opens each view again, adopts its pin and loads it (in the background; until its load state is
 * set, a request naming the view waits for it). An entry whose snapshot is gone, was taken again under the
 * same name, or whose pin is gone is dropped (and logged). (2) Release unpins, then deletes the entry (a
 * crash in between leaves an entry without a pin: dropped at the next start), and forgets the view.
 * Markers `quiver/snapshot-view-pin/{pinId}` from a version that did not reload views are unpinned at start.
 */

export const VIEW_SEPARATOR = '@';

/** `docs@nightly` → { collection: 'docs', snapshot: 'nightly' }; undefined for a plain name. */
export function parseViewName(name: string): { collection: string; snapshot: string } | undefined {
  const at = name.indexOf(VIEW_SEPARATOR);
  if (at < 0) return undefined;
  const collection = name.slice(0, at);
  const snapshot = name.slice(at + 1);
  if (collection === '' || snapshot === '' || snapshot.includes(VIEW_SEPARATOR)) {
    throw quiverError('ParameterInvalid', `invalid snapshot view name ${JSON.stringify(name)}: expected COLLECTION@SNAPSHOT`);
  }
  return { collection, snapshot };
}

export interface SnapshotView {
  readonly id: number;
  readonly dbName: string;
  /** `collection@snapshot` as the client wrote it. */
  readonly name: string;
  readonly snapshot: SnapshotRecord;
  readonly record: CollectionRecord;
  readonly indexes: readonly IndexRecord[];
  readonly segments: readonly SegmentRecord[];
}

/** What views need from the snapshot manager. */
export interface ViewSnapshots {
  describe(dbName: string, collectionName: string, name: string): Promise<SnapshotRecord>;
  readContents(rec: SnapshotRecord): Promise<SnapshotContents>;
  pin(dbName: string, collectionName: string, name: string, ttlSeconds: number): Promise<PinRecord>;
  unpin(pinId: number): Promise<void>;
  activePinsAll(): readonly PinRecord[];
}

/** The persisted half of (1): what a restart needs to load the view again. */
export interface LoadedViewEntry {
  readonly viewId: number;
  readonly dbName: string;
  readonly name: string;
  readonly snapshotId: number;
  readonly pinId: number;
  /** Partition ids, when only some are loaded. */
  readonly loadedPartitions?: readonly number[] | undefined;
}

export interface ViewDeps {
  readonly snapshots: ViewSnapshots;
  readonly catalog: { requireDatabase(name: string): { readonly id: number } };
  readonly kv: MetaKV;
  readonly log: Pick<Logger, 'info' | 'warn'>;
}

/** Written by versions that released views at a restart: only removed now. */
const LEGACY_MARKER = 'quiver/snapshot-view-pin/';
const LOADED = 'quiver/snapshot-view-loaded/';
const enc = new TextEncoder();
const dec = new TextDecoder();

function readEntry(key: string, value: Uint8Array): LoadedViewEntry {
  let e: unknown;
  try {
    e = JSON.parse(dec.decode(value));
  } catch (err) {
    throw quiverError('ServiceInternal', `meta key ${key} is not valid JSON: ${(err as Error).message}`);
  }
  const r = e as Partial<LoadedViewEntry>;
  if (
    typeof r.viewId !== 'number' ||
    typeof r.dbName !== 'string' ||
    typeof r.name !== 'string' ||
    typeof r.snapshotId !== 'number' ||
    typeof r.pinId !== 'number'
  ) {
    throw quiverError('ServiceInternal', `meta key ${key} is not a loaded snapshot view entry`);
  }
  return r as LoadedViewEntry;
}

export class SnapshotViews {
  readonly #d: ViewDeps;
  readonly #byKey = new Map<string, SnapshotView>();
  readonly #byId = new Map<number, SnapshotView>();
  readonly #opening = new Map<string, Promise<SnapshotView>>();
  /** view id → the pin its load holds */
  readonly #pins = new Map<number, number>();
  /** `db/name` → a reload after the restart still running */
  readonly #reloading = new Map<string, Promise<boolean>>();

  constructor(deps: ViewDeps) {
    this.#d = deps;
  }

  /**
   * Removes legacy markers (and their pins) and lists the views loaded when the previous process stopped;
   * the caller reloads each with `reload`.
   */
  async init(): Promise<LoadedViewEntry[]> {
    let n = 0;
    for (const e of await this.#d.kv.scan(LEGACY_MARKER)) {
      const pinId = Number(e.key.slice(LEGACY_MARKER.length));
      if (Number.isSafeInteger(pinId)) await this.#d.snapshots.unpin(pinId);
      await this.#d.kv.delete(e.key);
      n++;
    }
    if (n > 0) this.#d.log.info({ pins: n }, 'released the snapshot pins of views loaded by an older version');
    return (await this.#d.kv.scan(LOADED)).map((e) => readEntry(e.key, e.value));
  }

  /**
   * Opens a view loaded before the restart, adopts its pin and runs `load` (which sets its load state);
   * requests naming the view wait for this. A stale entry is dropped instead. True when reloaded.
   */
  reload(entry: LoadedViewEntry, load: (view: SnapshotView, partitionNames: readonly string[] | undefined) => Promise<void>): Promise<boolean> {
    const key = `${entry.dbName}/${entry.name}`;
    const p = (async () => {
      const stale = async (why: string, err?: unknown): Promise<false> => {
        await this.#d.snapshots.unpin(entry.pinId);
        await this.#deleteEntry(entry.viewId);
        this.#d.log.warn({ view: entry.name, db: entry.dbName, pinId: entry.pinId, err }, `snapshot view not reloaded: ${why}; its entry is dropped`);
        return false;
      };
      if (!this.#d.snapshots.activePinsAll().some((pin) => pin.id === entry.pinId && pin.snapshotId === entry.snapshotId)) {
        return stale('its snapshot pin is gone');
      }
      let view: SnapshotView;
      try {
        view = await this.#openNow(entry.dbName, entry.name);
      } catch (e) {
        if (isQuiverError(e, 'CollectionNotFound')) return stale('its snapshot or collection is gone', e);
        throw e;
      }
      if (view.id !== entry.snapshotId) return stale('its snapshot was dropped and taken again under the same name');
      this.#pins.set(view.id, entry.pinId);
      const byId = new Map(view.record.partitions.map((x) => [x.id, x.name]));
      const names = entry.loadedPartitions?.map((id) => byId.get(id)).filter((n): n is string => n !== undefined);
      await load(view, names && names.length > 0 ? names : undefined);
      this.#d.log.info({ view: entry.name, db: entry.dbName, pinId: entry.pinId }, 'snapshot view reloaded after the restart');
      return true;
    })().finally(() => this.#reloading.delete(key));
    this.#reloading.set(key, p);
    return p;
  }

  /**
   * The view `name` (`collection@snapshot`) in `dbName`, opened on first use. A missing snapshot (or
   * collection) answers CollectionNotFound, as any unknown collection name does.
   */
  async open(dbName: string, name: string): Promise<SnapshotView> {
    // A view being reloaded answers once its load state is back (a failed reload is logged by its caller).
    await this.#reloading.get(`${dbName}/${name}`)?.catch(() => undefined);
    return this.#openNow(dbName, name);
  }

  async #openNow(dbName: string, name: string): Promise<SnapshotView> {
    const parsed = parseViewName(name);
    if (!parsed) throw new Error(`assertion failed: ${name} is not a view name`);
    const key = `${dbName}/${name}`;
    let rec: SnapshotRecord;
    try {
      rec = await this.#d.snapshots.describe(dbName, parsed.collection, parsed.snapshot);
    } catch (e) {
      if (isQuiverError(e, 'SnapshotNotFound') || isQuiverError(e, 'CollectionNotFound')) {
        throw quiverError('CollectionNotFound', `collection not found[database=${dbName}][collection=${name}]: ${(e as Error).message}`);
      }
      throw e;
    }
    const cur = this.#byKey.get(key);
    // A snapshot dropped and taken again under the same name is another snapshot: reopen.
    if (cur && cur.snapshot.id === rec.id) return cur;
    if (cur && !this.#pins.has(cur.id)) this.#forget(cur);
    const inFlight = this.#opening.get(key);
    if (inFlight) return inFlight;
    const p = this.#build(dbName, name, rec).finally(() => this.#opening.delete(key));
    this.#opening.set(key, p);
    return p;
  }

  async #build(dbName: string, name: string, rec: SnapshotRecord): Promise<SnapshotView> {
    const { metadata, entries } = await this.#d.snapshots.readContents(rec);
    const id = rec.id;
    const record: CollectionRecord = {
      id,
      dbId: this.#d.catalog.requireDatabase(dbName).id,
      name,
      schema: { ...metadata.schema, name },
      shardsNum: metadata.shards_num,
      consistencyLevel: metadata.consistency_level,
      properties: metadata.properties,
      partitions: metadata.partitions.map((p) => ({ id: p.id, name: p.name, createdTs: metadata.create_ts })),
      createdTs: metadata.create_ts,
      updateTs: metadata.create_ts,
      state: 'Created',
      loaded: false,
    };
    const view: SnapshotView = {
      id,
      dbName,
      name,
      snapshot: rec,
      record,
      indexes: metadata.indexes.map((i) => ({ ...i, collectionId: id })),
      segments: entries.map((e) => e.segment),
    };
    this.#byKey.set(`${dbName}/${name}`, view);
    this.#byId.set(id, view);
    return view;
  }

  get(id: number): SnapshotView | undefined {
    return this.#byId.get(id);
  }

  /** An opened view by name (the proxy opens it before a handler runs). */
  find(dbName: string, name: string): SnapshotView | undefined {
    return this.#byKey.get(`${dbName}/${name}`);
  }

  /** (1) / (2): pins the snapshot and persists the entry while the view is loaded. */
  async setLoaded(id: number, loaded: boolean, loadedPartitions?: readonly number[]): Promise<void> {
    const view = this.#byId.get(id);
    if (!view) throw quiverError('CollectionNotFound', `collection not found[collectionID=${id}]`);
    const held = this.#pins.get(id);
    if (loaded && held === undefined) {
      const parsed = parseViewName(view.name)!;
      const pin = await this.#d.snapshots.pin(view.dbName, parsed.collection, parsed.snapshot, 0);
      const entry: LoadedViewEntry = { viewId: id, dbName: view.dbName, name: view.name, snapshotId: view.snapshot.id, pinId: pin.id, loadedPartitions };
      // Created only where none is (A crash between pin and entry leaves a pin without an entry, logged
      // here with its id so the snapshot's owner can unpin it.)
      const key = `${LOADED}${id}`;
      const res = await this.#d.kv.txn([{ key, target: 'version', op: '==', value: 0 }], [{ type: 'put', key, value: enc.encode(JSON.stringify(entry)) }]);
      if (!res.succeeded) {
        // A concurrent load of this view, or an entry whose reload failed: its pin, if still held, is
        // the view's; otherwise this pin replaces it.
        const cur = await this.#d.kv.get(key);
        const old = cur ? readEntry(key, cur.value) : undefined;
        if (old && old.snapshotId === entry.snapshotId && this.#d.snapshots.activePinsAll().some((p) => p.id === old.pinId)) {
          await this.#d.snapshots.unpin(pin.id);
          this.#pins.set(id, old.pinId);
          return;
        }
        const put = await this.#d.kv.txn(
          [{ key, target: 'modRevision', op: '==', value: cur?.modRevision ?? 0 }],
          [{ type: 'put', key, value: enc.encode(JSON.stringify(entry)) }],
        );
        if (!put.succeeded) {
          await this.#d.snapshots.unpin(pin.id);
          throw quiverError('ServiceInternal', `the loaded entry of snapshot view ${view.name} changed concurrently; retry the load`);
        }
        if (old) await this.#d.snapshots.unpin(old.pinId);
      }
      this.#pins.set(id, pin.id);
      this.#d.log.info({ view: view.name, pinId: pin.id }, 'snapshot view loaded; snapshot pinned');
    } else if (loaded && held !== undefined) {
      await this.#updateEntry(id, (e) => ({ ...e, loadedPartitions }));
    } else if (!loaded && held !== undefined) {
      await this.#d.snapshots.unpin(held);
      await this.#deleteEntry(id);
      this.#pins.delete(id);
      this.#d.log.info({ view: view.name, pinId: held }, 'snapshot view released; snapshot unpinned');
    }
  }

  /** Compare-and-set on the entry's mod revision; a lost race re-reads (only loads of one view race). */
  async #updateEntry(id: number, patch: (e: LoadedViewEntry) => LoadedViewEntry): Promise<void> {
    const key = `${LOADED}${id}`;
    for (;;) {
      const cur = await this.#d.kv.get(key);
      if (!cur) return;
      const next = patch(readEntry(key, cur.value));
      const res = await this.#d.kv.txn(
        [{ key, target: 'modRevision', op: '==', value: cur.modRevision }],
        [{ type: 'put', key, value: enc.encode(JSON.stringify(next)) }],
      );
      if (res.succeeded) return;
    }
  }

  async #deleteEntry(id: number): Promise<void> {
    await this.#d.kv.delete(`${LOADED}${id}`);
  }

  /** Forgets a released view (its memory goes with it). */
  close(id: number): void {
    const view = this.#byId.get(id);
    if (view && !this.#pins.has(id)) this.#forget(view);
  }

  #forget(view: SnapshotView): void {
    this.#byId.delete(view.id);
    this.#byKey.delete(`${view.dbName}/${view.name}`);
  }
}
