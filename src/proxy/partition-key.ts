import { quiverError } from '../common/errors.js';
import type { CollectionRecord } from '../coord/records.js';
import type { CatalogReader } from '../coord/types.js';
import type { DataNodeApi } from '../datanode/types.js';
import { extractPkValues, parseExpr, type Expr, type TemplateValues } from '../expr/index.js';
import type { QueryNodeApi } from '../querynode/types.js';
import { takeRows } from '../schema/columns.js';
import type { Column, FieldSchema } from '../schema/types.js';
import { exprSchema } from '../segcore/collection-helpers.js';
import type { Handler } from './milvus-service.js';
import { decodeCollectionSchema } from './proto.js';

/* eslint-disable @typescript-eslint/no-explicit-any */

/**
 * Partition-key collections (Milvus's `is_partition_key`): the collection has `num_partitions` hidden
 * partitions `_default_0 … _default_{n-1}` and the proxy routes every row to one of them by a hash of its
 * key, as Milvus's proxy does. A read whose filter pins the key (`key == v`, `key in [...]`, or such a term
 * and-ed with anything) searches only the partitions those values hash to. Users never name these
 * partitions: partition DDL and explicit partition names are refused, as Milvus refuses them. With
 * `partition_key.isolation` every search must pin the key (Milvus builds per-key indexes then; Quiver
 * only enforces the contract). The hash is Quiver's own (FNV-1a), stable across versions: it decides
 * where rows are stored, so changing it would strand existing rows.
 */

export const PARTITION_KEY_PARTITIONS_DEFAULT = 16;
export const PARTITION_KEY_PARTITIONS_MAX = 1024;
export const ISOLATION_PROPERTY = 'partitionkey.isolation';
const KEY_TYPES: readonly string[] = ['Int64', 'VarChar'];
const CLUSTERING_TYPES: readonly string[] = ['Int8', 'Int16', 'Int32', 'Int64', 'Float', 'Double', 'VarChar'];

export function partitionKeyOf(coll: CollectionRecord): FieldSchema | undefined {
  return coll.schema.fields.find((f) => f.isPartitionKey);
}

const enc = new TextEncoder();

/** FNV-1a (32 bit) of a key: an Int64 over its 8 little-endian bytes, a VarChar over its UTF-8 bytes. */
export function keyHash(v: bigint | string): number {
  let h = 0x811c9dc5;
  if (typeof v === 'bigint') {
    let x = BigInt.asUintN(64, v);
    for (let i = 0; i < 8; i++) {
      h ^= Number(x & 0xffn);
      h = Math.imul(h, 0x01000193);
      x >>= 8n;
    }
  } else {
    for (const b of enc.encode(v)) {
      h ^= b;
      h = Math.imul(h, 0x01000193);
    }
  }
  return h >>> 0;
}

export function keyPartitionName(v: bigint | string, n: number): string {
  return `_default_${keyHash(v) % n}`;
}

/** Validates a CreateCollection's partition-key, isolation and clustering-key settings (before it commits). */
export function validateKeyedSchema(decoded: any, numPartitions: number, properties: Record<string, string>): void {
  const fields: any[] = (decoded.fields ?? []).filter((f: any) => !f.is_dynamic);
  const keys = fields.filter((f) => f.is_partition_key);
  const key = keys[0];
  if (key) {
    if (!KEY_TYPES.includes(String(key.data_type))) {
      throw quiverError('ParameterInvalid', `partition key field ${key.name} is ${key.data_type}: a partition key must be Int64 or VarChar`);
    }
    if (key.is_primary_key) throw quiverError('ParameterInvalid', `the primary key ${key.name} cannot also be the partition key`);
    if (key.nullable) throw quiverError('ParameterInvalid', `partition key field ${key.name} cannot be nullable`);
    if (numPartitions !== 0 && (!Number.isInteger(numPartitions) || numPartitions < 1 || numPartitions > PARTITION_KEY_PARTITIONS_MAX)) {
      throw quiverError('ParameterInvalid', `num_partitions ${numPartitions} is invalid: must be in [1, ${PARTITION_KEY_PARTITIONS_MAX}]`);
    }
  } else if (numPartitions !== 0) {
    throw quiverError('ParameterInvalid', `num_partitions ${numPartitions} is only valid with a partition key field`);
  }
  const iso = properties[ISOLATION_PROPERTY];
  if (iso !== undefined) {
    if (!['true', 'false'].includes(iso.toLowerCase()))
      throw quiverError('ParameterInvalid', `${ISOLATION_PROPERTY} ${JSON.stringify(iso)} is invalid: must be true or false`);
    if (iso.toLowerCase() === 'true' && !key) throw quiverError('ParameterInvalid', `${ISOLATION_PROPERTY} needs a partition key field`);
  }
  const clustering = fields.filter((f) => f.is_clustering_key);
  if (clustering.length > 1) throw quiverError('ParameterInvalid', `there are more than one clustering key: ${clustering.map((f) => f.name).join(', ')}`);
  const ck = clustering[0];
  if (ck && !CLUSTERING_TYPES.includes(String(ck.data_type))) {
    throw quiverError('ParameterInvalid', `clustering key field ${ck.name} is ${ck.data_type}: supported: ${CLUSTERING_TYPES.join(', ')}`);
  }
}

