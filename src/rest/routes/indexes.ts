import { z } from 'zod';
import type { RestRoute } from '../types.js';
import { createIndexes, indexParam } from './collections.js';
import { collectionName, dbName, int64Out, kvs, route, withCollection } from './common.js';

/* eslint-disable @typescript-eslint/no-explicit-any */

/** `/v2/vectordb/indexes/*`: create (several at once), describe, list, drop, index properties. */

const indexBody = z.object({ dbName, collectionName, indexName: z.string() }).passthrough();

export const indexRoutes: readonly RestRoute[] = [
  route('indexes/create', z.object({ dbName, collectionName, indexParams: z.array(indexParam).min(1).max(64) }).passthrough(), async (b, call, ctx) => {
    await createIndexes(call, ctx.dbName, b.collectionName, b.indexParams);
    return {};
  }),
  route('indexes/drop', indexBody, async (b, call, ctx) => {
    await call('DropIndex', { db_name: ctx.dbName, collection_name: b.collectionName, index_name: b.indexName });
    return {};
  }),
  route('indexes/describe', indexBody, async (b, call, ctx) => {
    const r = await call('DescribeIndex', { db_name: ctx.dbName, collection_name: b.collectionName, index_name: b.indexName });
    return (r.index_descriptions ?? []).map((d: any) => {
      const params = Object.fromEntries((d.params ?? []).map((p: any) => [p.key, p.value]));
      return {
        indexName: d.index_name,
        fieldName: d.field_name,
        indexType: params['index_type'] ?? '',
        metricType: params['metric_type'] ?? '',
        totalRows: int64Out(d.total_rows ?? '0', ctx),
        pendingRows: int64Out(d.pending_index_rows ?? '0', ctx),
        indexedRows: int64Out(d.indexed_rows ?? '0', ctx),
        indexState: d.state,
        failReason: d.index_state_fail_reason ?? '',
      };
    });
  }),
  route('indexes/list', withCollection, async (b, call, ctx) => {
    try {
      const r = await call('DescribeIndex', { db_name: ctx.dbName, collection_name: b.collectionName });
      return (r.index_descriptions ?? []).map((d: any) => d.index_name);
    } catch (e) {
      // No index is an empty list, as in Milvus; any other failure (no such collection) is answered.
      if ((e as { code?: number }).code === 700) return [];
      throw e;
    }
  }),
  route(
    'indexes/alter_properties',
    z.object({ dbName, collectionName, indexName: z.string(), properties: z.record(z.unknown()) }).passthrough(),
    async (b, call, ctx) => {
      await call('AlterIndex', { db_name: ctx.dbName, collection_name: b.collectionName, index_name: b.indexName, extra_params: kvs(b.properties) });
      return {};
    },
  ),
  route(
    'indexes/drop_properties',
    z.object({ dbName, collectionName, indexName: z.string(), propertyKeys: z.array(z.string()) }).passthrough(),
    async (b, call, ctx) => {
      await call('AlterIndex', { db_name: ctx.dbName, collection_name: b.collectionName, index_name: b.indexName, delete_keys: b.propertyKeys });
      return {};
    },
  ),
];
