import type { Logger } from 'pino';
import type { Clock } from '../common/clock.js';
import { SnapshotViews } from '../coord/snapshot/view.js';
import type { SnapshotManager } from '../coord/snapshot/snapshot-manager.js';
import type { MetaKV } from '../meta/meta-kv.js';
import { QueryNode } from '../querynode/query-node.js';
import type { ViewAccess } from '../proxy/snapshot-views.js';
import { CollectionRuntime } from '../segcore/collection-runtime.js';
import type { ObjectStore } from '../storage/object-store.js';
import type { Engine } from './engine.js';

/**
 * The views' side of `COLLECTION@SNAPSHOT` (coord/snapshot/view.ts): one in-memory collection runtime per
 * open view, holding the snapshot's segments as flushed segments, served by a query node of their own.
 * That query node reads the views' index definitions and writes load state into the view (pinning its
 * snapshot), and shares the live query node's content index, so a segment loaded live is not loaded twice.
 */
export async function snapshotViews(deps: {
  engine: Engine;
  snapshots: SnapshotManager;
  kv: MetaKV;
  store: ObjectStore;
  clock: Clock;
  log: Logger;
}): Promise<ViewAccess & { readonly views: SnapshotViews }> {
  const views = new SnapshotViews({ snapshots: deps.snapshots, catalog: deps.engine.catalog, kv: deps.kv, log: deps.log });
  const wasLoaded = await views.init();
  const runtimes = new Map<number, CollectionRuntime>();
  const runtime = (id: number): CollectionRuntime | undefined => {
    const v = views.get(id);
    if (!v) {
      runtimes.delete(id);
      return undefined;
    }
    let rt = runtimes.get(id);
    if (rt && rt.record.name === v.name && rt.record.createdTs === v.record.createdTs) return rt;
    rt = new CollectionRuntime(v.record);
    for (const rec of v.segments) {
      rt.segments.set(rec.id, {
        id: rec.id,
        partitionId: rec.partitionId,
        phase: 'flushed',
        chunks: [],
        numRows: rec.numRows,
        record: rec,
        loaded: false,
        pendingDeletes: { pks: [], ts: [] },
      });
    }
    runtimes.set(id, rt);
    return rt;
  };
  const query = new QueryNode({
    store: deps.store,
    catalog: { indexes: (id) => [...(views.get(id)?.indexes ?? [])] },
    segments: { runtime },
    loadState: {
      setLoadState: async (id, loaded, loadedPartitions) => {
        const rt = runtime(id);
        if (!rt) throw new Error(`assertion failed: no view ${id}`);
        await views.setLoaded(id, loaded, loadedPartitions);
        rt.record = { ...rt.record, loaded, loadedPartitions };
        return rt.record;
      },
    },
    log: deps.log,
    clock: deps.clock,
    contentIndex: deps.engine.queryNode.contentIndex,
  });
  // Views loaded before the restart load again in the background, as collections do (view.ts, (1)).
  for (const entry of wasLoaded) {
    views
      .reload(entry, (v, partitions) => query.load(v.id, partitions))
      .catch((err: unknown) => {
        deps.log.error({ err, view: entry.name, db: entry.dbName }, 'snapshot view reload failed');
      });
  }
  return {
    views,
    query,
    open: (db, name) => views.open(db, name),
    find: (db, name) => views.find(db, name),
    get: (id) => views.get(id),
    close: (id) => {
      views.close(id);
      if (!views.get(id)) runtimes.delete(id);
    },
  };
}
