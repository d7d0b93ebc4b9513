/**
 * Column-at-a-time kernels. Every predicate kernel returns a fresh Uint8Array of three-valued truth
 * (see `Tri` in values.ts) that its caller may overwrite in place. Typed columns compared with a
 * constant get a dedicated loop per operator; everything else (JSON, arrays, mixed operand types) goes
 * through the row-at-a-time `compareRow`.
 *
 * Loops write `Number(cond) * 3` rather than `cond ? 3 : 0`: V8 compiles the former without a branch,
 * which is several times faster on data where the outcome is unpredictable.
 */
import type { ScalarValue } from '../schema/types.js';
import type { ArithOp, CompareOp } from './ast.js';
import {
  FALSE,
  INT64_MAX,
  INT64_MIN,
  MISSING,
  NULL_TRI,
  NULL_VALUE,
  TRUE,
  bigintFitsDouble,
  bracketBigint,
  compareRow,
  compareValues,
  flipOp,
  opHolds,
  type Const,
  type Tri,
} from './values.js';

/** A column or computed value, `n` rows long. `valid` (1 = present) is undefined when no row is null. */
export type Vec =
  | { readonly t: 'num'; readonly data: Float64Array | Float32Array | Int32Array; readonly valid: Uint8Array | undefined }
  | { readonly t: 'big'; readonly data: BigInt64Array; readonly valid: Uint8Array | undefined }
  | { readonly t: 'bool'; readonly data: Uint8Array; readonly valid: Uint8Array | undefined }
  | { readonly t: 'str'; readonly data: readonly string[]; readonly valid: Uint8Array | undefined }
  /** JSON values or array elements: each a value, JSON null, or MISSING. */
  | { readonly t: 'any'; readonly data: readonly unknown[]; readonly valid: Uint8Array | undefined; readonly absentNotEqual: boolean }
  | { readonly t: 'arr'; readonly data: readonly (readonly ScalarValue[])[]; readonly valid: Uint8Array | undefined }
  | { readonly t: 'const'; readonly value: Const };

/** The BigInt64Array hi/lo word trick below reads the platform's byte order. */
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

export function rowValue(v: Vec, i: number): unknown {
  if (v.t === 'const') return v.value;
  if (v.valid !== undefined && v.valid[i] === 0) return NULL_VALUE;
  switch (v.t) {
    case 'bool':
      return v.data[i] !== 0;
    case 'num':
    case 'big':
    case 'str':
    case 'any':
    case 'arr':
      return v.data[i];
  }
}

/** Rows that are null become NULL in place. */
export function applyNulls(out: Uint8Array, valid: Uint8Array | undefined): Uint8Array {
  if (valid === undefined) return out;
  const n = out.length;
  for (let i = 0; i < n; i++) if (valid[i] === 0) out[i] = NULL_TRI;
  return out;
}

export function constTri(n: number, value: Tri, valid?: Uint8Array): Uint8Array {
  const out = new Uint8Array(n);
  if (value !== 0) out.fill(value);
  return applyNulls(out, valid);
}

export function mergeValid(a: Uint8Array | undefined, b: Uint8Array | undefined): Uint8Array | undefined {
  if (a === undefined) return b;
  if (b === undefined) return a;
  const out = new Uint8Array(a.length);
  for (let i = 0; i < a.length; i++) out[i] = a[i]! & b[i]!;
  return out;
}

// ---------------------------------------------------------------- logical

export function andInPlace(a: Uint8Array, b: Uint8Array): Uint8Array {
  const n = a.length;
  for (let i = 0; i < n; i++) a[i]! &= b[i]!;
  return a;
}

export function orInPlace(a: Uint8Array, b: Uint8Array): Uint8Array {
  const n = a.length;
  for (let i = 0; i < n; i++) a[i]! |= b[i]!;
  return a;
}

