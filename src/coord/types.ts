import type { FunctionSchema } from '../schema/functions.js';
/**
 * The coordinator's interfaces: what the data node, the query node and the proxy may call, and what the
 * coordinator asks of the nodes. Other roles import these types only (never coord implementations), so
 * a remote client can replace an in-process object without touching the callers.
 */

import type { CatalogChange } from './catalog.js';
import type { CollectionRecord, DatabaseRecord, IndexRecord, PartitionRecord, SegmentRecord } from './records.js';
import type { CollectionSchema, FieldSchema } from '../schema/types.js';

export type { CatalogChange };
export { DEFAULT_DB } from './catalog.js';

export interface AliasInfo {
  readonly dbId: number;
  readonly alias: string;
  readonly collectionId: number;
}

/** Read access to the catalog mirror (coord/catalog.ts implements it). */
export interface CatalogReader {
  databases(): DatabaseRecord[];
  database(name: string): DatabaseRecord | undefined;
  databaseById(id: number): DatabaseRecord | undefined;
  requireDatabase(name: string): DatabaseRecord;
  collection(id: number): CollectionRecord | undefined;
  collectionIncludingDropped(id: number): CollectionRecord | undefined;
  allCollections(): CollectionRecord[];
  collections(dbId: number): CollectionRecord[];
  collectionByName(dbId: number, name: string): CollectionRecord | undefined;
  resolveCollection(dbName: string, nameOrAlias: string): CollectionRecord;
  aliasesOf(collectionId: number): string[];
  alias(dbId: number, alias: string): AliasInfo | undefined;
  aliasesIn(dbId: number): AliasInfo[];
  indexes(collectionId: number): IndexRecord[];
  segments(collectionId: number): SegmentRecord[];
  segment(collectionId: number, segmentId: number): SegmentRecord | undefined;
  checkpoint(collectionId: number): number | undefined;
}

/** Id allocation (Milvus: RootCoord AllocID). */
export interface IdSource {
  alloc(count?: number): Promise<number>;
}

/** Hybrid timestamps (Milvus: RootCoord AllocTimestamp). */
export interface TsSource {
  next(): bigint;
}

/**
 * The segment manager as the data node sees it (Milvus: DataCoord AssignSegmentID / SaveBinlogPaths):
 * segment ids, the per-collection lock every segment-record commit takes, and the commits themselves.
 */
export interface SegmentCoordinator {
  /** A source of fresh segment ids, ready for synchronous use on the insert path. */
  segmentIds(): Promise<() => number>;
  /** Runs `fn` while no flush, compaction commit or index commit of the collection can run. */
  withCollectionLock<T>(collectionId: number, fn: () => Promise<T>): Promise<T>;
  /**
   * Commits what a flush wrote (new Flushed records, records with appended deltalogs) and the WAL
   * checkpoint in one transaction. Returns false (nothing committed) if the collection is gone.
   */
  commitFlush(collectionId: number, segments: readonly SegmentRecord[], checkpoint: number | undefined): Promise<boolean>;
  /** Publishes a compaction result: the target (if any rows survived) and the dropped sources, atomically. */
  commitCompaction(collectionId: number, target: SegmentRecord | undefined, dropped: readonly SegmentRecord[]): Promise<void>;
  /** Moves the checkpoints of clean collections up to `position` (before the WAL is truncated there). */
  raiseCheckpoints(collectionIds: readonly number[], position: number): Promise<void>;
}

/** What a data node reports about a collection's unflushed data; the segment manager decides on it. */
export interface GrowingStats {
  /** Rows of the largest growing segment. */
  readonly maxRows: number;
  /** Approximate in-memory bytes of the largest growing segment. */
  readonly maxBytes: number;
  /** Physical time of the oldest unflushed write (undefined: nothing unflushed). */
  readonly dirtySinceMs: number | undefined;
}

/**
 * What the coordinator tells the nodes after a catalog commit (Milvus broadcasts DDL on channels). Each
 * call is synchronous and runs inside the commit's critical section, so no write or read can observe the
 * catalog and the in-memory state disagreeing.
 */
