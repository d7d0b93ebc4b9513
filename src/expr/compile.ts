/**
 * Type-checks an expression tree against a schema and turns it into a tree of column-at-a-time
 * evaluators. The tree of closures is per expression node, not per row: each node produces a whole
 * column (a `Vec` of values, or a Uint8Array of three-valued truth) for the batch.
 *
 * Semantics, following Milvus:
 * - A comparison involving a null field value is unknown (NULL); `not NULL` is NULL; a row matches only
 *   when the predicate is TRUE.
 * - A JSON key that is absent (or holds JSON null, or a value of another type) is not null: every
 *   comparison with it is false except `!=`, which is true. Array indexes past the end are false for
 *   every operator, `!=` included.
 * - Integer arithmetic is int64 with wrap-around; division truncates; `**` is always floating point.
 *   Comparisons between integers and doubles are exact (int64 values beyond 2^53 included).
 * - A column absent from the batch reads as all null (a field added after the data was written); an
 *   absent `$meta` column reads as rows without dynamic keys.
 */
import { quiverError } from '../common/errors.js';
import { DYNAMIC_FIELD_NAME, type Column, type ColumnBatch, type DataType, type ScalarType } from '../schema/types.js';
import type { Interval } from '../schema/timestamptz.js';
import type { GeoFunction } from './geo-functions.js';
import { MAX_EXPR_DEPTH, type ArithOp, type CompareOp, type Expr, type FunctionName, type PathElement } from './ast.js';
import {
  andInPlace,
  applyNulls,
  arith,
  bigOp,
  compareVecs,
  constTri,
  containsValue,
  inList,
  mapRows,
  negate,
  notInPlace,
  numOp,
  orInPlace,
  rowValue,
  toMatchMask,
  type ArithMode,
  type Vec,
} from './kernels.js';
import { likeMatcher } from './like.js';
import { geoCall, intervalVal, isoVal, shiftByInterval, timestamptzOperand } from './geo-time-compile.js';
import { phraseMatchRows, textMatchRows, type TextTokenizer } from './text-match.js';
import { FALSE, MISSING, TRUE, compareRow, isAbsentValue, notTri, type Const, type Tri } from './values.js';

type ContainsFunction = Extract<FunctionName, `array_contains${string}` | `json_contains${string}`>;

export interface ExprField {
  readonly name: string;
  readonly dataType: DataType;
  readonly elementType?: ScalarType | undefined;
  readonly nullable: boolean;
  readonly isPrimaryKey: boolean;
  /** VarChar fields with enable_match: the field's analyzer, which text_match and phrase_match require. */
  readonly textMatch?: TextTokenizer | undefined;
}

export interface ExprSchema {
  readonly fields: readonly ExprField[];
  /** true: unknown identifiers are keys of the JSON column '$meta'. */
  readonly dynamicField: boolean;
  /** Zone of Timestamptz literals written without an offset (the collection's `collection.timezone`; UTC when unset). */
  readonly timezone?: string | undefined;
}

export interface CompiledExpr {
  /** 1 = row matches. Rows where the predicate is null/unknown do not match. */
  evaluate(batch: ColumnBatch, rows?: Uint32Array): Uint8Array;
  /** Columns it reads (including '$meta' for dynamic keys). */
  readonly fieldNames: readonly string[];
}

type StaticType = 'int' | 'float' | 'string' | 'bool' | 'json' | 'array' | 'list' | 'geometry' | 'timestamptz' | 'interval';

/** A compiled value-producing node. */
export interface Val {
  readonly st: StaticType;
  /** For 'int': an upper bound of |value| (decides whether doubles compute it exactly). */
  readonly bound: number;
  readonly elementType?: ScalarType | undefined;
  /** Names the operand in error messages: `field 'title' (VarChar)`, `integer 3`. */
  readonly desc: string;
  /** Set when the node is a field, JSON path, dynamic key or array element reference. */
  readonly isReference: boolean;
  readonly konst?: Const;
  /** Set on an `INTERVAL '...'` literal (its static type is 'interval'). */
  readonly interval?: Interval | undefined;
  readonly ev: (ctx: EvalContext) => Vec;
}

/** A compiled predicate node; `konst` when its value is known without data. */
export interface Pred {
  readonly konst?: Tri;
  readonly ev: (ctx: EvalContext) => Uint8Array;
}

const TWO_POW_53 = 2 ** 53;
const INT_BOUND: Readonly<Record<string, number>> = { Int8: 2 ** 7, Int16: 2 ** 15, Int32: 2 ** 31, Int64: 2 ** 63 };

function invalid(reason: string): Error {
  return quiverError('ExprInvalid', reason);
}

