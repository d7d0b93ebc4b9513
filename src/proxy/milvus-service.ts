import { quiverError } from '../common/errors.js';
import { DEFAULT_DB } from '../coord/types.js';
import type { CollectionRecord, IndexRecord } from '../coord/records.js';
import type { TemplateValues } from '../expr/index.js';
import type { CatalogServiceApi, IndexSchedulerApi } from '../coord/types.js';
import type { DataNodeApi } from '../datanode/types.js';
import type { QueryNodeApi } from '../querynode/types.js';
import { gatherColumn, type RowRef, type SearchHit } from '../segcore/collection-runtime.js';
import type { Column, FieldSchema } from '../schema/types.js';
import { DYNAMIC_FIELD_NAME } from '../schema/types.js';
import { indexDefinitionOf } from './index-definition.js';
import { columnToFieldData } from './field-data.js';
import { runHybridSearch } from './hybrid-search.js';
import { nullVectorColumn } from './vector-data.js';
import { parseSearch, runSearch, type SearchEnv } from './vector-search.js';
import { decodeCollectionSchema } from './proto.js';
import { OK, statusOf, type Status } from './status.js';
import { parseCollectionSchema, schemaToProto, validateName } from './schema-proto.js';
import { refuseStructPath } from './struct-schema.js';
import { embListSearch, embListTarget } from './emb-list-search.js';
import { createOpsHandlers } from './ops-service.js';
import { partitionKeyHandlers, withPartitionKeys } from './partition-key.js';
import { createSchemaChangeHandlers } from './schema-change-service.js';
import { iteratorPageOf, iteratorResults, type IteratorPage } from './search-iterator.js';
import { checkTimezoneProperties, localizeFieldsData, localizeSearchReply, requestTimezone } from './timezone-output.js';
import { createTextHandlers } from './text-service.js';
import { requestColumns } from './write-columns.js';
import { partialUpsertColumns } from './partial-upsert.js';

/* eslint-disable @typescript-eslint/no-explicit-any */

/**
 * MilvusService handlers: validate, map proto ⇄ domain, route to a role (coordinator, data node, query
 * node) through its interface. Handlers throw QuiverError; the
 * dispatcher in server.ts turns every throw into a Status in the reply (never a gRPC error, which the
 * SDK would retry or turn into a silent success).
 */

/** The roles the proxy routes to (in-process objects in the embedded server). */
export interface ProxyRoles {
  readonly coord: CatalogServiceApi;
  readonly indexes: IndexSchedulerApi;
  readonly data: DataNodeApi;
  readonly query: QueryNodeApi;
}

export const VERSION = '2.6.0-quiver.0.1.0';
export const TOPK_MAX = 16384;

export interface CallContext {
  readonly dbName: string;
  readonly requestId: string;
  /** The authenticated caller; undefined when auth is off (src/auth/types.ts). */
  readonly user?: string | undefined;
  /** The caller's address without its port (failed-login rate limiting). */
  readonly peer?: string | undefined;
}

export type Handler = (req: any, ctx: CallContext) => Promise<any> | any;

export interface ServiceOptions {
  readonly serverId: string;
  readonly startedAtMs: number;
}

function dbOf(req: any, ctx: CallContext): string {
  return (typeof req?.db_name === 'string' && req.db_name) || ctx.dbName || DEFAULT_DB;
}

function kvList(list: any[] | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const kv of list ?? []) if (kv && typeof kv.key === 'string') out[kv.key] = String(kv.value ?? '');
  return out;
}

function toKvList(obj: Readonly<Record<string, string>>): { key: string; value: string }[] {
  return Object.entries(obj).map(([key, value]) => ({ key, value }));
}

function requireName(kind: string, v: unknown): string {
  if (typeof v !== 'string' || v === '') throw quiverError('ParameterMissing', `${kind} name is required`);
  return v;
}

/** Converts proto TemplateValue maps into plain JS values for the expression engine. */
export function templateValues(map: Record<string, any> | undefined): TemplateValues | undefined {
  if (!map || Object.keys(map).length === 0) return undefined;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(map)) out[k] = templateValue(v);
  return out;
}

function templateValue(v: any): unknown {
  if (!v) return null;
  switch (v.val) {
    case 'bool_val':
      return v.bool_val;
    case 'int64_val':
      return BigInt(v.int64_val);
    case 'float_val':
      return v.float_val;
    case 'string_val':
      return v.string_val;
    case 'array_val': {
      const a = v.array_val ?? {};
      switch (a.data) {
        case 'bool_data':
          return a.bool_data.data;
        case 'long_data':
          return a.long_data.data.map((x: string) => BigInt(x));
        case 'double_data':
          return a.double_data.data;
        case 'string_data':
          return a.string_data.data;
        case 'json_data':
          return a.json_data.data.map((b: Buffer) => JSON.parse(Buffer.from(b).toString('utf8')));
        case 'array_data':
          return (a.array_data.data ?? []).map((x: any) => templateValue({ val: 'array_val', array_val: x }));
        default:
          return [];
      }
    }
    default:
      return null;
  }
}

