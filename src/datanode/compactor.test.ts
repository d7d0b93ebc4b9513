import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FakeClock } from '../common/clock.js';
import type { SegmentIndexFile } from '../coord/records.js';
import { scalarIndexKey } from '../index/scalar/scalar-index-params.js';
import { MemoryMetaKV } from '../meta/memory-kv.js';
import type { FieldSchema } from '../schema/types.js';
import { readSegment } from '../segcore/segment-io.js';
import { MemoryObjectStore } from '../storage/memory-object-store.js';
import { openLocalWal, type LocalWal } from '../wal/wal.js';
import { Engine } from '../wiring/engine.js';

/**
 * Compaction and the consistency of persisted state: the flushed segments, read back from their files
 * (deltalogs applied), must always be a consistent cut of the writes. An upsert's delete must not reach
 * the files before its insert does (the bug behind "createSnapshot while writers run": a snapshot taken
 * in that window lost the key).
 */

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

/** A memory store whose insert-log writes of one segment can be held at a gate. */
class GatedStore extends MemoryObjectStore {
  #gate: { match: string; reached: () => void; open: Promise<void> } | undefined;

  /** The next write of a key containing `match` waits for `release()`; resolves once it is waiting. */
  holdWrites(match: string): { reached: Promise<void>; release: () => void } {
    let release!: () => void;
    let reached!: () => void;
    const open = new Promise<void>((r) => (release = r));
    const reachedP = new Promise<void>((r) => (reached = r));
    this.#gate = { match, reached, open };
    return { reached: reachedP, release };
  }

  override async put(key: string, data: Uint8Array): Promise<void> {
    const g = this.#gate;
    if (g && key.includes(g.match)) {
      this.#gate = undefined;
      g.reached();
      await g.open;
    }
    return super.put(key, data);
  }
}

