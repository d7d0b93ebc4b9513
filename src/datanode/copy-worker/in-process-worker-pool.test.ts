import { describe, expect, it } from 'vitest';
import { FakeClock } from '../../common/clock.js';
import {
  bytesOf,
  GatedObjectStore,
  MemorySources,
  mappingOf,
  putSourceFiles,
  resolvedOf,
  SNAPSHOT,
  TARGET_COLLECTION,
  sourceSegment,
} from '../../coord/copy/copy.test-util.js';
import { copyPlanOf, targetKeysOf } from '../../storage/snapshot-format/segment-rewrite.js';
import type { CopyTask, ResolvedMapping, SegmentMapping, TaskPoll } from '../../coord/copy/types.js';
import { FaultyObjectStore, failKeysWithPrefix, failNth } from '../../storage/faulty-object-store.js';
import { MemoryObjectStore } from '../../storage/memory-object-store.js';
import { executeCopy } from './copy-segment-executor.js';
import { InProcessWorkerPool } from './in-process-worker-pool.js';

function task(id: number, mappings: readonly SegmentMapping[], version = 1): CopyTask {
  return {
    id,
    jobId: 1,
    state: 'InProgress',
    snapshot: SNAPSHOT,
    targetCollectionId: TARGET_COLLECTION,
    mappings,
    nodeId: 'node-1',
    version,
    attempts: version,
    reason: '',
    results: [],
    createdAtMs: 0,
    updatedAtMs: 0,
  };
}

async function sourceStore(
  segmentIds: readonly number[],
): Promise<{ objects: MemoryObjectStore; ms: SegmentMapping[]; rs: ResolvedMapping[]; sources: MemorySources }> {
  const objects = new MemoryObjectStore({ clock: new FakeClock() });
  const segments = segmentIds.map((id) => sourceSegment(id));
  await putSourceFiles(objects, segments);
  return { objects, ms: segments.map((s) => mappingOf(s)), rs: segments.map((s) => resolvedOf(s)), sources: new MemorySources(segments) };
}

describe('executeCopy', () => {
  it('copies every file of every segment to its target key with identical bytes, and builds the target records', async () => {
    const { objects, ms, rs, sources } = await sourceStore([1, 2]);
    const r = await executeCopy(objects, sources, task(0, ms));
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.filesCopied).toBe(16);
    for (const m of rs) {
      for (const { src, dst } of copyPlanOf(m)) expect(await objects.get(dst)).toEqual(bytesOf(src));
    }
    expect(r.results).toEqual(ms.map((m) => ({ targetSegmentId: m.targetSegmentId, numRows: 10, filesCopied: 8 })));
    // Sources untouched, nothing else written.
    expect((await objects.list('')).length).toBe(32);
  });

  it('keeps at most `concurrency` copies in flight', async () => {
    const { objects, ms, sources } = await sourceStore([1, 2, 3, 4, 5]);
    const gated = new GatedObjectStore(objects);
    const r = await executeCopy(gated, sources, task(0, ms), { concurrency: 3 });
    expect(r.ok).toBe(true);
    expect(gated.maxInFlight).toBeLessThanOrEqual(3);
    expect(gated.maxInFlight).toBe(3);
    expect(gated.copiesStarted).toBe(40);
  });

  it('retries a transient copy failure', async () => {
    const { objects, ms, sources } = await sourceStore([1]);
    const faulty = new FaultyObjectStore(objects, { failOn: failNth('copy', 2) });
    const r = await executeCopy(faulty, sources, task(0, ms), { concurrency: 1 });
    expect(r.ok).toBe(true);
    expect(faulty.injectedFailures).toBe(1);
  });

  it('fails naming the key after 1 + retriesMax attempts, and writes nothing more afterwards', async () => {
    const { objects, ms, rs, sources } = await sourceStore([1, 2]);
    const bad = copyPlanOf(rs[0]!)[3]!;
    const faulty = new FaultyObjectStore(objects, { failOn: failKeysWithPrefix('copy', bad.dst) });
    const r = await executeCopy(faulty, sources, task(0, ms), { concurrency: 1, retriesMax: 3 });
    expect(r).toEqual({
      ok: false,
      aborted: false,
      reason: `copy ${JSON.stringify(bad.src)} → ${JSON.stringify(bad.dst)} failed after 4 attempts: object store faulty(memory): injected fault on copy ${JSON.stringify(bad.dst)}`,
    });
    expect(faulty.injectedFailures).toBe(4);
    // The second segment was never started: the task stopped at the first hard failure.
    const written = (await objects.list('')).map((o) => o.key);
    for (const k of targetKeysOf([rs[1]!])) expect(written).not.toContain(k);
  });

  it('does not retry a missing source file', async () => {
    const { objects, ms, rs, sources } = await sourceStore([1]);
    const missing = copyPlanOf(rs[0]!)[0]!.src;
    await objects.delete(missing);
    const r = await executeCopy(objects, sources, task(0, ms));
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.reason).toMatch(new RegExp(`^copy ${JSON.stringify(missing)} → .* failed after 1 attempt: `));
  });

  it('fails a task whose mapping holds a key that is not a segment file', async () => {
    const s = sourceSegment(1);
    const bad = new MemorySources([{ ...s, statslogs: [{ ...s.statslogs[0]!, path: 'x/y' }] }]);
    const r = await executeCopy(new MemoryObjectStore(), bad, task(0, [mappingOf(s)]));
    expect(r).toMatchObject({ ok: false, reason: expect.stringContaining('"x/y"') });
  });
});

