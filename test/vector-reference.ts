/**
 * Brute-force reference search for every metric, computed independently of the server, for e2e tests.
 * Vectors are the user-facing forms: number[] for float/float16/bfloat16/int8, byte numbers for binary,
 * {index: value} dicts for sparse.
 */

export type Metric = 'L2' | 'IP' | 'COSINE' | 'HAMMING' | 'JACCARD';
export type Sparse = Record<string, number>;

export function distance(metric: Metric, a: number[] | Sparse, b: number[] | Sparse): number | undefined {
  if (!Array.isArray(a) || !Array.isArray(b)) {
    // Sparse IP over shared indices; no shared index = no score (the row is not a hit).
    let s = 0;
    let shared = false;
    for (const [k, v] of Object.entries(a)) {
      const w = (b as Sparse)[k];
      if (w !== undefined) {
        s += v * w;
        shared = true;
      }
    }
    return shared ? s : undefined;
  }
  switch (metric) {
    case 'L2':
      return a.reduce((s, x, i) => s + (x - b[i]!) ** 2, 0);
    case 'IP':
      return a.reduce((s, x, i) => s + x * b[i]!, 0);
    case 'COSINE': {
      const na = Math.sqrt(a.reduce((s, x) => s + x * x, 0));
      const nb = Math.sqrt(b.reduce((s, x) => s + x * x, 0));
      return na === 0 || nb === 0 ? 0 : a.reduce((s, x, i) => s + x * b[i]!, 0) / (na * nb);
    }
    case 'HAMMING': {
      let d = 0;
      for (let i = 0; i < a.length; i++) d += popcount(a[i]! ^ b[i]!);
      return d;
    }
    case 'JACCARD': {
      let inter = 0;
      let union = 0;
      for (let i = 0; i < a.length; i++) {
        inter += popcount(a[i]! & b[i]!);
        union += popcount(a[i]! | b[i]!);
      }
      return union === 0 ? 0 : 1 - inter / union;
    }
  }
}

function popcount(x: number): number {
  let c = 0;
  for (let v = x & 0xff; v; v >>= 1) c += v & 1;
  return c;
}

export function lowerIsBetter(m: Metric): boolean {
  return m === 'L2' || m === 'HAMMING' || m === 'JACCARD';
}

/** Every scored row of `rows` for query q, best first (ties by id). */
export function rank<T extends { id: number }>(
  rows: readonly T[],
  get: (r: T) => number[] | Sparse | null,
  metric: Metric,
  q: number[] | Sparse,
): { id: number; score: number }[] {
  const out: { id: number; score: number }[] = [];
  for (const r of rows) {
    const v = get(r);
    if (v === null) continue;
    const s = distance(metric, q, v);
    if (s !== undefined) out.push({ id: r.id, score: s });
  }
  const low = lowerIsBetter(metric);
  out.sort((a, b) => (low ? a.score - b.score : b.score - a.score) || a.id - b.id);
  return out;
}
