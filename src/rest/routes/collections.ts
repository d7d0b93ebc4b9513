import { z } from 'zod';
import { quiverError } from '../../common/errors.js';
import { root } from '../../proxy/proto.js';
import { DEFAULT_VALUE_MEMBER } from '../../proxy/schema-proto.js';
import { collectionName, dbName, int64Out, kvs, route, withCollection } from './common.js';
import type { RestCall, RestRoute } from '../types.js';

/* eslint-disable @typescript-eslint/no-explicit-any */

/**
 * `/v2/vectordb/collections/*`: create (quick form with `dimension`, or a full `schema`, then the
 * `indexParams` and a load, as Milvus's createCollection does), describe, list, has, drop, rename, stats,
 * load, release, load state, flush, compaction, properties.
 */

const schemaType = root.lookupType('milvus.proto.schema.CollectionSchema');

const fieldSpec = z
  .object({
    fieldName: z.string(),
    dataType: z.string(),
    elementDataType: z.string().optional(),
    isPrimary: z.boolean().optional(),
    isPartitionKey: z.boolean().optional(),
    isClusteringKey: z.boolean().optional(),
    nullable: z.boolean().optional(),
    defaultValue: z.union([z.string(), z.number(), z.boolean(), z.null()]).optional(),
    description: z.string().optional(),
    elementTypeParams: z.record(z.unknown()).optional(),
  })
  .passthrough();

const functionSpec = z
  .object({
    name: z.string().optional(),
    functionName: z.string().optional(),
    type: z.string().optional(),
    functionType: z.string().optional(),
    description: z.string().optional(),
    inputFieldNames: z.array(z.string()),
    outputFieldNames: z.array(z.string()),
    params: z.record(z.unknown()).optional(),
  })
  .passthrough();

const indexParam = z
  .object({
    fieldName: z.string(),
    indexName: z.string().optional(),
    metricType: z.string().optional(),
    indexType: z.string().optional(),
    params: z.record(z.unknown()).optional(),
  })
  .passthrough();

const createBody = z
  .object({
    dbName,
    collectionName,
    dimension: z.number().int().optional(),
    metricType: z.string().optional(),
    idType: z.string().optional(),
    autoID: z.boolean().optional(),
    autoId: z.boolean().optional(),
    primaryFieldName: z.string().optional(),
    vectorFieldName: z.string().optional(),
    description: z.string().optional(),
    schema: z
      .object({
        autoId: z.boolean().optional(),
        autoID: z.boolean().optional(),
        enableDynamicField: z.boolean().optional(),
        enabledDynamicField: z.boolean().optional(),
        fields: z.array(fieldSpec).max(4096),
        functions: z.array(functionSpec).optional(),
      })
      .passthrough()
      .optional(),
    indexParams: z.array(indexParam).max(64).optional(),
    params: z.record(z.unknown()).optional(),
  })
  .passthrough();

function defaultValueProto(dataType: string, v: unknown, field: string): Record<string, unknown> | undefined {
  if (v === undefined || v === null) return undefined;
  // Geometry (WKT) and Timestamptz (ISO-8601) defaults travel as text, as the SDK's gRPC client sends them.
  const member = DEFAULT_VALUE_MEMBER[dataType] ?? (dataType === 'Geometry' || dataType === 'Timestamptz' ? 'string_data' : undefined);
  if (!member) throw quiverError('ParameterInvalid', `defaultValue is not supported for ${dataType} field ${field}`);
  return { [member]: member === 'long_data' ? String(v) : v };
}

