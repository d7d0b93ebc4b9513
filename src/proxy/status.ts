import { QuiverError, isQuiverError } from '../common/errors.js';

/**
 * The one place where errors become Milvus `common.Status`. Milvus clients read the deprecated
 * `error_code` enum (the official Node SDK hardly looks at anything else), so both it and `code` are set.
 */
export interface Status {
  error_code: string;
  reason: string;
  code: number;
  retriable: boolean;
  detail: string;
  extra_info: Record<string, string>;
}

export const OK: Status = Object.freeze({ error_code: 'Success', reason: '', code: 0, retriable: false, detail: '', extra_info: {} }) as Status;

export function statusOf(e: unknown): Status {
  if (isQuiverError(e)) return fromQuiver(e);
  const message = e instanceof Error ? e.message : String(e);
  return { error_code: 'UnexpectedError', reason: `internal error: ${message}`, code: 5, retriable: false, detail: message, extra_info: {} };
}

function fromQuiver(e: QuiverError): Status {
  return { error_code: e.legacy, reason: e.message, code: e.code, retriable: e.retriable, detail: e.message, extra_info: {} };
}
