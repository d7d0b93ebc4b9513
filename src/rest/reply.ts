/**
 * A route's result with fields beside `data` in the JSON envelope (Milvus's search answers `topks` next
 * to `data`, which the SDK's HttpClient reads to split the rows of several queries). A route that only has
 * `data` returns it bare.
 */
const ENVELOPE = Symbol('rest-envelope');

export interface RestEnvelope {
  readonly [ENVELOPE]: true;
  readonly data: unknown;
  readonly extra: Readonly<Record<string, unknown>>;
}

export function withTopLevel(data: unknown, extra: Record<string, unknown>): RestEnvelope {
  return { [ENVELOPE]: true, data, extra };
}

export function isEnvelope(v: unknown): v is RestEnvelope {
  return typeof v === 'object' && v !== null && ENVELOPE in v;
}