describe('InProcessWorkerPool', () => {
  it('has one node with 4 slots by default; dispatch runs in the background, poll reports', async () => {
    const { objects, ms, sources } = await sourceStore([1, 2]);
    const finished: number[] = [];
    const gated = new GatedObjectStore(objects, 0);
    const pool = new InProcessWorkerPool({ sources, store: gated, onTaskFinished: (_n, id) => finished.push(id) });
    expect(pool.nodes()).toEqual([{ nodeId: 'node-1', slots: 4, usedSlots: 0 }]);
    await pool.dispatch('node-1', task(7, ms));
    expect(await pool.poll('node-1', 7, 1)).toEqual({ state: 'InProgress', version: 1 });
    expect(pool.nodes()[0]!.usedSlots).toBe(1);
    gated.open();
    await pool.idle();
    const p = await pool.poll('node-1', 7, 1);
    expect(p.state).toBe('Completed');
    expect(p).toMatchObject({ version: 1, results: ms.map((m) => ({ targetSegmentId: m.targetSegmentId, numRows: 10, filesCopied: 8 })) });
    expect(pool.nodes()[0]!.usedSlots).toBe(0);
    expect(finished).toEqual([7]);
    // A repeated dispatch of the same version is a no-op.
    await pool.dispatch('node-1', task(7, ms));
    expect((await pool.poll('node-1', 7, 1)).state).toBe('Completed');
  });

  it('answers Unknown for an unknown node, task, or a version it never received', async () => {
    const { objects, ms, sources } = await sourceStore([1]);
    const pool = new InProcessWorkerPool({ sources, store: objects });
    await pool.dispatch('node-1', task(7, ms, 2));
    await pool.idle();
    expect(await pool.poll('node-9', 7, 2)).toEqual({ state: 'Unknown' });
    expect(await pool.poll('node-1', 8, 2)).toEqual({ state: 'Unknown' });
    expect(await pool.poll('node-1', 7, 3)).toEqual({ state: 'Unknown' });
    // Asked about an older version, it answers about the run it has (the caller sees a version mismatch).
    expect(await pool.poll('node-1', 7, 1)).toMatchObject({ state: 'Completed', version: 2 });
  });

  it('refuses a dispatch beyond its slots, to a missing node, or of an older version', async () => {
    const { objects, ms, sources } = await sourceStore([1]);
    const gated = new GatedObjectStore(objects, 0);
    const pool = new InProcessWorkerPool({ sources, store: gated, nodes: [{ nodeId: 'a', slots: 2 }] });
    await pool.dispatch('a', task(1, ms));
    await pool.dispatch('a', task(2, ms, 3));
    await expect(pool.dispatch('a', task(3, ms))).rejects.toThrow('worker node a has no free slot (2 of 2 used) for task 3');
    await expect(pool.dispatch('b', task(3, ms))).rejects.toThrow('worker node b is not in the pool');
    await expect(pool.dispatch('a', task(2, ms, 2))).rejects.toThrow('older than its run 3');
    gated.open();
    await pool.idle();
  });

  it('a newer version replaces the run of an older one', async () => {
    const { objects, ms, sources } = await sourceStore([1]);
    const gated = new GatedObjectStore(objects, 0);
    const pool = new InProcessWorkerPool({ sources, store: gated });
    await pool.dispatch('node-1', task(1, ms, 1));
    const second = pool.dispatch('node-1', task(1, ms, 2));
    gated.open();
    await second;
    await pool.idle();
    expect(await pool.poll('node-1', 1, 2)).toMatchObject({ state: 'Completed', version: 2 });
    expect(pool.nodes()[0]!.usedSlots).toBe(0);
  });

  it('reports a failed copy with the key in the reason', async () => {
    const { objects, ms, rs, sources } = await sourceStore([1]);
    const dst = copyPlanOf(rs[0]!)[0]!.dst;
    const pool = new InProcessWorkerPool({ sources, store: new FaultyObjectStore(objects, { failOn: failKeysWithPrefix('copy', dst) }) });
    await pool.dispatch('node-1', task(4, ms));
    await pool.idle();
    const p = (await pool.poll('node-1', 4, 1)) as Extract<TaskPoll, { state: 'Failed' }>;
    expect(p.state).toBe('Failed');
    expect(p.reason).toContain(JSON.stringify(dst));
    expect(p.reason).toMatch(/^task 4 on node-1: copy .* failed after 4 attempts/);
  });

  it('cancel stops a task and waits until it no longer writes', async () => {
    const { objects, ms, sources } = await sourceStore([1, 2, 3]);
    const gated = new GatedObjectStore(objects, 0);
    const pool = new InProcessWorkerPool({ sources, store: gated, copyConcurrency: 2 });
    await pool.dispatch('node-1', task(5, ms));
    expect(gated.inFlight).toBe(2);
    const cancelled = pool.cancel('node-1', 5);
    gated.open();
    await cancelled;
    expect(gated.inFlight).toBe(0);
    expect(gated.copiesStarted).toBe(2);
    expect(await pool.poll('node-1', 5, 1)).toEqual({ state: 'Unknown' });
    await pool.cancel('node-1', 5); // idempotent
    await pool.cancel('node-9', 5);
  });

  it('refuses a dispatch that arrives after the cancel of that task', async () => {
    const { objects, ms, sources } = await sourceStore([1]);
    const pool = new InProcessWorkerPool({ sources, store: objects });
    await pool.cancel('node-1', 9);
    await expect(pool.dispatch('node-1', task(9, ms, 3))).rejects.toThrow('task 9 was cancelled');
    expect(pool.nodes()[0]!.usedSlots).toBe(0);
    expect((await objects.list('')).length).toBe(8);
  });

  it('removeNode abandons its tasks (polls answer Unknown); addNode brings capacity back', async () => {
    const { objects, ms, sources } = await sourceStore([1]);
    const gated = new GatedObjectStore(objects, 0);
    const finished: number[] = [];
    const pool = new InProcessWorkerPool({ sources, store: gated, onTaskFinished: (_n, id) => finished.push(id) });
    await pool.dispatch('node-1', task(1, ms));
    const removed = pool.removeNode('node-1');
    expect(pool.nodes()).toEqual([]);
    expect(await pool.poll('node-1', 1, 1)).toEqual({ state: 'Unknown' });
    gated.open();
    await removed;
    expect(finished).toEqual([]);
    pool.addNode('node-2', 1);
    expect(() => pool.addNode('node-2')).toThrow('already exists');
    expect(pool.nodes()).toEqual([{ nodeId: 'node-2', slots: 1, usedSlots: 0 }]);
  });

  it('keeps a bounded number of finished answers', async () => {
    const { objects, ms, sources } = await sourceStore([1]);
    const pool = new InProcessWorkerPool({ sources, store: objects, finishedTasksMax: 2 });
    for (const id of [1, 2, 3]) {
      await pool.dispatch('node-1', task(id, ms));
      await pool.idle();
    }
    expect((await pool.poll('node-1', 1, 1)).state).toBe('Unknown');
    expect((await pool.poll('node-1', 2, 1)).state).toBe('Completed');
    expect((await pool.poll('node-1', 3, 1)).state).toBe('Completed');
  });

  it('close aborts everything and refuses later dispatches', async () => {
    const { objects, ms, sources } = await sourceStore([1]);
    const gated = new GatedObjectStore(objects, 0);
    const pool = new InProcessWorkerPool({ sources, store: gated });
    await pool.dispatch('node-1', task(1, ms));
    const closed = pool.close();
    gated.open();
    await closed;
    await expect(pool.dispatch('node-1', task(2, ms))).rejects.toThrow('closed');
  });
});
