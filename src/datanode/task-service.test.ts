import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { CollectionRecord, IndexRecord, SegmentRecord } from '../coord/records.js';
import type { FieldSchema } from '../schema/types.js';
import { MemoryObjectStore } from '../storage/memory-object-store.js';
import { IndexBuildExecutor } from './index-build-executor.js';
import { IndexBuildPool } from './index-builder.js';
import { TaskService } from './task-service.js';
import type { DataNodeTaskSpec } from './types.js';

const field: FieldSchema = { fieldId: 101, name: 'v', dataType: 'FloatVector', dim: 4, isPrimaryKey: false, autoId: false, nullable: false } as FieldSchema;

function spec(indexType: IndexRecord['indexType'], vectors?: Float32Array): DataNodeTaskSpec {
  const index = {
    id: 5,
    collectionId: 1,
    fieldId: 101,
    name: 'idx',
    indexType,
    metric: 'L2',
    userParams: {},
    buildParams: { M: 8, efConstruction: 32 },
    createdTs: '1',
  } as unknown as IndexRecord;
  const segment: SegmentRecord = {
    id: 9,
    collectionId: 1,
    partitionId: 2,
    state: 'Flushed',
    numRows: 3,
    binlogs: {},
    deltalogs: [],
    statslogs: [],
    indexes: [],
    createdTs: '1',
  };
  return { kind: 'indexBuild', collection: { id: 1, schema: { fields: [field] } } as unknown as CollectionRecord, segment, index, field, vectors };
}

describe('TaskService (CreateTask / QueryTask / DropTask / QuerySlots)', () => {
  let dir: string | undefined;
  afterEach(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  async function service(): Promise<{ tasks: TaskService; store: MemoryObjectStore; pool: IndexBuildPool }> {
    dir = await mkdtemp(join(tmpdir(), 'quiver-tasks-'));
    const store = new MemoryObjectStore();
    let next = 100;
    const pool = new IndexBuildPool({ inline: true });
    const builds = new IndexBuildExecutor({ store, ids: { alloc: async () => next++ }, pool }, { tmpDir: dir });
    return { tasks: new TaskService({ store, builds, merges: pool }, { slots: 1 }), store, pool };
  }

  it('runs an index build to Finished with its stored file; a dropped task is forgotten', async () => {
    const { tasks, store } = await service();
    const vectors = Float32Array.from({ length: 12 }, (_, i) => i / 12);
    const id = await tasks.createTask(spec('HNSW', vectors));
    const done = await tasks.waitTask(id);
    expect(done.state).toBe('Finished');
    if (done.state !== 'Finished' || done.result.kind !== 'indexBuild') throw new Error('not an index build result');
    expect(done.result.file.indexId).toBe(5);
    expect(done.result.file.files).toHaveLength(1);
    expect((await store.get(done.result.file.files[0]!)).byteLength).toBe(done.result.file.size);
    expect(tasks.queryTask(id)?.state).toBe('Finished');
    expect(tasks.querySlots()).toEqual({ total: 1, free: 1 });
    tasks.dropTask(id);
    expect(tasks.queryTask(id)).toBeUndefined();
  });

  it('reports a task that cannot run as Failed with the reason (the segment has no binlog to read)', async () => {
    const { tasks } = await service();
    const id = await tasks.createTask(spec('HNSW'));
    expect(tasks.querySlots().free).toBe(0);
    const done = await tasks.waitTask(id);
    expect(done.state).toBe('Failed');
    expect(tasks.querySlots().free).toBe(1);
  });

  it('a cancelled pool fails the build instead of running it', async () => {
    const { tasks, pool } = await service();
    pool.cancel();
    const id = await tasks.createTask(spec('HNSW', new Float32Array(12)));
    const done = await tasks.waitTask(id);
    expect(done).toEqual({ state: 'Failed', reason: 'index build pool is closed' });
  });
});