/** The CreateCollection `schema` bytes for the request, as a gRPC client encodes them. */
function schemaBytes(b: z.infer<typeof createBody>): Uint8Array {
  const p = b.params ?? {};
  let schema: Record<string, unknown>;
  if (!b.schema || b.schema.fields.length === 0) {
    if (b.schema?.functions?.length)
      throw quiverError('ParameterInvalid', 'functions are not supported when quickly creating a collection (no schema fields)');
    if (!b.dimension) throw quiverError('ParameterInvalid', 'dimension is required to quickly create a collection (or give schema.fields)');
    const idType = b.idType ?? 'Int64';
    let pkType: string;
    const pkParams: { key: string; value: string }[] = [];
    if (idType === 'VarChar' || idType === 'Varchar') {
      pkType = 'VarChar';
      pkParams.push({ key: 'max_length', value: String(p['max_length'] ?? p['maxLength'] ?? '') });
    } else if (idType === 'Int64' || idType === 'int64') pkType = 'Int64';
    else throw quiverError('ParameterInvalid', `idType can only be Int64 or VarChar, got ${idType}`);
    const dynamic = p['enableDynamicField'] === undefined ? true : String(p['enableDynamicField']) === 'true';
    schema = {
      name: b.collectionName,
      description: b.description ?? '',
      enable_dynamic_field: dynamic,
      fields: [
        {
          fieldID: 100,
          name: b.primaryFieldName || 'id',
          is_primary_key: true,
          data_type: pkType,
          autoID: Boolean(b.autoID ?? b.autoId),
          type_params: pkParams,
        },
        { fieldID: 101, name: b.vectorFieldName || 'vector', data_type: 'FloatVector', type_params: [{ key: 'dim', value: String(b.dimension) }] },
      ],
    };
  } else {
    const s = b.schema;
    const autoId = Boolean(s.autoID ?? s.autoId ?? b.autoID ?? b.autoId);
    const outputs = new Set((s.functions ?? []).flatMap((f) => f.outputFieldNames));
    schema = {
      name: b.collectionName,
      description: b.description ?? '',
      autoID: autoId,
      enable_dynamic_field: Boolean(s.enableDynamicField ?? s.enabledDynamicField ?? p['enableDynamicField'] === true),
      fields: s.fields.map((f) => ({
        name: f.fieldName,
        description: f.description ?? '',
        is_primary_key: Boolean(f.isPrimary),
        is_partition_key: Boolean(f.isPartitionKey),
        is_clustering_key: Boolean(f.isClusteringKey),
        nullable: Boolean(f.nullable),
        autoID: f.isPrimary ? autoId : false,
        data_type: f.dataType,
        ...(f.dataType === 'Array' ? { element_type: f.elementDataType ?? 'None' } : {}),
        type_params: kvs(f.elementTypeParams),
        ...(f.defaultValue !== undefined && f.defaultValue !== null ? { default_value: defaultValueProto(f.dataType, f.defaultValue, f.fieldName) } : {}),
        is_function_output: outputs.has(f.fieldName),
      })),
      functions: (s.functions ?? []).map((fn) => ({
        name: fn.name ?? fn.functionName ?? '',
        description: fn.description ?? '',
        type: fn.type ?? fn.functionType ?? 'Unknown',
        input_field_names: fn.inputFieldNames,
        output_field_names: fn.outputFieldNames,
        params: kvs(fn.params),
      })),
    };
    for (const f of s.fields) {
      if (!(f.dataType in schemaType.lookupEnum('milvus.proto.schema.DataType').values))
        throw quiverError('ParameterInvalid', `data type ${f.dataType} of field ${f.fieldName} is invalid (names are case sensitive)`);
    }
  }
  try {
    return schemaType.encode(schemaType.fromObject(schema)).finish();
  } catch (e) {
    throw quiverError('ParameterInvalid', `invalid schema: ${(e as Error).message}`);
  }
}

/** CreateIndex `extra_params` from a REST index param (Milvus's convertToExtraParams). */
export function indexExtraParams(ip: z.infer<typeof indexParam>): { key: string; value: string }[] {
  const params: Record<string, unknown> = { ...(ip.params ?? {}) };
  const indexType = ip.indexType ?? (params['index_type'] as string | undefined) ?? (params['indexType'] as string | undefined);
  delete params['index_type'];
  delete params['indexType'];
  const out: { key: string; value: string }[] = [];
  if (ip.metricType) out.push({ key: 'metric_type', value: ip.metricType });
  if (indexType) out.push({ key: 'index_type', value: indexType });
  if (Object.keys(params).length > 0) out.push({ key: 'params', value: JSON.stringify(params) });
  return out;
}

export { indexParam };

/** One CreateIndex per REST index param, in order (indexes/create, and collections/create with `indexParams`). */
export async function createIndexes(call: RestCall, dbName: string, collection: string, params: readonly z.infer<typeof indexParam>[]): Promise<void> {
  for (const ip of params) {
    await call('CreateIndex', {
      db_name: dbName,
      collection_name: collection,
      field_name: ip.fieldName,
      index_name: ip.indexName ?? '',
      extra_params: indexExtraParams(ip),
    });
  }
}

const renameBody = z.object({ dbName, collectionName, newCollectionName: z.string(), newDbName: z.string().optional() }).passthrough();
const loadStateBody = z.object({ dbName, collectionName, partitionNames: z.array(z.string()).optional() }).passthrough();

async function loadState(call: RestCall, db: string, b: z.infer<typeof loadStateBody>): Promise<unknown> {
  const st = await call('GetLoadState', { db_name: db, collection_name: b.collectionName, partition_names: b.partitionNames ?? [] });
  if (st.state === 'LoadStateNotExist') throw quiverError('CollectionNotFound', `collection not found[collection=${b.collectionName}]`);
  if (st.state === 'LoadStateNotLoad') return { loadState: st.state };
  const p = await call('GetLoadingProgress', { db_name: db, collection_name: b.collectionName, partition_names: b.partitionNames ?? [] });
  const progress = Number(p.progress ?? -1);
  return { loadState: progress >= 100 ? 'LoadStateLoaded' : 'LoadStateLoading', loadProgress: progress };
}

