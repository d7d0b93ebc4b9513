/**
 * The index-backed path of a filter. At compile time the expression is walked once for the predicates a
 * scalar index can answer: `field op constant` (==, <, <=, >, >=), ranges, `in`, `like` with a literal
 * prefix, array_contains / json_contains (and their _any / _all forms), over fields or JSON paths. At
 * evaluation, a chunk that holds indexes for them turns those predicates into candidate rows: AND
 * intersects the candidates of the conjuncts that have them, OR unites them when every branch has them.
 * The whole filter is then evaluated by the ordinary compiled evaluator on the candidate rows only.
 *
 * Why candidates and not answers: an index only has to return a superset of the rows where its predicate
 * is TRUE, and the scan decides. So three-valued logic, nulls, JSON type mismatches and rounding can never
 * make the indexed path disagree with the scan; a predicate an index cannot bound (`!=`, `not`, `is null`,
 * a JSON value of another type than the index's cast) simply gives no candidates and is left to the scan.
 */

import type { ColumnBatch } from '../schema/types.js';
import type { Expr, PathElement } from './ast.js';
import type { CompiledExpr, ExprSchema } from './compile.js';
import type { GeoFunction } from './geo-functions.js';
import { spatialWindow } from './spatial-window.js';
import { parseTimestamptz } from '../schema/timestamptz.js';

type Scalar = bigint | number | string | boolean;

export interface RangeBound {
  readonly value: Scalar;
  readonly inclusive: boolean;
}

/**
 * What a loaded scalar index offers the planner. Each query returns candidate rows (a superset of the
 * rows whose value satisfies it; order and duplicates do not matter), or undefined when the index cannot
 * bound it (a constant of another type than its terms: a JSON value of that type is not indexed).
 */
export interface ScalarIndexReader {
  /** True when rows are posted under each element they hold (Array fields, ARRAY_* JSON casts). */
  readonly elements: boolean;
  equalAny(values: readonly Scalar[]): Int32Array | undefined;
  range(lower: RangeBound | undefined, upper: RangeBound | undefined): Int32Array | undefined;
  prefix(prefix: string): Int32Array | undefined;
  /** Spatial indexes (RTREE): rows whose geometry's envelope meets the window. */
  spatial?(window: SpatialWindow): Int32Array | undefined;
}

/** An envelope an ST_* match must meet (expr/spatial-window.ts); `geodesic`: computed for lon/lat coordinates. */
export interface SpatialWindow {
  readonly minX: number;
  readonly minY: number;
  readonly maxX: number;
  readonly maxY: number;
  readonly geodesic: boolean;
}

/** A chunk's scalar indexes by key (`scalarIndexKey`: the field name, plus the JSON path of path indexes). */
export type ScalarIndexLookup = ReadonlyMap<string, ScalarIndexReader>;

type Query =
  | { readonly q: 'eq'; readonly values: readonly Scalar[] }
  | { readonly q: 'range'; readonly lower: RangeBound | undefined; readonly upper: RangeBound | undefined }
  | { readonly q: 'prefix'; readonly prefix: string }
  | { readonly q: 'contains'; readonly values: readonly Scalar[]; readonly all: boolean }
  | { readonly q: 'spatial'; readonly window: SpatialWindow };

export type IndexPlan =
  { readonly k: 'and' | 'or'; readonly parts: readonly IndexPlan[] } | { readonly k: 'atom'; readonly key: string; readonly query: Query };

/** A compiled filter that also knows which of its predicates an index may answer. */
export interface IndexedExpr extends CompiledExpr {
  readonly indexPlan: IndexPlan;
}

/**
 * Above this fraction of a chunk's rows as candidates, gathering them costs more than scanning every row.
 * Exported for tests (which force the gather path by lowering it).
 */
export const CANDIDATE_FRACTION_MAX = 0.25;

/** The key under which a chunk keeps the index of a field (and JSON path). Mirrors index/scalar. */
function indexKey(field: string, path: readonly PathElement[]): string {
  return path.length === 0 ? field : `${field}${JSON.stringify(path)}`;
}

