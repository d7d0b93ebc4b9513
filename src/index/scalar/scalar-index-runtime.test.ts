/**
 * Property test through the collection runtime: sealed segments carrying scalar indexes next to growing
 * ones without, deletes before and after the indexes were attached; count, query (with and without a
 * limit) and filtered search answer exactly what the same runtime answers with the indexes removed.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { CollectionRecord } from '../../coord/records.js';
import { compileFilter } from '../../expr/index.js';
import type { FieldSchema } from '../../schema/types.js';
import { CollectionRuntime } from '../../segcore/collection-runtime.js';
import { exprSchema } from '../../segcore/collection-helpers.js';
import { collectionRecord } from '../../testing/index.js';
import { ScalarIndex } from './scalar-index.js';

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

const fields = [
  field(100, 'id', { isPrimaryKey: true }),
  field(101, 'v', { dataType: 'FloatVector', dim: 2 }),
  field(102, 'n', { nullable: true }),
  field(103, 's', { dataType: 'VarChar', maxLength: 8 }),
];

function record(): CollectionRecord {
  const base = collectionRecord(1);
  return { ...base, schema: { ...base.schema, fields } };
}

interface Batch {
  readonly rows: readonly { n: number | null; s: string }[];
  readonly seal: boolean;
}

const arbBatch: fc.Arbitrary<Batch> = fc.record({
  rows: fc.array(fc.record({ n: fc.option(fc.integer({ min: 0, max: 6 }), { nil: null }), s: fc.constantFrom('a', 'ab', 'b', 'ba', 'abc') }), {
    minLength: 1,
    maxLength: 30,
  }),
  seal: fc.boolean(),
});

const FILTERS = ['n == 3', 'n in [1, 4]', '2 <= n < 5', 's like "ab%"', 's == "b" and n > 1', 'n == 2 or s == "ba"', 'n != 3 and s > "a"'];

describe('scalar indexes through the collection runtime', () => {
  it('count, query and search equal the scan with deletes and sealed + growing segments', () => {
    fc.assert(
      fc.property(
        fc.array(arbBatch, { minLength: 1, maxLength: 5 }),
        fc.array(fc.integer({ min: 0, max: 150 }), { maxLength: 20 }),
        fc.array(fc.integer({ min: 0, max: 150 }), { maxLength: 20 }),
        (batches, deletesBefore, deletesAfter) => {
          const rt = new CollectionRuntime(record());
          const part = rt.record.partitions[0]!.id;
          let nextId = 0;
          let nextSeg = 1;
          let ts = 10n;
          const indexed = new Set<number>();
          for (const b of batches) {
            const n = b.rows.length;
            const ids = BigInt64Array.from({ length: n }, () => BigInt(nextId++));
            rt.applyInsert(
              part,
              () => nextSeg++,
              new Map([
                ['id', { kind: 'int64' as const, data: ids }],
                ['v', { kind: 'vector' as const, dim: 2, data: Float32Array.from({ length: n * 2 }, (_, i) => (i * 7) % 5) }],
                [
                  'n',
                  {
                    kind: 'int64' as const,
                    data: BigInt64Array.from(b.rows, (r) => BigInt(r.n ?? 0)),
                    valid: Uint8Array.from(b.rows, (r) => (r.n === null ? 0 : 1)),
                  },
                ],
                ['s', { kind: 'string' as const, data: b.rows.map((r) => r.s) }],
              ]),
              ts++,
              n,
            );
            if (b.seal) for (const seg of rt.sealAll()) indexed.add(seg.id);
          }
          rt.applyDelete(new Set(deletesBefore.map(BigInt)), ts++);
          for (const id of indexed) {
            const chunk = rt.segments.get(id)!.chunks[0]!;
            chunk.scalarIndexes.set('n', ScalarIndex.build(chunk.columns.get('n')!, { indexType: 'STL_SORT' }));
            chunk.scalarIndexes.set('s', ScalarIndex.build(chunk.columns.get('s')!, { indexType: 'Trie' }));
          }
          rt.applyDelete(new Set(deletesAfter.map(BigInt)), ts++);
          const answers = (): unknown[] =>
            FILTERS.map((text) => {
              const f = compileFilter(text, exprSchema(rt.record));
              const ids = (refs: readonly { chunk: { columns: Map<string, { data: unknown }> }; row: number }[]): string[] =>
                refs.map((r) => String((r.chunk.columns.get('id')!.data as BigInt64Array)[r.row]));
              const hits = rt.search({
                field: fields[1]!,
                queries: new Float32Array([1, 1]),
                nq: 1,
                k: 5,
                offset: 0,
                metric: 'L2',
                filter: f,
                partitionIds: null,
              });
              return {
                count: rt.count(f, null),
                all: ids(rt.query(f, null, 0, undefined)).sort(),
                limited: ids(rt.query(f, null, 1, 3)),
                search: hits[0]!.map((h) => h.score),
              };
            });
          const withIndexes = answers();
          for (const id of indexed) rt.segments.get(id)!.chunks[0]!.scalarIndexes.clear();
          expect(withIndexes).toEqual(answers());
        },
      ),
      { numRuns: 150 },
    );
  });
});
