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
  ['i64', { kind: 'int64', data: new BigInt64Array([P53 + 1n, -5n, 0n, (1n << 63n) - 1n, P53]), valid: new Uint8Array([1, 1, 0, 1, 1]) }],
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
  ['arr', { kind: 'array', elementType: 'Int64', data: [[1n, 2n, 3n], [], [], [5n], [1n, 1n]], valid: new Uint8Array([1, 1, 0, 1, 1]) }],
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

  it('compares fields with fields, across int32, int64, float and double', () => {
    expect(match('i32 > d')).toEqual([0]);
    expect(match('i32 < i8')).toEqual([2, 3, 4]);
    expect(match('id < i64')).toEqual([0, 3, 4]);
    expect(match('i64 > f')).toEqual([0, 3, 4]);
    expect(match('d != d')).toEqual([2]);
    expect(match('d == d')).toEqual([0, 1, 3, 4]);
  });
});

describe('floating point columns', () => {
  it('compares float and double columns, NaN as IEEE', () => {
    expect(match('f > 1')).toEqual([2, 4]);
    expect(match('f == 0.5')).toEqual([0]);
    expect(match('f < 0')).toEqual([3]);
    expect(match('d > 1')).toEqual([0, 3]);
    expect(match('d != 1')).toEqual([0, 1, 2, 3, 4]);
    expect(match('d < 9007199254740993')).toEqual([0, 1, 3, 4]);
    expect(match('d in [1.25, 100]')).toEqual([0, 3]);
  });

  it('compares doubles with integers no double represents, exactly', () => {
    const b = new MapBatch(
      3,
      new Map<string, Column>([['d', { kind: 'double', data: new Float64Array([9007199254740992, 9007199254740994, -9007199254740992]) }]]),
    );
    const run = (text: string): number[] => rowsOf(compileFilter(text, schema)!.evaluate(b));
    expect(run('d < 9007199254740993')).toEqual([0, 2]);
    expect(run('d <= 9007199254740993')).toEqual([0, 2]);
    expect(run('d > 9007199254740993')).toEqual([1]);
    expect(run('d >= 9007199254740993')).toEqual([1]);
    expect(run('d == 9007199254740993')).toEqual([]);
    expect(run('d != 9007199254740993')).toEqual([0, 1, 2]);
    expect(run('d < -9007199254740993')).toEqual([]);
    expect(run('d > -9007199254740993')).toEqual([0, 1, 2]);
    expect(run('d in [9007199254740993, 9007199254740994]')).toEqual([1]);
  });
});

describe('string columns', () => {
  it('compares lexicographically', () => {
    expect(match('s == "apple"')).toEqual([0]);
    expect(match("s == 'apple'")).toEqual([0]);
    expect(match('s != "apple"')).toEqual([1, 3, 4]);
    expect(match('s > "b"')).toEqual([1]);
    expect(match('s >= "apricot"')).toEqual([1, 3]);
    expect(match('s < "b"')).toEqual([0, 3, 4]);
    expect(match('"b" > s')).toEqual([0, 3, 4]);
    expect(match('"a" < s < "b"')).toEqual([0, 3]);
    expect(match('s in ["apple", ""]')).toEqual([0, 4]);
    expect(match('s not in ["apple"]')).toEqual([1, 3, 4]);
  });

  it('matches like patterns with % and _', () => {
    expect(match('s like "ap%"')).toEqual([0, 3]);
    expect(match('s LIKE "%an%"')).toEqual([1]);
    expect(match('s like "%a"')).toEqual([1]);
    expect(match('s like "_pple"')).toEqual([0]);
    expect(match('s like "a%t"')).toEqual([3]);
    expect(match('s like "a%p%t"')).toEqual([3]);
    expect(match('s like "%"')).toEqual([0, 1, 3, 4]);
    expect(match('s like ""')).toEqual([4]);
    expect(match('s like "apple"')).toEqual([0]);
    expect(match('s like "b_n_n_"')).toEqual([1]);
    expect(match('not (s like "ap%")')).toEqual([1, 4]);
    expect(match('s not like "ap%"')).toEqual([1, 4]);
  });
});

