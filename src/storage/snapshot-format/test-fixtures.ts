/** Builders shared by the format tests (not used by production code). */

import type { CollectionSchema } from '../../schema/types.js';
import { deltaLogKey, indexFileKey, insertLogKey, statsLogKey } from '../paths.js';
import type { Binlog, IndexRecord, SegmentRecord } from '../../coord/records.js';
import type { ManifestEntry } from './manifest.js';
import { manifestKey } from './manifest-store.js';
import { summarizeEntries, type SnapshotMetadata } from './metadata.js';

/** A hybrid timestamp above 2^53, as the TSO produces them. */
export const TS = '449123456789012345';

export function binlog(path: string, logId: number, size = 1000): Binlog {
  return { logId, path, entries: 100, tsFrom: TS, tsTo: '449123456789099999', size };
}

export interface SegmentOptions {
  readonly collectionId?: number;
  readonly partitionId?: number;
  readonly deltalogs?: number;
  readonly builds?: readonly number[];
  readonly state?: SegmentRecord['state'];
}

/** A flushed segment with binlogs for fields 1, 100, 101, one statslog, n deltalogs and index builds. */
export function segment(id: number, o: SegmentOptions = {}): SegmentRecord {
  const c = o.collectionId ?? 7;
  const p = o.partitionId ?? 3;
  const logId = id * 1000;
  return {
    id,
    collectionId: c,
    partitionId: p,
    state: o.state ?? 'Flushed',
    numRows: 100,
    binlogs: Object.fromEntries([1, 100, 101].map((f, i) => [String(f), [binlog(insertLogKey(c, p, id, f, logId + i), logId + i)]])),
    deltalogs: Array.from({ length: o.deltalogs ?? 0 }, (_, i) => binlog(deltaLogKey(c, p, id, logId + 100 + i), logId + 100 + i, 50)),
    statslogs: [binlog(statsLogKey(c, p, id, 100, logId + 10), logId + 10, 20)],
    indexes: (o.builds ?? []).map((buildId) => ({
      indexId: 500,
      buildId,
      version: 1,
      files: [indexFileKey(buildId, 1, p, id, 'hnsw.bin'), indexFileKey(buildId, 1, p, id, 'meta.json')],
      size: 4096,
    })),
    createdTs: TS,
  };
}

export function entry(seg: SegmentRecord): ManifestEntry {
  return {
    segment: seg,
    channel: `quiver-dml_0_${seg.collectionId}v0`,
    indexParams: seg.indexes.length > 0 ? [{ indexId: 500, indexType: 'HNSW', metric: 'COSINE', M: 16, efConstruction: 200 }] : [],
  };
}

export const SCHEMA: CollectionSchema = {
  name: 'docs',
  description: 'd',
  autoId: false,
  enableDynamicField: true,
  fields: [
    {
      fieldId: 100,
      name: 'id',
      description: '',
      dataType: 'Int64',
      isPrimaryKey: true,
      autoId: false,
      nullable: false,
      isDynamic: false,
      isPartitionKey: false,
      isClusteringKey: false,
      typeParams: {},
    },
    {
      fieldId: 101,
      name: 'vec',
      description: '',
      dataType: 'FloatVector',
      isPrimaryKey: false,
      autoId: false,
      nullable: false,
      dim: 8,
      isDynamic: false,
      isPartitionKey: false,
      isClusteringKey: false,
      typeParams: { dim: '8' },
    },
    {
      fieldId: 102,
      name: 'n',
      description: '',
      dataType: 'Int64',
      isPrimaryKey: false,
      autoId: false,
      nullable: true,
      defaultValue: '9007199254740993',
      isDynamic: false,
      isPartitionKey: false,
      isClusteringKey: false,
      typeParams: {},
    },
    {
      fieldId: 103,
      name: 'tags',
      description: '',
      dataType: 'Array',
      elementType: 'VarChar',
      maxCapacity: 4,
      maxLength: 16,
      isPrimaryKey: false,
      autoId: false,
      nullable: false,
      isDynamic: false,
      isPartitionKey: false,
      isClusteringKey: false,
      typeParams: {},
    },
  ],
};

export const INDEX: IndexRecord = {
  id: 500,
  collectionId: 7,
  fieldId: 101,
  name: 'vec_idx',
  indexType: 'HNSW',
  metric: 'COSINE',
  userParams: { index_type: 'HNSW', metric_type: 'COSINE', M: '16' },
  buildParams: { M: 16, efConstruction: 200 },
  createdTs: TS,
};

/** The entries `metadata()` describes: segment id, id % 2 deltalogs, one build 900 + id. */
export function snapshotEntries(segments: readonly number[]): ManifestEntry[] {
  return segments.map((id) => entry(segment(id, { deltalogs: id % 2, builds: [900 + id] })));
}

/** Metadata of a snapshot of collection 7 over `snapshotEntries(segments)`. */
export function metadata(segments = [1, 2, 3], overrides: Partial<SnapshotMetadata> = {}): SnapshotMetadata {
  const entries = snapshotEntries(segments);
  return {
    format_version: 1,
    snapshot_id: 77,
    name: 'nightly',
    description: 'before the migration',
    collection_id: 7,
    collection_name: 'docs',
    db_name: 'default',
    create_ts: TS,
    created_at_ms: 1_700_000_000_000,
    schema: SCHEMA,
    shards_num: 1,
    consistency_level: 'Bounded',
    properties: { 'collection.ttl.seconds': '0' },
    partitions: [{ id: 3, name: '_default' }],
    indexes: [INDEX],
    ...summarizeEntries(
      entries,
      entries.map((e) => manifestKey(7, e)),
    ),
    ...overrides,
  };
}
