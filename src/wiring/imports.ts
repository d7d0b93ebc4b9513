import type { Logger } from 'pino';
import type { Clock } from '../common/clock.js';
import { ImportExecutor } from '../import/import-executor.js';
import { IMPORT_DEFAULTS, ImportManager } from '../import/import-manager.js';
import { MetaImportJobStore } from '../import/job-store.js';
import type { MetaKV } from '../meta/meta-kv.js';
import type { ObjectStore } from '../storage/object-store.js';
import { requestColumns } from '../proxy/write-columns.js';
import type { Engine } from './engine.js';

/** Rows per validated batch: big enough to amortise the request shape, small enough to name a bad row cheaply. */
const IMPORT_BATCH_ROWS = 4096;

/**
 * Bulk import over the embedded engine: jobs in the MetaKV, files read from the collection's object store,
 * rows validated by the insert rules, segments of `sealRows` rows published through the engine. Jobs a
 * previous process left running are re-queued (init) before the loop starts.
 */
export async function startImports(
  deps: { engine: Engine; kv: MetaKV; store: ObjectStore; clock: Clock; log: Logger },
  opts: { sealRows: number; jobsMax?: number | undefined },
): Promise<ImportManager> {
  const { engine, kv, store, clock, log } = deps;
  const executor = new ImportExecutor(
    { store, ids: engine.ids, tso: engine.tso, toColumns: (coll, req) => requestColumns(coll, req, false), textBuilds: engine.data.textIndexBuilds },
    { batchRows: IMPORT_BATCH_ROWS, segmentRowsMax: opts.sealRows },
  );
  const imports = new ImportManager(
    {
      jobs: new MetaImportJobStore({ kv }),
      executor,
      catalog: engine.catalog,
      ids: engine.ids,
      tso: engine.tso,
      publish: (collectionId, records) => engine.publishImported(collectionId, records),
      clock,
      log,
    },
    { ...IMPORT_DEFAULTS, jobsMax: opts.jobsMax ?? IMPORT_DEFAULTS.jobsMax },
  );
  await imports.init();
  imports.start();
  return imports;
}