function idsOf(pkField: FieldSchema, pks: ArrayLike<bigint | string>): any {
  if (pkField.dataType === 'Int64') {
    const data = new Array<string>(pks.length);
    for (let i = 0; i < pks.length; i++) data[i] = String(pks[i]);
    return { int_id: { data } };
  }
  return { str_id: { data: Array.from(pks as ArrayLike<string>) } };
}

interface OutputPlan {
  readonly fields: FieldSchema[];
  /** Dynamic keys requested by name (the `$meta` column is returned filtered to them). */
  readonly dynamicKeys: string[] | undefined;
  /** Names as requested (for results.output_fields). */
  readonly names: string[];
}

function planOutput(coll: CollectionRecord, requested: readonly string[], includePk = true): OutputPlan {
  const all = coll.schema.fields;
  const byName = new Map(all.map((f) => [f.name, f]));
  const chosen = new Set<FieldSchema>();
  const names: string[] = [];
  let dynamicKeys: string[] | undefined;
  let wholeDynamic = false;
  const pk = all.find((f) => f.isPrimaryKey)!;
  for (const raw of requested) {
    const name = raw.trim();
    if (name === '') continue;
    if (name === '*') {
      for (const f of all) chosen.add(f);
      wholeDynamic = true;
      continue;
    }
    const f = byName.get(name);
    if (f) {
      chosen.add(f);
      if (f.isDynamic) wholeDynamic = true;
      if (!names.includes(name)) names.push(name);
      continue;
    }
    if (coll.schema.enableDynamicField && /^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) {
      (dynamicKeys ??= []).push(name);
      if (!names.includes(name)) names.push(name);
      continue;
    }
    throw quiverError('FieldNotFound', `field ${name} not exist in collection ${coll.name}`);
  }
  if (dynamicKeys) {
    const dyn = byName.get(DYNAMIC_FIELD_NAME);
    if (dyn) chosen.add(dyn);
  }
  if (includePk) chosen.add(pk);
  const fields = all.filter((f) => chosen.has(f));
  if (requested.some((r) => r.trim() === '*')) {
    for (const f of fields) if (!names.includes(f.name)) names.push(f.name);
  }
  if (!names.includes(pk.name)) names.unshift(pk.name);
  return { fields, dynamicKeys: wholeDynamic ? undefined : dynamicKeys, names };
}

function outputColumns(refs: readonly RowRef[], plan: OutputPlan): any[] {
  const out: any[] = [];
  for (const f of plan.fields) {
    const col = refs.length === 0 ? emptyFor(f) : gatherColumn(refs, f.name);
    if (!col) throw quiverError('CollectionNotLoaded', `field ${f.name} is not loaded`);
    out.push(columnToFieldData(f, col, refs.length, f.isDynamic ? plan.dynamicKeys : undefined));
  }
  return out;
}

function emptyFor(f: FieldSchema): Column {
  switch (f.dataType) {
    case 'Bool':
      return { kind: 'bool', data: new Uint8Array(0) };
    case 'Int8':
    case 'Int16':
    case 'Int32':
      return { kind: 'int32', data: new Int32Array(0) };
    case 'Int64':
      return { kind: 'int64', data: new BigInt64Array(0) };
    case 'Float':
      return { kind: 'float', data: new Float32Array(0) };
    case 'Double':
      return { kind: 'double', data: new Float64Array(0) };
    case 'VarChar':
    case 'Geometry':
      return { kind: 'string', data: [] };
    case 'Timestamptz':
      return { kind: 'int64', data: new BigInt64Array(0) };
    case 'JSON':
      return { kind: 'json', data: [] };
    case 'Array':
      return { kind: 'array', elementType: f.elementType!, data: [] };
    case 'FloatVector':
      return { kind: 'vector', dim: f.dim!, data: new Float32Array(0) };
    default:
      return nullVectorColumn(f, 0);
  }
}

function parseIntParam(v: string | undefined, name: string, def: number, lo: number, hi: number): number {
  if (v === undefined || v === '') return def;
  const n = Number(v);
  if (!Number.isInteger(n) || n < lo || n > hi) throw quiverError('ParameterInvalid', `${name} ${v} is invalid: must be an integer in [${lo}, ${hi}]`);
  return n;
}

