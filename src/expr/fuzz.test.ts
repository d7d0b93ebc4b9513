/**
 * Fuzz: whatever text arrives from a client, parsing, compiling and evaluating either succeed or throw a
 * QuiverError; nothing else escapes (no TypeError, RangeError or stack overflow).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { QuiverError } from '../common/errors.js';
import { MapBatch, type Column } from '../schema/types.js';
import { compileFilter, extractPkValues, parseExpr, type ExprSchema, type TemplateValues } from './index.js';

const schema: ExprSchema = {
  dynamicField: true,
  fields: [
    { name: 'id', dataType: 'Int64', nullable: false, isPrimaryKey: true },
    { name: 'i32', dataType: 'Int32', nullable: true, isPrimaryKey: false },
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

const batch = new MapBatch(
  3,
  new Map<string, Column>([
    ['id', { kind: 'int64', data: new BigInt64Array([1n, -(1n << 63n), (1n << 63n) - 1n]) }],
    ['i32', { kind: 'int32', data: new Int32Array([0, -2147483648, 7]), valid: new Uint8Array([1, 1, 0]) }],
    ['f', { kind: 'float', data: new Float32Array([NaN, 1.5, -0]), valid: new Uint8Array([1, 0, 1]) }],
    ['d', { kind: 'double', data: new Float64Array([Infinity, -1e308, 0]) }],
    ['s', { kind: 'string', data: ['', 'a%_\\', '😀é'], valid: new Uint8Array([1, 1, 0]) }],
    ['b', { kind: 'bool', data: new Uint8Array([1, 0, 0]), valid: new Uint8Array([1, 0, 1]) }],
    ['j', { kind: 'json', data: [{ a: [1, { b: null }], s: 'x' }, [1, 'a', true], undefined] }],
    ['arr', { kind: 'array', elementType: 'Int64', data: [[1n], [], [0n, -1n]], valid: new Uint8Array([1, 1, 0]) }],
    ['sarr', { kind: 'array', elementType: 'VarChar', data: [['a'], [], ['']] }],
    ['vec', { kind: 'vector', dim: 2, data: new Float32Array(6) }],
    ['$meta', { kind: 'json', data: [{ color: 'red', n: 1 }, {}, { color: [1, 2], n: null }] }],
  ]),
);

const templates: TemplateValues = { t: [1, 2], v: 3, s: 'x', big: 1n << 70n, bad: null, nested: [[1], ['a']], fl: 0.5 };

/** Runs the whole pipeline; returns the error if one was thrown. */
function run(text: string): unknown {
  try {
    const expr = parseExpr(text, templates);
    extractPkValues(expr, schema);
    const compiled = compileFilter(text, schema, templates);
    if (compiled !== null) {
      const mask = compiled.evaluate(batch);
      expect(mask.length).toBe(3);
      for (const v of mask) expect(v === 0 || v === 1).toBe(true);
      expect(compiled.evaluate(batch, new Uint32Array([2, 0])).length).toBe(2);
    }
    return undefined;
  } catch (e) {
    return e;
  }
}

function expectOnlyQuiverErrors(text: string): void {
  const e = run(text);
  if (e !== undefined && !(e instanceof QuiverError)) {
    throw new Error(`non-QuiverError for ${JSON.stringify(text)}: ${String(e)}\n${(e as Error).stack ?? ''}`);
  }
  if (e instanceof QuiverError) {
    expect(['ExprInvalid', 'FieldNotFound']).toContain(e.kind);
    expect(e.message.length).toBeGreaterThan(0);
  }
}

