/**
 * Tokeniser for Milvus filter expressions (the lexer rules of Milvus's Plan.g4). Keywords are not
 * distinguished here: they are identifiers the parser compares case-insensitively.
 *
 * `>>`, `<<`, `&`, `|`, `^`, `~` and a lone `=` are not tokens: Milvus lexes the bit operators but cannot
 * evaluate them, and reporting the first character that does not fit gives the clearer position. The one
 * `=` Milvus's grammar has, in `text_match(f, 'q', minimum_should_match=2)`, is lexed only there.
 */

export type TokenType = 'int' | 'float' | 'string' | 'ident' | 'punct' | 'eof';

export interface Token {
  readonly type: TokenType;
  /** Source text of the token (for punctuation and identifiers: the token itself). */
  readonly text: string;
  readonly pos: number;
  /** int: bigint, float: number, string: the unescaped value. */
  readonly value?: bigint | number | string;
}

export class LexError {
  readonly detail: string;
  constructor(detail: string) {
    this.detail = detail;
  }
}

const PUNCT_2 = new Set(['==', '!=', '<=', '>=', '&&', '||', '**']);
const PUNCT_1 = new Set(['<', '>', '+', '-', '*', '/', '%', '!', '(', ')', '[', ']', ',', '{', '}']);

function isDigit(c: string | undefined): boolean {
  return c !== undefined && c >= '0' && c <= '9';
}
function isIdentStart(c: string | undefined): boolean {
  return c !== undefined && ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c === '_');
}
function isIdentPart(c: string | undefined): boolean {
  return isIdentStart(c) || isDigit(c);
}
function isHexDigit(c: string | undefined): boolean {
  return c !== undefined && /^[0-9a-fA-F]$/.test(c);
}

function describeChar(c: string): string {
  const code = c.codePointAt(0) ?? 0;
  return code < 0x20 || code === 0x7f ? `U+${code.toString(16).padStart(4, '0')}` : `'${c}'`;
}

export function tokenize(text: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  const n = text.length;
  while (i < n) {
    const c = text[i] as string;
    if (c === ' ' || c === '\t' || c === '\n' || c === '\r') {
      i++;
      continue;
    }
    const start = i;
    if (isDigit(c) || (c === '.' && isDigit(text[i + 1]))) {
      const t = lexNumber(text, i);
      tokens.push(t.token);
      i = t.end;
      continue;
    }
    if ((c === 'r' || c === 'R') && (text[i + 1] === '"' || text[i + 1] === "'")) {
      const t = lexString(text, i + 1, true);
      tokens.push({ type: 'string', text: text.slice(start, t.end), pos: start, value: t.value });
      i = t.end;
      continue;
    }
    if (isIdentStart(c)) {
      i++;
      while (isIdentPart(text[i])) i++;
      tokens.push({ type: 'ident', text: text.slice(start, i), pos: start });
      continue;
    }
    if (c === '$') {
      if (text.startsWith('$meta', i) && !isIdentPart(text[i + 5])) {
        tokens.push({ type: 'ident', text: '$meta', pos: start });
        i += 5;
        continue;
      }
      throw new LexError(`unexpected character '$' at position ${i} (only $meta may start with '$')`);
    }
    if (c === '"' || c === "'") {
      const t = lexString(text, i, false);
      tokens.push({ type: 'string', text: text.slice(start, t.end), pos: start, value: t.value });
      i = t.end;
      continue;
    }
    const two = text.slice(i, i + 2);
    if (PUNCT_2.has(two)) {
      tokens.push({ type: 'punct', text: two, pos: start });
      i += 2;
      continue;
    }
    if (PUNCT_1.has(c)) {
      tokens.push({ type: 'punct', text: c, pos: start });
      i++;
      continue;
    }
    const last = tokens[tokens.length - 1];
    if (c === '=' && last?.type === 'ident' && last.text.toLowerCase() === 'minimum_should_match') {
      tokens.push({ type: 'punct', text: c, pos: start });
      i++;
      continue;
    }
    const hint = c === '=' ? ' (use == to compare)' : '';
    const ch = String.fromCodePoint(text.codePointAt(i) ?? 0);
    throw new LexError(`unexpected character ${describeChar(ch)} at position ${i}${hint}`);
  }
  tokens.push({ type: 'eof', text: '', pos: n });
  return tokens;
}

