import { describe, expect, it } from 'vitest';
import { QuiverError } from '../common/errors.js';
import { MAX_EXPR_DEPTH, MAX_EXPR_LENGTH } from './ast.js';
import { parseExpr, type TemplateValues } from './parser.js';
import { show } from './test-helpers.js';

const p = (text: string, templates?: TemplateValues): string => show(parseExpr(text, templates));

function parseErrorOf(text: string, templates?: TemplateValues): QuiverError {
  try {
    parseExpr(text, templates);
  } catch (e) {
    expect(e).toBeInstanceOf(QuiverError);
    return e as QuiverError;
  }
  throw new Error(`expected ${text} to fail`);
}

describe('literals', () => {
  it('parses integers: decimal, hex, octal, binary, beyond 2^53', () => {
    expect(p('x == 42')).toBe('(== x 42)');
    expect(p('x == 0x1F')).toBe('(== x 31)');
    expect(p('x == 0X1f')).toBe('(== x 31)');
    expect(p('x == 017')).toBe('(== x 15)');
    expect(p('x == 0b101')).toBe('(== x 5)');
    expect(p('x == 0')).toBe('(== x 0)');
    expect(p('x == 9007199254740993')).toBe('(== x 9007199254740993)');
    expect(p('x == -9223372036854775808')).toBe('(== x -9223372036854775808)');
    const e = parseExpr('x == 9007199254740993');
    expect(e.kind === 'compare' && e.right.kind === 'int' && e.right.value).toBe(9007199254740993n);
  });

  it('parses floats', () => {
    expect(p('x == 1.5')).toBe('(== x 1.5f)');
    expect(p('x == 1e3')).toBe('(== x 1000f)');
    expect(p('x == .5')).toBe('(== x 0.5f)');
    expect(p('x == 1.')).toBe('(== x 1f)');
    expect(p('x == 2.5E-1')).toBe('(== x 0.25f)');
    expect(p('x == -1.5')).toBe('(== x -1.5f)');
  });

  it('parses strings in both quotes with escapes', () => {
    expect(p('x == "a b"')).toBe('(== x "a b")');
    expect(p("x == 'a b'")).toBe('(== x "a b")');
    expect(p(String.raw`x == "a\"b"`)).toBe(String.raw`(== x "a\"b")`);
    expect(p(String.raw`x == 'it\'s'`)).toBe(`(== x "it's")`);
    expect(p(String.raw`x == "tab\tnl\n"`)).toBe(String.raw`(== x "tab\tnl\n")`);
    expect(p(String.raw`x == "\u00e9\x41\101"`)).toBe('(== x "éAA")');
    expect(p(String.raw`x == "back\\slash"`)).toBe(String.raw`(== x "back\\slash")`);
    expect(p(String.raw`x like "50\%"`)).toBe(String.raw`(like x "50\\%")`);
    expect(p(String.raw`x == r"a\d"`)).toBe(String.raw`(== x "a\\d")`);
    expect(p('x == ""')).toBe('(== x "")');
  });

  it('parses booleans in the spellings Milvus accepts', () => {
    expect(p('x == true')).toBe('(== x true)');
    expect(p('x == True')).toBe('(== x true)');
    expect(p('x == TRUE')).toBe('(== x true)');
    expect(p('x != false')).toBe('(!= x false)');
    expect(p('x != FALSE')).toBe('(!= x false)');
  });

  it('parses lists, empty and nested, with a trailing comma', () => {
    expect(p('x in [1, 2, "a"]')).toBe('(in x [1, 2, "a"])');
    expect(p('x in []')).toBe('(in x [])');
    expect(p('x in [ ]')).toBe('(in x [])');
    expect(p('x in [1,]')).toBe('(in x [1])');
    expect(p('json_contains_any(m, [[1, 2], [3]])')).toBe('(json_contains_any m [[1, 2], [3]])');
    expect(p('x in [-1, -2.5]')).toBe('(in x [-1, -2.5f])');
  });
});

