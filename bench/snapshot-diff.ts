/**
 * Snapshot diff benchmark (issue 13 target: two snapshots of 1M rows with 1% changed, diff ≤ 1 s).
 *
 * 1M rows (dim 4; the diff never reads vectors) flushed into segments of BENCH_SEGMENT_ROWS rows; snapshot
 * `a`; then 1% of the rows changed through the SDK: half deleted, half upserted, spread over every
 * segment; snapshot `b`. Measured, median of BENCH_RUNS, in this process (`SnapshotDiffer.diff`, the code
 * behind the HTTP route and `quiver snapshot diff`): a → b, b → now, and, for the ratio, a naive diff
 * that reads every visible row of both sides (`visibleRows` over all segments).
 *
 * Usage: npx tsx bench/snapshot-diff.ts   (BENCH_ROWS=1000000 BENCH_SEGMENT_ROWS=100000 BENCH_RUNS=5; BENCH_QUICK=1 = 100k)
 */
import { clustered, envInt, machine, median, table } from './common.js';
import { collectionId, createVectorCollection, insertRange, loadLine, quick } from './fixture.js';
import { visibleRows } from '../src/coord/snapshot/diff.js';
import { startTestServer } from '../test/helpers.js';

const ROWS = envInt('BENCH_ROWS', quick ? 100_000 : 1_000_000);
const SEGMENT_ROWS = envInt('BENCH_SEGMENT_ROWS', 100_000);
const RUNS = envInt('BENCH_RUNS', 5);
const DIM = 4;

async function main(): Promise<void> {
  const t = await startTestServer({ autoCompaction: false, sealRows: SEGMENT_ROWS });
  try {
    const { engine, extras } = t.server;
    await createVectorCollection(t.client, 'diff', DIM);
    const id = collectionId(engine, 'diff');
    const data = clustered(ROWS, DIM);
    const t0 = performance.now();
    for (let b = 0; b < ROWS; b += SEGMENT_ROWS) {
      await insertRange(engine, id, data, DIM, b, Math.min(ROWS, b + SEGMENT_ROWS), 50_000);
      await t.client.flushSync({ collection_names: ['diff'] });
    }
    console.log(`loaded ${ROWS} rows in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    await t.client.createSnapshot({ collection_name: 'diff', snapshot_name: 'a' });
    // 1% changed, spread evenly: every 100th row, alternately deleted and upserted.
    const changed = Math.floor(ROWS / 100);
    const del: number[] = [];
    const ups: { id: number; v: number[] }[] = [];
    for (let i = 0; i < changed; i++) {
      const pk = i * 100 + 7;
      if (i % 2 === 0) del.push(pk);
      else ups.push({ id: pk, v: [1, 2, 3, 4] });
    }
    for (let i = 0; i < del.length; i += 5000) await t.client.delete({ collection_name: 'diff', ids: del.slice(i, i + 5000) });
    for (let i = 0; i < ups.length; i += 5000) await t.client.upsert({ collection_name: 'diff', data: ups.slice(i, i + 5000) });
    await t.client.createSnapshot({ collection_name: 'diff', snapshot_name: 'b' });

    const time = async (fn: () => Promise<unknown>) => {
      const out: number[] = [];
      for (let r = 0; r < RUNS; r++) {
        const s = performance.now();
        await fn();
        out.push(performance.now() - s);
      }
      return median(out);
    };
    const d = await extras.differ.diff('default', 'diff', 'a', 'b');
    if (d.deleted !== del.length || d.updated !== ups.length || d.inserted !== 0) {
      throw new Error(`wrong diff: ${d.inserted}/${d.deleted}/${d.updated}, expected 0/${del.length}/${ups.length}`);
    }
    const abMs = await time(() => extras.differ.diff('default', 'diff', 'a', 'b'));
    const nowMs = await time(() => extras.differ.diff('default', 'diff', 'b', 'now'));
    // The naive diff: every visible row of both sides.
    const snaps = t.server.snapshots;
    const sides = await Promise.all(['a', 'b'].map(async (n) => (await snaps.readContents(await snaps.describe('default', 'diff', n))).entries));
    const pk = { fieldId: 100, dataType: 'Int64' as const };
    const naiveMs = await time(async () => {
      const maps = [];
      for (const entries of sides) {
        const m = new Map<bigint | string, bigint>();
        for (const e of entries) {
          const r = await visibleRows(t.server.engine.store, pk, e.segment);
          for (let i = 0; i < r.pks.length; i++) m.set(r.pks[i]!, r.ts[i]!);
        }
        maps.push(m);
      }
      let n = 0;
      for (const [k, v] of maps[1]!) if (maps[0]!.get(k) !== v) n++;
      for (const k of maps[0]!.keys()) if (!maps[1]!.has(k)) n++;
      return n;
    });
    table(`snapshot diff, ${ROWS} rows in ${Math.ceil(ROWS / SEGMENT_ROWS)} segments, ${changed} changed (${machine()}; ${loadLine()})`, [
      { what: 'diff a → b (snapshots)', ms: abMs.toFixed(1), target: '≤ 1000', read: `${d.segmentsRead} segments, ${d.deltalogsRead} deltalogs` },
      { what: 'diff b → now (flush + diff)', ms: nowMs.toFixed(1), target: '', read: '' },
      { what: 'naive full-scan diff a → b', ms: naiveMs.toFixed(1), target: '', read: `ratio naive / diff ${(naiveMs / abMs).toFixed(1)}×` },
    ]);
  } finally {
    await t.close();
  }
}

await main();