describe('compaction keeps persisted state a consistent cut', () => {
  let dir: string;
  let engine: Engine;
  let wal: LocalWal;
  let store: GatedStore;
  let collId: number;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'quiver-compactor-'));
    store = new GatedStore();
    wal = await openLocalWal(join(dir, 'wal'));
    const log = pino({ level: 'silent' });
    engine = await Engine.open(
      { kv: new MemoryMetaKV(), store, wal, clock: new FakeClock(), log },
      { sealRows: 1000, flushIdleMs: 60_000, backgroundIntervalMs: 1000, tmpDir: join(dir, 'tmp'), indexBuildInline: true, autoCompaction: false },
    );
    const coll = await engine.createCollection({
      dbName: 'default',
      name: 'c',
      fields: [
        field({ name: 'id', dataType: 'Int64', isPrimaryKey: true }),
        field({ name: 'v', dataType: 'Int64' }),
        field({ name: 'vec', dataType: 'FloatVector', dim: 2 }),
      ],
      description: '',
      enableDynamicField: false,
      autoId: false,
      shardsNum: 1,
      consistencyLevel: 'Bounded',
      properties: {},
      numPartitions: 0,
    });
    collId = coll.id;
    await engine.load(collId, undefined);
  });

  afterEach(async () => {
    await engine.close();
    await wal.close();
    await rm(dir, { recursive: true, force: true });
  });

  const write = (keys: number[], version: number, upsert: boolean) =>
    engine.insert(
      collId,
      undefined,
      new Map([
        ['id', { kind: 'int64', data: BigInt64Array.from(keys.map(BigInt)) }],
        ['v', { kind: 'int64', data: BigInt64Array.from(keys.map(() => BigInt(version))) }],
        ['vec', { kind: 'vector', dim: 2, data: Float32Array.from(keys.flatMap((k) => [k, version])) }],
      ]),
      keys.length,
      upsert,
    );

  /** key → versions of its live rows, as the flushed segments' files say (what a snapshot would copy). */
  async function persisted(): Promise<Map<number, number[]>> {
    const coll = engine.catalog.collection(collId)!;
    const out = new Map<number, number[]>();
    for (const rec of engine.flushedSegments(collId)) {
      const chunk = await readSegment(store, coll, rec, coll.schema.fields);
      const ids = chunk.columns.get('id')!.data as BigInt64Array;
      const vs = chunk.columns.get('v')!.data as BigInt64Array;
      for (let i = 0; i < chunk.numRows; i++) {
        if (chunk.deleted[i] === 1) continue;
        const k = Number(ids[i]);
        out.set(k, [...(out.get(k) ?? []), Number(vs[i])].sort());
      }
    }
    return out;
  }

  /** key → versions of its live rows in memory (what queries see). */
  async function visible(): Promise<Map<number, number[]>> {
    const refs = await engine.query(collId, { filter: '', partitionNames: [], offset: 0, limit: undefined });
    const out = new Map<number, number[]>();
    for (const r of refs) {
      const k = Number((r.chunk.columns.get('id')!.data as BigInt64Array)[r.row]);
      out.set(k, [...(out.get(k) ?? []), Number((r.chunk.columns.get('v')!.data as BigInt64Array)[r.row])].sort());
    }
    return out;
  }

  it('an upsert pending before the compaction: the old row stays on disk until the flush writes delete and insert together', async () => {
    await write([1, 2], 1, false);
    await engine.flushCollection(collId);
    await write([3, 4], 1, false);
    await engine.flushCollection(collId);
    const first = engine.flushedSegments(collId)[0]!.id;
    // Delete of key 1 applied to the flushed segment (pending), its new version in a growing segment.
    await write([1], 2, true);
    const task = await engine.compact(collId, { force: true, wait: true });
    expect(task.plans.length).toBeGreaterThan(0);
    expect(task.plans.every((p) => p.state === 'Completed')).toBe(true);
    expect(engine.flushedSegments(collId).some((s) => s.id === first)).toBe(false);
    // Before the fix the compaction left key 1 out of the target: the files had no key 1 at all.
    expect(await persisted()).toEqual(
      new Map([
        [1, [1]],
        [2, [1]],
        [3, [1]],
        [4, [1]],
      ]),
    );
    expect(await visible()).toEqual(
      new Map([
        [1, [2]],
        [2, [1]],
        [3, [1]],
        [4, [1]],
      ]),
    );
    // The carried delete keeps its own ts: the flush writes it with the insert, and a reload agrees.
    await engine.flushCollection(collId);
    expect(await persisted()).toEqual(
      new Map([
        [1, [2]],
        [2, [1]],
        [3, [1]],
        [4, [1]],
      ]),
    );
    expect(await visible()).toEqual(
      new Map([
        [1, [2]],
        [2, [1]],
        [3, [1]],
        [4, [1]],
      ]),
    );
  });

  it('deletes that land during the merge: pending ones stay pending on the target, flushed ones go to its deltalog', async () => {
    await write([1, 2, 3], 1, false);
    await engine.flushCollection(collId);
    await write([4, 5], 1, false);
    await engine.flushCollection(collId);
    const sources = engine.flushedSegments(collId).map((s) => s.id);
    // Hold the target's binlog writes: the compaction has frozen its rows and is writing files.
    const gate = store.holdWrites(`insert_log/${collId}/`);
    const compaction = engine.compact(collId, { force: true, wait: true });
    await gate.reached;
    await write([2], 2, true); // stays pending
    await write([3], 2, true);
    // This flush writes key 3's delete to a source's deltalog with both new versions; key 2's upsert came
    // before it too, so only deletes after this flush stay pending.
    await engine.flushCollection(collId);
    await write([4], 3, true); // pending again, after the flush
    gate.release();
    const task = await compaction;
    expect(task.plans[0]?.state).toBe('Completed');
    expect(engine.flushedSegments(collId).some((s) => sources.includes(s.id))).toBe(false);
    // Keys 2 and 3 were flushed with their deletes; key 4's upsert is only in memory: its old row stays.
    expect(await persisted()).toEqual(
      new Map([
        [1, [1]],
        [2, [2]],
        [3, [2]],
        [4, [1]],
        [5, [1]],
      ]),
    );
    expect(await visible()).toEqual(
      new Map([
        [1, [1]],
        [2, [2]],
        [3, [2]],
        [4, [3]],
        [5, [1]],
      ]),
    );
    await engine.flushCollection(collId);
    expect(await persisted()).toEqual(
      new Map([
        [1, [1]],
        [2, [2]],
        [3, [2]],
        [4, [3]],
        [5, [1]],
      ]),
    );
  });

  it('pending deletes do not make a segment a delete-ratio candidate (it would be rewritten at every pass until a flush)', async () => {
    await write([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 1, false);
    await engine.flushCollection(collId);
    await engine.delete(collId, undefined, 'id in [1, 2, 3, 4, 5]', undefined);
    expect((await engine.compact(collId, { force: false, wait: true })).plans).toEqual([]);
    await engine.flushCollection(collId);
    const task = await engine.compact(collId, { force: false, wait: true });
    expect(task.plans.map((p) => p.state)).toEqual(['Completed']);
    expect(engine.flushedSegments(collId).map((s) => s.numRows)).toEqual([5]);
    expect([...(await persisted()).keys()].sort((a, b) => a - b)).toEqual([6, 7, 8, 9, 10]);
  });

  it('the target gets its scalar index file from the merge, open in memory at publish; no index pass builds it', async () => {
    const v = engine.catalog.collection(collId)!.schema.fields.find((f) => f.name === 'v')!;
    await engine.createIndex(collId, v, 'v_idx', { indexType: 'INVERTED', metric: '', userParams: {}, buildParams: {} });
    const idx = engine.catalog.indexes(collId).find((i) => i.name === 'v_idx')!;
    await write([1, 2, 3, 4, 5, 6], 1, false);
    await engine.flushCollection(collId);
    await write([7, 8, 9, 10], 2, false);
    await engine.flushCollection(collId);
    await engine.waitForIndexes(collId);
    expect(engine.flushedSegments(collId).map((s) => s.indexes.filter((i) => i.indexId === idx.id).length)).toEqual([1, 1]);
    // Index builds the scheduler asks the data node for from here on (there should be none).
    const tasks = engine.data.tasks;
    const createTask = tasks.createTask.bind(tasks);
    const asked: number[] = [];
    tasks.createTask = async (spec) => {
      if (spec.kind === 'indexBuild') asked.push(spec.segment.id);
      return createTask(spec);
    };
    await engine.delete(collId, undefined, 'id in [2, 8]', undefined);
    await engine.flushCollection(collId);
    const task = await engine.compact(collId, { force: true, wait: true });
    expect(task.plans.length).toBeGreaterThan(0);
    expect(task.plans.map((p) => p.error ?? p.state)).toEqual(task.plans.map(() => 'Completed'));
    const targets = task.plans.map((p) => p.target);
    expect(
      engine
        .flushedSegments(collId)
        .map((s) => s.id)
        .sort(),
    ).toEqual([...targets].sort());
    const files = new Map<number, SegmentIndexFile>();
    for (const target of engine.flushedSegments(collId)) {
      const file = target.indexes.find((i) => i.indexId === idx.id);
      expect(file?.files).toHaveLength(1);
      expect(file!.files[0]).toContain(`/${target.id}/`);
      files.set(target.id, file!);
      // The loaded target searches with it at once (same build as its record).
      const chunk = engine.data.runtime(collId)!.segments.get(target.id)!.chunks[0]!;
      expect(chunk.scalarIndexes.has(scalarIndexKey('v', undefined))).toBe(true);
      expect(chunk.indexBuilds.get(scalarIndexKey('v', undefined))).toBe(file!.buildId);
    }
    await engine.waitForIndexes(collId);
    expect(asked).toEqual([]);
    for (const target of engine.flushedSegments(collId)) expect(target.indexes.find((i) => i.indexId === idx.id)).toEqual(files.get(target.id));
    // Answers: what the rows say (v is the write's version).
    expect(await engine.count(collId, { filter: 'v == 1', partitionNames: [] })).toBe(5);
    expect(await engine.count(collId, { filter: 'v in [2]', partitionNames: [] })).toBe(3);
    const refs = await engine.query(collId, { filter: 'v >= 2', partitionNames: [], offset: 0, limit: undefined });
    expect(refs.map((r) => Number((r.chunk.columns.get('id')!.data as BigInt64Array)[r.row])).sort((a, b) => a - b)).toEqual([7, 9, 10]);
  });
});
