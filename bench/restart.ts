/**
 * Restart benchmark (issue 2 target: a server holding 1M rows of dim 128, flushed and indexed, is ready to
 * search in < 10 s after a restart).
 *
 * Build (once; reused when BENCH_DATA_DIR already holds a data set of the same shape): an in-process server
 * with sealRows 200,000; 1M clustered rows inserted through `engine.insert` in batches of 5,000, flushed
 * every 200,000 rows (5 segments); an HNSW index (M=16, efConstruction BENCH_EFC, default 64 so the build
 * stays feasible on a 2-core machine; the issue does not fix efConstruction, and it does not change what a
 * restart reads); wait for every segment's index; load (the load state persists); close.
 * Measure: BENCH_RUNS times, `quiver serve` in a child process on that dir → the first SDK search that
 * returns hits. The page cache is warm (nothing is dropped between runs). A run on an empty data dir gives
 * the fixed cost (node + tsx start, gRPC bind, SDK connect).
 *
 * Usage: npx tsx bench/restart.ts   (BENCH_ROWS=1000000 BENCH_DIM=128 BENCH_EFC=64 BENCH_RUNS=3
 *        BENCH_DATA_DIR=<dir> BENCH_KEEP=1 keeps it; BENCH_QUICK=1 = 20,000 rows)
 */
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTestServer } from '../test/helpers.js';
import { spawnServer } from '../test/process.js';
import { clustered, envInt, machine, median, rowsOf, table } from './common.js';
import { collectionId, createHnsw, createVectorCollection, insertRange, loadLine, quick, secondsSince } from './fixture.js';

const ROWS = envInt('BENCH_ROWS', quick ? 20_000 : 1_000_000);
const DIM = envInt('BENCH_DIM', 128);
const BATCH = envInt('BENCH_BATCH', 5000);
const SEAL_ROWS = envInt('BENCH_SEAL_ROWS', quick ? 5000 : 200_000);
const M = envInt('BENCH_M', 16);
const EFC = envInt('BENCH_EFC', 64);
const RUNS = envInt('BENCH_RUNS', 3);
const NAME = 'restart_bench';
const MARKER = 'bench-restart.json';

interface Shape {
  readonly rows: number;
  readonly dim: number;
  readonly sealRows: number;
  readonly m: number;
  readonly efConstruction: number;
}

async function build(dir: string, shape: Shape): Promise<Record<string, string | number>[]> {
  const phases: Record<string, string | number>[] = [];
  const phase = (name: string, t0: number, extra = '') => {
    const s = secondsSince(t0);
    phases.push({ phase: name, seconds: s.toFixed(1), note: extra });
    console.log(`  build: ${name} ${s.toFixed(1)} s ${extra}`);
  };
  let t = performance.now();
  const data = clustered(ROWS, DIM, 3);
  phase('generate clustered data', t, `${ROWS} x ${DIM}`);
  const srv = await startTestServer({ sealRows: SEAL_ROWS, autoCompaction: false, logLevel: 'silent' }, {}, dir);
  try {
    await createVectorCollection(srv.client, NAME, DIM);
    const id = collectionId(srv.server.engine, NAME);
    const engine = srv.server.engine;
    t = performance.now();
    let flushSec = 0;
    for (let from = 0; from < ROWS; from += SEAL_ROWS) {
      const to = Math.min(ROWS, from + SEAL_ROWS);
      await insertRange(engine, id, data, DIM, from, to, BATCH);
      const tf = performance.now();
      await engine.flushCollection(id);
      flushSec += secondsSince(tf);
    }
    phase(
      'insert + flush (engine.insert, batches of ' + BATCH + ')',
      t,
      `${Math.round(ROWS / secondsSince(t))} rows/s; flush ${flushSec.toFixed(1)} s of it; ${Math.ceil(ROWS / SEAL_ROWS)} segments`,
    );
    t = performance.now();
    await createHnsw(srv.client, NAME, M, EFC);
    await engine.waitForIndexes(id);
    phase(`HNSW build M=${M} efConstruction=${EFC} (one worker thread)`, t, `${Math.round(ROWS / secondsSince(t))} vectors/s`);
    t = performance.now();
    // Not loadCollectionSync: it sleeps 400 ms after each progress poll.
    const r = await srv.client.loadCollectionAsync({ collection_name: NAME });
    if (r.error_code !== 'Success') throw new Error(`load: ${r.reason}`);
    while ((await srv.client.getLoadState({ collection_name: NAME })).state !== 'LoadStateLoaded') await new Promise((res) => setTimeout(res, 10));
    phase('load', t);
    t = performance.now();
  } finally {
    await srv.close({ keepData: true });
  }
  phase('close', t);
  await writeFile(join(dir, MARKER), JSON.stringify(shape));
  return phases;
}

