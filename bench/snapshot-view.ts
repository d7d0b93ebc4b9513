/**
 * Reading a snapshot in place (issue 13 target: search on COLLECTION@SNAPSHOT while the live collection is
 * loaded: first search ≤ 50 ms after load, extra memory ≤ 10% of the collection's).
 *
 * BENCH_ROWS rows (dim BENCH_DIM, clustered, HNSW M=16 efConstruction=64) in segments of BENCH_SEGMENT_ROWS,
 * flushed and indexed; snapshot `s`; then 1% of the rows deleted live. Measured in this process, with
 * the official SDK over loopback gRPC: the memory the live collection's load adds (released → loaded),
 * then `loadCollectionSync('c@s')` time, the first search on the view and the memory the view adds.
 * Memory is heap + array buffers + external after a forced GC (run with NODE_OPTIONS=--expose-gc).
 *
 * Usage: NODE_OPTIONS=--expose-gc npx tsx bench/snapshot-view.ts  (BENCH_ROWS=100000 BENCH_DIM=64; BENCH_QUICK=1 = 20k)
 */
import { clustered, envInt, machine, rowsOf, table } from './common.js';
import { collectionId, createHnsw, createVectorCollection, insertRange, loadLine, MB, quick } from './fixture.js';
import { startTestServer } from '../test/helpers.js';

const ROWS = envInt('BENCH_ROWS', quick ? 20_000 : 100_000);
const DIM = envInt('BENCH_DIM', 64);
const SEGMENT_ROWS = envInt('BENCH_SEGMENT_ROWS', 25_000);

function memory(): number {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc) for (let i = 0; i < 3; i++) gc();
  const m = process.memoryUsage();
  return m.heapUsed + m.external + m.arrayBuffers;
}

async function main(): Promise<void> {
  if (!(globalThis as { gc?: unknown }).gc) console.warn('warning: no --expose-gc; memory figures include garbage');
  const t = await startTestServer({ autoCompaction: false, sealRows: SEGMENT_ROWS });
  try {
    const { engine } = t.server;
    await createVectorCollection(t.client, 'c', DIM);
    const id = collectionId(engine, 'c');
    const data = clustered(ROWS, DIM);
    for (let b = 0; b < ROWS; b += SEGMENT_ROWS) {
      await insertRange(engine, id, data, DIM, b, Math.min(ROWS, b + SEGMENT_ROWS), 5000);
      await t.client.flushSync({ collection_names: ['c'] });
    }
    await createHnsw(t.client, 'c', 16, 64);
    await engine.roles.indexes.buildMissing(id);
    await t.client.createSnapshot({ collection_name: 'c', snapshot_name: 's' });
    const del = Array.from({ length: Math.floor(ROWS / 100) }, (_, i) => i * 100);
    for (let i = 0; i < del.length; i += 5000) await t.client.delete({ collection_name: 'c', ids: del.slice(i, i + 5000) });
    await t.client.flushSync({ collection_names: ['c'] });

    const m0 = memory();
    await t.client.loadCollectionSync({ collection_name: 'c' });
    const m1 = memory();
    const q = rowsOf(data, DIM, 100, 101);
    await t.client.search({ collection_name: 'c', data: q, limit: 10 });

    const l0 = performance.now();
    await t.client.loadCollectionSync({ collection_name: 'c@s' });
    const loadMs = performance.now() - l0;
    const s0 = performance.now();
    const first = await t.client.search({ collection_name: 'c@s', data: q, limit: 10 });
    const firstMs = performance.now() - s0;
    if (first.results.length !== 10) throw new Error(`view search returned ${first.results.length} hits`);
    const timed = async (name: string) => {
      const t0 = performance.now();
      await t.client.search({ collection_name: name, data: q, limit: 10 });
      return performance.now() - t0;
    };
    const againMs = await timed('c@s');
    const liveMs = await timed('c');
    const m2 = memory();
    const live = m1 - m0;
    const extra = m2 - m1;
    table(`snapshot view c@s, ${ROWS} rows dim ${DIM} HNSW in ${Math.ceil(ROWS / SEGMENT_ROWS)} segments (${machine()}; ${loadLine()})`, [
      { what: 'live collection load adds', value: `${(live / MB).toFixed(1)} MiB`, target: '' },
      { what: 'view load (loadCollectionSync)', value: `${loadMs.toFixed(1)} ms`, target: '' },
      { what: 'first search on the view', value: `${firstMs.toFixed(1)} ms`, target: '≤ 50 ms' },
      { what: 'second search on the view / on the live collection', value: `${againMs.toFixed(1)} ms / ${liveMs.toFixed(1)} ms`, target: '' },
      { what: 'view adds', value: `${(extra / MB).toFixed(2)} MiB (${((100 * extra) / live).toFixed(1)}% of the live load)`, target: '≤ 10%' },
    ]);
  } finally {
    await t.close();
  }
}

await main();
