/**
 * The Milvus boolean filter expression language: parse (`parseExpr`), type-check against a schema and
 * compile to a column-at-a-time evaluator (`compileExpr`), and the pk fast path (`extractPkValues`).
 */
import { QuiverError, isQuiverError } from '../common/errors.js';
import { compileExpr, type CompiledExpr, type ExprSchema } from './compile.js';
import { withIndexPlan } from './index-plan.js';
import { parseExpr, quoteExprText, type TemplateValues } from './parser.js';

export type { ArithOp, CompareOp, Expr, ExprKind, FunctionName, LogicalOp, PathElement } from './ast.js';
export { MAX_EXPR_DEPTH, MAX_EXPR_LENGTH } from './ast.js';
export type { CompiledExpr, ExprField, ExprSchema } from './compile.js';
export { compileExpr } from './compile.js';
export type { TemplateValues } from './parser.js';
export { parseExpr } from './parser.js';
export { extractPkValues } from './pk.js';
export { evaluateFilter, matchingRows, type RangeBound, type ScalarIndexLookup, type ScalarIndexReader } from './index-plan.js';

/**
 * Parses and compiles a filter; null for empty or whitespace-only text (match everything). Errors name the
 * expression text, as Milvus's "cannot parse expression: <text>, error: <reason>".
 */
export function compileFilter(text: string, schema: ExprSchema, templates?: TemplateValues): CompiledExpr | null {
  if (typeof text === 'string' && text.trim() === '') return null;
  const expr = parseExpr(text, templates);
  try {
    return withIndexPlan(compileExpr(expr, schema), expr, schema);
  } catch (e) {
    if (isQuiverError(e)) {
      throw new QuiverError(e.kind, `cannot parse expression: ${quoteExprText(text)}, error: ${e.message}`, { cause: e });
    }
    throw e;
  }
}
