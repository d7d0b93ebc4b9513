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
import type { FieldSchema } from '../../schema/types.js';
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

/** The same collection in any engine: SEGMENTS flushed segments of clustered vectors, an HNSW index. */
async function fill(engine: Engine) {
  const coll = await engine.createCollection({
    dbName: 'default',
    name: 'c',
    fields: [field({ name: 'id', dataType: 'Int64', isPrimaryKey: true }), field({ name: 'vec', dataType: 'FloatVector', dim: DIM })],
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
    const cols = new Map([
      ['id', { kind: 'int64' as const, data: ids }],
      ['vec', { kind: 'vector' as const, dim: DIM, data: vectors.slice(from * DIM, (from + ROWS_PER_SEGMENT) * DIM) }],
    ]);
    await engine.insert(coll.id, undefined, cols, ROWS_PER_SEGMENT, false);
    await engine.flushCollection(coll.id);
  }
  const vec = engine.catalog.collection(coll.id)!.schema.fields.find((f) => f.name === 'vec')!;
  await engine.createIndex(coll.id, vec, 'vec_idx', { indexType: 'HNSW', metric: 'L2', userParams: {}, buildParams: { M: 16, efConstruction: 200 } });
  await engine.waitForIndexes(coll.id);
  await engine.load(coll.id, undefined);
  await engine.waitLoaded(coll.id);
  return { id: coll.id, vec, queries: vectors.slice(0, 20 * DIM) };
}

/** Deletes a few rows, flushes, and merges every segment into one (a manual compaction). */
async function compactAll(engine: Engine, c: Awaited<ReturnType<typeof fill>>) {
  await engine.delete(c.id, undefined, 'id in [0, 1, 2, 1500, 3333]', undefined);
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
      const file = s.indexes[0]!;
      // The task id is the build id and the dispatch epoch the index version.
      expect(file.version).toBe(1);
      expect(file.files).toHaveLength(1);
      expect(file.files[0]).toContain(`index_files/${file.buildId}/1/`);
      expect((await store.stat(file.files[0]!))?.size).toBe(file.size);
    }
    const counted = async () => (await registry.getSingleMetric('quiver_datanode_tasks_total')!.get()).values;
    expect(await counted()).toContainEqual(expect.objectContaining({ labels: { type: 'index_build', outcome: 'completed' }, value: SEGMENTS }));

    // The embedded mode over the same data answers the same.
    const embedded = await openEngine(new MemoryMetaKV(), new MemoryObjectStore());
    const local = await fill(embedded.engine);
    expect(await searchIds(engine, remote)).toEqual(await searchIds(embedded.engine, local));

    // Compaction: the merge runs on the node (it reads the source binlogs and writes the target's), the
    // result is one segment with the embedded compaction's rows and answers.
    await compactAll(engine, remote);
    await compactAll(embedded.engine, local);
    expect(await counted()).toContainEqual(expect.objectContaining({ labels: { type: 'compaction_merge', outcome: 'completed' }, value: 1 }));
    const [target] = engine.flushedSegments(remote.id);
    expect(engine.flushedSegments(remote.id)).toHaveLength(1);
    expect(target!.numRows).toBe(SEGMENTS * ROWS_PER_SEGMENT - 5);
    for (const logs of Object.values(target!.binlogs)) expect((await store.stat(logs[0]!.path))?.size).toBe(logs[0]!.size);
    // The target's own index was built by the node's merge task (not in this process), under its version.
    expect(target!.indexes).toHaveLength(1);
    expect(mergeBuilt).toEqual([target!.indexes[0]!.buildId]);
    expect(target!.indexes[0]!.files[0]).toContain(`index_files/${target!.indexes[0]!.buildId}/1/`);
    expect(await counted()).toContainEqual(expect.objectContaining({ labels: { type: 'index_build', outcome: 'completed' }, value: SEGMENTS }));
    const count = (e: Engine, id: number) => e.count(id, { filter: '', partitionNames: [] });
    expect(await count(engine, remote.id)).toBe(await count(embedded.engine, local.id));
    expect(await searchIds(engine, remote)).toEqual(await searchIds(embedded.engine, local));
  });
});