export interface CollectionEvents {
  /** A new, empty collection (no segments yet). */
  collectionCreated(record: CollectionRecord): void;
  /** The record changed (properties, partitions, load flags, name). */
  collectionChanged(record: CollectionRecord): void;
  /** The collection is gone: release its memory now. */
  collectionDropped(record: CollectionRecord): void;
  /** A partition is gone: its unflushed rows die with it. */
  partitionDropped(collectionId: number, partitionId: number): void;
  /** Segment records changed outside a flush or compaction (index dropped, partition dropped). */
  segmentsCommitted(collectionId: number, records: readonly SegmentRecord[]): void;
}

export interface CreateCollectionInput {
  readonly dbName: string;
  readonly name: string;
  readonly fields: Omit<FieldSchema, 'fieldId'>[];
  readonly description: string;
  readonly enableDynamicField: boolean;
  readonly autoId: boolean;
  readonly shardsNum: number;
  readonly consistencyLevel: string;
  readonly properties: Record<string, string>;
  readonly numPartitions: number;
  readonly functions?: CollectionSchema['functions'];
}

export type IndexDefinition = Omit<IndexRecord, 'id' | 'collectionId' | 'fieldId' | 'name' | 'createdTs'>;

export interface IndexProgress {
  readonly indexedRows: number;
  readonly totalRows: number;
  readonly pendingRows: number;
}

/** The catalog service (Milvus RootCoord): DDL, ids, timestamps. */
export interface CatalogServiceApi {
  readonly catalog: CatalogReader;
  readonly tso: TsSource;
  readonly ids: IdSource;
  createDatabase(name: string, properties: Record<string, string>): Promise<void>;
  dropDatabase(name: string): Promise<void>;
  alterDatabase(name: string, set: Record<string, string>, deleteKeys: readonly string[]): Promise<void>;
  createCollection(input: CreateCollectionInput): Promise<CollectionRecord>;
  dropCollection(dbName: string, name: string): Promise<void>;
  renameCollection(dbName: string, oldName: string, newName: string, newDbName: string): Promise<void>;
  alterCollection(dbName: string, name: string, set: Record<string, string>, deleteKeys: readonly string[]): Promise<void>;
  alterCollectionField(dbName: string, name: string, fieldName: string, set: Record<string, string>, deleteKeys: readonly string[]): Promise<void>;
  /** Schema changes and truncate (coord/catalog-service.ts). */
  addCollectionField(dbName: string, collName: string, field: Omit<FieldSchema, 'fieldId'>): Promise<FieldSchema>;
  dropCollectionField(dbName: string, collName: string, by: { name?: string | undefined; id?: number | undefined }): Promise<void>;
  addFunctionField(
    dbName: string,
    collName: string,
    field: Omit<FieldSchema, 'fieldId'>,
    fn: FunctionSchema,
    index: { readonly name: string; readonly def: IndexDefinition },
  ): Promise<FieldSchema>;
  dropFunctionField(dbName: string, collName: string, functionName: string): Promise<void>;
  truncateCollection(dbName: string, collName: string): Promise<void>;
  createPartition(dbName: string, collName: string, name: string): Promise<void>;
  dropPartition(dbName: string, collName: string, name: string): Promise<void>;
  createAlias(dbName: string, collName: string, alias: string): Promise<void>;
  alterAlias(dbName: string, collName: string, alias: string): Promise<void>;
  dropAlias(dbName: string, alias: string): Promise<void>;
  createIndex(collectionId: number, field: FieldSchema, name: string, def: IndexDefinition): Promise<void>;
  dropIndex(collectionId: number, index: IndexRecord): Promise<void>;
  alterIndexProperties(collectionId: number, indexId: number, set: Record<string, string>, deleteKeys: readonly string[]): Promise<IndexRecord>;
}

/** Load state lives in the catalog (Milvus: QueryCoord meta); the query node writes it through this. */
export interface LoadStateStore {
  setLoadState(collectionId: number, loaded: boolean, loadedPartitions: readonly number[] | undefined): Promise<CollectionRecord>;
}

/** The index-build scheduler as the proxy sees it. */
export interface IndexSchedulerApi {
  progress(collectionId: number, index: IndexRecord): IndexProgress;
  /** Builds every missing index file of the collection now (tests, benchmarks). */
  buildMissing(collectionId: number): Promise<void>;
}

/** A partition by name (`_default` when empty). */
export type PartitionLookup = (coll: CollectionRecord, name: string | undefined) => PartitionRecord;

export type { CompactionPlan, CompactionPolicy, SegmentStat } from './compaction-planner.js';
