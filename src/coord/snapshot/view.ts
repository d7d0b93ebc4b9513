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
 * (1) While loaded the view holds a pin on its snapshot (no drop can take its files away), recorded with
 * a marker key `quiver/snapshot-view-pin/{pinId}` written right after the pin. Views live in memory only, so a
 * restart ends every one: `init` removes the pins the markers name (and the markers), before anything can
 * be loaded again. (2) Release unpins and forgets the view, which frees its memory.
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
}

export interface ViewDeps {
  readonly snapshots: ViewSnapshots;
  readonly catalog: { requireDatabase(name: string): { readonly id: number } };
  readonly kv: MetaKV;
  readonly log: Pick<Logger, 'info' | 'warn'>;
}

const MARKER = 'quiver/snapshot-view-pin/';

export class SnapshotViews {
  readonly #d: ViewDeps;
  readonly #byKey = new Map<string, SnapshotView>();
  readonly #byId = new Map<number, SnapshotView>();
  readonly #opening = new Map<string, Promise<SnapshotView>>();
  /** view id → the pin its load holds */
  readonly #pins = new Map<number, number>();

  constructor(deps: ViewDeps) {
    this.#d = deps;
  }

  /** Removes the pins of views a previous process had loaded (see the header). */
  async init(): Promise<number> {
    let n = 0;
    for (const e of await this.#d.kv.scan(MARKER)) {
      const pinId = Number(e.key.slice(MARKER.length));
      if (Number.isSafeInteger(pinId)) await this.#d.snapshots.unpin(pinId);
      await this.#d.kv.delete(e.key);
      n++;
    }
    if (n > 0) this.#d.log.info({ pins: n }, 'released the snapshot pins of views loaded before the restart');
    return n;
  }

  /**
   * The view `name` (`collection@snapshot`) in `dbName`, opened on first use. A missing snapshot (or
   * collection) answers CollectionNotFound, as any unknown collection name does.
   */
  async open(dbName: string, name: string): Promise<SnapshotView> {
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

  /** (1) / (2): pins the snapshot while the view is loaded. */
  async setLoaded(id: number, loaded: boolean): Promise<void> {
    const view = this.#byId.get(id);
    if (!view) throw quiverError('CollectionNotFound', `collection not found[collectionID=${id}]`);
    const held = this.#pins.get(id);
    if (loaded && held === undefined) {
      const parsed = parseViewName(view.name)!;
      const pin = await this.#d.snapshots.pin(view.dbName, parsed.collection, parsed.snapshot, 0);
      // The marker names the pin for `init`; written right after the pin (a crash in between leaves a
      // pin without a view, which the snapshot's owner can unpin by id: it is logged here).
      await this.#d.kv.put(`${MARKER}${pin.id}`, String(id));
      this.#pins.set(id, pin.id);
      this.#d.log.info({ view: view.name, pinId: pin.id }, 'snapshot view loaded; snapshot pinned');
    } else if (!loaded && held !== undefined) {
      await this.#d.snapshots.unpin(held);
      await this.#d.kv.delete(`${MARKER}${held}`);
      this.#pins.delete(id);
      this.#d.log.info({ view: view.name, pinId: held }, 'snapshot view released; snapshot unpinned');
    }
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
