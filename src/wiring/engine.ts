import { mkdir } from 'node:fs/promises';
import type { Logger } from 'pino';
import type { Clock } from '../common/clock.js';
import { quiverError } from '../common/errors.js';
import type { IdAllocator, TsoAllocator } from '../common/tso.js';
import type { Catalog } from '../coord/catalog.js';
import { CatalogService } from '../coord/catalog-service.js';
import { planCompaction } from '../coord/compaction-planner.js';
import { DataCoord } from '../coord/data-coord.js';
import { IndexScheduler } from '../coord/index-scheduler.js';
import type { CollectionRecord, IndexRecord, SegmentRecord } from '../coord/records.js';
import { SegmentManager } from '../coord/segment-manager.js';
import type { CatalogServiceApi, CollectionEvents, CreateCollectionInput, IndexDefinition, IndexSchedulerApi } from '../coord/types.js';
import { DataNode } from '../datanode/data-node.js';
import type { CompactionTaskInfo, DataNodeApi, DataNodeTasks } from '../datanode/types.js';
import type { TemplateValues } from '../expr/index.js';
import type { AnyMetricType } from '../index/typed-index-params.js';
import type { MetaKV } from '../meta/meta-kv.js';
import { QueryNode } from '../querynode/query-node.js';
import type { LoadProgress, QueryNodeApi, SearchParams } from '../querynode/types.js';
import type { Column, FieldSchema } from '../schema/types.js';
import type { CollectionRuntime, RowRef, SearchHit } from '../segcore/collection-runtime.js';
import type { ObjectStore } from '../storage/object-store.js';
import type { Wal } from '../wal/wal.js';

export type { CompactionTaskInfo } from '../datanode/types.js';
export type { LoadProgress, SearchParams } from '../querynode/types.js';
export { DEFAULT_PARTITION, exprSchema } from '../segcore/collection-helpers.js';

/**
 * The embedded wiring of the engine roles: the coordinator (catalog service, segment manager, index-build
 * scheduler, data-coord background pass), one data node and one query node, built over one MetaKV,
 * object store and WAL, connected by in-process calls through the roles' interfaces.
 *
 * `Engine` is that composition plus a facade with the single-object API that tests, benchmarks and the
 * snapshot/restore services use; the proxy gets the role interfaces (`roles`).
 *
 * Shutdown (`close`): stop the loops (each waits for its pass in flight; index builds in flight are
 * cancelled) → drain background work (compactions, WAL appends) → close the build and merge workers →
 * flush the TSO bound. The server wraps this with "stop accepting requests" before and "close the
 * stores" after (wiring/server.ts).
 */

export interface EngineOptions {
  /** A growing segment is sealed and flushed in the background once it holds this many rows... */
  readonly sealRows: number;
  /** ...or about this many bytes in memory (default 256 MiB). */
  readonly sealBytes?: number;
  /** Unflushed data older than this is flushed in the background (bounds WAL replay time). */
  readonly flushIdleMs: number;
  /** Period of the background loops (sealing, index builds, compaction, WAL truncation). */
  readonly backgroundIntervalMs: number;
  /** Scratch directory for index builds. */
  readonly tmpDir: string;
  /** Build indexes on the calling thread (tests); default: a worker thread. */
  readonly indexBuildInline?: boolean;
  /** Native threads per index build (default: every core). */
  readonly indexBuildThreads?: number | undefined;
  /** Where full-text index files are built: a worker (default) or 'main' (comparison in bench/ only). */
  readonly textIndexBuild?: 'worker' | 'main' | undefined;
  /** Background compaction (manual `compact` works either way). */
  readonly autoCompaction?: boolean;
  /** Deleted fraction at which a segment is rewritten. */
  readonly compactionDeleteRatio?: number;
}

export interface EngineDeps {
  readonly kv: MetaKV;
  readonly store: ObjectStore;
  readonly wal: Wal;
  readonly clock: Clock;
  readonly log: Logger;
  /**
   * The tasks the index scheduler dispatches builds to, given the in-process data node's (cluster
   * wiring: builds on the registered data nodes). The scheduler then runs as many builds at once as
   * the returned service reports slots.
   */
  readonly indexTasks?: ((local: DataNodeTasks) => DataNodeTasks) | undefined;
}

/** What the proxy talks to: one interface per role. */
export interface Roles {
  readonly coord: CatalogServiceApi;
  readonly indexes: IndexSchedulerApi;
  readonly data: DataNodeApi;
  readonly query: QueryNodeApi;
}

