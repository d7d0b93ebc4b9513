import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { FakeClock } from '../common/clock.js';
import { MemoryMetaKV } from '../meta/memory-kv.js';
import type { Column, FieldSchema } from '../schema/types.js';
import { MemoryObjectStore } from '../storage/memory-object-store.js';
import { seededRandom } from '../testing/index.js';
import { textIndexCounters } from '../text/index-counters.js';
import { computeFunctionOutputs } from '../text/functions.js';
import { parseSegmentKey } from '../storage/paths.js';
import { openLocalWal } from '../wal/wal.js';
import { Engine } from '../wiring/engine.js';

const WORDS = 'the river runs past a stone tower where clouds gather over quiet forests and paper lanterns glow in the evening storm'.split(' ');

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

/**
 * One engine, one collection (an enable_match text field feeding a BM25 field), `n` texts inserted, then
 * one flush watched by an event-loop delay histogram: what a request arriving during the flush waits.
 */
async function flushWatched(mode: 'worker' | 'main', n: number): Promise<{ stallMs: number; flushMs: number; workerTextBuilds: number; files: number }> {
  const dir = await mkdtemp(join(tmpdir(), 'quiver-textflush-'));
  const wal = await openLocalWal(join(dir, 'wal'));
  const store = new MemoryObjectStore();
  const engine = await Engine.open(
    { kv: new MemoryMetaKV(), store, wal, clock: new FakeClock(Date.now()), log: pino({ level: 'silent' }) },
    { sealRows: 1_000_000, flushIdleMs: 3_600_000, backgroundIntervalMs: 3_600_000, tmpDir: join(dir, 'tmp'), autoCompaction: false, textIndexBuild: mode },
  );
  try {
    await engine.createCollection({
      dbName: 'default',
      name: 'docs',
      fields: [
        field({ name: 'id', dataType: 'Int64', isPrimaryKey: true }),
        field({ name: 'text', dataType: 'VarChar', typeParams: { max_length: '4096', enable_analyzer: 'true', enable_match: 'true' } }),
        field({ name: 'sparse', dataType: 'SparseFloatVector' }),
      ],
      functions: [{ name: 'bm25', description: '', type: 'BM25', inputFieldNames: ['text'], outputFieldNames: ['sparse'], params: {} }],
      description: '',
      enableDynamicField: false,
      autoId: false,
      shardsNum: 1,
      consistencyLevel: 'Bounded',
      properties: {},
      numPartitions: 0,
    });
    const coll = engine.catalog.resolveCollection('default', 'docs');
    const rnd = seededRandom(42);
    const texts = Array.from({ length: n }, () =>
      Array.from({ length: 12 + Math.floor(rnd() * 12) }, () => WORDS[Math.floor(rnd() * WORDS.length)]!).join(' '),
    );
    const columns = new Map<string, Column>([
      ['id', { kind: 'int64', data: BigInt64Array.from({ length: n }, (_, i) => BigInt(i)) }],
      ['text', { kind: 'string', data: texts }],
    ]);
    computeFunctionOutputs(coll.schema, columns, n);
    await engine.insert(coll.id, undefined, columns, n, false);

    // A 5 ms heartbeat: the longest gap between its beats (and up to the flush's end) is the longest time
    // a request arriving during the flush would have waited for the main thread.
    let last = performance.now();
    let stallMs = 0;
    const beat = setInterval(() => {
      const now = performance.now();
      stallMs = Math.max(stallMs, now - last);
      last = now;
    }, 5);
    const t0 = performance.now();
    try {
      await engine.flushCollection(coll.id);
    } finally {
      clearInterval(beat);
    }
    const end = performance.now();
    stallMs = Math.max(stallMs, end - last);
    const flushMs = end - t0;
    const seg = engine.flushedSegments(coll.id);
    const files = seg.flatMap((s) => s.statslogs).filter((l) => parseSegmentKey(l.path)?.kind === 'stats').length;
    return {
      stallMs,
      flushMs,
      workerTextBuilds: engine.data.textIndexBuilds?.workerTasksDone().text ?? 0,
      files,
    };
  } finally {
    await engine.close();
    await wal.close();
    await rm(dir, { recursive: true, force: true });
  }
}

describe('a flush builds full-text index files off the main thread', () => {
  it('the event loop keeps turning while a large enable_match column is indexed', { timeout: 180_000 }, async () => {
    const n = 20_000;
    const before = { ...textIndexCounters };
    const onMain = await flushWatched('main', n);
    const onWorker = await flushWatched('worker', n);
    // Both flushes wrote the pk stats plus the two full-text files; only the second built them on the worker.
    expect(onMain.files).toBe(3);
    expect(onWorker.files).toBe(3);
    expect(onMain.workerTextBuilds).toBe(0);
    expect(onWorker.workerTextBuilds).toBe(2);
    expect(textIndexCounters.builtForFile - before.builtForFile).toBe(4);
    // The main-thread build stalls the loop for the whole analysis; the worker's flush only for packing,
    // encoding binlogs and opening the returned bytes. A ratio within one run, not absolute times.
    expect(onMain.stallMs, `main-thread build: stall ${onMain.stallMs.toFixed(0)} ms, flush ${onMain.flushMs.toFixed(0)} ms`).toBeGreaterThan(
      onWorker.stallMs * 3,
    );
  });
});