/** Builds the handler table. Every MilvusService method the table lacks answers "not supported". */
export function createHandlers(baseRoles: ProxyRoles, opts: ServiceOptions): Record<string, Handler> {
  // Partition-key collections: rows routed to hidden partitions by key, reads pruned (partition-key.ts).
  const roles = withPartitionKeys(baseRoles);
  const cat = roles.coord.catalog;
  const describeCollection = (coll: CollectionRecord) => {
    const db = cat.databaseById(coll.dbId);
    const idxParams = new Map<number, Record<string, string>>();
    for (const idx of cat.indexes(coll.id)) idxParams.set(idx.fieldId, { ...idx.userParams, metric_type: idx.metric, index_type: idx.indexType });
    return {
      status: OK,
      schema: schemaToProto(coll, idxParams),
      collectionID: String(coll.id),
      virtual_channel_names: Array.from({ length: coll.shardsNum }, (_, i) => `quiver-dml_${i}_${coll.id}v${i}`),
      physical_channel_names: Array.from({ length: coll.shardsNum }, (_, i) => `quiver-dml_${i}`),
      created_timestamp: coll.createdTs,
      created_utc_timestamp: String(Number(BigInt(coll.createdTs) >> 18n)),
      shards_num: coll.shardsNum,
      aliases: cat.aliasesOf(coll.id),
      start_positions: [],
      consistency_level: coll.consistencyLevel,
      collection_name: coll.name,
      properties: toKvList(coll.properties),
      db_name: db?.name ?? DEFAULT_DB,
      num_partitions: String(coll.partitions.length),
      db_id: String(coll.dbId),
      request_time: roles.coord.tso.next().toString(),
      update_timestamp: coll.updateTs,
      update_timestamp_str: coll.updateTs,
    };
  };

  const collOf = (req: any, ctx: CallContext): CollectionRecord => cat.resolveCollection(dbOf(req, ctx), requireName('collection', req.collection_name));
  /** Timestamptz zone of a read: request `timezone`, else collection, else database property, else UTC. */
  const tzOf = (coll: CollectionRecord, params: Record<string, string>): string => requestTimezone(coll, params, cat.databaseById(coll.dbId)?.properties);
  const searchEnv: SearchEnv = {
    query: roles.query,
    indexes: (id) => cat.indexes(id),
    results: (coll, hits, outputFields, topk) => searchResults(coll, hits, planOutput(coll, outputFields), topk),
  };

  const findIndexes = (coll: CollectionRecord, fieldName?: string, indexName?: string): IndexRecord[] => {
    let list = cat.indexes(coll.id);
    if (indexName) list = list.filter((i) => i.name === indexName);
    if (fieldName) {
      const f = coll.schema.fields.find((x) => x.name === fieldName);
      list = list.filter((i) => i.fieldId === f?.fieldId);
    }
    return list;
  };

  /** The collection's indexes matching the request's field/index name; IndexNotFound when none. */
  const requireIndexes = (req: any, ctx: CallContext, byField = true): { coll: CollectionRecord; list: IndexRecord[] } => {
    const coll = collOf(req, ctx);
    const list = findIndexes(coll, byField ? req.field_name : undefined, req.index_name);
    if (list.length === 0)
      throw quiverError('IndexNotFound', `index not found[collection=${coll.name}]${req.index_name ? `[index=${req.index_name}]` : ''}`);
    return { coll, list };
  };

  const indexDescription = (coll: CollectionRecord, idx: IndexRecord) => {
    const field = coll.schema.fields.find((f) => f.fieldId === idx.fieldId)!;
    const p = roles.indexes.progress(coll.id, idx);
    return {
      index_name: idx.name,
      indexID: String(idx.id),
      params: toKvList({ ...idx.userParams, index_type: idx.indexType, ...(idx.metric ? { metric_type: idx.metric } : {}) }),
      field_name: field.name,
      indexed_rows: String(p.indexedRows),
      total_rows: String(p.totalRows),
      state: p.pendingRows === 0 ? 'Finished' : 'InProgress',
      index_state_fail_reason: '',
      pending_index_rows: String(p.pendingRows),
      min_index_version: 0,
      max_index_version: 0,
    };
  };

  const writeColumns = (coll: CollectionRecord, req: any, upsert: boolean) => requestColumns(coll, req, upsert, undefined, tzOf(coll, {}));

  const h: Record<string, Handler> = {
    Connect: () => ({
      status: OK,
      server_info: {
        build_tags: VERSION,
        build_time: new Date(opts.startedAtMs).toISOString(),
        git_commit: '',
        go_version: `node ${process.version}`,
        deploy_mode: 'EMBEDDED',
        reserved: {},
      },
      identifier: opts.serverId,
    }),
    GetVersion: () => ({ status: OK, version: VERSION }),
    CheckHealth: () => ({ status: OK, isHealthy: true, reasons: [], quota_states: [] }),

    // ---------------------------------------------------------------- databases
    CreateDatabase: async (req) => {
      checkTimezoneProperties(kvList(req.properties));
      await roles.coord.createDatabase(validateName('database', req.db_name), kvList(req.properties));
      return OK;
    },
    DropDatabase: async (req) => {
      await roles.coord.dropDatabase(requireName('database', req.db_name));
      return OK;
    },
    ListDatabases: () => {
      const dbs = cat.databases();
      return { status: OK, db_names: dbs.map((d) => d.name), created_timestamp: dbs.map((d) => d.createdTs), db_ids: dbs.map((d) => String(d.id)) };
    },
    DescribeDatabase: (req, ctx) => {
      const db = cat.requireDatabase(req.db_name || ctx.dbName || DEFAULT_DB);
      return { status: OK, db_name: db.name, dbID: String(db.id), created_timestamp: db.createdTs, properties: toKvList(db.properties) };
    },
    AlterDatabase: async (req) => {
      checkTimezoneProperties(kvList(req.properties));
      await roles.coord.alterDatabase(requireName('database', req.db_name), kvList(req.properties), req.delete_keys ?? []);
      return OK;
    },

    // ---------------------------------------------------------------- collections
    CreateCollection: async (req, ctx) => {
      const name = validateName('collection', req.collection_name);
      if (!req.schema || req.schema.length === 0) throw quiverError('ParameterMissing', `schema is required to create collection ${name}`);
      let decoded: any;
      try {
        decoded = decodeCollectionSchema(req.schema);
      } catch (e) {
        throw quiverError('ParameterInvalid', `cannot decode the schema of collection ${name}: ${(e as Error).message}`);
      }
      if (decoded.name && decoded.name !== name) {
        throw quiverError('ParameterInvalid', `collection name (${name}) does not match the schema name (${decoded.name})`);
      }
      const parsed = parseCollectionSchema(decoded);
      const shardsNum = Number(req.shards_num) || 1;
      if (shardsNum < 1 || shardsNum > 16) throw quiverError('ParameterInvalid', `shards_num ${req.shards_num} is invalid: must be in [1, 16]`);
      const properties = { ...kvList(decoded.properties), ...kvList(req.properties) };
      const ttl = properties['collection.ttl.seconds'];
      if (ttl !== undefined && !(Number.isInteger(Number(ttl)) && Number(ttl) >= 0)) {
        throw quiverError('ParameterInvalid', `collection.ttl.seconds ${ttl} is invalid: must be a non-negative integer`);
      }
      checkTimezoneProperties(properties);
      await roles.coord.createCollection({
        dbName: dbOf(req, ctx),
        name,
        ...parsed,
        shardsNum,
        consistencyLevel: typeof req.consistency_level === 'string' ? req.consistency_level : 'Bounded',
        properties,
        numPartitions: Number(req.num_partitions ?? 0),
      });
      return OK;
    },
    DescribeCollection: (req, ctx) => {
      const db = dbOf(req, ctx);
      if (!req.collection_name && req.collectionID && req.collectionID !== '0') {
        const c = cat.collection(Number(req.collectionID));
        if (!c) throw quiverError('CollectionNotFound', `collection not found[collectionID=${req.collectionID}]`);
        return describeCollection(c);
      }
      return describeCollection(cat.resolveCollection(db, requireName('collection', req.collection_name)));
    },
    HasCollection: (req, ctx) => {
      const db = cat.requireDatabase(dbOf(req, ctx));
      const name = requireName('collection', req.collection_name);
      return { status: OK, value: !!cat.collectionByName(db.id, name) || !!cat.alias(db.id, name) };
    },
    BatchDescribeCollection: (req, ctx) => {
      const db = dbOf(req, ctx);
      const responses = (req.collection_name ?? []).map((n: string) => {
        try {
          return describeCollection(cat.resolveCollection(db, n));
        } catch (e) {
          // An empty schema, not none: the SDK formats every entry's schema, and would throw on a missing one.
          return { status: statusOf(e), collection_name: n, schema: { name: n, fields: [], struct_array_fields: [] } };
        }
      });
      return { status: OK, responses };
    },
    DropCollection: async (req, ctx) => {
      await roles.coord.dropCollection(dbOf(req, ctx), requireName('collection', req.collection_name));
      return OK;
    },
    ShowCollections: (req, ctx) => {
      const db = cat.requireDatabase(dbOf(req, ctx));
      let colls = cat.collections(db.id);
      const names: string[] = req.collection_names ?? [];
      if (names.length > 0) {
        colls = names.map((n) => {
          const c = cat.collectionByName(db.id, n);
          if (!c) throw quiverError('CollectionNotFound', `collection not found[database=${db.name}][collection=${n}]`);
          return c;
        });
      }
      if (req.type === 'InMemory' || req.type === 1) colls = colls.filter((c) => c.loaded);
      return {
        status: OK,
        collection_names: colls.map((c) => c.name),
        collection_ids: colls.map((c) => String(c.id)),
        created_timestamps: colls.map((c) => c.createdTs),
        created_utc_timestamps: colls.map((c) => String(Number(BigInt(c.createdTs) >> 18n))),
        inMemory_percentages: colls.map((c) => String(roles.query.loadProgress(c.id).progress)),
        query_service_available: colls.map((c) => c.loaded),
        shards_num: colls.map((c) => c.shardsNum),
      };
    },
    GetCollectionStatistics: (req, ctx) => {
      const coll = collOf(req, ctx);
      return { status: OK, stats: [{ key: 'row_count', value: String(roles.query.rowCount(coll.id)) }] };
    },
    RenameCollection: async (req, ctx) => {
      validateName('collection', req.newName);
      await roles.coord.renameCollection(dbOf(req, ctx), requireName('collection', req.oldName), req.newName, req.newDBName || '');
      return OK;
    },
    AlterCollection: async (req, ctx) => {
      await roles.coord.alterCollection(dbOf(req, ctx), requireName('collection', req.collection_name), kvList(req.properties), req.delete_keys ?? []);
      return OK;
    },
    AlterCollectionField: async (req, ctx) => {
      await roles.coord.alterCollectionField(
        dbOf(req, ctx),
        requireName('collection', req.collection_name),
        requireName('field', req.field_name),
        kvList(req.properties),
        req.delete_keys ?? [],
      );
      return OK;
    },

    // ---------------------------------------------------------------- partitions
    CreatePartition: async (req, ctx) => {
      await roles.coord.createPartition(dbOf(req, ctx), requireName('collection', req.collection_name), validateName('partition', req.partition_name));
      return OK;
    },
    DropPartition: async (req, ctx) => {
      await roles.coord.dropPartition(dbOf(req, ctx), requireName('collection', req.collection_name), requireName('partition', req.partition_name));
      return OK;
    },
    HasPartition: (req, ctx) => {
      const coll = collOf(req, ctx);
      return { status: OK, value: coll.partitions.some((p) => p.name === req.partition_name) };
    },
    ShowPartitions: (req, ctx) => {
      const coll = collOf(req, ctx);
      let parts = coll.partitions;
      const names: string[] = req.partition_names ?? [];
      if (names.length > 0) parts = parts.filter((p) => names.includes(p.name));
      return {
        status: OK,
        partition_names: parts.map((p) => p.name),
        partitionIDs: parts.map((p) => String(p.id)),
        created_timestamps: parts.map((p) => p.createdTs),
        created_utc_timestamps: parts.map((p) => String(Number(BigInt(p.createdTs) >> 18n))),
        inMemory_percentages: parts.map((p) => String(roles.query.loadProgress(coll.id, [p.name]).progress)),
      };
    },
    GetPartitionStatistics: (req, ctx) => {
      const coll = collOf(req, ctx);
      return { status: OK, stats: [{ key: 'row_count', value: String(roles.query.rowCount(coll.id, requireName('partition', req.partition_name))) }] };
    },
    LoadPartitions: async (req, ctx) => {
      const coll = collOf(req, ctx);
      const names: string[] = req.partition_names ?? [];
      if (names.length === 0) throw quiverError('ParameterMissing', 'partition_names are required to load partitions');
      await roles.query.load(coll.id, names);
      return OK;
    },
    ReleasePartitions: async (req, ctx) => {
      const coll = collOf(req, ctx);
      const names: string[] = req.partition_names ?? [];
      if (names.length === 0) throw quiverError('ParameterMissing', 'partition_names are required to release partitions');
      await roles.query.release(coll.id, names);
      return OK;
    },

    // ---------------------------------------------------------------- aliases
    CreateAlias: async (req, ctx) => {
      await roles.coord.createAlias(dbOf(req, ctx), requireName('collection', req.collection_name), validateName('alias', req.alias));
      return OK;
    },
    AlterAlias: async (req, ctx) => {
      await roles.coord.alterAlias(dbOf(req, ctx), requireName('collection', req.collection_name), requireName('alias', req.alias));
      return OK;
    },
    DropAlias: async (req, ctx) => {
      await roles.coord.dropAlias(dbOf(req, ctx), requireName('alias', req.alias));
      return OK;
    },
    DescribeAlias: (req, ctx) => {
      const dbName = dbOf(req, ctx);
      const db = cat.requireDatabase(dbName);
      const alias = requireName('alias', req.alias);
      const a = cat.alias(db.id, alias);
      const coll = a ? cat.collection(a.collectionId) : undefined;
      if (!a || !coll) throw quiverError('AliasNotFound', `alias not found[database=${dbName}][alias=${alias}]`);
      return { status: OK, db_name: db.name, alias, collection: coll.name };
    },
    ListAliases: (req, ctx) => {
      const dbName = dbOf(req, ctx);
      const db = cat.requireDatabase(dbName);
      if (req.collection_name) {
        const coll = cat.resolveCollection(dbName, req.collection_name);
        return { status: OK, db_name: db.name, collection_name: coll.name, aliases: cat.aliasesOf(coll.id) };
      }
      return {
        status: OK,
        db_name: db.name,
        collection_name: '',
        aliases: cat
          .aliasesIn(db.id)
          .map((a) => a.alias)
          .sort(),
      };
    },

    // ---------------------------------------------------------------- writes
    Insert: async (req, ctx) => {
      const coll = collOf(req, ctx);
      const { columns, numRows } = writeColumns(coll, req, false);
      const pk = coll.schema.fields.find((f) => f.isPrimaryKey)!;
      const r = await roles.data.insert(coll.id, req.partition_name || undefined, columns, numRows, false);
      return {
        status: OK,
        IDs: idsOf(pk, r.pks),
        succ_index: Array.from({ length: numRows }, (_, i) => i),
        err_index: [],
        acknowledged: true,
        insert_cnt: String(numRows),
        delete_cnt: '0',
        upsert_cnt: '0',
        timestamp: r.ts.toString(),
      };
    },
    Upsert: async (req, ctx) => {
      const coll = collOf(req, ctx);
      const { columns, numRows } = req.partial_update ? await partialUpsertColumns(roles.query, coll, req) : writeColumns(coll, req, true);
      const pk = coll.schema.fields.find((f) => f.isPrimaryKey)!;
      const r = await roles.data.insert(coll.id, req.partition_name || undefined, columns, numRows, true);
      return {
        status: OK,
        IDs: idsOf(pk, r.pks),
        succ_index: Array.from({ length: numRows }, (_, i) => i),
        err_index: [],
        acknowledged: true,
        insert_cnt: '0',
        delete_cnt: '0',
        upsert_cnt: String(numRows),
        timestamp: r.ts.toString(),
      };
    },
    Delete: async (req, ctx) => {
      const coll = collOf(req, ctx);
      const pk = coll.schema.fields.find((f) => f.isPrimaryKey)!;
      const r = await roles.data.delete(coll.id, req.partition_name || undefined, String(req.expr ?? ''), templateValues(req.expr_template_values));
      return {
        status: OK,
        IDs: idsOf(pk, r.pks),
        succ_index: [],
        err_index: [],
        acknowledged: true,
        insert_cnt: '0',
        delete_cnt: String(r.pks.length),
        upsert_cnt: '0',
        timestamp: r.ts.toString(),
      };
    },
    Flush: async (req, ctx) => {
      const dbName = dbOf(req, ctx);
      const names: string[] = req.collection_names ?? [];
      const coll_segIDs: Record<string, { data: string[] }> = {};
      const flush_coll_segIDs: Record<string, { data: string[] }> = {};
      const coll_seal_times: Record<string, string> = {};
      const coll_flush_ts: Record<string, string> = {};
      for (const n of names) {
        const coll = cat.resolveCollection(dbName, n);
        const r = await roles.data.flush(coll.id);
        const all = roles.data.flushedSegments(coll.id).map((s) => String(s.id));
        coll_segIDs[n] = { data: r.segmentIds.map(String) };
        flush_coll_segIDs[n] = { data: all };
        coll_seal_times[n] = String(Math.floor(Date.now() / 1000));
        coll_flush_ts[n] = r.flushTs.toString();
      }
      return { status: OK, db_name: dbName, coll_segIDs, flush_coll_segIDs, coll_seal_times, coll_flush_ts, channel_cps: {} };
    },
    // Flush is synchronous here: by the time Flush answered, its segments were durable.
    GetFlushState: () => ({ status: OK, flushed: true }),
    FlushAll: async (req, ctx) => {
      const dbName = dbOf(req, ctx);
      const db = cat.requireDatabase(dbName);
      let ts = roles.coord.tso.next();
      const collection_results: any[] = [];
      for (const c of cat.collections(db.id)) {
        const r = await roles.data.flush(c.id);
        ts = r.flushTs;
        collection_results.push({
          collection_name: c.name,
          segment_ids: { data: r.segmentIds.map(String) },
          flush_segment_ids: { data: [] },
          seal_time: '0',
          flush_ts: r.flushTs.toString(),
          channel_cps: {},
        });
      }
      return { status: OK, flush_all_ts: ts.toString(), flush_results: [{ db_name: db.name, collection_results }], flush_all_msgs: {} };
    },
    GetFlushAllState: () => ({ status: OK, flushed: true, flush_states: [] }),

    // ---------------------------------------------------------------- indexes
    CreateIndex: async (req, ctx) => {
      const coll = collOf(req, ctx);
      const fieldName = requireName('field', req.field_name);
      refuseStructPath(coll.schema.fields, fieldName, 'an index');
      const field = coll.schema.fields.find((f) => f.name === fieldName && !f.isDynamic);
      if (!field) throw quiverError('FieldNotFound', `field not found[field=${fieldName}][collection=${coll.name}]`);
      await roles.coord.createIndex(coll.id, field, req.index_name || field.name, indexDefinitionOf(coll.schema, field, kvList(req.extra_params)));
      return OK;
    },
    DescribeIndex: (req, ctx) => {
      const coll = collOf(req, ctx);
      const list = findIndexes(coll, req.field_name, req.index_name);
      if (list.length === 0)
        throw quiverError('IndexNotFound', `index not found[collection=${coll.name}]${req.index_name ? `[index=${req.index_name}]` : ''}`);
      return { status: OK, index_descriptions: list.map((i) => indexDescription(coll, i)) };
    },
    GetIndexStatistics: (req, ctx) => {
      const { coll, list } = requireIndexes(req, ctx, false);
      return { status: OK, index_descriptions: list.map((i) => indexDescription(coll, i)) };
    },
    GetIndexState: (req, ctx) => {
      const { coll, list } = requireIndexes(req, ctx, true);
      const done = list.every((i) => roles.indexes.progress(coll.id, i).pendingRows === 0);
      return { status: OK, state: done ? 'Finished' : 'InProgress', fail_reason: '' };
    },
    GetIndexBuildProgress: (req, ctx) => {
      const { coll, list } = requireIndexes(req, ctx, true);
      const p = roles.indexes.progress(coll.id, list[0]!);
      return { status: OK, indexed_rows: String(p.indexedRows), total_rows: String(p.totalRows) };
    },
    DropIndex: async (req, ctx) => {
      const { coll, list } = requireIndexes(req, ctx, true);
      for (const idx of list) await roles.coord.dropIndex(coll.id, idx);
      return OK;
    },

    // ---------------------------------------------------------------- load
    LoadCollection: async (req, ctx) => {
      const coll = collOf(req, ctx);
      const rn = Number(req.replica_number ?? 0);
      if (rn > 1) throw quiverError('ParameterInvalid', `replica_number ${rn} is invalid: an embedded Quiver serves one replica`);
      await roles.query.load(coll.id, undefined);
      return OK;
    },
    ReleaseCollection: async (req, ctx) => {
      const coll = collOf(req, ctx);
      await roles.query.release(coll.id);
      return OK;
    },
    GetLoadState: (req, ctx) => {
      const coll = collOf(req, ctx);
      const p = roles.query.loadProgress(coll.id, req.partition_names);
      return { status: OK, state: `LoadState${p.state}` };
    },
    GetLoadingProgress: (req, ctx) => {
      const coll = collOf(req, ctx);
      const p = roles.query.loadProgress(coll.id, req.partition_names);
      if (p.state === 'NotLoad') throw quiverError('CollectionNotLoaded', `collection not loaded[collection=${coll.name}]`);
      return { status: OK, progress: String(p.progress), refresh_progress: String(p.progress) };
    },

    // ---------------------------------------------------------------- reads
    Search: async (req, ctx) => {
      const coll = collOf(req, ctx);
      if ((req.sub_reqs ?? []).length > 0)
        throw quiverError('ParameterInvalid', 'multi-vector sub-requests in Search are not supported by Quiver: use HybridSearch');
      const tz = tzOf(coll, kvList(req.search_params));
      const embList = embListTarget(coll, kvList(req.search_params)['anns_field']);
      if (embList) return embListSearch(searchEnv, coll, req, embList, kvList(req.search_params), templateValues(req.expr_template_values));
      const untimed = parseSearch(coll, req, cat.indexes(coll.id), templateValues);
      const parsed = { ...untimed, params: { ...untimed.params, timezone: tz } };
      const iterPage = iteratorPageOf(kvList(req.search_params), coll, parsed.params.nq);
      if (!iterPage) return localizeSearchReply(await runSearch(searchEnv, coll, parsed, req.output_fields ?? []), tz);
      if (parsed.groupBy || parsed.ids) throw quiverError('ParameterInvalid', 'a search iterator cannot group (group_by_field) or search by primary keys');
      const { hits } = await roles.query.search(coll.id, { ...parsed.params, after: iterPage.after });
      const reply = searchEnv.results(coll, hits, req.output_fields ?? [], parsed.params.k);
      reply.results.search_iterator_v2_results = searchIteratorReply(coll, iterPage, hits[0] ?? []);
      return localizeSearchReply(reply, tz);
    },
    Query: async (req, ctx) => {
      const coll = collOf(req, ctx);
      const qp = kvList(req.query_params);
      const requested: string[] = req.output_fields ?? [];
      const expr = String(req.expr ?? '');
      const templates = templateValues(req.expr_template_values);
      const partitionNames: string[] = req.partition_names ?? [];
      const pk = coll.schema.fields.find((f) => f.isPrimaryKey)!;
      const tz = tzOf(coll, qp);
      if (requested.some((f) => f.replace(/\s/g, '').toLowerCase() === 'count(*)')) {
        if (requested.length > 1) throw quiverError('ParameterInvalid', 'count(*) cannot be combined with other output fields');
        const n = await roles.query.count(coll.id, { filter: expr, templates, partitionNames, timezone: tz });
        return {
          status: OK,
          fields_data: [
            { type: 'Int64', field_name: 'count(*)', scalars: { long_data: { data: [String(n)] } }, field_id: '0', is_dynamic: false, valid_data: [] },
          ],
          collection_name: coll.name,
          output_fields: ['count(*)'],
          primary_field_name: pk.name,
        };
      }
      const limit = qp['limit'] !== undefined && qp['limit'] !== '' ? parseIntParam(qp['limit'], 'limit', 0, 1, TOPK_MAX) : undefined;
      const offset = parseIntParam(qp['offset'], 'offset', 0, 0, TOPK_MAX);
      if (!expr.trim() && limit === undefined) {
        throw quiverError('ParameterInvalid', 'empty expression should be used with limit');
      }
      const plan = planOutput(coll, requested.length > 0 ? requested : [pk.name]);
      const refs = await roles.query.query(coll.id, { filter: expr, templates, partitionNames, offset, limit, timezone: tz });
      return {
        status: OK,
        fields_data: localizeFieldsData(outputColumns(refs, plan), tz),
        collection_name: coll.name,
        output_fields: plan.names,
        primary_field_name: pk.name,
        element_indices: [],
      };
    },
    // ---------------------------------------------------------------- compaction
    ManualCompaction: async (req, ctx) => {
      const coll = req.collection_name ? cat.resolveCollection(dbOf(req, ctx), req.collection_name) : cat.collection(Number(req.collectionID ?? 0));
      if (!coll) throw quiverError('CollectionNotFound', `collection not found[collectionID=${req.collectionID}]`);
      // A compaction drops only rows whose delete is already in a deltalog (datanode/compactor.ts): flush
      // first, so a manual compaction reclaims every delete acknowledged before the call.
      await roles.data.flush(coll.id);
      const task = await roles.data.compact(coll.id, { force: true, wait: false });
      return { status: OK, compactionID: String(task.id), compactionPlanCount: task.plans.length };
    },
    GetCompactionState: (req) => {
      const task = roles.data.compactionTask(Number(req.compactionID ?? 0));
      if (!task) throw quiverError('CompactionNotFound', `compaction not found[compactionID=${req.compactionID}]`);
      const count = (s: string) => String(task.plans.filter((p) => p.state === s).length);
      return {
        status: OK,
        state: task.state,
        executingPlanNo: count('Executing'),
        timeoutPlanNo: '0',
        completedPlanNo: count('Completed'),
        failedPlanNo: count('Failed'),
      };
    },
    GetCompactionStateWithPlans: (req) => {
      const task = roles.data.compactionTask(Number(req.compactionID ?? 0));
      if (!task) throw quiverError('CompactionNotFound', `compaction not found[compactionID=${req.compactionID}]`);
      return { status: OK, state: task.state, mergeInfos: task.plans.map((p) => ({ sources: p.sources.map(String), target: String(p.target) })) };
    },

    HybridSearch: async (req, ctx) => {
      const coll = collOf(req, ctx);
      const tz = tzOf(coll, kvList(req.rank_params));
      return localizeSearchReply(await runHybridSearch(searchEnv, coll, req, templateValues), tz);
    },
  };
  return {
    ...h,
    ...createSchemaChangeHandlers(roles),
    ...createOpsHandlers(roles, opts, h),
    ...partitionKeyHandlers(cat, h),
    ...createTextHandlers(roles),
  };
}

