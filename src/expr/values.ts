/**
 * Value-level semantics shared by the vectorised kernels and the row-at-a-time paths: the three-valued
 * truth encoding, exact comparison between doubles and int64 (bigint) values, and the generic ordering
 * used for JSON and mixed operands.
 */
import type { CompareOp } from './ast.js';

/**
 * Three-valued truth as one byte per row: FALSE 0b00, NULL 0b01, TRUE 0b11. Then `and` is bitwise `&`,
 * `or` is `|`, `not` swaps the two bits of `x ^ 3`, and "matches" is `x >> 1`: every logical kernel is
 * a branch-free loop.
 */
export type Tri = 0 | 1 | 3;
export const FALSE = 0;
export const NULL_TRI = 1;
export const TRUE = 3;

export function notTri(x: Tri): Tri {
  return x === TRUE ? FALSE : x === FALSE ? TRUE : NULL_TRI;
}

/** A constant: int literals are bigint, float literals number; lists hold constants. */
export type Const = bigint | number | string | boolean | readonly Const[];

/** Row value sentinels for the generic path. NULL: the row's field is null. MISSING: a JSON key or array index that is absent. */
export const NULL_VALUE: unique symbol = Symbol('null');
export const MISSING: unique symbol = Symbol('missing');

export const INT64_MIN = -(1n << 63n);
export const INT64_MAX = (1n << 63n) - 1n;

/** -1, 0, 1 for a double against a bigint, exactly; NaN when `x` is NaN. */
export function compareNumberBigint(x: number, b: bigint): number {
  if (Number.isNaN(x)) return NaN;
  if (x === Infinity) return 1;
  if (x === -Infinity) return -1;
  if (Number.isInteger(x)) {
    const bx = BigInt(x);
    return bx < b ? -1 : bx > b ? 1 : 0;
  }
  // x lies strictly between floor(x) and floor(x)+1, both integers.
  const f = BigInt(Math.floor(x));
  return f < b ? -1 : 1;
}

/**
 * Ordering of two present values: -1, 0, 1, or NaN when they are unequal but not ordered (different
 * types, NaN, booleans or arrays that differ). `==` is `=== 0`, `!=` is `!== 0`, `<` is `< 0` (NaN fails).
 */
export function compareValues(a: unknown, b: unknown): number {
  const ta = typeof a;
  const tb = typeof b;
  if (ta === 'number') {
    if (tb === 'number') {
      const x = a as number;
      const y = b as number;
      return x < y ? -1 : x > y ? 1 : x === y ? 0 : NaN;
    }
    if (tb === 'bigint') return compareNumberBigint(a as number, b as bigint);
    return NaN;
  }
  if (ta === 'bigint') {
    if (tb === 'bigint') {
      const x = a as bigint;
      const y = b as bigint;
      return x < y ? -1 : x > y ? 1 : 0;
    }
    if (tb === 'number') return -compareNumberBigint(b as number, a as bigint);
    return NaN;
  }
  if (ta === 'string') {
    if (tb !== 'string') return NaN;
    const x = a as string;
    const y = b as string;
    return x < y ? -1 : x > y ? 1 : 0;
  }
  if (ta === 'boolean') return tb === 'boolean' && a === b ? 0 : NaN;
  if (Array.isArray(a)) {
    if (!Array.isArray(b) || a.length !== b.length) return NaN;
    for (let i = 0; i < a.length; i++) {
      if (compareValues(a[i], b[i]) !== 0) return NaN;
    }
    return 0;
  }
  return NaN;
}

export function opHolds(op: CompareOp, c: number): boolean {
  switch (op) {
    case '==':
      return c === 0;
    case '!=':
      return c !== 0;
    case '<':
      return c < 0;
    case '<=':
      return c <= 0;
    case '>':
      return c > 0;
    case '>=':
      return c >= 0;
  }
}

/** `a op b` ⇔ `b flip(op) a`. */
export function flipOp(op: CompareOp): CompareOp {
  switch (op) {
    case '<':
      return '>';
    case '<=':
      return '>=';
    case '>':
      return '<';
    case '>=':
      return '<=';
    default:
      return op;
  }
}

function isAbsent(v: unknown): boolean {
  return v === MISSING || v === null || v === undefined;
}

/**
 * Truth of `a op b` for row values (NULL_VALUE, MISSING, or present values). A null row is unknown. An
 * absent JSON key is not null: Milvus makes every comparison with it false except `!=` (true); array
 * indexes out of range are false for every operator (`absentNotEqual` false).
 */
export function compareRow(a: unknown, op: CompareOp, b: unknown, absentNotEqual: boolean): Tri {
  if (a === NULL_VALUE || b === NULL_VALUE) return NULL_TRI;
  if (isAbsent(a) || isAbsent(b)) return op === '!=' && absentNotEqual ? TRUE : FALSE;
  return opHolds(op, compareValues(a, b)) ? TRUE : FALSE;
}

/** Whether a row value counts as absent for `is null`. */
export function isAbsentValue(v: unknown): boolean {
  return v === NULL_VALUE || isAbsent(v);
}

/** Adjacent doubles around a bigint that no double represents exactly: down < b < up. */
export function bracketBigint(b: bigint): { down: number; up: number } {
  const n = Number(b);
  if (n === Infinity) return { down: Number.MAX_VALUE, up: Infinity };
  if (n === -Infinity) return { down: -Infinity, up: -Number.MAX_VALUE };
  return BigInt(n) < b ? { down: n, up: nextDouble(n, 1) } : { down: nextDouble(n, -1), up: n };
}

/** The neighbouring double of a finite non-zero `x` towards +Infinity (dir 1) or -Infinity (dir -1). */
function nextDouble(x: number, dir: 1 | -1): number {
  const f = new Float64Array([x]);
  const bits = new BigInt64Array(f.buffer);
  const away = x > 0 === dir > 0;
  bits[0] = (bits[0] as bigint) + (away ? 1n : -1n);
  return f[0] as number;
}

/** Exactly representable as a double? */
export function bigintFitsDouble(b: bigint): boolean {
  const n = Number(b);
  return Number.isFinite(n) && BigInt(n) === b;
}