function lexNumber(text: string, start: number): { token: Token; end: number } {
  let i = start;
  const c0 = text[i];
  const c1 = text[i + 1];
  if (c0 === '0' && (c1 === 'x' || c1 === 'X' || c1 === 'b' || c1 === 'B')) {
    const hex = c1 === 'x' || c1 === 'X';
    i += 2;
    const digitsStart = i;
    while (hex ? isHexDigit(text[i]) : text[i] === '0' || text[i] === '1') i++;
    if (i === digitsStart || isIdentPart(text[i]) || text[i] === '.') {
      throw new LexError(`invalid ${hex ? 'hexadecimal' : 'binary'} literal '${text.slice(start, i + 1)}' at position ${start}`);
    }
    const t = text.slice(start, i);
    return { token: { type: 'int', text: t, pos: start, value: BigInt(t) }, end: i };
  }
  while (isDigit(text[i])) i++;
  let isFloat = false;
  if (text[i] === '.') {
    isFloat = true;
    i++;
    while (isDigit(text[i])) i++;
  }
  if (text[i] === 'e' || text[i] === 'E') {
    let j = i + 1;
    if (text[j] === '+' || text[j] === '-') j++;
    if (isDigit(text[j])) {
      isFloat = true;
      i = j;
      while (isDigit(text[i])) i++;
    }
  }
  const t = text.slice(start, i);
  if (isFloat) {
    return { token: { type: 'float', text: t, pos: start, value: Number(t) }, end: i };
  }
  if (t.length > 1 && t[0] === '0') {
    // C-style octal, as Milvus's IntegerConstant.
    if (!/^0[0-7]+$/.test(t)) throw new LexError(`invalid octal literal '${t}' at position ${start}`);
    return { token: { type: 'int', text: t, pos: start, value: BigInt(`0o${t.slice(1)}`) }, end: i };
  }
  return { token: { type: 'int', text: t, pos: start, value: BigInt(t) }, end: i };
}

const SIMPLE_ESCAPES: Readonly<Record<string, string>> = {
  n: '\n',
  t: '\t',
  r: '\r',
  a: '\x07',
  b: '\b',
  f: '\f',
  v: '\v',
  '\\': '\\',
  '"': '"',
  "'": "'",
  '?': '?',
};

/**
 * A quoted string starting at `quotePos`. Unknown escapes keep their backslash (`"50\%"` stays `50\%`) so
 * that LIKE patterns can escape `%` and `_` with a single backslash. Raw strings keep every backslash.
 */
function lexString(text: string, quotePos: number, raw: boolean): { value: string; end: number } {
  const quote = text[quotePos];
  let i = quotePos + 1;
  let out = '';
  for (;;) {
    const c = text[i];
    if (c === undefined || c === '\n' || c === '\r') {
      throw new LexError(`unterminated string literal starting at position ${quotePos}`);
    }
    if (c === quote) return { value: out, end: i + 1 };
    if (c !== '\\') {
      out += c;
      i++;
      continue;
    }
    const e = text[i + 1];
    if (e === undefined || e === '\n' || e === '\r') {
      throw new LexError(`unterminated string literal starting at position ${quotePos}`);
    }
    if (raw) {
      out += c + e;
      i += 2;
      continue;
    }
    const simple = SIMPLE_ESCAPES[e];
    if (simple !== undefined) {
      out += simple;
      i += 2;
      continue;
    }
    if (e >= '0' && e <= '7') {
      let j = i + 1;
      while (j < i + 4 && text[j] !== undefined && (text[j] as string) >= '0' && (text[j] as string) <= '7') j++;
      const code = parseInt(text.slice(i + 1, j), 8);
      out += String.fromCharCode(code);
      i = j;
      continue;
    }
    if (e === 'x' || e === 'u' || e === 'U') {
      const len = e === 'x' ? 2 : e === 'u' ? 4 : 8;
      const hex = text.slice(i + 2, i + 2 + len);
      if (hex.length !== len || !/^[0-9a-fA-F]+$/.test(hex)) {
        throw new LexError(`invalid escape sequence '\\${e}${hex}' at position ${i}`);
      }
      const code = parseInt(hex, 16);
      if (code > 0x10ffff) throw new LexError(`invalid escape sequence '\\${e}${hex}' at position ${i}`);
      out += String.fromCodePoint(code);
      i += 2 + len;
      continue;
    }
    out += c + e;
    i += 2;
  }
}