function searchIteratorReply(coll: CollectionRecord, page: IteratorPage, hits: readonly SearchHit[]): { token: string; last_bound: number } {
  const last = hits[hits.length - 1];
  const pk = coll.schema.fields.find((f) => f.isPrimaryKey)!;
  const lastPk = last ? (gatherColumn([last], pk.name)!.data as ArrayLike<bigint | string>)[0]! : undefined;
  return iteratorResults(coll, page, last && lastPk !== undefined ? { score: last.score, pk: lastPk } : undefined, hits.length);
}

function searchResults(coll: CollectionRecord, hits: SearchHit[][], plan: OutputPlan, topk: number): any {
  const pk = coll.schema.fields.find((f) => f.isPrimaryKey)!;
  const flat: SearchHit[] = [];
  const topks: string[] = [];
  for (const list of hits) {
    topks.push(String(list.length));
    for (const h of list) flat.push(h);
  }
  const scores = flat.map((h) => h.score);
  const pkCol = flat.length > 0 ? gatherColumn(flat, pk.name)! : emptyFor(pk);
  return {
    status: OK,
    results: {
      num_queries: String(hits.length),
      top_k: String(topk),
      fields_data: outputColumns(flat, plan),
      scores,
      ids: idsOf(pk, pkCol.data as ArrayLike<bigint | string>),
      topks,
      output_fields: plan.names,
      primary_field_name: pk.name,
      distances: [],
      recalls: [],
      group_by_field_values: [],
      agg_buckets: [],
      agg_topks: [],
      highlight_results: [],
    },
    collection_name: coll.name,
    session_ts: '0',
  };
}

export type { Status };
