import { quiverError } from '../common/errors.js';
import { DEFAULT_DB } from '../coord/types.js';
import type { ImportApi, ImportJob } from '../import/types.js';
import type { CallContext, Handler } from './milvus-service.js';
import { OK } from './status.js';

/* eslint-disable @typescript-eslint/no-explicit-any */

/**
 * Bulk import RPCs as the SDK's `bulkInsert` / `getImportState` / `listImportTasks` call them (the
 * MilvusService `Import` family): one job per request, its id the one task id replied.
 */

const STATE: Record<ImportJob['state'], string> = {
  Pending: 'ImportPending',
  Importing: 'ImportStarted',
  Completed: 'ImportCompleted',
  Failed: 'ImportFailed',
};

function progressPercent(j: ImportJob): number {
  if (j.state === 'Completed') return 100;
  if (j.totalBytes <= 0) return 0;
  return Math.min(99, Math.floor((100 * j.readBytes) / j.totalBytes));
}

export function importState(j: ImportJob): Record<string, unknown> {
  return {
    status: OK,
    state: STATE[j.state],
    row_count: String(j.rows),
    id_list: [],
    infos: [
      { key: 'collection', value: j.collectionName },
      { key: 'files', value: j.files.join(',') },
      { key: 'progress_percent', value: String(progressPercent(j)) },
      { key: 'failed_reason', value: j.reason },
    ],
    id: String(j.id),
    collection_id: String(j.collectionId),
    segment_ids: j.segmentIds.map(String),
    create_ts: j.createTs,
  };
}

/** The request's `options` key-value pairs (CSV `sep`, `nullkey`; others are kept and ignored). */
function importOptions(kvs: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  if (!Array.isArray(kvs)) return out;
  for (const kv of kvs as { key?: unknown; value?: unknown }[]) if (typeof kv?.key === 'string' && kv.key !== '') out[kv.key] = String(kv.value ?? '');
  return out;
}

export function importHandlers(imports: ImportApi): Record<string, Handler> {
  const db = (req: any, ctx: CallContext): string => (typeof req?.db_name === 'string' && req.db_name) || ctx.dbName || DEFAULT_DB;
  return {
    Import: async (req, ctx) => {
      if (typeof req.collection_name !== 'string' || req.collection_name === '') throw quiverError('ParameterMissing', 'collection name is required');
      const job = await imports.submit({
        dbName: db(req, ctx),
        collectionName: req.collection_name,
        partitionName: req.partition_name || undefined,
        files: (req.files ?? []).map(String),
        options: importOptions(req.options),
      });
      return { status: OK, tasks: [String(job.id)] };
    },
    GetImportState: async (req) => {
      const id = Number(req.task ?? 0);
      const job = Number.isSafeInteger(id) && id > 0 ? await imports.get(id) : undefined;
      if (!job) throw quiverError('ParameterInvalid', `import job ${String(req.task)} not found`);
      return importState(job);
    },
    ListImportTasks: async (req, ctx) => {
      const list = await imports.list(db(req, ctx), req.collection_name || undefined, Number(req.limit ?? 0));
      return { status: OK, tasks: list.map(importState) };
    },
  };
}