describe('bool columns', () => {
  it('uses a bool field as a predicate and compares it', () => {
    expect(match('b')).toEqual([0, 3]);
    expect(match('not b')).toEqual([1, 4]);
    expect(match('!b')).toEqual([1, 4]);
    expect(match('b == false')).toEqual([1, 4]);
    expect(match('b == True')).toEqual([0, 3]);
    expect(match('b != true')).toEqual([1, 4]);
    expect(match('true == b')).toEqual([0, 3]);
    expect(match('b in [true]')).toEqual([0, 3]);
    expect(match('b not in [true]')).toEqual([1, 4]);
  });
});

describe('nulls and three-valued logic', () => {
  it('checks null with every spelling', () => {
    expect(match('i32 is null')).toEqual([1]);
    expect(match('i32 IS NOT NULL')).toEqual([0, 2, 3, 4]);
    expect(match('ISNULL(i32)')).toEqual([1]);
    expect(match('is_not_null(i32)')).toEqual([0, 2, 3, 4]);
    expect(match('id is null')).toEqual([]);
    expect(match('s is null')).toEqual([2]);
    expect(match('b is null')).toEqual([2]);
    expect(match('j is null')).toEqual([2]);
    expect(match('arr is null')).toEqual([2]);
    expect(match('f is null and i32 is null')).toEqual([1]);
  });

  it('keeps null unknown through not, and, or', () => {
    expect(match('not (i32 > 0)')).toEqual([2, 4]);
    expect(match('i32 > 0 or b')).toEqual([0, 3]);
    expect(match('i32 > 0 or not b')).toEqual([0, 1, 3, 4]);
    expect(match('not (i32 > 0 and b)')).toEqual([1, 2, 4]);
    expect(match('not not (i32 > 0)')).toEqual([0, 3]);
  });

  it('combines predicates with the usual precedence', () => {
    expect(match('(i32 > 0 or s like "b%") and not b')).toEqual([1]);
    expect(match('i32 > 0 && d > 1 || b == false')).toEqual([0, 1, 3, 4]);
    expect(match('i32 > 0 AND d > 1 OR b == false')).toEqual([0, 1, 3, 4]);
    expect(match('i32 > 0 and (d > 1 or b == false)')).toEqual([0, 3]);
  });
});

describe('arithmetic', () => {
  it('evaluates + - * / % ** and unary minus on numeric fields', () => {
    expect(match('i32 + 2 > 5')).toEqual([0]);
    expect(match('i32 * 2 == 20')).toEqual([0]);
    expect(match('i32 % 3 == 1')).toEqual([0]);
    expect(match('i32 % 3 == -1')).toEqual([2]);
    expect(match('i32 / 2 == -3')).toEqual([2]);
    expect(match('i32 / 2 == 5')).toEqual([0]);
    expect(match('i32 / 2.0 == -3.5')).toEqual([2]);
    expect(match('i32 ** 2 == 49')).toEqual([2]);
    expect(match('-i32 == 7')).toEqual([2]);
    expect(match('i32 - d > 0')).toEqual([0]);
    expect(match('d * 2 > 2')).toEqual([0, 3]);
    expect(match('i8 * 10 == i32')).toEqual([0]);
    expect(match('i32 + 2147483647 > 0')).toEqual([0, 2, 3, 4]);
    expect(match('1 + 2 == 3')).toEqual([0, 1, 2, 3, 4]);
    expect(match('2 ** 10 == 1024')).toEqual([0, 1, 2, 3, 4]);
    expect(match('i32 > 2 * 3 - 1')).toEqual([0]);
  });

  it('computes int64 arithmetic exactly, wrapping at 64 bits', () => {
    expect(match('i64 + 1 == 9007199254740994')).toEqual([0]);
    expect(match('i64 - 1 == 9007199254740991')).toEqual([4]);
    expect(match('i64 * 2 < 0')).toEqual([1, 3]);
    expect(match('id - 1 < id')).toEqual([0, 1, 2, 3]);
    expect(match('i64 / 2 == 4503599627370496')).toEqual([0, 4]);
    expect(match('i64 % 10 == 3')).toEqual([0]);
  });

  it('makes division or modulo by a zero field value null', () => {
    expect(match('i32 / i8 == 10')).toEqual([0]);
    expect(match('i32 / i8 == 0')).toEqual([3, 4]);
    expect(match('i32 % i8 == 0')).toEqual([0, 4]);
    expect(match('not (i32 / i8 == 0)')).toEqual([0]);
  });
});