export function notInPlace(a: Uint8Array): Uint8Array {
  const n = a.length;
  for (let i = 0; i < n; i++) {
    // Swap the two bits of x ^ 3: FALSE 0 <-> TRUE 3, NULL 1 stays 1.
    const v = a[i]! ^ 3;
    a[i] = ((v & 1) << 1) | (v >> 1);
  }
  return a;
}

/** Final mask: 1 only where the predicate is TRUE. */
export function toMatchMask(a: Uint8Array): Uint8Array {
  const n = a.length;
  for (let i = 0; i < n; i++) a[i] = a[i]! >> 1;
  return a;
}

// ---------------------------------------------------------------- comparison

export function compareVecs(l: Vec, op: CompareOp, r: Vec, n: number): Uint8Array {
  if (l.t === 'const' && r.t !== 'const') return compareVecs(r, flipOp(op), l, n);
  if (r.t === 'const') {
    const c = r.value;
    switch (l.t) {
      case 'num':
        if (typeof c === 'number') return cmpNumConst(l.data, l.valid, op, c, n);
        if (typeof c === 'bigint') return cmpNumBigConst(l.data, l.valid, op, c, n);
        break;
      case 'big':
        if (typeof c === 'bigint' || typeof c === 'number') return cmpBigConst(l.data, l.valid, op, c, n);
        break;
      case 'str':
        if (typeof c === 'string') return cmpStrConst(l.data, l.valid, op, c, n);
        break;
      case 'bool':
        if (typeof c === 'boolean' && (op === '==' || op === '!=')) {
          return cmpBoolConst(l.data, l.valid, (op === '==') === c, n);
        }
        break;
      case 'any': {
        const out = new Uint8Array(n);
        const d = l.data;
        for (let i = 0; i < n; i++) out[i] = compareRow(d[i], op, c, l.absentNotEqual);
        return applyNulls(out, l.valid);
      }
      default:
        break;
    }
  } else if (l.t === 'num' && r.t === 'num') {
    return cmpNumNum(l.data, r.data, op, mergeValid(l.valid, r.valid), n);
  } else if (l.t === 'str' && r.t === 'str') {
    return cmpStrStr(l.data, r.data, op, mergeValid(l.valid, r.valid), n);
  }
  return compareGeneric(l, op, r, n);
}

export function compareGeneric(l: Vec, op: CompareOp, r: Vec, n: number): Uint8Array {
  const out = new Uint8Array(n);
  const absentNotEqual = (l.t === 'any' && l.absentNotEqual) || (r.t === 'any' && r.absentNotEqual);
  for (let i = 0; i < n; i++) out[i] = compareRow(rowValue(l, i), op, rowValue(r, i), absentNotEqual);
  return out;
}

function cmpNumConst(d: Float64Array | Float32Array | Int32Array, valid: Uint8Array | undefined, op: CompareOp, c: number, n: number): Uint8Array {
  const out = new Uint8Array(n);
  switch (op) {
    case '==':
      for (let i = 0; i < n; i++) out[i] = Number(d[i] === c) * 3;
      break;
    case '!=':
      for (let i = 0; i < n; i++) out[i] = Number(d[i] !== c) * 3;
      break;
    case '<':
      for (let i = 0; i < n; i++) out[i] = Number(d[i]! < c) * 3;
      break;
    case '<=':
      for (let i = 0; i < n; i++) out[i] = Number(d[i]! <= c) * 3;
      break;
    case '>':
      for (let i = 0; i < n; i++) out[i] = Number(d[i]! > c) * 3;
      break;
    case '>=':
      for (let i = 0; i < n; i++) out[i] = Number(d[i]! >= c) * 3;
      break;
  }
  return applyNulls(out, valid);
}

