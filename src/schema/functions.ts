/**
 * Schema functions (Milvus `FunctionSchema`): output fields the server computes from input fields on every
 * write. Only BM25 (an analyzed VarChar → its term-frequency SparseFloatVector) exists in Quiver. Part of
 * the collection's schema record, so the WAL, snapshots and restores carry it with the fields.
 */

export type FunctionType = 'BM25';

export interface FunctionSchema {
  readonly name: string;
  readonly description: string;
  readonly type: FunctionType;
  readonly inputFieldNames: readonly string[];
  readonly outputFieldNames: readonly string[];
  /** params as sent, returned by describe unchanged. */
  readonly params: Readonly<Record<string, string>>;
}