function staticOf(t: DataType): StaticType | undefined {
  switch (t) {
    case 'Bool':
      return 'bool';
    case 'Int8':
    case 'Int16':
    case 'Int32':
    case 'Int64':
      return 'int';
    case 'Float':
    case 'Double':
      return 'float';
    case 'VarChar':
      return 'string';
    case 'JSON':
      return 'json';
    case 'Array':
      return 'array';
    case 'Geometry':
      return 'geometry';
    case 'Timestamptz':
      return 'timestamptz';
    case 'FloatVector':
    case 'BinaryVector':
    case 'Float16Vector':
    case 'BFloat16Vector':
    case 'Int8Vector':
    case 'SparseFloatVector':
    case 'ArrayOfStruct':
      return undefined;
  }
}

function describeConst(v: Const): string {
  switch (typeof v) {
    case 'bigint':
      return `integer ${v}`;
    case 'number':
      return `float ${v}`;
    case 'string':
      return `string ${JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}...` : v)}`;
    case 'boolean':
      return `bool ${v}`;
    default:
      return 'list';
  }
}

function staticOfConst(v: Const): StaticType {
  switch (typeof v) {
    case 'bigint':
      return 'int';
    case 'number':
      return 'float';
    case 'string':
      return 'string';
    case 'boolean':
      return 'bool';
    default:
      return 'list';
  }
}

/** The type an arithmetic result reports in errors. */
function typeNameOf(st: StaticType): string {
  return st === 'int' ? 'Int64' : st === 'float' ? 'Double' : 'JSON';
}

function isNumeric(st: StaticType): boolean {
  return st === 'int' || st === 'float';
}

function constFitsStatic(st: StaticType, v: Const): boolean {
  switch (st) {
    case 'int':
    case 'float':
      return typeof v === 'bigint' || typeof v === 'number';
    case 'string':
      return typeof v === 'string';
    case 'bool':
      return typeof v === 'boolean';
    case 'timestamptz':
    case 'geometry':
    case 'interval':
      // No list literal holds these: `tsz in [...]` is refused rather than compared as plain integers.
      return false;
    default:
      return true;
  }
}

function isZero(v: Const | undefined): boolean {
  return v === 0n || v === 0;
}

/** Walks a JSON value along `path`; an absent step yields MISSING. */
function walkJson(root: unknown, path: readonly PathElement[]): unknown {
  let v = root;
  for (const key of path) {
    if (v === null || typeof v !== 'object') return MISSING;
    if (Array.isArray(v)) {
      if (typeof key !== 'number' || key >= v.length) return MISSING;
      v = v[key];
    } else {
      const k = String(key);
      if (!Object.prototype.hasOwnProperty.call(v, k)) return MISSING;
      v = (v as Record<string, unknown>)[k];
    }
    if (v === undefined) return MISSING;
  }
  return v;
}

/** Per-evaluation state: the batch, the optional row subset (columns are gathered once), memoised paths. */
export class EvalContext {
  readonly n: number;
  readonly #batch: ColumnBatch;
  readonly #rows: Uint32Array | undefined;
  readonly #columns = new Map<string, Column | undefined>();
  readonly #memo = new Map<string, Vec>();

  constructor(batch: ColumnBatch, rows: Uint32Array | undefined) {
    this.#batch = batch;
    this.#rows = rows;
    this.n = rows === undefined ? batch.numRows : rows.length;
  }

  column(name: string): Column | undefined {
    if (this.#columns.has(name)) return this.#columns.get(name);
    const c = this.#batch.column(name);
    const g = c === undefined || this.#rows === undefined ? c : gatherColumn(c, this.#rows);
    this.#columns.set(name, g);
    return g;
  }

  memo(key: string, make: () => Vec): Vec {
    let v = this.#memo.get(key);
    if (v === undefined) {
      v = make();
      this.#memo.set(key, v);
    }
    return v;
  }
}

function gatherTyped<T extends Uint8Array | Int32Array | Float32Array | Float64Array | BigInt64Array>(
  src: T,
  rows: Uint32Array,
  make: (n: number) => T,
): T {
  const out = make(rows.length);
  for (let i = 0; i < rows.length; i++) out[i] = src[rows[i]!]!;
  return out;
}

function gatherArray<T>(src: readonly T[], rows: Uint32Array): T[] {
  const out: T[] = new Array<T>(rows.length);
  for (let i = 0; i < rows.length; i++) out[i] = src[rows[i]!] as T;
  return out;
}

function gatherColumn(c: Column, rows: Uint32Array): Column {
  const valid = c.valid === undefined ? undefined : gatherTyped(c.valid, rows, (n) => new Uint8Array(n));
  switch (c.kind) {
    case 'bool':
      return { kind: 'bool', data: gatherTyped(c.data, rows, (n) => new Uint8Array(n)), valid };
    case 'int32':
      return { kind: 'int32', data: gatherTyped(c.data, rows, (n) => new Int32Array(n)), valid };
    case 'int64':
      return { kind: 'int64', data: gatherTyped(c.data, rows, (n) => new BigInt64Array(n)), valid };
    case 'float':
      return { kind: 'float', data: gatherTyped(c.data, rows, (n) => new Float32Array(n)), valid };
    case 'double':
      return { kind: 'double', data: gatherTyped(c.data, rows, (n) => new Float64Array(n)), valid };
    case 'string':
      return { kind: 'string', data: gatherArray(c.data, rows), valid };
    case 'json':
      return { kind: 'json', data: gatherArray(c.data, rows), valid };
    case 'array':
      return { kind: 'array', elementType: c.elementType, data: gatherArray(c.data, rows), valid };
    case 'vector':
    case 'bytevec':
    case 'sparse':
    case 'struct':
      return c; // never read by expressions
  }
}

function allNull(n: number): Vec {
  return { t: 'any', data: [], valid: new Uint8Array(n), absentNotEqual: true };
}

function columnVec(c: Column | undefined, n: number): Vec {
  if (c === undefined) return allNull(n);
  switch (c.kind) {
    case 'bool':
      return { t: 'bool', data: c.data, valid: c.valid };
    case 'int32':
    case 'float':
    case 'double':
      return { t: 'num', data: c.data, valid: c.valid };
    case 'int64':
      return { t: 'big', data: c.data, valid: c.valid };
    case 'string':
      return { t: 'str', data: c.data, valid: c.valid };
    case 'json':
      return jsonVec(c, [], n);
    case 'array':
      return { t: 'arr', data: c.data, valid: c.valid };
    case 'vector':
    case 'bytevec':
    case 'sparse':
    case 'struct':
      return allNull(n);
  }
}

function jsonVec(c: Column | undefined, path: readonly PathElement[], n: number, dynamic = false): Vec {
  if (c === undefined || c.kind !== 'json') {
    if (!dynamic) return allNull(n);
    return { t: 'any', data: new Array<unknown>(n).fill(MISSING), valid: undefined, absentNotEqual: true };
  }
  const data: unknown[] = new Array<unknown>(n);
  let valid: Uint8Array | undefined;
  for (let i = 0; i < n; i++) {
    const root = c.data[i];
    if (root === undefined || (c.valid !== undefined && c.valid[i] === 0)) {
      valid ??= new Uint8Array(n).fill(1);
      valid[i] = 0;
      continue;
    }
    data[i] = path.length === 0 ? root : walkJson(root, path);
  }
  return { t: 'any', data, valid, absentNotEqual: true };
}

function constVal(v: Const): Val {
  const vec: Vec = { t: 'const', value: v };
  return {
    st: staticOfConst(v),
    bound: typeof v === 'bigint' ? Math.abs(Number(v)) : Infinity,
    desc: describeConst(v),
    isReference: false,
    konst: v,
    ev: () => vec,
  };
}

function constPred(k: Tri): Pred {
  return { konst: k, ev: (ctx) => constTri(ctx.n, k) };
}

function foldArith(op: ArithOp, a: Const, b: Const): Const {
  if (typeof a === 'bigint' && typeof b === 'bigint' && op !== '**') return bigOp(op, a, b);
  return numOp(op, Number(a), Number(b), false);
}

function arithBound(op: ArithOp, a: number, b: number): number {
  switch (op) {
    case '+':
    case '-':
      return a + b;
    case '*':
      return a * b;
    case '/':
      return a;
    case '%':
      return Math.min(a, b);
    case '**':
      return Infinity;
  }
}

class CompiledFilter implements CompiledExpr {
  readonly fieldNames: readonly string[];
  readonly #root: Pred;

  constructor(root: Pred, fieldNames: readonly string[]) {
    this.#root = root;
    this.fieldNames = fieldNames;
  }

  evaluate(batch: ColumnBatch, rows?: Uint32Array): Uint8Array {
    if (rows !== undefined) {
      for (let i = 0; i < rows.length; i++) {
        if (rows[i]! >= batch.numRows) {
          throw new Error(`assertion failed: row offset ${rows[i]} is outside the batch of ${batch.numRows} rows`);
        }
      }
    }
    const ctx = new EvalContext(batch, rows);
    const tri = this.#root.konst !== undefined ? constTri(ctx.n, this.#root.konst) : this.#root.ev(ctx);
    return toMatchMask(tri);
  }
}

export function compileExpr(expr: Expr, schema: ExprSchema): CompiledExpr {
  return new Compiler(schema).compile(expr);
}

class Compiler {
  readonly #schema: ExprSchema;
  readonly #fields: ReadonlyMap<string, ExprField>;
  readonly #fieldNames = new Set<string>();
  #depth = 0;

  constructor(schema: ExprSchema) {
    this.#schema = schema;
    this.#fields = new Map(schema.fields.map((f) => [f.name, f]));
  }

  compile(expr: Expr): CompiledExpr {
    const root = this.#pred(expr);
    return new CompiledFilter(root, [...this.#fieldNames]);
  }

  #enter(e: Expr): void {
    if (++this.#depth > MAX_EXPR_DEPTH) {
      throw invalid(`expression nested too deeply (limit ${MAX_EXPR_DEPTH}) at position ${e.pos}`);
    }
  }

  // ------------------------------------------------------------ predicates

  #pred(e: Expr): Pred {
    this.#enter(e);
    try {
      return this.#predInner(e);
    } finally {
      this.#depth--;
    }
  }

  #predInner(e: Expr): Pred {
    switch (e.kind) {
      case 'logical': {
        const operands = e.op === 'or' ? this.#groupEqualities(e.operands) : e.operands;
        return this.#logical(
          e.op,
          operands.map((o) => this.#pred(o)),
        );
      }
      case 'not': {
        const p = this.#pred(e.operand);
        if (p.konst !== undefined) return constPred(notTri(p.konst));
        return { ev: (ctx) => notInPlace(p.ev(ctx)) };
      }
      case 'compare':
        return this.#compare(e.op, this.#value(e.left), this.#value(e.right), e.pos);
      case 'range':
        return this.#range(e);
      case 'in':
        return this.#in(e.operand, e.list, e.negated, e.pos);
      case 'like':
        return this.#like(e.operand, e.pattern, e.pos);
      case 'isNull':
        return this.#isNull(e.operand, e.negated, e.pos);
      case 'exists':
        return this.#exists(e.operand, e.pos);
      case 'call':
        if (e.fn === 'array_length' || e.fn === 'iso' || e.fn === 'interval') break;
        if (e.fn === 'text_match' || e.fn === 'phrase_match') return this.#textMatch(e.fn, e.args, e.pos);
        if (e.fn.startsWith('st_'))
          return geoCall(
            e.fn as GeoFunction,
            e.args.map((a) => this.#value(a)),
            e.pos,
          );
        return this.#contains(e.fn as ContainsFunction, e.args, e.pos);
      case 'ident':
      case 'bool':
        return this.#truthy(this.#value(e), e.pos);
      case 'int':
      case 'float':
      case 'string':
      case 'list':
      case 'arith':
      case 'neg':
        break;
      default: {
        const never: never = e;
        throw invalid(`unknown expression node ${JSON.stringify((never as { kind: unknown }).kind)}`);
      }
    }
    throw invalid(`the expression at position ${e.pos} is not a boolean expression`);
  }

  /**
   * `x == 1 or x == 2 or ...` on a scalar field becomes `x in [1, 2, ...]` (same three-valued result):
   * one hashed pass over the column instead of one pass per term, which matters for long generated
   * or-chains such as deletes by id.
   */
  #groupEqualities(operands: readonly Expr[]): readonly Expr[] {
    const groups = new Map<string, { readonly ident: Expr; readonly items: Expr[]; readonly at: number }>();
    const out: (Expr | undefined)[] = [];
    for (const o of operands) {
      if (o.kind === 'compare' && o.op === '==') {
        const [ident, lit] = o.left.kind === 'ident' ? [o.left, o.right] : [o.right, o.left];
        const literal = lit.kind === 'int' || lit.kind === 'float' || lit.kind === 'string' || lit.kind === 'bool';
        if (ident.kind === 'ident' && ident.path.length === 0 && literal) {
          const field = this.#fields.get(ident.name);
          const st = field === undefined ? undefined : staticOf(field.dataType);
          if (st !== undefined && st !== 'json' && st !== 'array' && st !== 'timestamptz' && st !== 'geometry') {
            const g = groups.get(ident.name);
            if (g === undefined) {
              groups.set(ident.name, { ident, items: [lit], at: out.length });
              out.push(o);
            } else {
              g.items.push(lit);
              out.push(undefined);
            }
            continue;
          }
        }
      }
      out.push(o);
    }
    for (const g of groups.values()) {
      if (g.items.length > 1) {
        const pos = g.ident.pos;
        out[g.at] = { kind: 'in', operand: g.ident, list: { kind: 'list', items: g.items, pos }, negated: false, pos };
      }
    }
    return out.filter((o): o is Expr => o !== undefined);
  }

  #logical(op: 'and' | 'or', parts: readonly Pred[]): Pred {
    // and: FALSE absorbs, TRUE is the identity; or: the reverse.
    const absorbing: Tri = op === 'and' ? FALSE : TRUE;
    const identity: Tri = op === 'and' ? TRUE : FALSE;
    if (parts.some((p) => p.konst === absorbing)) return constPred(absorbing);
    const rest = parts.filter((p) => p.konst !== identity);
    if (rest.length === 0) return constPred(identity);
    if (rest.length === 1) return rest[0] as Pred;
    const combine = op === 'and' ? andInPlace : orInPlace;
    return {
      ev: (ctx) => {
        let acc = (rest[0] as Pred).ev(ctx);
        for (let i = 1; i < rest.length; i++) acc = combine(acc, (rest[i] as Pred).ev(ctx));
        return acc;
      },
    };
  }

  #checkComparable(l: Val, op: CompareOp, r: Val, pos: number): void {
    const relational = op !== '==' && op !== '!=';
    if (l.st === 'json' || r.st === 'json') return;
    const bad = (): Error => invalid(`cannot compare ${l.desc} with ${r.desc} using '${op}' at position ${pos}`);
    if (l.st === 'list' || r.st === 'list' || l.st === 'array' || r.st === 'array') {
      // Only whole-array equality with a list literal: `arr == [1, 2]`.
      const arrayVsList = (l.st === 'array' || l.st === 'list') && (r.st === 'array' || r.st === 'list') && l.st !== r.st;
      const listVsList = l.st === 'list' && r.st === 'list';
      if (!(arrayVsList || listVsList) || relational) throw bad();
      return;
    }
    if (isNumeric(l.st) && isNumeric(r.st)) return;
    if (l.st === 'string' && r.st === 'string') return;
    if (l.st === 'bool' && r.st === 'bool' && !relational) return;
    if (l.st === 'timestamptz' && r.st === 'timestamptz') return;
    throw bad();
  }

  #compare(op: CompareOp, lIn: Val, rIn: Val, pos: number): Pred {
    // A Timestamptz compared with a plain string literal reads the string as an ISO timestamp.
    const l = timestamptzOperand(lIn, rIn, this.#schema.timezone);
    const r = timestamptzOperand(rIn, lIn, this.#schema.timezone);
    this.#checkComparable(l, op, r, pos);
    if (l.konst !== undefined && r.konst !== undefined) return constPred(compareRow(l.konst, op, r.konst, true));
    return { ev: (ctx) => compareVecs(l.ev(ctx), op, r.ev(ctx), ctx.n) };
  }

  #range(e: Extract<Expr, { kind: 'range' }>): Pred {
    const lowerIn = this.#value(e.lower);
    const operand = this.#value(e.operand);
    const upperIn = this.#value(e.upper);
    for (const bound of [lowerIn, upperIn]) {
      if (bound.konst === undefined) {
        throw invalid(`the bounds of a range expression must be constants, got ${bound.desc} at position ${e.pos}`);
      }
    }
    const lower = timestamptzOperand(lowerIn, operand, this.#schema.timezone);
    const upper = timestamptzOperand(upperIn, operand, this.#schema.timezone);
    const lowerOp: CompareOp = e.lowerInclusive ? '>=' : '>';
    const upperOp: CompareOp = e.upperInclusive ? '<=' : '<';
    this.#checkComparable(operand, lowerOp, lower, e.pos);
    this.#checkComparable(operand, upperOp, upper, e.pos);
    if (operand.konst !== undefined) {
      const a = compareRow(operand.konst, lowerOp, lower.konst, true);
      const b = compareRow(operand.konst, upperOp, upper.konst, true);
      return constPred((a & b) as Tri);
    }
    return {
      ev: (ctx) => {
        const v = operand.ev(ctx);
        return andInPlace(compareVecs(v, lowerOp, lower.ev(ctx), ctx.n), compareVecs(v, upperOp, upper.ev(ctx), ctx.n));
      },
    };
  }

  #in(operandExpr: Expr, listExpr: Expr, negated: boolean, pos: number): Pred {
    const operand = this.#value(operandExpr);
    const list = this.#value(listExpr);
    if (!Array.isArray(list.konst)) {
      throw invalid(`'in' needs a list of constants on its right, got ${list.desc} at position ${pos}`);
    }
    const items: readonly Const[] = list.konst;
    if (operand.st === 'array' || operand.st === 'list') {
      throw invalid(`'in' is not supported on ${operand.desc} at position ${pos}`);
    }
    for (const item of items) {
      if (!constFitsStatic(operand.st, item)) {
        throw invalid(`'in' list value ${describeConst(item)} does not match ${operand.desc} at position ${pos}`);
      }
    }
    if (operand.konst !== undefined) {
      const k = operand.konst;
      const hit = items.some((it) => compareRow(k, '==', it, false) === TRUE);
      return constPred(hit !== negated ? TRUE : FALSE);
    }
    return {
      ev: (ctx) => {
        const out = inList(operand.ev(ctx), items, ctx.n);
        return negated ? notInPlace(out) : out;
      },
    };
  }

  #like(operandExpr: Expr, patternExpr: Expr, pos: number): Pred {
    const operand = this.#value(operandExpr);
    const pattern = this.#value(patternExpr);
    if (typeof pattern.konst !== 'string') {
      throw invalid(`the pattern of 'like' must be a string constant, got ${pattern.desc} at position ${pos}`);
    }
    if (operand.st !== 'string' && operand.st !== 'json') {
      throw invalid(`'like' is not supported on ${operand.desc} at position ${pos}`);
    }
    const match = likeMatcher(pattern.konst);
    if (typeof operand.konst === 'string') return constPred(match(operand.konst) ? TRUE : FALSE);
    return {
      ev: (ctx) => {
        const v = operand.ev(ctx);
        const n = ctx.n;
        if (v.t === 'str') {
          const out = new Uint8Array(n);
          const d = v.data;
          for (let i = 0; i < n; i++) out[i] = Number(match(d[i]!)) * 3;
          return applyNulls(out, v.valid);
        }
        return mapRows(v, n, (x) => typeof x === 'string' && match(x));
      },
    };
  }

  #textMatch(fn: 'text_match' | 'phrase_match', args: readonly Expr[], pos: number): Pred {
    const [fieldExpr, queryExpr, optionExpr] = args as [Expr, Expr, Expr | undefined];
    const field = fieldExpr.kind === 'ident' && fieldExpr.path.length === 0 ? this.#fields.get(fieldExpr.name) : undefined;
    if (!field) throw invalid(`the first argument of ${fn} must be a VarChar field, at position ${pos}`);
    const tokenizer = field.textMatch;
    if (!tokenizer)
      throw quiverError('ParameterInvalid', `field ${field.name} does not enable match (enable_match): ${fn} cannot use it (position ${pos})`);
    const query = this.#value(queryExpr);
    if (typeof query.konst !== 'string') throw invalid(`the second argument of ${fn} must be a string constant, got ${query.desc} at position ${pos}`);
    const text = query.konst;
    // Milvus's bounds: minimum_should_match in 1..1000, slop a uint32.
    const option = optionExpr === undefined ? undefined : this.#value(optionExpr).konst;
    if (optionExpr !== undefined && typeof option !== 'bigint') {
      throw quiverError('ParameterInvalid', `"slop" should be a const integer expression with "uint32" value, at position ${pos}`);
    }
    const [low, high, what] = fn === 'text_match' ? [1n, 1000n, 'minimum_should_match'] : [0n, 0xffffffffn, 'slop'];
    if (typeof option === 'bigint' && (option < low || option > high)) {
      throw quiverError('ParameterInvalid', `${what} should be in [${low}, ${high}], got ${option} at position ${pos}`);
    }
    const terms = fn === 'text_match' ? tokenizer.terms(text) : [];
    this.#fieldNames.add(field.name);
    return {
      ev: (ctx) => {
        const col = ctx.column(field.name);
        if (!col || col.kind !== 'string') return new Uint8Array(ctx.n);
        const hit =
          fn === 'text_match' ? textMatchRows(col, tokenizer, terms, Number(option ?? 1n)) : phraseMatchRows(col, tokenizer, text, Number(option ?? 0n));
        for (let i = 0; i < hit.length; i++) hit[i] = hit[i]! * TRUE;
        return hit;
      },
    };
  }

  #isNull(operandExpr: Expr, negated: boolean, pos: number): Pred {
    const operand = this.#value(operandExpr);
    if (!operand.isReference) {
      throw invalid(`'is null' needs a field, got ${operand.desc} at position ${pos}`);
    }
    return {
      ev: (ctx) => {
        const v = operand.ev(ctx);
        const n = ctx.n;
        const out = new Uint8Array(n);
        if (v.t === 'any') {
          for (let i = 0; i < n; i++) out[i] = Number(isAbsentValue(rowValue(v, i))) * 3;
        } else if (v.t !== 'const' && v.valid !== undefined) {
          const valid = v.valid;
          for (let i = 0; i < n; i++) out[i] = Number(valid[i] === 0) * 3;
        }
        return negated ? notInPlace(out) : out;
      },
    };
  }

  #exists(operandExpr: Expr, pos: number): Pred {
    const operand = this.#value(operandExpr);
    if (!operand.isReference || operand.st !== 'json') {
      throw invalid(`'exists' needs a JSON field or key, got ${operand.desc} at position ${pos}`);
    }
    return { ev: (ctx) => mapRows(operand.ev(ctx), ctx.n, (x) => x !== MISSING) };
  }

  #contains(fn: ContainsFunction, args: readonly Expr[], pos: number): Pred {
    const target = this.#value(args[0] as Expr);
    const value = this.#value(args[1] as Expr);
    if (target.st !== 'array' && target.st !== 'json') {
      throw invalid(`${fn} needs an Array or JSON field, got ${target.desc} at position ${pos}`);
    }
    if (value.konst === undefined) {
      throw invalid(`the second argument of ${fn} must be a constant, got ${value.desc} at position ${pos}`);
    }
    const k = value.konst;
    const mode = fn.endsWith('_all') ? 'all' : fn.endsWith('_any') ? 'any' : 'one';
    let items: readonly Const[];
    if (mode === 'one') items = [k];
    else if (Array.isArray(k)) items = k;
    else throw invalid(`the second argument of ${fn} must be a list, got ${value.desc} at position ${pos}`);
    if (target.st === 'array' && target.elementType !== undefined) {
      const est = staticOf(target.elementType);
      for (const it of items) {
        if (est !== undefined && !constFitsStatic(est, it)) {
          throw invalid(`${fn}: ${describeConst(it)} does not match the ${target.elementType} elements of ${target.desc} at position ${pos}`);
        }
      }
    }
    const test =
      mode === 'all'
        ? (x: unknown) => Array.isArray(x) && items.every((it) => containsValue(x, it))
        : (x: unknown) => Array.isArray(x) && items.some((it) => containsValue(x, it));
    return { ev: (ctx) => mapRows(target.ev(ctx), ctx.n, test) };
  }

  /** A value used as a predicate: a bool field / constant, or a JSON value that is `true`. */
  #truthy(v: Val, pos: number): Pred {
    if (typeof v.konst === 'boolean') return constPred(v.konst ? TRUE : FALSE);
    if (v.st !== 'bool' && v.st !== 'json') {
      throw invalid(`${v.desc} at position ${pos} is not a boolean expression`);
    }
    return {
      ev: (ctx) => {
        const vec = v.ev(ctx);
        const n = ctx.n;
        if (vec.t === 'bool') {
          const out = new Uint8Array(n);
          const d = vec.data;
          for (let i = 0; i < n; i++) out[i] = Number(d[i] !== 0) * 3;
          return applyNulls(out, vec.valid);
        }
        return mapRows(vec, n, (x) => x === true);
      },
    };
  }

  // ------------------------------------------------------------ values

  #value(e: Expr): Val {
    this.#enter(e);
    try {
      return this.#valueInner(e);
    } finally {
      this.#depth--;
    }
  }

  #valueInner(e: Expr): Val {
    switch (e.kind) {
      case 'int':
      case 'float':
      case 'string':
      case 'bool':
        return constVal(e.value);
      case 'list': {
        const items = e.items.map((item) => {
          const v = this.#value(item);
          if (v.konst === undefined) {
            throw invalid(`list items must be constants, got ${v.desc} at position ${item.pos}`);
          }
          return v.konst;
        });
        return constVal(items);
      }
      case 'ident':
        return this.#ident(e.name, e.path, e.pos);
      case 'arith':
        return this.#arith(e.op, this.#value(e.left), this.#value(e.right), e.pos);
      case 'neg':
        return this.#neg(this.#value(e.operand), e.pos);
      case 'call':
        if (e.fn === 'array_length') return this.#arrayLength(e.args[0] as Expr, e.pos);
        if (e.fn === 'iso') return isoVal(e.args[0] as Expr & { kind: 'string' }, e.pos, this.#schema.timezone);
        if (e.fn === 'interval') return intervalVal(e.args[0] as Expr & { kind: 'string' }, e.pos);
        break;
      default:
        break;
    }
    throw invalid(`the boolean expression at position ${e.pos} cannot be used as a value`);
  }

  #ident(name: string, path: readonly PathElement[], pos: number): Val {
    if (name === DYNAMIC_FIELD_NAME) {
      if (!this.#schema.dynamicField && !this.#fields.has(DYNAMIC_FIELD_NAME)) {
        throw quiverError('FieldNotFound', `field '${DYNAMIC_FIELD_NAME}' does not exist: the collection has no dynamic field (position ${pos})`);
      }
      const desc = path.length > 0 ? `dynamic field key ${JSON.stringify(path)}` : 'dynamic field';
      return this.#jsonRef(DYNAMIC_FIELD_NAME, path, desc, true);
    }
    const field = this.#fields.get(name);
    if (field === undefined) {
      if (!this.#schema.dynamicField) {
        throw quiverError('FieldNotFound', `field '${name}' does not exist (position ${pos})`);
      }
      return this.#jsonRef(DYNAMIC_FIELD_NAME, [name, ...path], `dynamic field key '${name}'`, true);
    }
    const st = staticOf(field.dataType);
    const desc = `field '${name}' (${field.dataType})`;
    if (st === undefined) throw invalid(`${desc} cannot be used in a filter expression (position ${pos})`);
    if (st === 'json') {
      const at = path.length > 0 ? ` at ${JSON.stringify(path)}` : '';
      return this.#jsonRef(name, path, `JSON field '${name}'${at}`, false);
    }
    this.#fieldNames.add(name);
    if (st === 'array') {
      if (path.length === 0) {
        return {
          st,
          bound: Infinity,
          elementType: field.elementType,
          desc,
          isReference: true,
          ev: (ctx) => columnVec(ctx.column(name), ctx.n),
        };
      }
      const index = path[0];
      if (path.length !== 1 || typeof index !== 'number') {
        throw invalid(`${desc} can only be indexed by one integer, got ${JSON.stringify(path)} at position ${pos}`);
      }
      const est = field.elementType === undefined ? 'json' : (staticOf(field.elementType) ?? 'json');
      return {
        st: est,
        bound: field.elementType === undefined ? Infinity : (INT_BOUND[field.elementType] ?? Infinity),
        desc: `element ${index} of ${desc}`,
        isReference: true,
        ev: (ctx) => ctx.memo(`${name}\u0000${index}`, () => arrayElementVec(ctx.column(name), index, ctx.n)),
      };
    }
    if (path.length > 0) throw invalid(`${desc} cannot be indexed (position ${pos})`);
    return {
      st,
      bound: INT_BOUND[field.dataType] ?? Infinity,
      desc,
      isReference: true,
      ev: (ctx) => columnVec(ctx.column(name), ctx.n),
    };
  }

  #jsonRef(column: string, path: readonly PathElement[], desc: string, dynamic: boolean): Val {
    this.#fieldNames.add(column);
    const key = `${column}\u0000${JSON.stringify(path)}`;
    return {
      st: 'json',
      bound: Infinity,
      desc,
      isReference: true,
      ev: (ctx) => ctx.memo(key, () => jsonVec(ctx.column(column), path, ctx.n, dynamic)),
    };
  }

  #neg(v: Val, pos: number): Val {
    if (v.st !== 'int' && v.st !== 'float' && v.st !== 'json') {
      throw invalid(`arithmetic operator 'unary -' is not supported on ${v.desc} at position ${pos}`);
    }
    if (typeof v.konst === 'bigint') return constVal(BigInt.asIntN(64, -v.konst));
    if (typeof v.konst === 'number') return constVal(-v.konst);
    const mode: ArithMode = v.st === 'int' ? (v.bound < TWO_POW_53 ? 'int' : 'bigint') : 'float';
    return {
      st: v.st,
      bound: v.bound,
      desc: `arithmetic expression at position ${pos} (${typeNameOf(v.st)})`,
      isReference: false,
      ev: (ctx) => negate(v.ev(ctx), mode, ctx.n),
    };
  }

  #arith(op: ArithOp, l: Val, r: Val, pos: number): Val {
    if (l.st === 'interval' || r.st === 'interval') return shiftByInterval(op, l, r, pos);
    for (const v of [l, r]) {
      if (v.st !== 'int' && v.st !== 'float' && v.st !== 'json') {
        throw invalid(`arithmetic operator '${op}' is not supported on ${v.desc} at position ${pos}`);
      }
    }
    if ((op === '/' || op === '%') && isZero(r.konst)) throw invalid(`division by zero at position ${pos}`);
    if (l.konst !== undefined && r.konst !== undefined) return constVal(foldArith(op, l.konst, r.konst));
    let st: StaticType;
    let mode: ArithMode = 'float';
    let bound = Infinity;
    if (l.st === 'json' || r.st === 'json') st = 'json';
    else if (op === '**' || l.st === 'float' || r.st === 'float') st = 'float';
    else {
      st = 'int';
      bound = arithBound(op, l.bound, r.bound);
      // Doubles are exact only if the operands and the result all stay below 2^53. Bounds are computed in
      // doubles, but rounding is monotone, so a true bound >= 2^53 never computes as < 2^53.
      mode = Math.max(bound, l.bound, r.bound) < TWO_POW_53 ? 'int' : 'bigint';
    }
    return {
      st,
      bound,
      desc: `arithmetic expression at position ${pos} (${typeNameOf(st)})`,
      isReference: false,
      ev: (ctx) => arith(op, l.ev(ctx), r.ev(ctx), mode, ctx.n),
    };
  }

  #arrayLength(argExpr: Expr, pos: number): Val {
    const target = this.#value(argExpr);
    if (!target.isReference || (target.st !== 'array' && target.st !== 'json')) {
      throw invalid(`array_length needs an Array or JSON field, got ${target.desc} at position ${pos}`);
    }
    if (target.st === 'json') {
      return {
        st: 'json',
        bound: Infinity,
        desc: `array_length at position ${pos}`,
        isReference: false,
        ev: (ctx) => {
          const v = target.ev(ctx);
          const n = ctx.n;
          const data: unknown[] = new Array<unknown>(n);
          for (let i = 0; i < n; i++) {
            const x = rowValue(v, i);
            data[i] = Array.isArray(x) ? x.length : MISSING;
          }
          return { t: 'any', data, valid: v.t === 'const' ? undefined : v.valid, absentNotEqual: true };
        },
      };
    }
    return {
      st: 'int',
      bound: 2 ** 31,
      desc: `array_length at position ${pos}`,
      isReference: false,
      ev: (ctx) => {
        const v = target.ev(ctx);
        const n = ctx.n;
        const data = new Int32Array(n);
        if (v.t === 'arr') {
          for (let i = 0; i < n; i++) data[i] = v.data[i]?.length ?? 0;
          return { t: 'num', data, valid: v.valid };
        }
        return allNull(n);
      },
    };
  }
}

function arrayElementVec(c: Column | undefined, index: number, n: number): Vec {
  if (c === undefined || c.kind !== 'array') return allNull(n);
  const data: unknown[] = new Array<unknown>(n);
  for (let i = 0; i < n; i++) {
    const row = c.data[i];
    data[i] = row !== undefined && index < row.length ? row[index] : MISSING;
  }
  return { t: 'any', data, valid: c.valid, absentNotEqual: false };
}
