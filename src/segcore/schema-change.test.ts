import { describe, expect, it } from 'vitest';
import type { CollectionRecord } from '../coord/records.js';
import type { FieldSchema } from '../schema/types.js';
import { collectionRecord, SeededRandom } from '../testing/index.js';
import { CollectionRuntime, gatherColumn } from './collection-runtime.js';
import { ttlCutTs } from './collection-ttl.js';

const field = (fieldId: number, name: string, extra: Partial<FieldSchema>): FieldSchema => ({
  fieldId,
  name,
  description: '',
  dataType: 'Int64',
  isPrimaryKey: false,
  autoId: false,
  nullable: false,
  isDynamic: false,
  isPartitionKey: false,
  isClusteringKey: false,
  typeParams: {},
  ...extra,
});

const pk = field(100, 'id', { isPrimaryKey: true });
const v = field(101, 'v', { dataType: 'FloatVector', dim: 2 });

function record(fields: FieldSchema[], properties: Record<string, string> = {}): CollectionRecord {
  const base = collectionRecord(1);
  return { ...base, properties, schema: { ...base.schema, fields } };
}

function insert(rt: CollectionRuntime, ids: number[], ts: bigint): void {
  const columns = new Map([
    ['id', { kind: 'int64' as const, data: BigInt64Array.from(ids.map(BigInt)) }],
    ['v', { kind: 'vector' as const, dim: 2, data: new Float32Array(ids.length * 2) }],
  ]);
  rt.applyInsert(rt.record.partitions[0]!.id, () => 7, columns, ts, ids.length);
}

describe('CollectionRuntime schema changes', () => {
  it('rows written before a field was added read its default (or null), in memory and from later writes of the old shape', () => {
    const rt = new CollectionRuntime(record([pk, v]));
    insert(rt, [1, 2], 10n);
    const score = field(102, 'score', { nullable: true, defaultValue: '7', addedInVersion: 1 });
    const note = field(103, 'note', { dataType: 'VarChar', nullable: true, maxLength: 8, addedInVersion: 1 });
    rt.record = record([pk, v, score, note]);
    insert(rt, [3], 11n); // a WAL record (or an insert validated) before the change: no column for the new fields
    const refs = rt.query(null, null, 0, undefined);
    expect(refs).toHaveLength(3);
    const s = gatherColumn(refs, 'score')!;
    expect(Array.from(s.data as BigInt64Array)).toEqual([7n, 7n, 7n]);
    expect(Array.from(s.valid!)).toEqual([1, 1, 1]);
    const n = gatherColumn(refs, 'note')!;
    expect(Array.from(n.valid!)).toEqual([0, 0, 0]);
  });

  it('a dropped field leaves the chunks; one re-added under its name with another type starts empty', () => {
    const title = field(102, 'title', { dataType: 'VarChar', maxLength: 8 });
    const rt = new CollectionRuntime(record([pk, v, title]));
    rt.applyInsert(
      rt.record.partitions[0]!.id,
      () => 7,
      new Map([
        ['id', { kind: 'int64' as const, data: BigInt64Array.from([1n]) }],
        ['v', { kind: 'vector' as const, dim: 2, data: new Float32Array(2) }],
        ['title', { kind: 'string' as const, data: ['a'] }],
      ]),
      1n,
      1,
    );
    rt.record = record([pk, v]);
    rt.record = record([pk, v, field(103, 'title', { nullable: true, addedInVersion: 2 })]);
    const col = gatherColumn(rt.query(null, null, 0, undefined), 'title')!;
    expect(col.kind).toBe('int64');
    expect(Array.from(col.valid!)).toEqual([0]);
  });
});

describe('collection TTL on the read path', () => {
  it('hides rows older than the TTL from query and count; a limited query returns the smallest pks in order', () => {
    const rt = new CollectionRuntime(record([pk, v], { 'collection.ttl.seconds': '60' }));
    const nowMs = 1_700_000_000_000;
    const at = (ms: number) => BigInt(ms) << 18n;
    insert(rt, [5, 4], at(nowMs - 61_000));
    insert(rt, [3, 2, 1], at(nowMs - 1_000));
    const cut = ttlCutTs(rt.record, nowMs);
    expect(rt.count(null, null, cut)).toBe(3);
    expect(rt.count(null, null, undefined)).toBe(5);
    const pks = (refs: ReturnType<CollectionRuntime['query']>) => Array.from(gatherColumn(refs, 'id')!.data as BigInt64Array).map(Number);
    expect(pks(rt.query(null, null, 0, undefined, cut))).toEqual([3, 2, 1]);
    expect(pks(rt.query(null, null, 1, 5, undefined))).toEqual([2, 3, 4, 5]);
    expect(ttlCutTs(record([pk, v], { 'collection.ttl.seconds': '0' }), nowMs)).toBeUndefined();
  });

  it('a limited query keeps exactly the smallest pks (bounded heap) across chunks', () => {
    const rt = new CollectionRuntime(record([pk, v]));
    const rnd = new SeededRandom(5);
    const all: number[] = [];
    for (let b = 0; b < 5; b++) {
      const ids = Array.from({ length: 5000 }, () => Math.floor(rnd.next() * 1e9));
      all.push(...ids);
      insert(rt, ids, BigInt(b + 1));
    }
    const pks = (refs: ReturnType<CollectionRuntime['query']>) => Array.from(gatherColumn(refs, 'id')!.data as BigInt64Array).map(Number);
    const sorted = [...all].sort((a, b) => a - b);
    expect(pks(rt.query(null, null, 7, 11))).toEqual(sorted.slice(7, 18));
    expect(pks(rt.query(null, null, 0, 30_000))).toEqual(sorted);
  });
});
