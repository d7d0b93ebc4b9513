import { z } from 'zod';
import type { NamedDiff } from '../../coord/snapshot/diff.js';
import type { RestCallContext, RestRoute } from '../types.js';
import { dbNameField, int64Id, objectName, seconds } from './admin-fields.js';
import { int64Out } from './common.js';

/**
 * The snapshot endpoints Milvus 3.0 defines (`/v2/vectordb/snapshots/{create,drop,list,describe,restore,
 * pin,unpin}`, `/v2/vectordb/jobs/snapshot/{describe,list}`) with Milvus's body fields (`snapshotName`,
 * `collectionName`, `targetCollectionName`, `ttlSeconds`, `pinId`, `jobId`) and reply shapes, plus ours:
 * `snapshots/export`, `snapshots/restore_external`, `snapshots/diff`, `jobs/snapshot/cancel`.
 *
 * Every route goes through `call`, so REST is authenticated, authorized and answered by the handlers the
 * gRPC door runs. Cancel and diff have no MilvusService message: `snapshotExtraRoutes` takes the functions
 * the HTTP metrics port and the CLI use (so all three answer alike) and authorizes each call through the
 * RPC whose privilege it needs (see the two routes).
 */

export interface SnapshotRestDeps {
  /** Cancels a restore job and answers it as a RestoreSnapshotInfo (snake_case), as `POST /restore-jobs/{id}/cancel` does. */
  cancelRestoreJob(jobId: number): Promise<Record<string, unknown>>;
  /** `SnapshotDiffer.diff`: the rows changed between two snapshots (or a snapshot and `now`). */
  diff(dbName: string, collectionName: string, from: string, to: string): Promise<NamedDiff>;
}

const collectionName = objectName('collectionName');
const snapshotName = objectName('snapshotName');

const create: RestRoute<{
  collectionName: string;
  snapshotName: string;
  description?: string | undefined;
  compactionProtectionSeconds?: number | undefined;
}> = {
  path: 'snapshots/create',
  body: z.object({
    dbName: dbNameField,
    collectionName,
    snapshotName,
    description: z.string().max(65536, 'description must be at most 65536 characters').optional(),
    compactionProtectionSeconds: seconds('compactionProtectionSeconds').optional(),
  }),
  async run(b, call, ctx) {
    await call('CreateSnapshot', {
      db_name: ctx.dbName,
      collection_name: b.collectionName,
      name: b.snapshotName,
      description: b.description ?? '',
      compaction_protection_seconds: String(b.compactionProtectionSeconds ?? 0),
    });
    return {};
  },
};

const snapshotBody = z.object({ dbName: dbNameField, collectionName, snapshotName });
type SnapshotBody = { collectionName: string; snapshotName: string };

const drop: RestRoute<SnapshotBody> = {
  path: 'snapshots/drop',
  body: snapshotBody,
  async run(b, call, ctx) {
    await call('DropSnapshot', { db_name: ctx.dbName, collection_name: b.collectionName, name: b.snapshotName });
    return {};
  },
};

/** Milvus answers the names. `collectionName` is optional in Milvus's body; the handler says when it is needed. */
const list: RestRoute<{ collectionName?: string | undefined }> = {
  path: 'snapshots/list',
  body: z.object({ dbName: dbNameField, collectionName: collectionName.optional() }),
  async run(b, call, ctx) {
    const r = (await call('ListSnapshots', { db_name: ctx.dbName, collection_name: b.collectionName ?? '' })) as { snapshots?: string[] };
    return r.snapshots ?? [];
  },
};

const describe: RestRoute<SnapshotBody> = {
  path: 'snapshots/describe',
  body: snapshotBody,
  async run(b, call, ctx) {
    const r = (await call('DescribeSnapshot', { db_name: ctx.dbName, collection_name: b.collectionName, name: b.snapshotName })) as {
      name?: string;
      description?: string;
      collection_name?: string;
      partition_names?: string[];
      create_ts?: string | number;
      s3_location?: string;
    };
    return {
      snapshotName: r.name ?? '',
      description: r.description ?? '',
      collectionName: r.collection_name ?? '',
      partitionNames: r.partition_names ?? [],
      // A hybrid timestamp: beyond JSON's exact integers, so a decimal string unless the client allows int64.
      createTs: int64Out(r.create_ts ?? '0', ctx),
      s3Location: r.s3_location ?? '',
    };
  },
};

type RestoreBody = {
  collectionName?: string | undefined;
  sourceCollectionName?: string | undefined;
  snapshotName: string;
  targetCollectionName: string;
  targetDbName?: string | undefined;
};