/** Adds the index plan to a compiled filter when some predicate could be answered by an index. */
export function withIndexPlan(compiled: CompiledExpr, expr: Expr, schema: ExprSchema): CompiledExpr {
  const plan = planOf(expr, schema);
  if (plan === undefined) return compiled;
  const indexed: IndexedExpr = { evaluate: (batch, rows) => compiled.evaluate(batch, rows), fieldNames: compiled.fieldNames, indexPlan: plan };
  return indexed;
}

function isIndexed(e: CompiledExpr): e is IndexedExpr {
  return (e as Partial<IndexedExpr>).indexPlan !== undefined;
}

/**
 * The rows of the batch that match (ascending), found through the chunk's indexes; undefined when they
 * cannot narrow the rows to evaluate (then the caller scans). `fraction` overrides CANDIDATE_FRACTION_MAX.
 */
export function matchingRows(
  filter: CompiledExpr,
  batch: ColumnBatch,
  indexes: ScalarIndexLookup | undefined,
  fraction = CANDIDATE_FRACTION_MAX,
): Uint32Array | undefined {
  if (indexes === undefined || indexes.size === 0 || !isIndexed(filter)) return undefined;
  const rows = candidateRows(filter.indexPlan, indexes, batch.numRows);
  if (rows === undefined || rows.length > batch.numRows * fraction) return undefined;
  if (rows.length === 0) return rows;
  const hit = filter.evaluate(batch, rows);
  let n = 0;
  for (let i = 0; i < rows.length; i++) if (hit[i] === 1) rows[n++] = rows[i]!;
  return rows.subarray(0, n);
}

/** 1 = row matches, for every row of the batch: through the chunk's indexes when they narrow the rows, else by scanning. */
export function evaluateFilter(
  filter: CompiledExpr,
  batch: ColumnBatch,
  indexes: ScalarIndexLookup | undefined,
  fraction = CANDIDATE_FRACTION_MAX,
): Uint8Array {
  const rows = matchingRows(filter, batch, indexes, fraction);
  if (rows === undefined) return filter.evaluate(batch);
  const mask = new Uint8Array(batch.numRows);
  for (let i = 0; i < rows.length; i++) mask[rows[i]!] = 1;
  return mask;
}

/** The sorted distinct candidate rows of a plan, or undefined when the indexes present cannot narrow it. */
export function candidateRows(plan: IndexPlan, indexes: ScalarIndexLookup, numRows: number): Uint32Array | undefined {
  const got = candidates(plan, indexes);
  if (got === undefined) return undefined;
  const out = Uint32Array.from(got.sorted ? got.rows : sortedUnique(got.rows));
  // Postings hold offsets into this chunk: an index built for another row count is a corrupt load.
  if (out.length > 0 && out[out.length - 1]! >= numRows) {
    throw new Error(`assertion failed: index candidate row ${out[out.length - 1]} is outside the chunk of ${numRows} rows`);
  }
  return out;
}

interface Cand {
  readonly rows: Int32Array;
  /** Sorted and distinct. */
  readonly sorted: boolean;
}

function candidates(plan: IndexPlan, indexes: ScalarIndexLookup): Cand | undefined {
  switch (plan.k) {
    case 'atom': {
      const reader = indexes.get(plan.key);
      if (reader === undefined) return undefined;
      const rows = answer(reader, plan.query);
      return rows === undefined ? undefined : { rows, sorted: false };
    }
    case 'and': {
      let acc: Int32Array | undefined;
      for (const p of plan.parts) {
        const c = candidates(p, indexes);
        if (c === undefined) continue;
        const s = c.sorted ? c.rows : sortedUnique(c.rows);
        acc = acc === undefined ? s : intersect(acc, s);
        if (acc.length === 0) break;
      }
      return acc === undefined ? undefined : { rows: acc, sorted: true };
    }
    case 'or': {
      const parts: Int32Array[] = [];
      for (const p of plan.parts) {
        const c = candidates(p, indexes);
        if (c === undefined) return undefined;
        parts.push(c.rows);
      }
      return { rows: concat(parts), sorted: false };
    }
  }
}

