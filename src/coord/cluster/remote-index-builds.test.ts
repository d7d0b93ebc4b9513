import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { systemClock } from '../../common/clock.js';
import { IndexBuildExecutor } from '../../datanode/index-build-executor.js';
import { IndexBuildPool } from '../../datanode/index-builder.js';
import { IndexBuildRunner } from '../../datanode/remote/index-build-runner.js';
import { DataNodeTaskHost } from '../../datanode/remote/task-host.js';
import { MemoryMetaKV } from '../../meta/memory-kv.js';
import type { Column, FieldSchema, SparseRow } from '../../schema/types.js';
import { MemoryObjectStore } from '../../storage/memory-object-store.js';
import { serveDataNodeTasks, type TaskServer } from '../../taskrpc/protocol.js';
import { clusteredVectors } from '../../testing/vectors.js';
import { openLocalWal, type LocalWal } from '../../wal/wal.js';
import { Engine } from '../../wiring/engine.js';
import { NodeTaskDispatcher } from './node-task-dispatcher.js';
import { NodeTaskStore } from './node-task-store.js';
import { IndexTaskRouter, RemoteIndexBuilds } from './remote-index-builds.js';
import { RemoteWorkerPool } from './remote-workers.js';

/**
 * Index builds on a data node over the real task protocol (gRPC on loopback), in one process: the
 * engine's scheduler hands builds to the dispatcher, the node reads the records from the shared metadata
 * store and the binlogs from the shared object store, and the results are the embedded build's.
 */

const DIM = 8;
const ROWS_PER_SEGMENT = 1_500;
const SEGMENTS = 3;
const INDEXES = 3;
/** Keys the compaction test deletes. */
const DELETED = [0, 1, 2, 1500, 3333];

