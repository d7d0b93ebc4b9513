/**
 * Restore start and coordinator-start reconcile, over a real Engine (MemoryMetaKV, MemoryObjectStore, a
 * local WAL in a temp dir) and a fake clock. A "restart" closes every instance and opens new ones over
 * the same MetaKV and objects; a "crash" is a MetaKV write that throws (before or after it applied).
 */

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { until } from '../../testing/wait.js';
import { FakeClock } from '../../common/clock.js';
import { isQuiverError, quiverError } from '../../common/errors.js';
import { MemoryMetaKV } from '../../meta/memory-kv.js';
import type { Compare, KvEntry, MetaKV, Op, ScanOptions, TxnResult } from '../../meta/meta-kv.js';
import { Engine } from '../../wiring/engine.js';
import { InProcessWorkerPool } from '../../datanode/copy-worker/index.js';
import type { FieldSchema } from '../../schema/types.js';
import { MemoryObjectStore } from '../../storage/memory-object-store.js';
import { openLocalWal, type LocalWal } from '../../wal/wal.js';
import { DEFAULT_COPY_OPTIONS, type CopyJob } from '../copy/index.js';
import { RestoreService, type RestoreFaults } from './restore-service.js';
import { SNAPSHOT_DEFAULTS, SnapshotManager } from './snapshot-manager.js';

const log = pino({ level: 'silent' });

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

/** A MetaKV whose `crashAt`-th write (1-based, counting put/delete/txn) throws, before or after applying it. */
class CrashingKV implements MetaKV {
  writes = 0;
  crashAt = 0;
  mode: 'before' | 'after' = 'before';
  constructor(readonly inner: MetaKV) {}

  async #write<T>(apply: () => Promise<T>): Promise<T> {
    this.writes++;
    if (this.crashAt > 0 && this.writes === this.crashAt) {
      if (this.mode === 'after') await apply();
      throw quiverError('ServiceNotReady', `injected crash at write ${this.writes} (${this.mode})`);
    }
    return apply();
  }
  get(key: string): Promise<KvEntry | undefined> {
    return this.inner.get(key);
  }
  put(key: string, value: Uint8Array | string): Promise<number> {
    return this.#write(() => this.inner.put(key, value));
  }
  delete(key: string): Promise<boolean> {
    return this.#write(() => this.inner.delete(key));
  }
  scan(prefix: string, opts?: ScanOptions): Promise<KvEntry[]> {
    return this.inner.scan(prefix, opts);
  }
  txn(compares: readonly Compare[], success: readonly Op[], failure?: readonly Op[]): Promise<TxnResult> {
    return this.#write(() => this.inner.txn(compares, success, failure));
  }
  revision(): Promise<number> {
    return this.inner.revision();
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}

interface Node {
  readonly engine: Engine;
  readonly wal: LocalWal;
  readonly snapshots: SnapshotManager;
  readonly restores: RestoreService;
  readonly init: { pendingRemoved: number; targetsRemoved: number; pinsReleased: number };
}

class World {
  readonly clock = new FakeClock(1_800_000_000_000);
  readonly mem = new MemoryMetaKV();
  readonly kv = new CrashingKV(this.mem);
  readonly store = new MemoryObjectStore();
  faults: RestoreFaults = {};
  node!: Node;
  constructor(readonly dir: string) {}

  /** Opens every instance over the persisted state; reconcile runs as on a coordinator start. */
  async open(): Promise<Node> {
    const wal = await openLocalWal(join(this.dir, 'wal'));
    const engine = await Engine.open(
      { kv: this.kv, store: this.store, wal, clock: this.clock, log },
      { sealRows: 1000, flushIdleMs: 60_000, backgroundIntervalMs: 1000, tmpDir: join(this.dir, 'tmp'), indexBuildInline: true, autoCompaction: false },
    );
    const snapshots = new SnapshotManager({ host: engine, kv: this.kv, store: this.store, clock: this.clock, log }, SNAPSHOT_DEFAULTS);
    const { pendingRemoved } = await snapshots.init();
    const workers = new InProcessWorkerPool({ store: this.store });
    const restores = new RestoreService(
      { host: engine, snapshots, kv: this.kv, store: this.store, clock: this.clock, log, workers },
      DEFAULT_COPY_OPTIONS,
      this.faults,
    );
    const r = await restores.init();
    this.node = { engine, wal, snapshots, restores, init: { pendingRemoved, ...r } };
    return this.node;
  }

