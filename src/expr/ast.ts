/**
 * The syntax tree of a Milvus boolean filter expression. Every node carries `pos`, the 0-based character
 * offset in the source text, so type errors found later can still point at the text.
 *
 * Integer literals are always bigint (Milvus ids exceed 2^53); float literals are numbers. Template
 * variables (`{name}`) are substituted by the parser, so the tree only holds literals.
 */

import type { GeoFunction } from './geo-functions.js';

export type CompareOp = '==' | '!=' | '<' | '<=' | '>' | '>=';
export type ArithOp = '+' | '-' | '*' | '/' | '%' | '**';
export type LogicalOp = 'and' | 'or';

export type FunctionName =
  | 'array_contains'
  | 'array_contains_all'
  | 'array_contains_any'
  | 'array_length'
  | 'json_contains'
  | 'json_contains_all'
  | 'json_contains_any'
  /** Spatial functions (expr/geo-functions.ts). */
  | GeoFunction
  /** `ISO '2025-01-01T00:00:00Z'` and `INTERVAL 'P1D'`: Timestamptz literals, parsed as a one-argument call. */
  | 'iso'
  | 'interval'
  /** text_match(field, 'words'[, minimum_should_match=N]): the option is parsed into an int third argument. */
  | 'text_match'
  /** phrase_match(field, 'words'[, slop]). */
  | 'phrase_match';

/** A JSON key (`["a"]`) or an array / JSON-array index (`[0]`). */
export type PathElement = string | number;

export type Expr =
  | { readonly kind: 'int'; readonly value: bigint; readonly pos: number }
  | { readonly kind: 'float'; readonly value: number; readonly pos: number }
  | { readonly kind: 'string'; readonly value: string; readonly pos: number }
  | { readonly kind: 'bool'; readonly value: boolean; readonly pos: number }
  | { readonly kind: 'list'; readonly items: readonly Expr[]; readonly pos: number }
  /** A field, `$meta`, or a dynamic key; `path` is the bracket access after it. */
  | { readonly kind: 'ident'; readonly name: string; readonly path: readonly PathElement[]; readonly pos: number }
  | { readonly kind: 'not'; readonly operand: Expr; readonly pos: number }
  /** n-ary so that `a or b or c ...` with thousands of terms stays a shallow tree. */
  | { readonly kind: 'logical'; readonly op: LogicalOp; readonly operands: readonly Expr[]; readonly pos: number }
  | { readonly kind: 'compare'; readonly op: CompareOp; readonly left: Expr; readonly right: Expr; readonly pos: number }
  /** `lower < operand < upper`; `10 >= x > 2` is normalised to lower 2 (exclusive), upper 10 (inclusive). */
  | {
      readonly kind: 'range';
      readonly lower: Expr;
      readonly lowerInclusive: boolean;
      readonly operand: Expr;
      readonly upper: Expr;
      readonly upperInclusive: boolean;
      readonly pos: number;
    }
  | { readonly kind: 'in'; readonly operand: Expr; readonly list: Expr; readonly negated: boolean; readonly pos: number }
  | { readonly kind: 'like'; readonly operand: Expr; readonly pattern: Expr; readonly pos: number }
  | { readonly kind: 'arith'; readonly op: ArithOp; readonly left: Expr; readonly right: Expr; readonly pos: number }
  | { readonly kind: 'neg'; readonly operand: Expr; readonly pos: number }
  | { readonly kind: 'call'; readonly fn: FunctionName; readonly args: readonly Expr[]; readonly pos: number }
  | { readonly kind: 'isNull'; readonly operand: Expr; readonly negated: boolean; readonly pos: number }
  | { readonly kind: 'exists'; readonly operand: Expr; readonly pos: number };

export type ExprKind = Expr['kind'];

/** Nesting limit for parse, compile and evaluation recursion (a deeper tree is an error, not a stack overflow). */
export const MAX_EXPR_DEPTH = 200;

/** Longest accepted expression text, in UTF-16 code units. Large `pk in [...]` lists fit; use templates beyond. */
export const MAX_EXPR_LENGTH = 1 << 20;