describe('JSON fields', () => {
  it('compares values at a path; absent keys are false except for !=', () => {
    expect(match('j["a"] == 1')).toEqual([0]);
    expect(match('j["a"] > 1')).toEqual([1]);
    expect(match("j['a'] >= 1")).toEqual([0, 1]);
    expect(match('j["a"] == "1"')).toEqual([3]);
    expect(match('j["b"]["c"] == "x"')).toEqual([0]);
    expect(match('j["a"] != 1')).toEqual([1, 3, 4]);
    expect(match('j["missing"] > 0')).toEqual([]);
    expect(match('j["tags"][0] == 1')).toEqual([0]);
    expect(match('j[0] == 1')).toEqual([4]);
    expect(match('j[5] == 1')).toEqual([]);
    expect(match('j["tags"] == [3]')).toEqual([1]);
    expect(match('j["tags"] != [3]')).toEqual([0, 3, 4]);
    expect(match('1 < j["a"] < 3')).toEqual([1]);
    expect(match('0 <= j["a"] <= 1')).toEqual([0]);
    expect(match('j["a"] + 1 == 2')).toEqual([0]);
    expect(match('j["a"] * 2 == 5')).toEqual([1]);
    expect(match('j["a"] like "1%"')).toEqual([3]);
    expect(match('j["a"] in [1, 2.5]')).toEqual([0, 1]);
    expect(match('j["a"] not in [1]')).toEqual([1, 3, 4]);
  });

  it('evaluates json_contains, exists, null checks, array_length and bare bools', () => {
    expect(match('json_contains(j["tags"], 1)')).toEqual([0]);
    expect(match('json_contains(j["tags"], "t")')).toEqual([0]);
    expect(match('JSON_CONTAINS(j["tags"], 3)')).toEqual([1]);
    expect(match('json_contains(j, 2)')).toEqual([4]);
    expect(match('not json_contains(j["tags"], 1)')).toEqual([1, 3, 4]);
    expect(match('json_contains_all(j["tags"], [1, 2])')).toEqual([0]);
    expect(match('json_contains_any(j["tags"], [3, 2])')).toEqual([0, 1]);
    expect(match('exists j["b"]')).toEqual([0]);
    expect(match('EXISTS j["a"]')).toEqual([0, 1, 3]);
    expect(match('not exists j["a"]')).toEqual([4]);
    expect(match('j["zz"] is null')).toEqual([0, 1, 2, 3, 4]);
    expect(match('j["a"] is not null')).toEqual([0, 1, 3]);
    expect(match('array_length(j["tags"]) == 3')).toEqual([0]);
    expect(match('array_length(j) == 2')).toEqual([4]);
    expect(match('j["flag"]')).toEqual([0]);
    expect(match('not j["flag"]')).toEqual([1, 3, 4]);
    expect(match('j["flag"] == true')).toEqual([0]);
  });
});

describe('dynamic fields', () => {
  it('reads unknown identifiers as keys of $meta', () => {
    expect(match('color == "red"')).toEqual([0, 4]);
    expect(match('color != "red"')).toEqual([1, 2, 3]);
    expect(match('$meta["color"] == "blue"')).toEqual([1]);
    expect(match('n == 5')).toEqual([0]);
    expect(match('n == "5"')).toEqual([1]);
    expect(match('n + 1 > 5')).toEqual([0]);
    expect(match('exists color')).toEqual([0, 1, 3, 4]);
    expect(match('color is null')).toEqual([2, 3]);
    expect(match('color is not null')).toEqual([0, 1, 4]);
    expect(match('tags[0] == "x"')).toEqual([4]);
    expect(match('json_contains(tags, "x")')).toEqual([4]);
    expect(match('color like "r%"')).toEqual([0, 4]);
    expect(match('color in ["blue", "red"] and i32 > 1')).toEqual([0]);
  });

  it('lists the columns an expression reads', () => {
    expect(compileFilter('color == "red" and i32 > 1 or i32 < 0', schema)!.fieldNames).toEqual(['$meta', 'i32']);
    expect(compileFilter('j["a"] == 1 and array_contains(arr, 1)', schema)!.fieldNames).toEqual(['j', 'arr']);
    expect(compileFilter('true', schema)!.fieldNames).toEqual([]);
  });
});

