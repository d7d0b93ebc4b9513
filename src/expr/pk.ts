/**
 * Primary-key fast path: deletes and get-by-id filters are usually `pk in [...]` or `pk == v`, which the
 * caller can answer from the pk index without scanning columns.
 */
import type { Expr } from './ast.js';
import type { ExprField, ExprSchema } from './compile.js';
import { INT64_MAX, INT64_MIN } from './values.js';

/**
 * If `expr` is `pk in [...]`, `pk == v` (either side), or an `or` of those, the pk values in order of first
 * appearance without duplicates (bigint for an Int64 pk, string for a VarChar pk); otherwise null. Values
 * that no row can hold (non-integral or beyond int64 for an Int64 pk) are left out. A literal of the wrong
 * type returns null so that compiling reports the error.
 */
export function extractPkValues(expr: Expr, schema: ExprSchema): (bigint | string)[] | null {
  const pk = schema.fields.find((f) => f.isPrimaryKey);
  if (pk === undefined || (pk.dataType !== 'Int64' && pk.dataType !== 'VarChar')) return null;
  const values: (bigint | string)[] = [];
  if (!collect(expr, pk, values)) return null;
  return [...new Set(values)];
}

function isPk(e: Expr, pk: ExprField): boolean {
  return e.kind === 'ident' && e.name === pk.name && e.path.length === 0;
}

/** Appends the literal's pk value (if any row could hold it); false when the literal has the wrong type. */
function addLiteral(e: Expr, pk: ExprField, out: (bigint | string)[]): boolean {
  if (pk.dataType === 'VarChar') {
    if (e.kind !== 'string') return false;
    out.push(e.value);
    return true;
  }
  if (e.kind === 'int') {
    if (e.value >= INT64_MIN && e.value <= INT64_MAX) out.push(e.value);
    return true;
  }
  if (e.kind === 'float') {
    if (Number.isInteger(e.value)) return addLiteral({ kind: 'int', value: BigInt(e.value), pos: e.pos }, pk, out);
    return Number.isFinite(e.value) || Number.isNaN(e.value);
  }
  return false;
}

function collect(e: Expr, pk: ExprField, out: (bigint | string)[]): boolean {
  switch (e.kind) {
    case 'compare':
      if (e.op !== '==') return false;
      if (isPk(e.left, pk)) return addLiteral(e.right, pk, out);
      if (isPk(e.right, pk)) return addLiteral(e.left, pk, out);
      return false;
    case 'in':
      if (e.negated || !isPk(e.operand, pk) || e.list.kind !== 'list') return false;
      return e.list.items.every((item) => addLiteral(item, pk, out));
    case 'logical':
      return e.op === 'or' && e.operands.every((o) => collect(o, pk, out));
    default:
      return false;
  }
}