/** Doubles against an integer no double represents: compare with its neighbouring doubles instead. */
function cmpNumBigConst(d: Float64Array | Float32Array | Int32Array, valid: Uint8Array | undefined, op: CompareOp, c: bigint, n: number): Uint8Array {
  if (bigintFitsDouble(c)) return cmpNumConst(d, valid, op, Number(c), n);
  const { down, up } = bracketBigint(c);
  switch (op) {
    case '==':
      return constTri(n, FALSE, valid);
    case '!=':
      return constTri(n, TRUE, valid);
    case '<':
    case '<=':
      return cmpNumConst(d, valid, '<=', down, n);
    case '>':
    case '>=':
      return cmpNumConst(d, valid, '>=', up, n);
  }
}

/**
 * int64 column against a number or bigint. A float constant becomes an integer threshold (`x > 1.5` ⇔
 * `x > 1`, `x < 1.5` ⇔ `x <= 1`), so every case ends as an exact int64 comparison.
 */
function cmpBigConst(d: BigInt64Array, valid: Uint8Array | undefined, op: CompareOp, c: bigint | number, n: number): Uint8Array {
  let b: bigint;
  if (typeof c === 'number') {
    if (Number.isNaN(c)) return constTri(n, op === '!=' ? TRUE : FALSE, valid);
    if (!Number.isFinite(c)) return constTri(n, opHolds(op, c > 0 ? -1 : 1) ? TRUE : FALSE, valid);
    if (Number.isInteger(c)) b = BigInt(c);
    else {
      const floor = BigInt(Math.floor(c));
      switch (op) {
        case '==':
          return constTri(n, FALSE, valid);
        case '!=':
          return constTri(n, TRUE, valid);
        case '<':
        case '<=':
          op = '<=';
          b = floor;
          break;
        case '>':
        case '>=':
          op = '>';
          b = floor;
          break;
      }
    }
  } else b = c;
  if (b > INT64_MAX) return constTri(n, opHolds(op, -1) ? TRUE : FALSE, valid);
  if (b < INT64_MIN) return constTri(n, opHolds(op, 1) ? TRUE : FALSE, valid);
  const out = LITTLE_ENDIAN ? cmpBigWords(d, op, b, n) : cmpBigSlow(d, op, b, n);
  return applyNulls(out, valid);
}

/**
 * Reading a BigInt64Array element allocates a BigInt; comparing the two 32-bit halves instead keeps the
 * loop on small integers (signed high word, then unsigned low word).
 */
function cmpBigWords(d: BigInt64Array, op: CompareOp, b: bigint, n: number): Uint8Array {
  const out = new Uint8Array(n);
  const lo = new Uint32Array(d.buffer, d.byteOffset, n * 2);
  const hi = new Int32Array(d.buffer, d.byteOffset, n * 2);
  const ch = Number(BigInt.asIntN(32, b >> 32n));
  const cl = Number(BigInt.asUintN(32, b));
  switch (op) {
    case '==':
      for (let i = 0; i < n; i++) out[i] = (Number(hi[2 * i + 1] === ch) & Number(lo[2 * i] === cl)) * 3;
      break;
    case '!=':
      for (let i = 0; i < n; i++) out[i] = (Number(hi[2 * i + 1] !== ch) | Number(lo[2 * i] !== cl)) * 3;
      break;
    case '<':
      for (let i = 0; i < n; i++) {
        const h = hi[2 * i + 1]!;
        out[i] = (Number(h < ch) | (Number(h === ch) & Number(lo[2 * i]! < cl))) * 3;
      }
      break;
    case '<=':
      for (let i = 0; i < n; i++) {
        const h = hi[2 * i + 1]!;
        out[i] = (Number(h < ch) | (Number(h === ch) & Number(lo[2 * i]! <= cl))) * 3;
      }
      break;
    case '>':
      for (let i = 0; i < n; i++) {
        const h = hi[2 * i + 1]!;
        out[i] = (Number(h > ch) | (Number(h === ch) & Number(lo[2 * i]! > cl))) * 3;
      }
      break;
    case '>=':
      for (let i = 0; i < n; i++) {
        const h = hi[2 * i + 1]!;
        out[i] = (Number(h > ch) | (Number(h === ch) & Number(lo[2 * i]! >= cl))) * 3;
      }
      break;
  }
  return out;
}