/** The key values a filter pins (`key == v`, `key in [...]`, an `or` of those, or one and-ed term), or null. */
function pinnedKeys(coll: CollectionRecord, key: FieldSchema, filter: string, templates: TemplateValues | undefined): (bigint | string)[] | null {
  if (!filter.trim()) return null;
  let expr: Expr;
  try {
    expr = parseExpr(filter, templates);
  } catch {
    return null; // the read itself reports the syntax error
  }
  const schema = exprSchema(coll);
  // The key takes the primary key's place for the pk extractor (same shapes: == and in of literals).
  const asPk = { ...schema, fields: schema.fields.map((f) => ({ ...f, isPrimaryKey: f.name === key.name })) };
  const visit = (e: Expr): (bigint | string)[] | null => {
    const direct = extractPkValues(e, asPk);
    if (direct) return direct;
    if (e.kind === 'logical' && e.op === 'and') {
      for (const o of e.operands) {
        const v = visit(o);
        if (v) return v;
      }
    }
    return null;
  };
  return visit(expr);
}

/** Insert routing and read pruning over the data and query nodes, for partition-key collections only. */
export function withPartitionKeys<R extends { data: DataNodeApi; query: QueryNodeApi; coord: { catalog: CatalogReader } }>(roles: R): R {
  const cat = roles.coord.catalog;
  const keyed = (collectionId: number): { coll: CollectionRecord; key: FieldSchema } | undefined => {
    const coll = cat.collection(collectionId);
    const key = coll && partitionKeyOf(coll);
    return coll && key ? { coll, key } : undefined;
  };
  const refuseNames = (coll: CollectionRecord, names: readonly string[] | undefined): void => {
    if (names && names.length > 0) {
      throw quiverError('ParameterInvalid', `collection ${coll.name} uses a partition key: partition names cannot be specified (got ${names.join(', ')})`);
    }
  };
  const prune = (
    collectionId: number,
    filter: string,
    templates: TemplateValues | undefined,
    names: readonly string[],
    search: boolean,
  ): readonly string[] => {
    const k = keyed(collectionId);
    if (!k) return names;
    refuseNames(k.coll, names);
    const values = pinnedKeys(k.coll, k.key, filter, templates);
    if (!values) {
      if (search && k.coll.properties[ISOLATION_PROPERTY]?.toLowerCase() === 'true') {
        throw quiverError('ParameterInvalid', `collection ${k.coll.name} has partition key isolation: a search must filter on ${k.key.name} with == or in`);
      }
      return names;
    }
    const n = k.coll.partitions.length;
    // A pinned key with no value any row can hold (`key in []`) reads nothing: keep one partition, the filter empties it.
    return values.length === 0 ? [k.coll.partitions[0]!.name] : [...new Set(values.map((v) => keyPartitionName(v, n)))];
  };

  const insert: DataNodeApi['insert'] = async (collectionId, partitionName, columns, numRows, upsert) => {
    const k = keyed(collectionId);
    if (!k) return roles.data.insert(collectionId, partitionName, columns, numRows, upsert);
    if (partitionName) refuseNames(k.coll, [partitionName]);
    const keyCol = columns.get(k.key.name);
    if (!keyCol) throw quiverError('DataInvalid', `partition key field ${k.key.name} has no data`);
    const n = k.coll.partitions.length;
    const groups = new Map<string, number[]>();
    const values = keyCol.data as ArrayLike<bigint | string>;
    for (let i = 0; i < numRows; i++) {
      const p = keyPartitionName(values[i]!, n);
      let g = groups.get(p);
      if (!g) groups.set(p, (g = []));
      g.push(i);
    }
    // One atomic write for the whole batch (one WAL record over every partition it touches), so a crash
    // keeps all of it or none. The pks of the reply are put back in request order.
    const pks = new Array<bigint | string>(numRows);
    const groupList = [...groups];
    const parts = groupList.map(([p, rows]) => {
      const sub = new Map<string, Column>();
      for (const [name, col] of columns) sub.set(name, rows.length === numRows ? col : takeRows(col, rows));
      return { partitionName: p, columns: sub, numRows: rows.length };
    });
    const r = await roles.data.insertParts(collectionId, parts, upsert);
    groupList.forEach(([, rows], g) => rows.forEach((row, i) => (pks[row] = r.pks[g]![i]!)));
    const ts = r.ts;
    const intPk = k.coll.schema.fields.find((f) => f.isPrimaryKey)!.dataType === 'Int64';
    return { pks: intPk ? BigInt64Array.from(pks as bigint[]) : (pks as string[]), ts };
  };
  const query: Partial<QueryNodeApi> = {
    search: (id, p) => roles.query.search(id, { ...p, partitionNames: prune(id, p.filter, p.templates, p.partitionNames, true) }),
    query: (id, q) => roles.query.query(id, { ...q, partitionNames: prune(id, q.filter, q.templates, q.partitionNames, false) }),
    count: (id, q) => roles.query.count(id, { ...q, partitionNames: prune(id, q.filter, q.templates, q.partitionNames, false) }),
  };
  return { ...roles, data: overriding(roles.data, { insert }), query: overriding(roles.query, query) };
}

