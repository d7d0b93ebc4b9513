import { describe, expect, it } from 'vitest';
import { QuiverError, type ErrorKind } from '../common/errors.js';
import { MapBatch, type Column } from '../schema/types.js';
import { compileExpr, compileFilter, extractPkValues, parseExpr, type ExprSchema, type TemplateValues } from './index.js';

const schema: ExprSchema = {
  dynamicField: true,
  fields: [
    { name: 'id', dataType: 'Int64', nullable: false, isPrimaryKey: true },
    { name: 'i32', dataType: 'Int32', nullable: true, isPrimaryKey: false },
    { name: 'i8', dataType: 'Int8', nullable: false, isPrimaryKey: false },
    { name: 'i64', dataType: 'Int64', nullable: true, isPrimaryKey: false },
    { name: 'f', dataType: 'Float', nullable: true, isPrimaryKey: false },
    { name: 'd', dataType: 'Double', nullable: false, isPrimaryKey: false },
    { name: 's', dataType: 'VarChar', nullable: true, isPrimaryKey: false },
    { name: 'b', dataType: 'Bool', nullable: true, isPrimaryKey: false },
    { name: 'j', dataType: 'JSON', nullable: true, isPrimaryKey: false },
    { name: 'arr', dataType: 'Array', elementType: 'Int64', nullable: true, isPrimaryKey: false },
    { name: 'sarr', dataType: 'Array', elementType: 'VarChar', nullable: false, isPrimaryKey: false },
    { name: 'vec', dataType: 'FloatVector', nullable: false, isPrimaryKey: false },
  ],
};
const staticSchema: ExprSchema = { ...schema, dynamicField: false };

const P53 = 9007199254740992n; // 2^53

// Row:                 0                1                2               3                      4
const columns = new Map<string, Column>([
  ['id', { kind: 'int64', data: new BigInt64Array([1n, 2n, 3n, P53 + 1n, -(1n << 63n)]) }],
  ['i32', { kind: 'int32', data: new Int32Array([10, 0, -7, 3, 0]), valid: new Uint8Array([1, 0, 1, 1, 1]) }],
  ['i8', { kind: 'int32', data: new Int32Array([1, -1, 0, 5, 2]) }],
  [
    'i64',
    { kind: 'int64', data: new BigInt64Array([P53 + 1n, -5n, 0n, (1n << 63n) - 1n, P53]), valid: new Uint8Array([1, 1, 0, 1, 1]) },
  ],
  ['f', { kind: 'float', data: new Float32Array([0.5, 0, 2.5, -1, 3]), valid: new Uint8Array([1, 0, 1, 1, 1]) }],
  ['d', { kind: 'double', data: new Float64Array([1.25, -0.5, NaN, 100, 0]) }],
  ['s', { kind: 'string', data: ['apple', 'banana', '', 'apricot', ''], valid: new Uint8Array([1, 1, 0, 1, 1]) }],
  ['b', { kind: 'bool', data: new Uint8Array([1, 0, 0, 1, 0]), valid: new Uint8Array([1, 1, 0, 1, 1]) }],
  [
    'j',
    {
      kind: 'json',
      data: [{ a: 1, b: { c: 'x' }, tags: [1, 2, 't'], flag: true }, { a: 2.5, tags: [3] }, undefined, { a: '1' }, [1, 2]],
      valid: new Uint8Array([1, 1, 0, 1, 1]),
    },
  ],
  [
    'arr',
    { kind: 'array', elementType: 'Int64', data: [[1n, 2n, 3n], [], [], [5n], [1n, 1n]], valid: new Uint8Array([1, 1, 0, 1, 1]) },
  ],
  ['sarr', { kind: 'array', elementType: 'VarChar', data: [['a', 'b'], [], ['x'], ['a'], ['b', 'a']] }],
  ['vec', { kind: 'vector', dim: 1, data: new Float32Array(5) }],
  ['$meta', { kind: 'json', data: [{ color: 'red', n: 5 }, { color: 'blue', n: '5' }, {}, { color: null }, { color: 'red', tags: ['x'] }] }],
]);
const batch = new MapBatch(5, columns);

