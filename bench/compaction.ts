/**
 * Compaction benchmark (issue 3 targets: merging small segments runs at ≥ 100 MB/s of input binlogs, and
 * ingest keeps ≥ 70% of its rate while a compaction runs).
 *
 *  1. Data merge: BENCH_SEGMENTS flushed segments of BENCH_SEGMENT_ROWS rows (dim BENCH_DIM, clustered),
 *     written with `engine.insert` + `flushCollection` after each segment; auto-compaction off; no index;
 *     the collection is not loaded, so the compaction reads every source binlog back from the store. Then
 *     `engine.compact(id, { force: true, wait: true })` with sealRows (the merge target) large enough that
 *     all sources merge into one segment. Input MB = sum of the sources' insert binlog sizes. Repeated
 *     BENCH_MERGE_RUNS times on fresh collections; the median is reported.
 *  2. The same with an HNSW index (M=16, efConstruction BENCH_EFC, default 64) built on the sources first:
 *     a compaction builds the target's index before it publishes the target, which dominates its time.
 *  3. Ingest: BENCH_INGEST_BATCHES batches of BENCH_BATCH rows through `engine.insert`, alone (3 loops,
 *     median), then while a compaction of the same shape as (1) runs in the same process; the rate during
 *     the compaction counts only the batches that completed while it ran (the loop keeps going until the
 *     compaction ends). Compaction and ingest share one event loop, as they do in the server.
 *
 * Usage: npx tsx bench/compaction.ts   (BENCH_SEGMENTS=10 BENCH_SEGMENT_ROWS=50000 BENCH_DIM=128
 *        BENCH_EFC=64 BENCH_BATCH=5000 BENCH_INGEST_BATCHES=20 BENCH_MERGE_RUNS=3 BENCH_SKIP_INDEX=1; BENCH_QUICK=1 = 10 x 5,000)
 */
import * as grpc from '@grpc/grpc-js';
import { root } from '../src/proxy/proto.js';
import { clustered, envInt, machine, median, table } from './common.js';
import { startTestServer, type TestServer } from '../test/helpers.js';
import { binlogBytes, collectionId, columnsOf, createHnsw, createVectorCollection, insertRange, loadLine, MB, quick, secondsSince } from './fixture.js';

const SEGMENTS = envInt('BENCH_SEGMENTS', 10);
const SEG_ROWS = envInt('BENCH_SEGMENT_ROWS', quick ? 5000 : 50_000);
const DIM = envInt('BENCH_DIM', 128);
const M = envInt('BENCH_M', 16);
const EFC = envInt('BENCH_EFC', 64);
const BATCH = envInt('BENCH_BATCH', 5000);
const MERGE_RUNS = envInt('BENCH_MERGE_RUNS', 3);
const INGEST_BATCHES = envInt('BENCH_INGEST_BATCHES', 20);
/** Cap of the loop that keeps inserting until a concurrent compaction ends. */
const INGEST_BATCHES_MAX = envInt('BENCH_INGEST_BATCHES_MAX', 2000);
const SEAL_ROWS = Math.max(1_000_000, SEGMENTS * SEG_ROWS + 1);
const TOTAL = SEGMENTS * SEG_ROWS;

/** A collection of SEGMENTS flushed segments of SEG_ROWS rows each. */
async function segmentedCollection(t: TestServer, name: string, data: Float32Array): Promise<number> {
  await createVectorCollection(t.client, name, DIM);
  const engine = t.server.engine;
  const id = collectionId(engine, name);
  for (let s = 0; s < SEGMENTS; s++) {
    await insertRange(engine, id, data, DIM, s * SEG_ROWS, (s + 1) * SEG_ROWS, BATCH);
    await engine.flushCollection(id);
  }
  const flushed = engine.flushedSegments(id);
  if (flushed.length !== SEGMENTS) throw new Error(`expected ${SEGMENTS} flushed segments in ${name}, found ${flushed.length}`);
  return id;
}

