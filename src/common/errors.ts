/**
 * The one error type of Quiver. Every operating error carries a Milvus error code (the `code` field of
 * `common.Status`, as in Milvus's `merr` package), the deprecated `error_code` enum name the official
 * SDK actually tests, and a retriable flag. gRPC mapping happens once, in `src/server/status.ts`.
 */

/** Deprecated `common.ErrorCode` enum names the SDK reads (`error_code`). */
export type LegacyErrorCode =
  | 'UnexpectedError'
  | 'CollectionNotExists'
  | 'IllegalArgument'
  | 'IllegalDimension'
  | 'IllegalIndexType'
  | 'IllegalCollectionName'
  | 'IllegalTOPK'
  | 'IllegalRowRecord'
  | 'IndexNotExist'
  | 'MetaFailed'
  | 'SchemaMismatch'
  | 'NotReadyServe'
  | 'RateLimit';

interface CatalogueEntry {
  readonly code: number;
  readonly legacy: LegacyErrorCode;
  readonly retriable: boolean;
}

/** Milvus `merr` codes (same numbers as Milvus, so clients that branch on `code` keep working). */
export const ERRORS = {
  ServiceNotReady: { code: 1, legacy: 'NotReadyServe', retriable: true },
  ServiceInternal: { code: 5, legacy: 'UnexpectedError', retriable: false },
  ServiceUnimplemented: { code: 10, legacy: 'UnexpectedError', retriable: false },
  CollectionNotFound: { code: 100, legacy: 'UnexpectedError', retriable: false },
  CollectionNotLoaded: { code: 101, legacy: 'UnexpectedError', retriable: false },
  CollectionIllegalSchema: { code: 105, legacy: 'IllegalArgument', retriable: false },
  CollectionSchemaMismatch: { code: 109, legacy: 'SchemaMismatch', retriable: false },
  PartitionNotFound: { code: 200, legacy: 'UnexpectedError', retriable: false },
  PartitionNotLoaded: { code: 201, legacy: 'UnexpectedError', retriable: false },
  SegmentNotFound: { code: 600, legacy: 'UnexpectedError', retriable: false },
  SegmentLoadFailed: { code: 604, legacy: 'UnexpectedError', retriable: false },
  IndexNotFound: { code: 700, legacy: 'IndexNotExist', retriable: false },
  IndexNotSupported: { code: 701, legacy: 'IllegalIndexType', retriable: false },
  IndexDuplicate: { code: 702, legacy: 'IllegalArgument', retriable: false },
  DatabaseNotFound: { code: 800, legacy: 'UnexpectedError', retriable: false },
  DatabaseInvalidName: { code: 802, legacy: 'IllegalArgument', retriable: false },
  IoKeyNotFound: { code: 1000, legacy: 'UnexpectedError', retriable: false },
  IoFailed: { code: 1001, legacy: 'UnexpectedError', retriable: true },
  ParameterInvalid: { code: 1100, legacy: 'IllegalArgument', retriable: false },
  ParameterMissing: { code: 1101, legacy: 'IllegalArgument', retriable: false },
  ParameterTooLarge: { code: 1102, legacy: 'IllegalArgument', retriable: false },
  MetricNotFound: { code: 1200, legacy: 'IllegalArgument', retriable: false },
  AliasNotFound: { code: 1600, legacy: 'UnexpectedError', retriable: false },
  AliasCollectionNameConflict: { code: 1601, legacy: 'IllegalArgument', retriable: false },
  AliasAlreadyExist: { code: 1602, legacy: 'IllegalArgument', retriable: false },
  FieldNotFound: { code: 1700, legacy: 'IllegalArgument', retriable: false },
  FieldInvalidName: { code: 1701, legacy: 'IllegalArgument', retriable: false },
  ExprInvalid: { code: 1100, legacy: 'IllegalArgument', retriable: false },
  DataInvalid: { code: 1100, legacy: 'IllegalRowRecord', retriable: false },
  DimensionMismatch: { code: 1100, legacy: 'IllegalDimension', retriable: false },
  TopKTooLarge: { code: 1100, legacy: 'IllegalTOPK', retriable: false },
  CompactionNotFound: { code: 2200, legacy: 'UnexpectedError', retriable: false },
  SnapshotNotFound: { code: 2600, legacy: 'UnexpectedError', retriable: false },
  SnapshotPinned: { code: 2601, legacy: 'UnexpectedError', retriable: false },
  SnapshotAlreadyExists: { code: 2602, legacy: 'IllegalArgument', retriable: false },
  RestoreJobNotFound: { code: 2603, legacy: 'UnexpectedError', retriable: false },
  Undefined: { code: 65535, legacy: 'UnexpectedError', retriable: false },
} as const satisfies Record<string, CatalogueEntry>;

export type ErrorKind = keyof typeof ERRORS;

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
    this.legacy = entry.legacy;
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
