/**
 * The data node's interfaces. The coordinator and the proxy hold these (in-process objects in the
 * embedded server; a remote client later), never the `DataNode` class.
 */

import type { CollectionRecord, IndexRecord, SegmentIndexFile, SegmentRecord } from '../coord/records.js';
import type { GrowingStats } from '../coord/types.js';
import type { TemplateValues } from '../expr/index.js';
import type { Column, FieldSchema } from '../schema/types.js';
import type { CollectionRuntime } from '../segcore/collection-runtime.js';
import type { CompactionMergeParams, WireMerged } from '../taskrpc/protocol.js';
import type { MergeResult, MergeTask } from './merge-task.js';

export interface CompactionTaskInfo {
  readonly id: number;
  readonly collectionId: number;
  state: 'Executing' | 'Completed';
  readonly plans: { sources: readonly number[]; target: number; state: 'Executing' | 'Completed' | 'Failed'; error?: string }[];
}

export type { GrowingStats };

/** The write path (Milvus: the proxy's Insert/Delete through the data node's write buffer). */
export interface WritePath {
  insert(
    collectionId: number,
    partitionName: string | undefined,
    columns: Map<string, Column>,
    numRows: number,
    upsert: boolean,
  ): Promise<{ pks: BigInt64Array | string[]; ts: bigint }>;
  /** One batch over several partitions as one atomic write (one WAL record, one ts); pks per part. */
  insertParts(
    collectionId: number,
    parts: readonly { readonly partitionName: string; readonly columns: Map<string, Column>; readonly numRows: number }[],
    upsert: boolean,
  ): Promise<{ pks: (BigInt64Array | string[])[]; ts: bigint }>;
  delete(
    collectionId: number,
    partitionName: string | undefined,
    expr: string,
    templates: TemplateValues | undefined,
  ): Promise<{ count: number; ts: bigint; pks: (bigint | string)[] }>;
}

/** Flush and compaction as the coordinator drives them (Milvus: DataNode FlushSegments / Compaction). */
export interface DataNodeApi extends WritePath {
  /** Seals every growing segment of the collection and writes it; the coordinator commits the result. */
  flush(collectionId: number): Promise<{ segmentIds: number[]; flushTs: bigint }>;
  growingStats(collectionId: number): GrowingStats;
  /** Flushed segments of a collection right now (under the collection lock for a stable set). */
  flushedSegments(collectionId: number): SegmentRecord[];
  /** Live collections this node holds. */
  collectionIds(): number[];
  compact(collectionId: number, opts: { force: boolean; wait: boolean }): Promise<CompactionTaskInfo>;
  compactionTask(id: number): CompactionTaskInfo | undefined;
  /** A compaction is reading the segment (GC must not reclaim it yet). */
  isSegmentBusy(collectionId: number, segmentId: number): boolean;
  /** Moves clean collections' checkpoints up and deletes the WAL before the oldest one still needed. */
  truncateWal(): Promise<void>;
  /** Segment counts by phase (metrics). */
  segmentPhases(): Map<string, number>;
}

/**
 * The task service of a data node, shaped like Milvus's DataNode worker RPCs (CreateTask / QueryTask /
 * DropTask / QuerySlots). The coordinator's index-build scheduler dispatches builds through it, and the
 * compactor its merges; copy-segment tasks of a restore have their own pool (datanode/copy-worker) with
 * the same shape.
 */
export type DataNodeTaskSpec =
  | {
      readonly kind: 'indexBuild';
      readonly collection: CollectionRecord;
      readonly segment: SegmentRecord;
      readonly index: IndexRecord;
      readonly field: FieldSchema;
      /** The segment's vectors when the caller has them in memory (else the executor reads the binlog). */
      readonly vectors?: Float32Array | undefined;
    }
  | {
      /** The read-filter-concat-encode half of a compaction (the compactor writes and publishes). */
      readonly kind: 'merge';
      readonly merge: Omit<MergeTask, 'id'>;
    }
  | {
      /**
       * The same merge over object keys, writing each merged column to its output key (for a store
       * without local paths: S3). Runs on a registered data node when there is one.
       */
      readonly kind: 'keyMerge';
      readonly merge: CompactionMergeParams;
    };

export type DataNodeTaskResult =
  | { readonly kind: 'indexBuild'; readonly file: SegmentIndexFile }
  | { readonly kind: 'merge'; readonly result: MergeResult }
  /** `params`: what ran, when not the caller's (a merge adopted after a coordinator restart: its target and keys). */
  | { readonly kind: 'keyMerge'; readonly merged: WireMerged; readonly params?: CompactionMergeParams | undefined };

export type DataNodeTaskState =
  | { readonly state: 'InProgress' }
  | { readonly state: 'Finished'; readonly result: DataNodeTaskResult }
  | { readonly state: 'Failed'; readonly reason: string };

export interface DataNodeTasks {
  /** Starts a task; resolves with its id once accepted. */
  createTask(spec: DataNodeTaskSpec): Promise<number>;
  /** The task's state; undefined for an unknown (or dropped) task. */
  queryTask(taskId: number): DataNodeTaskState | undefined;
  /** Resolves when the task has finished or failed (in-process convenience for QueryTask polling). */
  waitTask(taskId: number): Promise<DataNodeTaskState>;
  /** Forgets a finished task. */
  dropTask(taskId: number): void;
  /** Free task slots of this node. */
  querySlots(): { readonly total: number; readonly free: number };
}

/**
 * The in-memory collections of the embedded process, shared by the data node (which owns growing and
 * sealed segments, the delete bitmaps and the segment map) and the query node (which owns the loaded
 * columns and indexes of flushed segments). In a cluster, each node would hold its own copy.
 */
export interface SegmentsView {
  runtime(collectionId: number): CollectionRuntime | undefined;
}
