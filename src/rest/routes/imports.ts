import { z } from 'zod';
import { quiverError } from '../../common/errors.js';
import { IMPORT_OPTIONS } from '../../import/text-readers.js';
import type { RestCallContext, RestRoute } from '../types.js';
import { dbNameField, int64Id, objectName } from './admin-fields.js';
import { int64Out } from './common.js';

/**
 * `/v2/vectordb/jobs/import/{create,get_progress,list}` → our bulk import RPCs (Import, GetImportState,
 * ListImportTasks: proxy/import-service.ts), shaped as Milvus's REST v2 answers its import jobs.
 *
 * Milvus's `files` is a list of file groups: a row-based file (JSON, Parquet) is a group of one, a NumPy
 * import is one group of `.npy` files (one per field). One of our jobs reads one list of files, so a body
 * of single-file groups becomes one job over all of them and a NumPy group must come alone.
 */

/** Object-store keys: relative, no `..` segment, no backslash, no NUL (the store's key rules apply again). */
const fileKey = z
  .string()
  .min(1, 'a file key must not be empty')
  .max(1024, 'a file key must be at most 1024 characters')
  .refine((k) => !k.startsWith('/') && !k.includes('\\') && !k.includes('\0') && !k.split('/').includes('..'), {
    message: 'a file key must be a relative object key without ".." segments',
  });

const FILES_MAX = 1024;

type CreateBody = {
  collectionName: string;
  partitionName?: string | undefined;
  files: string[][];
  options?: Record<string, string> | undefined;
};

/** Our job's file list for Milvus's groups (see the module comment). */
export function importFiles(groups: readonly (readonly string[])[]): string[] {
  if (groups.length === 1) return [...groups[0]!];
  if (groups.some((g) => g.length !== 1)) {
    throw quiverError(
      'ParameterInvalid',
      'files: a group of several files (a NumPy import) must be the only group of its job; send each NumPy folder as its own import job',
    );
  }
  return groups.map((g) => g[0]!);
}

const create: RestRoute<CreateBody> = {
  path: 'jobs/import/create',
  body: z.object({
    dbName: dbNameField,
    collectionName: objectName('collectionName'),
    partitionName: objectName('partitionName').optional(),
    files: z
      .array(z.array(fileKey).min(1, 'a file group must name at least one file'))
      .min(1, 'files must name at least one file')
      .max(FILES_MAX, `files must list at most ${FILES_MAX} groups`),
    options: z.record(z.string()).optional(),
  }),
  async run(b, call, ctx) {
    const options = Object.entries(b.options ?? {});
    const unknown = options.filter(([k]) => !IMPORT_OPTIONS.includes(k)).map(([k]) => k);
    if (unknown.length > 0) {
      // Silently ignoring e.g. a timeout or a backup flag would import something other than what was asked.
      throw quiverError(
        'ParameterInvalid',
        `options are not supported by Quiver's import: ${unknown.join(', ')} (supported: ${IMPORT_OPTIONS.join(', ')})`,
      );
    }
    const r = (await call('Import', {
      db_name: ctx.dbName,
      collection_name: b.collectionName,
      partition_name: b.partitionName ?? '',
      files: importFiles(b.files),
      options: options.map(([key, value]) => ({ key, value })),
    })) as { tasks?: (string | number)[] };
    const id = r.tasks?.[0];
    if (id === undefined) throw new Error('assertion failed: Import replied no task id');
    return { jobId: int64Out(id, ctx) };
  },
};

/** Milvus REST's job states for our ImportState names. */
const STATE: Record<string, string> = {
  ImportPending: 'Pending',
  ImportStarted: 'Importing',
  ImportCompleted: 'Completed',
  ImportFailed: 'Failed',
};

interface ImportStateReply {
  state?: string;
  row_count?: string | number;
  infos?: { key?: string; value?: string }[];
  id?: string | number;
}

function info(r: ImportStateReply, key: string): string {
  return r.infos?.find((kv) => kv.key === key)?.value ?? '';
}

/** One GetImportState reply as a Milvus REST job record (progress in percent, rows as numbers). */
export function importJobJson(r: ImportStateReply, ctx: RestCallContext): Record<string, unknown> {
  const state = STATE[r.state ?? ''] ?? String(r.state ?? '');
  const rows = Number(r.row_count ?? 0);
  return {
    jobId: int64Out(r.id ?? '0', ctx),
    collectionName: info(r, 'collection'),
    state,
    progress: Number(info(r, 'progress_percent') || 0),
    importedRows: rows,
    // The row total is known only once every row was read; until then it is what was read so far.
    totalRows: rows,
    reason: info(r, 'failed_reason'),
    files: info(r, 'files') === '' ? [] : info(r, 'files').split(','),
  };
}

const progress: RestRoute<{ jobId: string | number }> = {
  path: 'jobs/import/get_progress',
  body: z.object({ dbName: dbNameField, jobId: int64Id('jobId') }),
  async run(b, call, ctx) {
    return importJobJson((await call('GetImportState', { task: String(b.jobId) })) as ImportStateReply, ctx);
  },
};

const list: RestRoute<{ collectionName?: string | undefined }> = {
  path: 'jobs/import/list',
  body: z.object({ dbName: dbNameField, collectionName: objectName('collectionName').optional() }),
  async run(b, call, ctx) {
    const r = (await call('ListImportTasks', { db_name: ctx.dbName, collection_name: b.collectionName ?? '', limit: 0 })) as {
      tasks?: ImportStateReply[];
    };
    return {
      records: (r.tasks ?? []).map((t) => {
        const j = importJobJson(t, ctx);
        return { collectionName: j.collectionName, jobId: j.jobId, state: j.state, progress: j.progress };
      }),
    };
  },
};

export const importRoutes: readonly RestRoute[] = [create, progress, list];
