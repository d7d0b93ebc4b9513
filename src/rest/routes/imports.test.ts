import { describe, expect, it } from 'vitest';
import { isQuiverError } from '../../common/errors.js';
import { refusal, runRoute } from './fake-call.test-util.js';
import { importRoutes } from './imports.js';

const state = (over: Record<string, unknown> = {}) => ({
  status: { code: 0 },
  state: 'ImportStarted',
  row_count: '1200',
  infos: [
    { key: 'collection', value: 'books' },
    { key: 'files', value: 'in/a.json,in/b.json' },
    { key: 'progress_percent', value: '40' },
    { key: 'failed_reason', value: '' },
  ],
  id: '4401',
  ...over,
});

describe('REST import job routes', () => {
  it('create sends one Import over single-file groups and answers the job id', async () => {
    const { data, calls } = await runRoute(
      importRoutes,
      'jobs/import/create',
      { dbName: 'shop', collectionName: 'books', files: [['in/a.json'], ['in/b.json']] },
      { Import: { status: { code: 0 }, tasks: ['4401'] } },
    );
    expect(calls).toEqual([
      { method: 'Import', req: { db_name: 'shop', collection_name: 'books', partition_name: '', files: ['in/a.json', 'in/b.json'], options: [] } },
    ]);
    expect(data).toEqual({ jobId: '4401' });
  });

  it('a NumPy group is one job alone; mixed with other groups it is refused', async () => {
    const one = await runRoute(
      importRoutes,
      'jobs/import/create',
      { collectionName: 'books', partitionName: 'p1', files: [['np/id.npy', 'np/vec.npy']] },
      {
        Import: { tasks: ['7'] },
      },
    );
    expect(one.calls[0]!.req).toMatchObject({ partition_name: 'p1', files: ['np/id.npy', 'np/vec.npy'] });
    const mixed = runRoute(importRoutes, 'jobs/import/create', { collectionName: 'books', files: [['np/id.npy', 'np/vec.npy'], ['in/a.json']] });
    await expect(mixed).rejects.toSatisfy((e: unknown) => isQuiverError(e, 'ParameterInvalid'));
  });

  it('options are refused rather than ignored', async () => {
    const r = runRoute(importRoutes, 'jobs/import/create', { collectionName: 'books', files: [['in/a.json']], options: { timeout: '300s' } });
    await expect(r).rejects.toSatisfy((e: unknown) => isQuiverError(e, 'ParameterInvalid') && String((e as Error).message).includes('timeout'));
  });

  it('get_progress shapes GetImportState as a Milvus REST job; list answers records', async () => {
    const p = await runRoute(importRoutes, 'jobs/import/get_progress', { jobId: '4401' }, { GetImportState: state() });
    expect(p.calls).toEqual([{ method: 'GetImportState', req: { task: '4401' } }]);
    expect(p.data).toEqual({
      jobId: '4401',
      collectionName: 'books',
      state: 'Importing',
      progress: 40,
      importedRows: 1200,
      totalRows: 1200,
      reason: '',
      files: ['in/a.json', 'in/b.json'],
    });
    const failed = await runRoute(
      importRoutes,
      'jobs/import/get_progress',
      { jobId: 4401 },
      {
        GetImportState: state({ state: 'ImportFailed', infos: [{ key: 'failed_reason', value: 'row 3: dim mismatch' }] }),
      },
    );
    expect(failed.data).toMatchObject({ state: 'Failed', reason: 'row 3: dim mismatch' });
    const l = await runRoute(
      importRoutes,
      'jobs/import/list',
      { collectionName: 'books' },
      { ListImportTasks: { tasks: [state({ state: 'ImportCompleted' })] } },
    );
    expect(l.calls).toEqual([{ method: 'ListImportTasks', req: { db_name: 'default', collection_name: 'books', limit: 0 } }]);
    expect(l.data).toEqual({ records: [{ collectionName: 'books', jobId: '4401', state: 'Completed', progress: 40 }] });
  });

  it('refuses path tricks in names and file keys, and missing fields', () => {
    expect(refusal(importRoutes, 'jobs/import/create', { collectionName: '../books', files: [['a.json']] }).fields).toEqual(['collectionName']);
    expect(refusal(importRoutes, 'jobs/import/create', { collectionName: 'books', files: [['../../etc/passwd']] }).fields).toEqual(['files.0.0']);
    expect(refusal(importRoutes, 'jobs/import/create', { collectionName: 'books', files: [['/abs/a.json']] }).fields).toEqual(['files.0.0']);
    expect(refusal(importRoutes, 'jobs/import/create', { collectionName: 'books' }).fields).toEqual(['files']);
    expect(refusal(importRoutes, 'jobs/import/create', { collectionName: 'books', files: [[]] }).fields).toEqual(['files.0']);
    expect(refusal(importRoutes, 'jobs/import/get_progress', {}).fields).toEqual(['jobId']);
    expect(refusal(importRoutes, 'jobs/import/get_progress', { jobId: '12abc' }).fields).toEqual(['jobId']);
  });
});