function cmpBigSlow(d: BigInt64Array, op: CompareOp, b: bigint, n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    const x = d[i]!;
    out[i] = Number(opHolds(op, x < b ? -1 : x > b ? 1 : 0)) * 3;
  }
  return out;
}

function cmpStrConst(d: readonly string[], valid: Uint8Array | undefined, op: CompareOp, c: string, n: number): Uint8Array {
  const out = new Uint8Array(n);
  switch (op) {
    case '==':
      for (let i = 0; i < n; i++) out[i] = Number(d[i] === c) * 3;
      break;
    case '!=':
      for (let i = 0; i < n; i++) out[i] = Number(d[i] !== c) * 3;
      break;
    case '<':
      for (let i = 0; i < n; i++) out[i] = Number(d[i]! < c) * 3;
      break;
    case '<=':
      for (let i = 0; i < n; i++) out[i] = Number(d[i]! <= c) * 3;
      break;
    case '>':
      for (let i = 0; i < n; i++) out[i] = Number(d[i]! > c) * 3;
      break;
    case '>=':
      for (let i = 0; i < n; i++) out[i] = Number(d[i]! >= c) * 3;
      break;
  }
  return applyNulls(out, valid);
}

function cmpBoolConst(d: Uint8Array, valid: Uint8Array | undefined, wantTrue: boolean, n: number): Uint8Array {
  const out = new Uint8Array(n);
  if (wantTrue) for (let i = 0; i < n; i++) out[i] = Number(d[i] !== 0) * 3;
  else for (let i = 0; i < n; i++) out[i] = Number(d[i] === 0) * 3;
  return applyNulls(out, valid);
}

function cmpNumNum(
  a: Float64Array | Float32Array | Int32Array,
  b: Float64Array | Float32Array | Int32Array,
  op: CompareOp,
  valid: Uint8Array | undefined,
  n: number,
): Uint8Array {
  const out = new Uint8Array(n);
  switch (op) {
    case '==':
      for (let i = 0; i < n; i++) out[i] = Number(a[i] === b[i]) * 3;
      break;
    case '!=':
      for (let i = 0; i < n; i++) out[i] = Number(a[i] !== b[i]) * 3;
      break;
    case '<':
      for (let i = 0; i < n; i++) out[i] = Number(a[i]! < b[i]!) * 3;
      break;
    case '<=':
      for (let i = 0; i < n; i++) out[i] = Number(a[i]! <= b[i]!) * 3;
      break;
    case '>':
      for (let i = 0; i < n; i++) out[i] = Number(a[i]! > b[i]!) * 3;
      break;
    case '>=':
      for (let i = 0; i < n; i++) out[i] = Number(a[i]! >= b[i]!) * 3;
      break;
  }
  return applyNulls(out, valid);
}

function cmpStrStr(a: readonly string[], b: readonly string[], op: CompareOp, valid: Uint8Array | undefined, n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    const x = a[i]!;
    const y = b[i]!;
    out[i] = Number(opHolds(op, x < y ? -1 : x > y ? 1 : 0)) * 3;
  }
  return applyNulls(out, valid);
}

// ---------------------------------------------------------------- in-list