const restore: RestRoute<RestoreBody> = {
  path: 'snapshots/restore',
  body: z
    .object({
      dbName: dbNameField,
      // The source: `collectionName` (the proto's field); `sourceCollectionName` is taken as a synonym.
      collectionName: collectionName.optional(),
      sourceCollectionName: objectName('sourceCollectionName').optional(),
      snapshotName,
      targetCollectionName: objectName('targetCollectionName'),
      targetDbName: objectName('targetDbName').optional(),
    })
    .refine((b) => b.collectionName !== undefined || b.sourceCollectionName !== undefined, {
      message: 'collectionName (the source collection) is required',
      path: ['collectionName'],
    })
    .refine((b) => b.collectionName === undefined || b.sourceCollectionName === undefined || b.collectionName === b.sourceCollectionName, {
      message: 'collectionName and sourceCollectionName name different collections',
      path: ['sourceCollectionName'],
    }),
  async run(b, call, ctx) {
    const r = (await call('RestoreSnapshot', {
      db_name: ctx.dbName,
      collection_name: b.collectionName ?? b.sourceCollectionName,
      name: b.snapshotName,
      // Empty: the handler restores into the source's database, as the gRPC request without one does.
      target_db_name: b.targetDbName ?? '',
      target_collection_name: b.targetCollectionName,
    })) as { job_id?: string | number };
    return { jobId: int64Out(r.job_id ?? '0', ctx) };
  },
};

const pin: RestRoute<SnapshotBody & { ttlSeconds?: number | undefined }> = {
  path: 'snapshots/pin',
  body: snapshotBody.extend({ ttlSeconds: seconds('ttlSeconds').optional() }),
  async run(b, call, ctx) {
    const r = (await call('PinSnapshotData', {
      db_name: ctx.dbName,
      collection_name: b.collectionName,
      name: b.snapshotName,
      ttl_seconds: String(b.ttlSeconds ?? 0),
    })) as { pin_id?: string | number };
    return { pinId: int64Out(r.pin_id ?? '0', ctx) };
  },
};

const unpin: RestRoute<{ pinId: string | number }> = {
  path: 'snapshots/unpin',
  body: z.object({ dbName: dbNameField, pinId: int64Id('pinId') }),
  async run(b, call) {
    await call('UnpinSnapshotData', { pin_id: String(b.pinId) });
    return {};
  },
};

interface RestoreInfo {
  job_id?: string | number;
  snapshot_name?: string;
  db_name?: string;
  collection_name?: string;
  state?: string;
  progress?: number;
  reason?: string;
  start_time?: string | number;
  time_cost?: string | number;
}

/** A RestoreSnapshotInfo in Milvus's REST spelling; the target collection is `collectionName`. */
export function restoreInfoJson(i: RestoreInfo, ctx: RestCallContext): Record<string, unknown> {
  return {
    jobId: int64Out(i.job_id ?? '0', ctx),
    snapshotName: i.snapshot_name ?? '',
    dbName: i.db_name ?? '',
    collectionName: i.collection_name ?? '',
    state: i.state ?? '',
    progress: Number(i.progress ?? 0),
    reason: i.reason ?? '',
    startTime: int64Out(i.start_time ?? '0', ctx),
    timeCost: int64Out(i.time_cost ?? '0', ctx),
  };
}

const jobDescribe: RestRoute<{ jobId: string | number }> = {
  path: 'jobs/snapshot/describe',
  body: z.object({ dbName: dbNameField, jobId: int64Id('jobId') }),
  async run(b, call, ctx) {
    const r = (await call('GetRestoreSnapshotState', { job_id: String(b.jobId) })) as { info?: RestoreInfo };
    return restoreInfoJson(r.info ?? {}, ctx);
  },
};

/** Filters by the target's database and collection only when the body names them (all jobs otherwise). */
const jobList: RestRoute<{ dbName?: string | undefined; collectionName?: string | undefined }> = {
  path: 'jobs/snapshot/list',
  body: z.object({ dbName: dbNameField, collectionName: collectionName.optional() }),
  async run(b, call, ctx) {
    const r = (await call('ListRestoreSnapshotJobs', { db_name: b.dbName ?? '', collection_name: b.collectionName ?? '' })) as {
      jobs?: RestoreInfo[];
    };
    return (r.jobs ?? []).map((j) => restoreInfoJson(j, ctx));
  },
};

/** Export targets and bundle URIs (`file:///…`, `s3://…`): the exporter parses and confines them to its roots. */
const uri = (what: string) =>
  z
    .string({ required_error: `${what} is required` })
    .min(1, `${what} must not be empty`)
    .max(4096, `${what} must be at most 4096 characters`)
    .refine((s) => ![...s].some((c) => c.charCodeAt(0) < 0x20), `${what} must not contain control characters`);

/** JSON text with the credentials of an external store (see README, snapshot export). */
const externalSpec = z.string().max(65536, 'externalSpec must be at most 65536 characters').optional();