/** `target` with some methods replaced; the rest stay bound to it (they may use its #private fields). */
function overriding<T extends object>(target: T, overrides: Partial<T>): T {
  return new Proxy(target, {
    get(t, prop) {
      if (Object.prototype.hasOwnProperty.call(overrides, prop)) return (overrides as Record<PropertyKey, unknown>)[prop];
      const v: unknown = Reflect.get(t, prop, t);
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(t) : v;
    },
  });
}

/** Handler wrappers: schema validation at create, partition DDL refused on partition-key collections. */
export function partitionKeyHandlers(cat: CatalogReader, base: Readonly<Record<string, Handler>>): Record<string, Handler> {
  const keyedByName = (req: any, dbName: string): CollectionRecord | undefined => {
    if (typeof req.collection_name !== 'string' || !req.collection_name) return undefined;
    const coll = cat.resolveCollection((typeof req.db_name === 'string' && req.db_name) || dbName || 'default', req.collection_name);
    return partitionKeyOf(coll) ? coll : undefined;
  };
  const refuseDdl = (rpc: string) =>
    (async (req, ctx) => {
      const coll = keyedByName(req, ctx.dbName);
      if (coll)
        throw quiverError(
          'ParameterInvalid',
          `${rpc} is not allowed on collection ${coll.name}: it uses a partition key, whose partitions are managed by Quiver`,
        );
      return base[rpc]!(req, ctx);
    }) satisfies Handler;
  return {
    CreateCollection: (req, ctx) => {
      if (req.schema && req.schema.length > 0) {
        let decoded: any;
        try {
          decoded = decodeCollectionSchema(req.schema);
        } catch {
          decoded = undefined; // the base handler reports it
        }
        if (decoded) {
          const props: Record<string, string> = {};
          for (const kv of [...(decoded.properties ?? []), ...(req.properties ?? [])])
            if (kv && typeof kv.key === 'string') props[kv.key] = String(kv.value ?? '');
          validateKeyedSchema(decoded, Number(req.num_partitions ?? 0), props);
        }
      }
      return base['CreateCollection']!(req, ctx);
    },
    CreatePartition: refuseDdl('CreatePartition'),
    DropPartition: refuseDdl('DropPartition'),
  };
}