export function inList(v: Vec, items: readonly Const[], n: number): Uint8Array {
  switch (v.t) {
    case 'num': {
      const values: number[] = [];
      for (const x of items) {
        if (typeof x === 'number' && !Number.isNaN(x)) values.push(x);
        else if (typeof x === 'bigint' && bigintFitsDouble(x)) values.push(Number(x));
      }
      const d = v.data;
      const out = new Uint8Array(n);
      if (values.length <= SMALL_LIST) {
        const k = Float64Array.from(values);
        for (let i = 0; i < n; i++) {
          const x = d[i]!;
          let hit = 0;
          for (let j = 0; j < k.length; j++) hit |= Number(x === k[j]);
          out[i] = hit * 3;
        }
      } else {
        const set = new Set(values);
        for (let i = 0; i < n; i++) out[i] = Number(set.has(d[i]!)) * 3;
      }
      return applyNulls(out, v.valid);
    }
    case 'big': {
      const values: bigint[] = [];
      for (const x of items) {
        if (typeof x === 'bigint') values.push(x);
        else if (typeof x === 'number' && Number.isInteger(x)) values.push(BigInt(x));
      }
      const out = LITTLE_ENDIAN ? inBigWords(v.data, values, n) : inBigSlow(v.data, values, n);
      return applyNulls(out, v.valid);
    }
    case 'str': {
      const set = new Set<string>();
      for (const x of items) if (typeof x === 'string') set.add(x);
      const d = v.data;
      const out = new Uint8Array(n);
      for (let i = 0; i < n; i++) out[i] = Number(set.has(d[i]!)) * 3;
      return applyNulls(out, v.valid);
    }
    case 'bool': {
      const hasTrue = items.includes(true);
      const hasFalse = items.includes(false);
      const d = v.data;
      const out = new Uint8Array(n);
      for (let i = 0; i < n; i++) out[i] = Number(d[i] !== 0 ? hasTrue : hasFalse) * 3;
      return applyNulls(out, v.valid);
    }
    default: {
      const out = new Uint8Array(n);
      for (let i = 0; i < n; i++) {
        const x = rowValue(v, i);
        if (x === NULL_VALUE) out[i] = NULL_TRI;
        else out[i] = items.some((item) => compareRow(x, '==', item, false) === TRUE) ? TRUE : FALSE;
      }
      return out;
    }
  }
}

/** Lists up to this long are scanned per row; longer ones are hashed. */
const SMALL_LIST = 8;

/** int64 membership on the 32-bit halves (no BigInt per row): hash on the low word, then check the high. */
function inBigWords(d: BigInt64Array, values: readonly bigint[], n: number): Uint8Array {
  const out = new Uint8Array(n);
  const lo = new Uint32Array(d.buffer, d.byteOffset, n * 2);
  const hi = new Int32Array(d.buffer, d.byteOffset, n * 2);
  const inRange = values.filter((b) => b >= INT64_MIN && b <= INT64_MAX);
  const his = Int32Array.from(inRange, (b) => Number(BigInt.asIntN(32, b >> 32n)));
  const los = Uint32Array.from(inRange, (b) => Number(BigInt.asUintN(32, b)));
  if (inRange.length <= SMALL_LIST) {
    for (let i = 0; i < n; i++) {
      const h = hi[2 * i + 1]!;
      const l = lo[2 * i]!;
      let hit = 0;
      for (let j = 0; j < his.length; j++) hit |= Number(h === his[j]) & Number(l === los[j]);
      out[i] = hit * 3;
    }
    return out;
  }
  const byLow = new Map<number, number[]>();
  for (let j = 0; j < los.length; j++) {
    const list = byLow.get(los[j]!);
    if (list === undefined) byLow.set(los[j]!, [his[j]!]);
    else list.push(his[j]!);
  }
  for (let i = 0; i < n; i++) {
    const list = byLow.get(lo[2 * i]!);
    out[i] = list !== undefined && list.includes(hi[2 * i + 1]!) ? 3 : 0;
  }
  return out;
}

function inBigSlow(d: BigInt64Array, values: readonly bigint[], n: number): Uint8Array {
  const set = new Set(values);
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = Number(set.has(d[i]!)) * 3;
  return out;
}

// ---------------------------------------------------------------- row-at-a-time predicates

