import { z } from 'zod';
import type { RestRoute } from '../types.js';
import { int64Out, kvs, route } from './common.js';

/* eslint-disable @typescript-eslint/no-explicit-any */

/** `/v2/vectordb/databases/*`: create, drop, list, describe, alter and drop properties. */

const dbBody = z.object({ dbName: z.string({ required_error: 'dbName is required' }) }).passthrough();
const propsBody = z.object({ dbName: z.string(), properties: z.record(z.unknown()).optional() }).passthrough();

export const databaseRoutes: readonly RestRoute[] = [
  route('databases/create', propsBody, async (b, call) => {
    await call('CreateDatabase', { db_name: b.dbName, properties: kvs(b.properties) });
    return {};
  }),
  route('databases/drop', dbBody, async (b, call) => {
    await call('DropDatabase', { db_name: b.dbName });
    return {};
  }),
  route('databases/list', z.object({}).passthrough(), async (_b, call) => (await call('ListDatabases', {})).db_names ?? []),
  route('databases/describe', dbBody, async (b, call, ctx) => {
    const r = await call('DescribeDatabase', { db_name: b.dbName });
    return { dbName: r.db_name, dbID: int64Out(r.dbID, ctx), properties: (r.properties ?? []).map((p: any) => ({ key: p.key, value: p.value })) };
  }),
  route('databases/alter', propsBody, async (b, call) => {
    await call('AlterDatabase', { db_name: b.dbName, properties: kvs(b.properties) });
    return {};
  }),
  route('databases/drop_properties', z.object({ dbName: z.string(), propertyKeys: z.array(z.string()) }).passthrough(), async (b, call) => {
    await call('AlterDatabase', { db_name: b.dbName, delete_keys: b.propertyKeys });
    return {};
  }),
];