const exportSnapshot: RestRoute<SnapshotBody & { targetPath: string; externalSpec?: string | undefined }> = {
  path: 'snapshots/export',
  body: snapshotBody.extend({ targetPath: uri('targetPath'), externalSpec }),
  async run(b, call, ctx) {
    const r = (await call('ExportSnapshot', {
      db_name: ctx.dbName,
      collection_name: b.collectionName,
      name: b.snapshotName,
      target_s3_path: b.targetPath,
      external_spec: b.externalSpec ?? '',
    })) as { snapshot_metadata_uri?: string };
    return { snapshotMetadataUri: r.snapshot_metadata_uri ?? '' };
  },
};

const restoreExternal: RestRoute<{ targetCollectionName: string; snapshotMetadataUri: string; externalSpec?: string | undefined }> = {
  path: 'snapshots/restore_external',
  body: z.object({
    dbName: dbNameField,
    targetCollectionName: objectName('targetCollectionName'),
    snapshotMetadataUri: uri('snapshotMetadataUri'),
    externalSpec,
  }),
  async run(b, call, ctx) {
    const r = (await call('RestoreExternalSnapshot', {
      db_name: ctx.dbName,
      target_collection_name: b.targetCollectionName,
      snapshot_metadata_uri: b.snapshotMetadataUri,
      external_spec: b.externalSpec ?? '',
    })) as { job_id?: string | number };
    return { jobId: int64Out(r.job_id ?? '0', ctx) };
  },
};

export const snapshotRoutes: readonly RestRoute[] = [
  create,
  drop,
  list,
  describe,
  restore,
  pin,
  unpin,
  jobDescribe,
  jobList,
  exportSnapshot,
  restoreExternal,
];

const DIFF_LIMIT_DEFAULT = 10_000;
const DIFF_LIMIT_MAX = 1_000_000;
/** A snapshot name, or `now` for the collection as it is. */
const diffSide = (what: string) => z.union([z.literal('now'), objectName(what)]);

/** `jobs/snapshot/cancel` and `snapshots/diff`, over the wiring's functions. */
export function snapshotExtraRoutes(deps: SnapshotRestDeps): RestRoute[] {
  /**
   * GetRestoreSnapshotState first: it answers 2603 for an unknown job and names the job's target. Then
   * ListRestoreSnapshotJobs on that target, whose rule is the RestoreSnapshot privilege on the collection
   * named: cancelling a restore (which drops the collection it was building) takes the privilege to restore
   * there. Only then the cancel itself.
   */
  const cancel: RestRoute<{ jobId: string | number }> = {
    path: 'jobs/snapshot/cancel',
    body: z.object({ dbName: dbNameField, jobId: int64Id('jobId') }),
    async run(b, call, ctx) {
      const state = (await call('GetRestoreSnapshotState', { job_id: String(b.jobId) })) as { info?: RestoreInfo };
      const target = state.info ?? {};
      await call('ListRestoreSnapshotJobs', { db_name: target.db_name ?? '', collection_name: target.collection_name ?? '' });
      return restoreInfoJson(await deps.cancelRestoreJob(Number(b.jobId)), ctx);
    },
  };

  /**
   * The summary and the first `limit` changed primary keys (in pk order); `truncated` says more changed.
   * The metrics port's `GET /snapshots/diff` streams every key; this answer is one JSON document.
   * Authorized as DescribeSnapshot of each named snapshot (which also answers 2600 for a missing one);
   * `now` is the collection itself, read as DescribeCollection.
   */
  const diff: RestRoute<{ collectionName: string; from: string; to: string; limit?: number | undefined }> = {
    path: 'snapshots/diff',
    body: z.object({
      dbName: dbNameField,
      collectionName,
      from: diffSide('from'),
      to: diffSide('to'),
      limit: z
        .number()
        .int('limit must be an integer')
        .min(0, 'limit must not be negative')
        .max(DIFF_LIMIT_MAX, `limit must be at most ${DIFF_LIMIT_MAX}`)
        .optional(),
    }),
    async run(b, call, ctx) {
      for (const side of new Set([b.from, b.to])) {
        if (side === 'now') await call('DescribeCollection', { db_name: ctx.dbName, collection_name: b.collectionName });
        else await call('DescribeSnapshot', { db_name: ctx.dbName, collection_name: b.collectionName, name: side });
      }
      const d = await deps.diff(ctx.dbName, b.collectionName, b.from, b.to);
      const limit = b.limit ?? DIFF_LIMIT_DEFAULT;
      return {
        from: d.from,
        to: d.to,
        inserted: d.inserted,
        deleted: d.deleted,
        updated: d.updated,
        segmentsRead: d.segmentsRead,
        segmentsSkipped: d.segmentsSkipped,
        deltalogsRead: d.deltalogsRead,
        // Int64 keys as int64 values (strings unless the client allows numbers); VarChar keys as they are.
        changes: d.changes.slice(0, limit).map((c) => ({ op: c.op, pk: typeof c.pk === 'string' ? c.pk : int64Out(c.pk, ctx) })),
        truncated: d.changes.length > limit,
      };
    },
  };
  return [cancel, diff];
}
