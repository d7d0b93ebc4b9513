/**
 * Model test: random well-typed expressions over int32 / int64 / float / double / string / bool columns
 * with nulls, rendered to text, parsed, compiled and evaluated column-at-a-time, must agree with a naive
 * row-at-a-time evaluator written here from the semantics (not from the kernels).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MapBatch, type Column } from '../schema/types.js';
import type { CompareOp } from './ast.js';
import { compileFilter, type ExprSchema } from './index.js';

// ------------------------------------------------------------------ model

type NumField = 'i32' | 'i64' | 'f' | 'd';
type NumArithOp = '+' | '-' | '*' | '/' | '%' | '**';
type NumE =
  | { readonly k: 'field'; readonly name: NumField }
  | { readonly k: 'int'; readonly v: bigint }
  | { readonly k: 'float'; readonly v: number }
  | { readonly k: 'arith'; readonly op: NumArithOp; readonly l: NumE; readonly r: NumE }
  | { readonly k: 'neg'; readonly e: NumE };
type StrE = { readonly k: 'sfield' } | { readonly k: 'str'; readonly v: string };
type PredE =
  | { readonly k: 'cmp'; readonly op: CompareOp; readonly l: NumE; readonly r: NumE }
  | { readonly k: 'scmp'; readonly op: CompareOp; readonly l: StrE; readonly r: StrE }
  | { readonly k: 'bfield' }
  | { readonly k: 'bcmp'; readonly op: '==' | '!='; readonly v: boolean }
  | { readonly k: 'in'; readonly field: NumField; readonly items: readonly NumE[]; readonly negated: boolean }
  | { readonly k: 'sin'; readonly items: readonly string[]; readonly negated: boolean }
  | { readonly k: 'range'; readonly lo: NumE; readonly loInc: boolean; readonly e: NumE; readonly hi: NumE; readonly hiInc: boolean }
  | { readonly k: 'like'; readonly pattern: string }
  | { readonly k: 'isnull'; readonly field: NumField | 's' | 'b'; readonly negated: boolean }
  | { readonly k: 'logic'; readonly op: 'and' | 'or'; readonly ops: readonly PredE[] }
  | { readonly k: 'not'; readonly e: PredE }
  | { readonly k: 'blit'; readonly v: boolean };

interface Row {
  i32: number | null;
  i64: bigint | null;
  f: number | null;
  d: number | null;
  s: string | null;
  b: boolean | null;
}

// ------------------------------------------------------------------ rendering

function renderFloat(x: number): string {
  const s = String(Math.abs(x));
  const body = /[.e]/.test(s) ? s : `${s}.0`;
  return x < 0 || Object.is(x, -0) ? `(-${body})` : body;
}

function renderNum(e: NumE): string {
  switch (e.k) {
    case 'field':
      return e.name;
    case 'int':
      return e.v < 0n ? `(${e.v})` : `${e.v}`;
    case 'float':
      return renderFloat(e.v);
    case 'arith':
      return `(${renderNum(e.l)} ${e.op} ${renderNum(e.r)})`;
    case 'neg':
      return `(-${renderNum(e.e)})`;
  }
}

function renderStr(e: StrE): string {
  return e.k === 'sfield' ? 's' : JSON.stringify(e.v);
}

function render(e: PredE): string {
  switch (e.k) {
    case 'cmp':
      return `${renderNum(e.l)} ${e.op} ${renderNum(e.r)}`;
    case 'scmp':
      return `${renderStr(e.l)} ${e.op} ${renderStr(e.r)}`;
    case 'bfield':
      return 'b';
    case 'bcmp':
      return `b ${e.op} ${e.v ? 'True' : 'false'}`;
    case 'in':
      return `${e.field} ${e.negated ? 'not in' : 'in'} [${e.items.map(renderNum).join(', ')}]`;
    case 'sin':
      return `s ${e.negated ? 'NOT IN' : 'IN'} [${e.items.map((x) => JSON.stringify(x)).join(', ')}]`;
    case 'range':
      return `${renderNum(e.lo)} ${e.loInc ? '<=' : '<'} ${renderNum(e.e)} ${e.hiInc ? '<=' : '<'} ${renderNum(e.hi)}`;
    case 'like':
      return `s like ${JSON.stringify(e.pattern)}`;
    case 'isnull':
      return `${e.field} ${e.negated ? 'is not null' : 'IS NULL'}`;
    case 'logic':
      return e.ops.map((o) => `(${render(o)})`).join(e.op === 'and' ? ' and ' : ' || ');
    case 'not':
      return `not (${render(e.e)})`;
    case 'blit':
      return e.v ? 'true' : 'FALSE';
  }
}

// ------------------------------------------------------------------ reference evaluator

type NumV = { readonly int: true; readonly v: bigint } | { readonly int: false; readonly v: number } | null;

const wrap = (x: bigint): bigint => BigInt.asIntN(64, x);

/** A numeric literal possibly under unary minus signs: the parser folds the sign into the literal, exactly. */
function literalValue(e: NumE): NumV | undefined {
  if (e.k === 'int') return { int: true, v: e.v };
  if (e.k === 'float') return { int: false, v: e.v };
  if (e.k === 'neg') {
    const inner = literalValue(e.e);
    if (inner === undefined || inner === null) return inner;
    return inner.int ? { int: true, v: -inner.v } : { int: false, v: -inner.v };
  }
  return undefined;
}

