/**
 * Vector index types side by side (issue 12), clustered float32, dim 128, k=10, metric L2:
 *  - Quiver through the official SDK (server in its own process): HNSW, HNSW_SQ and IVF_SQ8 — build time
 *    (createIndex until describeIndex reports every row indexed), index file bytes (what the query node
 *    holds resident for the index; the float column is 512 B/row on top), single-client QPS and recall@10;
 *  - raw hnswlib-node (single-threaded build, the old build path) and LanceDB 0.31 IVF_HNSW_SQ, in-process.
 *
 *   npm run bench:indexes                       100k rows, in-process builds and searches back to back
 *   BENCH_PQ=1 ...                              ... plus IVF_PQ, HNSW_PQ without refine and HNSW_PRQ (JS codebook training: slow)
 *   BENCH_SDK=1 npm run bench:indexes           ... plus QPS through the SDK (server process; minutes more)
 *   BENCH_N=1000000 npm run bench:indexes       the 1M row of the table (not for a shared machine)
 *   BENCH_Q=500 BENCH_EF=64 ...                 queries, HNSW ef
 *   BENCH_ONLY=HNSW,HNSW_SQ,IVF_SQ8 ...          only these index types (in-process and SDK; a short run on a busy machine)
 *   BENCH_INPROCESS=0 BENCH_SDK=1 ...           only the SDK part (and hnswlib / LanceDB; BENCH_HNSWLIB=0 skips hnswlib)
 *   BENCH_RECALL=0.95                           the recall the "at equal recall" tables sweep ef / nprobe to (default 0.95)
 *   BENCH_CASES='^HNSW_SQ SQ8 \+ refine|^IVF'   only the in-process cases whose "label (N build threads)" matches (1M runs: each HNSW build is minutes)
 *   BENCH_LANCE=0                               skips LanceDB
 *
 * Besides the fixed-parameter table, every system's search parameter (ef, nprobe; LanceDB ef then
 * refineFactor) is swept upward until recall@10 reaches BENCH_RECALL, and the QPS there is printed: the
 * issue-12 table (build time, memory, QPS at recall 0.95 for HNSW, HNSW_SQ, IVF_SQ8; `BENCH_N=1000000` for
 * the 1M row) and, with BENCH_SDK=1, Quiver through the SDK against LanceDB at equal recall.
 *
 * Resident memory is measured, not computed: each built index is saved, then loaded in a fresh process
 * (bench/index-resident.ts) the way the query node loads it, with the float column resident (float HNSW,
 * IVF_FLAT) or read from its binlog on demand (the quantized types); the growth of that process's RSS is
 * "resident MiB", and its QPS / recall are those of the loaded configuration.
 */