/** Runs a forced compaction and checks it merged every source into one segment. */
async function compactAll(t: TestServer, id: number): Promise<{ seconds: number; inputBytes: number; outputBytes: number }> {
  const engine = t.server.engine;
  const sources = new Set(engine.flushedSegments(id).map((s) => s.id));
  const inputBytes = binlogBytes(engine, id, sources);
  const t0 = performance.now();
  const task = await engine.compact(id, { force: true, wait: true });
  const seconds = secondsSince(t0);
  const plan = task.plans[0];
  if (task.plans.length !== 1 || plan?.state !== 'Completed' || plan.sources.length !== sources.size) {
    throw new Error(`compaction did not merge all ${sources.size} segments into one: ${JSON.stringify(task.plans)}`);
  }
  return { seconds, inputBytes, outputBytes: binlogBytes(engine, id, new Set([plan.target])) };
}

/** Inserts batches of fresh ids; with `until`, keeps going (up to the cap) until it settles. */
async function ingest(
  t: TestServer,
  id: number,
  data: Float32Array,
  idBase: number,
  until?: Promise<unknown>,
): Promise<{ rowsPerSec: number; batches: number; seconds: number }> {
  const engine = t.server.engine;
  let running = until !== undefined;
  let endedAt = Infinity;
  void until?.finally(() => {
    running = false;
    endedAt = performance.now();
  });
  const batchesInData = Math.floor(data.length / DIM / BATCH);
  const ends: number[] = [];
  const t0 = performance.now();
  for (let b = 0; b < INGEST_BATCHES_MAX && (b < INGEST_BATCHES || running); b++) {
    const from = (b % batchesInData) * BATCH;
    await engine.insert(id, undefined, columnsOf(data, DIM, from, from + BATCH, idBase + b * BATCH - from), BATCH, false);
    ends.push(performance.now());
  }
  // Only the batches that finished while the compaction ran (all of them without one).
  const counted = until ? ends.filter((e) => e <= endedAt) : ends;
  const last = counted[counted.length - 1];
  if (last === undefined) return { rowsPerSec: NaN, batches: 0, seconds: 0 };
  const seconds = (last - t0) / 1000;
  return { rowsPerSec: (counted.length * BATCH) / seconds, batches: counted.length, seconds };
}

/**
 * Ingest through the server's gRPC Insert (requests encoded once and replayed, 4 in flight): the rate a
 * client sees, which is what "ingest rate" means for a database; engine.insert above has no network or
 * decode cost and so is bound by disk bandwidth, which a compaction shares.
 */
async function ingestGrpc(
  t: TestServer,
  collection: string,
  data: Float32Array,
  idBase: number,
  until?: Promise<unknown>,
): Promise<{ rowsPerSec: number; batches: number; seconds: number }> {
  const InsertRequest = root.lookupType('milvus.proto.milvus.InsertRequest');
  const batchesInData = Math.floor(data.length / DIM / BATCH);
  const encode = (b: number): Buffer => {
    const from = (b % batchesInData) * BATCH;
    const msg = InsertRequest.fromObject({
      collection_name: collection,
      num_rows: BATCH,
      fields_data: [
        { type: 5, field_name: 'id', scalars: { long_data: { data: Array.from({ length: BATCH }, (_, i) => idBase + b * BATCH + i) } } },
        { type: 101, field_name: 'v', vectors: { dim: DIM, float_vector: { data: data.subarray(from * DIM, (from + BATCH) * DIM) } } },
      ],
    });
    return Buffer.from(InsertRequest.encode(msg).finish());
  };
  const cap = INGEST_BATCHES_MAX;
  const encoded = Array.from({ length: Math.min(cap, 200) }, (_, b) => encode(b));
  const client = new grpc.Client(`127.0.0.1:${t.server.port}`, grpc.credentials.createInsecure(), { 'grpc.max_send_message_length': -1 });
  const send = (buf: Buffer) =>
    new Promise<void>((resolve, reject) =>
      client.makeUnaryRequest(
        '/milvus.proto.milvus.MilvusService/Insert',
        (x: Buffer) => x,
        (x: Buffer) => x,
        buf,
        (err) => (err ? reject(err) : resolve()),
      ),
    );
  let running = until !== undefined;
  let endedAt = Infinity;
  void until?.finally(() => {
    running = false;
    endedAt = performance.now();
  });
  const ends: number[] = [];
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: 4 }, async () => {
      while (next < encoded.length && (next < INGEST_BATCHES * 2 || running)) {
        await send(encoded[next++]!);
        ends.push(performance.now());
      }
    }),
  );
  client.close();
  const counted = until ? ends.filter((e) => e <= endedAt) : ends;
  const last = counted[counted.length - 1];
  if (last === undefined) return { rowsPerSec: NaN, batches: 0, seconds: 0 };
  const seconds = (last - t0) / 1000;
  return { rowsPerSec: (counted.length * BATCH) / seconds, batches: counted.length, seconds };
}