describe('array fields', () => {
  it('evaluates array functions, indexing and equality', () => {
    expect(match('array_contains(arr, 1)')).toEqual([0, 4]);
    expect(match('ARRAY_CONTAINS(arr, 5)')).toEqual([3]);
    expect(match('json_contains(arr, 5)')).toEqual([3]);
    expect(match('not array_contains(arr, 1)')).toEqual([1, 3]);
    expect(match('array_contains_all(arr, [1, 2])')).toEqual([0]);
    expect(match('array_contains_any(arr, [5, 2])')).toEqual([0, 3]);
    expect(match('array_contains_all(arr, [])')).toEqual([0, 1, 3, 4]);
    expect(match('array_contains_any(arr, [])')).toEqual([]);
    expect(match('array_length(arr) == 0')).toEqual([1]);
    expect(match('array_length(arr) > 1')).toEqual([0, 4]);
    expect(match('array_length(sarr) == 2')).toEqual([0, 4]);
    expect(match('arr[0] > 2')).toEqual([3]);
    expect(match('arr[0] == 1')).toEqual([0, 4]);
    expect(match('arr[1] != 2')).toEqual([4]);
    expect(match('arr[0] in [5, 7]')).toEqual([3]);
    expect(match('arr == [1, 2, 3]')).toEqual([0]);
    expect(match('arr != [1, 2, 3]')).toEqual([1, 3, 4]);
    expect(match('arr == []')).toEqual([1]);
    expect(match('array_contains(sarr, "a")')).toEqual([0, 3, 4]);
    expect(match('sarr[0] == "a"')).toEqual([0, 3]);
    expect(match('sarr[1] == "a"')).toEqual([4]);
    expect(match('sarr[0] like "%"')).toEqual([0, 2, 3, 4]);
  });
});

describe('constants and templates', () => {
  it('folds constant predicates', () => {
    expect(match('true')).toEqual([0, 1, 2, 3, 4]);
    expect(match('false')).toEqual([]);
    expect(match('1 < 2')).toEqual([0, 1, 2, 3, 4]);
    expect(match('not (1 > 2)')).toEqual([0, 1, 2, 3, 4]);
    expect(match('1 == 1 and i32 > 3')).toEqual([0]);
    expect(match('1 == 2 or i32 > 3')).toEqual([0]);
    expect(match('"a" < "b"')).toEqual([0, 1, 2, 3, 4]);
    expect(match('2 in [1, 2]')).toEqual([0, 1, 2, 3, 4]);
    expect(match('"abc" like "a%"')).toEqual([0, 1, 2, 3, 4]);
    expect(match('1 < 2 < 3')).toEqual([0, 1, 2, 3, 4]);
  });

  it('substitutes templates', () => {
    expect(match('i64 < {v}', { v: 0 })).toEqual([1]);
    expect(match('i64 == {v}', { v: 9007199254740993n })).toEqual([0]);
    expect(match('s in {l}', { l: ['apple'] })).toEqual([0]);
    expect(match('{lo} < i32 < {hi}', { lo: 0, hi: 5 })).toEqual([3]);
    expect(match('array_contains_any(arr, {l})', { l: [5] })).toEqual([3]);
  });
});