  /** Drops every in-memory instance (a kill) and opens new ones. */
  async restart(): Promise<Node> {
    this.kv.crashAt = 0;
    await this.node.restores.stop();
    await this.node.engine.close();
    await this.node.wal.close();
    return this.open();
  }

  async close(): Promise<void> {
    this.kv.crashAt = 0;
    await this.node.restores.stop();
    await this.node.engine.close();
    await this.node.wal.close();
  }
}

async function seeded(dir: string): Promise<World> {
  const w = new World(dir);
  const { engine, snapshots } = await w.open();
  await engine.createCollection({
    dbName: 'default',
    name: 'src',
    fields: [field({ name: 'id', dataType: 'Int64', isPrimaryKey: true }), field({ name: 'v', dataType: 'FloatVector', dim: 2 })],
    description: '',
    enableDynamicField: false,
    autoId: false,
    shardsNum: 1,
    consistencyLevel: 'Bounded',
    properties: {},
    numPartitions: 0,
  });
  const id = engine.catalog.resolveCollection('default', 'src').id;
  for (const batch of [[1n, 2n], [3n]]) {
    await engine.insert(
      id,
      undefined,
      new Map([
        ['id', { kind: 'int64', data: BigInt64Array.from(batch) }],
        ['v', { kind: 'vector', dim: 2, data: Float32Array.from(batch.flatMap((x) => [Number(x), 1])) }],
      ]),
      batch.length,
      false,
    );
    await engine.flushCollection(id);
  }
  await snapshots.create('default', 'src', 'snap', '', 0);
  return w;
}

const START = { sourceDb: 'default', sourceCollection: 'src', name: 'snap', targetDb: 'default', targetCollection: 'dst' };

/** Drives a job with the node's own loops (no timers): checker, inspector, worker pool. */
async function drive(n: Node, jobId: number): Promise<CopyJob> {
  for (let round = 0; round < 20; round++) {
    await n.restores.checker.tick();
    const job = await n.restores.jobs.getJob(jobId);
    if (job === undefined || job.state === 'Completed' || job.state === 'Failed') return job!;
    await n.restores.inspector.tick();
    await (n.restores.workers as InProcessWorkerPool).idle();
    await n.restores.inspector.tick();
  }
  throw new Error(`job ${jobId} did not finish`);
}

/** Everything a restore start may leave for one target: either nothing, or a complete Pending job. */
function startState(n: Node) {
  const db = n.engine.catalog.requireDatabase('default');
  const targets = n.engine.catalog.allCollections().filter((c) => c.name === 'dst' && c.dbId === db.id);
  const pins = n.snapshots.activePinsAll().filter((p) => p.jobId !== undefined);
  return { targets, pins };
}