function answer(reader: ScalarIndexReader, q: Query): Int32Array | undefined {
  switch (q.q) {
    case 'spatial':
      return reader.spatial?.(q.window);
    case 'eq':
      return reader.elements ? undefined : reader.equalAny(q.values);
    case 'range':
      return reader.elements ? undefined : reader.range(q.lower, q.upper);
    case 'prefix':
      return reader.elements ? undefined : reader.prefix(q.prefix);
    case 'contains': {
      if (!reader.elements) return undefined;
      if (!q.all) return reader.equalAny(q.values);
      // Every value must be present: the rarest one bounds the rows well enough (the scan checks the rest).
      let best: Int32Array | undefined;
      for (const v of q.values) {
        const rows = reader.equalAny([v]);
        if (rows === undefined) return undefined;
        if (best === undefined || rows.length < best.length) best = rows;
      }
      return best;
    }
  }
}

// ------------------------------------------------------------------ planning

function planOf(e: Expr, schema: ExprSchema): IndexPlan | undefined {
  switch (e.kind) {
    case 'logical': {
      const parts: IndexPlan[] = [];
      for (const o of e.operands) {
        const p = planOf(o, schema);
        if (p !== undefined) parts.push(p);
        // One branch of an OR that no index bounds makes the whole OR unbounded.
        else if (e.op === 'or') return undefined;
      }
      if (parts.length === 0) return undefined;
      return parts.length === 1 ? parts[0] : { k: e.op, parts };
    }
    case 'compare': {
      let op = e.op;
      let ref = refKey(e.left, schema);
      let c = constFor(e.right, e.left, schema);
      if (ref === undefined || c === undefined) {
        ref = refKey(e.right, schema);
        c = constFor(e.left, e.right, schema);
        op = op === '<' ? '>' : op === '>' ? '<' : op === '<=' ? '>=' : op === '>=' ? '<=' : op;
      }
      if (ref === undefined || c === undefined) return undefined;
      const bound = { value: c, inclusive: op === '<=' || op === '>=' };
      switch (op) {
        case '==':
          return atom(ref, { q: 'eq', values: [c] });
        case '<':
        case '<=':
          return atom(ref, { q: 'range', lower: undefined, upper: bound });
        case '>':
        case '>=':
          return atom(ref, { q: 'range', lower: bound, upper: undefined });
        case '!=':
          return undefined;
      }
      return undefined;
    }
    case 'range': {
      const ref = refKey(e.operand, schema);
      const lo = constFor(e.lower, e.operand, schema);
      const hi = constFor(e.upper, e.operand, schema);
      if (ref === undefined || lo === undefined || hi === undefined) return undefined;
      return atom(ref, { q: 'range', lower: { value: lo, inclusive: e.lowerInclusive }, upper: { value: hi, inclusive: e.upperInclusive } });
    }
    case 'in': {
      if (e.negated) return undefined;
      const ref = refKey(e.operand, schema);
      const values = listOf(e.list);
      return ref === undefined || values === undefined ? undefined : atom(ref, { q: 'eq', values });
    }
    case 'like': {
      const ref = refKey(e.operand, schema);
      if (ref === undefined || e.pattern.kind !== 'string') return undefined;
      const prefix = literalPrefix(e.pattern.value);
      return prefix === undefined ? undefined : atom(ref, { q: 'prefix', prefix });
    }
    case 'call': {
      const [target, arg] = e.args;
      if (target === undefined || arg === undefined) return undefined;
      const ref = refKey(target, schema);
      if (ref === undefined) return undefined;
      if (e.fn.startsWith('st_')) {
        const metres = e.args[2] === undefined ? undefined : constOf(e.args[2]);
        const window = arg.kind === 'string' ? spatialWindow(e.fn as GeoFunction, arg.value, metres === undefined ? undefined : Number(metres)) : undefined;
        return window === undefined ? undefined : atom(ref, { q: 'spatial', window });
      }
      switch (e.fn) {
        case 'array_contains':
        case 'json_contains': {
          const c = constOf(arg);
          return c === undefined ? undefined : atom(ref, { q: 'contains', values: [c], all: false });
        }
        case 'array_contains_any':
        case 'json_contains_any':
        case 'array_contains_all':
        case 'json_contains_all': {
          const values = listOf(arg);
          const all = e.fn.endsWith('_all');
          return values === undefined ? undefined : atom(ref, { q: 'contains', values, all });
        }
        default:
          return undefined;
      }
    }
    default:
      return undefined;
  }
}