export const collectionRoutes: readonly RestRoute[] = [
  route('collections/create', createBody, async (b, call, ctx) => {
    const p = b.params ?? {};
    const consistency = p['consistencyLevel'] === undefined ? 'Bounded' : String(p['consistencyLevel']);
    if (!['Strong', 'Session', 'Bounded', 'Eventually', 'Customized'].includes(consistency))
      throw quiverError('ParameterInvalid', `consistencyLevel can only be Strong, Session, Bounded, Eventually or Customized, got ${consistency}`);
    const props: Record<string, unknown> = {};
    if (p['ttlSeconds'] !== undefined) props['collection.ttl.seconds'] = p['ttlSeconds'];
    if (p['partitionKeyIsolation'] !== undefined) props['partitionkey.isolation'] = p['partitionKeyIsolation'];
    const quick = !b.schema || b.schema.fields.length === 0;
    const hasPartitionKey = !quick && b.schema!.fields.some((f) => f.isPartitionKey);
    await call('CreateCollection', {
      db_name: ctx.dbName,
      collection_name: b.collectionName,
      schema: schemaBytes(b),
      shards_num: p['shardsNum'] === undefined ? 1 : Number(p['shardsNum']),
      consistency_level: consistency,
      properties: kvs(props),
      ...(hasPartitionKey && p['partitionsNum'] !== undefined ? { num_partitions: String(p['partitionsNum']) } : {}),
    });
    if (quick) {
      const field = b.vectorFieldName || 'vector';
      await call('CreateIndex', {
        db_name: ctx.dbName,
        collection_name: b.collectionName,
        field_name: field,
        index_name: field,
        extra_params: [{ key: 'metric_type', value: b.metricType || 'COSINE' }],
      });
    } else {
      if (!b.indexParams || b.indexParams.length === 0) return {};
      const names = new Set(b.schema!.fields.map((f) => f.fieldName));
      const missing = b.indexParams.find((ip) => !names.has(ip.fieldName));
      if (missing) throw quiverError('ParameterMissing', `index field ${missing.fieldName} is not defined in the schema`);
      await createIndexes(call, ctx.dbName, b.collectionName, b.indexParams);
    }
    await call('LoadCollection', { db_name: ctx.dbName, collection_name: b.collectionName });
    return {};
  }),
  route('collections/describe', withCollection, async (b, call, ctx) => {
    const d = await call('DescribeCollection', { db_name: ctx.dbName, collection_name: b.collectionName });
    const schema = d.schema ?? {};
    const fields: any[] = schema.fields ?? [];
    const pk = fields.find((f) => f.is_primary_key);
    let load = '';
    try {
      load = (await call('GetLoadState', { db_name: ctx.dbName, collection_name: b.collectionName })).state;
    } catch {
      // Milvus leaves `load` empty when the state cannot be read.
    }
    let indexes: unknown[] = [];
    try {
      const idx = await call('DescribeIndex', { db_name: ctx.dbName, collection_name: b.collectionName });
      indexes = (idx.index_descriptions ?? []).map((i: any) => {
        const params = Object.fromEntries((i.params ?? []).map((p: any) => [p.key, p.value]));
        return { fieldName: i.field_name, indexName: i.index_name, metricType: params['metric_type'] ?? '' };
      });
    } catch {
      // No index yet: an empty list, as Milvus answers.
    }
    return {
      collectionName: d.collection_name,
      collectionID: int64Out(d.collectionID, ctx),
      description: schema.description ?? '',
      autoId: Boolean(pk?.autoID),
      fields: fields.map((f) => ({
        name: f.name,
        id: int64Out(f.fieldID, ctx),
        type: f.data_type,
        description: f.description ?? '',
        primaryKey: Boolean(f.is_primary_key),
        partitionKey: Boolean(f.is_partition_key),
        clusteringKey: Boolean(f.is_clustering_key),
        autoId: Boolean(f.autoID),
        nullable: Boolean(f.nullable),
        ...(f.data_type === 'Array' ? { elementType: f.element_type } : {}),
        ...(f.is_function_output ? { isFunctionOutput: true } : {}),
        params: (f.type_params ?? []).map((p: any) => ({ key: p.key, value: p.value })),
      })),
      functions: (schema.functions ?? []).map((fn: any) => ({
        name: fn.name,
        type: fn.type,
        description: fn.description ?? '',
        inputFieldNames: fn.input_field_names ?? [],
        outputFieldNames: fn.output_field_names ?? [],
        params: (fn.params ?? []).map((p: any) => ({ key: p.key, value: p.value })),
      })),
      aliases: d.aliases ?? [],
      indexes,
      load,
      shardsNum: d.shards_num,
      partitionsNum: Number(d.num_partitions ?? 0),
      consistencyLevel: d.consistency_level,
      enableDynamicField: Boolean(schema.enable_dynamic_field),
      properties: (d.properties ?? []).map((p: any) => ({ key: p.key, value: p.value })),
    };
  }),
  route('collections/list', z.object({ dbName }).passthrough(), async (_b, call, ctx) => {
    return (await call('ShowCollections', { db_name: ctx.dbName })).collection_names ?? [];
  }),
  route('collections/has', withCollection, async (b, call, ctx) => {
    return { has: Boolean((await call('HasCollection', { db_name: ctx.dbName, collection_name: b.collectionName })).value) };
  }),
  route('collections/drop', withCollection, async (b, call, ctx) => {
    await call('DropCollection', { db_name: ctx.dbName, collection_name: b.collectionName });
    return {};
  }),
  route('collections/rename', renameBody, async (b, call, ctx) => {
    await call('RenameCollection', { db_name: ctx.dbName, oldName: b.collectionName, newName: b.newCollectionName, newDBName: b.newDbName || ctx.dbName });
    return {};
  }),
  route('collections/get_stats', withCollection, async (b, call, ctx) => {
    const r = await call('GetCollectionStatistics', { db_name: ctx.dbName, collection_name: b.collectionName });
    const rows = (r.stats ?? []).find((s: any) => s.key === 'row_count')?.value ?? '0';
    return { rowCount: Number(rows) };
  }),
  route('collections/load', withCollection, async (b, call, ctx) => {
    await call('LoadCollection', { db_name: ctx.dbName, collection_name: b.collectionName });
    return {};
  }),
  route('collections/refresh_load', withCollection, async (b, call, ctx) => {
    await call('LoadCollection', { db_name: ctx.dbName, collection_name: b.collectionName, refresh: true });
    return {};
  }),
  route('collections/release', withCollection, async (b, call, ctx) => {
    await call('ReleaseCollection', { db_name: ctx.dbName, collection_name: b.collectionName });
    return {};
  }),
  route('collections/get_load_state', loadStateBody, async (b, call, ctx) => loadState(call, ctx.dbName, b)),
  route('collections/flush', withCollection, async (b, call, ctx) => {
    await call('Flush', { db_name: ctx.dbName, collection_names: [b.collectionName] });
    return {};
  }),
  route('collections/compact', withCollection, async (b, call, ctx) => {
    const r = await call('ManualCompaction', { db_name: ctx.dbName, collection_name: b.collectionName });
    return { compactionID: int64Out(r.compactionID, ctx) };
  }),
  route(
    'collections/get_compaction_state',
    z.object({ dbName, collectionName: z.string().optional(), compactionID: z.union([z.number().int(), z.string().regex(/^\d{1,19}$/)]) }).passthrough(),
    async (b, call) => {
      const r = await call('GetCompactionState', { compactionID: String(b.compactionID) });
      return {
        state: r.state,
        executingPlanNo: Number(r.executingPlanNo ?? 0),
        timeoutPlanNo: Number(r.timeoutPlanNo ?? 0),
        completedPlanNo: Number(r.completedPlanNo ?? 0),
        failedPlanNo: Number(r.failedPlanNo ?? 0),
      };
    },
  ),
  route('collections/alter_properties', z.object({ dbName, collectionName, properties: z.record(z.unknown()) }).passthrough(), async (b, call, ctx) => {
    await call('AlterCollection', { db_name: ctx.dbName, collection_name: b.collectionName, properties: kvs(b.properties) });
    return {};
  }),
  route('collections/drop_properties', z.object({ dbName, collectionName, propertyKeys: z.array(z.string()) }).passthrough(), async (b, call, ctx) => {
    await call('AlterCollection', { db_name: ctx.dbName, collection_name: b.collectionName, delete_keys: b.propertyKeys });
    return {};
  }),
  route(
    'collections/fields/alter_properties',
    z.object({ dbName, collectionName, fieldName: z.string(), fieldParams: z.record(z.unknown()) }).passthrough(),
    async (b, call, ctx) => {
      await call('AlterCollectionField', {
        db_name: ctx.dbName,
        collection_name: b.collectionName,
        field_name: b.fieldName,
        properties: kvs(b.fieldParams),
      });
      return {};
    },
  ),
];