async function main(): Promise<void> {
  console.log(`# Compaction benchmark\n\nmachine: ${machine()}\n${loadLine()} at start`);
  console.log(
    `${SEGMENTS} segments x ${SEG_ROWS} rows, dim ${DIM}, merge target ${SEAL_ROWS} rows; index run HNSW M=${M} efConstruction=${EFC}; ingest batches of ${BATCH}`,
  );
  const data = clustered(TOTAL, DIM, 5);
  const merge: Record<string, string | number>[] = [];
  const rate: Record<string, string | number>[] = [];
  const grpcRate: Record<string, string | number>[] = [];
  const t = await startTestServer({ sealRows: SEAL_ROWS, autoCompaction: false, logLevel: 'silent' });
  try {
    // 1. data merge only, MERGE_RUNS times on fresh collections (the machine may be noisy)
    const runs: Awaited<ReturnType<typeof compactAll>>[] = [];
    for (let i = 0; i < MERGE_RUNS; i++) {
      const name = `merge_plain_${i}`;
      runs.push(await compactAll(t, await segmentedCollection(t, name, data)));
      await t.client.dropCollection({ collection_name: name });
      console.log(`  merge without index, run ${i + 1}: ${runs[i]!.seconds.toFixed(2)} s`);
    }
    const plainSec = median(runs.map((r) => r.seconds));
    const plain = runs[0]!;
    merge.push({
      run: `no index (data merge: read binlogs, merge, write binlogs); median of ${MERGE_RUNS}`,
      'input MB': (plain.inputBytes / MB).toFixed(1),
      'output MB': (plain.outputBytes / MB).toFixed(1),
      seconds: `${plainSec.toFixed(2)} (${runs.map((r) => r.seconds.toFixed(2)).join(', ')})`,
      'MB/s': (plain.inputBytes / MB / plainSec).toFixed(0),
      target: '≥ 100 MB/s',
    });

    // 2. with an HNSW index on the sources and (built before publish) on the target
    if (process.env.BENCH_SKIP_INDEX !== '1') {
      const idxId = await segmentedCollection(t, 'merge_hnsw', data);
      const tb = performance.now();
      await createHnsw(t.client, 'merge_hnsw', M, EFC);
      await t.server.engine.waitForIndexes(idxId);
      const srcBuildSec = secondsSince(tb);
      const withIdx = await compactAll(t, idxId);
      merge.push({
        run: `HNSW M=${M} efC=${EFC} (target index built before publish)`,
        'input MB': (withIdx.inputBytes / MB).toFixed(1),
        'output MB': (withIdx.outputBytes / MB).toFixed(1),
        seconds: withIdx.seconds.toFixed(2),
        'MB/s': (withIdx.inputBytes / MB / withIdx.seconds).toFixed(1),
        target: '',
      });
      console.log(`  merge with index: ${withIdx.seconds.toFixed(2)} s (the sources' ${SEGMENTS} index builds took ${srcBuildSec.toFixed(1)} s before it)`);
      merge.push({
        run: `  of which the target's index build (difference)`,
        'input MB': '',
        'output MB': '',
        seconds: (withIdx.seconds - plainSec).toFixed(2),
        'MB/s': '',
        target: '',
      });
    }

    // 3. ingest alone, then while a compaction of the same shape runs
    // Alone: three loops (short and noisy on a shared machine), the median rate counts.
    const aloneRuns: Awaited<ReturnType<typeof ingest>>[] = [];
    for (let i = 0; i < 3; i++) {
      await createVectorCollection(t.client, `ingest_alone_${i}`, DIM);
      aloneRuns.push(await ingest(t, collectionId(t.server.engine, `ingest_alone_${i}`), data, 10_000_000 * (i + 1)));
    }
    const alone = [...aloneRuns].sort((a, b) => a.rowsPerSec - b.rowsPerSec)[1]!;
    await createVectorCollection(t.client, 'ingest_during', DIM);
    const busyId = await segmentedCollection(t, 'merge_busy', data);
    const compaction = compactAll(t, busyId);
    const during = await ingest(t, collectionId(t.server.engine, 'ingest_during'), data, 50_000_000, compaction);
    const busy = await compaction;
    rate.push({
      run: `ingest alone (median of 3: ${aloneRuns.map((r) => Math.round(r.rowsPerSec)).join(', ')} rows/s)`,
      batches: alone.batches,
      seconds: alone.seconds.toFixed(2),
      'rows/s': Math.round(alone.rowsPerSec),
      ratio: '1.00',
      target: '',
    });
    rate.push({
      run: `ingest while compacting ${SEGMENTS}x${SEG_ROWS} (compaction took ${busy.seconds.toFixed(2)} s)`,
      batches: during.batches,
      seconds: during.seconds.toFixed(2),
      'rows/s': Math.round(during.rowsPerSec),
      ratio: (during.rowsPerSec / alone.rowsPerSec).toFixed(2),
      target: '≥ 0.70',
    });

    // 4. the same through the server (gRPC Insert, pre-encoded requests)
    const grpcAlone: Awaited<ReturnType<typeof ingestGrpc>>[] = [];
    for (let i = 0; i < 3; i++) {
      await createVectorCollection(t.client, `grpc_alone_${i}`, DIM);
      grpcAlone.push(await ingestGrpc(t, `grpc_alone_${i}`, data, 70_000_000 * (i + 1)));
    }
    const gAlone = [...grpcAlone].sort((a, b) => a.rowsPerSec - b.rowsPerSec)[1]!;
    await createVectorCollection(t.client, 'grpc_during', DIM);
    const busy2 = await segmentedCollection(t, 'merge_busy_grpc', data);
    const compaction2 = compactAll(t, busy2);
    const gDuring = await ingestGrpc(t, 'grpc_during', data, 90_000_000, compaction2);
    const busyGrpc = await compaction2;
    grpcRate.push({
      run: `gRPC ingest alone (median of 3: ${grpcAlone.map((r) => Math.round(r.rowsPerSec)).join(', ')} rows/s)`,
      batches: gAlone.batches,
      seconds: gAlone.seconds.toFixed(2),
      'rows/s': Math.round(gAlone.rowsPerSec),
      ratio: '1.00',
      target: '',
    });
    grpcRate.push({
      run: `gRPC ingest while compacting ${SEGMENTS}x${SEG_ROWS} (compaction took ${busyGrpc.seconds.toFixed(2)} s)`,
      batches: gDuring.batches,
      seconds: gDuring.seconds.toFixed(2),
      'rows/s': Math.round(gDuring.rowsPerSec),
      ratio: (gDuring.rowsPerSec / gAlone.rowsPerSec).toFixed(2),
      target: '≥ 0.70',
    });
  } finally {
    await t.close();
  }
  table(`Compaction of ${SEGMENTS} x ${SEG_ROWS} rows, dim ${DIM}, into one segment`, merge);
  table(`Ingest rate through the server's gRPC Insert (pre-encoded batches of ${BATCH}, 4 in flight), alone and during a compaction`, grpcRate);
  table(`Ingest rate through engine.insert (batches of ${BATCH}), alone and during a compaction`, rate);
  console.log(`\n${loadLine()} at end`);
}

await main();
