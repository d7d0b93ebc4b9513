import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DataType, ErrorCode } from '@zilliz/milvus2-sdk-node';
import { startTestServer, waitRestore, type TestServer } from './helpers.js';

/** Schema changes and truncate through the official SDK (issue 11 part B). */
describe('schema changes and truncate through the SDK', () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer();
  });
  afterAll(async () => {
    await t?.close();
  });

  const fields = [
    { name: 'id', data_type: DataType.Int64, is_primary_key: true },
    { name: 'title', data_type: DataType.VarChar, max_length: 32 },
    { name: 'v', data_type: DataType.FloatVector, dim: 2 },
  ];
  const rows = (from: number, n: number) => Array.from({ length: n }, (_, i) => ({ id: from + i, title: `t${from + i}`, v: [1, (from + i) / 100] }));
  const byId = (data: Record<string, unknown>[]) => new Map(data.map((r) => [String(r['id']), r]));

  it('added fields read their default or null in growing, flushed, replayed and restored rows', async () => {
    let c = t.client;
    await c.createCollection({ collection_name: 'grow', fields });
    await c.createIndex({ collection_name: 'grow', field_name: 'v', index_type: 'FLAT', metric_type: 'L2' });
    await c.loadCollectionSync({ collection_name: 'grow' });
    await c.insert({ collection_name: 'grow', data: rows(0, 3) }); // flushed before the change
    await c.flushSync({ collection_names: ['grow'] });
    expect((await c.createSnapshot({ collection_name: 'grow', snapshot_name: 'before_add' })).error_code).toBe(ErrorCode.SUCCESS);
    await c.insert({ collection_name: 'grow', data: rows(10, 2) }); // growing at the change
    const add = await c.addCollectionField({
      collection_name: 'grow',
      field: { name: 'score', data_type: DataType.Int64, nullable: true, default_value: 7 },
    });
    expect(add.error_code, add.reason).toBe(ErrorCode.SUCCESS);
    const many = await c.addCollectionFields({
      collection_name: 'grow',
      fields: [
        { name: 'note', data_type: DataType.VarChar, max_length: 16, nullable: true },
        { name: 'flag', data_type: DataType.Bool, nullable: true, default_value: true as never },
      ],
    });
    expect(many.error_code, many.reason).toBe(ErrorCode.SUCCESS);
    const d = await c.describeCollection({ collection_name: 'grow' });
    expect(d.schema.fields.map((f) => f.name)).toEqual(['id', 'title', 'v', 'score', 'note', 'flag']);
    await c.insert({ collection_name: 'grow', data: [{ id: 20, title: 'new', v: [1, 0.2], score: 3, note: 'hi', flag: false }] });
    await c.insert({ collection_name: 'grow', data: [{ id: 21, title: 'new', v: [1, 0.21] }] });
    const check = async () => {
      const q = await c.query({ collection_name: 'grow', filter: 'id >= 0', output_fields: ['id', 'score', 'note', 'flag'] });
      expect(q.status.error_code, q.status.reason).toBe(ErrorCode.SUCCESS);
      const m = byId(q.data);
      expect(m.size).toBe(7);
      for (const id of ['0', '1', '2', '10', '11', '21']) expect([id, m.get(id)]).toMatchObject([id, { score: '7', note: null, flag: true }]);
      expect(m.get('20')).toMatchObject({ score: '3', note: 'hi', flag: false });
      const f = await c.query({ collection_name: 'grow', filter: 'score == 7', output_fields: ['id'] });
      expect(f.data.map((r) => String(r['id'])).sort()).toEqual(['0', '1', '10', '11', '2', '21']);
    };
    await check();
    // WAL replay: rows 10, 11, 20, 21 are only in the WAL; 10 and 11 were logged before the field existed.
    t = await t.restart();
    c = t.client;
    await c.loadCollectionSync({ collection_name: 'grow' });
    await check();
    await c.flushSync({ collection_names: ['grow'] });
    await check();
    await c.compact({ collection_name: 'grow' });
    // A snapshot taken after the change covers segments written before it; the restore reads them the same way.
    expect((await c.createSnapshot({ collection_name: 'grow', snapshot_name: 'after_add' })).error_code).toBe(ErrorCode.SUCCESS);
    const r = await c.restoreSnapshot({ snapshot_name: 'after_add', source_collection_name: 'grow', target_collection_name: 'grow_after' });
    expect((await waitRestore(c, r.job_id)).state).toBe('RestoreSnapshotCompleted');
    await c.loadCollectionSync({ collection_name: 'grow_after' });
    const ra = await c.query({ collection_name: 'grow_after', filter: 'id < 3', output_fields: ['id', 'score', 'note'] });
    expect(ra.data.map((x) => [String(x['id']), x['score'], x['note']]).sort()).toEqual([
      ['0', '7', null],
      ['1', '7', null],
      ['2', '7', null],
    ]);
    // A snapshot taken before the change restores the schema it had.
    const rb = await c.restoreSnapshot({ snapshot_name: 'before_add', source_collection_name: 'grow', target_collection_name: 'grow_before' });
    expect((await waitRestore(c, rb.job_id)).state).toBe('RestoreSnapshotCompleted');
    const db = await c.describeCollection({ collection_name: 'grow_before' });
    expect(db.schema.fields.map((f) => f.name)).toEqual(['id', 'title', 'v']);
    await c.loadCollectionSync({ collection_name: 'grow_before' });
    expect((await c.count({ collection_name: 'grow_before' })).data).toBe(3);
  });

  it('refuses bad added fields and protected drops, with the reason', async () => {
    const c = t.client;
    await c.createCollection({
      collection_name: 'bad',
      fields: [...fields, { name: 'tag', data_type: DataType.VarChar, max_length: 8, is_partition_key: true }],
    });
    const badDefault = await c.addCollectionField({
      collection_name: 'bad',
      field: { name: 'n', data_type: DataType.Int8, nullable: true, default_value: 300 },
    });
    expect(badDefault.error_code).not.toBe(ErrorCode.SUCCESS);
    expect(badDefault.reason).toMatch(/default value 300 of field n is out of range for Int8/);
    const notNullable = await c.addCollectionField({ collection_name: 'bad', field: { name: 'm', data_type: DataType.Int32 } });
    expect(notNullable.error_code).not.toBe(ErrorCode.SUCCESS);
    expect(notNullable.reason).toMatch(/nullable or have a default/);
    const dup = await c.addCollectionField({ collection_name: 'bad', field: { name: 'title', data_type: DataType.Int32, nullable: true } });
    expect(dup.reason).toMatch(/already exists/);
    const longDefault = await c.addCollectionField({
      collection_name: 'bad',
      field: { name: 'w', data_type: DataType.VarChar, max_length: 2, nullable: true, default_value: 'toolong' },
    });
    expect(longDefault.reason).toMatch(/max_length/);
    for (const [name, why] of [
      ['id', /primary key/],
      ['v', /vector/],
      ['tag', /partition key/],
    ] as const) {
      const r = await c.dropCollectionField({ collection_name: 'bad', field_name: name });
      expect(r.error_code, name).not.toBe(ErrorCode.SUCCESS);
      expect(r.reason).toMatch(why);
    }
    const ghost = await c.dropCollectionField({ collection_name: 'bad', field_name: 'ghost' });
    expect(ghost.reason).toMatch(/ghost/);
    // Nothing changed.
    const d = await c.describeCollection({ collection_name: 'bad' });
    expect(d.schema.fields.map((f) => f.name)).toEqual(['id', 'title', 'v', 'tag']);
  });

  it('drops a field and alters max_length and mmap; a field re-added under the same name starts empty', async () => {
    const c = t.client;
    await c.createCollection({ collection_name: 'dropf', fields });
    await c.createIndex({ collection_name: 'dropf', field_name: 'v', index_type: 'FLAT', metric_type: 'L2' });
    await c.loadCollectionSync({ collection_name: 'dropf' });
    await c.insert({ collection_name: 'dropf', data: rows(0, 3) });
    await c.flushSync({ collection_names: ['dropf'] });
    await c.insert({ collection_name: 'dropf', data: rows(3, 2) });
    const drop = await c.dropCollectionField({ collection_name: 'dropf', field_name: 'title' });
    expect(drop.error_code, drop.reason).toBe(ErrorCode.SUCCESS);
    const d = await c.describeCollection({ collection_name: 'dropf' });
    expect(d.schema.fields.map((f) => f.name)).toEqual(['id', 'v']);
    const gone = await c.query({ collection_name: 'dropf', filter: 'id >= 0', output_fields: ['title'] });
    expect(gone.status.error_code).not.toBe(ErrorCode.SUCCESS);
    await c.insert({ collection_name: 'dropf', data: [{ id: 9, v: [1, 0] }] });
    const readd = await c.addCollectionField({ collection_name: 'dropf', field: { name: 'title', data_type: DataType.Int64, nullable: true } });
    expect(readd.error_code, readd.reason).toBe(ErrorCode.SUCCESS);
    await c.flushSync({ collection_names: ['dropf'] });
    const q = await c.query({ collection_name: 'dropf', filter: 'id >= 0', output_fields: ['id', 'title'] });
    expect(q.data).toHaveLength(6);
    for (const r of q.data) expect(r['title']).toBeNull();
    await c.addCollectionField({ collection_name: 'dropf', field: { name: 'note', data_type: DataType.VarChar, max_length: 16, nullable: true } });
    const alter = await c.alterCollectionFieldProperties({
      collection_name: 'dropf',
      field_name: 'note',
      properties: { max_length: 64, 'mmap.enabled': true },
    });
    expect(alter.error_code, alter.reason).toBe(ErrorCode.SUCCESS);
    const f = (await c.describeCollection({ collection_name: 'dropf' })).schema.fields.find((x) => x.name === 'note')!;
    expect(f.max_length).toBe('64');
    expect(f['mmap.enabled']).toBe('true');
    const shrink = await c.alterCollectionFieldProperties({ collection_name: 'dropf', field_name: 'note', properties: { max_length: 4 } });
    expect(shrink.reason).toMatch(/max_length 4/);
  });

  it('truncate removes every row at once, keeps schema and indexes, and a snapshot taken before still restores them', async () => {
    let c = t.client;
    await c.createCollection({ collection_name: 'trunc', fields });
    await c.createPartition({ collection_name: 'trunc', partition_name: 'p1' });
    await c.createIndex({ collection_name: 'trunc', field_name: 'v', index_type: 'HNSW', metric_type: 'L2', params: { M: 8, efConstruction: 32 } });
    await c.loadCollectionSync({ collection_name: 'trunc' });
    await c.insert({ collection_name: 'trunc', data: rows(0, 50) });
    await c.insert({ collection_name: 'trunc', partition_name: 'p1', data: rows(100, 20) });
    await c.flushSync({ collection_names: ['trunc'] });
    await c.insert({ collection_name: 'trunc', data: rows(200, 5) }); // growing
    await c.delete({ collection_name: 'trunc', ids: [1] });
    expect((await c.createSnapshot({ collection_name: 'trunc', snapshot_name: 'pre' })).error_code).toBe(ErrorCode.SUCCESS);
    const tr = await c.truncateCollection({ collection_name: 'trunc' });
    expect(tr.status.error_code, tr.status.reason).toBe(ErrorCode.SUCCESS);
    const empty = async () => {
      expect((await c.count({ collection_name: 'trunc' })).data).toBe(0);
      const s = await c.search({ collection_name: 'trunc', data: [[1, 0]], limit: 5 });
      expect(s.results).toHaveLength(0);
    };
    await empty();
    expect((await c.describeIndex({ collection_name: 'trunc', field_name: 'v' })).index_descriptions[0]?.index_name).toBe('v');
    expect((await c.listPartitions({ collection_name: 'trunc' })).partition_names).toEqual(['_default', 'p1']);
    // Rows written before the truncate do not come back from the WAL.
    t = await t.restart();
    c = t.client;
    await c.loadCollectionSync({ collection_name: 'trunc' });
    await empty();
    await c.insert({ collection_name: 'trunc', data: rows(300, 2) });
    expect((await c.count({ collection_name: 'trunc' })).data).toBe(2);
    const r = await c.restoreSnapshot({ snapshot_name: 'pre', source_collection_name: 'trunc', target_collection_name: 'trunc_back' });
    expect((await waitRestore(c, r.job_id)).state).toBe('RestoreSnapshotCompleted');
    await c.loadCollectionSync({ collection_name: 'trunc_back' });
    expect((await c.count({ collection_name: 'trunc_back' })).data).toBe(74);
    const missing = await c.truncateCollection({ collection_name: 'nope' });
    expect(missing.status.error_code).not.toBe(ErrorCode.SUCCESS);
  });
});
