import { quiverError } from '../common/errors.js';
import { DEFAULT_DB } from '../coord/types.js';
import type { SnapshotManager } from '../coord/snapshot/snapshot-manager.js';
import type { RestoreService } from '../coord/snapshot/restore-service.js';
import { restoreInfo } from './restore-info.js';
import type { Clock } from '../common/clock.js';
import type { CallContext, Handler } from './milvus-service.js';
import { OK } from './status.js';
import { validateName } from './schema-proto.js';

/* eslint-disable @typescript-eslint/no-explicit-any */

/** Snapshot RPCs (Milvus 3.0, collection-scoped): create/list/describe/drop, pin/unpin, restore + job state. */
export function snapshotHandlers(snapshots: SnapshotManager, restores: RestoreService, clock: Clock): Record<string, Handler> {
  const db = (req: any, ctx: CallContext): string => (typeof req?.db_name === 'string' && req.db_name) || ctx.dbName || DEFAULT_DB;
  const coll = (req: any): string => {
    if (typeof req.collection_name !== 'string' || req.collection_name === '')
      throw quiverError('ParameterMissing', 'collection name is required for snapshot operations');
    return req.collection_name;
  };
  return {
    CreateSnapshot: async (req, ctx) => {
      const name = validateName('snapshot', req.name);
      await snapshots.create(db(req, ctx), coll(req), name, String(req.description ?? ''), Number(req.compaction_protection_seconds ?? 0));
      return OK;
    },
    ListSnapshots: async (req, ctx) => {
      const list = await snapshots.list(db(req, ctx), coll(req));
      return { status: OK, snapshots: list.map((s) => s.name) };
    },
    DescribeSnapshot: async (req, ctx) => {
      const s = await snapshots.describe(db(req, ctx), coll(req), String(req.name ?? ''));
      return {
        status: OK,
        name: s.name,
        description: s.description,
        collection_name: s.collectionName,
        partition_names: s.partitionNames,
        create_ts: s.createTs,
        s3_location: s.metadataKey,
      };
    },
    DropSnapshot: async (req, ctx) => {
      if (typeof req.name !== 'string' || req.name === '') throw quiverError('ParameterMissing', 'snapshot name is required');
      await snapshots.drop(db(req, ctx), coll(req), req.name);
      return OK;
    },
    PinSnapshotData: async (req, ctx) => {
      const pin = await snapshots.pin(db(req, ctx), coll(req), String(req.name ?? ''), Number(req.ttl_seconds ?? 0));
      return { status: OK, pin_id: String(pin.id) };
    },
    UnpinSnapshotData: async (req) => {
      const id = Number(req.pin_id ?? 0);
      if (!Number.isSafeInteger(id) || id <= 0) throw quiverError('ParameterInvalid', `pin_id ${req.pin_id} is invalid`);
      await snapshots.unpin(id);
      return OK;
    },
    RestoreSnapshot: async (req, ctx) => {
      const sourceDb = db(req, ctx);
      const target = validateName('collection', req.target_collection_name);
      if (req.rewrite_data) throw quiverError('ParameterInvalid', 'rewrite_data restores are not supported by Quiver: restore copies files as they are');
      const job = await restores.restore({
        sourceDb,
        sourceCollection: coll(req),
        name: String(req.name ?? ''),
        targetDb: req.target_db_name || sourceDb,
        targetCollection: target,
      });
      return { status: OK, job_id: String(job.id) };
    },
    GetRestoreSnapshotState: async (req) => {
      const job = await restores.job(Number(req.job_id ?? 0));
      return { status: OK, info: restoreInfo(job, clock.nowMs(), restores.inspector.waitingReason(job.id)) };
    },
    ListRestoreSnapshotJobs: async (req) => {
      const jobs = await restores.list({ dbName: req.db_name || undefined, collectionName: req.collection_name || undefined });
      return { status: OK, jobs: jobs.map((j) => restoreInfo(j, clock.nowMs(), restores.inspector.waitingReason(j.id))) };
    },
  };
}
