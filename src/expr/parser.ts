/**
 * Recursive-descent parser for Milvus filter expressions. Precedence, loosest first:
 *
 *   or (`or`, `||`)  <  and (`and`, `&&`)  <  not (`not`, `!`)  <  comparison / range / in / like / is null
 *   <  `+ -`  <  `* / %`  <  unary `- +`  <  `**` (left-associative, as in Milvus)  <  primary
 *
 * Milvus's grammar binds `not` tighter than comparisons, so `not a == b` means `(not a) == b` there, which
 * only type-checks for bool `a`; for bool values that equals `not (a == b)`, so binding `not` looser
 * accepts everything Milvus accepts with the same meaning and also the form users expect.
 *
 * Keywords are case-insensitive. Template variables are substituted here; the tree holds literals only.
 */
import { quiverError, type QuiverError } from '../common/errors.js';
import { MAX_EXPR_DEPTH, MAX_EXPR_LENGTH, type CompareOp, type Expr, type FunctionName, type PathElement } from './ast.js';
import { LexError, tokenize, type Token } from './lexer.js';
import { GEO_FUNCTIONS } from './geo-functions.js';

export type TemplateValues = Readonly<Record<string, unknown>>;

const FUNCTIONS: ReadonlyMap<string, FunctionName | 'is_null' | 'is_not_null'> = new Map([
  ['array_contains', 'array_contains'],
  ['array_contains_all', 'array_contains_all'],
  ['array_contains_any', 'array_contains_any'],
  ['array_length', 'array_length'],
  ['json_contains', 'json_contains'],
  ['json_contains_all', 'json_contains_all'],
  ['json_contains_any', 'json_contains_any'],
  ['text_match', 'text_match'],
  ['phrase_match', 'phrase_match'],
  ['isnull', 'is_null'],
  ['is_null', 'is_null'],
  ['isnotnull', 'is_not_null'],
  ['is_not_null', 'is_not_null'],
  ...GEO_FUNCTIONS.map((f) => [f, f] as const),
]);

/** Words that cannot be field names because they start or continue an operator. */
const RESERVED = new Set(['and', 'or', 'not', 'in', 'like', 'is', 'null', 'exists']);

const COMPARE_OPS: ReadonlySet<string> = new Set(['==', '!=', '<', '<=', '>', '>=']);

const MESSAGE_TEXT_MAX = 200;

/** The expression text as quoted in error messages (long texts are cut so errors stay readable). */
export function quoteExprText(text: string): string {
  return text.length > MESSAGE_TEXT_MAX ? `${text.slice(0, MESSAGE_TEXT_MAX)}...` : text;
}

export function parseError(text: string, detail: string): QuiverError {
  return quiverError('ExprInvalid', `cannot parse expression: ${quoteExprText(text)}, error: ${detail}`);
}

export function parseExpr(text: string, templates?: TemplateValues): Expr {
  if (typeof text !== 'string') throw parseError(String(text), 'expression is not a string');
  if (text.length > MAX_EXPR_LENGTH) {
    throw parseError(text, `expression is ${text.length} characters long, the limit is ${MAX_EXPR_LENGTH}`);
  }
  let tokens: Token[];
  try {
    tokens = tokenize(text);
  } catch (e) {
    if (e instanceof LexError) throw parseError(text, e.detail);
    throw e;
  }
  return new Parser(text, tokens, templates ?? {}).parse();
}

class ParseFailure {
  readonly detail: string;
  constructor(detail: string) {
    this.detail = detail;
  }
}

class Parser {
  readonly #text: string;
  readonly #tokens: readonly Token[];
  readonly #templates: TemplateValues;
  #i = 0;
  #recursion = 0;
  /** Height of every node built, so a long left-deep chain (`a+a+a+...`) is caught as well as parentheses. */
  readonly #height = new WeakMap<Expr, number>();

  constructor(text: string, tokens: readonly Token[], templates: TemplateValues) {
    this.#text = text;
    this.#tokens = tokens;
    this.#templates = templates;
  }

