import type { SegmentRecord } from '../records.js';

/** One object a segment record lists, with the bytes GC attributes to it. */
export interface SegmentFile {
  readonly key: string;
  readonly size: number;
}

/**
 * Every object key a segment record lists (insert binlogs of every field, deltalogs, statslogs, index
 * files), each once, in a stable order. Bytes come from the record, not from the store, so reclaimed
 * bytes are known without a `stat` per file: a Binlog carries its own size; an index entry carries the
 * total of its files, attributed to its first file.
 */
export function segmentFiles(segment: SegmentRecord): SegmentFile[] {
  const out = new Map<string, number>();
  const add = (key: string, size: number): void => {
    if (!out.has(key)) out.set(key, size);
  };
  const fieldIds = Object.keys(segment.binlogs).sort((a, b) => Number(a) - Number(b));
  for (const fieldId of fieldIds) for (const log of segment.binlogs[fieldId] ?? []) add(log.path, log.size);
  for (const log of segment.deltalogs) add(log.path, log.size);
  for (const log of segment.statslogs) add(log.path, log.size);
  for (const index of segment.indexes) index.files.forEach((key, i) => add(key, i === 0 ? index.size : 0));
  return [...out].map(([key, size]) => ({ key, size }));
}

/** The build ids of a segment's index entries. */
export function segmentBuildIds(segment: SegmentRecord): number[] {
  return segment.indexes.map((i) => i.buildId);
}
