/**
 * Helpers shared by the compaction, snapshot and restart benchmarks: an in-process server with an SDK
 * client, a two-field collection (int64 pk `id`, float vector `v`), and inserts that go straight to
 * `engine.insert` with typed-array columns, so building a data set costs no gRPC encoding and no
 * per-row objects (the figures these scripts report are about what happens after the insert).
 */
import { loadavg } from 'node:os';
import { DataType, type MilvusClient } from '@zilliz/milvus2-sdk-node';
import type { Engine } from '../src/wiring/engine.js';
import type { Column } from '../src/schema/types.js';

export const quick = process.env.BENCH_QUICK === '1';

/** `machine()` is static; the load average says how busy the (shared) machine was during the run. */
export function loadLine(): string {
  return `load average ${loadavg()
    .map((x) => x.toFixed(2))
    .join(' / ')} (1/5/15 min)`;
}

export async function createVectorCollection(client: MilvusClient, name: string, dim: number): Promise<void> {
  const r = await client.createCollection({
    collection_name: name,
    fields: [
      { name: 'id', data_type: DataType.Int64, is_primary_key: true },
      { name: 'v', data_type: DataType.FloatVector, dim },
    ],
  });
  if (r.error_code !== 'Success') throw new Error(`createCollection ${name}: ${r.reason}`);
}

export async function createHnsw(client: MilvusClient, name: string, m: number, efConstruction: number): Promise<void> {
  const r = await client.createIndex({ collection_name: name, field_name: 'v', index_type: 'HNSW', metric_type: 'L2', params: { M: m, efConstruction } });
  if (r.error_code !== 'Success') throw new Error(`createIndex ${name}: ${r.reason}`);
}

/** Rows [from, to) of `data` as engine columns; ids are the row numbers plus `idBase`. */
export function columnsOf(data: Float32Array, dim: number, from: number, to: number, idBase = 0): Map<string, Column> {
  const n = to - from;
  const ids = new BigInt64Array(n);
  for (let i = 0; i < n; i++) ids[i] = BigInt(idBase + from + i);
  return new Map<string, Column>([
    ['id', { kind: 'int64', data: ids }],
    // A copy: the engine keeps the column in its growing segment.
    ['v', { kind: 'vector', dim, data: data.slice(from * dim, to * dim) }],
  ]);
}

/** Inserts rows [from, to) in batches through `engine.insert`. */
export async function insertRange(
  engine: Engine,
  collectionId: number,
  data: Float32Array,
  dim: number,
  from: number,
  to: number,
  batch: number,
  idBase = 0,
): Promise<void> {
  for (let b = from; b < to; b += batch) {
    const e = Math.min(to, b + batch);
    await engine.insert(collectionId, undefined, columnsOf(data, dim, b, e, idBase), e - b, false);
  }
}

export function collectionId(engine: Engine, name: string): number {
  return engine.catalog.resolveCollection('default', name).id;
}

/** Sum of the insert binlog sizes (every field, timestamps included) of the given flushed segments. */
export function binlogBytes(engine: Engine, collId: number, segmentIds?: ReadonlySet<number>): number {
  let bytes = 0;
  for (const s of engine.catalog.segments(collId)) {
    if (s.state !== 'Flushed' || (segmentIds && !segmentIds.has(s.id))) continue;
    for (const logs of Object.values(s.binlogs)) for (const b of logs) bytes += b.size;
  }
  return bytes;
}

export const MB = 1024 * 1024;
export const secondsSince = (t0: number): number => (performance.now() - t0) / 1000;