/** `test` on each row value that is not null; null rows are NULL. */
export function mapRows(v: Vec, n: number, test: (x: unknown) => boolean): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    const x = rowValue(v, i);
    out[i] = x === NULL_VALUE ? NULL_TRI : test(x) ? TRUE : FALSE;
  }
  return out;
}

export function containsValue(arr: readonly unknown[], x: Const): boolean {
  for (const e of arr) if (compareValues(e, x) === 0) return true;
  return false;
}

// ---------------------------------------------------------------- arithmetic

export type ArithMode = 'float' | 'int' | 'bigint';

function toNumberAt(v: Vec, i: number): number {
  switch (v.t) {
    case 'const':
      return typeof v.value === 'bigint' ? Number(v.value) : (v.value as number);
    case 'big':
      return Number(v.data[i]!);
    case 'num':
      return v.data[i]!;
    default:
      return NaN;
  }
}

function validOf(v: Vec): Uint8Array | undefined {
  return v.t === 'const' ? undefined : v.valid;
}

/**
 * Arithmetic on numeric vectors. `float`: IEEE doubles. `int`: integers whose magnitude the compiler has
 * bounded below 2^53, computed exactly in doubles (division truncates toward zero as in C++). `bigint`:
 * int64 with wrap-around. Integer division or modulo by zero makes the row null.
 */
export function arith(op: ArithOp, l: Vec, r: Vec, mode: ArithMode, n: number): Vec {
  if (l.t === 'any' || r.t === 'any') return arithGeneric(op, l, r, n);
  let valid = mergeValid(validOf(l), validOf(r));
  if (mode === 'bigint' && op !== '**') {
    const out = new BigInt64Array(n);
    let zeroRows: Uint8Array | undefined;
    for (let i = 0; i < n; i++) {
      const a = toBigAt(l, i);
      const b = toBigAt(r, i);
      if ((op === '/' || op === '%') && b === 0n) {
        zeroRows ??= new Uint8Array(n).fill(1);
        zeroRows[i] = 0;
        continue;
      }
      out[i] = bigOp(op, a, b);
    }
    return { t: 'big', data: out, valid: mergeValid(valid, zeroRows) };
  }
  const out = new Float64Array(n);
  const integer = mode === 'int';
  if (l.t === 'num' && r.t === 'const') {
    // The hot `field op constant` shapes get one loop each.
    const c = toNumberAt(r, 0);
    if (integer && (op === '/' || op === '%') && c === 0) {
      return { t: 'num', data: out, valid: new Uint8Array(n) };
    }
    const a = l.data;
    switch (op) {
      case '+':
        for (let i = 0; i < n; i++) out[i] = a[i]! + c;
        break;
      case '-':
        for (let i = 0; i < n; i++) out[i] = a[i]! - c;
        break;
      case '*':
        for (let i = 0; i < n; i++) out[i] = a[i]! * c;
        break;
      case '/':
        if (integer) for (let i = 0; i < n; i++) out[i] = Math.trunc(a[i]! / c);
        else for (let i = 0; i < n; i++) out[i] = a[i]! / c;
        break;
      case '%':
        for (let i = 0; i < n; i++) out[i] = a[i]! % c;
        break;
      case '**':
        for (let i = 0; i < n; i++) out[i] = a[i]! ** c;
        break;
    }
    if (integer) dropNegativeZero(out, op);
    return { t: 'num', data: out, valid };
  }
  let zeroRows: Uint8Array | undefined;
  for (let i = 0; i < n; i++) {
    const a = toNumberAt(l, i);
    const b = toNumberAt(r, i);
    if (integer && (op === '/' || op === '%') && b === 0) {
      zeroRows ??= new Uint8Array(n).fill(1);
      zeroRows[i] = 0;
      continue;
    }
    out[i] = numOp(op, a, b, integer);
  }
  if (integer) dropNegativeZero(out, op);
  valid = mergeValid(valid, zeroRows);
  return { t: 'num', data: out, valid };
}