describe('identifiers', () => {
  it('parses field names and JSON / array access', () => {
    expect(p('_a1 > 0')).toBe('(> _a1 0)');
    expect(p('meta["a"]["b"] > 3')).toBe('(> meta["a"]["b"] 3)');
    expect(p("meta['a'][0] > 3")).toBe('(> meta["a"][0] 3)');
    expect(p('arr[0] > 2')).toBe('(> arr[0] 2)');
    expect(p('$meta["key"] == 1')).toBe('(== $meta["key"] 1)');
  });

  it('rejects bad path elements with positions', () => {
    expect(parseErrorOf('arr[-1] > 2').message).toContain("unexpected token '-' at position 4");
    expect(parseErrorOf('arr[x] > 2').message).toContain("unexpected token 'x' at position 4");
    expect(parseErrorOf('arr[1.5] > 2').message).toContain("unexpected token '1.5' at position 4");
  });
});

describe('operators and precedence', () => {
  it('binds and tighter than or', () => {
    expect(p('a or b and c')).toBe('(or a (and b c))');
    expect(p('a and b or c')).toBe('(or (and a b) c)');
    expect(p('(a or b) and c')).toBe('(and (or a b) c)');
    expect(p('a || b && c')).toBe('(or a (and b c))');
  });

  it('flattens chains of and / or', () => {
    expect(p('a and b and c and d')).toBe('(and a b c d)');
    expect(p('a or b or c')).toBe('(or a b c)');
  });

  it('parses not / ! over comparisons and logical operators', () => {
    expect(p('not a == 1')).toBe('(not (== a 1))');
    expect(p('!a')).toBe('(not a)');
    expect(p('not a and b')).toBe('(and (not a) b)');
    expect(p('not (a or b)')).toBe('(not (or a b))');
    expect(p('not not a')).toBe('(not (not a))');
    expect(p('! (x > 1)')).toBe('(not (> x 1))');
  });

  it('keywords are case-insensitive', () => {
    expect(p('a AND b Or c')).toBe('(or (and a b) c)');
    expect(p('NOT a')).toBe('(not a)');
    expect(p('x IN [1]')).toBe('(in x [1])');
    expect(p('x Not In [1]')).toBe('(not-in x [1])');
    expect(p('x LIKE "a%"')).toBe('(like x "a%")');
    expect(p('x IS NULL')).toBe('(is-null x)');
    expect(p('x Is Not Null')).toBe('(is-not-null x)');
    expect(p('EXISTS m["a"]')).toBe('(exists m["a"])');
  });

  it('parses every comparison operator', () => {
    for (const op of ['==', '!=', '<', '<=', '>', '>=']) expect(p(`x ${op} 1`)).toBe(`(${op} x 1)`);
  });

  it('parses chained ranges, normalising the descending form', () => {
    expect(p('1 < x < 5')).toBe('(range 1 < x < 5)');
    expect(p('1 <= x < 5')).toBe('(range 1 <= x < 5)');
    expect(p('1 < x <= 5')).toBe('(range 1 < x <= 5)');
    expect(p('10 >= x > 2')).toBe('(range 2 < x <= 10)');
    expect(p('10 > x >= 2')).toBe('(range 2 <= x < 10)');
    expect(p('-1.5 < m["a"] < 2')).toBe('(range -1.5f < m["a"] < 2)');
    expect(parseErrorOf('1 < x > 5').message).toContain("unexpected token '>' at position 6");
    expect(parseErrorOf('1 == x == 5').message).toContain("unexpected token '==' at position 7");
  });

  it('parses arithmetic with the usual precedence; ** is left-associative and binds tightest', () => {
    expect(p('a + 2 > 5')).toBe('(> (+ a 2) 5)');
    expect(p('a + b * c == 1')).toBe('(== (+ a (* b c)) 1)');
    expect(p('(a + b) * c == 1')).toBe('(== (* (+ a b) c) 1)');
    expect(p('a - b - c == 1')).toBe('(== (- (- a b) c) 1)');
    expect(p('a % 3 == 0')).toBe('(== (% a 3) 0)');
    expect(p('a / 2 == b')).toBe('(== (/ a 2) b)');
    expect(p('a ** 2 ** 3 > 1')).toBe('(> (** (** a 2) 3) 1)');
    expect(p('-a ** 2 > 1')).toBe('(> (neg (** a 2)) 1)');
    expect(p('a ** -1 > 1')).toBe('(> (** a -1) 1)');
    expect(p('-a > 1')).toBe('(> (neg a) 1)');
    expect(p('+a > 1')).toBe('(> a 1)');
    expect(p('a - -1 > 1')).toBe('(> (- a -1) 1)');
  });

  it('parses in / not in with lists and templates', () => {
    expect(p('x in [1, 2]')).toBe('(in x [1, 2])');
    expect(p('x not in ["a"]')).toBe('(not-in x ["a"])');
    expect(p('x in {ids}', { ids: [1, 2n, 'a'] })).toBe('(in x [1, 2, "a"])');
    expect(p('x in [1] and y')).toBe('(and (in x [1]) y)');
  });

  it('parses like', () => {
    expect(p('title like "abc%"')).toBe('(like title "abc%")');
    expect(p('m["s"] like "_b%"')).toBe('(like m["s"] "_b%")');
    expect(p('title not like "a%"')).toBe('(not (like title "a%"))');
    expect(p('title NOT LIKE "a%" and x')).toBe('(and (not (like title "a%")) x)');
  });

  it('parses null checks, postfix and function style', () => {
    expect(p('x is null')).toBe('(is-null x)');
    expect(p('x is not null')).toBe('(is-not-null x)');
    expect(p('m["a"] IS NULL')).toBe('(is-null m["a"])');
    expect(p('ISNULL(x)')).toBe('(is-null x)');
    expect(p('is_null(x)')).toBe('(is-null x)');
    expect(p('IS_NOT_NULL(x)')).toBe('(is-not-null x)');
    expect(p('isnotnull(x)')).toBe('(is-not-null x)');
    expect(parseErrorOf('x is 3').message).toContain("unexpected token '3' at position 5, expected 'null'");
  });

  it('parses exists', () => {
    expect(p('exists m["a"]')).toBe('(exists m["a"])');
    expect(p('exists m["a"] and x')).toBe('(and (exists m["a"]) x)');
    expect(p('not exists m["a"]')).toBe('(not (exists m["a"]))');
  });

  it('parses JSON and array functions case-insensitively', () => {
    expect(p('json_contains(meta["tags"], 1)')).toBe('(json_contains meta["tags"] 1)');
    expect(p('JSON_CONTAINS_ALL(m, [1, 2])')).toBe('(json_contains_all m [1, 2])');
    expect(p('json_contains_any(m, [1])')).toBe('(json_contains_any m [1])');
    expect(p('array_contains(arr, 3)')).toBe('(array_contains arr 3)');
    expect(p('ARRAY_CONTAINS(arr, 3)')).toBe('(array_contains arr 3)');
    expect(p('array_contains_all(arr, [1,2])')).toBe('(array_contains_all arr [1, 2])');
    expect(p('Array_Contains_Any(arr, [1,2])')).toBe('(array_contains_any arr [1, 2])');
    expect(p('array_length(arr) == 3')).toBe('(== (array_length arr) 3)');
    expect(parseErrorOf('frobnicate(x)').message).toContain("unknown function 'frobnicate' at position 0");
    expect(parseErrorOf('array_contains(x)').message).toContain("function 'array_contains' at position 0 takes 2 arguments, got 1");
    expect(parseErrorOf('array_length(x, 1) == 1').message).toContain('takes 1 argument, got 2');
  });

  it('allows whitespace and newlines anywhere between tokens', () => {
    expect(p('  a\n>\t1  ')).toBe('(> a 1)');
  });
});