export class Engine {
  readonly catalog: Catalog;
  readonly store: ObjectStore;
  readonly wal: Wal;
  readonly tso: TsoAllocator;
  readonly ids: IdAllocator;
  readonly coord: CatalogService;
  readonly segments: SegmentManager;
  readonly indexes: IndexScheduler;
  readonly dataCoord: DataCoord;
  readonly data: DataNode;
  readonly queryNode: QueryNode;
  readonly roles: Roles;
  readonly #clock: Clock;
  readonly #log: Logger;
  readonly #opts: EngineOptions;
  #closed: Promise<void> | undefined;

  private constructor(deps: EngineDeps, opts: EngineOptions) {
    this.store = deps.store;
    this.wal = deps.wal;
    this.#clock = deps.clock;
    this.#log = deps.log;
    this.#opts = opts;
    // The catalog service announces DDL to the data node and asks the segment manager for the collection
    // lock; both are built after it, so it gets forwarders (plain closures over the fields below).
    const events: CollectionEvents = {
      collectionCreated: (r) => this.data.collectionCreated(r),
      collectionChanged: (r) => this.data.collectionChanged(r),
      collectionDropped: (r) => this.data.collectionDropped(r),
      partitionDropped: (c, p) => this.data.partitionDropped(c, p),
      segmentsCommitted: (c, r) => this.data.segmentsCommitted(c, r),
    };
    this.coord = new CatalogService({
      kv: deps.kv,
      clock: deps.clock,
      log: deps.log,
      walEnd: () => deps.wal.endPosition(),
      locks: { withCollectionLock: (id, fn) => this.segments.withCollectionLock(id, fn) },
      events,
      onIndexCreated: (id) => this.indexes.schedule(id),
    });
    this.catalog = this.coord.catalog;
    this.tso = this.coord.tso;
    this.ids = this.coord.ids;
    this.segments = new SegmentManager(
      { catalog: this.catalog, ids: this.ids },
      { sealRows: opts.sealRows, sealBytes: opts.sealBytes ?? 256 * 1024 * 1024, flushIdleMs: opts.flushIdleMs },
    );
    this.queryNode = new QueryNode({
      store: deps.store,
      catalog: this.catalog,
      segments: { runtime: (id) => this.data.runtime(id) },
      loadState: this.coord,
      log: deps.log,
      clock: deps.clock,
    });
    this.data = new DataNode(
      {
        store: deps.store,
        wal: deps.wal,
        clock: deps.clock,
        log: deps.log,
        catalog: this.catalog,
        tso: this.tso,
        ids: this.ids,
        segments: this.segments,
        loaded: this.queryNode,
        planCompaction,
        onFlushed: (id) => this.indexes.schedule(id),
      },
      {
        sealRows: opts.sealRows,
        compactionDeleteRatio: opts.compactionDeleteRatio ?? 0.2,
        tmpDir: opts.tmpDir,
        indexBuildInline: opts.indexBuildInline ?? false,
        indexBuildThreads: opts.indexBuildThreads,
        textIndexBuild: opts.textIndexBuild,
      },
    );
    const indexTasks = deps.indexTasks?.(this.data.tasks);
    if (indexTasks) this.data.useKeyMerges(indexTasks);
    this.indexes = new IndexScheduler(
      { catalog: this.catalog, locks: this.segments, tasks: indexTasks ?? this.data.tasks, loaded: this.queryNode, events: this.data, log: deps.log },
      { intervalMs: opts.backgroundIntervalMs, concurrency: indexTasks ? () => indexTasks.querySlots().total : undefined },
    );
    this.dataCoord = new DataCoord(
      { catalog: this.catalog, segments: this.segments, indexes: this.indexes, data: this.data, clock: deps.clock, log: deps.log },
      { intervalMs: opts.backgroundIntervalMs, autoCompaction: opts.autoCompaction ?? true },
    );
    this.roles = { coord: this.coord, indexes: this.indexes, data: this.data, query: this.queryNode };
  }

  static async open(deps: EngineDeps, opts: EngineOptions): Promise<Engine> {
    const e = new Engine(deps, opts);
    await e.#recover();
    // Index builds are kicked by events (flush, createIndex, publish) from the start; the periodic
    // data-coord pass starts with start().
    e.indexes.loop.start();
    return e;
  }

  async #recover(): Promise<void> {
    const started = this.#clock.nowMs();
    await mkdir(this.#opts.tmpDir, { recursive: true });
    await this.coord.init();
    let collections = 0;
    for (const coll of this.catalog.allCollections()) {
      if (coll.state !== 'Created') continue;
      collections++;
      await this.data.openCollection(coll, (rt) => this.queryNode.readFlushed(rt, { full: coll.loaded, logErrors: true }));
    }
    await this.data.replayWal();
    this.#log.info({ ms: this.#clock.nowMs() - started, collections }, 'recovered');
  }

  // ------------------------------------------------------------------ lifecycle

  /** Starts the periodic background pass (seal/flush, index builds, compaction, WAL truncation). */
  start(): void {
    this.dataCoord.loop.start();
  }