  parse(): Expr {
    try {
      if (this.#peek().type === 'eof') throw new ParseFailure('empty expression');
      const e = this.#parseOr();
      const t = this.#peek();
      if (t.type !== 'eof') this.#unexpected(t);
      return e;
    } catch (e) {
      if (e instanceof ParseFailure) throw parseError(this.#text, e.detail);
      throw e;
    }
  }

  // ---- token helpers ----

  #peek(offset = 0): Token {
    const t = this.#tokens[Math.min(this.#i + offset, this.#tokens.length - 1)];
    if (t === undefined) throw new ParseFailure('internal: no tokens');
    return t;
  }
  #next(): Token {
    const t = this.#peek();
    if (this.#i < this.#tokens.length - 1) this.#i++;
    return t;
  }
  #isPunct(t: Token, p: string): boolean {
    return t.type === 'punct' && t.text === p;
  }
  #isKeyword(t: Token, word: string): boolean {
    return t.type === 'ident' && t.text.toLowerCase() === word;
  }
  #expectPunct(p: string): Token {
    const t = this.#peek();
    if (!this.#isPunct(t, p)) this.#unexpected(t, `'${p}'`);
    return this.#next();
  }
  #unexpected(t: Token, expected?: string): never {
    const want = expected === undefined ? '' : `, expected ${expected}`;
    if (t.type === 'eof') throw new ParseFailure(`unexpected end of expression at position ${t.pos}${want}`);
    throw new ParseFailure(`unexpected token '${t.text}' at position ${t.pos}${want}`);
  }
  #enter(pos: number): void {
    if (++this.#recursion > MAX_EXPR_DEPTH) {
      throw new ParseFailure(`expression nested too deeply (limit ${MAX_EXPR_DEPTH}) at position ${pos}`);
    }
  }
  #leave(): void {
    this.#recursion--;
  }
  #node<E extends Expr>(e: E, ...children: Expr[]): E {
    let h = 0;
    for (const c of children) h = Math.max(h, this.#height.get(c) ?? 1);
    if (h + 1 > MAX_EXPR_DEPTH) {
      throw new ParseFailure(`expression nested too deeply (limit ${MAX_EXPR_DEPTH}) at position ${e.pos}`);
    }
    this.#height.set(e, h + 1);
    return e;
  }

  // ---- grammar ----

  #parseOr(): Expr {
    const first = this.#parseAnd();
    const operands = [first];
    for (;;) {
      const t = this.#peek();
      if (!(this.#isKeyword(t, 'or') || this.#isPunct(t, '||'))) break;
      this.#next();
      operands.push(this.#parseAnd());
    }
    if (operands.length === 1) return first;
    return this.#node({ kind: 'logical', op: 'or', operands, pos: first.pos }, ...operands);
  }

  #parseAnd(): Expr {
    const first = this.#parseNot();
    const operands = [first];
    for (;;) {
      const t = this.#peek();
      if (!(this.#isKeyword(t, 'and') || this.#isPunct(t, '&&'))) break;
      this.#next();
      operands.push(this.#parseNot());
    }
    if (operands.length === 1) return first;
    return this.#node({ kind: 'logical', op: 'and', operands, pos: first.pos }, ...operands);
  }

  #parseNot(): Expr {
    const t = this.#peek();
    if (this.#isKeyword(t, 'not') || this.#isPunct(t, '!')) {
      this.#next();
      this.#enter(t.pos);
      const operand = this.#parseNot();
      this.#leave();
      return this.#node({ kind: 'not', operand, pos: t.pos }, operand);
    }
    return this.#parseComparison();
  }

  #parseComparison(): Expr {
    const left = this.#parseAdditive();
    const t = this.#peek();
    if (t.type === 'punct' && COMPARE_OPS.has(t.text)) {
      this.#next();
      const op1 = t.text as CompareOp;
      const mid = this.#parseAdditive();
      const t2 = this.#peek();
      if (t2.type === 'punct' && COMPARE_OPS.has(t2.text)) {
        const op2 = t2.text as CompareOp;
        const ascending = (op1 === '<' || op1 === '<=') && (op2 === '<' || op2 === '<=');
        const descending = (op1 === '>' || op1 === '>=') && (op2 === '>' || op2 === '>=');
        if (!ascending && !descending) this.#unexpected(t2);
        this.#next();
        const right = this.#parseAdditive();
        const range: Expr = ascending
          ? { kind: 'range', lower: left, lowerInclusive: op1 === '<=', operand: mid, upper: right, upperInclusive: op2 === '<=', pos: left.pos }
          : { kind: 'range', lower: right, lowerInclusive: op2 === '>=', operand: mid, upper: left, upperInclusive: op1 === '>=', pos: left.pos };
        return this.#node(range, left, mid, right);
      }
      return this.#node({ kind: 'compare', op: op1, left, right: mid, pos: t.pos }, left, mid);
    }
    if (this.#isKeyword(t, 'in') || (this.#isKeyword(t, 'not') && this.#isKeyword(this.#peek(1), 'in'))) {
      const negated = this.#isKeyword(t, 'not');
      this.#next();
      if (negated) this.#next();
      const list = this.#parseAdditive();
      return this.#node({ kind: 'in', operand: left, list, negated, pos: t.pos }, left, list);
    }
    const notLike = this.#isKeyword(t, 'not') && this.#isKeyword(this.#peek(1), 'like');
    if (this.#isKeyword(t, 'like') || notLike) {
      // `x not like p` is not Milvus syntax, but SQL users write it; it means `not (x like p)`.
      this.#next();
      if (notLike) this.#next();
      const pattern = this.#parseAdditive();
      const like = this.#node<Expr>({ kind: 'like', operand: left, pattern, pos: t.pos }, left, pattern);
      return notLike ? this.#node({ kind: 'not', operand: like, pos: t.pos }, like) : like;
    }
    if (this.#isKeyword(t, 'is')) {
      this.#next();
      let negated = false;
      if (this.#isKeyword(this.#peek(), 'not')) {
        this.#next();
        negated = true;
      }
      const n = this.#peek();
      if (!this.#isKeyword(n, 'null')) this.#unexpected(n, "'null'");
      this.#next();
      return this.#node({ kind: 'isNull', operand: left, negated, pos: t.pos }, left);
    }
    return left;
  }

  #parseAdditive(): Expr {
    let left = this.#parseMultiplicative();
    for (;;) {
      const t = this.#peek();
      if (!(this.#isPunct(t, '+') || this.#isPunct(t, '-'))) return left;
      this.#next();
      const right = this.#parseMultiplicative();
      left = this.#node({ kind: 'arith', op: t.text as '+' | '-', left, right, pos: t.pos }, left, right);
    }
  }

  #parseMultiplicative(): Expr {
    let left = this.#parseUnary();
    for (;;) {
      const t = this.#peek();
      if (!(this.#isPunct(t, '*') || this.#isPunct(t, '/') || this.#isPunct(t, '%'))) return left;
      this.#next();
      const right = this.#parseUnary();
      left = this.#node({ kind: 'arith', op: t.text as '*' | '/' | '%', left, right, pos: t.pos }, left, right);
    }
  }

  #parseUnary(): Expr {
    const t = this.#peek();
    if (this.#isPunct(t, '-') || this.#isPunct(t, '+')) {
      this.#next();
      this.#enter(t.pos);
      const operand = this.#parseUnary();
      this.#leave();
      return this.#sign(t, operand);
    }
    return this.#parsePower();
  }

  /** `-literal` folds into the literal so lists like `[-1, 2]` hold plain literals. */
  #sign(t: Token, operand: Expr): Expr {
    if (t.text === '+') return operand;
    if (operand.kind === 'int') return { kind: 'int', value: -operand.value, pos: t.pos };
    if (operand.kind === 'float') return { kind: 'float', value: -operand.value, pos: t.pos };
    return this.#node({ kind: 'neg', operand, pos: t.pos }, operand);
  }

  #parsePower(): Expr {
    let left = this.#parsePrimary();
    for (;;) {
      const t = this.#peek();
      if (!this.#isPunct(t, '**')) return left;
      this.#next();
      const right = this.#parsePowerOperand();
      left = this.#node({ kind: 'arith', op: '**', left, right, pos: t.pos }, left, right);
    }
  }

  /** Right operand of `**`: a primary, optionally signed (`2 ** -1`). */
  #parsePowerOperand(): Expr {
    const t = this.#peek();
    if (this.#isPunct(t, '-') || this.#isPunct(t, '+')) {
      this.#next();
      this.#enter(t.pos);
      const operand = this.#parsePowerOperand();
      this.#leave();
      return this.#sign(t, operand);
    }
    return this.#parsePrimary();
  }

  #parsePrimary(): Expr {
    const t = this.#peek();
    switch (t.type) {
      case 'int':
        this.#next();
        return { kind: 'int', value: t.value as bigint, pos: t.pos };
      case 'float':
        this.#next();
        return { kind: 'float', value: t.value as number, pos: t.pos };
      case 'string':
        this.#next();
        return { kind: 'string', value: t.value as string, pos: t.pos };
      case 'ident':
        return this.#parseIdentifierLike();
      case 'punct':
        if (t.text === '(') {
          this.#next();
          this.#enter(t.pos);
          const e = this.#parseOr();
          this.#leave();
          this.#expectPunct(')');
          return e;
        }
        if (t.text === '[') return this.#parseList();
        if (t.text === '{') return this.#parseTemplate();
        return this.#unexpected(t);
      case 'eof':
        return this.#unexpected(t);
    }
  }

  #parseList(): Expr {
    const open = this.#next();
    this.#enter(open.pos);
    const items: Expr[] = [];
    while (!this.#isPunct(this.#peek(), ']')) {
      items.push(this.#parseOr());
      if (this.#isPunct(this.#peek(), ',')) {
        this.#next();
        continue;
      }
      if (!this.#isPunct(this.#peek(), ']')) this.#unexpected(this.#peek(), "',' or ']'");
    }
    this.#next();
    this.#leave();
    return this.#node({ kind: 'list', items, pos: open.pos }, ...items);
  }

  #parseTemplate(): Expr {
    const open = this.#next();
    const name = this.#peek();
    if (name.type !== 'ident') this.#unexpected(name, 'a template variable name');
    this.#next();
    this.#expectPunct('}');
    if (!Object.prototype.hasOwnProperty.call(this.#templates, name.text)) {
      throw new ParseFailure(`template variable '${name.text}' at position ${open.pos} has no value`);
    }
    return this.#templateValue(this.#templates[name.text], name.text, open.pos, 0);
  }

  #templateValue(v: unknown, name: string, pos: number, depth: number): Expr {
    if (depth > MAX_EXPR_DEPTH) throw new ParseFailure(`template variable '${name}' is nested too deeply`);
    switch (typeof v) {
      case 'bigint':
        return { kind: 'int', value: v, pos };
      case 'number':
        return Number.isInteger(v) ? { kind: 'int', value: BigInt(v), pos } : { kind: 'float', value: v, pos };
      case 'string':
        return { kind: 'string', value: v, pos };
      case 'boolean':
        return { kind: 'bool', value: v, pos };
      default:
        if (Array.isArray(v)) {
          const items = v.map((x: unknown) => this.#templateValue(x, name, pos, depth + 1));
          return { kind: 'list', items, pos };
        }
        throw new ParseFailure(`template variable '${name}' at position ${pos} has unsupported value ${v === null ? 'null' : typeof v}`);
    }
  }

  #parseIdentifierLike(): Expr {
    const t = this.#next();
    const lower = t.text.toLowerCase();
    if (lower === 'true' || lower === 'false') return { kind: 'bool', value: lower === 'true', pos: t.pos };
    if (lower === 'exists') {
      this.#enter(t.pos);
      const operand = this.#parsePrimary();
      this.#leave();
      return this.#node({ kind: 'exists', operand, pos: t.pos }, operand);
    }
    if (RESERVED.has(lower)) this.#unexpected(t);
    if ((lower === 'iso' || lower === 'interval') && this.#peek().type === 'string') {
      // A Timestamptz literal (`ISO '...'`, `INTERVAL 'P1D'`); a field named iso is still a field.
      const arg = this.#next();
      return { kind: 'call', fn: lower, args: [{ kind: 'string', value: arg.value as string, pos: arg.pos }], pos: t.pos };
    }
    if (this.#isPunct(this.#peek(), '(')) return this.#parseCall(t, lower);
    const path: PathElement[] = [];
    while (this.#isPunct(this.#peek(), '[')) {
      this.#next();
      const k = this.#peek();
      if (k.type === 'string') path.push(k.value as string);
      else if (k.type === 'int' && /^[0-9]+$/.test(k.text) && (k.value as bigint) <= BigInt(Number.MAX_SAFE_INTEGER)) {
        path.push(Number(k.value as bigint));
      } else this.#unexpected(k, 'a string key or a non-negative decimal index');
      this.#next();
      this.#expectPunct(']');
    }
    return { kind: 'ident', name: t.text, path, pos: t.pos };
  }

  #parseCall(nameToken: Token, lower: string): Expr {
    const fn = FUNCTIONS.get(lower);
    if (fn === undefined) throw new ParseFailure(`unknown function '${nameToken.text}' at position ${nameToken.pos}`);
    this.#next(); // '('
    this.#enter(nameToken.pos);
    const args: Expr[] = [];
    while (!this.#isPunct(this.#peek(), ')')) {
      if (fn === 'text_match' && args.length === 2) {
        args.push(this.#minimumShouldMatch());
        if (!this.#isPunct(this.#peek(), ')')) this.#unexpected(this.#peek(), "')'");
        break;
      }
      args.push(this.#parseOr());
      if (this.#isPunct(this.#peek(), ',')) {
        this.#next();
        continue;
      }
      if (!this.#isPunct(this.#peek(), ')')) this.#unexpected(this.#peek(), "',' or ')'");
    }
    this.#next();
    this.#leave();
    const arity = fn === 'array_length' || fn === 'is_null' || fn === 'is_not_null' ? 1 : fn === 'st_dwithin' ? 3 : 2;
    // text_match takes an optional `minimum_should_match=N`, phrase_match an optional slop.
    const optionalThird = (fn === 'text_match' || fn === 'phrase_match') && args.length === 3;
    if (args.length !== arity && !optionalThird) {
      throw new ParseFailure(
        `function '${nameToken.text}' at position ${nameToken.pos} takes ${arity} argument${arity === 1 ? '' : 's'}, got ${args.length}`,
      );
    }
    if (fn === 'is_null' || fn === 'is_not_null') {
      const operand = args[0] as Expr;
      return this.#node({ kind: 'isNull', operand, negated: fn === 'is_not_null', pos: nameToken.pos }, operand);
    }
    return this.#node({ kind: 'call', fn, args, pos: nameToken.pos }, ...args);
  }

  /** `minimum_should_match = <integer>`, the only option of text_match (an integer literal, as in Milvus's grammar). */
  #minimumShouldMatch(): Expr {
    const name = this.#next();
    if (name.type !== 'ident' || name.text.toLowerCase() !== 'minimum_should_match') this.#unexpected(name, "'minimum_should_match='");
    this.#expectPunct('=');
    const v = this.#next();
    if (v.type !== 'int') this.#unexpected(v, 'an integer for minimum_should_match');
    return { kind: 'int', value: v.value as bigint, pos: v.pos };
  }
}