/** Spawns `quiver serve` on `dir`; seconds until it logs "serving", and until a search returns hits. */
async function restartOnce(dir: string, query: number[] | undefined): Promise<{ servingSec: number; searchSec: number; hits: number }> {
  const t0 = performance.now();
  const srv = await spawnServer(dir, { QUIVER_LOG_LEVEL: 'warn', QUIVER_AUTO_COMPACTION: 'false' });
  const servingSec = secondsSince(t0);
  try {
    if (!query) return { servingSec, searchSec: servingSec, hits: 0 };
    for (let attempt = 0; attempt < 6000; attempt++) {
      const r = await srv.client.search({ collection_name: NAME, data: [query], limit: 10, params: { ef: 64 } });
      if (r.status.error_code === 'Success' && r.results.length > 0) return { servingSec, searchSec: secondsSince(t0), hits: r.results.length };
      await new Promise((res) => setTimeout(res, 20));
    }
    throw new Error('no search hits after 120 s');
  } finally {
    await srv.stop();
  }
}

async function main(): Promise<void> {
  console.log(`# Restart benchmark\n\nmachine: ${machine()}\n${loadLine()} at start`);
  console.log(
    `rows ${ROWS}, dim ${DIM}, sealRows ${SEAL_ROWS}, HNSW M=${M} efConstruction=${EFC} (efConstruction ${EFC} keeps the 1M build feasible on 2 cores; a restart reads the index file either way), runs ${RUNS}`,
  );
  const shape: Shape = { rows: ROWS, dim: DIM, sealRows: SEAL_ROWS, m: M, efConstruction: EFC };
  const given = process.env.BENCH_DATA_DIR;
  const dir = given ?? (await mkdtemp(join(tmpdir(), 'quiver-bench-restart-')));
  const keep = process.env.BENCH_KEEP === '1' || (given !== undefined && process.env.BENCH_KEEP !== '0');
  const empty = await mkdtemp(join(tmpdir(), 'quiver-bench-restart-empty-'));
  try {
    await mkdir(dir, { recursive: true });
    const markerPath = join(dir, MARKER);
    let phases: Record<string, string | number>[] = [];
    if (existsSync(markerPath) && (await readFile(markerPath, 'utf8')) === JSON.stringify(shape)) {
      console.log(`reusing the data set in ${dir}`);
    } else {
      if (existsSync(join(dir, 'meta.db'))) throw new Error(`${dir} holds another Quiver data dir; give an empty BENCH_DATA_DIR`);
      console.log(`building the data set in ${dir}`);
      phases = await build(dir, shape);
    }
    const query = rowsOf(clustered(1, DIM, 99), DIM, 0, 1)[0]!;
    const base = await restartOnce(empty, undefined);
    const runs: { servingSec: number; searchSec: number; hits: number }[] = [];
    for (let i = 0; i < RUNS; i++) {
      const r = await restartOnce(dir, query);
      console.log(`  run ${i + 1}: serving after ${r.servingSec.toFixed(2)} s, first search with ${r.hits} hits after ${r.searchSec.toFixed(2)} s`);
      runs.push(r);
    }
    if (phases.length > 0) table(`Build phases (${ROWS} rows, dim ${DIM})`, phases);
    table(`Restart to first search hit, ${ROWS} rows dim ${DIM}, flushed + HNSW-indexed + loaded (warm page cache)`, [
      { measure: 'empty data dir: spawn → serving (fixed cost: node, tsx, gRPC bind)', 'median s': base.servingSec.toFixed(2), runs: 1, target: '' },
      {
        measure: 'spawn → serving (recovery reads every segment and index)',
        'median s': median(runs.map((r) => r.servingSec)).toFixed(2),
        runs: RUNS,
        target: '',
      },
      {
        measure: 'spawn → first search with hits',
        'median s': median(runs.map((r) => r.searchSec)).toFixed(2),
        runs: RUNS,
        target: ROWS >= 1_000_000 ? '< 10 s' : '(< 10 s at 1M)',
      },
    ]);
    console.log(`\nall runs (s to first hit): ${runs.map((r) => r.searchSec.toFixed(2)).join(', ')}; ${loadLine()} at end`);
  } finally {
    await rm(empty, { recursive: true, force: true });
    if (!keep) await rm(dir, { recursive: true, force: true });
    else console.log(`data kept in ${dir}`);
  }
}

await main();
