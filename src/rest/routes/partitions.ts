import { z } from 'zod';
import type { RestRoute } from '../types.js';
import { collectionName, dbName, route, withCollection } from './common.js';

/* eslint-disable @typescript-eslint/no-explicit-any */

/** `/v2/vectordb/partitions/*`: list, create, drop, has, load, release, stats. */

const partitionBody = z.object({ dbName, collectionName, partitionName: z.string() }).passthrough();
const partitionsBody = z.object({ dbName, collectionName, partitionNames: z.array(z.string()).min(1).max(4096) }).passthrough();

export const partitionRoutes: readonly RestRoute[] = [
  route('partitions/list', withCollection, async (b, call, ctx) => {
    return (await call('ShowPartitions', { db_name: ctx.dbName, collection_name: b.collectionName })).partition_names ?? [];
  }),
  route('partitions/create', partitionBody, async (b, call, ctx) => {
    await call('CreatePartition', { db_name: ctx.dbName, collection_name: b.collectionName, partition_name: b.partitionName });
    return {};
  }),
  route('partitions/drop', partitionBody, async (b, call, ctx) => {
    await call('DropPartition', { db_name: ctx.dbName, collection_name: b.collectionName, partition_name: b.partitionName });
    return {};
  }),
  route('partitions/has', partitionBody, async (b, call, ctx) => {
    const r = await call('HasPartition', { db_name: ctx.dbName, collection_name: b.collectionName, partition_name: b.partitionName });
    return { has: Boolean(r.value) };
  }),
  route('partitions/load', partitionsBody, async (b, call, ctx) => {
    await call('LoadPartitions', { db_name: ctx.dbName, collection_name: b.collectionName, partition_names: b.partitionNames });
    return {};
  }),
  route('partitions/release', partitionsBody, async (b, call, ctx) => {
    await call('ReleasePartitions', { db_name: ctx.dbName, collection_name: b.collectionName, partition_names: b.partitionNames });
    return {};
  }),
  route('partitions/get_stats', partitionBody, async (b, call, ctx) => {
    const r = await call('GetPartitionStatistics', { db_name: ctx.dbName, collection_name: b.collectionName, partition_name: b.partitionName });
    return { rowCount: Number((r.stats ?? []).find((s: any) => s.key === 'row_count')?.value ?? 0) };
  }),
];
