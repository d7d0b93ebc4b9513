/**
 * Property test: over random columns (nulls, NaN, int64 beyond 2^53, arrays, JSON of mixed types) and
 * random filters, the index-backed evaluation gives exactly the scan's rows, whichever indexes a chunk
 * holds and whatever JSON cast a path index has. Row-level concerns (deletes, growing + sealed) are covered
 * through the runtime in scalar-index-runtime.test.ts.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compileFilter, evaluateFilter, type ExprSchema, type ScalarIndexReader } from '../../expr/index.js';
import { candidateRows } from '../../expr/index-plan.js';
import { MapBatch, type Column } from '../../schema/types.js';
import type { JsonCastType } from './scalar-index-params.js';
import { ScalarIndex } from './scalar-index.js';

const schema: ExprSchema = {
  dynamicField: false,
  fields: [
    { name: 'pk', dataType: 'Int64', nullable: false, isPrimaryKey: true },
    { name: 'i32', dataType: 'Int32', nullable: true, isPrimaryKey: false },
    { name: 'i64', dataType: 'Int64', nullable: true, isPrimaryKey: false },
    { name: 'f', dataType: 'Float', nullable: true, isPrimaryKey: false },
    { name: 'd', dataType: 'Double', nullable: true, isPrimaryKey: false },
    { name: 's', dataType: 'VarChar', nullable: true, isPrimaryKey: false },
    { name: 'b', dataType: 'Bool', nullable: true, isPrimaryKey: false },
    { name: 'arr', dataType: 'Array', elementType: 'Int64', nullable: true, isPrimaryKey: false },
    { name: 'sarr', dataType: 'Array', elementType: 'VarChar', nullable: false, isPrimaryKey: false },
    { name: 'j', dataType: 'JSON', nullable: true, isPrimaryKey: false },
  ],
};

const BIG = 2n ** 60n;
const arbI64 = fc.oneof(fc.bigInt({ min: -5n, max: 5n }), fc.constantFrom(BIG, BIG + 1n, -BIG, -BIG - 1n, 2n ** 53n + 1n, 2n ** 63n - 1n, -(2n ** 63n)));
const arbStr = fc.constantFrom('', 'a', 'ab', 'abc', 'abd', 'b', 'ba', 'a%b', 'a_b', 'é', '😀', 'Z');
const arbDouble = fc.oneof(
  fc.constantFrom(0, -0, 0.5, 1.5, -2.5, 3, Number.NaN, 1e300, -1e-300, Infinity, -Infinity),
  fc.integer({ min: -4, max: 4 }).map((x) => x / 2),
);
const arbJsonScalar = fc.oneof(fc.integer({ min: -3, max: 3 }), fc.constantFrom(0.5, 2.5, 1e20), arbStr, fc.boolean(), fc.constant(null));
const arbJsonVal = fc.oneof(arbJsonScalar, fc.array(arbJsonScalar, { maxLength: 3 }));
const arbJson = fc.option(
  fc.record({ a: arbJsonVal, t: arbJsonVal, b: fc.option(fc.record({ c: arbJsonVal }), { nil: undefined }) }, { requiredKeys: [] }),
  { nil: undefined },
);

interface Row {
  i32: number | null;
  i64: bigint | null;
  f: number | null;
  d: number | null;
  s: string | null;
  b: boolean | null;
  arr: bigint[] | null;
  sarr: string[];
  j: unknown;
}

const arbRow: fc.Arbitrary<Row> = fc.record({
  i32: fc.option(fc.integer({ min: -4, max: 4 }), { nil: null }),
  i64: fc.option(arbI64, { nil: null }),
  f: fc.option(
    arbDouble.map((x) => Math.fround(x)),
    { nil: null },
  ),
  d: fc.option(arbDouble, { nil: null }),
  s: fc.option(arbStr, { nil: null }),
  b: fc.option(fc.boolean(), { nil: null }),
  arr: fc.option(fc.array(arbI64, { maxLength: 3 }), { nil: null }),
  sarr: fc.array(arbStr, { maxLength: 3 }),
  j: arbJson,
});

function columns(rows: readonly Row[]): Map<string, Column> {
  const valid = (k: keyof Row): Uint8Array => Uint8Array.from(rows, (r) => (r[k] === null ? 0 : 1));
  return new Map<string, Column>([
    ['pk', { kind: 'int64', data: BigInt64Array.from(rows, (_, i) => BigInt(i)) }],
    ['i32', { kind: 'int32', data: Int32Array.from(rows, (r) => r.i32 ?? 0), valid: valid('i32') }],
    ['i64', { kind: 'int64', data: BigInt64Array.from(rows, (r) => r.i64 ?? 0n), valid: valid('i64') }],
    ['f', { kind: 'float', data: Float32Array.from(rows, (r) => r.f ?? 0), valid: valid('f') }],
    ['d', { kind: 'double', data: Float64Array.from(rows, (r) => r.d ?? 0), valid: valid('d') }],
    ['s', { kind: 'string', data: rows.map((r) => r.s ?? ''), valid: valid('s') }],
    ['b', { kind: 'bool', data: Uint8Array.from(rows, (r) => (r.b ? 1 : 0)), valid: valid('b') }],
    ['arr', { kind: 'array', elementType: 'Int64', data: rows.map((r) => r.arr ?? []), valid: valid('arr') }],
    ['sarr', { kind: 'array', elementType: 'VarChar', data: rows.map((r) => r.sarr) }],
    ['j', { kind: 'json', data: rows.map((r) => r.j), valid: Uint8Array.from(rows, (r) => (r.j === undefined ? 0 : 1)) }],
  ]);
}

const numLit = fc.oneof(
  fc.integer({ min: -5, max: 5 }).map(String),
  fc.constantFrom('1.5', '-2.5', '0.0', '3.0', '1e300', '1e400', '-1e400', String(BIG), String(BIG + 1n), String(2n ** 53n + 1n), '9223372036854775807'),
);
const strLit = arbStr.map((s) => JSON.stringify(s));
const op = fc.constantFrom('==', '!=', '<', '<=', '>', '>=');
const numField = fc.constantFrom('i32', 'i64', 'f', 'd');
const jsonPath = fc.constantFrom('j["a"]', 'j["b"]["c"]', 'j["t"]');

const arbAtom: fc.Arbitrary<string> = fc.oneof(
  fc.tuple(numField, op, numLit, fc.boolean()).map(([f, o, c, flip]) => (flip ? `${c} ${o} ${f}` : `${f} ${o} ${c}`)),
  fc.tuple(numLit, fc.constantFrom('<', '<='), numField, fc.constantFrom('<', '<='), numLit).map(([a, o1, f, o2, b]) => `${a} ${o1} ${f} ${o2} ${b}`),
  fc
    .tuple(numField, fc.array(numLit, { minLength: 1, maxLength: 3 }), fc.boolean())
    .map(([f, l, neg]) => `${f} ${neg ? 'not in' : 'in'} [${l.join(', ')}]`),
  fc.tuple(op, strLit).map(([o, c]) => `s ${o} ${c}`),
  fc.array(strLit, { minLength: 1, maxLength: 3 }).map((l) => `s in [${l.join(', ')}]`),
  fc.constantFrom('s like "a%"', 's like "ab%"', 's like "a_%"', 's like "a\\\\%%"', 's like "%b"', 's like "abc"', 's like "😀%"'),
  fc.constantFrom('b == true', 'b == false', 'b != true', 'b in [true]', 'b'),
  fc
    .tuple(fc.constantFrom('array_contains', 'array_contains_any', 'array_contains_all'), arbI64)
    .map(([fn, v]) => (fn === 'array_contains' ? `${fn}(arr, ${v})` : `${fn}(arr, [${v}, 1])`)),
  strLit.map((s) => `array_contains(sarr, ${s})`),
  fc.tuple(jsonPath, op, fc.oneof(numLit, strLit, fc.constantFrom('true', 'false'))).map(([p, o, c]) => `${p} ${o} ${c}`),
  fc.tuple(jsonPath, fc.array(fc.oneof(numLit, strLit), { minLength: 1, maxLength: 2 })).map(([p, l]) => `${p} in [${l.join(', ')}]`),
  fc
    .tuple(fc.constantFrom('json_contains', 'json_contains_any', 'json_contains_all'), jsonPath, fc.oneof(numLit, strLit, fc.constant('true')))
    .map(([fn, p, c]) => (fn === 'json_contains' ? `${fn}(${p}, ${c})` : `${fn}(${p}, [${c}])`)),
  fc.constantFrom('i32 is null', 'j["a"] like "a%"', 's is not null'),
);

const arbFilter: fc.Arbitrary<string> = fc.letrec<{ f: string }>((tie) => ({
  f: fc.oneof(
    { maxDepth: 3, depthSize: 'small' },
    arbAtom,
    fc.tuple(tie('f'), fc.constantFrom('and', 'or'), tie('f')).map(([a, o, b]) => `(${a}) ${o} (${b})`),
    tie('f').map((a) => `not (${a})`),
  ),
})).f;

const CASTS: readonly JsonCastType[] = ['BOOL', 'DOUBLE', 'VARCHAR', 'ARRAY_BOOL', 'ARRAY_DOUBLE', 'ARRAY_VARCHAR'];

function buildIndexes(cols: Map<string, Column>, present: readonly boolean[], casts: readonly JsonCastType[]): Map<string, ScalarIndexReader> {
  const out = new Map<string, ScalarIndexReader>();
  const plain = ['i32', 'i64', 'f', 'd', 's', 'b', 'arr', 'sarr'];
  plain.forEach((name, i) => {
    if (present[i]) out.set(name, ScalarIndex.build(cols.get(name)!, { indexType: 'INVERTED' }));
  });
  const paths: [string, (string | number)[]][] = [
    ['j["a"]', ['a']],
    ['j["b"]["c"]', ['b', 'c']],
    ['j["t"]', ['t']],
  ];
  paths.forEach(([key, path], i) => {
    const idx = ScalarIndex.build(cols.get('j')!, { indexType: 'INVERTED', jsonPath: path, jsonCastType: casts[i]! });
    // Exercise the file round trip too: what a query node loads is what was written.
    const loaded = ScalarIndex.fromBytes(idx.toBytes(), key, { rows: idx.rows, indexType: 'INVERTED' });
    if (present[plain.length + i]) out.set(`j${JSON.stringify(path)}`, loaded);
  });
  return out;
}

describe('scalar index path agrees with the scan', () => {
  it('on random data and filters', () => {
    fc.assert(
      fc.property(
        fc.array(arbRow, { minLength: 1, maxLength: 40 }),
        fc.array(arbFilter, { minLength: 1, maxLength: 6 }),
        fc.array(fc.boolean(), { minLength: 11, maxLength: 11 }),
        fc.array(fc.constantFrom(...CASTS), { minLength: 3, maxLength: 3 }),
        (rows, filters, present, casts) => {
          const cols = columns(rows);
          const batch = new MapBatch(rows.length, cols);
          const indexes = buildIndexes(cols, present, casts);
          for (const text of filters) {
            let filter;
            try {
              filter = compileFilter(text, schema);
            } catch {
              continue; // ill-typed combinations are the compiler's business, tested elsewhere
            }
            if (!filter) continue;
            const scan = filter.evaluate(batch);
            const viaIndex = evaluateFilter(filter, batch, indexes, 1);
            expect(Array.from(viaIndex), text).toEqual(Array.from(scan));
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  it('infinite values and bounds, NaN and int64 extremes agree with the scan', () => {
    const base: Row = { i32: null, i64: null, f: null, d: null, s: null, b: null, arr: null, sarr: [], j: undefined };
    const rows: Row[] = [Infinity, -Infinity, Number.NaN, 1, -0, 1e308].map((d, k) => ({
      ...base,
      d,
      i64: [2n ** 63n - 1n, -(2n ** 63n), 2n ** 53n + 1n, 2n ** 53n, 0n, -1n][k]!,
    }));
    const cols = columns(rows);
    const batch = new MapBatch(rows.length, cols);
    const idx = new Map<string, ScalarIndexReader>([
      ['d', ScalarIndex.build(cols.get('d')!, { indexType: 'STL_SORT' })],
      ['i64', ScalarIndex.build(cols.get('i64')!, { indexType: 'STL_SORT' })],
    ]);
    for (const text of [
      'd >= 1e400',
      'd > 1e308',
      'd <= -1e400',
      'd == 1e400',
      'd in [1e400, -1e400]',
      'd > 0',
      'd == 0',
      '-1e400 < d < 1e400',
      'i64 == 9007199254740993',
      'i64 > 9007199254740992',
      'i64 >= 9223372036854775807',
      'i64 < -9223372036854775807',
      'i64 == 9.007199254740992e15',
    ]) {
      const f = compileFilter(text, schema)!;
      expect(Array.from(evaluateFilter(f, batch, idx, 1)), text).toEqual(Array.from(f.evaluate(batch)));
    }
  });

  it('narrows the rows it evaluates for selective predicates', () => {
    const n = 1000;
    const rows: Row[] = Array.from({ length: n }, (_, i) => ({
      i32: i,
      i64: BigInt(i % 100),
      f: null,
      d: i / 2,
      s: `k${i}`,
      b: i % 2 === 0,
      arr: [BigInt(i % 7)],
      sarr: [],
      j: { a: i % 10 },
    }));
    const cols = columns(rows);
    const idx = new Map<string, ScalarIndexReader>([
      ['i32', ScalarIndex.build(cols.get('i32')!, { indexType: 'STL_SORT' })],
      ['s', ScalarIndex.build(cols.get('s')!, { indexType: 'Trie' })],
      ['j["a"]', ScalarIndex.build(cols.get('j')!, { indexType: 'INVERTED', jsonPath: ['a'], jsonCastType: 'DOUBLE' })],
    ]);
    const rowsOf = (text: string): number[] | undefined => {
      const f = compileFilter(text, schema)! as Parameters<typeof evaluateFilter>[0] & { indexPlan?: never };
      const plan = (f as unknown as { indexPlan?: Parameters<typeof candidateRows>[0] }).indexPlan;
      if (!plan) return undefined;
      const r = candidateRows(plan, idx, n);
      return r ? Array.from(r) : undefined;
    };
    expect(rowsOf('i32 == 7')).toEqual([7]);
    // Bounds are taken inclusively (a superset; the scan of the candidates decides 13).
    expect(rowsOf('10 <= i32 < 13 and d > 0')).toEqual([10, 11, 12, 13]);
    expect(rowsOf('s like "k99%"')).toEqual([99, 990, 991, 992, 993, 994, 995, 996, 997, 998, 999]);
    expect(rowsOf('i32 in [1, 5] or s == "k8"')).toEqual([1, 5, 8]);
    expect(rowsOf('j["a"] == 3 and i32 < 30')).toEqual([3, 13, 23]);
    // An OR with a branch no index bounds, and a negation, are left to the scan.
    expect(rowsOf('i32 == 7 or d > 3')).toBeUndefined();
    expect(rowsOf('not (i32 == 7)')).toBeUndefined();
    expect(rowsOf('i32 != 7')).toBeUndefined();
  });
});