function evalNum(e: NumE, row: Row): NumV {
  const lit = literalValue(e);
  if (lit !== undefined) return lit;
  switch (e.k) {
    case 'field': {
      const x = row[e.name];
      if (x === null) return null;
      if (e.name === 'i32') return { int: true, v: BigInt(x as number) };
      if (e.name === 'i64') return { int: true, v: x as bigint };
      return { int: false, v: x as number };
    }
    case 'neg': {
      const x = evalNum(e.e, row);
      if (x === null) return null;
      return x.int ? { int: true, v: wrap(-x.v) } : { int: false, v: -x.v };
    }
    case 'arith': {
      const a = evalNum(e.l, row);
      const b = evalNum(e.r, row);
      if (a === null || b === null) return null;
      if (a.int && b.int && e.op !== '**') {
        switch (e.op) {
          case '+':
            return { int: true, v: wrap(a.v + b.v) };
          case '-':
            return { int: true, v: wrap(a.v - b.v) };
          case '*':
            return { int: true, v: wrap(a.v * b.v) };
          case '/':
            return b.v === 0n ? null : { int: true, v: wrap(a.v / b.v) };
          case '%':
            return b.v === 0n ? null : { int: true, v: wrap(a.v % b.v) };
        }
      }
      const x = Number(a.v);
      const y = Number(b.v);
      const ops: Record<NumArithOp, (p: number, q: number) => number> = {
        '+': (p, q) => p + q,
        '-': (p, q) => p - q,
        '*': (p, q) => p * q,
        '/': (p, q) => p / q,
        '%': (p, q) => p % q,
        '**': (p, q) => p ** q,
      };
      return { int: false, v: ops[e.op](x, y) };
    }
    default:
      throw new Error('unreachable');
  }
}

/** A finite double as an exact fraction num / 2^shift. */
function exactFraction(x: number): { num: bigint; shift: bigint } {
  let shift = 0n;
  let m = x;
  while (!Number.isInteger(m)) {
    m *= 2;
    shift++;
  }
  return { num: BigInt(m), shift };
}

/** Exact ordering of two numbers (bigint or double): -1, 0, 1, or NaN when unordered. */
function cmpExact(a: bigint | number, b: bigint | number): number {
  if (typeof a === 'number' && Number.isNaN(a)) return NaN;
  if (typeof b === 'number' && Number.isNaN(b)) return NaN;
  if (typeof a === 'number' && !Number.isFinite(a)) return typeof b === 'number' && a === b ? 0 : a > 0 ? 1 : -1;
  if (typeof b === 'number' && !Number.isFinite(b)) return -cmpExact(b, a);
  const fa = typeof a === 'bigint' ? { num: a, shift: 0n } : exactFraction(a);
  const fb = typeof b === 'bigint' ? { num: b, shift: 0n } : exactFraction(b);
  const shift = fa.shift > fb.shift ? fa.shift : fb.shift;
  const x = fa.num << (shift - fa.shift);
  const y = fb.num << (shift - fb.shift);
  return x < y ? -1 : x > y ? 1 : 0;
}

