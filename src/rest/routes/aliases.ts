import { z } from 'zod';
import type { RestRoute } from '../types.js';
import { collectionName, dbName, route } from './common.js';

/** `/v2/vectordb/aliases/*`: list (optionally of one collection), create, describe, alter, drop. */

const aliasBody = z.object({ dbName, aliasName: z.string() }).passthrough();
const aliasCollectionBody = z.object({ dbName, collectionName, aliasName: z.string() }).passthrough();

export const aliasRoutes: readonly RestRoute[] = [
  route('aliases/list', z.object({ dbName, collectionName: z.string().optional() }).passthrough(), async (b, call, ctx) => {
    return (await call('ListAliases', { db_name: ctx.dbName, collection_name: b.collectionName ?? '' })).aliases ?? [];
  }),
  route('aliases/create', aliasCollectionBody, async (b, call, ctx) => {
    await call('CreateAlias', { db_name: ctx.dbName, collection_name: b.collectionName, alias: b.aliasName });
    return {};
  }),
  route('aliases/describe', aliasBody, async (b, call, ctx) => {
    const r = await call('DescribeAlias', { db_name: ctx.dbName, alias: b.aliasName });
    return { dbName: r.db_name || ctx.dbName, collectionName: r.collection, aliasName: r.alias };
  }),
  route('aliases/alter', aliasCollectionBody, async (b, call, ctx) => {
    await call('AlterAlias', { db_name: ctx.dbName, collection_name: b.collectionName, alias: b.aliasName });
    return {};
  }),
  route('aliases/drop', aliasBody, async (b, call, ctx) => {
    await call('DropAlias', { db_name: ctx.dbName, alias: b.aliasName });
    return {};
  }),
];
