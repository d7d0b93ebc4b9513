/**
 * The one error type of Quiver. Every operating error carries a Milvus error code (the `code` field of
 * `common.Status`, as in Milvus's `merr` package), the deprecated `error_code` enum name the official
 * SDK actually tests, and a retriable flag. gRPC mapping happens once, in `src/proxy/status.ts`.
 */

/** Deprecated `common.ErrorCode` enum names the SDK reads (`error_code`). */
export type LegacyErrorCode =
  'UnexpectedError' | 'CollectionNotExists' | 'IllegalArgument' | 'IndexNotExist' | 'SegmentNotFound' | 'MetaFailed' | 'SchemaMismatch' | 'NotReadyServe';

interface CatalogueEntry {
  readonly code: number;
  readonly retriable: boolean;
}

/**
 * The deprecated `error_code` of a new code, as Milvus derives it (merr's old-code mapping): a function of
 * the code alone, so two errors with one code never disagree, and everything without an old counterpart is
 * `UnexpectedError`.
 */
export function legacyCodeOf(code: number): LegacyErrorCode {
  switch (code) {
    case 1:
      return 'NotReadyServe';
    case 100:
      return 'CollectionNotExists';
    case 109:
      return 'SchemaMismatch';
    case 200:
      return 'MetaFailed';
    case 600:
      return 'SegmentNotFound';
    case 700:
      return 'IndexNotExist';
    case 1100: // ParameterInvalid
    case 1101: // ParameterMissing
    case 1102: // ParameterTooLarge
      return 'IllegalArgument';
    default:
      return 'UnexpectedError';
  }
}

/** Milvus `merr` codes (same numbers as Milvus, so clients that branch on `code` keep working). */
export const ERRORS = {
  ServiceNotReady: { code: 1, retriable: true },
  ServiceInternal: { code: 5, retriable: false },
  ServiceUnimplemented: { code: 10, retriable: false },
  CollectionNotFound: { code: 100, retriable: false },
  CollectionNotLoaded: { code: 101, retriable: false },
  CollectionIllegalSchema: { code: 105, retriable: false },
  CollectionSchemaMismatch: { code: 109, retriable: false },
  PartitionNotFound: { code: 200, retriable: false },
  PartitionNotLoaded: { code: 201, retriable: false },
  SegmentNotFound: { code: 600, retriable: false },
  SegmentLoadFailed: { code: 604, retriable: false },
  IndexNotFound: { code: 700, retriable: false },
  IndexNotSupported: { code: 701, retriable: false },
  IndexDuplicate: { code: 702, retriable: false },
  DatabaseNotFound: { code: 800, retriable: false },
  DatabaseInvalidName: { code: 802, retriable: false },
  IoKeyNotFound: { code: 1000, retriable: false },
  IoFailed: { code: 1001, retriable: true },
  ParameterInvalid: { code: 1100, retriable: false },
  ParameterMissing: { code: 1101, retriable: false },
  ParameterTooLarge: { code: 1102, retriable: false },
  MetricNotFound: { code: 1200, retriable: false },
  // Legacy error_code UnexpectedError, as merr's old-code mapping gives every code it does not list.
  PrivilegeNotAuthenticated: { code: 1400, retriable: false },
  PrivilegeNotPermitted: { code: 1401, retriable: false },
  AliasNotFound: { code: 1600, retriable: false },
  AliasCollectionNameConflict: { code: 1601, retriable: false },
  AliasAlreadyExist: { code: 1602, retriable: false },
  FieldNotFound: { code: 1700, retriable: false },
  FieldInvalidName: { code: 1701, retriable: false },
  ExprInvalid: { code: 1100, retriable: false },
  DataInvalid: { code: 1100, retriable: false },
  DimensionMismatch: { code: 1100, retriable: false },
  TopKTooLarge: { code: 1100, retriable: false },
  CompactionNotFound: { code: 2200, retriable: false },
  SnapshotNotFound: { code: 2600, retriable: false },
  SnapshotPinned: { code: 2601, retriable: false },
  SnapshotAlreadyExists: { code: 2602, retriable: false },
  RestoreJobNotFound: { code: 2603, retriable: false },
  Undefined: { code: 65535, retriable: false },
} as const satisfies Record<string, CatalogueEntry>;

export type ErrorKind = keyof typeof ERRORS;

const CODE_NAMES: ReadonlyMap<number, ErrorKind> = (() => {
  const m = new Map<number, ErrorKind>();
  // The first kind listed for a code is its Milvus name (ParameterInvalid before ExprInvalid, DataInvalid...).
  for (const [kind, e] of Object.entries(ERRORS) as [ErrorKind, CatalogueEntry][]) if (!m.has(e.code)) m.set(e.code, kind);
  return m;
})();

/** Milvus's name of a code (`CollectionNotFound` for 100): what metrics label an error with. */
export function codeName(code: number): string {
  if (code === 0) return 'Success';
  return CODE_NAMES.get(code) ?? `Code${code}`;
}

export class QuiverError extends Error {
  readonly kind: ErrorKind;
  readonly code: number;
  readonly legacy: LegacyErrorCode;
  readonly retriable: boolean;

  constructor(kind: ErrorKind, reason: string, options?: { cause?: unknown }) {
    super(reason, options);
    const entry: CatalogueEntry = ERRORS[kind];
    this.name = 'QuiverError';
    this.kind = kind;
    this.code = entry.code;
    this.legacy = legacyCodeOf(entry.code);
    this.retriable = entry.retriable;
  }
}

export function quiverError(kind: ErrorKind, reason: string, cause?: unknown): QuiverError {
  return new QuiverError(kind, reason, cause === undefined ? undefined : { cause });
}

export function isQuiverError(e: unknown, kind?: ErrorKind): e is QuiverError {
  return e instanceof QuiverError && (kind === undefined || e.kind === kind);
}

/** Programmer errors: crash loudly. */
export function assert(condition: unknown, message = 'assertion failed'): asserts condition {
  if (!condition) throw new Error(`assertion failed: ${message}`);
}

export function unreachable(x: never): never {
  throw new Error(`unreachable: ${JSON.stringify(x)}`);
}
