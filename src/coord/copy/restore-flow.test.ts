/**
 * The restore machinery end to end, in process: CopyJobChecker + TaskInspector + InProcessWorkerPool
 * over MemoryMetaKV and MemoryObjectStore, with fake segments whose files have distinct bytes.
 */

import { describe, expect, it } from 'vitest';
import { FakeClock } from '../../common/clock.js';
import { MemoryMetaKV } from '../../meta/memory-kv.js';
import { FaultyObjectStore, failKeysWithPrefix } from '../../storage/faulty-object-store.js';
import { MemoryObjectStore } from '../../storage/memory-object-store.js';
import type { ObjectStore } from '../../storage/object-store.js';
import { InProcessWorkerPool, type WorkerNodeSpec } from '../../datanode/copy-worker/in-process-worker-pool.js';
import { CopyJobChecker } from './checker.js';
import { CopyJobStore } from './copy-job-store.js';
import {
  bytesOf,
  createJob,
  GatedObjectStore,
  idAllocator,
  mappingOf,
  putSourceFiles,
  MemorySources,
  RecordingTargets,
  resolvedOf,
  sourceSegment,
  type Harness,
} from './copy.test-util.js';
import { TaskInspector } from './inspector.js';
import { jobProgress } from './progress.js';
import { copyPlanOf, rewriteSegmentRecord, sourceKeysOf, targetKeysOf } from '../../storage/snapshot-format/segment-rewrite.js';
import { DEFAULT_COPY_OPTIONS, type CopyJob, type CopyOptions, type ResolvedMapping } from './types.js';

interface Stack {
  readonly store: CopyJobStore;
  readonly pool: InProcessWorkerPool;
  readonly checker: CopyJobChecker;
  readonly inspector: TaskInspector;
  readonly finalizer: RecordingTargets;
}

/** One coordinator's worth of instances over shared persistent state (kv + objects). */
function stack(
  kv: MemoryMetaKV,
  objects: ObjectStore,
  clock: FakeClock,
  opts: { options?: Partial<CopyOptions>; nodes?: readonly WorkerNodeSpec[]; idStart?: number; finalizer?: RecordingTargets; sources?: MemorySources } = {},
): Stack {
  const options = { ...DEFAULT_COPY_OPTIONS, ...opts.options };
  const store = new CopyJobStore({ kv, allocId: idAllocator(opts.idStart), viewTasks: true });
  const sources = opts.sources ?? opts.finalizer?.sources ?? new MemorySources();
  const finalizer = opts.finalizer ?? new RecordingTargets(sources);
  // Event wiring, as the server will do it: worker done → inspector; task done → checker; tasks created → inspector.
  let inspector: TaskInspector | undefined;
  const pool = new InProcessWorkerPool({ store: objects, sources, nodes: opts.nodes, onTaskFinished: () => void inspector?.kick() });
  const checker = new CopyJobChecker({ store, targets: finalizer, workers: pool, clock, options, onTasksCreated: () => void inspector?.kick() });
  inspector = new TaskInspector({ store, workers: pool, clock, intervalMs: options.checkIntervalMs, onTaskDone: () => void checker?.kick() });
  return { store, pool, checker, inspector, finalizer };
}

async function drive(s: Stack, jobId: number, roundsMax = 20): Promise<CopyJob> {
  for (let round = 0; round < roundsMax; round++) {
    await s.checker.tick();
    const job = await s.store.getJob(jobId);
    if (job === undefined || job.state === 'Completed' || job.state === 'Failed') return job!;
    await s.inspector.tick();
    await s.pool.idle();
    await s.inspector.tick();
  }
  throw new Error(`job ${jobId} did not finish in ${roundsMax} rounds`);
}

async function world(segmentIds: readonly number[]) {
  const kv = new MemoryMetaKV();
  const clock = new FakeClock();
  const objects = new MemoryObjectStore({ clock });
  const segments = segmentIds.map((id) => sourceSegment(id, 10 + id));
  const sourceKeys = await putSourceFiles(objects, segments);
  const ms = segments.map((s) => mappingOf(s));
  const rs = segments.map((s) => resolvedOf(s));
  return { kv, clock, objects, ms, rs, sourceKeys, sources: new MemorySources(segments) };
}

function asHarness(kv: MemoryMetaKV, clock: FakeClock, store: CopyJobStore): Harness {
  return { kv, clock, store, options: DEFAULT_COPY_OPTIONS };
}

/** Every target file exists with its source's bytes, and the store holds nothing else besides the sources. */
async function expectCopied(objects: ObjectStore, ms: readonly ResolvedMapping[], sourceKeys: readonly string[]): Promise<void> {
  for (const m of ms) {
    for (const { src, dst } of copyPlanOf(m)) expect(await objects.get(dst), dst).toEqual(bytesOf(src));
  }
  const all = (await objects.list('')).map((o) => o.key).sort();
  expect(all).toEqual([...sourceKeys, ...targetKeysOf(ms)].sort());
}