const TOKENS = [
  'id',
  'i32',
  'f',
  'd',
  's',
  'b',
  'j',
  'arr',
  'sarr',
  'vec',
  'color',
  'n',
  '$meta',
  'unknown_field',
  'and',
  'OR',
  'not',
  '!',
  '&&',
  '||',
  'in',
  'not in',
  'like',
  'is',
  'null',
  'IS NOT NULL',
  'exists',
  'true',
  'False',
  '==',
  '!=',
  '<',
  '<=',
  '>',
  '>=',
  '+',
  '-',
  '*',
  '/',
  '%',
  '**',
  '>>',
  '=',
  '&',
  '~',
  '(',
  ')',
  '[',
  ']',
  ',',
  '{',
  '}',
  '{t}',
  '{v}',
  '{s}',
  '{big}',
  '{bad}',
  '{nested}',
  '{fl}',
  '{missing}',
  '0',
  '1',
  '-1',
  '0x1F',
  '017',
  '09',
  '0b2',
  '1.5',
  '.5',
  '1e999',
  '-1e999',
  '1e-400',
  '9223372036854775807',
  '9223372036854775808',
  '99999999999999999999999',
  '"a"',
  "'b'",
  '"a%"',
  '"%_"',
  '"\\u00e9"',
  '"\\x4"',
  '"unterminated',
  'r"raw\\d"',
  '"\\\\"',
  '[]',
  '["a"]',
  '[0]',
  '[1, 2]',
  '[[1]]',
  'array_contains',
  'ARRAY_CONTAINS_ALL',
  'array_contains_any',
  'array_length',
  'json_contains',
  'json_contains_all',
  'json_contains_any',
  'isnull',
  'IS_NOT_NULL',
  'frob',
];

const arbTokenSoup = fc.array(fc.constantFrom(...TOKENS), { maxLength: 14 }).chain((tokens) => fc.constantFrom(' ', '').map((sep) => tokens.join(sep)));

/** Mostly well-formed expressions with one random edit, to get past the parser into the compiler. */
const SEEDS = [
  'i32 > 1 and s like "a%"',
  'j["a"][0] == 1 or not exists j["a"][1]["b"]',
  'array_contains(arr, 1) and array_length(sarr) > 0',
  'json_contains_any(color, [1, "red"])',
  '1 < i32 + f * 2 <= 9',
  'id in [1, 2] || id == 9223372036854775807',
  'b and (d / 3 % 2 != 0.5)',
  'color is null or n ** 2 > {v}',
  'i32 in {t} and s not in ["x"]',
  '-(i32) - -1 < -d',
];
const arbMutated = fc.tuple(fc.constantFrom(...SEEDS), fc.nat(), fc.nat({ max: 4 }), fc.constantFrom(...TOKENS)).map(([seed, at, del, token]) => {
  const i = at % (seed.length + 1);
  return seed.slice(0, i) + token + seed.slice(i + del);
});

describe('fuzz', () => {
  it('arbitrary strings only ever raise QuiverError', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 60 }), (text) => expectOnlyQuiverErrors(text)),
      { numRuns: 3000, seed: 7 },
    );
  });

  it('token soup only ever raises QuiverError', () => {
    fc.assert(
      fc.property(arbTokenSoup, (text) => expectOnlyQuiverErrors(text)),
      { numRuns: 5000, seed: 11 },
    );
  });

  it('mutated valid expressions only ever raise QuiverError', () => {
    fc.assert(
      fc.property(arbMutated, (text) => expectOnlyQuiverErrors(text)),
      { numRuns: 5000, seed: 13 },
    );
  });

  it('the seeds themselves compile and evaluate', () => {
    for (const seed of SEEDS) expect(run(seed)).toBeUndefined();
  });

  it('pathological inputs are rejected, not crashed on', () => {
    for (const text of [
      '('.repeat(100000),
      '['.repeat(100000),
      '!'.repeat(100000),
      '-'.repeat(100000),
      `a == ${'1 + '.repeat(20000)}1`,
      `s like "${'%a'.repeat(2000)}b"`,
      '"'.repeat(3),
      '\u0000',
      '\uD800 == 1',
    ]) {
      expectOnlyQuiverErrors(text);
    }
  });
});
