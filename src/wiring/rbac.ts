import type { SnapshotManager } from '../coord/snapshot/snapshot-manager.js';
import type { CatalogReader } from '../coord/types.js';
import { RbacAuthorizer, RbacStore, type ObjectResolver } from '../auth/index.js';
import type { UserDirectory } from '../auth/types.js';
import type { MetaKV } from '../meta/meta-kv.js';
import type { Handler } from '../proxy/milvus-service.js';
import { rbacHandlers, withVisibilityFilters } from '../proxy/rbac-service.js';

/**
 * RBAC wiring: the store (loaded before the server serves), the authorizer the gRPC and REST doors call
 * before every handler, and the role/grant RPC handlers. The resolver answers from the catalog mirror and
 * the snapshot manager's pins, both in memory, because authorize() is synchronous.
 */
export async function startRbac(deps: {
  kv: MetaKV;
  catalog: CatalogReader;
  snapshots: Pick<SnapshotManager, 'activePinsAll'>;
  directory?: UserDirectory | undefined;
}): Promise<{
  store: RbacStore;
  authorizer: RbacAuthorizer;
  handlers: Record<string, Handler>;
  /** ListDatabases / ShowCollections filtered to what the caller holds grants on. */
  filtered: (handlers: Record<string, Handler>) => Record<string, Handler>;
}> {
  const { catalog } = deps;
  const resolver: ObjectResolver = {
    collectionOf: (db, name) => {
      const d = catalog.database(db);
      const a = d && catalog.alias(d.id, name);
      return (a && catalog.collection(a.collectionId)?.name) ?? name;
    },
    pinTarget: (pinId) => {
      const pin = deps.snapshots.activePinsAll().find((p) => p.id === pinId);
      const c = pin && catalog.collectionIncludingDropped(pin.collectionId);
      const db = c && catalog.databaseById(c.dbId);
      return c && db ? { db: db.name, collection: c.name } : undefined;
    },
  };
  const store = new RbacStore({ kv: deps.kv, directory: deps.directory });
  await store.init();
  const authorizer = new RbacAuthorizer({ store, resolver });
  return {
    store,
    authorizer,
    handlers: rbacHandlers({ store, authorizer, directory: deps.directory }),
    filtered: (handlers) => withVisibilityFilters(handlers, authorizer),
  };
}
