import { isQuiverError } from '../common/errors.js';
import { DEFAULT_DB } from '../coord/types.js';
import type { ExternalRestoreService, ImportRecord } from '../coord/snapshot/export/import-service.js';
import type { SnapshotExporter } from '../coord/snapshot/export/exporter.js';
import type { CallContext, Handler } from './milvus-service.js';
import { validateName } from './schema-proto.js';
import { OK } from './status.js';

/* eslint-disable @typescript-eslint/no-explicit-any */

/**
 * ExportSnapshot / RestoreExternalSnapshot (Milvus 3.0 RPCs the SDK's proto carries; coord/snapshot/export).
 * `GetRestoreSnapshotState` and `ListRestoreSnapshotJobs` are wrapped: an external restore's job id names its
 * import while the bundle is verified (state Pending, progress = bytes verified) or when verification failed
 * or was cancelled (Failed, with the file or "cancelled").
 */
export function exportHandlers(
  exporter: SnapshotExporter,
  imports: ExternalRestoreService,
  base: Readonly<Record<string, Handler>>,
  nowMs: () => number,
): Record<string, Handler> {
  const db = (req: any, ctx: CallContext): string => (typeof req?.db_name === 'string' && req.db_name) || ctx.dbName || DEFAULT_DB;
  const baseState = base.GetRestoreSnapshotState;
  const baseList = base.ListRestoreSnapshotJobs;
  if (baseState === undefined || baseList === undefined) throw new Error('assertion failed: restore job states are served by the snapshot handlers');
  return {
    ExportSnapshot: async (req, ctx) => {
      const r = await exporter.export({
        db: db(req, ctx),
        collection: validateName('collection', req.collection_name),
        name: validateName('snapshot', req.name),
        target: req.target_s3_path,
        externalSpec: req.external_spec,
      });
      return { status: OK, snapshot_metadata_uri: r.uri };
    },
    RestoreExternalSnapshot: async (req, ctx) => {
      const id = await imports.start({
        db: db(req, ctx),
        target: validateName('collection', req.target_collection_name),
        uri: req.snapshot_metadata_uri,
        externalSpec: req.external_spec,
      });
      return { status: OK, job_id: String(id) };
    },
    GetRestoreSnapshotState: async (req, ctx) => {
      try {
        return await baseState(req, ctx);
      } catch (e) {
        if (!isQuiverError(e, 'RestoreJobNotFound')) throw e;
        const rec = await imports.record(Number(req.job_id ?? 0));
        if (rec === undefined || rec.state === 'Started') throw e;
        return { status: OK, info: importInfo(rec, nowMs()) };
      }
    },
    // The restore jobs, and the external restores whose job does not exist yet (verifying, or failed so).
    ListRestoreSnapshotJobs: async (req, ctx) => {
      const r = (await baseList(req, ctx)) as { jobs?: unknown[] };
      const dbName = typeof req?.db_name === 'string' ? req.db_name : '';
      const collectionName = typeof req?.collection_name === 'string' ? req.collection_name : '';
      const verifying = (await imports.list())
        .filter((x) => (!dbName || x.targetDbName === dbName) && (!collectionName || x.targetCollectionName === collectionName))
        .map((x) => importInfo(x, nowMs()));
      return { ...r, jobs: [...(r.jobs ?? []), ...verifying] };
    },
  };
}

/** An import record (external restore before its job exists) as a RestoreSnapshotInfo. */
export function importInfo(rec: ImportRecord & { readonly bytesVerified: number }, nowMs: number): Record<string, unknown> {
  const end = rec.finishedAtMs ?? nowMs;
  return {
    job_id: String(rec.id),
    snapshot_name: rec.snapshotName,
    db_name: rec.targetDbName,
    collection_name: rec.targetCollectionName,
    state: rec.state === 'Failed' ? 'RestoreSnapshotFailed' : 'RestoreSnapshotPending',
    // Verifying the bundle is the first half of an external restore (the copy is the second).
    progress: rec.bytesTotal > 0 ? Math.floor((50 * rec.bytesVerified) / rec.bytesTotal) : 0,
    reason: rec.state === 'Staging' ? `verifying bundle: ${rec.bytesVerified} of ${rec.bytesTotal} bytes` : rec.reason,
    start_time: String(rec.createdAtMs),
    time_cost: String(Math.max(0, end - rec.createdAtMs)),
  };
}
