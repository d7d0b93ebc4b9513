import { describe, expect, it } from 'vitest';
import { encodeColumn, encodeDeltas } from '../../storage/binlog.js';
import { MemoryObjectStore } from '../../storage/memory-object-store.js';
import { deltaLogKey, insertLogKey } from '../../storage/paths.js';
import type { CollectionSchema, FieldSchema } from '../../schema/types.js';
import type { Binlog, SegmentRecord } from '../records.js';
import { digestMismatch, pkDigest, verifyRestoredRows } from './restore-verify.js';

const field = (over: Partial<FieldSchema>): FieldSchema =>
  ({
    fieldId: 100,
    name: 'id',
    description: '',
    dataType: 'Int64',
    isPrimaryKey: true,
    autoId: false,
    nullable: false,
    isDynamic: false,
    isPartitionKey: false,
    isClusteringKey: false,
    typeParams: {},
    ...over,
  }) as FieldSchema;
const INT_SCHEMA: CollectionSchema = { name: 'c', description: '', autoId: false, enableDynamicField: false, fields: [field({})] };
const STR_SCHEMA: CollectionSchema = {
  name: 'c',
  description: '',
  autoId: false,
  enableDynamicField: false,
  fields: [field({ dataType: 'VarChar', maxLength: 16 })],
};

const log = (path: string, entries: number): Binlog => ({ logId: 1, path, entries, tsFrom: '1', tsTo: '2', size: 1 });

/** A segment of collection `c` with its pk column and deltalogs written to `store`. */
async function segment(
  store: MemoryObjectStore,
  c: number,
  id: number,
  pks: bigint[] | string[],
  deletes: [bigint | string, bigint][][],
): Promise<SegmentRecord> {
  const pkKey = insertLogKey(c, 1, id, 100, 1);
  const column =
    typeof pks[0] === 'string' ? { kind: 'string' as const, data: pks as string[] } : { kind: 'int64' as const, data: BigInt64Array.from(pks as bigint[]) };
  await store.put(pkKey, encodeColumn(column, { fieldId: 100 }));
  const deltalogs: Binlog[] = [];
  for (const [i, d] of deletes.entries()) {
    const key = deltaLogKey(c, 1, id, 10 + i);
    const dpks = typeof d[0]?.[0] === 'string' ? d.map((x) => x[0] as string) : BigInt64Array.from(d.map((x) => x[0] as bigint));
    await store.put(key, encodeDeltas(dpks, BigInt64Array.from(d.map((x) => x[1]))));
    deltalogs.push(log(key, d.length));
  }
  return {
    id,
    collectionId: c,
    partitionId: 1,
    state: 'Flushed',
    numRows: pks.length,
    binlogs: { '100': [log(pkKey, pks.length)] },
    deltalogs,
    statslogs: [],
    indexes: [],
    createdTs: '1',
  };
}

describe('restore row verification', () => {
  it('a faithful copy passes; a missing deltalog, a missing segment, other keys or a wrong manifest count fail naming why', async () => {
    const store = new MemoryObjectStore();
    const src = [await segment(store, 1, 1, [1n, 2n, 3n], [[[2n, 50n]]]), await segment(store, 1, 2, [4n, 5n], [])];
    const dst = [await segment(store, 2, 11, [1n, 2n, 3n], [[[2n, 50n]]]), await segment(store, 2, 12, [4n, 5n], [])];
    const pairs = src.map((source, i) => ({ source, target: dst[i]! }));
    expect((await verifyRestoredRows(store, INT_SCHEMA, pairs)).rows).toBe(5);

    const noDelta = { ...dst[0]!, deltalogs: [] };
    await expect(verifyRestoredRows(store, INT_SCHEMA, [{ source: src[0]!, target: noDelta }, pairs[1]!])).rejects.toThrow(/deletes restored differ/);
    const half = [pairs[0]!, { source: src[1]!, target: { ...dst[0]!, id: 13 } }];
    await expect(verifyRestoredRows(store, INT_SCHEMA, half)).rejects.toThrow(/restored 6 rows, the snapshot holds 5|primary keys restored differ/);
    const otherKeys = await segment(store, 2, 14, [4n, 6n], []);
    await expect(verifyRestoredRows(store, INT_SCHEMA, [pairs[0]!, { source: src[1]!, target: otherKeys }])).rejects.toThrow(
      /primary keys restored differ/,
    );
    const lying = { ...src[1]!, numRows: 3 };
    await expect(verifyRestoredRows(store, INT_SCHEMA, [pairs[0]!, { source: lying, target: dst[1]! }])).rejects.toThrow(/manifests say 6/);
  });

  it('the checksum is order-independent and covers VarChar keys; a missing file is IoKeyNotFound', async () => {
    const store = new MemoryObjectStore();
    const a = await segment(store, 1, 1, ['a', 'b', 'c'], [[['b', 9n]]]);
    const b = await segment(store, 1, 2, ['c', 'a', 'b'], [[['b', 9n]]]);
    const x = await pkDigest(store, STR_SCHEMA, [a]);
    expect(digestMismatch(x, await pkDigest(store, STR_SCHEMA, [b]), 3)).toBeUndefined();
    const c = await segment(store, 1, 3, ['a', 'b', 'd'], [[['b', 9n]]]);
    expect(digestMismatch(x, await pkDigest(store, STR_SCHEMA, [c]), 3)).toMatch(/primary keys/);
    await store.delete(a.binlogs['100']![0]!.path);
    await expect(pkDigest(store, STR_SCHEMA, [a])).rejects.toMatchObject({ kind: 'IoKeyNotFound' });
  });
});
