import { quiverError } from '../../common/errors.js';

export const CONCURRENCY_DEFAULT = 16;
export const CONCURRENCY_MAX = 256;

export function checkConcurrency(concurrency: number | undefined): number {
  const n = concurrency ?? CONCURRENCY_DEFAULT;
  if (!Number.isSafeInteger(n) || n < 1 || n > CONCURRENCY_MAX) {
    throw quiverError('ParameterInvalid', `concurrency must be an integer in [1, ${CONCURRENCY_MAX}], got ${String(concurrency)}`);
  }
  return n;
}

/**
 * Runs `fn` over `items` with at most `limit` calls in flight; results keep the order of `items`.
 * After the first failure no new call starts; the ones in flight are awaited (so nothing keeps running
 * behind the caller's back) and the first error is thrown.
 */
export async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  let failed = false;
  let firstError: unknown;
  const worker = async (): Promise<void> => {
    while (!failed && next < items.length) {
      const i = next++;
      try {
        results[i] = await fn(items[i] as T, i);
      } catch (e) {
        if (!failed) firstError = e;
        failed = true;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  if (failed) throw firstError;
  return results;
}
