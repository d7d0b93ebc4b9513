import type { Compare, MetaKV, Op } from '../meta/meta-kv.js';
import { opBytes, splitBySize } from '../meta/txn-limits.js';
import { quiverError } from '../common/errors.js';
import {
  CATALOG_KEY_PREFIX,
  catalogKeys,
  assertCollectionTransition,
  assertSegmentTransition,
  type CollectionRecord,
  type CollectionState,
  type DatabaseRecord,
  type IndexRecord,
  type SegmentRecord,
  type SegmentState,
} from './records.js';

/**
 * The catalog: every database, collection, alias, index and segment record, persisted in MetaKV and
 * mirrored in memory. In the embedded deployment this process is the only writer, so the mirror is
 * authoritative and every change goes through `commit`, which writes one MetaKV transaction first and
 * updates the mirror only when it succeeded (nothing is half-visible).
 *
 * Size of a commit (etcd refuses a txn over 128 ops or 1.5 MiB; meta/txn-limits.ts). Each caller is
 * either bounded by construction or split with `commitInBatches` in a crash-safe order:
 *   one record or a fixed handful      DDL (create/alter/rename), aliases, index create, load state,
 *                                      index build result, GC deletes: <= 3 ops
 *   restore start                      collection + its indexes (one per vector/scalar field) + checkpoint
 *                                      + job (ids only) + pin (snapshot/restore-service.ts)
 *   restore register/publish/rollback  batches of TXN_OPS_MAX (snapshot/restore-targets.ts)
 *   compaction                         one txn, bounded by the planner (compaction-planner.ts)
 *   flush, checkpoint raise            batches: records first, checkpoint last (segment-manager.ts)
 *   drop collection/partition/index    batches: the drop first, cleanup after, finished at start
 *                                      (catalog-service.ts `#finishInterruptedDrops`)
 * catalog-limits.test.ts runs these over a store that refuses what etcd refuses.
 */

const P = CATALOG_KEY_PREFIX;
const K = catalogKeys;

export const DEFAULT_DB = 'default';

interface AliasRecord {
  readonly dbId: number;
  readonly alias: string;
  readonly collectionId: number;
}

export type CatalogChange =
  | { readonly type: 'putDatabase'; readonly record: DatabaseRecord }
  | { readonly type: 'deleteDatabase'; readonly name: string }
  | { readonly type: 'putCollection'; readonly record: CollectionRecord }
  | { readonly type: 'deleteCollection'; readonly id: number }
  | { readonly type: 'putAlias'; readonly record: AliasRecord }
  | { readonly type: 'deleteAlias'; readonly dbId: number; readonly alias: string }
  | { readonly type: 'putIndex'; readonly record: IndexRecord }
  | { readonly type: 'deleteIndex'; readonly collectionId: number; readonly indexId: number }
  | { readonly type: 'putSegment'; readonly record: SegmentRecord }
  | { readonly type: 'deleteSegment'; readonly collectionId: number; readonly segmentId: number }
  | { readonly type: 'putCheckpoint'; readonly collectionId: number; readonly position: number }
  | { readonly type: 'deleteCheckpoint'; readonly collectionId: number };

/**
 * What a guarded commit expects a record to be right now ('absent': no record). Checked against the
 * mirror, then compared in the same MetaKV txn on the record's stored value (`value ==` its encoding),
 * so a commit that raced another writer of that record fails as a whole instead of overwriting it.
 */
export type CatalogExpectation =
  | { readonly kind: 'collection'; readonly id: number; readonly state: CollectionState | 'absent' }
  | { readonly kind: 'segment'; readonly collectionId: number; readonly segmentId: number; readonly state: SegmentState | 'absent' };

export interface CommitOptions {
  readonly expect?: readonly CatalogExpectation[] | undefined;
  /** Records of other stores committed in the same txn (a restore start writes its job and pin with its target). */
  readonly extra?: { readonly compares: readonly Compare[]; readonly ops: readonly Op[] } | undefined;
}

const enc = new TextEncoder();
const dec = new TextDecoder();
const json = (v: unknown): Uint8Array => enc.encode(JSON.stringify(v));

