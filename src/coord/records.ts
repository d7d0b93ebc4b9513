import type { AnyIndexType, AnyMetricType } from '../index/typed-index-params.js';
import type { CollectionSchema } from '../schema/types.js';
import type { IndexParams } from '../index/index.js';
import type { ScalarBuildParams } from '../index/scalar/scalar-index-params.js';

/**
 * Persisted metadata records (JSON in MetaKV). Timestamps are hybrid TSO values kept as decimal strings
 * because JSON has no int64.
 */

export interface DatabaseRecord {
  readonly id: number;
  readonly name: string;
  readonly createdTs: string;
  readonly properties: Readonly<Record<string, string>>;
}

export interface PartitionRecord {
  readonly id: number;
  readonly name: string;
  readonly createdTs: string;
}

/**
 * Collection states. Restoring: a snapshot restore target, invisible (but its name reserved) until the
 * restore publishes it.
 *
 *   (create) ──▶ Created ──(2) drop──▶ Dropped ──▶ (record deleted by GC after the grace period)
 *                   ▲
 *                  (1) publish
 *                   │
 *   (restore start) Restoring ──▶ (records deleted: rollback, or reconcile of a target without a job)
 */
export type CollectionState = 'Created' | 'Restoring' | 'Dropped';

export const COLLECTION_TRANSITIONS: Readonly<Record<CollectionState, readonly CollectionState[]>> = {
  Restoring: ['Created'], // (1)
  Created: ['Dropped'], // (2)
  Dropped: [],
};

export function assertCollectionTransition(from: CollectionState, to: CollectionState): void {
  if (!COLLECTION_TRANSITIONS[from].includes(to)) throw new Error(`assertion failed: illegal collection transition ${from} → ${to}`);
}

export interface CollectionRecord {
  readonly id: number;
  readonly dbId: number;
  readonly name: string;
  readonly schema: CollectionSchema;
  readonly shardsNum: number;
  readonly consistencyLevel: string;
  readonly properties: Readonly<Record<string, string>>;
  readonly partitions: readonly PartitionRecord[];
  readonly createdTs: string;
  readonly updateTs: string;
  readonly state: CollectionState;
  readonly droppedAtMs?: number | undefined;
  /** Persisted load state: a loaded collection is loaded again after a restart. */
  readonly loaded: boolean;
  readonly loadedPartitions?: readonly number[] | undefined;
  /** The ts of the last TruncateCollection: segments created at or before it hold no live rows. */
  readonly truncatedTs?: string | undefined;
}

export interface IndexRecord {
  readonly id: number;
  readonly collectionId: number;
  readonly fieldId: number;
  readonly name: string;
  readonly indexType: AnyIndexType;
  /** '' for scalar indexes (they have no metric). */
  readonly metric: AnyMetricType | '';
  /** What the user sent (index_type, metric_type, params...), returned by describe. */
  readonly userParams: Readonly<Record<string, string>>;
  /** The validated build parameters (index-params.ts, typed-index-params.ts); absent keys take the index type's defaults. */
  readonly buildParams: Readonly<Omit<IndexParams, 'type' | 'metric'> & { dropRatioBuild?: number | undefined } & ScalarBuildParams>;
  readonly createdTs: string;
}

export interface Binlog {
  readonly logId: number;
  readonly path: string;
  readonly entries: number;
  readonly tsFrom: string;
  readonly tsTo: string;
  readonly size: number;
  /**
   * SHA-256 (hex) of the file's bytes, computed when they were written (undefined for files written before
   * hashes were recorded, or by a writer that does not record one). Files are immutable, so it stays true
   * through compaction's bookkeeping, snapshots and restores (a copy or hardlink keeps the bytes).
   */
  readonly sha256?: string | undefined;
}

export interface SegmentIndexFile {
  readonly indexId: number;
  readonly buildId: number;
  readonly version: number;
  readonly files: readonly string[];
  readonly size: number;
  /** SHA-256 (hex) of each file, parallel to `files`, recorded at write time (see Binlog.sha256); may be absent. */
  readonly filesSha256?: readonly string[] | undefined;
}

/**
 * Segment states of DESIGN.md section 2; growing/sealed segments live only in memory and the WAL.
 *
 *   (restore, Pending) Importing ──(1) publish: file lists written──▶ Flushed ──(2) compacted / dropped──▶ Dropped
 *   (flush, compaction) ─────────────────────────────────────────────▶ Flushed
 *   Importing records of a restore that rolls back are deleted (not a transition).
 */
export type SegmentState = 'Importing' | 'Flushed' | 'Dropped';

export const SEGMENT_TRANSITIONS: Readonly<Record<SegmentState, readonly SegmentState[]>> = {
  Importing: ['Flushed'], // (1)
  Flushed: ['Dropped'], // (2)
  Dropped: [],
};

export function assertSegmentTransition(from: SegmentState, to: SegmentState): void {
  if (!SEGMENT_TRANSITIONS[from].includes(to)) throw new Error(`assertion failed: illegal segment transition ${from} → ${to}`);
}

export interface SegmentRecord {
  readonly id: number;
  readonly collectionId: number;
  readonly partitionId: number;
  readonly state: SegmentState;
  readonly numRows: number;
  /** fieldId → binlogs; field 1 holds the row timestamps, as in Milvus. */
  readonly binlogs: Readonly<Record<string, readonly Binlog[]>>;
  readonly deltalogs: readonly Binlog[];
  readonly statslogs: readonly Binlog[];
  readonly indexes: readonly SegmentIndexFile[];
  readonly compactedFrom?: readonly number[] | undefined;
  readonly compactedTo?: number | undefined;
  readonly droppedAtMs?: number | undefined;
  readonly createdTs: string;
}

export const TIMESTAMP_FIELD_ID = 1;

/**
 * MetaKV keys of the catalog's records. Here (the shared record schema) rather than in the catalog, so
 * that a remote data node reads the records a task names straight from etcd.
 */
export const CATALOG_KEY_PREFIX = 'quiver/';
export const catalogKeys = {
  db: (name: string): string => `${CATALOG_KEY_PREFIX}db/${name}`,
  coll: (id: number): string => `${CATALOG_KEY_PREFIX}coll/${id}`,
  alias: (dbId: number, alias: string): string => `${CATALOG_KEY_PREFIX}alias/${dbId}/${alias}`,
  index: (collectionId: number, indexId: number): string => `${CATALOG_KEY_PREFIX}index/${collectionId}/${indexId}`,
  segment: (collectionId: number, segmentId: number): string => `${CATALOG_KEY_PREFIX}seg/${collectionId}/${segmentId}`,
  checkpoint: (collectionId: number): string => `${CATALOG_KEY_PREFIX}ckpt/${collectionId}`,
} as const;
