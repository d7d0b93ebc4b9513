import { isQuiverError, quiverError } from '../common/errors.js';
import type { SnapshotView } from '../coord/snapshot/view.js';
import { DEFAULT_DB } from '../coord/types.js';
import type { QueryNodeApi } from '../querynode/types.js';
import type { CallContext, Handler, ProxyRoles } from './milvus-service.js';
import { OK } from './status.js';

/**
 * `COLLECTION@SNAPSHOT` in the Milvus API (coord/snapshot/view.ts has the model). Two wrappers, so the
 * handlers themselves do not change:
 *   - the handler table: a request naming a view opens it first (async: metadata and manifests are read),
 *     then runs the ordinary handler; a request that would write or change it is refused, naming it;
 *   - the roles: the catalog resolves view names and ids to the view's record and indexes, the query
 *     calls for a view go to the views' query node, and index progress of a view is "built" (its index
 *     files are the snapshot's).
 * `@` is not allowed in a collection name, so a view name never shadows a collection.
 */

export interface ViewAccess {
  open(dbName: string, name: string): Promise<SnapshotView>;
  find(dbName: string, name: string): SnapshotView | undefined;
  get(id: number): SnapshotView | undefined;
  /** Forgets a released view. */
  close(id: number): void;
  /** The query node that serves views. */
  readonly query: QueryNodeApi;
}

/** Reads and load state: what a view answers. Everything else naming a view is refused. */
const VIEW_METHODS: ReadonlySet<string> = new Set([
  'DescribeCollection',
  'BatchDescribeCollection',
  'HasCollection',
  'GetCollectionStatistics',
  'ShowPartitions',
  'HasPartition',
  'GetPartitionStatistics',
  'LoadCollection',
  'ReleaseCollection',
  'LoadPartitions',
  'ReleasePartitions',
  'GetLoadState',
  'GetLoadingProgress',
  'DescribeIndex',
  'GetIndexState',
  'GetIndexBuildProgress',
  'GetIndexStatistics',
  'Search',
  'HybridSearch',
  'Query',
]);

function namesOf(req: unknown): string[] {
  const r = (req ?? {}) as { collection_name?: unknown; collection_names?: unknown };
  const out: string[] = [];
  if (typeof r.collection_name === 'string') out.push(r.collection_name);
  else if (Array.isArray(r.collection_name)) out.push(...r.collection_name.filter((n): n is string => typeof n === 'string'));
  if (Array.isArray(r.collection_names)) out.push(...r.collection_names.filter((n): n is string => typeof n === 'string'));
  return out;
}

const dbOf = (req: unknown, ctx: CallContext): string => {
  const d = (req as { db_name?: unknown } | undefined)?.db_name;
  return (typeof d === 'string' && d) || ctx.dbName || DEFAULT_DB;
};

export function withSnapshotViewHandlers(handlers: Record<string, Handler>, views: ViewAccess): Record<string, Handler> {
  const out: Record<string, Handler> = {};
  for (const [method, h] of Object.entries(handlers)) {
    out[method] = async (req, ctx) => {
      const named = namesOf(req).filter((n) => n.includes('@'));
      if (named.length === 0) return h(req, ctx);
      if (!VIEW_METHODS.has(method)) {
        throw quiverError(
          'ParameterInvalid',
          `collection ${named[0]} is a read-only view of a snapshot: ${method} is refused (restore the snapshot into a new collection to change it)`,
        );
      }
      const db = dbOf(req, ctx);
      if (method === 'HasCollection') {
        // "Is there such a collection": a missing snapshot is a plain no, as for any unknown name.
        const found = await views.open(db, named[0]!).then(
          () => true,
          (e: unknown) => {
            if (isQuiverError(e, 'CollectionNotFound')) return false;
            throw e;
          },
        );
        if (!found) return { status: OK, value: false };
      }
      const opened = await Promise.all(named.map((n) => views.open(db, n)));
      const reply: unknown = await h(req, ctx);
      if (method === 'ReleaseCollection') for (const v of opened) views.close(v.id);
      return reply;
    };
  }
  return out;
}

export function withSnapshotViewRoles(roles: ProxyRoles, views: ViewAccess): ProxyRoles {
  const cat = roles.coord.catalog;
  const catalog = new Proxy(cat, {
    get(target, prop, receiver) {
      switch (prop) {
        case 'resolveCollection':
          return (db: string, name: string) => {
            if (!name.includes('@')) return target.resolveCollection(db, name);
            const v = views.find(db, name);
            if (!v) throw quiverError('CollectionNotFound', `collection not found[database=${db}][collection=${name}]`);
            return v.record;
          };
        case 'collection':
          return (id: number) => views.get(id)?.record ?? target.collection(id);
        case 'collectionByName':
          return (dbId: number, name: string) =>
            name.includes('@') ? views.find(target.databaseById(dbId)?.name ?? DEFAULT_DB, name)?.record : target.collectionByName(dbId, name);
        case 'indexes':
          return (id: number) => views.get(id)?.indexes ?? target.indexes(id);
        case 'aliasesOf':
          return (id: number) => (views.get(id) ? [] : target.aliasesOf(id));
        default:
          return bound(target, prop, receiver);
      }
    },
  });
  const coord = new Proxy(roles.coord, {
    get: (target, prop, receiver) => (prop === 'catalog' ? catalog : bound(target, prop, receiver)),
  });
  const query = new Proxy(roles.query, {
    get(target, prop, receiver) {
      const own = bound(target, prop, receiver);
      if (typeof own !== 'function') return own;
      const viewed = bound(views.query, prop, views.query);
      return (id: unknown, ...rest: unknown[]) =>
        typeof id === 'number' && views.get(id) && typeof viewed === 'function'
          ? (viewed as (...a: unknown[]) => unknown)(id, ...rest)
          : (own as (...a: unknown[]) => unknown)(id, ...rest);
    },
  });
  const indexes = new Proxy(roles.indexes, {
    get(target, prop, receiver) {
      if (prop !== 'progress') return bound(target, prop, receiver);
      return (id: number, idx: Parameters<ProxyRoles['indexes']['progress']>[1]) => {
        const v = views.get(id);
        if (!v) return target.progress(id, idx);
        // The snapshot's segments carry their index files: a view is built wherever the snapshot was.
        let total = 0;
        let indexed = 0;
        for (const s of v.segments) {
          total += s.numRows;
          if (s.indexes.some((f) => f.indexId === idx.id)) indexed += s.numRows;
        }
        return { indexedRows: indexed, totalRows: total, pendingRows: total - indexed };
      };
    },
  });
  return { ...roles, coord, query, indexes };
}

/** The target's own member, `this` bound to the target (classes with #private fields need it, not the proxy). */
function bound(target: object, prop: string | symbol, _receiver: unknown): unknown {
  const v = Reflect.get(target, prop) as unknown;
  return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
}