/**
 * Integers have no -0, but doubles produce it (`-3 % 3`, `0 * -1`, `trunc(-0.5)`), and it would show
 * later as `1 / x` or `x ** -1` giving -Infinity.
 */
function dropNegativeZero(out: Float64Array, op: ArithOp): void {
  if (op !== '*' && op !== '/' && op !== '%') return;
  for (let i = 0; i < out.length; i++) out[i]! += 0;
}

function toBigAt(v: Vec, i: number): bigint {
  switch (v.t) {
    case 'const':
      return typeof v.value === 'bigint' ? v.value : BigInt(v.value as number);
    case 'big':
      return v.data[i]!;
    case 'num': {
      const x = v.data[i]!;
      return Number.isInteger(x) ? BigInt(x) : 0n;
    }
    default:
      return 0n;
  }
}

export function bigOp(op: ArithOp, a: bigint, b: bigint): bigint {
  switch (op) {
    case '+':
      return BigInt.asIntN(64, a + b);
    case '-':
      return BigInt.asIntN(64, a - b);
    case '*':
      return BigInt.asIntN(64, a * b);
    case '/':
      return BigInt.asIntN(64, a / b);
    case '%':
      return BigInt.asIntN(64, a % b);
    case '**': {
      const p = Number(a) ** Number(b);
      return Number.isFinite(p) ? BigInt.asIntN(64, BigInt(Math.trunc(p))) : 0n;
    }
  }
}

export function numOp(op: ArithOp, a: number, b: number, integer: boolean): number {
  switch (op) {
    case '+':
      return a + b;
    case '-':
      return a - b;
    case '*':
      return a * b;
    case '/':
      return integer ? Math.trunc(a / b) : a / b;
    case '%':
      return a % b;
    case '**':
      return a ** b;
  }
}

/** Unary minus. Floats negate (`-x`, so -0 and 0 swap as IEEE says); integers compute `0 - x`. */
export function negate(v: Vec, mode: ArithMode, n: number): Vec {
  if (mode === 'float' && v.t !== 'any') {
    const out = new Float64Array(n);
    for (let i = 0; i < n; i++) out[i] = -toNumberAt(v, i);
    return { t: 'num', data: out, valid: validOf(v) };
  }
  return arith('-', { t: 'const', value: mode === 'bigint' ? 0n : 0 }, v, mode, n);
}

/** JSON operands: per row, integers (bigint or integral numbers) use int64 rules, anything else doubles. */
function arithGeneric(op: ArithOp, l: Vec, r: Vec, n: number): Vec {
  const out: unknown[] = new Array(n);
  let valid: Uint8Array | undefined;
  for (let i = 0; i < n; i++) {
    const a = rowValue(l, i);
    const b = rowValue(r, i);
    if (a === NULL_VALUE || b === NULL_VALUE) {
      valid ??= new Uint8Array(n).fill(1);
      valid[i] = 0;
      continue;
    }
    out[i] = arithValue(op, a, b);
  }
  return { t: 'any', data: out, valid, absentNotEqual: true };
}

export function arithValue(op: ArithOp, a: unknown, b: unknown): unknown {
  const ia = typeof a === 'bigint' || (typeof a === 'number' && Number.isInteger(a));
  const ib = typeof b === 'bigint' || (typeof b === 'number' && Number.isInteger(b));
  if (ia && ib && op !== '**') {
    const x = BigInt(a as number | bigint);
    const y = BigInt(b as number | bigint);
    if ((op === '/' || op === '%') && y === 0n) return MISSING;
    return bigOp(op, x, y);
  }
  const fa = typeof a === 'number' ? a : typeof a === 'bigint' ? Number(a) : undefined;
  const fb = typeof b === 'number' ? b : typeof b === 'bigint' ? Number(b) : undefined;
  if (fa === undefined || fb === undefined) return MISSING;
  return numOp(op, fa, fb, false);
}