describe('templates', () => {
  it('substitutes scalars and lists anywhere a literal may appear', () => {
    expect(p('int64 < {value}', { value: 5 })).toBe('(< int64 5)');
    expect(p('x == {v}', { v: 2.5 })).toBe('(== x 2.5f)');
    expect(p('x == {v}', { v: 12345678901234567890n })).toBe('(== x 12345678901234567890)');
    expect(p('x == {s}', { s: 'str' })).toBe('(== x "str")');
    expect(p('x == {b}', { b: true })).toBe('(== x true)');
    expect(p('1 < x < {hi}', { hi: 7 })).toBe('(range 1 < x < 7)');
    expect(p('array_contains_any(a, {l})', { l: [[1], [2, 3]] })).toBe('(array_contains_any a [[1], [2, 3]])');
    expect(p('x in {l}', { l: [] })).toBe('(in x [])');
  });

  it('names a missing template variable', () => {
    const e = parseErrorOf('x < {value}', { other: 1 });
    expect(e.kind).toBe('ExprInvalid');
    expect(e.message).toContain("template variable 'value' at position 4 has no value");
    expect(parseErrorOf('x < {value}').message).toContain("'value'");
  });

  it('rejects unsupported template values', () => {
    expect(parseErrorOf('x < {v}', { v: null }).message).toContain("template variable 'v' at position 4 has unsupported value null");
    expect(parseErrorOf('x < {v}', { v: { a: 1 } }).message).toContain('unsupported value object');
    expect(parseErrorOf('x < {v}', { v: [1, undefined] }).message).toContain('unsupported value undefined');
  });

  it('does not read inherited properties as templates', () => {
    expect(parseErrorOf('x < {toString}', {}).message).toContain("'toString'");
  });
});