describe('errors', () => {
  it('reports type errors naming the field', () => {
    expectError('s > 3', 'ExprInvalid', "field 's' (VarChar)", 'integer 3');
    expectError('s == 3', 'ExprInvalid', "field 's'");
    expectError('i32 == "a"', 'ExprInvalid', "field 'i32' (Int32)");
    expectError('i32 like "a%"', 'ExprInvalid', "'like' is not supported on field 'i32' (Int32)");
    expectError('array_contains(i32, 1)', 'ExprInvalid', "array_contains needs an Array or JSON field, got field 'i32'");
    expectError('s + 1 > 2', 'ExprInvalid', "arithmetic operator '+' is not supported on field 's' (VarChar)");
    expectError('-s == 1', 'ExprInvalid', "field 's' (VarChar)");
    expectError('b > true', 'ExprInvalid', "field 'b' (Bool)");
    expectError('b == 1', 'ExprInvalid', "field 'b' (Bool)");
    expectError('i32 in ["a"]', 'ExprInvalid', 'string "a"', "field 'i32'");
    expectError('s in [1]', 'ExprInvalid', "field 's'");
    expectError('array_contains(arr, "x")', 'ExprInvalid', 'string "x"', "field 'arr'");
    expectError('array_contains_all(arr, 1)', 'ExprInvalid', 'must be a list');
    expectError('array_contains(arr, i32)', 'ExprInvalid', 'must be a constant');
    expectError('arr > 1', 'ExprInvalid', "field 'arr' (Array)");
    expectError('arr in [1]', 'ExprInvalid', "field 'arr' (Array)");
    expectError('vec > 1', 'ExprInvalid', "field 'vec' (FloatVector) cannot be used");
    expectError('i32', 'ExprInvalid', "field 'i32' (Int32) at position 0 is not a boolean expression");
    expectError('i32 + 1', 'ExprInvalid', 'not a boolean expression');
    expectError('"abc"', 'ExprInvalid', 'not a boolean expression');
    expectError('1 < i32 < d', 'ExprInvalid', 'bounds of a range expression must be constants');
    expectError('(i32 > 1) == true', 'ExprInvalid', 'cannot be used as a value');
    expectError('i32[0] > 1', 'ExprInvalid', "field 'i32' (Int32) cannot be indexed");
    expectError('arr["a"] > 1', 'ExprInvalid', 'can only be indexed by one integer');
    expectError('i32 / 0 > 1', 'ExprInvalid', 'division by zero at position 4');
    expectError('i32 % 0.0 > 1', 'ExprInvalid', 'division by zero');
    expectError('exists i32', 'ExprInvalid', "'exists' needs a JSON field");
    expectError('(i32 + 1) is null', 'ExprInvalid', "'is null' needs a field");
    expectError('s like 3', 'ExprInvalid', "the pattern of 'like' must be a string constant");
    expectError('i32 in i8', 'ExprInvalid', "'in' needs a list of constants");
    expectError('array_length(i32) == 1', 'ExprInvalid', "array_length needs an Array or JSON field, got field 'i32'");
    expectError('i32 in [i8]', 'ExprInvalid', 'list items must be constants');
    expectError('i32 > 1 and i8', 'ExprInvalid', "field 'i8'");
  });

  it('reports unknown fields as FieldNotFound when there is no dynamic field', () => {
    const e = errorOf('foo > 1', staticSchema);
    expect(e.kind).toBe('FieldNotFound');
    expect(e.message).toBe("cannot parse expression: foo > 1, error: field 'foo' does not exist (position 0)");
    expect(errorOf('i32 > 1 and foo["a"] == 1', staticSchema).message).toContain("field 'foo' does not exist (position 12)");
    expect(errorOf('$meta["x"] == 1', staticSchema).kind).toBe('FieldNotFound');
    expect(match('i32 > 3', undefined, staticSchema)).toEqual([0]);
  });

  it('compileExpr reports errors without the text; parse errors keep their message', () => {
    expect(() => compileExpr(parseExpr('s > 3'), schema)).toThrow(/^cannot compare field 's'/);
    expect(() => compileFilter('id >> 3', schema)).toThrow("cannot parse expression: id >> 3, error: unexpected token '>' at position 4");
  });
});

