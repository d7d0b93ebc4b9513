/**
 * Catalog record factories for tests: a collection and a flushed segment whose file paths are real object
 * keys (built by storage/paths), so GC, snapshot and copy code that derives keys from records sees the same
 * layout as in production. Every id in a segment derives from (collection, segment), so two segments never
 * share a key.
 */

import { deltaLogKey, indexFileKey, insertLogKey, statsLogKey } from '../storage/paths.js';
import type { Binlog, CollectionRecord, SegmentRecord, SegmentState } from '../coord/records.js';

/** The partition every factory record lives in unless told otherwise. */
export const PARTITION_ID = 7;

/** A collection with an empty schema and one `_default` partition (`PARTITION_ID`). */
export function collectionRecord(id: number, state: 'Created' | 'Dropped' = 'Created', droppedAtMs?: number): CollectionRecord {
  return {
    id,
    dbId: 1,
    name: `c${id}`,
    schema: { name: `c${id}`, description: '', autoId: false, enableDynamicField: false, fields: [] },
    shardsNum: 1,
    consistencyLevel: 'Bounded',
    properties: {},
    partitions: [{ id: PARTITION_ID, name: '_default', createdTs: '1' }],
    createdTs: '1',
    updateTs: '1',
    state,
    droppedAtMs,
    loaded: false,
  };
}

export interface SegmentSpec {
  readonly collectionId: number;
  readonly id: number;
  /** Default `PARTITION_ID`. */
  readonly partitionId?: number;
  readonly state?: SegmentState;
  readonly droppedAtMs?: number;
  /** Insert binlog fields (default [1, 100, 101]: the timestamp field and two user fields). */
  readonly fieldIds?: readonly number[];
  /** Number of deltalogs (default 1). */
  readonly deltalogs?: number;
  /** Adds one index entry with this build id and two files. */
  readonly buildId?: number;
}

function binlog(path: string, logId: number, size: number): Binlog {
  return { logId, path, entries: 10, tsFrom: '1', tsTo: '2', size };
}

/** A segment of 10 rows: one insert binlog per field, `deltalogs` deltalogs, one statslog, an optional index. */
export function segmentRecord(spec: SegmentSpec): SegmentRecord {
  const { collectionId: c, id: s } = spec;
  const p = spec.partitionId ?? PARTITION_ID;
  const binlogs: Record<string, Binlog[]> = {};
  let logId = 1;
  for (const f of spec.fieldIds ?? [1, 100, 101]) binlogs[String(f)] = [binlog(insertLogKey(c, p, s, f, logId), logId++, 100 + f)];
  const deltalogs = Array.from({ length: spec.deltalogs ?? 1 }, () => binlog(deltaLogKey(c, p, s, logId), logId++, 30));
  const statslogs = [binlog(statsLogKey(c, p, s, 100, logId), logId++, 20)];
  const indexes =
    spec.buildId === undefined
      ? []
      : [
          {
            indexId: 900,
            buildId: spec.buildId,
            version: 1,
            size: 500,
            files: [indexFileKey(spec.buildId, 1, p, s, 'hnsw.bin'), indexFileKey(spec.buildId, 1, p, s, 'meta.json')],
          },
        ];
  return {
    id: s,
    collectionId: c,
    partitionId: p,
    state: spec.state ?? 'Flushed',
    numRows: 10,
    binlogs,
    deltalogs,
    statslogs,
    indexes,
    droppedAtMs: spec.droppedAtMs,
    createdTs: '1',
  };
}
