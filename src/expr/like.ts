/**
 * LIKE patterns: `%` matches any run of characters, `_` exactly one (a code point), `\%` `\_` `\\` are
 * literal. Patterns Milvus optimises (exact, prefix, suffix, infix) become string methods; anything else
 * a linear-memory wildcard matcher.
 */

export type StringMatcher = (s: string) => boolean;

type Piece = { readonly wild: '%' | '_' } | { readonly literal: string };

function splitPattern(pattern: string): Piece[] {
  const pieces: Piece[] = [];
  let literal = '';
  const flush = (): void => {
    if (literal !== '') pieces.push({ literal });
    literal = '';
  };
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i] as string;
    if (c === '\\' && i + 1 < pattern.length) {
      const next = pattern[i + 1] as string;
      if (next === '%' || next === '_' || next === '\\') {
        literal += next;
        i++;
        continue;
      }
    }
    if (c === '%' || c === '_') {
      flush();
      pieces.push({ wild: c });
    } else literal += c;
  }
  flush();
  return pieces;
}

export function likeMatcher(pattern: string): StringMatcher {
  const pieces = splitPattern(pattern);
  const hasOne = pieces.some((p) => 'wild' in p && p.wild === '_');
  if (!hasOne) {
    // Collapse runs of '%': only literals and "any run" remain.
    const lits = pieces.map((p) => ('literal' in p ? p.literal : null));
    const shape = lits
      .map((l) => (l === null ? '%' : 'L'))
      .join('')
      .replace(/%+/g, '%');
    const literals = lits.filter((l): l is string => l !== null);
    const l0 = literals[0] ?? '';
    switch (shape) {
      case '':
        return (s) => s === '';
      case '%':
        return () => true;
      case 'L':
        return (s) => s === l0;
      case 'L%':
        return (s) => s.startsWith(l0);
      case '%L':
        return (s) => s.endsWith(l0);
      case '%L%':
        return (s) => s.includes(l0);
      default:
        break;
    }
  }
  return wildcardMatcher(pieces);
}

const ANY_RUN = -1;
const ANY_ONE = -2;

function codePoints(s: string): number[] {
  const out: number[] = [];
  for (const ch of s) out.push(ch.codePointAt(0) as number);
  return out;
}

/**
 * General case: the two-pointer wildcard match with backtracking to the last `%`, O(len(s) * len(p)).
 * A regular expression would do, but `.*a.*a.*a.*b` backtracks polynomially with the number of `%`.
 */
function wildcardMatcher(pieces: readonly Piece[]): StringMatcher {
  const p: number[] = [];
  for (const piece of pieces) {
    if ('literal' in piece) for (const c of codePoints(piece.literal)) p.push(c);
    else p.push(piece.wild === '%' ? ANY_RUN : ANY_ONE);
  }
  return (s) => {
    const cs = codePoints(s);
    let i = 0;
    let j = 0;
    let star = -1;
    let mark = 0;
    while (i < cs.length) {
      const pj = p[j];
      if (pj !== undefined && (pj === ANY_ONE || pj === cs[i])) {
        i++;
        j++;
      } else if (pj === ANY_RUN) {
        star = j++;
        mark = i;
      } else if (star >= 0) {
        j = star + 1;
        i = ++mark;
      } else return false;
    }
    while (p[j] === ANY_RUN) j++;
    return j === p.length;
  };
}
