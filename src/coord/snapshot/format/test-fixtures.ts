/** Builders shared by the format tests (not used by production code). */

import type { Binlog, SegmentRecord } from '../../records.js';
import type { ManifestEntry } from './manifest.js';
import { deltaLogKey, indexFileKey, insertLogKey, statsLogKey } from '../../../storage/paths.js';

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
    binlogs: Object.fromEntries(
      [1, 100, 101].map((f, i) => [String(f), [binlog(insertLogKey(c, p, id, f, logId + i), logId + i)]]),
    ),
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