describe('errors', () => {
  it('names the expression text and the position of the offending token', () => {
    const e = parseErrorOf('id >> 3');
    expect(e.kind).toBe('ExprInvalid');
    expect(e.message).toBe("cannot parse expression: id >> 3, error: unexpected token '>' at position 4");
  });

  it('reports end of input', () => {
    expect(parseErrorOf('a ==').message).toBe('cannot parse expression: a ==, error: unexpected end of expression at position 4');
    expect(parseErrorOf('(a == 1').message).toContain("unexpected end of expression at position 7, expected ')'");
    expect(parseErrorOf('x in [1, 2').message).toContain("unexpected end of expression at position 10, expected ',' or ']'");
  });

  it('reports lexical errors with positions', () => {
    expect(parseErrorOf('a = 1').message).toContain("unexpected character '=' at position 2 (use == to compare)");
    expect(parseErrorOf('a == "abc').message).toContain('unterminated string literal starting at position 5');
    expect(parseErrorOf('a == 1 @').message).toContain("unexpected character '@' at position 7");
    expect(parseErrorOf('a & b').message).toContain("unexpected character '&' at position 2");
    expect(parseErrorOf('a == 0x').message).toContain("invalid hexadecimal literal '0x' at position 5");
    expect(parseErrorOf('a == 09').message).toContain("invalid octal literal '09' at position 5");
    expect(parseErrorOf('$foo == 1').message).toContain("unexpected character '$' at position 0");
    expect(parseErrorOf(String.raw`a == "\x4"`).message).toContain('invalid escape sequence');
  });

  it('rejects trailing tokens and stray keywords', () => {
    expect(parseErrorOf('a == 1 2').message).toContain("unexpected token '2' at position 7");
    expect(parseErrorOf('a == 1)').message).toContain("unexpected token ')' at position 6");
    expect(parseErrorOf('and a').message).toContain("unexpected token 'and' at position 0");
    expect(parseErrorOf('a == not b').message).toContain("unexpected token 'not' at position 5");
    expect(parseErrorOf('a in').message).toContain('unexpected end of expression at position 4');
  });

  it('rejects an empty expression', () => {
    expect(parseErrorOf('').message).toContain('empty expression');
    expect(parseErrorOf('   ').message).toContain('empty expression');
  });

  it('limits nesting depth instead of overflowing the stack', () => {
    const deep = `${'('.repeat(5000)}a${')'.repeat(5000)}`;
    expect(parseErrorOf(deep).message).toContain(`nested too deeply (limit ${MAX_EXPR_DEPTH})`);
    expect(parseErrorOf(`${'not '.repeat(5000)}a`).message).toContain('nested too deeply');
    expect(parseErrorOf(`a == ${'-'.repeat(5000)}b`).message).toContain('nested too deeply');
    expect(parseErrorOf(`a == ${'b + '.repeat(5000)}1`).message).toContain('nested too deeply');
    expect(parseErrorOf(`a in ${'['.repeat(5000)}`).message).toContain('nested too deeply');
    // Nesting within the limit is fine.
    expect(p(`${'('.repeat(50)}a${')'.repeat(50)}`)).toBe('a');
  });

  it('accepts long flat or-chains (they do not nest)', () => {
    const text = Array.from({ length: 5000 }, (_, i) => `id == ${i}`).join(' or ');
    const e = parseExpr(text);
    expect(e.kind === 'logical' && e.operands.length).toBe(5000);
  });

  it('limits the expression length', () => {
    const e = parseErrorOf(`a == ${'1'.repeat(MAX_EXPR_LENGTH)}`);
    expect(e.message).toContain(`the limit is ${MAX_EXPR_LENGTH}`);
    expect(e.message.length).toBeLessThan(400);
  });

  it('throws only QuiverError for non-string input', () => {
    expect(() => parseExpr(42 as unknown as string)).toThrow(QuiverError);
  });
});