function holds(op: CompareOp, c: number): boolean {
  if (Number.isNaN(c)) return op === '!=';
  return { '==': c === 0, '!=': c !== 0, '<': c < 0, '<=': c <= 0, '>': c > 0, '>=': c >= 0 }[op];
}

function likeRegExp(pattern: string): RegExp {
  let src = '';
  for (const ch of pattern) {
    if (ch === '%') src += '[\\s\\S]*';
    else if (ch === '_') src += '.';
    else src += ch.replace(/[\\^$.*+?()[\]{}|/]/g, '\\$&');
  }
  return new RegExp(`^${src}$`, 'su');
}

function evalPred(e: PredE, row: Row): boolean | null {
  switch (e.k) {
    case 'cmp': {
      const a = evalNum(e.l, row);
      const b = evalNum(e.r, row);
      if (a === null || b === null) return null;
      return holds(e.op, cmpExact(a.v, b.v));
    }
    case 'scmp': {
      const a = e.l.k === 'sfield' ? row.s : e.l.v;
      const b = e.r.k === 'sfield' ? row.s : e.r.v;
      if (a === null || b === null) return null;
      return holds(e.op, a < b ? -1 : a > b ? 1 : 0);
    }
    case 'bfield':
      return row.b;
    case 'bcmp':
      return row.b === null ? null : (row.b === e.v) === (e.op === '==');
    case 'in': {
      const x = evalNum({ k: 'field', name: e.field }, row);
      if (x === null) return null;
      const hit = e.items.some((it) => cmpExact(x.v, (evalNum(it, row) as Exclude<NumV, null>).v) === 0);
      return hit !== e.negated;
    }
    case 'sin':
      return row.s === null ? null : e.items.includes(row.s) !== e.negated;
    case 'range': {
      const lower = evalPred({ k: 'cmp', op: e.loInc ? '<=' : '<', l: e.lo, r: e.e }, row);
      const upper = evalPred({ k: 'cmp', op: e.hiInc ? '<=' : '<', l: e.e, r: e.hi }, row);
      return and3([lower, upper]);
    }
    case 'like':
      return row.s === null ? null : likeRegExp(e.pattern).test(row.s);
    case 'isnull':
      return (row[e.field] === null) !== e.negated;
    case 'logic': {
      const vals = e.ops.map((o) => evalPred(o, row));
      return e.op === 'and' ? and3(vals) : or3(vals);
    }
    case 'not': {
      const v = evalPred(e.e, row);
      return v === null ? null : !v;
    }
    case 'blit':
      return e.v;
  }
}

function and3(vals: readonly (boolean | null)[]): boolean | null {
  if (vals.includes(false)) return false;
  return vals.includes(null) ? null : true;
}
function or3(vals: readonly (boolean | null)[]): boolean | null {
  if (vals.includes(true)) return true;
  return vals.includes(null) ? null : false;
}

// ------------------------------------------------------------------ generators

const I64_MIN = -(1n << 63n);
const I64_MAX = (1n << 63n) - 1n;
const P53 = 1n << 53n;