export class Catalog {
  readonly #kv: MetaKV;
  readonly #databases = new Map<string, DatabaseRecord>();
  readonly #collections = new Map<number, CollectionRecord>();
  readonly #aliases = new Map<string, AliasRecord>();
  readonly #indexes = new Map<number, Map<number, IndexRecord>>();
  readonly #segments = new Map<number, Map<number, SegmentRecord>>();
  readonly #checkpoints = new Map<number, number>();

  constructor(kv: MetaKV) {
    this.#kv = kv;
  }

  get kv(): MetaKV {
    return this.#kv;
  }

  async load(): Promise<void> {
    for (const e of await this.#kv.scan(`${P}db/`)) {
      const r = JSON.parse(dec.decode(e.value)) as DatabaseRecord;
      this.#databases.set(r.name, r);
    }
    for (const e of await this.#kv.scan(`${P}coll/`)) {
      const r = JSON.parse(dec.decode(e.value)) as CollectionRecord;
      this.#collections.set(r.id, r);
    }
    for (const e of await this.#kv.scan(`${P}alias/`)) {
      const r = JSON.parse(dec.decode(e.value)) as AliasRecord;
      this.#aliases.set(aliasKey(r.dbId, r.alias), r);
    }
    for (const e of await this.#kv.scan(`${P}index/`)) {
      const r = JSON.parse(dec.decode(e.value)) as IndexRecord;
      mapOf(this.#indexes, r.collectionId).set(r.id, r);
    }
    for (const e of await this.#kv.scan(`${P}seg/`)) {
      const r = JSON.parse(dec.decode(e.value)) as SegmentRecord;
      mapOf(this.#segments, r.collectionId).set(r.id, r);
    }
    for (const e of await this.#kv.scan(`${P}ckpt/`)) {
      const id = Number(e.key.slice(`${P}ckpt/`.length));
      this.#checkpoints.set(id, (JSON.parse(dec.decode(e.value)) as { position: number }).position);
    }
  }

  /** Persists all changes in one MetaKV transaction, then applies them to the mirror. */
  async commit(changes: readonly CatalogChange[]): Promise<void> {
    await this.commitGuarded(changes);
  }

  /**
   * Persists `changes` in order as several MetaKV transactions, each within `TXN_OPS_MAX` ops and
   * `TXN_BYTES_MAX` bytes (meta/txn-limits.ts), applying each to the mirror once it committed. For commits
   * whose size grows with the data. NOT atomic: a crash or an error can leave any prefix of the batches
   * applied, so the caller orders `changes` such that every prefix is a safe state: the change that makes
   * the operation visible (or final) first and the cleanup after it, or the records first and the change
   * that makes them count last. A commit that fits in one txn is one txn (what `commit` does).
   */
  async commitInBatches(changes: readonly CatalogChange[]): Promise<void> {
    for (const batch of splitBySize(changes, (c) => opBytes(toOp(c)))) await this.commit(batch);
  }

  /**
   * `commit` guarded by expectations: persists all changes (and `opts.extra`) in one MetaKV transaction,
   * then applies them to the mirror.
   *
   * Without `opts.expect` / `opts.extra` compares: resolves true, or throws if the txn failed. With them:
   * resolves false (nothing written) when a record is not in the expected state or the txn lost a race;
   * that is a normal outcome for the caller to retry or report, not corruption. A put of a record that
   * changes the state it is expected in must be a legal transition (asserted).
   */
  async commitGuarded(changes: readonly CatalogChange[], opts: CommitOptions = {}): Promise<boolean> {
    const expect = opts.expect ?? [];
    if (changes.length === 0 && (opts.extra?.ops.length ?? 0) === 0) return true;
    const compares: Compare[] = [...(opts.extra?.compares ?? [])];
    for (const x of expect) {
      const cur = x.kind === 'collection' ? this.#collections.get(x.id) : this.#segments.get(x.collectionId)?.get(x.segmentId);
      const key = x.kind === 'collection' ? K.coll(x.id) : K.segment(x.collectionId, x.segmentId);
      if (x.state === 'absent') {
        if (cur !== undefined) return false;
        compares.push({ key, target: 'version', op: '==', value: 0 });
      } else {
        if (cur === undefined || cur.state !== x.state) return false;
        compares.push({ key, target: 'value', op: '==', value: json(cur) });
      }
    }
    for (const c of changes) assertLegal(c, expect);
    const ops: Op[] = [...changes.map(toOp), ...(opts.extra?.ops ?? [])];
    const res = await this.#kv.txn(compares, ops);
    if (!res.succeeded) {
      if (compares.length === 0) throw quiverError('ServiceInternal', 'meta transaction failed');
      return false;
    }
    for (const c of changes) this.#apply(c);
    return true;
  }

  #apply(c: CatalogChange): void {
    switch (c.type) {
      case 'putDatabase':
        this.#databases.set(c.record.name, c.record);
        return;
      case 'deleteDatabase':
        this.#databases.delete(c.name);
        return;
      case 'putCollection':
        this.#collections.set(c.record.id, c.record);
        return;
      case 'deleteCollection':
        this.#collections.delete(c.id);
        return;
      case 'putAlias':
        this.#aliases.set(aliasKey(c.record.dbId, c.record.alias), c.record);
        return;
      case 'deleteAlias':
        this.#aliases.delete(aliasKey(c.dbId, c.alias));
        return;
      case 'putIndex':
        mapOf(this.#indexes, c.record.collectionId).set(c.record.id, c.record);
        return;
      case 'deleteIndex':
        this.#indexes.get(c.collectionId)?.delete(c.indexId);
        return;
      case 'putSegment':
        mapOf(this.#segments, c.record.collectionId).set(c.record.id, c.record);
        return;
      case 'deleteSegment':
        this.#segments.get(c.collectionId)?.delete(c.segmentId);
        return;
      case 'putCheckpoint':
        this.#checkpoints.set(c.collectionId, c.position);
        return;
      case 'deleteCheckpoint':
        this.#checkpoints.delete(c.collectionId);
        return;
      default: {
        const never: never = c;
        throw new Error(`unknown change ${JSON.stringify(never)}`);
      }
    }
  }

  // ---- databases
  databases(): DatabaseRecord[] {
    return [...this.#databases.values()].sort((a, b) => a.id - b.id);
  }
  database(name: string): DatabaseRecord | undefined {
    return this.#databases.get(name);
  }
  databaseById(id: number): DatabaseRecord | undefined {
    for (const d of this.#databases.values()) if (d.id === id) return d;
    return undefined;
  }
  requireDatabase(name: string): DatabaseRecord {
    const db = this.#databases.get(name);
    if (!db) throw quiverError('DatabaseNotFound', `database not found[database=${name}]`);
    return db;
  }

  // ---- collections (only live ones unless asked)
  collection(id: number): CollectionRecord | undefined {
    const c = this.#collections.get(id);
    return c && c.state === 'Created' ? c : undefined;
  }
  collectionIncludingDropped(id: number): CollectionRecord | undefined {
    return this.#collections.get(id);
  }
  allCollections(): CollectionRecord[] {
    return [...this.#collections.values()];
  }
  collections(dbId: number): CollectionRecord[] {
    return [...this.#collections.values()].filter((c) => c.dbId === dbId && c.state === 'Created').sort((a, b) => a.id - b.id);
  }
  collectionByName(dbId: number, name: string): CollectionRecord | undefined {
    for (const c of this.#collections.values()) if (c.dbId === dbId && c.name === name && c.state === 'Created') return c;
    return undefined;
  }
  /** Whether a name is used by a live collection, a restore in flight or an alias. */
  nameTaken(dbId: number, name: string): boolean {
    for (const c of this.#collections.values()) if (c.dbId === dbId && c.name === name && c.state !== 'Dropped') return true;
    return this.#aliases.has(aliasKey(dbId, name));
  }

  /** Resolves a collection name or an alias. */
  resolveCollection(dbName: string, nameOrAlias: string): CollectionRecord {
    const db = this.requireDatabase(dbName);
    const direct = this.collectionByName(db.id, nameOrAlias);
    if (direct) return direct;
    const alias = this.#aliases.get(aliasKey(db.id, nameOrAlias));
    const viaAlias = alias ? this.collection(alias.collectionId) : undefined;
    if (viaAlias) return viaAlias;
    throw quiverError('CollectionNotFound', `collection not found[database=${dbName}][collection=${nameOrAlias}]`);
  }

  // ---- aliases
  alias(dbId: number, alias: string): AliasRecord | undefined {
    return this.#aliases.get(aliasKey(dbId, alias));
  }
  aliasesOf(collectionId: number): string[] {
    return [...this.#aliases.values()]
      .filter((a) => a.collectionId === collectionId)
      .map((a) => a.alias)
      .sort();
  }
  aliasesIn(dbId: number): AliasRecord[] {
    return [...this.#aliases.values()].filter((a) => a.dbId === dbId);
  }

  // ---- indexes
  indexes(collectionId: number): IndexRecord[] {
    return [...(this.#indexes.get(collectionId)?.values() ?? [])].sort((a, b) => a.id - b.id);
  }

  // ---- segments
  segments(collectionId: number): SegmentRecord[] {
    return [...(this.#segments.get(collectionId)?.values() ?? [])].sort((a, b) => a.id - b.id);
  }
  segment(collectionId: number, segmentId: number): SegmentRecord | undefined {
    return this.#segments.get(collectionId)?.get(segmentId);
  }
  segmentCollections(): number[] {
    return [...this.#segments.keys()];
  }

  checkpoint(collectionId: number): number | undefined {
    return this.#checkpoints.get(collectionId);
  }
}

/** A guarded put that changes a record's state must be a transition of its table. */
function assertLegal(c: CatalogChange, expect: readonly CatalogExpectation[]): void {
  if (c.type === 'putCollection') {
    const x = expect.find((e) => e.kind === 'collection' && e.id === c.record.id);
    if (x !== undefined && x.state !== 'absent' && x.state !== c.record.state) assertCollectionTransition(x.state as CollectionState, c.record.state);
  } else if (c.type === 'putSegment') {
    const x = expect.find((e) => e.kind === 'segment' && e.collectionId === c.record.collectionId && e.segmentId === c.record.id);
    if (x !== undefined && x.state !== 'absent' && x.state !== c.record.state) assertSegmentTransition(x.state as SegmentState, c.record.state);
  }
}

function aliasKey(dbId: number, alias: string): string {
  return `${dbId}/${alias}`;
}

function mapOf<V>(m: Map<number, Map<number, V>>, id: number): Map<number, V> {
  let inner = m.get(id);
  if (!inner) {
    inner = new Map();
    m.set(id, inner);
  }
  return inner;
}

function toOp(c: CatalogChange): Op {
  switch (c.type) {
    case 'putDatabase':
      return { type: 'put', key: K.db(c.record.name), value: json(c.record) };
    case 'deleteDatabase':
      return { type: 'delete', key: K.db(c.name) };
    case 'putCollection':
      return { type: 'put', key: K.coll(c.record.id), value: json(c.record) };
    case 'deleteCollection':
      return { type: 'delete', key: K.coll(c.id) };
    case 'putAlias':
      return { type: 'put', key: K.alias(c.record.dbId, c.record.alias), value: json(c.record) };
    case 'deleteAlias':
      return { type: 'delete', key: K.alias(c.dbId, c.alias) };
    case 'putIndex':
      return { type: 'put', key: K.index(c.record.collectionId, c.record.id), value: json(c.record) };
    case 'deleteIndex':
      return { type: 'delete', key: K.index(c.collectionId, c.indexId) };
    case 'putSegment':
      return { type: 'put', key: K.segment(c.record.collectionId, c.record.id), value: json(c.record) };
    case 'deleteSegment':
      return { type: 'delete', key: K.segment(c.collectionId, c.segmentId) };
    case 'putCheckpoint':
      return { type: 'put', key: K.checkpoint(c.collectionId), value: json({ position: c.position }) };
    case 'deleteCheckpoint':
      return { type: 'delete', key: K.checkpoint(c.collectionId) };
    default: {
      const never: never = c;
      throw new Error(`unknown change ${JSON.stringify(never)}`);
    }
  }
}