function atom(key: string, query: Query): IndexPlan {
  return { k: 'atom', key, query };
}

/** The index key of a field or JSON path reference; undefined for anything else (dynamic keys included). */
function refKey(e: Expr, schema: ExprSchema): string | undefined {
  if (e.kind !== 'ident') return undefined;
  const f = schema.fields.find((x) => x.name === e.name);
  if (f === undefined) return undefined;
  if (e.path.length > 0 && f.dataType !== 'JSON') return undefined;
  return indexKey(f.name, e.path);
}

/**
 * The constant `e` compared with `ref`: against a Timestamptz field, `ISO '...'` and a plain string are
 * read as the compiler reads them (microseconds, in the schema's zone when the text has no offset), so an
 * STL_SORT / INVERTED index on the field can answer the comparison.
 */
function constFor(e: Expr, ref: Expr, schema: ExprSchema): Scalar | undefined {
  const field = ref.kind === 'ident' && ref.path.length === 0 ? schema.fields.find((x) => x.name === ref.name) : undefined;
  if (field?.dataType !== 'Timestamptz') return constOf(e);
  const text = e.kind === 'call' && e.fn === 'iso' && e.args[0]?.kind === 'string' ? e.args[0].value : e.kind === 'string' ? e.value : undefined;
  if (text === undefined) return undefined;
  try {
    return parseTimestamptz(text, schema.timezone);
  } catch {
    return undefined; // the compiled filter reports it
  }
}

function constOf(e: Expr): Scalar | undefined {
  switch (e.kind) {
    case 'int':
    case 'float':
    case 'string':
    case 'bool':
      return e.value;
    case 'neg': {
      const o = e.operand;
      if (o.kind === 'int') return -o.value;
      if (o.kind === 'float') return -o.value;
      return undefined;
    }
    default:
      return undefined;
  }
}

/** A non-empty list of scalar constants (an empty list is left to the scan: `_all` of nothing is TRUE). */
function listOf(e: Expr): Scalar[] | undefined {
  if (e.kind !== 'list' || e.items.length === 0) return undefined;
  const out: Scalar[] = [];
  for (const item of e.items) {
    const c = constOf(item);
    if (c === undefined) return undefined;
    out.push(c);
  }
  return out;
}

/** The literal text before the first wildcard of a LIKE pattern (escapes resolved); undefined if it is empty. */
export function literalPrefix(pattern: string): string | undefined {
  let out = '';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === '\\' && i + 1 < pattern.length) {
      const next = pattern[i + 1]!;
      if (next === '%' || next === '_' || next === '\\') {
        out += next;
        i++;
        continue;
      }
    }
    if (c === '%' || c === '_') break;
    out += c;
  }
  return out === '' ? undefined : out;
}

// ------------------------------------------------------------------ row-set helpers

function sortedUnique(rows: Int32Array): Int32Array {
  const s = Int32Array.from(rows).sort();
  let n = 0;
  for (let i = 0; i < s.length; i++) if (i === 0 || s[i] !== s[n - 1]) s[n++] = s[i]!;
  return s.subarray(0, n);
}

function intersect(a: Int32Array, b: Int32Array): Int32Array {
  const out = new Int32Array(Math.min(a.length, b.length));
  let i = 0;
  let j = 0;
  let n = 0;
  while (i < a.length && j < b.length) {
    const x = a[i]!;
    const y = b[j]!;
    if (x === y) {
      out[n++] = x;
      i++;
      j++;
    } else if (x < y) i++;
    else j++;
  }
  return out.subarray(0, n);
}

function concat(parts: readonly Int32Array[]): Int32Array {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Int32Array(n);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
