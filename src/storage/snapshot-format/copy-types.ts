import type { SegmentRecord } from '../../coord/records.js';

/**
 * The id-level vocabulary of a restore copy, shared by the coordinator (jobs, checker, publish) and the
 * data node's copy executor: both rewrite keys with `segment-rewrite.ts` and read source segments with a
 * `SourceSegmentReader`. It lives below the roles so neither imports the other.
 */

/** One segment of a restore, ids only: the file lists are in the snapshot's manifest of `sourceSegmentId`. */
export interface SegmentMapping {
  readonly sourceSegmentId: number;
  readonly targetSegmentId: number;
  readonly targetPartitionId: number;
}

/** Which snapshot a job or task copies from: its manifests hold the source segments' file lists. */
export interface SnapshotRef {
  readonly collectionId: number;
  readonly snapshotId: number;
  /**
   * Key prefix under which the snapshot's files (metadata, manifests, segment files, each at its original
   * key) lie in the store; absent for a local snapshot. An external restore stages a bundle under
   * `imports/{jobId}/` and copies from there (coord/snapshot/export/import-service.ts).
   */
  readonly sourcePrefix?: string | undefined;
}

/** A mapping with the source segment record read from the snapshot (in memory only, never persisted). */
export interface ResolvedMapping {
  readonly source: SegmentRecord;
  readonly targetSegmentId: number;
  readonly targetPartitionId: number;
  readonly targetCollectionId: number;
}

/**
 * The source segment records of a snapshot, by id (production: read from the snapshot's manifests).
 * Throws when one is missing or unreadable; a non-retriable QuiverError when it can never be read.
 */
export interface SourceSegmentReader {
  read(snapshot: SnapshotRef, sourceSegmentIds: readonly number[]): Promise<ReadonlyMap<number, SegmentRecord>>;
}