function field(f: Partial<FieldSchema> & Pick<FieldSchema, 'name' | 'dataType'>): Omit<FieldSchema, 'fieldId'> {
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

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function openEngine(kv: MemoryMetaKV, store: MemoryObjectStore, indexTasks?: ConstructorParameters<typeof IndexTaskRouter>[1]) {
  const dir = await mkdtemp(join(tmpdir(), 'quiver-remote-builds-'));
  const wal: LocalWal = await openLocalWal(join(dir, 'wal'));
  let router: IndexTaskRouter | undefined;
  const engine = await Engine.open(
    {
      kv,
      store,
      wal,
      clock: systemClock,
      log: pino({ level: 'silent' }),
      indexTasks: indexTasks && ((local) => (router = new IndexTaskRouter(local, indexTasks))),
    },
    {
      sealRows: 100_000,
      flushIdleMs: 60_000,
      backgroundIntervalMs: 60_000,
      tmpDir: join(dir, 'tmp'),
      indexBuildInline: true,
      indexBuildThreads: 1,
      autoCompaction: false,
    },
  );
  cleanups.push(async () => {
    await engine.close();
    await wal.close();
    await rm(dir, { recursive: true, force: true });
  });
  return { engine, router };
}

/** The sparse row of a key (deterministic: the same in every engine). */
function sparseRow(key: number): SparseRow {
  const dims = [...new Set([key % 97, (key * 7) % 101, ((key * 13) % 89) + 100])].sort((a, b) => a - b);
  return { indices: Uint32Array.from(dims), values: Float32Array.from(dims.map((d) => ((d * 31 + key) % 17) / 17 + 0.05)) };
}

/** The INVERTED-indexed scalar of a key. */
const tagOf = (key: number) => BigInt((key * 11) % 37);

/**
 * The same collection in any engine: SEGMENTS flushed segments of clustered vectors and an HNSW index, a
 * scalar field with an INVERTED index and a sparse field with a SPARSE_INVERTED_INDEX (column builds).
 */
async function fill(engine: Engine) {
  const coll = await engine.createCollection({
    dbName: 'default',
    name: 'c',
    fields: [
      field({ name: 'id', dataType: 'Int64', isPrimaryKey: true }),
      field({ name: 'vec', dataType: 'FloatVector', dim: DIM }),
      field({ name: 'tag', dataType: 'Int64' }),
      field({ name: 'sp', dataType: 'SparseFloatVector' }),
    ],
    description: '',
    enableDynamicField: false,
    autoId: false,
    shardsNum: 1,
    consistencyLevel: 'Strong',
    properties: {},
    numPartitions: 0,
  });
  const vectors = clusteredVectors({ n: ROWS_PER_SEGMENT * SEGMENTS, dim: DIM, clusters: 16, seed: 7 });
  for (let s = 0; s < SEGMENTS; s++) {
    const from = s * ROWS_PER_SEGMENT;
    const ids = BigInt64Array.from({ length: ROWS_PER_SEGMENT }, (_, i) => BigInt(from + i));
    const cols = new Map<string, Column>([
      ['id', { kind: 'int64' as const, data: ids }],
      ['vec', { kind: 'vector' as const, dim: DIM, data: vectors.slice(from * DIM, (from + ROWS_PER_SEGMENT) * DIM) }],
      ['tag', { kind: 'int64' as const, data: ids.map((k) => tagOf(Number(k))) }],
      ['sp', { kind: 'sparse' as const, data: Array.from({ length: ROWS_PER_SEGMENT }, (_, i) => sparseRow(from + i)) }],
    ]);
    await engine.insert(coll.id, undefined, cols, ROWS_PER_SEGMENT, false);
    await engine.flushCollection(coll.id);
  }
  const vec = engine.catalog.collection(coll.id)!.schema.fields.find((f) => f.name === 'vec')!;
  await engine.createIndex(coll.id, vec, 'vec_idx', { indexType: 'HNSW', metric: 'L2', userParams: {}, buildParams: { M: 16, efConstruction: 200 } });
  const fieldOf = (name: string) => engine.catalog.collection(coll.id)!.schema.fields.find((f) => f.name === name)!;
  await engine.createIndex(coll.id, fieldOf('tag'), 'tag_idx', { indexType: 'INVERTED', metric: '', userParams: {}, buildParams: {} });
  await engine.createIndex(coll.id, fieldOf('sp'), 'sp_idx', { indexType: 'SPARSE_INVERTED_INDEX', metric: 'IP', userParams: {}, buildParams: {} });
  await engine.waitForIndexes(coll.id);
  await engine.load(coll.id, undefined);
  await engine.waitLoaded(coll.id);
  return { id: coll.id, vec, sp: fieldOf('sp'), queries: vectors.slice(0, 20 * DIM) };
}

/** Deletes a few rows, flushes, and merges every segment into one (a manual compaction). */
async function compactAll(engine: Engine, c: Awaited<ReturnType<typeof fill>>) {
  await engine.delete(c.id, undefined, `id in [${DELETED.join(', ')}]`, undefined);
  await engine.flushCollection(c.id);
  const task = await engine.compact(c.id, { force: true, wait: true });
  expect(task.plans.map((p) => p.error ?? p.state)).toEqual(['Completed']);
  await engine.waitForIndexes(c.id);
}

async function searchIds(engine: Engine, c: Awaited<ReturnType<typeof fill>>): Promise<number[][]> {
  const { hits } = await engine.search(c.id, {
    field: c.vec,
    queries: c.queries,
    nq: 20,
    k: 10,
    offset: 0,
    metric: 'L2',
    filter: '',
    partitionNames: [],
    ef: 500,
  });
  return hits.map((q) => q.map((h) => Number((h.chunk.columns.get('id')!.data as BigInt64Array)[h.row])));
}

/** Sparse top-10 (IP) of a few keys' rows, filtered by the indexed scalar: ids and scores. */
async function sparseHits(engine: Engine, c: Awaited<ReturnType<typeof fill>>): Promise<[number, number][][]> {
  const keys = [5, 1_700, 4_000];
  const { hits } = await engine.search(c.id, {
    field: c.sp,
    queries: new Float32Array(0),
    typedQueries: { kind: 'sparse', rows: keys.map(sparseRow) },
    nq: keys.length,
    k: 10,
    offset: 0,
    metric: 'IP',
    filter: 'tag >= 10',
    partitionNames: [],
  });
  return hits.map((q) => q.map((h) => [Number((h.chunk.columns.get('id')!.data as BigInt64Array)[h.row]), h.score]));
}

/** Rows per filter through the engine (the scalar index answers `tag`), and the same count by a scan of the keys. */
async function tagCounts(engine: Engine, id: number, deleted: readonly number[]): Promise<{ engine: number[]; scan: number[] }> {
  const filters: [string, (t: bigint) => boolean][] = [
    ['tag in [3, 30]', (t) => t === 3n || t === 30n],
    ['tag > 20 and tag <= 25', (t) => t > 20n && t <= 25n],
  ];
  const total = ROWS_PER_SEGMENT * SEGMENTS;
  return {
    engine: await Promise.all(filters.map(([filter]) => engine.count(id, { filter, partitionNames: [] }))),
    scan: filters.map(([, keep]) => Array.from({ length: total }, (_, k) => k).filter((k) => !deleted.includes(k) && keep(tagOf(k))).length),
  };
}

describe('index builds on a remote data node', () => {
  it('builds indexes and merges compactions on the node, with the embedded results', async () => {
    const kv = new MemoryMetaKV();
    const store = new MemoryObjectStore();
    const { engine, router } = await openEngine(kv, store, { remoteOnly: true });

    const registry = new Registry();
    // One build thread on both sides: a multi-threaded HNSW build inserts in a racy order, and the
    // comparison with the embedded build below is exact.
    const pool = new IndexBuildPool({ inline: true, threads: 1 });
    const runner = new IndexBuildRunner({ meta: kv, store, builds: new IndexBuildExecutor({ store, ids: engine.ids, pool }, { tmpDir: tmpdir() }) });
    // The build ids of the indexes the node built inside merges (a compaction target's own index).
    const mergeBuilt: number[] = [];
    const indexBuilds: ConstructorParameters<typeof DataNodeTaskHost>[0]['indexBuilds'] = {
      run: (r) => runner.run(r),
      mergeIndexes: async (p) => {
        const m = await runner.mergeIndexes(p);
        return {
          fieldIds: m.fieldIds,
          build: async (column, version) => {
            const out = await m.build(column, version);
            mergeBuilt.push(...out.map((b) => b.build_id));
            return out;
          },
        };
      },
    };
    const host = new DataNodeTaskHost({ store, clock: systemClock, registry, indexBuilds }, { nodeId: 7, slots: 2 });
    const server: TaskServer = await serveDataNodeTasks(host, '127.0.0.1', 0);
    const session = {
      nodeId: 7,
      role: 'datanode' as const,
      address: `127.0.0.1:${server.port}`,
      metricsAddress: '',
      slots: 2,
      startedAtMs: 0,
      version: 't',
    };
    const workers = new RemoteWorkerPool({ live: { nodes: () => [{ session, state: 'Healthy' as const }] } });
    const dispatcher = new NodeTaskDispatcher(
      { store: new NodeTaskStore(kv), nodes: workers, ids: engine.ids, clock: systemClock, log: { info() {}, warn() {}, error() {} } },
      { taskTimeoutMs: 60_000, jobTimeoutMs: 120_000, attemptsMax: 2, tickIntervalMs: 20 },
    );
    await dispatcher.init();
    dispatcher.start();
    cleanups.push(async () => {
      await dispatcher.stop();
      workers.close();
      await server.close(0);
      await host.close();
      await pool.close();
    });
    router!.setRemote(new RemoteIndexBuilds(dispatcher));

    const remote = await fill(engine);
    const segs = engine.flushedSegments(remote.id);
    expect(segs).toHaveLength(SEGMENTS);
    for (const s of segs) {
      // Every index has its file: the HNSW one, and the INVERTED and sparse ones built over the column.
      expect(s.indexes).toHaveLength(INDEXES);
      for (const file of s.indexes) {
        // The task id is the build id and the dispatch epoch the index version.
        expect(file.version).toBe(1);
        expect(file.files).toHaveLength(1);
        expect(file.files[0]).toContain(`index_files/${file.buildId}/1/`);
        expect((await store.stat(file.files[0]!))?.size).toBe(file.size);
      }
    }
    const counted = async () => (await registry.getSingleMetric('quiver_datanode_tasks_total')!.get()).values;
    // Every build ran on the node (remoteOnly: this process builds none).
    expect(await counted()).toContainEqual(expect.objectContaining({ labels: { type: 'index_build', outcome: 'completed' }, value: SEGMENTS * INDEXES }));

    // The embedded mode over the same data answers the same.
    const embedded = await openEngine(new MemoryMetaKV(), new MemoryObjectStore());
    const local = await fill(embedded.engine);
    expect(await searchIds(engine, remote)).toEqual(await searchIds(embedded.engine, local));
    expect(await sparseHits(engine, remote)).toEqual(await sparseHits(embedded.engine, local));
    const before = await tagCounts(engine, remote.id, []);
    expect(before.engine).toEqual(before.scan);
    expect((await tagCounts(embedded.engine, local.id, [])).engine).toEqual(before.scan);

    // Compaction: the merge runs on the node (it reads the source binlogs and writes the target's), the
    // result is one segment with the embedded compaction's rows and answers.
    await compactAll(engine, remote);
    await compactAll(embedded.engine, local);
    expect(await counted()).toContainEqual(expect.objectContaining({ labels: { type: 'compaction_merge', outcome: 'completed' }, value: 1 }));
    const [target] = engine.flushedSegments(remote.id);
    expect(engine.flushedSegments(remote.id)).toHaveLength(1);
    expect(target!.numRows).toBe(SEGMENTS * ROWS_PER_SEGMENT - 5);
    for (const logs of Object.values(target!.binlogs)) expect((await store.stat(logs[0]!.path))?.size).toBe(logs[0]!.size);
    // The target's own indexes (vector, scalar, sparse) were built by the node's merge task (not in this
    // process, and not by a later index pass), under their versions.
    expect(target!.indexes).toHaveLength(INDEXES);
    expect([...mergeBuilt].sort()).toEqual(target!.indexes.map((i) => i.buildId).sort());
    for (const i of target!.indexes) expect(i.files[0]).toContain(`index_files/${i.buildId}/1/`);
    expect(await counted()).toContainEqual(expect.objectContaining({ labels: { type: 'index_build', outcome: 'completed' }, value: SEGMENTS * INDEXES }));
    const after = await tagCounts(engine, remote.id, DELETED);
    expect(after.engine).toEqual(after.scan);
    expect((await tagCounts(embedded.engine, local.id, DELETED)).engine).toEqual(after.scan);
    expect(await sparseHits(engine, remote)).toEqual(await sparseHits(embedded.engine, local));
    const count = (e: Engine, id: number) => e.count(id, { filter: '', partitionNames: [] });
    expect(await count(engine, remote.id)).toBe(await count(embedded.engine, local.id));
    expect(await searchIds(engine, remote)).toEqual(await searchIds(embedded.engine, local));
  });
});
