/**
 * In-process harness for the storage-engine reliability tests: one data dir with a file SQLite MetaKV,
 * a local object store (optionally behind a FaultyObjectStore), a local WAL, a FakeClock, the Engine and
 * a GarbageCollector over the engine's catalog and the same store. `restart()` closes every piece and
 * reopens it over the same dir, which is what a clean process restart does; `handOver` lets a child
 * process (model-child.ts) run on the dir and be killed -9, then reopens it (a crash restart). The GC's
 * reference guard is the snapshot manager's RefIndex, as in the server.
 *
 * Rows are (pk, version) pairs: the pk is the Int64 primary key and the vector is
 * [pk, version, 0.5, 1], so a read tells which version of a row is visible, not only how many.
 */
import { InProcessWorkerPool } from '../../src/datanode/copy-worker/index.js';
import { access, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { FakeClock } from '../../src/common/clock.js';
import { GarbageCollector, type GcReport } from '../../src/coord/gc/garbage-collector.js';
import { DEFAULT_COPY_OPTIONS, type CopyJob } from '../../src/coord/copy/index.js';
import { RestoreService } from '../../src/coord/snapshot/restore-service.js';
import { SNAPSHOT_DEFAULTS, SnapshotManager } from '../../src/coord/snapshot/snapshot-manager.js';
import { segmentFiles } from '../../src/coord/gc/segment-files.js';
import type { CollectionRecord } from '../../src/coord/records.js';
import { SqliteMetaKV } from '../../src/meta/sqlite-kv.js';
import { gatherColumn, type RowRef } from '../../src/segcore/collection-runtime.js';
import { until } from '../../src/testing/index.js';
import { Engine } from '../../src/wiring/engine.js';
import { FaultyObjectStore } from '../../src/storage/faulty-object-store.js';
import { LocalObjectStore } from '../../src/storage/local-object-store.js';
import type { ObjectInfo, ObjectStore } from '../../src/storage/object-store.js';
import { DELTA_LOG_ROOT, INDEX_FILES_ROOT, INSERT_LOG_ROOT, STATS_LOG_ROOT } from '../../src/storage/paths.js';
import type { Column, FieldSchema } from '../../src/schema/types.js';
import { openLocalWal, type LocalWal, type Wal } from '../../src/wal/wal.js';

export const DIM = 4;
export const PK_FIELD = 'id';
export const VECTOR_FIELD = 'v';
export const DB = 'default';
export const GC_ROOTS = [INSERT_LOG_ROOT, DELTA_LOG_ROOT, STATS_LOG_ROOT, INDEX_FILES_ROOT] as const;

export interface HarnessOptions {
  /** Wrap the store in a FaultyObjectStore (healthy until `faults.setFailOn`). Default false. */
  readonly faulty?: boolean | undefined;
  readonly sealRows?: number | undefined;
  readonly flushIdleMs?: number | undefined;
  /** Small WAL segments make rotation and truncation happen in tiny tests. Default 8 KiB. */
  readonly walSegmentBytesMax?: number | undefined;
  readonly droppedGraceMs?: number | undefined;
  readonly orphanGraceMs?: number | undefined;
  /** Extra wrapper around the (faulty) store, e.g. to hold a put at a gate. Applied at every (re)open. */
  readonly wrapStore?: ((inner: ObjectStore) => ObjectStore) | undefined;
  /** Wrapper around the WAL the engine writes, e.g. to fail or hold appends. Applied at every (re)open. */
  readonly wrapWal?: ((inner: Wal) => Wal) | undefined;
}

export interface Row {
  readonly pk: bigint;
  readonly version: number;
}

interface Opened {
  readonly kv: SqliteMetaKV;
  readonly local: LocalObjectStore;
  readonly store: TrackingObjectStore;
  readonly faults: FaultyObjectStore | undefined;
  readonly wal: LocalWal;
  readonly engine: Engine;
  readonly snapshots: SnapshotManager;
  readonly restores: RestoreService;
  readonly gc: GarbageCollector;
}

const FIELDS: Omit<FieldSchema, 'fieldId'>[] = [
  field({ name: PK_FIELD, dataType: 'Int64', isPrimaryKey: true }),
  field({ name: VECTOR_FIELD, dataType: 'FloatVector', dim: DIM, typeParams: { dim: String(DIM) } }),
];

function field(f: Partial<Omit<FieldSchema, 'fieldId'>> & Pick<FieldSchema, 'name' | 'dataType'>): Omit<FieldSchema, 'fieldId'> {
  return {
    description: '',
    isPrimaryKey: false,
    autoId: false,
    nullable: false,
    isDynamic: false,
    isPartitionKey: false,
    isClusteringKey: false,
    typeParams: {},
    ...f,
  };
}

export class Harness {
  readonly dir: string;
  readonly clock: FakeClock;
  readonly opts: Required<HarnessOptions>;
  #o: Opened;

  private constructor(dir: string, clock: FakeClock, opts: Required<HarnessOptions>, opened: Opened) {
    this.dir = dir;
    this.clock = clock;
    this.opts = opts;
    this.#o = opened;
  }

  static async create(options: HarnessOptions = {}): Promise<Harness> {
    const dir = await mkdtemp(join(tmpdir(), 'quiver-model-'));
    return Harness.openDir(dir, options);
  }

  /** Opens an existing data dir (the crash step's child process, and the parent after the kill). */
  static async openDir(dir: string, options: HarnessOptions = {}): Promise<Harness> {
    const opts: Required<HarnessOptions> = {
      faulty: options.faulty ?? false,
      sealRows: options.sealRows ?? 1000,
      flushIdleMs: options.flushIdleMs ?? 1000,
      walSegmentBytesMax: options.walSegmentBytesMax ?? 8192,
      droppedGraceMs: options.droppedGraceMs ?? 60_000,
      orphanGraceMs: options.orphanGraceMs ?? 600_000,
      wrapStore: options.wrapStore ?? ((inner) => inner),
      wrapWal: options.wrapWal ?? ((inner) => inner),
    };
    // The GC compares file mtimes (real time) with the injected clock: start the fake clock at real time
    // so that fresh files are young, and advance it past a grace to make every file "old".
    const clock = new FakeClock(Date.now());
    return new Harness(dir, clock, opts, await open(dir, clock, opts));
  }

  get engine(): Engine {
    return this.#o.engine;
  }
  get gc(): GarbageCollector {
    return this.#o.gc;
  }
  /** The snapshot manager; its `refs` (the real RefIndex) is the GC's reference guard. */
  get snapshots(): SnapshotManager {
    return this.#o.snapshots;
  }
  get restores(): RestoreService {
    return this.#o.restores;
  }
  get store(): ObjectStore {
    return this.#o.store;
  }
  /**
   * Resolves once no store call is in flight. A failed flush or compaction rejects as soon as one of
   * its parallel puts fails while the others still run; a check made before they land would see
   * files appear behind its back.
   */
  storeIdle(): Promise<void> {
    return this.#o.store.idle();
  }
  /** The unwrapped store: reads and writes that bypass injected faults. */
  get localStore(): LocalObjectStore {
    return this.#o.local;
  }
  /** Present when created with `faulty: true`; a restart installs a fresh, healthy one. */
  get faults(): FaultyObjectStore {
    if (!this.#o.faults) throw new Error('harness was created without faulty: true');
    return this.#o.faults;
  }

  async restart(): Promise<void> {
    await this.#quiesce();
    await closeAll(this.#o);
    this.#o = await open(this.dir, this.clock, this.opts);
  }

  async close(): Promise<void> {
    await this.#quiesce();
    await closeAll(this.#o);
  }

  /**
   * The crash step: closes this process's instances, lets `run` work on the dir in another process
   * (which the step kills -9), then opens the dir again, as a restart after a crash does.
   */
  async handOver(run: (dir: string) => Promise<void>): Promise<void> {
    await this.#quiesce();
    await closeAll(this.#o);
    await run(this.dir);
    this.#o = await open(this.dir, this.clock, this.opts);
  }

  /**
   * Waits for index builds scheduled in the background: Engine.close() does not (see the report), and
   * a build that outlives close writes into a store that is being closed or a dir being removed.
   */
  async #quiesce(): Promise<void> {
    const cat = this.engine.catalog;
    for (const c of cat.allCollections()) if (c.state === 'Created') await this.settle(c.id).catch(() => undefined);
  }

  async destroy(): Promise<void> {
    await this.close().catch(() => undefined);
    await rm(this.dir, { recursive: true, force: true, maxRetries: 3 });
  }

  // ------------------------------------------------------------------------ collections and rows

  async createCollection(name: string, opts: { index?: boolean } = {}): Promise<number> {
    const rec = await this.engine.createCollection({
      dbName: DB,
      name,
      fields: FIELDS.map((f) => ({ ...f })),
      description: '',
      enableDynamicField: false,
      autoId: false,
      shardsNum: 1,
      consistencyLevel: 'Strong',
      properties: {},
      numPartitions: 0,
    });
    if (opts.index) {
      const vf = rec.schema.fields.find((f) => f.name === VECTOR_FIELD)!;
      await this.engine.createIndex(rec.id, vf, 'v_idx', {
        indexType: 'HNSW',
        metric: 'L2',
        userParams: { index_type: 'HNSW', metric_type: 'L2' },
        buildParams: { M: 8, efConstruction: 32 },
      });
    }
    return rec.id;
  }

  collection(id: number): CollectionRecord {
    const c = this.engine.catalog.collection(id);
    if (!c) throw new Error(`collection ${id} is not live`);
    return c;
  }

  async insert(id: number, partition: string | undefined, rows: readonly Row[], upsert = false): Promise<void> {
    await this.engine.insert(id, partition, columnsOf(rows), rows.length, upsert);
  }

  async deletePks(id: number, pks: readonly bigint[]): Promise<number> {
    const r = await this.engine.delete(id, undefined, `${PK_FIELD} in [${pks.join(', ')}]`, undefined);
    return r.count;
  }

  async loadAndWait(id: number): Promise<void> {
    await this.engine.load(id, undefined);
    await this.engine.waitLoaded(id);
  }

  /** Every visible row (optionally of one partition), sorted by (pk, version). Needs a loaded collection. */
  async readRows(id: number, partition?: string): Promise<Row[]> {
    const refs = await this.engine.query(id, { filter: '', partitionNames: partition ? [partition] : [], offset: 0, limit: undefined });
    return sortRows(decodeRows(refs));
  }

  /**
   * Top-k search (squared L2) with one query vector over the whole collection: the hits as rows, in
   * result order, with their scores. Needs a loaded collection.
   */
  async searchRows(id: number, query: readonly number[], k: number): Promise<{ row: Row; score: number }[]> {
    const vf = this.collection(id).schema.fields.find((f) => f.name === VECTOR_FIELD)!;
    const { hits } = await this.engine.search(id, {
      field: vf,
      queries: Float32Array.from(query),
      nq: 1,
      k,
      offset: 0,
      metric: 'L2',
      filter: '',
      partitionNames: [],
    });
    const first = hits[0] ?? [];
    return decodeRows(first).map((row, i) => ({ row, score: first[i]!.score }));
  }

  // ------------------------------------------------------------------------ snapshots and restores

  async createSnapshot(collection: string, name: string): Promise<void> {
    await this.snapshots.create(DB, collection, name, '', 0);
  }

  async dropSnapshot(collection: string, name: string): Promise<void> {
    await this.snapshots.drop(DB, collection, name);
  }

  /** Starts a restore and waits (real time, bounded) until its job is Completed or Failed. */
  async restore(source: string, snapshot: string, target: string): Promise<CopyJob> {
    const started = await this.restores.restore({ sourceDb: DB, sourceCollection: source, name: snapshot, targetDb: DB, targetCollection: target });
    let job = started;
    await until(
      async () => {
        job = await this.restores.job(started.id);
        return job.state === 'Completed' || job.state === 'Failed';
      },
      { timeoutMs: 30_000, what: `restore job ${started.id} finished` },
    );
    return job;
  }

  /** Waits for index builds the engine scheduled in the background (they write files GC must not race). */
  async settle(id: number | undefined): Promise<void> {
    for (let i = 0; i < 2; i++) {
      await new Promise((r) => setImmediate(r));
      if (id !== undefined && this.engine.catalog.collection(id)) await this.engine.waitForIndexes(id);
    }
  }

  async gcTick(): Promise<GcReport> {
    return this.gc.tick();
  }

  // ------------------------------------------------------------------------ files

  async listFiles(): Promise<ObjectInfo[]> {
    const out: ObjectInfo[] = [];
    for (const root of GC_ROOTS) out.push(...(await this.localStore.list(`${root}/`)));
    return out;
  }

  /** Keys listed by any segment record in the catalog, of any state and any collection. */
  referencedKeys(): Set<string> {
    const keys = new Set<string>();
    const cat = this.engine.catalog;
    for (const cid of cat.segmentCollections()) for (const s of cat.segments(cid)) for (const f of segmentFiles(s)) keys.add(f.key);
    return keys;
  }

  async fileExists(key: string): Promise<boolean> {
    const p = this.localStore.localPath(key);
    try {
      await access(p);
      return true;
    } catch {
      return false;
    }
  }
}

export function sortRows(rows: Row[]): Row[] {
  return rows.sort((a, b) => (a.pk < b.pk ? -1 : a.pk > b.pk ? 1 : a.version - b.version));
}

/** The (pk, version) rows behind row refs, in their order, checking that each vector belongs to its pk. */
function decodeRows(refs: readonly RowRef[]): Row[] {
  const pk = gatherColumn(refs, PK_FIELD);
  const v = gatherColumn(refs, VECTOR_FIELD);
  if (refs.length === 0) return [];
  if (pk?.kind !== 'int64' || v?.kind !== 'vector') throw new Error('query returned no pk or vector column');
  const out: Row[] = [];
  for (let i = 0; i < refs.length; i++) {
    const p = pk.data[i]!;
    if (v.data[i * DIM] !== Number(p))
      throw new Error(`row ${i}: vector ${Array.from(v.data.subarray(i * DIM, i * DIM + DIM))} does not belong to pk ${p}`);
    out.push({ pk: p, version: v.data[i * DIM + 1]! });
  }
  return out;
}

export function columnsOf(rows: readonly Row[]): Map<string, Column> {
  const pks = new BigInt64Array(rows.length);
  const vecs = new Float32Array(rows.length * DIM);
  rows.forEach((r, i) => {
    pks[i] = r.pk;
    vecs.set([Number(r.pk), r.version, 0.5, 1], i * DIM);
  });
  return new Map<string, Column>([
    [PK_FIELD, { kind: 'int64', data: pks }],
    [VECTOR_FIELD, { kind: 'vector', dim: DIM, data: vecs }],
  ]);
}

async function open(dir: string, clock: FakeClock, opts: Required<HarnessOptions>): Promise<Opened> {
  const kv = new SqliteMetaKV(join(dir, 'meta.db'));
  // fsync off: a restart here is a clean close, never a power loss, and fsyncs would dominate run time.
  const local = new LocalObjectStore(join(dir, 'objects'), { fsync: false });
  await local.removeTempFiles();
  const faults = opts.faulty ? new FaultyObjectStore(local, { failOn: () => false }) : undefined;
  const store = new TrackingObjectStore(opts.wrapStore(faults ?? local));
  const wal = await openLocalWal(join(dir, 'wal'), { fsync: 'none', segmentBytesMax: opts.walSegmentBytesMax, onWarn: () => undefined });
  const log = pino({ level: 'silent' });
  let engine: Engine;
  let snapshots: SnapshotManager;
  let restores: RestoreService | undefined;
  try {
    engine = await Engine.open(
      { kv, store, wal: opts.wrapWal(wal), clock, log },
      {
        sealRows: opts.sealRows,
        flushIdleMs: opts.flushIdleMs,
        backgroundIntervalMs: 60_000,
        tmpDir: join(dir, 'tmp'),
        indexBuildInline: true,
        autoCompaction: false,
      },
    );
    snapshots = new SnapshotManager({ host: engine, kv, store, clock, log }, SNAPSHOT_DEFAULTS);
    await snapshots.init();
    const workers = new InProcessWorkerPool({ store, onTaskFinished: () => restores?.taskFinished() });
    restores = new RestoreService({ host: engine, snapshots, kv, store, clock, log, workers }, { ...DEFAULT_COPY_OPTIONS, checkIntervalMs: 20 });
    await restores.init();
    restores.start();
  } catch (e) {
    await wal.close().catch(() => undefined);
    await store.close().catch(() => undefined);
    await kv.close().catch(() => undefined);
    throw e;
  }
  const gc = new GarbageCollector(
    {
      catalog: engine.catalog,
      store,
      clock,
      guard: snapshots.refs,
      isSegmentInUse: (c, s) => engine.isSegmentBusy(c, s),
    },
    { droppedGraceMs: opts.droppedGraceMs, orphanGraceMs: opts.orphanGraceMs },
  );
  return { kv, local, store, faults, wal, engine, snapshots, restores, gc };
}

async function closeAll(o: Opened): Promise<void> {
  await o.gc.stop();
  await o.restores.stop();
  await o.store.idle();
  await o.engine.close();
  await o.wal.close();
  await o.store.close();
  await o.kv.close();
}

/** Passes every call through and counts the ones in flight, so that a test can wait for quiet. */
class TrackingObjectStore implements ObjectStore {
  readonly name: string;
  readonly #inner: ObjectStore;
  #inFlight = 0;
  #waiters: (() => void)[] = [];

  constructor(inner: ObjectStore) {
    this.name = inner.name;
    this.#inner = inner;
  }

  idle(): Promise<void> {
    if (this.#inFlight === 0) return Promise.resolve();
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  async #track<T>(call: () => Promise<T>): Promise<T> {
    this.#inFlight++;
    try {
      return await call();
    } finally {
      this.#inFlight--;
      if (this.#inFlight === 0) for (const w of this.#waiters.splice(0)) w();
    }
  }

  put(key: string, data: Uint8Array): Promise<void> {
    return this.#track(() => this.#inner.put(key, data));
  }
  get(key: string): Promise<Uint8Array> {
    return this.#track(() => this.#inner.get(key));
  }
  getRange(key: string, offset: number, length: number): Promise<Uint8Array> {
    return this.#track(() => this.#inner.getRange(key, offset, length));
  }
  stat(key: string): Promise<ObjectInfo | undefined> {
    return this.#track(() => this.#inner.stat(key));
  }
  list(prefix: string): Promise<ObjectInfo[]> {
    return this.#track(() => this.#inner.list(prefix));
  }
  delete(key: string): Promise<void> {
    return this.#track(() => this.#inner.delete(key));
  }
  deletePrefix(prefix: string): Promise<number> {
    return this.#track(() => this.#inner.deletePrefix(prefix));
  }
  copy(srcKey: string, dstKey: string): Promise<void> {
    return this.#track(() => this.#inner.copy(srcKey, dstKey));
  }
  localPath(key: string): string | undefined {
    return this.#inner.localPath?.(key);
  }
  close(): Promise<void> {
    return this.#inner.close();
  }
}