import { execFileSync } from 'node:child_process';
import { mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import hnswlib from 'hnswlib-node';
import * as lancedb from '@lancedb/lancedb';
import { DataType, type MilvusClient } from '@zilliz/milvus2-sdk-node';
import { attachVectors, buildIndex, flatSearch, makesColumnRedundant, type IndexParams, type IndexType, type SearchOptions } from '../src/index/index.js';
import { encodeColumn } from '../src/storage/binlog.js';
import { spawnServer } from '../test/process.js';
import { clustered, envInt, machine, rowsOf, table } from './common.js';

const N = envInt('BENCH_N', 100_000);
const Q = envInt('BENCH_Q', 500);
const DIM = 128;
const K = 10;
const EF = envInt('BENCH_EF', 64);

function recall(got: readonly number[][], truth: readonly number[][]): number {
  let hit = 0;
  for (let q = 0; q < truth.length; q++) {
    const t = new Set(truth[q]);
    for (const id of got[q] ?? []) if (t.has(id)) hit++;
  }
  return hit / (truth.length * K);
}

const TARGET = Number(process.env['BENCH_RECALL'] ?? 0.95);
const EF_SWEEP = [16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512];
const NPROBE_SWEEP = [1, 2, 4, 8, 16, 32, 64, 128];

interface AtRecall {
  readonly param: string;
  readonly qps: number;
  readonly recall: number;
}

/**
 * The first setting, in increasing cost, whose recall@10 reaches TARGET (or the last one tried, marked
 * "not reached"), with its QPS: how systems are compared at equal recall.
 */
async function sweep<P>(settings: readonly P[], name: (p: P) => string, run: (p: P) => Promise<{ qps: number; recall: number }>): Promise<AtRecall> {
  let last: AtRecall | undefined;
  for (const p of settings) {
    const r = await run(p);
    last = { param: name(p), ...r };
    if (r.recall >= TARGET) return last;
  }
  return { ...last!, param: `${last!.param} (${TARGET} not reached)` };
}

/** Runs `search` over the first Q queries; QPS and recall@10. */
async function timed(
  queryCount: number,
  truth: readonly number[][],
  search: (i: number) => Promise<number[]> | number[],
): Promise<{ qps: number; recall: number }> {
  const got: number[][] = [];
  const t0 = performance.now();
  for (let i = 0; i < queryCount; i++) got.push(await search(i));
  return { qps: queryCount / ((performance.now() - t0) / 1000), recall: recall(got, truth) };
}

const atRecallRows: Record<string, string | number>[] = [];
function pushAtRecall(system: string, r: AtRecall, extra: Record<string, string | number> = {}): void {
  const row = { system, ...extra, [`setting reaching recall ${TARGET}`]: r.param, QPS: Math.round(r.qps), 'recall@10': r.recall.toFixed(4) };
  atRecallRows.push(row);
  console.log(`| ${Object.values(row).join(' | ')} |`);
}

async function dirBytes(dir: string): Promise<number> {
  let total = 0;
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (e.isFile()) total += (await stat(join(e.parentPath, e.name))).size;
  }
  return total;
}

interface QuiverCase {
  readonly label: string;
  readonly indexType: string;
  readonly params: Record<string, string | number>;
  readonly search: Record<string, number>;
}

interface InProcessCase {
  readonly label: string;
  readonly type: IndexType;
  readonly params: Omit<IndexParams, 'type' | 'metric'>;
  readonly search: Omit<SearchOptions, 'k'>;
  readonly threads: number;
  readonly refine?: boolean;
}

const THREADS = availableParallelism();
const ONLY = process.env['BENCH_ONLY']?.split(',').map((x) => x.trim().toUpperCase());
const CASES_RE = process.env['BENCH_CASES'] === undefined ? undefined : new RegExp(process.env['BENCH_CASES']);
const IN_PROCESS: readonly InProcessCase[] = [
  { label: `HNSW M=16 efC=200, ef=${EF}`, type: 'HNSW', params: { M: 16, efConstruction: 200 }, search: { ef: EF }, threads: THREADS },
  { label: `HNSW M=16 efC=200, ef=${EF}`, type: 'HNSW', params: { M: 16, efConstruction: 200 }, search: { ef: EF }, threads: 1 },
  {
    label: `HNSW_SQ SQ8 + refine, ef=${EF} refine_k=2`,
    type: 'HNSW_SQ',
    params: { M: 16, efConstruction: 200, sqType: 'SQ8', refine: true },
    search: { ef: EF, refineK: 2 },
    threads: THREADS,
    refine: true,
  },
  { label: `HNSW_SQ SQ8, ef=${EF}`, type: 'HNSW_SQ', params: { M: 16, efConstruction: 200, sqType: 'SQ8' }, search: { ef: EF }, threads: THREADS },
  { label: `HNSW_SQ FP16, ef=${EF}`, type: 'HNSW_SQ', params: { M: 16, efConstruction: 200, sqType: 'FP16' }, search: { ef: EF }, threads: THREADS },
  { label: 'IVF_SQ8 nlist=128, nprobe=16', type: 'IVF_SQ8', params: { nlist: 128 }, search: { nprobe: 16 }, threads: 1 },
  {
    label: `HNSW_PQ m=32 nbits=8 + refine, ef=${EF} refine_k=8`,
    type: 'HNSW_PQ',
    params: { M: 16, efConstruction: 200, m: 32, nbits: 8, refine: true },
    search: { ef: EF, refineK: 8 },
    threads: THREADS,
  },
  // Training 32 codebooks of 256 in JS takes long on a busy machine: opt in.
  ...(process.env['BENCH_PQ'] === '1'
    ? [
        {
          label: `HNSW_PQ m=32 nbits=8, ef=${EF}`,
          type: 'HNSW_PQ' as const,
          params: { M: 16, efConstruction: 200, m: 32, nbits: 8 },
          search: { ef: EF },
          threads: THREADS,
        },
        {
          label: `HNSW_PRQ m=16 nbits=8 nrq=2 + refine, ef=${EF} refine_k=8`,
          type: 'HNSW_PRQ' as const,
          params: { M: 16, efConstruction: 200, m: 16, nbits: 8, nrq: 2, refine: true },
          search: { ef: EF, refineK: 8 },
          threads: THREADS,
        },
        {
          label: 'IVF_PQ nlist=128 m=32 nbits=8, nprobe=16',
          type: 'IVF_PQ' as const,
          params: { nlist: 128, m: 32, nbits: 8 },
          search: { nprobe: 16 },
          threads: 1,
        },
      ]
    : []),
];

