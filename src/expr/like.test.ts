import { describe, expect, it } from 'vitest';
import { likeMatcher } from './like.js';

describe('likeMatcher', () => {
  const m = (pattern: string, s: string): boolean => likeMatcher(pattern)(s);

  it('handles exact, prefix, suffix and infix patterns', () => {
    expect(m('abc', 'abc')).toBe(true);
    expect(m('abc', 'abcd')).toBe(false);
    expect(m('ab%', 'abcd')).toBe(true);
    expect(m('ab%', 'xab')).toBe(false);
    expect(m('%cd', 'abcd')).toBe(true);
    expect(m('%bc%', 'abcd')).toBe(true);
    expect(m('%%bc%%%', 'abcd')).toBe(true);
    expect(m('%', '')).toBe(true);
    expect(m('', '')).toBe(true);
    expect(m('', 'a')).toBe(false);
  });

  it('matches _ as exactly one code point', () => {
    expect(m('a_c', 'abc')).toBe(true);
    expect(m('a_c', 'ac')).toBe(false);
    expect(m('a_c', 'a😀c')).toBe(true);
    expect(m('_', 'é')).toBe(true);
    expect(m('__', '😀')).toBe(false);
  });

  it('matches general patterns with several wildcards', () => {
    expect(m('a%b%c', 'axxbyyc')).toBe(true);
    expect(m('a%b%c', 'axxbyy')).toBe(false);
    expect(m('%a_b%', 'xxaZbyy')).toBe(true);
    expect(m('%a_b', 'aab')).toBe(true);
    expect(m('a%a%a', 'aa')).toBe(false);
    expect(m('a%a%a', 'aaa')).toBe(true);
  });

  it('treats escaped % _ and \\ as literals', () => {
    expect(m('50\\%', '50%')).toBe(true);
    expect(m('50\\%', '500')).toBe(false);
    expect(m('a\\_b', 'a_b')).toBe(true);
    expect(m('a\\_b', 'axb')).toBe(false);
    expect(m('a\\\\%', 'a\\bc')).toBe(true);
    expect(m('a\\d', 'a\\d')).toBe(true);
    expect(m('%.*[x]%', 'a.*[x]b')).toBe(true);
  });

  it('stays fast on patterns that make regular expressions backtrack', () => {
    const pattern = `${'%a'.repeat(30)}b`;
    const s = 'a'.repeat(5000);
    expect(m(pattern, s)).toBe(false);
  });
});