const arbI32 = fc.oneof(fc.integer({ min: -6, max: 6 }), fc.constantFrom(-2147483648, 2147483647), fc.integer());
const arbI64 = fc.oneof(
  fc.bigInt({ min: -6n, max: 6n }),
  fc.constantFrom(P53, P53 + 1n, -P53 - 1n, I64_MAX, I64_MIN, 2147483648n),
  fc.bigInt({ min: I64_MIN, max: I64_MAX }),
);
const arbDouble = fc.oneof(
  fc.integer({ min: -6, max: 6 }),
  fc.constantFrom(0.5, -2.5, 2 ** 53, 2 ** 53 + 2, NaN, -0, 1e300),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
);
const arbStr = fc.string({ unit: fc.constantFrom('a', 'b', 'c', 'é', '😀', ' '), maxLength: 5 });
const nullable = <T>(a: fc.Arbitrary<T>): fc.Arbitrary<T | null> => fc.option(a, { freq: 4, nil: null });

const arbRow: fc.Arbitrary<Row> = fc.record({
  i32: nullable(arbI32),
  i64: nullable(arbI64),
  f: nullable(arbDouble.map((x) => Math.fround(x))),
  d: nullable(arbDouble),
  s: nullable(arbStr),
  b: nullable(fc.boolean()),
});

const arbIntLit: fc.Arbitrary<NumE> = arbI64.map((v) => ({ k: 'int', v }));
const arbFloatLit: fc.Arbitrary<NumE> = fc
  .oneof(fc.constantFrom(0.5, -2.5, 1.5, 2 ** 53, 2 ** 53 + 2), fc.double({ noNaN: true, noDefaultInfinity: true }))
  .map((v) => ({ k: 'float', v }));
const arbLiteral = fc.oneof(arbIntLit, arbFloatLit);
const arbNumField: fc.Arbitrary<NumField> = fc.constantFrom('i32', 'i64', 'f', 'd');
const arbCompareOp: fc.Arbitrary<CompareOp> = fc.constantFrom('==', '!=', '<', '<=', '>', '>=');

/** A divisor that is never a constant zero (that is a compile error, tested elsewhere). */
const arbDivisor: fc.Arbitrary<NumE> = fc.oneof(
  arbNumField.map((name) => ({ k: 'field', name }) as NumE),
  arbIntLit.filter((e) => e.k === 'int' && e.v !== 0n),
  arbFloatLit.filter((e) => e.k === 'float' && e.v !== 0),
);

const { num } = fc.letrec<{ num: NumE }>((tie) => ({
  num: fc.oneof(
    { depthSize: 'small', maxDepth: 3 },
    arbNumField.map((name) => ({ k: 'field', name }) as NumE),
    arbNumField.map((name) => ({ k: 'field', name }) as NumE),
    arbLiteral,
    fc.record({ k: fc.constant('arith' as const), op: fc.constantFrom('+', '-', '*', '**'), l: tie('num'), r: tie('num') }),
    fc.record({ k: fc.constant('arith' as const), op: fc.constantFrom('/', '%'), l: tie('num'), r: arbDivisor }),
    fc.record({ k: fc.constant('neg' as const), e: tie('num') }),
  ),
}));

const arbStrE: fc.Arbitrary<StrE> = fc.oneof(
  fc.constant({ k: 'sfield' } as StrE),
  arbStr.map((v) => ({ k: 'str', v }) as StrE),
);

const { pred } = fc.letrec<{ pred: PredE }>((tie) => ({
  pred: fc.oneof(
    { depthSize: 'small', maxDepth: 4 },
    fc.record({ k: fc.constant('cmp' as const), op: arbCompareOp, l: num, r: num }),
    fc.record({ k: fc.constant('cmp' as const), op: arbCompareOp, l: arbNumField.map((name) => ({ k: 'field', name }) as NumE), r: arbLiteral }),
    fc.record({ k: fc.constant('scmp' as const), op: arbCompareOp, l: arbStrE, r: arbStrE }),
    fc.constant({ k: 'bfield' } as PredE),
    fc.record({ k: fc.constant('bcmp' as const), op: fc.constantFrom('==' as const, '!=' as const), v: fc.boolean() }),
    fc.record({ k: fc.constant('in' as const), field: arbNumField, items: fc.array(arbLiteral, { maxLength: 12 }), negated: fc.boolean() }),
    fc.record({ k: fc.constant('sin' as const), items: fc.array(arbStr, { maxLength: 10 }), negated: fc.boolean() }),
    fc.record({ k: fc.constant('range' as const), lo: arbLiteral, loInc: fc.boolean(), e: num, hi: arbLiteral, hiInc: fc.boolean() }),
    fc.record({ k: fc.constant('like' as const), pattern: fc.string({ unit: fc.constantFrom('a', 'b', 'é', '%', '_'), maxLength: 5 }) }),
    fc.record({ k: fc.constant('isnull' as const), field: fc.constantFrom('i32', 'i64', 'f', 'd', 's', 'b'), negated: fc.boolean() }),
    fc.record({
      k: fc.constant('logic' as const),
      op: fc.constantFrom('and' as const, 'or' as const),
      ops: fc.array(tie('pred'), { minLength: 2, maxLength: 3 }),
    }),
    fc.record({ k: fc.constant('not' as const), e: tie('pred') }),
    fc.record({ k: fc.constant('blit' as const), v: fc.boolean() }),
  ),
}));