const CASES: readonly QuiverCase[] = [
  { label: `HNSW M=16 efC=200, ef=${EF}`, indexType: 'HNSW', params: { M: 16, efConstruction: 200 }, search: { ef: EF } },
  {
    label: `HNSW_SQ SQ8 + refine, ef=${EF} refine_k=2`,
    indexType: 'HNSW_SQ',
    params: { M: 16, efConstruction: 200, sq_type: 'SQ8', refine: 'true', refine_type: 'FP32' },
    search: { ef: EF, refine_k: 2 },
  },
  { label: `HNSW_SQ FP16, ef=${EF}`, indexType: 'HNSW_SQ', params: { M: 16, efConstruction: 200, sq_type: 'FP16' }, search: { ef: EF } },
  { label: 'IVF_SQ8 nlist=128, nprobe=16', indexType: 'IVF_SQ8', params: { nlist: 128 }, search: { nprobe: 16 } },
  {
    label: `HNSW_PQ m=32 nbits=8 + refine, ef=${EF} refine_k=8`,
    indexType: 'HNSW_PQ',
    params: { M: 16, efConstruction: 200, m: 32, nbits: 8, refine: 'true' },
    search: { ef: EF, refine_k: 8 },
  },
];

const sdkAtRecall: { label: string; swept: AtRecall }[] = [];

async function quiverCase(
  client: MilvusClient,
  dataDir: string,
  c: QuiverCase,
  qrows: number[][],
  truth: number[][],
): Promise<Record<string, string | number>> {
  await client.releaseCollection({ collection_name: 'bench' });
  const existing = await client.describeIndex({ collection_name: 'bench', field_name: 'v' });
  if (existing.index_descriptions.length > 0) await client.dropIndex({ collection_name: 'bench', field_name: 'v' });
  const before = await dirBytes(join(dataDir, 'objects', 'index_files')).catch(() => 0);
  const tb = performance.now();
  const r = await client.createIndex({ collection_name: 'bench', field_name: 'v', index_type: c.indexType, metric_type: 'L2', params: c.params });
  if (r.error_code !== 'Success') throw new Error(r.reason);
  for (;;) {
    const d = await client.describeIndex({ collection_name: 'bench', field_name: 'v' });
    const i = d.index_descriptions[0]!;
    if (i.state === 'Finished' && Number(i.indexed_rows) === N) break;
    await new Promise((res) => setTimeout(res, 100));
  }
  const buildSec = (performance.now() - tb) / 1000;
  // Dropped indexes' files wait for GC, so the new build's bytes are the growth.
  const indexBytes = (await dirBytes(join(dataDir, 'objects', 'index_files'))) - before;
  await client.loadCollectionSync({ collection_name: 'bench' });
  for (let i = 0; i < 20; i++) await client.search({ collection_name: 'bench', data: [qrows[i]!], limit: K, params: c.search });
  const got: number[][] = [];
  const t0 = performance.now();
  for (let i = 0; i < Q; i++) {
    const res = await client.search({ collection_name: 'bench', data: [qrows[i]!], limit: K, params: c.search });
    got.push(res.results.map((x) => Number(x.id)));
  }
  const sec = (performance.now() - t0) / 1000;
  const isIvf = c.indexType.startsWith('IVF');
  const swept = await sweep(
    isIvf ? NPROBE_SWEEP : EF_SWEEP,
    (p) => (isIvf ? `nprobe=${p}` : `ef=${p}`),
    (p) =>
      timed(Q, truth, async (i) => {
        const res = await client.search({
          collection_name: 'bench',
          data: [qrows[i]!],
          limit: K,
          params: { ...c.search, ...(isIvf ? { nprobe: p } : { ef: p }) },
        });
        return res.results.map((x) => Number(x.id));
      }),
  );
  sdkAtRecall.push({ label: c.label, swept });
  pushAtRecall(`Quiver ${c.label.replace(/, (ef|nprobe)=.*$/, '')} (SDK, server process)`, swept, { 'build s': buildSec.toFixed(1), 'resident MiB': '' });
  return {
    system: `Quiver ${c.label} (SDK)`,
    'build s': buildSec.toFixed(1),
    'index file MiB': (indexBytes / 2 ** 20).toFixed(1),
    'resident MiB (loaded)': '',
    'vs HNSW': '',
    QPS: Math.round(Q / sec),
    'QPS loaded': '',
    'recall@10': recall(got, truth).toFixed(4),
  };
}