  /** One background pass, now (tests). */
  backgroundTick(): Promise<void> {
    return this.dataCoord.tick();
  }

  /**
   * Stops the loops (waiting for passes in flight, whose index builds are cancelled), drains background
   * work, closes the workers and flushes the TSO bound, in that order, so nothing writes to the store or
   * the meta after close() resolved. Idempotent.
   */
  close(): Promise<void> {
    return (this.#closed ??= (async () => {
      // stop() marks the loops stopping at once, so the cancellations below are logged as such.
      const loopsStopped = Promise.all([this.dataCoord.loop.stop(), this.indexes.loop.stop()]);
      this.data.beginShutdown();
      await loopsStopped;
      await this.data.drain();
      await this.data.closePools();
      await this.tso.flush();
    })());
  }

  // ------------------------------------------------------------------ lookups (tests, benchmarks)

  /** The in-memory state of a live collection (tests and benchmarks inspect it; the proxy never does). */
  runtime(collectionId: number): CollectionRuntime {
    const rt = this.data.runtime(collectionId);
    if (!rt) throw quiverError('CollectionNotFound', `collection not found[collectionID=${collectionId}]`);
    return rt;
  }

  resolve(dbName: string, name: string): CollectionRuntime {
    return this.runtime(this.catalog.resolveCollection(dbName, name).id);
  }

  // ------------------------------------------------------------------ catalog (CatalogService)

  createDatabase(name: string, properties: Record<string, string>): Promise<void> {
    return this.coord.createDatabase(name, properties);
  }

  dropDatabase(name: string): Promise<void> {
    return this.coord.dropDatabase(name);
  }

  alterDatabase(name: string, set: Record<string, string>, deleteKeys: readonly string[]): Promise<void> {
    return this.coord.alterDatabase(name, set, deleteKeys);
  }

  createCollection(input: CreateCollectionInput): Promise<CollectionRecord> {
    return this.coord.createCollection(input);
  }

  dropCollection(dbName: string, name: string): Promise<void> {
    return this.coord.dropCollection(dbName, name);
  }

  onCollectionDropped(hook: (coll: CollectionRecord) => Promise<void>): void {
    this.coord.onCollectionDropped(hook);
  }

  renameCollection(dbName: string, oldName: string, newName: string, newDbName: string): Promise<void> {
    return this.coord.renameCollection(dbName, oldName, newName, newDbName);
  }

  alterCollection(dbName: string, name: string, set: Record<string, string>, deleteKeys: readonly string[]): Promise<void> {
    return this.coord.alterCollection(dbName, name, set, deleteKeys);
  }

  alterCollectionField(dbName: string, name: string, fieldName: string, set: Record<string, string>, deleteKeys: readonly string[]): Promise<void> {
    return this.coord.alterCollectionField(dbName, name, fieldName, set, deleteKeys);
  }

  createPartition(dbName: string, collName: string, name: string): Promise<void> {
    return this.coord.createPartition(dbName, collName, name);
  }

  dropPartition(dbName: string, collName: string, name: string): Promise<void> {
    return this.coord.dropPartition(dbName, collName, name);
  }

  createAlias(dbName: string, collName: string, alias: string): Promise<void> {
    return this.coord.createAlias(dbName, collName, alias);
  }

  alterAlias(dbName: string, collName: string, alias: string): Promise<void> {
    return this.coord.alterAlias(dbName, collName, alias);
  }

  dropAlias(dbName: string, alias: string): Promise<void> {
    return this.coord.dropAlias(dbName, alias);
  }

  createIndex(collectionId: number, field: FieldSchema, name: string, def: IndexDefinition): Promise<void> {
    return this.coord.createIndex(collectionId, field, name, def);
  }

  dropIndex(collectionId: number, index: IndexRecord): Promise<void> {
    return this.coord.dropIndex(collectionId, index);
  }

  // ------------------------------------------------------------------ segments, indexes, compaction

  /** Runs `fn` while no flush, compaction commit or index commit of the collection can run. */
  withCollectionLock<T>(collectionId: number, fn: () => Promise<T>): Promise<T> {
    return this.segments.withCollectionLock(collectionId, fn);
  }

  /** Flushed segments of a collection right now (call under `withCollectionLock` for a stable set). */
  flushedSegments(collectionId: number): SegmentRecord[] {
    return this.data.flushedSegments(collectionId);
  }

  indexProgress(collectionId: number, idx: IndexRecord): { indexedRows: number; totalRows: number; pendingRows: number } {
    return this.indexes.progress(collectionId, idx);
  }

  /** Awaits index builds (tests and benchmarks). */
  waitForIndexes(collectionId: number): Promise<void> {
    return this.indexes.buildMissing(collectionId);
  }

  /** Registers a rule that keeps segments out of compaction (e.g. a snapshot's compaction protection). */
  addCompactionGuard(guard: (collectionId: number, segmentId: number) => boolean): void {
    this.data.addCompactionGuard(guard);
  }

  compact(collectionId: number, opts: { force: boolean; wait: boolean }): Promise<CompactionTaskInfo> {
    return this.data.compact(collectionId, opts);
  }

  compactionTask(id: number): CompactionTaskInfo | undefined {
    return this.data.compactionTask(id);
  }

  /** A compaction is reading the segment (GC must not reclaim it yet). */
  isSegmentBusy(collectionId: number, segmentId: number): boolean {
    return this.data.isSegmentBusy(collectionId, segmentId);
  }

  // ------------------------------------------------------------------ writes (DataNode)

  insert(
    collectionId: number,
    partitionName: string | undefined,
    columns: Map<string, Column>,
    numRows: number,
    upsert: boolean,
  ): Promise<{ pks: BigInt64Array | string[]; ts: bigint }> {
    return this.data.insert(collectionId, partitionName, columns, numRows, upsert);
  }

  delete(
    collectionId: number,
    partitionName: string | undefined,
    expr: string,
    templates: TemplateValues | undefined,
  ): Promise<{ count: number; ts: bigint; pks: (bigint | string)[] }> {
    return this.data.delete(collectionId, partitionName, expr, templates);
  }

  flushCollection(collectionId: number): Promise<{ segmentIds: number[]; flushTs: bigint }> {
    return this.data.flush(collectionId);
  }

  /** Flushes, then runs `fn` with the collection exactly at the flush's ts, in the same collection lock hold. */
  flushAndHold<T>(collectionId: number, fn: (flushTs: bigint, segments: SegmentRecord[]) => Promise<T>): Promise<T> {
    return this.data.flushThen(collectionId, (ts) => fn(ts, this.data.flushedSegments(collectionId)));
  }

  // ------------------------------------------------------------------ load and reads (QueryNode)

  load(collectionId: number, partitionNames: readonly string[] | undefined): Promise<void> {
    return this.queryNode.load(collectionId, partitionNames);
  }

  waitLoaded(collectionId: number): Promise<void> {
    return this.queryNode.waitLoaded(collectionId);
  }

  release(collectionId: number, partitionNames?: readonly string[]): Promise<void> {
    return this.queryNode.release(collectionId, partitionNames);
  }

  loadProgress(collectionId: number, partitionNames?: readonly string[]): LoadProgress {
    return this.queryNode.loadProgress(collectionId, partitionNames);
  }

  search(collectionId: number, p: SearchParams): Promise<{ hits: SearchHit[][]; metric: AnyMetricType }> {
    return this.queryNode.search(collectionId, p);
  }

  query(
    collectionId: number,
    q: { filter: string; templates?: TemplateValues | undefined; partitionNames: readonly string[]; offset: number; limit: number | undefined },
  ): Promise<RowRef[]> {
    return this.queryNode.query(collectionId, q);
  }

  count(collectionId: number, q: { filter: string; templates?: TemplateValues | undefined; partitionNames: readonly string[] }): Promise<number> {
    return this.queryNode.count(collectionId, q);
  }

  /** Row count of the collection (or partition) as statistics report it: live rows, loaded or not. */
  rowCount(collectionId: number, partitionName?: string): number {
    return this.queryNode.rowCount(collectionId, partitionName);
  }

  // ------------------------------------------------------------------ restore publishing

  /**
   * After the catalog commit that made a restored collection visible: sets up its in-memory state (the
   * data node's runtime, the pk columns the query node reads, index builds). Idempotent.
   */
  async collectionPublished(collectionId: number): Promise<void> {
    const coll = this.catalog.collection(collectionId);
    if (!coll || coll.state !== 'Created') throw quiverError('CollectionNotFound', `published collection ${collectionId} is not visible`);
    const opened = await this.data.openCollection(coll, (rt) => this.queryNode.readFlushed(rt, { full: false, logErrors: false }));
    if (opened) this.indexes.schedule(collectionId);
  }

  /**
   * Bulk import's publish: the imported segments are read (pk only, or fully when the collection is
   * loaded) and committed in one transaction; index builds follow. False when the collection is gone.
   */
  publishImported(collectionId: number, records: readonly SegmentRecord[]): Promise<boolean> {
    return this.data.publishSegments(collectionId, records, async (rt, segs) => {
      await Promise.all(segs.map((s) => this.queryNode.readSegmentInto(rt, s, rt.record.loaded)));
    });
  }

  /** Serializes DDL (name checks and the commits that take names); restore start runs under it. */
  withDdlLock<T>(fn: () => Promise<T>): Promise<T> {
    return this.coord.ddl(fn);
  }
}