// ------------------------------------------------------------------ batch

const schema: ExprSchema = {
  dynamicField: false,
  fields: [
    { name: 'i32', dataType: 'Int32', nullable: true, isPrimaryKey: false },
    { name: 'i64', dataType: 'Int64', nullable: true, isPrimaryKey: true },
    { name: 'f', dataType: 'Float', nullable: true, isPrimaryKey: false },
    { name: 'd', dataType: 'Double', nullable: true, isPrimaryKey: false },
    { name: 's', dataType: 'VarChar', nullable: true, isPrimaryKey: false },
    { name: 'b', dataType: 'Bool', nullable: true, isPrimaryKey: false },
  ],
};

function toBatch(rows: readonly Row[]): MapBatch {
  const n = rows.length;
  const valid = (k: keyof Row): Uint8Array => Uint8Array.from(rows, (r) => (r[k] === null ? 0 : 1));
  const columns = new Map<string, Column>([
    ['i32', { kind: 'int32', data: Int32Array.from(rows, (r) => r.i32 ?? 0), valid: valid('i32') }],
    ['i64', { kind: 'int64', data: BigInt64Array.from(rows, (r) => r.i64 ?? 0n), valid: valid('i64') }],
    ['f', { kind: 'float', data: Float32Array.from(rows, (r) => r.f ?? 0), valid: valid('f') }],
    ['d', { kind: 'double', data: Float64Array.from(rows, (r) => r.d ?? 0), valid: valid('d') }],
    ['s', { kind: 'string', data: rows.map((r) => r.s ?? ''), valid: valid('s') }],
    ['b', { kind: 'bool', data: Uint8Array.from(rows, (r) => (r.b === true ? 1 : 0)), valid: valid('b') }],
  ]);
  return new MapBatch(n, columns);
}

function bigintSafe(_k: string, v: unknown): unknown {
  return typeof v === 'bigint' ? `${v}n` : v;
}

describe('vectorised evaluator against a row-at-a-time reference', () => {
  it('agrees on random expressions and rows, including row subsets', () => {
    fc.assert(
      fc.property(pred, fc.array(arbRow, { minLength: 1, maxLength: 24 }), fc.array(fc.nat(), { maxLength: 8 }), (e, rows, picks) => {
        const text = render(e);
        const compiled = compileFilter(text, schema);
        expect(compiled).not.toBeNull();
        const batch = toBatch(rows);
        const got = Array.from(compiled!.evaluate(batch));
        const want = rows.map((r) => (evalPred(e, r) === true ? 1 : 0));
        if (JSON.stringify(got) !== JSON.stringify(want)) {
          throw new Error(`${text}\nrows ${JSON.stringify(rows, bigintSafe)}\ngot  ${got}\nwant ${want}`);
        }
        const subset = Uint32Array.from(picks, (p) => p % rows.length);
        expect(Array.from(compiled!.evaluate(batch, subset))).toEqual(Array.from(subset, (i) => want[i]));
      }),
      { numRuns: 2000, seed: 20240601 },
    );
  });
});
