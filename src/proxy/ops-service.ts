import { checkTimezoneProperties } from './timezone-output.js';
import { quiverError } from '../common/errors.js';
import type { CollectionRecord } from '../coord/records.js';
import { DEFAULT_DB } from '../coord/types.js';
import { parseTtlSeconds, TTL_PROPERTY } from '../segcore/collection-ttl.js';
import { OK } from './status.js';
import type { CallContext, Handler, ProxyRoles, ServiceOptions } from './milvus-service.js';

/* eslint-disable @typescript-eslint/no-explicit-any */

/**
 * Operations RPCs: segment info (query and persistent), metrics, replicas, load balance, index property
 * changes, and the TTL check of AlterCollection. An embedded Quiver is one process with one query node
 * and one replica, so the topology answers describe exactly that (node id 1), and load balance is a no-op
 * that says so.
 */

/** The id this process reports for its (only) query node, data node and proxy. */
export const NODE_ID = 1;
const RESOURCE_GROUP = '__default_resource_group';

function kvList(list: any[] | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const kv of list ?? []) if (kv && typeof kv.key === 'string') out[kv.key] = String(kv.value ?? '');
  return out;
}

export function createOpsHandlers(roles: ProxyRoles, opts: ServiceOptions, base: Readonly<Record<string, Handler>>): Record<string, Handler> {
  const cat = roles.coord.catalog;
  const dbOf = (name: unknown, ctx: CallContext): string => (typeof name === 'string' && name) || ctx.dbName || DEFAULT_DB;
  const byName = (db: string, name: unknown): CollectionRecord => {
    if (typeof name !== 'string' || name === '') throw quiverError('ParameterMissing', 'collection name is required');
    return cat.resolveCollection(db, name);
  };
  const channel = (coll: CollectionRecord, i: number) => `quiver-dml_${i}_${coll.id}v${i}`;

  return {
    GetQuerySegmentInfo: (req, ctx) => {
      const coll = byName(dbOf(req.dbName, ctx), req.collectionName);
      const indexes = cat.indexes(coll.id);
      const infos = roles.query.segmentInfos(coll.id).map((s) => {
        const first = s.indexed[0];
        const idx = first ? indexes.find((i) => coll.schema.fields.find((f) => f.fieldId === i.fieldId)?.name === first.fieldName) : undefined;
        return {
          segmentID: String(s.segmentId),
          collectionID: String(coll.id),
          partitionID: String(s.partitionId),
          mem_size: String(s.memBytes),
          num_rows: String(s.numRows),
          index_name: idx?.name ?? '',
          indexID: String(idx?.id ?? 0),
          nodeID: String(NODE_ID),
          state: s.state,
          nodeIds: [String(NODE_ID)],
          level: 'L1',
          is_sorted: false,
          storage_version: '0',
        };
      });
      return { status: OK, infos };
    },
    GetPersistentSegmentInfo: (req, ctx) => {
      const coll = byName(dbOf(req.dbName, ctx), req.collectionName);
      const infos = roles.data.flushedSegments(coll.id).map((s) => ({
        segmentID: String(s.id),
        collectionID: String(coll.id),
        partitionID: String(s.partitionId),
        num_rows: String(s.numRows),
        state: 'Flushed',
        level: 'L1',
        is_sorted: false,
        storage_version: '0',
      }));
      return { status: OK, infos };
    },
    GetMetrics: (req) => {
      let request: any;
      try {
        request = JSON.parse(String(req.request ?? ''));
      } catch {
        throw quiverError('ParameterInvalid', `GetMetrics request ${JSON.stringify(req.request)} is not JSON`);
      }
      const type = String(request?.metric_type ?? '');
      if (type !== 'system_info')
        throw quiverError('ParameterInvalid', `metric_type ${JSON.stringify(type)} is not supported by Quiver; supported: system_info`);
      const info = (role: string) => ({
        has_error: false,
        error_reason: '',
        name: `${role}${NODE_ID}`,
        hardware_infos: { ip: '127.0.0.1', cpu_core_count: 0, memory: process.memoryUsage().rss },
        system_info: { system_version: process.version, deploy_mode: 'EMBEDDED', created_time: new Date(opts.startedAtMs).toISOString() },
        created_time: new Date(opts.startedAtMs).toISOString(),
        type: role,
        id: NODE_ID,
      });
      const roleNames = ['proxy', 'rootcoord', 'querycoord', 'datacoord', 'querynode', 'datanode'];
      const response = {
        nodes_info: roleNames.map((r) => ({ identifier: NODE_ID, connected: [], infos: info(r) })),
        self_id: NODE_ID,
        quiver: { server_id: opts.serverId, collections: cat.allCollections().filter((c) => c.state === 'Created').length },
      };
      return { status: OK, response: JSON.stringify(response), component_name: `proxy${NODE_ID}` };
    },
    GetReplicas: (req, ctx) => {
      const coll =
        req.collection_name || !req.collectionID || req.collectionID === '0'
          ? byName(dbOf(req.db_name, ctx), req.collection_name)
          : cat.collection(Number(req.collectionID));
      if (!coll) throw quiverError('CollectionNotFound', `collection not found[collectionID=${req.collectionID}]`);
      if (!coll.loaded) throw quiverError('CollectionNotLoaded', `collection not loaded[collection=${coll.name}]: it has no replica`);
      const partitions = coll.loadedPartitions ?? coll.partitions.map((p) => p.id);
      return {
        status: OK,
        replicas: [
          {
            replicaID: String(NODE_ID),
            collectionID: String(coll.id),
            partition_ids: partitions.map(String),
            shard_replicas: Array.from({ length: coll.shardsNum }, (_, i) => ({
              leaderID: String(NODE_ID),
              leader_addr: '',
              dm_channel_name: channel(coll, i),
              node_ids: [String(NODE_ID)],
            })),
            node_ids: [String(NODE_ID)],
            resource_group_name: RESOURCE_GROUP,
            num_outbound_node: {},
          },
        ],
      };
    },
    LoadBalance: (req) => {
      const nodes = [String(req.src_nodeID ?? '0'), ...(req.dst_nodeIDs ?? []).map(String)];
      const unknown = nodes.find((n) => n !== '0' && n !== String(NODE_ID));
      if (unknown) {
        throw quiverError(
          'ParameterInvalid',
          `query node ${unknown} does not exist: this Quiver serves every segment from its one query node (id ${NODE_ID})`,
        );
      }
      // One node holds every segment: there is nothing to move. Success, saying so.
      return { ...OK, reason: `load balance is a no-op: one query node (id ${NODE_ID}) serves every segment` };
    },
    AlterIndex: async (req, ctx) => {
      const coll = byName(dbOf(req.db_name, ctx), req.collection_name);
      const name = String(req.index_name ?? '');
      const list = cat.indexes(coll.id).filter((i) => name === '' || i.name === name);
      if (list.length === 0) throw quiverError('IndexNotFound', `index not found[collection=${coll.name}]${name ? `[index=${name}]` : ''}`);
      if (list.length > 1) throw quiverError('ParameterInvalid', `collection ${coll.name} has ${list.length} indexes: index_name must be specified`);
      const set = kvList(req.extra_params);
      const deleteKeys: string[] = req.delete_keys ?? [];
      if (Object.keys(set).length === 0 && deleteKeys.length === 0) throw quiverError('ParameterMissing', 'AlterIndex needs extra_params or delete_keys');
      await roles.coord.alterIndexProperties(coll.id, list[0]!.id, set, deleteKeys);
      return OK;
    },
    AlterCollection: async (req, ctx) => {
      // TTL is validated here as at create: a bad value never reaches the catalog.
      parseTtlSeconds(kvList(req.properties)[TTL_PROPERTY]);
      checkTimezoneProperties(kvList(req.properties));
      return base['AlterCollection']!(req, ctx);
    },
  };
}