describe('restore flow', () => {
  it('copies every file of every segment and completes with the target records', async () => {
    const w = await world([1, 2, 3, 4, 5]);
    const s = stack(w.kv, w.objects, w.clock, { sources: w.sources, options: { maxSegmentsPerTask: 2 } });
    const job = await createJob(asHarness(w.kv, w.clock, s.store), w.ms);
    const done = await drive(s, job.id);
    expect(done.state).toBe('Completed');
    expect(jobProgress(done)).toBe(100);
    await expectCopied(w.objects, w.rs, w.sourceKeys);
    expect(s.finalizer.completed.map((j) => j.id)).toEqual([job.id]);
    const tasks = await s.store.listTasks(job.id);
    expect(tasks.flatMap((t) => t.results)).toEqual(w.rs.map((m) => ({ targetSegmentId: m.targetSegmentId, numRows: m.source.numRows, filesCopied: 8 })));
    // The records publish derives (source manifest + id rewrite) point at files that exist.
    for (const m of w.rs) for (const k of sourceKeysOf(rewriteSegmentRecord(m, 'Flushed'))) expect(await w.objects.stat(k)).toBeDefined();
    expect(s.finalizer.rolledBack).toHaveLength(0);
  });

  it('driven by kicks alone (fallback interval of an hour), a small restore completes without waiting for a tick', async () => {
    const w = await world([1, 2, 3]);
    const finalizer = new RecordingTargets(w.sources);
    let completed!: () => void;
    const completedP = new Promise<void>((r) => (completed = r));
    const original = finalizer.publish.bind(finalizer);
    finalizer.publish = async (job) => {
      await original(job);
      completed();
    };
    const s = stack(w.kv, w.objects, w.clock, { sources: w.sources, options: { checkIntervalMs: 3_600_000, maxSegmentsPerTask: 1 }, finalizer });
    s.checker.start();
    s.inspector.start();
    try {
      const job = await createJob(asHarness(w.kv, w.clock, s.store), w.ms);
      void s.checker.kick(); // "job created"
      // No tick can fire within the test timeout (the fallback is an hour): only the kicks can finish it.
      await completedP;
      await s.checker.kick(); // let the pass that called complete() flip the state
      expect((await s.store.getJob(job.id))!.state).toBe('Completed');
      await expectCopied(w.objects, w.rs, w.sourceKeys);
    } finally {
      await s.checker.stop();
      await s.inspector.stop();
      await s.checker.stop(); // idempotent
    }
  });

  it('worker loss: the task is re-queued and completes on another node', async () => {
    const w = await world([1, 2]);
    const gated = new GatedObjectStore(w.objects, 0);
    const s = stack(w.kv, gated, w.clock, {
      sources: w.sources,
      nodes: [
        { nodeId: 'node-1', slots: 1 },
        { nodeId: 'node-2', slots: 1 },
      ],
    });
    const job = await createJob(asHarness(w.kv, w.clock, s.store), w.ms);
    await s.checker.tick();
    await s.inspector.tick();
    const [t] = await s.store.listTasks(job.id);
    expect(t).toMatchObject({ state: 'InProgress', nodeId: 'node-1', version: 1 });
    const removed = s.pool.removeNode('node-1');
    await s.inspector.tick();
    expect((await s.store.listTasks(job.id))[0]).toMatchObject({ state: 'InProgress', nodeId: 'node-2', version: 2, attempts: 2 });
    gated.open();
    await removed;
    const done = await drive(s, job.id);
    expect(done.state).toBe('Completed');
    await expectCopied(w.objects, w.rs, w.sourceKeys);
  });

  it('slot limits hold with a real pool: never more InProgress tasks on a node than its slots', async () => {
    const w = await world([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    const gated = new GatedObjectStore(w.objects, 0);
    const nodes = [
      { nodeId: 'a', slots: 2 },
      { nodeId: 'b', slots: 3 },
    ];
    const s = stack(w.kv, gated, w.clock, { sources: w.sources, nodes, options: { maxSegmentsPerTask: 1 } });
    const job = await createJob(asHarness(w.kv, w.clock, s.store), w.ms);
    await s.checker.tick();
    for (let i = 0; i < 3; i++) {
      await s.inspector.tick();
      const perNode = new Map<string, number>();
      for (const t of await s.store.listTasks(job.id)) if (t.state === 'InProgress') perNode.set(t.nodeId!, (perNode.get(t.nodeId!) ?? 0) + 1);
      expect(Object.fromEntries(perNode)).toEqual({ a: 2, b: 3 });
      for (const n of s.pool.nodes()) expect(n.usedSlots).toBeLessThanOrEqual(n.slots);
    }
    gated.open();
    expect((await drive(s, job.id)).state).toBe('Completed');
    await expectCopied(w.objects, w.rs, w.sourceKeys);
  });

  it('crash mid-job: new instances over the same MetaKV and objects finish it, files complete and identical', async () => {
    const w = await world([1, 2, 3, 4]);
    // Instance set A: its copies stop after 5 files (a gate that never opens: the process died).
    const dying = new GatedObjectStore(w.objects, 5);
    const a = stack(w.kv, dying, w.clock, { sources: w.sources, options: { maxSegmentsPerTask: 2 } });
    const job = await createJob(asHarness(w.kv, w.clock, a.store), w.ms);
    await a.checker.tick();
    await a.inspector.tick();
    expect((await a.store.listTasks(job.id)).map((t) => t.state)).toEqual(['InProgress', 'InProgress']);
    const copiedBeforeCrash = (await w.objects.list('')).length - w.sourceKeys.length;
    expect(copiedBeforeCrash).toBe(5);

    // Instance set B: fresh checker, inspector and pool; only kv + objects survive.
    const b = stack(w.kv, w.objects, w.clock, { sources: w.sources, options: { maxSegmentsPerTask: 2 }, idStart: 90_000 });
    const done = await drive(b, job.id);
    expect(done.state).toBe('Completed');
    const tasks = await b.store.listTasks(job.id);
    expect(tasks.map((t) => [t.state, t.version])).toEqual([
      ['Completed', 2],
      ['Completed', 2],
    ]);
    await expectCopied(w.objects, w.rs, w.sourceKeys);
    expect(b.finalizer.completed).toHaveLength(1);
    expect(a.finalizer.completed).toHaveLength(0);
    expect(tasks.flatMap((t) => t.results.map((r) => r.targetSegmentId))).toEqual(w.ms.map((m) => m.targetSegmentId));
  });

  it('faulty object store: the task fails naming the key, the job fails, rollback gets (and deletes) every target key', async () => {
    const w = await world([1, 2, 3]);
    const badDst = copyPlanOf(w.rs[1]!)[2]!.dst;
    const faulty = new FaultyObjectStore(w.objects, { failOn: failKeysWithPrefix('copy', badDst) });
    const finalizer = new RecordingTargets(w.sources);
    finalizer.onRollback = async (keys) => {
      for (const k of keys) await w.objects.delete(k);
    };
    const s = stack(w.kv, faulty, w.clock, { sources: w.sources, options: { maxSegmentsPerTask: 1 }, finalizer });
    const job = await createJob(asHarness(w.kv, w.clock, s.store), w.ms);
    const failed = await drive(s, job.id);
    expect(failed.state).toBe('Failed');
    expect(failed.reason).toContain(JSON.stringify(badDst));
    expect(failed.reason).toMatch(/failed after 4 attempts/);
    expect(faulty.injectedFailures).toBe(4);
    const tasks = await s.store.listTasks(job.id);
    expect(tasks.every((t) => t.state === 'Completed' || t.state === 'Failed')).toBe(true);
    expect(tasks.find((t) => t.mappings[0]!.targetSegmentId === w.ms[1]!.targetSegmentId)!.reason).toContain(badDst);
    expect(finalizer.rolledBack).toHaveLength(1);
    expect(new Set(finalizer.rolledBack[0]!.keys)).toEqual(new Set(targetKeysOf(w.rs)));
    expect(finalizer.completed).toHaveLength(0);
    // Rolled back: only the sources remain.
    expect((await w.objects.list('')).map((o) => o.key).sort()).toEqual([...w.sourceKeys].sort());
  });

  it('two full coordinators over one store: each job is finalized exactly once', async () => {
    const w = await world([1, 2, 3, 4, 5, 6]);
    const finalizer = new RecordingTargets(w.sources);
    const pool = new InProcessWorkerPool({ store: w.objects, sources: w.sources, nodes: [{ nodeId: 'n', slots: 2 }] });
    const x = stack(w.kv, w.objects, w.clock, { sources: w.sources, options: { maxSegmentsPerTask: 2 }, finalizer });
    const store = new CopyJobStore({ kv: w.kv, allocId: idAllocator(50_000) });
    const mk = () => ({
      checker: new CopyJobChecker({
        store,
        targets: finalizer,
        workers: pool,
        clock: w.clock,
        options: { ...DEFAULT_COPY_OPTIONS, maxSegmentsPerTask: 2 },
      }),
      inspector: new TaskInspector({ store, workers: pool, clock: w.clock }),
    });
    const [p, q] = [mk(), mk()];
    const job = await createJob(asHarness(w.kv, w.clock, x.store), w.ms);
    for (let round = 0; round < 20; round++) {
      await Promise.all([p.checker.tick(), q.checker.tick()]);
      await Promise.all([p.inspector.tick(), q.inspector.tick()]);
      await pool.idle();
      for (const n of pool.nodes()) expect(n.usedSlots).toBeLessThanOrEqual(n.slots);
    }
    expect((await store.getJob(job.id))!.state).toBe('Completed');
    expect(finalizer.completed).toHaveLength(1);
    await expectCopied(w.objects, w.rs, w.sourceKeys);
  });
});
