/**
 * Child process of bench/indexes.ts: what a query node holds resident for one loaded index, measured in a
 * fresh process so no other case's memory is counted. Loads the index file the way the query node does
 * (openIndexFile), gives it the float column either resident (decoded binlog, as for float HNSW) or as the
 * on-demand binlog reader (as for quantized indexes), runs the queries and prints one JSON line:
 * { residentBytes, rssBytes, qps, recall }. residentBytes = growth of RSS from before the load to right after it.
 *
 *   node --expose-gc --import tsx bench/index-resident.ts <dir> <resident|lazy> <search params JSON>
 * <dir> holds index.qvx, v.binlog, queries.f32, truth.i32 and meta.json ({ n, dim, q, k }).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { attachVectors, openIndexFile, type SearchOptions } from '../src/index/index.js';
import { decodeColumn } from '../src/storage/binlog.js';
import { openLazyVectorColumn } from '../src/storage/lazy-vector-column.js';

const [dir, mode, searchJson] = process.argv.slice(2);
if (!dir || (mode !== 'resident' && mode !== 'lazy') || !searchJson) throw new Error('usage: index-resident.ts <dir> <resident|lazy> <search JSON>');
const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error('run with node --expose-gc');
const meta = JSON.parse(readFileSync(join(dir, 'meta.json'), 'utf8')) as { n: number; dim: number; q: number; k: number };
const qbuf = readFileSync(join(dir, 'queries.f32'));
const queries = new Float32Array(qbuf.buffer.slice(qbuf.byteOffset, qbuf.byteOffset + qbuf.byteLength));
const tbuf = readFileSync(join(dir, 'truth.i32'));
const truth = new Int32Array(tbuf.buffer.slice(tbuf.byteOffset, tbuf.byteOffset + tbuf.byteLength));

function rss(): number {
  gc!();
  gc!();
  return process.memoryUsage().rss;
}

const before = rss();
const index = openIndexFile(join(dir, 'index.qvx'), { dim: meta.dim, metric: 'L2', rows: meta.n });
const binlog = join(dir, 'v.binlog');
let keep: unknown;
if (mode === 'resident') {
  const col = decodeColumn(readFileSync(binlog), 'vector');
  if (col.kind !== 'vector') throw new Error('not a vector binlog');
  attachVectors(index, col.data);
  keep = col;
} else {
  const col = openLazyVectorColumn(binlog, meta.n);
  attachVectors(index, col.lazy ?? col.data);
  keep = col;
}
// Measured before searching, so the JIT and the heap of the search loop are not counted as the index's.
const loadedBytes = rss() - before;
const opts = JSON.parse(searchJson) as Omit<SearchOptions, 'k'>;
const { dim, q, k } = meta;
for (let i = 0; i < Math.min(q, 20); i++) index.search(queries.subarray(i * dim, (i + 1) * dim), 1, { k, ...opts });
let hit = 0;
const t0 = performance.now();
for (let i = 0; i < q; i++) {
  const h = index.search(queries.subarray(i * dim, (i + 1) * dim), 1, { k, ...opts })[0]!;
  const t = new Set(truth.subarray(i * k, (i + 1) * k));
  for (const r of h.rows) if (t.has(r)) hit++;
}
const sec = (performance.now() - t0) / 1000;
void keep;
console.log(JSON.stringify({ residentBytes: loadedBytes, rssBytes: process.memoryUsage().rss, qps: q / sec, recall: hit / (q * k) }));
