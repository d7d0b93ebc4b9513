/**
 * The query node's interfaces: what the proxy calls (load, search, query, count) and what the other roles
 * call when flushed segment data changes (an index built, a compaction result loaded).
 */

import type { IndexRecord, SegmentIndexFile, SegmentRecord } from '../coord/records.js';
import type { TemplateValues } from '../expr/index.js';
import type { MetricType, VectorIndex } from '../index/index.js';
import type { AnyMetricType } from '../index/typed-index-params.js';
import type { TypedQueries } from '../index/typed-search.js';
import type { FieldSchema } from '../schema/types.js';
import type { RowRef, SearchCursor, SearchHit } from '../segcore/collection-runtime.js';

export type { SearchCursor };
import type { Chunk } from '../segcore/segment.js';

export interface LoadProgress {
  readonly state: 'NotLoad' | 'Loading' | 'Loaded';
  readonly progress: number;
}

/** The filter of a query or count; `timezone` as in SearchParams. */
export interface FilterRequest {
  readonly filter: string;
  readonly templates?: TemplateValues | undefined;
  readonly timezone?: string | undefined;
  readonly partitionNames: readonly string[];
}

export interface SearchParams {
  readonly field: FieldSchema;
  readonly queries: Float32Array;
  /** Query vectors of the byte and sparse vector types (then `queries` is empty). */
  readonly typedQueries?: TypedQueries | undefined;
  readonly nq: number;
  readonly k: number;
  readonly offset: number;
  readonly metric: AnyMetricType | undefined;
  readonly dropRatioSearch?: number | undefined;
  readonly filter: string;
  readonly templates?: TemplateValues | undefined;
  /** Zone of the filter's Timestamptz literals without an offset (the request's; else the collection's). */
  readonly timezone?: string | undefined;
  readonly partitionNames: readonly string[];
  readonly ef?: number | undefined;
  readonly nprobe?: number | undefined;
  readonly refineK?: number | undefined;
  readonly radius?: number | undefined;
  readonly rangeFilter?: number | undefined;
  readonly ignoreGrowing?: boolean | undefined;
  /** A search iterator's page: rows after this (score, pk) position only (nq must be 1). */
  readonly after?: SearchCursor | undefined;
}

/** What GetQuerySegmentInfo reports of a segment this node serves. */
export interface QuerySegmentInfo {
  readonly segmentId: number;
  readonly partitionId: number;
  readonly numRows: number;
  readonly memBytes: number;
  readonly state: 'Growing' | 'Sealed' | 'Flushed';
  readonly indexed: readonly { readonly fieldName: string; readonly buildId: number }[];
}

export interface QueryNodeApi {
  load(collectionId: number, partitionNames: readonly string[] | undefined): Promise<void>;
  release(collectionId: number, partitionNames?: readonly string[]): Promise<void>;
  loadProgress(collectionId: number, partitionNames?: readonly string[]): LoadProgress;
  waitLoaded(collectionId: number): Promise<void>;
  search(collectionId: number, p: SearchParams): Promise<{ hits: SearchHit[][]; metric: AnyMetricType }>;
  query(collectionId: number, q: FilterRequest & { offset: number; limit: number | undefined }): Promise<RowRef[]>;
  count(collectionId: number, q: FilterRequest): Promise<number>;
  rowCount(collectionId: number, partitionName?: string): number;
  /** The segments of a loaded collection this node serves (GetQuerySegmentInfo). */
  segmentInfos(collectionId: number): QuerySegmentInfo[];
}

/** Loaded segment data as the index scheduler and the compactor use it. */
export interface LoadedSegments {
  /** The segment's vectors if they are in memory (saves the index build a binlog read). */
  loadedVectors(collectionId: number, segmentId: number, fieldName: string): Float32Array | undefined;
  /**
   * Opens a freshly built index file if the segment is loaded; the returned function attaches it to the
   * segment and must be called right after the commit that published the file (under the collection lock).
   */
  prepareIndex(collectionId: number, segmentId: number, field: FieldSchema, metric: MetricType, file: SegmentIndexFile): Promise<(() => void) | undefined>;
  /** The same for an index built from the column: scalar (index/scalar), BIN_IVF_FLAT or sparse (index/typed-index-file.ts). */
  prepareScalarIndex(
    collectionId: number,
    segmentId: number,
    index: IndexRecord,
    field: FieldSchema,
    file: SegmentIndexFile,
  ): Promise<(() => void) | undefined>;
  /** Opens an index file (a compaction target of a loaded collection). */
  openIndex(key: string, dim: number, metric: MetricType, rows: number): Promise<VectorIndex>;
  /** Makes a loaded chunk available for content sharing (see the loader). */
  registerLoaded(rec: SegmentRecord, chunk: Chunk): void;
}