describe('evaluate', () => {
  it('returns null from compileFilter for an empty filter', () => {
    expect(compileFilter('', schema)).toBeNull();
    expect(compileFilter('  \n\t ', schema)).toBeNull();
  });

  it('evaluates a subset of rows in the order given', () => {
    const c = compileFilter('i32 >= 0 and color == "red" or array_contains(arr, 5)', schema)!;
    const full = c.evaluate(batch);
    expect(rowsOf(full)).toEqual([0, 3, 4]);
    const rows = new Uint32Array([4, 1, 3, 0, 4]);
    const sub = c.evaluate(batch, rows);
    expect(Array.from(sub)).toEqual(Array.from(rows, (r) => full[r]));
    expect(c.evaluate(batch, new Uint32Array(0)).length).toBe(0);
  });

  it('asserts row offsets are inside the batch', () => {
    const c = compileFilter('i32 > 0', schema)!;
    expect(() => c.evaluate(batch, new Uint32Array([5]))).toThrow(/outside the batch/);
  });

  it('reads a column absent from the batch as null and absent $meta as no keys', () => {
    const b = new MapBatch(2, new Map<string, Column>([['i8', { kind: 'int32', data: new Int32Array([1, 2]) }]]));
    const run = (text: string): number[] => rowsOf(compileFilter(text, schema)!.evaluate(b));
    expect(run('i32 is null')).toEqual([0, 1]);
    expect(run('i32 > 0')).toEqual([]);
    expect(run('not (i32 > 0)')).toEqual([]);
    expect(run('color == "red"')).toEqual([]);
    expect(run('color != "red"')).toEqual([0, 1]);
    expect(run('i8 > 1')).toEqual([1]);
  });

  it('evaluates long generated or-chains of equalities as one membership test', () => {
    const terms = Array.from({ length: 5000 }, (_, i) => `id == ${i * 7}`);
    terms.push('id == 9007199254740993', '2 == id', 'i32 == 10', 'i32 == -7');
    expect(match(terms.join(' or '))).toEqual([0, 1, 2, 3]);
    expect(match('s == "apple" or s == "banana" or b')).toEqual([0, 1, 3]);
    expect(match('b == true or b == false')).toEqual([0, 1, 3, 4]);
    expect(match('color == "red" or color == "blue"')).toEqual([0, 1, 4]);
    expect(match('arr == [5] or arr == []')).toEqual([1, 3]);
  });

  it('can be evaluated repeatedly and on other batches', () => {
    const c = compileFilter('i32 > 0', schema)!;
    expect(rowsOf(c.evaluate(batch))).toEqual([0, 3]);
    expect(rowsOf(c.evaluate(batch))).toEqual([0, 3]);
  });
});

describe('extractPkValues', () => {
  const pk = (text: string, s: ExprSchema = schema, t?: TemplateValues): (bigint | string)[] | null => extractPkValues(parseExpr(text, t), s);
  const varcharSchema: ExprSchema = {
    dynamicField: false,
    fields: [{ name: 'name', dataType: 'VarChar', nullable: false, isPrimaryKey: true }],
  };

  it('extracts Int64 pk values from in, == and or of ==', () => {
    expect(pk('id in [1, 2, 9007199254740993]')).toEqual([1n, 2n, 9007199254740993n]);
    expect(pk('id == 5')).toEqual([5n]);
    expect(pk('5 == id')).toEqual([5n]);
    expect(pk('id == 1 or id == 2 or id == 1')).toEqual([1n, 2n]);
    expect(pk('id == 1 || id in [3, 4]')).toEqual([1n, 3n, 4n]);
    expect(pk('(id == 1 or (id == 2))')).toEqual([1n, 2n]);
    expect(pk('id in {ids}', schema, { ids: [7, 8n] })).toEqual([7n, 8n]);
    expect(pk('id in []')).toEqual([]);
    expect(pk('id in [1, 2.0]')).toEqual([1n, 2n]);
    expect(pk('id in [1, 2.5, 99999999999999999999]')).toEqual([1n]);
    expect(pk('id == -9223372036854775808')).toEqual([-(1n << 63n)]);
  });

  it('extracts VarChar pk values', () => {
    expect(pk('name in ["a", "b"]', varcharSchema)).toEqual(['a', 'b']);
    expect(pk('name == "a" or name == "c"', varcharSchema)).toEqual(['a', 'c']);
  });

  it('returns null for anything else', () => {
    expect(pk('id > 5')).toBeNull();
    expect(pk('id != 5')).toBeNull();
    expect(pk('id not in [1]')).toBeNull();
    expect(pk('id == 1 and i32 > 0')).toBeNull();
    expect(pk('id == 1 or i32 == 2')).toBeNull();
    expect(pk('i32 in [1]')).toBeNull();
    expect(pk('id == "a"')).toBeNull();
    expect(pk('id == i64')).toBeNull();
    expect(pk('id == 1 + 1')).toBeNull();
    expect(pk('name == 1', varcharSchema)).toBeNull();
    expect(pk('id == 1', { dynamicField: true, fields: [] })).toBeNull();
  });
});
