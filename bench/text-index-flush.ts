/**
 * Full-text index files at flush (issue 12, "a build runs off the request thread"): a collection with an
 * `enable_match` VarChar field `text` (standard analyzer) feeding a BM25 function's output field `sparse`,
 * BENCH_TEXTS sentences (seeded generator: a small grammar over a ~600-word vocabulary, Zipf-like word
 * choice, about 12 words on average) inserted with `engine.insert` in batches of 5,000 (the BM25 output computed
 * before the insert, as the proxy does), then one `flushCollection`, watched by a 5 ms heartbeat on the
 * serving thread: the longest gap between beats is how long a request arriving during the flush waits.
 *
 * Modes: `worker` (the default: the flush posts both index builds to the data node's text build worker and
 * opens the returned bytes) and `main` (`textIndexBuild: 'main'`: the previous behaviour, the builds on
 * the serving thread; kept for this comparison only). Each mode runs BENCH_RUNS flushes of fresh
 * collections in one engine; run 1 of `worker` includes starting the worker thread (from src/, that
 * registers tsx and loads the TypeScript modules there).
 *
 * Usage: npx tsx bench/text-index-flush.ts   (BENCH_TEXTS=50000 BENCH_RUNS=2 BENCH_MODES=main,worker)
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { systemClock } from '../src/common/clock.js';
import { MemoryMetaKV } from '../src/meta/memory-kv.js';
import type { Column, FieldSchema } from '../src/schema/types.js';
import { LocalObjectStore } from '../src/storage/local-object-store.js';
import { seededRandom } from '../src/testing/index.js';
import { computeFunctionOutputs } from '../src/text/functions.js';
import { openLocalWal } from '../src/wal/wal.js';
import { Engine } from '../src/wiring/engine.js';
import { envInt, machine, table } from './common.js';
import { loadLine } from './fixture.js';

const TEXTS = envInt('BENCH_TEXTS', 50_000);
const RUNS = envInt('BENCH_RUNS', 2);
const MODES = (process.env['BENCH_MODES'] ?? 'main,worker').split(',') as ('main' | 'worker')[];
const BATCH = 5000;

const SYLLABLES = ['ka', 'lo', 'ri', 'sen', 'ta', 'mor', 'vi', 'del', 'na', 'por', 'gu', 'shi', 'ben', 'ar', 'tel', 'mi', 'zo', 'han'];
const DETERMINERS = ['the', 'a', 'every', 'this', 'that', 'some', 'no', 'each'];
const PREPOSITIONS = ['of', 'in', 'on', 'under', 'near', 'with', 'without', 'beyond', 'across', 'through'];
const CONJUNCTIONS = ['and', 'but', 'while', 'because', 'although', 'so'];

/** A seeded vocabulary of invented words (so token counts are realistic without a dictionary file). */
function words(r: () => number, n: number, suffix: string): string[] {
  const out = new Set<string>();
  while (out.size < n) {
    const k = 2 + Math.floor(r() * 3);
    let w = '';
    for (let i = 0; i < k; i++) w += SYLLABLES[Math.floor(r() * SYLLABLES.length)]!;
    out.add(w + suffix);
  }
  return [...out];
}

/** Sentences from a small grammar; word choice skewed like natural text (rank r picked ∝ 1/r). */
function sentences(n: number, seed: number): string[] {
  const r = seededRandom(seed);
  const nouns = words(r, 300, '');
  const verbs = words(r, 150, 'es');
  const adjectives = words(r, 150, 'ic');
  const zipf = (list: readonly string[]): string => list[Math.min(list.length - 1, Math.floor(Math.exp(r() * Math.log(list.length + 1)) - 1))]!;
  const pick = (list: readonly string[]): string => list[Math.floor(r() * list.length)]!;
  const phrase = (): string => [pick(DETERMINERS), ...(r() < 0.5 ? [zipf(adjectives)] : []), zipf(nouns)].join(' ');
  const clause = (): string => {
    const parts = [phrase(), zipf(verbs), phrase()];
    if (r() < 0.6) parts.push(pick(PREPOSITIONS), phrase());
    return parts.join(' ');
  };
  return Array.from({ length: n }, () => {
    const parts = [clause()];
    while (r() < 0.45 && parts.length < 3) parts.push(pick(CONJUNCTIONS), clause());
    const s = parts.join(' ');
    return s[0]!.toUpperCase() + s.slice(1) + '.';
  });
}

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

async function flushOnce(engine: Engine, name: string, texts: readonly string[]): Promise<{ flushS: number; stallMs: number; files: number }> {
  await engine.createCollection({
    dbName: 'default',
    name,
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
  const coll = engine.catalog.resolveCollection('default', name);
  for (let from = 0; from < texts.length; from += BATCH) {
    const n = Math.min(BATCH, texts.length - from);
    const columns = new Map<string, Column>([
      ['id', { kind: 'int64', data: BigInt64Array.from({ length: n }, (_, i) => BigInt(from + i)) }],
      ['text', { kind: 'string', data: texts.slice(from, from + n) }],
    ]);
    computeFunctionOutputs(coll.schema, columns, n);
    await engine.insert(coll.id, undefined, columns, n, false);
  }
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
  const files = engine.flushedSegments(coll.id).reduce((a, s) => a + s.statslogs.length - 1, 0);
  return { flushS: (end - t0) / 1000, stallMs, files };
}

async function main(): Promise<void> {
  console.log(`# Full-text index files at flush: ${TEXTS} texts, ${machine()}`);
  const texts = sentences(TEXTS, 7);
  const avgWords = texts.reduce((a, s) => a + s.split(' ').length, 0) / texts.length;
  console.log(`texts average ${avgWords.toFixed(1)} words; ${loadLine()} at start`);
  const rows: Record<string, string | number>[] = [];
  for (const mode of MODES) {
    const dir = await mkdtemp(join(tmpdir(), 'quiver-bench-textflush-'));
    const wal = await openLocalWal(join(dir, 'wal'));
    const engine = await Engine.open(
      { kv: new MemoryMetaKV(), store: new LocalObjectStore(join(dir, 'data')), wal, clock: systemClock, log: pino({ level: 'silent' }) },
      {
        sealRows: 10_000_000,
        flushIdleMs: 3_600_000,
        backgroundIntervalMs: 3_600_000,
        tmpDir: join(dir, 'tmp'),
        autoCompaction: false,
        textIndexBuild: mode,
      },
    );
    try {
      for (let run = 1; run <= RUNS; run++) {
        const r = await flushOnce(engine, `docs_${run}`, texts);
        rows.push({
          build: mode === 'main' ? 'main thread' : 'worker',
          run,
          texts: TEXTS,
          'flush s': r.flushS.toFixed(2),
          'longest event-loop stall ms': r.stallMs.toFixed(0),
          'text index files': r.files,
          'builds on worker (cumulative)': engine.data.textIndexBuilds?.workerTasksDone().text ?? 0,
        });
      }
    } finally {
      await engine.close();
      await wal.close();
      await rm(dir, { recursive: true, force: true });
    }
  }
  table('Flush of an enable_match + BM25 collection: flush time and the longest stall of the serving thread', rows);
  console.log(`\n${loadLine()} at end`);
}

await main();