describe('restore start (one txn) and reconcile', () => {
  const dirs: string[] = [];
  let world: World | undefined;
  afterEach(async () => {
    await world?.close();
    world = undefined;
    for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
  });
  const mkdir = async () => {
    const d = await mkdtemp(join(tmpdir(), 'quiver-restore-start-'));
    dirs.push(d);
    return d;
  };

  it('commits the target, its indexes, the pin (with the job id) and the Pending job in one txn', async () => {
    world = await seeded(await mkdir());
    const n = world.node;
    const before = world.kv.writes;
    const job = await n.restores.restore(START);
    // Ids come from pre-allocated blocks; the start itself is exactly one write.
    expect(world.kv.writes - before).toBe(1);
    expect(job).toMatchObject({ state: 'Pending', targetCollectionName: 'dst', snapshotName: 'snap' });
    expect(job.mappings).toHaveLength(2);
    const { targets, pins } = startState(n);
    expect(targets.map((c) => c.state)).toEqual(['Restoring']);
    expect(pins).toEqual([expect.objectContaining({ id: job.pinId, jobId: job.id })]);
    await expect(n.snapshots.drop('default', 'src', 'snap')).rejects.toSatisfy((e: unknown) => isQuiverError(e, 'SnapshotPinned'));
    const done = await drive(n, job.id);
    expect(done.state).toBe('Completed');
    expect(n.engine.catalog.resolveCollection('default', 'dst').state).toBe('Created');
    expect(n.engine.catalog.segments(job.targetCollectionId).map((s) => s.state)).toEqual(['Flushed', 'Flushed']);
    expect(startState(n).pins).toEqual([]);
    expect(n.engine.catalog.segments(job.targetCollectionId).reduce((a, s) => a + s.numRows, 0)).toBe(3);
    expect(n.engine.flushedSegments(job.targetCollectionId)).toHaveLength(2); // the runtime was set up
  });

  it('a crash at every write of restore start leaves either nothing or a complete Pending job, which then completes', async () => {
    // Count the writes of one start first.
    const probe = await seeded(await mkdir());
    const before = probe.kv.writes;
    await probe.node.restores.restore(START);
    const writes = probe.kv.writes - before;
    await probe.close();
    expect(writes).toBeGreaterThanOrEqual(1);

    const outcomes: string[] = [];
    for (let i = 1; i <= writes; i++) {
      for (const mode of ['before', 'after'] as const) {
        world = await seeded(await mkdir());
        world.kv.mode = mode;
        world.kv.crashAt = world.kv.writes + i;
        await expect(world.node.restores.restore(START)).rejects.toThrow(/injected crash/);
        const n = await world.restart();
        const { targets, pins } = startState(n);
        const jobs = await n.restores.jobs.listJobs();
        if (jobs.length === 0) {
          outcomes.push('nothing');
          expect(targets).toEqual([]);
          expect(pins).toEqual([]);
          // The name is free and the snapshot droppable: a new start works.
          const job = await n.restores.restore(START);
          expect((await drive(n, job.id)).state).toBe('Completed');
        } else {
          outcomes.push('pending job');
          expect(jobs).toHaveLength(1);
          const job = jobs[0]!;
          expect(job.state).toBe('Pending');
          expect(targets.map((c) => [c.id, c.state])).toEqual([[job.targetCollectionId, 'Restoring']]);
          expect(pins.map((p) => [p.id, p.jobId])).toEqual([[job.pinId, job.id]]);
          expect((await drive(n, job.id)).state).toBe('Completed');
        }
        await world.close();
        world = undefined;
      }
    }
    expect(outcomes).toContain('nothing');
    expect(outcomes).toContain('pending job');
  });

  it('fault hook: the start pauses right before its one txn; a kill there leaves nothing, and the pause ends on the clock', async () => {
    world = await seeded(await mkdir());
    world.faults = { faultPauseBeforeStartCommitMs: 500 };
    let n = await world.restart();
    const writes = world.kv.writes;
    const paused = n.restores.restore(START);
    await until(() => world!.clock.sleeping() > 0, { what: 'the restore start to reach its pause' });
    // Every check and id is done, nothing is written: a kill here must leave nothing.
    expect(world.kv.writes).toBe(writes);
    expect(startState(n)).toEqual({ targets: [], pins: [] });
    world.clock.advance(500);
    const job = await paused;
    expect(world.kv.writes - writes).toBe(1);
    expect((await drive(n, job.id)).state).toBe('Completed');

    // The kill: the start is paused before its txn when the process goes; the restarted node has nothing.
    const second = { ...START, targetCollection: 'dst2' };
    const killed = n.restores.restore(second);
    killed.catch(() => undefined);
    await until(() => world!.clock.sleeping() > 0, { what: 'the second start to reach its pause' });
    // The old start stays paused for good (this test never advances the clock again): a dead process.
    world.faults = {};
    n = await world.restart();
    expect(n.engine.catalog.allCollections().filter((c) => c.name === 'dst2')).toEqual([]);
    expect(n.snapshots.activePinsAll().filter((p) => p.jobId !== undefined)).toEqual([]);
    expect((await n.restores.jobs.listJobs()).map((j) => j.targetCollectionName)).toEqual(['dst']);
    const again = await n.restores.restore(second);
    expect((await drive(n, again.id)).state).toBe('Completed');
  });

  it('waitFor: resolves on the job-finished event (no polling), at once for an ended job, and times out on the clock', async () => {
    world = await seeded(await mkdir());
    const n = world.node;
    const job = await n.restores.restore(START);
    const waiting = n.restores.waitFor(job.id, 1000);
    expect(n.restores.onJobFinished).toHaveLength(1);
    await drive(n, job.id);
    expect((await waiting).state).toBe('Completed');
    expect(n.restores.onJobFinished).toHaveLength(0);
    expect((await n.restores.waitFor(job.id, 1000)).state).toBe('Completed');
    const stuck = await n.restores.restore({ ...START, targetCollection: 'dst2' });
    const timedOut = n.restores.waitFor(stuck.id, 1000);
    await until(() => world!.clock.sleeping() > 0, { what: 'waitFor to arm its timeout' });
    world.clock.advance(1001);
    await expect(timedOut).rejects.toThrow(/did not finish within 1000 ms/);
    expect(n.restores.onJobFinished).toHaveLength(0);
  });

  it('reconcile: a Restoring collection without a job is removed and its name is reusable', async () => {
    world = await seeded(await mkdir());
    const job = await world.node.restores.restore(START);
    // What an older version (or a lost job record) leaves: the target without its job and pin.
    await world.mem.delete(`quiver/copyjob/${job.id}`);
    const n = await world.restart();
    expect(n.init.targetsRemoved).toBe(1);
    expect(n.init.pinsReleased).toBe(1);
    expect(startState(n)).toEqual({ targets: [], pins: [] });
    expect(n.engine.catalog.segments(job.targetCollectionId)).toEqual([]);
    const again = await n.restores.restore(START);
    expect((await drive(n, again.id)).state).toBe('Completed');
  });

  it('reconcile: a pin whose job is gone is released, so dropSnapshot works', async () => {
    world = await seeded(await mkdir());
    const rec = await world.node.snapshots.describe('default', 'src', 'snap');
    // A pin taken for a job that never got saved (the pre-fix four-commit start crashing in between).
    await world.node.snapshots.records.putPin(world.node.snapshots.jobPin(rec, 999_001, 999_002));
    const n = await world.restart();
    expect(n.init.pinsReleased).toBe(1);
    await n.snapshots.drop('default', 'src', 'snap');
    expect(await n.snapshots.list('default', 'src')).toEqual([]);
  });

  it('reconcile: a user pin (no job) is kept', async () => {
    world = await seeded(await mkdir());
    await world.node.snapshots.pin('default', 'src', 'snap', 0);
    const n = await world.restart();
    expect(n.init.pinsReleased).toBe(0);
    await expect(n.snapshots.drop('default', 'src', 'snap')).rejects.toSatisfy((e: unknown) => isQuiverError(e, 'SnapshotPinned'));
  });

  it('reconcile: a PENDING snapshot left by a crashed coordinator is removed at start and the name can be created again', async () => {
    world = await seeded(await mkdir());
    const coll = world.node.engine.catalog.resolveCollection('default', 'src');
    const key = `snapshots/${coll.id}/metadata/4243.json`;
    expect(
      await world.node.snapshots.records.createPending({
        id: 4243,
        name: 'half',
        description: '',
        collectionId: coll.id,
        collectionName: 'src',
        dbName: 'default',
        state: 'PENDING',
        createTs: '',
        createdAtMs: world.clock.nowMs(),
        metadataKey: key,
        manifestKeys: [],
        segmentIds: [],
        buildIds: [],
        partitionNames: [],
        totalRows: 0,
        totalBytes: 0,
        compactionProtectUntilMs: 0,
      }),
    ).toBe(true);
    await world.store.put(key, new TextEncoder().encode('{}'));
    const n = await world.restart();
    expect(n.init.pendingRemoved).toBe(1);
    expect(await n.snapshots.records.get(coll.id, 'half')).toBeUndefined();
    expect(await world.store.stat(key)).toBeUndefined();
    expect((await n.snapshots.create('default', 'src', 'half', '', 0)).state).toBe('COMMITTED');
  });

  it('a stale PENDING record never makes createSnapshot of that name fail (replaced at once, no restart, no timeout)', async () => {
    world = await seeded(await mkdir());
    const n = world.node;
    const coll = n.engine.catalog.resolveCollection('default', 'src');
    expect(
      await n.snapshots.records.createPending({
        id: 4244,
        name: 'again',
        description: '',
        collectionId: coll.id,
        collectionName: 'src',
        dbName: 'default',
        state: 'PENDING',
        createTs: '',
        createdAtMs: world.clock.nowMs(),
        metadataKey: `snapshots/${coll.id}/metadata/4244.json`,
        manifestKeys: [],
        segmentIds: [],
        buildIds: [],
        partitionNames: [],
        totalRows: 0,
        totalBytes: 0,
        compactionProtectUntilMs: 0,
      }),
    ).toBe(true);
    const rec = await n.snapshots.create('default', 'src', 'again', '', 0);
    expect(rec).toMatchObject({ state: 'COMMITTED' });
    expect(rec.id).not.toBe(4244);
    // A COMMITTED one still refuses the name.
    await expect(n.snapshots.create('default', 'src', 'again', '', 0)).rejects.toSatisfy((e: unknown) => isQuiverError(e, 'SnapshotAlreadyExists'));
  });

  it('a drop that wins the name lock first makes the restore start fail cleanly, leaving nothing', async () => {
    world = await seeded(await mkdir());
    const n = world.node;
    const [dropped, started] = await Promise.allSettled([n.snapshots.drop('default', 'src', 'snap'), n.restores.restore(START)]);
    expect(dropped.status).toBe('fulfilled');
    expect(started.status).toBe('rejected');
    expect(startState(n)).toEqual({ targets: [], pins: [] });
    expect(await n.restores.jobs.listJobs()).toEqual([]);
  });

  it('a pinned snapshot of a dropped collection is found by the old name: describe, list, restore, unpin, drop (also after a restart)', async () => {
    world = await seeded(await mkdir());
    const pin = await world.node.snapshots.pin('default', 'src', 'snap', 0);
    await world.node.engine.dropCollection('default', 'src');
    const n = await world.restart();
    expect((await n.snapshots.describe('default', 'src', 'snap')).name).toBe('snap');
    expect((await n.snapshots.list('default', 'src')).map((r) => r.name)).toEqual(['snap']);
    // Before the fix: "collection not found[database=default][collection=src]".
    const job = await n.restores.restore(START);
    expect((await drive(n, job.id)).state).toBe('Completed');
    expect(n.engine.catalog.segments(job.targetCollectionId).reduce((a, s) => a + s.numRows, 0)).toBe(3);
    // A new collection of the same name: its own snapshot of that name wins; the old one stays reachable
    // by the old name only while the new collection has no snapshot of that name.
    await n.engine.createCollection({
      dbName: 'default',
      name: 'src',
      fields: [field({ name: 'id', dataType: 'Int64', isPrimaryKey: true }), field({ name: 'v', dataType: 'FloatVector', dim: 2 })],
      description: '',
      enableDynamicField: false,
      autoId: false,
      shardsNum: 1,
      consistencyLevel: 'Bounded',
      properties: {},
      numPartitions: 0,
    });
    const old = await n.snapshots.describe('default', 'src', 'snap');
    expect(old.collectionId).toBe(job.sourceCollectionId);
    await expect(n.snapshots.drop('default', 'src', 'snap')).rejects.toSatisfy((e: unknown) => isQuiverError(e, 'SnapshotPinned'));
    const fresh = await n.snapshots.create('default', 'src', 'snap', '', 0);
    expect((await n.snapshots.describe('default', 'src', 'snap')).id).toBe(fresh.id);
    expect((await n.snapshots.list('default', 'src')).map((r) => r.id)).toEqual([fresh.id]);
    await n.snapshots.drop('default', 'src', 'snap');
    expect((await n.snapshots.describe('default', 'src', 'snap')).id).toBe(old.id);
    await n.snapshots.unpin(pin.id);
    await n.snapshots.drop('default', 'src', 'snap');
    await expect(n.snapshots.describe('default', 'src', 'snap')).rejects.toSatisfy((e: unknown) => isQuiverError(e, 'SnapshotNotFound'));
    expect(await n.snapshots.records.list(old.collectionId)).toEqual([]);
  });

  it('no live collection and no snapshot of a dropped one: the collection-not-found error as before', async () => {
    world = await seeded(await mkdir());
    await expect(world.node.snapshots.describe('default', 'nope', 'snap')).rejects.toSatisfy((e: unknown) => isQuiverError(e, 'CollectionNotFound'));
    await expect(world.node.snapshots.list('default', 'nope')).rejects.toSatisfy((e: unknown) => isQuiverError(e, 'CollectionNotFound'));
    await expect(world.node.restores.restore({ ...START, sourceCollection: 'nope' })).rejects.toSatisfy((e: unknown) =>
      isQuiverError(e, 'CollectionNotFound'),
    );
  });

  it('rollback removes the target, its copied files and the pin; the name is free again', async () => {
    world = await seeded(await mkdir());
    const n = world.node;
    const job = await n.restores.restore(START);
    await n.restores.checker.tick(); // Pending → Executing: Importing records registered
    expect(n.engine.catalog.segments(job.targetCollectionId).map((s) => s.state)).toEqual(['Importing', 'Importing']);
    // Time out the job before any task ran.
    world.clock.advance(job.timeoutMs + 1);
    const failed = await drive(n, job.id);
    expect(failed.state).toBe('Failed');
    expect(startState(n)).toEqual({ targets: [], pins: [] });
    expect(n.engine.catalog.segments(job.targetCollectionId)).toEqual([]);
    expect((await world.store.list(`insert_log/${job.targetCollectionId}/`)).length).toBe(0);
    await n.snapshots.drop('default', 'src', 'snap');
  });
});
