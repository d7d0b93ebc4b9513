/**
 * Key ordering shared by every MetaKV backend. SQLite (BINARY collation over UTF-8) and etcd (byte keys)
 * order keys by their UTF-8 bytes, which is code point order. JavaScript's `<` compares UTF-16 code
 * units, which disagrees for characters above U+FFFF versus U+E000..U+FFFF, so the memory backend sorts
 * with this function to return scans in the same order as the durable ones.
 */

export function compareKeys(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x !== y) return codeUnitRank(x) - codeUnitRank(y);
  }
  return a.length - b.length;
}

/** Surrogates (U+D800..U+DFFF) start code points above U+FFFF, so they must rank above U+E000..U+FFFF. */
function codeUnitRank(c: number): number {
  if (c >= 0xd800 && c <= 0xdfff) return c + 0x2000;
  if (c >= 0xe000) return c - 0x800;
  return c;
}

/**
 * The smallest string greater than every string that starts with `prefix` (exclusive upper bound of a
 * prefix range), or undefined when no such bound exists (prefix is all U+10FFFF).
 */
export function prefixUpperBound(prefix: string): string | undefined {
  const codePoints = Array.from(prefix, (ch) => ch.codePointAt(0) ?? 0);
  while (codePoints.length > 0) {
    const last = codePoints.pop() ?? 0;
    if (last < 0x10ffff) {
      // Skip the surrogate range: it holds no code points of its own.
      const next = last === 0xd7ff ? 0xe000 : last + 1;
      codePoints.push(next);
      return String.fromCodePoint(...codePoints);
    }
  }
  return undefined;
}