async function main(): Promise<void> {
  console.log(`# Index benchmark\n\nmachine: ${machine()}\nN ${N}, queries ${Q}, dim ${DIM}, k ${K}, metric L2, build threads ${availableParallelism()}`);
  const base = clustered(N, DIM, 1);
  const queries = clustered(Q, DIM, 2);
  const truth = flatSearch(base, DIM, 'L2', queries, Q, { k: K }).map((h) => Array.from(h.rows));
  const qrows = rowsOf(queries, DIM, 0, Q);
  const rows: Record<string, string | number>[] = [];
  // Rows are printed as they finish too, so a run cut short still reports what it measured.
  const push = (r: Record<string, string | number>): void => {
    rows.push(r);
    console.log(`| ${Object.values(r).join(' | ')} |`);
  };

  // ---------------------------------------------------------------- in-process: the same builds back to back
  const work = await mkdtemp(join(tmpdir(), 'quiver-bench-resident-'));
  await writeFile(join(work, 'v.binlog'), encodeColumn({ kind: 'vector', dim: DIM, data: base }, { fieldId: 101 }));
  await writeFile(join(work, 'queries.f32'), queries);
  await writeFile(join(work, 'truth.i32'), Int32Array.from(truth.flat()));
  await writeFile(join(work, 'meta.json'), JSON.stringify({ n: N, dim: DIM, q: Q, k: K }));
  let hnswResident: number | undefined;
  for (const c of process.env['BENCH_INPROCESS'] === '0' ? [] : IN_PROCESS) {
    if (ONLY && !ONLY.includes(c.type)) continue;
    if (CASES_RE && !CASES_RE.test(`${c.label} (${c.threads} build threads)`)) continue;
    const tb = performance.now();
    const index = buildIndex(base, DIM, 'L2', c.type, c.params, { threads: c.threads });
    const buildSec = (performance.now() - tb) / 1000;
    if (c.refine || c.params.refine === true) attachVectors(index, base);
    const got: number[][] = [];
    const t0 = performance.now();
    for (let i = 0; i < Q; i++) got.push(Array.from(index.search(queries.subarray(i * DIM, (i + 1) * DIM), 1, { k: K, ...c.search })[0]!.rows));
    const sec = (performance.now() - t0) / 1000;
    const file = index.toBytes();
    const isIvf = c.type.startsWith('IVF');
    const swept = await sweep(
      isIvf ? NPROBE_SWEEP : EF_SWEEP,
      (p) => (isIvf ? `nprobe=${p}` : `ef=${p}`),
      (p) =>
        timed(Q, truth, (i) =>
          Array.from(index.search(queries.subarray(i * DIM, (i + 1) * DIM), 1, { k: K, ...c.search, ...(isIvf ? { nprobe: p } : { ef: p }) })[0]!.rows),
        ),
    );
    index.dispose();
    await writeFile(join(work, 'index.qvx'), file);
    const mode = makesColumnRedundant(c.type) ? 'lazy' : 'resident';
    const loaded = JSON.parse(
      execFileSync(
        process.execPath,
        ['--expose-gc', '--import', 'tsx', join(import.meta.dirname, 'index-resident.ts'), work, mode, JSON.stringify(c.search)],
        {
          encoding: 'utf8',
        },
      ),
    ) as { residentBytes: number; qps: number; recall: number };
    if (c.type === 'HNSW') hnswResident ??= loaded.residentBytes;
    pushAtRecall(`Quiver ${c.label.replace(/, (ef|nprobe)=.*$/, '')} (in-process, ${c.threads} build thread${c.threads > 1 ? 's' : ''})`, swept, {
      'build s': buildSec.toFixed(1),
      'resident MiB': (loaded.residentBytes / 2 ** 20).toFixed(1),
    });
    push({
      system: `Quiver ${c.label} (in-process, ${c.threads} build thread${c.threads > 1 ? 's' : ''})`,
      'build s': buildSec.toFixed(1),
      'index file MiB': (file.byteLength / 2 ** 20).toFixed(1),
      'resident MiB (loaded)': `${(loaded.residentBytes / 2 ** 20).toFixed(1)} (column ${mode === 'lazy' ? 'on disk' : 'in memory'})`,
      'vs HNSW': hnswResident === undefined ? '' : (loaded.residentBytes / hnswResident).toFixed(2),
      QPS: Math.round(Q / sec),
      'QPS loaded': Math.round(loaded.qps),
      'recall@10': recall(got, truth).toFixed(4),
    });
  }
  await rm(work, { recursive: true, force: true });

  if (process.env['BENCH_SDK'] === '1') {
    const dir = await mkdtemp(join(tmpdir(), 'quiver-bench-indexes-'));
    try {
      const srv = await spawnServer(dir, { QUIVER_SEAL_ROWS: String(N + 1), QUIVER_LOG_LEVEL: 'warn' });
      try {
        const client = srv.client;
        await client.createCollection({
          collection_name: 'bench',
          fields: [
            { name: 'id', data_type: DataType.Int64, is_primary_key: true },
            { name: 'v', data_type: DataType.FloatVector, dim: DIM },
          ],
        });
        for (let from = 0; from < N; from += 5000) {
          const r = await client.insert({
            collection_name: 'bench',
            data: rowsOf(base, DIM, from, Math.min(N, from + 5000)).map((v, i) => ({ id: from + i, v })),
          });
          if (r.status.error_code !== 'Success') throw new Error(r.status.reason);
        }
        await client.flushSync({ collection_names: ['bench'] });
        for (const c of CASES) if (!ONLY || ONLY.includes(c.indexType)) push(await quiverCase(client, dir, c, qrows, truth));
      } finally {
        await srv.stop();
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }

  // ---------------------------------------------------------------- raw hnswlib-node (the old, single-threaded build)
  if (process.env['BENCH_HNSWLIB'] !== '0') {
    const raw = new hnswlib.HierarchicalNSW('l2', DIM);
    raw.initIndex(N, 16, 200, 100);
    const point = new Array<number>(DIM).fill(0);
    const tb = performance.now();
    for (let i = 0; i < N; i++) {
      for (let j = 0; j < DIM; j++) point[j] = base[i * DIM + j]!;
      raw.addPoint(point, i);
    }
    const buildSec = (performance.now() - tb) / 1000;
    raw.setEf(EF);
    const got: number[][] = [];
    const t0 = performance.now();
    for (let i = 0; i < Q; i++) got.push(raw.searchKnn(qrows[i]!, K).neighbors);
    const sec = (performance.now() - t0) / 1000;
    const swept = await sweep(
      EF_SWEEP,
      (p) => `ef=${p}`,
      (p) => {
        raw.setEf(p);
        return timed(Q, truth, (i) => raw.searchKnn(qrows[i]!, K).neighbors);
      },
    );
    pushAtRecall('raw hnswlib-node M=16 efC=200 (1 thread, in-process)', swept, { 'build s': buildSec.toFixed(1), 'resident MiB': '' });
    push({
      system: `raw hnswlib-node M=16 efC=200 (1 thread, in-process), ef=${EF}`,
      'build s': buildSec.toFixed(1),
      'index file MiB': '',
      'resident MiB (loaded)': '',
      'vs HNSW': '',
      QPS: Math.round(Q / sec),
      'QPS loaded': '',
      'recall@10': recall(got, truth).toFixed(4),
    });
  }

  // ---------------------------------------------------------------- LanceDB embedded
  const sdkVsLance: Record<string, string | number>[] = [];
  const ldir = await mkdtemp(join(tmpdir(), 'lancedb-bench-'));
  if (process.env['BENCH_LANCE'] === '0') await rm(ldir, { recursive: true, force: true });
  else
    try {
      const db = await lancedb.connect(ldir);
      const tbl = await db.createTable(
        't',
        rowsOf(base, DIM, 0, N).map((v, i) => ({ id: i, vector: v })),
      );
      const tb = performance.now();
      await tbl.createIndex('vector', { config: lancedb.Index.hnswSq({ distanceType: 'l2', numPartitions: 1, m: 16, efConstruction: 200 }) });
      const buildSec = (performance.now() - tb) / 1000;
      for (let i = 0; i < 20; i++) await tbl.search(qrows[i]!).limit(K).toArray();
      const got: number[][] = [];
      const t0 = performance.now();
      for (let i = 0; i < Q; i++) {
        const r = await (tbl.search(qrows[i]!) as lancedb.VectorQuery).limit(K).ef(EF).toArray();
        got.push(r.map((x: { id: number }) => Number(x.id)));
      }
      const sec = (performance.now() - t0) / 1000;
      // LanceDB's SQ codes cap its recall below what ef alone reaches: then refineFactor re-ranks exactly.
      const lanceSettings = [...EF_SWEEP.map((ef) => ({ ef, refine: 0 })), ...[2, 4, 8].map((refine) => ({ ef: 64, refine }))];
      const lanceSwept = await sweep(
        lanceSettings,
        (p) => (p.refine === 0 ? `ef=${p.ef}` : `ef=${p.ef} refineFactor=${p.refine}`),
        (p) =>
          timed(Q, truth, async (i) => {
            let q = (tbl.search(qrows[i]!) as lancedb.VectorQuery).limit(K).ef(p.ef);
            if (p.refine > 0) q = q.refineFactor(p.refine);
            return (await q.toArray()).map((x: { id: number }) => Number(x.id));
          }),
      );
      pushAtRecall('LanceDB 0.31 IVF_HNSW_SQ (1 partition, m=16, efC=200, in-process)', lanceSwept, { 'build s': buildSec.toFixed(1), 'resident MiB': '' });
      for (const s of sdkAtRecall) {
        sdkVsLance.push({
          'Quiver (SDK)': s.label.replace(/, (ef|nprobe)=.*$/, ''),
          'Quiver setting': s.swept.param,
          'Quiver QPS': Math.round(s.swept.qps),
          'Quiver recall': s.swept.recall.toFixed(4),
          'LanceDB setting': lanceSwept.param,
          'LanceDB QPS': Math.round(lanceSwept.qps),
          'LanceDB recall': lanceSwept.recall.toFixed(4),
          'Quiver / LanceDB': (s.swept.qps / lanceSwept.qps).toFixed(2),
        });
      }
      push({
        system: `LanceDB 0.31 IVF_HNSW_SQ (1 partition, m=16, efC=200, in-process), ef=${EF}`,
        'build s': buildSec.toFixed(1),
        'index file MiB': `${((await dirBytes(ldir)) / 2 ** 20).toFixed(1)} (table + index)`,
        'resident MiB (loaded)': '',
        'vs HNSW': '',
        QPS: Math.round(Q / sec),
        'QPS loaded': '',
        'recall@10': recall(got, truth).toFixed(4),
      });
    } finally {
      await rm(ldir, { recursive: true, force: true });
    }
  table(`Vector indexes, ${N} x ${DIM} clustered, single client, k=10`, rows);
  table(`At equal recall: the cheapest setting reaching recall@10 ${TARGET}, ${N} x ${DIM}, ${Q} queries`, atRecallRows);
  if (sdkVsLance.length > 0) table(`Quiver through the SDK vs LanceDB embedded at recall@10 >= ${TARGET} (${N} x ${DIM})`, sdkVsLance);
}

await main();