function rowsOf(mask: Uint8Array): number[] {
  const out: number[] = [];
  mask.forEach((v, i) => {
    expect(v === 0 || v === 1).toBe(true);
    if (v === 1) out.push(i);
  });
  return out;
}

function match(text: string, templates?: TemplateValues, s: ExprSchema = schema): number[] {
  const compiled = compileFilter(text, s, templates);
  if (compiled === null) throw new Error('empty filter');
  return rowsOf(compiled.evaluate(batch));
}

function errorOf(text: string, s: ExprSchema = schema): QuiverError {
  try {
    compileFilter(text, s);
  } catch (e) {
    expect(e).toBeInstanceOf(QuiverError);
    return e as QuiverError;
  }
  throw new Error(`expected ${text} to fail`);
}

function expectError(text: string, kind: ErrorKind, ...fragments: string[]): void {
  const e = errorOf(text);
  expect(e.kind).toBe(kind);
  expect(e.message).toContain(`cannot parse expression: ${text}, error: `);
  for (const f of fragments) expect(e.message).toContain(f);
}

describe('integer columns', () => {
  it('compares int32 with every operator; null rows never match', () => {
    expect(match('i32 == 0')).toEqual([4]);
    expect(match('i32 != 0')).toEqual([0, 2, 3]);
    expect(match('i32 < 3')).toEqual([2, 4]);
    expect(match('i32 <= 3')).toEqual([2, 3, 4]);
    expect(match('i32 > 3')).toEqual([0]);
    expect(match('i32 >= 3')).toEqual([0, 3]);
    expect(match('3 < i32')).toEqual([0]);
    expect(match('i32 > 2.5')).toEqual([0, 3]);
    expect(match('i32 == 3.0')).toEqual([3]);
    expect(match('i8 == 0x5')).toEqual([3]);
  });

  it('compares int64 exactly beyond 2^53, with integer and float constants', () => {
    expect(match('i64 == 9007199254740993')).toEqual([0]);
    expect(match('i64 == 9007199254740992')).toEqual([4]);
    expect(match('i64 > 9007199254740992')).toEqual([0, 3]);
    expect(match('i64 >= 9007199254740992.0')).toEqual([0, 3, 4]);
    expect(match('i64 != 9007199254740993')).toEqual([1, 3, 4]);
    expect(match('i64 > 1.5')).toEqual([0, 3, 4]);
    expect(match('i64 < -4.5')).toEqual([1]);
    expect(match('i64 <= -5.5')).toEqual([]);
    expect(match('i64 == -5.0')).toEqual([1]);
    expect(match('i64 == 1.5')).toEqual([]);
    expect(match('i64 != 1.5')).toEqual([0, 1, 3, 4]);
    expect(match('i64 == 9223372036854775807')).toEqual([3]);
    expect(match('i64 > 9223372036854775807')).toEqual([]);
    expect(match('i64 < 99999999999999999999')).toEqual([0, 1, 3, 4]);
    expect(match('i64 > -99999999999999999999')).toEqual([0, 1, 3, 4]);
    expect(match('i64 < 1e300')).toEqual([0, 1, 3, 4]);
    expect(match('id == -9223372036854775808')).toEqual([4]);
    expect(match('id < 0')).toEqual([4]);
  });

  it('evaluates in / not in on int64 with a set of bigint', () => {
    expect(match('id in [1, 9007199254740993]')).toEqual([0, 3]);
    expect(match('id not in [1, 9007199254740993]')).toEqual([1, 2, 4]);
    expect(match('id in [9007199254740992]')).toEqual([]);
    expect(match('i64 in [-5, 0]')).toEqual([1]);
    expect(match('i64 not in [-5]')).toEqual([0, 3, 4]);
    expect(match('id in []')).toEqual([]);
    expect(match('id not in []')).toEqual([0, 1, 2, 3, 4]);
    expect(match('i32 in [10, 3.5, -7]')).toEqual([0, 2]);
    expect(match('id in {ids}', { ids: [2, 3n] })).toEqual([1, 2]);
  });

  it('compares fields with fields across types', () => {
    expect(match('i32 > d')).toEqual([0, 3]); // 10 > 1.25, 3 > 100 no... see below
  });
});
