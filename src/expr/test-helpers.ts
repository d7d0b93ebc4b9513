/** Test-only helpers: a compact rendering of the syntax tree. */
import type { Expr } from './ast.js';

/** S-expression rendering of a tree, e.g. `(or a (and b c))`. */
export function show(e: Expr): string {
  switch (e.kind) {
    case 'int':
      return e.value.toString();
    case 'float':
      return `${e.value}f`;
    case 'string':
      return JSON.stringify(e.value);
    case 'bool':
      return String(e.value);
    case 'list':
      return `[${e.items.map(show).join(', ')}]`;
    case 'ident':
      return e.name + e.path.map((p) => `[${JSON.stringify(p)}]`).join('');
    case 'not':
      return `(not ${show(e.operand)})`;
    case 'logical':
      return `(${e.op} ${e.operands.map(show).join(' ')})`;
    case 'compare':
      return `(${e.op} ${show(e.left)} ${show(e.right)})`;
    case 'range':
      return `(range ${show(e.lower)} ${e.lowerInclusive ? '<=' : '<'} ${show(e.operand)} ${e.upperInclusive ? '<=' : '<'} ${show(e.upper)})`;
    case 'in':
      return `(${e.negated ? 'not-in' : 'in'} ${show(e.operand)} ${show(e.list)})`;
    case 'like':
      return `(like ${show(e.operand)} ${show(e.pattern)})`;
    case 'arith':
      return `(${e.op} ${show(e.left)} ${show(e.right)})`;
    case 'neg':
      return `(neg ${show(e.operand)})`;
    case 'call':
      return `(${e.fn} ${e.args.map(show).join(' ')})`;
    case 'isNull':
      return `(${e.negated ? 'is-not-null' : 'is-null'} ${show(e.operand)})`;
    case 'exists':
      return `(exists ${show(e.operand)})`;
  }
}
