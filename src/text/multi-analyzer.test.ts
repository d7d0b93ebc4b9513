import { describe, expect, it } from 'vitest';
import { parseMultiAnalyzerParams } from './multi-analyzer.js';

describe('multi-analyzer params', () => {
  const m = parseMultiAnalyzerParams(
    JSON.stringify({ by_field: 'lang', analyzers: { default: { type: 'standard' }, en: { type: 'english' } }, alias: { english: 'en' } }),
  );

  it('picks by name, through an alias, else the default analyzer', () => {
    expect(m.byField).toBe('lang');
    expect(m.pick('en').terms('The running dogs')).toEqual(['run', 'dog']);
    expect(m.pick('english').terms('The running dogs')).toEqual(['run', 'dog']);
    for (const name of ['fr', null, undefined, 'default']) expect(m.pick(name).terms('The running dogs')).toEqual(['the', 'running', 'dogs']);
  });

  it('refuses malformed params naming the problem', () => {
    const cases: [unknown, string][] = [
      [{ analyzers: { default: {} } }, 'by_field'],
      [{ by_field: 'l', analyzers: [] }, 'analyzers must be an object'],
      [{ by_field: 'l', analyzers: { en: { type: 'english' } } }, '"default"'],
      [{ by_field: 'l', analyzers: { default: { type: 'nope' } } }, 'nope'],
      [{ by_field: 'l', analyzers: { default: { type: 'standard' } }, alias: { a: 'b' } }, 'alias a'],
      [{ by_field: 'l', analyzers: { default: { type: 'standard' } }, alias: { default: 'default' } }, 'also an analyzer name'],
      [{ by_field: 'l', analyzers: { default: { type: 'standard' } }, extra: 1 }, 'extra'],
    ];
    for (const [raw, want] of cases) expect(() => parseMultiAnalyzerParams(raw), JSON.stringify(raw)).toThrow(want);
  });
});
