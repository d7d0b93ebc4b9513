/**
 * Where one indexed scalar request goes (issue 12): a CPU profile (node:inspector) of a loop of SDK
 * `count` / `query` requests whose filter an index answers, client and server in this one process, printed as
 * the top functions by self time and by the server's stages. The data set is small (the indexed work does
 * not depend on it); what is measured is the fixed cost per request.
 * Usage: npx tsx bench/scalar-request-profile.ts   (BENCH_N=200000 BENCH_REPS=1500 BENCH_OP=count|query)
 */
import { Session } from 'node:inspector/promises';
import { DataType } from '@zilliz/milvus2-sdk-node';
import type { Column } from '../src/schema/types.js';
import { startTestServer } from '../test/helpers.js';
import { clustered, envInt } from './common.js';
import { collectionId, loadLine } from './fixture.js';

const N = envInt('BENCH_N', 200_000);
const REPS = envInt('BENCH_REPS', 1500);
const DIM = 8;
const DISTINCT = 1000;
const OP = process.env.BENCH_OP ?? 'count';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

async function main(): Promise<void> {
  const t = await startTestServer({ autoCompaction: false });
  try {
    const c = t.client;
    const name = 'scalar_profile';
    const r = await c.createCollection({
      collection_name: name,
      fields: [
        { name: 'id', data_type: DataType.Int64, is_primary_key: true },
        { name: 'v', data_type: DataType.FloatVector, dim: DIM },
        { name: 'n', data_type: DataType.Int64 },
      ],
    });
    if (r.error_code !== 'Success') throw new Error(r.reason);
    const engine = t.server.engine;
    const id = collectionId(engine, name);
    const vecs = clustered(N, DIM, 7);
    const ids = BigInt64Array.from({ length: N }, (_, i) => BigInt(i));
    const ns = BigInt64Array.from({ length: N }, (_, i) => BigInt((i * 7919) % DISTINCT));
    const cols = new Map<string, Column>([
      ['id', { kind: 'int64', data: ids }],
      ['v', { kind: 'vector', dim: DIM, data: vecs }],
      ['n', { kind: 'int64', data: ns }],
    ]);
    await engine.insert(id, undefined, cols, N, false);
    await c.flushSync({ collection_names: [name] });
    await c.createIndex({ collection_name: name, field_name: 'v', index_type: 'FLAT', metric_type: 'L2' });
    await c.createIndex({ collection_name: name, field_name: 'n', index_type: 'STL_SORT' });
    await engine.waitForIndexes(id);
    await c.loadCollectionSync({ collection_name: name });
    const run = async (v: number): Promise<number> =>
      OP === 'query'
        ? (await c.query({ collection_name: name, filter: `n == ${v}`, output_fields: ['id'], limit: 16_384 })).data.length
        : Number((await c.count({ collection_name: name, expr: `n == ${v}` })).data);
    for (let i = 0; i < 200; i++) await run(i % DISTINCT);
    // Per-request wall and CPU of: the SDK request with a new literal each time (a filter-cache miss), with one
    // literal (a hit), the SDK's empty round trip, and the engine call alone; interleaved rounds, so load
    // drifts hit all alike.
    const variants: [string, (i: number) => Promise<unknown>][] = [
      [`SDK ${OP}, literal varies`, (i) => run((i * 37) % DISTINCT)],
      [`SDK ${OP}, same literal`, () => run(537)],
      ['SDK checkHealth (round trip floor)', () => c.checkHealth()],
      [
        `engine ${OP}, literal varies`,
        (i) =>
          OP === 'query'
            ? engine.query(id, { filter: `n == ${(i * 37) % DISTINCT}`, partitionNames: [], offset: 0, limit: 16_384 })
            : engine.count(id, { filter: `n == ${(i * 37) % DISTINCT}`, partitionNames: [] }),
      ],
      [
        `engine ${OP}, same literal`,
        () =>
          OP === 'query'
            ? engine.query(id, { filter: 'n == 537', partitionNames: [], offset: 0, limit: 16_384 })
            : engine.count(id, { filter: 'n == 537', partitionNames: [] }),
      ],
    ];
    const spent = variants.map(() => ({ wall: 0, cpu: 0, n: 0 }));
    for (let round = 0; round < 10; round++) {
      for (let v = 0; v < variants.length; v++) {
        const cpu0 = process.cpuUsage();
        const w0 = performance.now();
        for (let i = 0; i < REPS / 10; i++) await variants[v]![1](round * 1000 + i);
        const cpu = process.cpuUsage(cpu0);
        spent[v]!.wall += performance.now() - w0;
        spent[v]!.cpu += (cpu.user + cpu.system) / 1000;
        spent[v]!.n += Math.floor(REPS / 10);
      }
    }
    console.log(`${OP} n == c over ${N} rows (${N / DISTINCT} rows match); ${loadLine()}`);
    variants.forEach(([label], v) =>
      console.log(`  ${label}: ${(spent[v]!.wall / spent[v]!.n).toFixed(3)} ms wall, ${(spent[v]!.cpu / spent[v]!.n).toFixed(3)} ms CPU per request`),
    );
    if (process.env.BENCH_PROFILE === '0') return;
    const session = new Session();
    session.connect();
    await session.post('Profiler.enable');
    await session.post('Profiler.setSamplingInterval', { interval: 100 });
    await session.post('Profiler.start');
    const s = performance.now();
    const cpu0 = process.cpuUsage();
    for (let i = 0; i < REPS; i++) await run((i * 37) % DISTINCT);
    const cpu = process.cpuUsage(cpu0);
    const wallMs = (performance.now() - s) / REPS;
    const { profile } = (await session.post('Profiler.stop')) as unknown as {
      profile: { nodes: ProfileNode[]; samples: number[]; timeDeltas: number[] };
    };
    session.disconnect();
    const self = new Map<number, number>();
    profile.samples.forEach((n, i) => self.set(n, (self.get(n) ?? 0) + (profile.timeDeltas[i] ?? 0)));
    const total = profile.timeDeltas.reduce((a, b) => a + b, 0);
    const byFn = new Map<string, number>();
    const parent = new Map<number, number>();
    const nodes = new Map(profile.nodes.map((n) => [n.id, n]));
    for (const n of profile.nodes) for (const ch of n.children ?? []) parent.set(ch, n.id);
    // Inclusive time per source area: a sample counts once for every area on its stack.
    const byArea = new Map<string, number>();
    const byOwnFn = new Map<string, number>();
    const areaOf = (url: string): string | undefined => {
      const m = /\/(src\/[a-z]+|node_modules\/(@[^/]+\/)?[^/]+)\//.exec(url);
      return m ? m[1] : url.startsWith('node:') ? url : undefined;
    };
    for (const [nid, us] of self) {
      const n = nodes.get(nid)!;
      const key = `${n.callFrame.functionName || '(anon)'} ${n.callFrame.url.replace(/^.*\/(src|node_modules)\//, '$1/')}:${n.callFrame.lineNumber + 1}`;
      byFn.set(key, (byFn.get(key) ?? 0) + us);
      const seenFn = new Set<string>();
      for (let cur: number | undefined = nid; cur !== undefined; cur = parent.get(cur)) {
        const f = nodes.get(cur)!.callFrame;
        if (!/\/src\/[a-z]/.test(f.url) || f.url.includes('node_modules')) continue;
        const fk = `${f.functionName || '(anon)'} ${f.url.replace(/^.*\/src\//, 'src/')}`;
        if (seenFn.has(fk)) continue;
        seenFn.add(fk);
        byOwnFn.set(fk, (byOwnFn.get(fk) ?? 0) + us);
      }
      const seen = new Set<string>();
      for (let cur: number | undefined = nid; cur !== undefined; cur = parent.get(cur)) {
        const a = areaOf(nodes.get(cur)!.callFrame.url);
        if (a && !seen.has(a)) {
          seen.add(a);
          byArea.set(a, (byArea.get(a) ?? 0) + us);
        }
      }
    }
    console.log(`${OP} n == c over ${N} rows (${N / DISTINCT} rows match), ${REPS} SDK requests; ${loadLine()}`);
    console.log(`per request: ${wallMs.toFixed(3)} ms wall, ${((cpu.user + cpu.system) / 1000 / REPS).toFixed(3)} ms CPU (client + server)`);
    const perReq = (us: number) => `${(us / 1000 / REPS).toFixed(4)} ms/req  ${((100 * us) / total).toFixed(1)}%`;
    console.log('\ninclusive by area:');
    for (const [a, us] of [...byArea].sort((x, y) => y[1] - x[1]).slice(0, 25)) console.log(`  ${perReq(us)}  ${a}`);
    console.log('\nQuiver functions, inclusive (server side):');
    for (const [k, us] of [...byOwnFn].sort((x, y) => y[1] - x[1]).slice(0, 45)) console.log(`  ${perReq(us)}  ${k}`);
    console.log('\ntop self time:');
    for (const [k, us] of [...byFn].sort((x, y) => y[1] - x[1]).slice(0, 40)) console.log(`  ${perReq(us)}  ${k}`);
  } finally {
    await t.close();
  }
}

await main();
