/**
 * Scalar index benchmark (issue 12 target): 1M rows, a filter selecting 0.1% of them, through the official
 * SDK: query and count(*) with the index vs without (target >= 10x), and filtered vector search at that
 * selectivity (target >= 3x). One data set, one server: the "without" figures are measured first, then the
 * indexes are created on the same loaded collection and the same requests are timed again, back to back.
 * Usage: npx tsx bench/scalar-index.ts   (BENCH_N=1000000 BENCH_DIM=16 BENCH_REPS=15)
 */
import { DataType } from '@zilliz/milvus2-sdk-node';
import type { Column } from '../src/schema/types.js';
import { startTestServer } from '../test/helpers.js';
import { clustered, envInt, machine, median, table } from './common.js';
import { collectionId, loadLine, secondsSince } from './fixture.js';

const N = envInt('BENCH_N', 1_000_000);
const DIM = envInt('BENCH_DIM', 16);
const REPS = envInt('BENCH_REPS', 15);
/** Distinct values of the filtered fields: `n == c` and `tag == "t<c>"` each select N / DISTINCT rows (0.1%). */
const DISTINCT = 1000;
const BATCH = 100_000;

async function main(): Promise<void> {
  const t0 = performance.now();
  const t = await startTestServer({ autoCompaction: false });
  try {
    const c = t.client;
    const name = 'scalar_bench';
    const r = await c.createCollection({
      collection_name: name,
      fields: [
        { name: 'id', data_type: DataType.Int64, is_primary_key: true },
        { name: 'v', data_type: DataType.FloatVector, dim: DIM },
        { name: 'n', data_type: DataType.Int64 },
        { name: 'tag', data_type: DataType.VarChar, max_length: 16 },
      ],
    });
    if (r.error_code !== 'Success') throw new Error(r.reason);
    const engine = t.server.engine;
    const id = collectionId(engine, name);
    const vecs = clustered(N, DIM, 7);
    // Values scattered over the rows (a multiplicative hash of the row), so no segment holds them in order.
    const valueOf = (i: number): number => (i * 7919) % DISTINCT;
    for (let from = 0; from < N; from += BATCH) {
      const to = Math.min(N, from + BATCH);
      const n = to - from;
      const ids = new BigInt64Array(n);
      const ns = new BigInt64Array(n);
      const tags: string[] = new Array<string>(n);
      for (let k = 0; k < n; k++) {
        ids[k] = BigInt(from + k);
        ns[k] = BigInt(valueOf(from + k));
        tags[k] = `t${valueOf(from + k)}`;
      }
      const cols = new Map<string, Column>([
        ['id', { kind: 'int64', data: ids }],
        ['v', { kind: 'vector', dim: DIM, data: vecs.slice(from * DIM, to * DIM) }],
        ['n', { kind: 'int64', data: ns }],
        ['tag', { kind: 'string', data: tags }],
      ]);
      await engine.insert(id, undefined, cols, n, false);
    }
    await c.flushSync({ collection_names: [name] });
    await c.createIndex({ collection_name: name, field_name: 'v', index_type: 'FLAT', metric_type: 'L2' });
    await c.loadCollectionSync({ collection_name: name });
    console.log(
      `data ready: ${N} rows in ${engine.catalog.segments(id).filter((s) => s.state === 'Flushed').length} sealed segments, ${secondsSince(t0).toFixed(1)} s`,
    );

    const query = vecs.subarray(0, DIM);
    const ops: { label: string; run: (v: number) => Promise<number> }[] = [
      {
        label: 'query n == c (Int64, STL_SORT)',
        run: async (v) => (await c.query({ collection_name: name, filter: `n == ${v}`, output_fields: ['id'], limit: 16_384 })).data.length,
      },
      { label: 'count(*) n == c', run: async (v) => Number((await c.count({ collection_name: name, expr: `n == ${v}` })).data) },
      {
        label: 'query tag == "t<c>" (VarChar, INVERTED)',
        run: async (v) => (await c.query({ collection_name: name, filter: `tag == "t${v}"`, output_fields: ['id'], limit: 16_384 })).data.length,
      },
      {
        label: 'count(*) tag like "t<c>" prefix',
        run: async (v) => Number((await c.count({ collection_name: name, expr: `tag like "t${v}%" and tag == "t${v}"` })).data),
      },
      {
        label: 'search k=10, filter n == c',
        run: async (v) => (await c.search({ collection_name: name, data: [Array.from(query)], limit: 10, filter: `n == ${v}` })).results.length,
      },
    ];

    // The same requests in process (engine calls, no gRPC): what the server itself spends.
    const field = engine.catalog.resolveCollection('default', name).schema.fields.find((f) => f.name === 'v')!;
    const direct: { label: string; run: (v: number) => Promise<number> }[] = [
      {
        label: 'query n == c',
        run: async (v) => (await engine.query(id, { filter: `n == ${v}`, partitionNames: [], offset: 0, limit: 16_384 })).length,
      },
      { label: 'count(*) n == c', run: async (v) => await engine.count(id, { filter: `n == ${v}`, partitionNames: [] }) },
      { label: 'count(*) tag == "t<c>"', run: async (v) => await engine.count(id, { filter: `tag == "t${v}"`, partitionNames: [] }) },
      {
        label: 'search k=10, filter n == c',
        run: async (v) =>
          (await engine.search(id, { field, queries: query, nq: 1, k: 10, offset: 0, metric: 'L2', filter: `n == ${v}`, partitionNames: [] })).hits[0]!
            .length,
      },
    ];

    // The fixed cost of one SDK round trip (no engine work): what every indexed request pays at least.
    const floor: { label: string; run: (v: number) => Promise<number> }[] = [
      { label: 'SDK round trip floor: checkHealth', run: async () => ((await c.checkHealth()).isHealthy ? 1 : 0) },
    ];

    // Wall time is what a client sees, but on a shared machine it is mostly waiting for a core: each SDK round
    // trip wakes the event loop several times. CPU time per request (client and server share this process) is
    // what the request costs, and it does not depend on the machine's load.
    const measure = async (list = ops): Promise<{ ms: number; cpuMs: number; rows: number }[]> => {
      const out: { ms: number; cpuMs: number; rows: number }[] = [];
      for (const op of list) {
        let rows = 0;
        for (let w = 0; w < 2; w++) rows = await op.run(11 + w);
        const times: number[] = [];
        const cpu0 = process.cpuUsage();
        for (let rep = 0; rep < REPS; rep++) {
          const s = performance.now();
          rows = await op.run((rep * 37) % DISTINCT);
          times.push(performance.now() - s);
        }
        const cpu = process.cpuUsage(cpu0);
        out.push({ ms: median(times), cpuMs: (cpu.user + cpu.system) / 1000 / REPS, rows });
      }
      return out;
    };

    const before = await measure();
    const beforeDirect = await measure(direct);
    const b0 = performance.now();
    for (const [field, type] of [
      ['n', 'STL_SORT'],
      ['tag', 'INVERTED'],
    ] as const) {
      const ir = await c.createIndex({ collection_name: name, field_name: field, index_type: type });
      if (ir.error_code !== 'Success') throw new Error(ir.reason);
    }
    await engine.waitForIndexes(id);
    const buildS = secondsSince(b0);
    const after = await measure();
    const afterDirect = await measure(direct);
    const [floorMs] = await measure(floor);

    console.log(`\n${machine()}; ${loadLine()}`);
    console.log(
      `${N} rows x dim ${DIM}, filters select ${N / DISTINCT} rows (${(100 / DISTINCT).toFixed(1)}%); median of ${REPS} requests through the SDK`,
    );
    console.log(`index build (n STL_SORT + tag INVERTED, every sealed segment): ${buildS.toFixed(2)} s`);
    const floorOf = floorMs!.ms;
    console.log(
      `SDK round trip floor (checkHealth, no engine work): ${floorOf.toFixed(2)} ms wall, ${floorMs!.cpuMs.toFixed(2)} ms CPU (client + server); an indexed request cannot be cheaper`,
    );
    table(
      'Scalar index vs scan',
      ops.map((op, i) => ({
        request: op.label,
        'rows returned': after[i]!.rows,
        'scan ms': before[i]!.ms.toFixed(2),
        'index ms': after[i]!.ms.toFixed(2),
        speedup: `${(before[i]!.ms / after[i]!.ms).toFixed(1)}x`,
        'scan CPU ms': before[i]!.cpuMs.toFixed(2),
        'index CPU ms': after[i]!.cpuMs.toFixed(2),
        'CPU speedup': `${(before[i]!.cpuMs / after[i]!.cpuMs).toFixed(1)}x`,
      })),
    );
    table(
      'Scalar index vs scan, in process (engine calls, no gRPC)',
      direct.map((op, i) => ({
        request: op.label,
        'rows returned': afterDirect[i]!.rows,
        'scan ms': beforeDirect[i]!.ms.toFixed(2),
        'index ms': afterDirect[i]!.ms.toFixed(2),
        speedup: `${(beforeDirect[i]!.ms / afterDirect[i]!.ms).toFixed(1)}x`,
      })),
    );
    for (let i = 0; i < direct.length; i++) {
      if (beforeDirect[i]!.rows !== afterDirect[i]!.rows) throw new Error(`${direct[i]!.label}: rows differ between scan and index`);
    }
    for (let i = 0; i < ops.length; i++) {
      if (before[i]!.rows !== after[i]!.rows) throw new Error(`${ops[i]!.label}: ${before[i]!.rows} rows by scan, ${after[i]!.rows} by index`);
    }
    console.log(`\ntotal ${secondsSince(t0).toFixed(1)} s`);
  } finally {
    await t.close();
  }
}

await main();
