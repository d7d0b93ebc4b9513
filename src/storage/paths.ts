/**
 * Object keys of Quiver's files (DESIGN.md section 3), relative to the store root:
 *
 *   insert_log/{collection}/{partition}/{segment}/{field}/{logId}     Arrow IPC, one column
 *   delta_log/{collection}/{partition}/{segment}/{logId}              Arrow IPC, pk + ts
 *   stats_log/{collection}/{partition}/{segment}/{field}/{logId}
 *   index_files/{buildId}/{version}/{partition}/{segment}/{file}
 *   snapshots/{collection}/metadata/{snapshotId}.json
 *   snapshots/{collection}/manifests/{snapshotId}/{segment}.avro
 *
 * Ids are non-negative safe integers written in canonical decimal, so `format(parse(key)) === key`:
 * GC relies on that to recognise every file it may reclaim, and restore to rewrite ids in a key.
 * Index files carry no collection id (as in Milvus); their owner is found through the build id.
 */

import { quiverError } from '../common/errors.js';
import { validateObjectKey } from './object-key.js';

export const INSERT_LOG_ROOT = 'insert_log';
export const DELTA_LOG_ROOT = 'delta_log';
export const STATS_LOG_ROOT = 'stats_log';
export const INDEX_FILES_ROOT = 'index_files';
export const SNAPSHOTS_ROOT = 'snapshots';

export type SegmentKey =
  | {
      readonly kind: 'insert';
      readonly collectionId: number;
      readonly partitionId: number;
      readonly segmentId: number;
      readonly fieldId: number;
      readonly logId: number;
    }
  | {
      readonly kind: 'delta';
      readonly collectionId: number;
      readonly partitionId: number;
      readonly segmentId: number;
      readonly logId: number;
    }
  | {
      readonly kind: 'stats';
      readonly collectionId: number;
      readonly partitionId: number;
      readonly segmentId: number;
      readonly fieldId: number;
      readonly logId: number;
    }
  | {
      readonly kind: 'index';
      readonly buildId: number;
      readonly version: number;
      readonly partitionId: number;
      readonly segmentId: number;
      readonly file: string;
    };

export type SnapshotKey =
  | { readonly kind: 'metadata'; readonly collectionId: number; readonly snapshotId: number }
  | { readonly kind: 'manifest'; readonly collectionId: number; readonly snapshotId: number; readonly segmentId: number };

// ---------------------------------------------------------------------------------------------------
// Builders

export function insertLogKey(collectionId: number, partitionId: number, segmentId: number, fieldId: number, logId: number): string {
  return `${INSERT_LOG_ROOT}/${ids({ collectionId, partitionId, segmentId, fieldId, logId })}`;
}

export function deltaLogKey(collectionId: number, partitionId: number, segmentId: number, logId: number): string {
  return `${DELTA_LOG_ROOT}/${ids({ collectionId, partitionId, segmentId, logId })}`;
}

export function statsLogKey(collectionId: number, partitionId: number, segmentId: number, fieldId: number, logId: number): string {
  return `${STATS_LOG_ROOT}/${ids({ collectionId, partitionId, segmentId, fieldId, logId })}`;
}

/** `file` is one path segment (an index library's file name). */
export function indexFileKey(buildId: number, version: number, partitionId: number, segmentId: number, file: string): string {
  if (typeof file !== 'string' || file.length === 0 || file.includes('/')) {
    throw quiverError('ParameterInvalid', `index file name must be one non-empty path segment, got ${JSON.stringify(file)}`);
  }
  const key = `${INDEX_FILES_ROOT}/${ids({ buildId, version, partitionId, segmentId })}/${file}`;
  validateObjectKey(key);
  return key;
}

export function snapshotMetadataKey(collectionId: number, snapshotId: number): string {
  return `${SNAPSHOTS_ROOT}/${id('collectionId', collectionId)}/metadata/${id('snapshotId', snapshotId)}.json`;
}

export function snapshotManifestKey(collectionId: number, snapshotId: number, segmentId: number): string {
  return `${snapshotManifestsPrefix(collectionId, snapshotId)}${id('segmentId', segmentId)}.avro`;
}

/** Inverse of `parseSegmentKey`: restore rewrites ids with `formatSegmentKey({ ...parsed, segmentId })`. */
export function formatSegmentKey(k: SegmentKey): string {
  switch (k.kind) {
    case 'insert':
      return insertLogKey(k.collectionId, k.partitionId, k.segmentId, k.fieldId, k.logId);
    case 'delta':
      return deltaLogKey(k.collectionId, k.partitionId, k.segmentId, k.logId);
    case 'stats':
      return statsLogKey(k.collectionId, k.partitionId, k.segmentId, k.fieldId, k.logId);
    case 'index':
      return indexFileKey(k.buildId, k.version, k.partitionId, k.segmentId, k.file);
    default: {
      const never: never = k;
      throw quiverError('ParameterInvalid', `unknown segment key kind ${JSON.stringify(never)}`);
    }
  }
}

// ---------------------------------------------------------------------------------------------------
// Prefixes (all end in '/', so that collection 1 never matches collection 10)

/** The binlog, deltalog and statslog prefixes of one collection (index files live under their build). */
export function collectionFilePrefixes(collectionId: number): readonly string[] {
  const c = id('collectionId', collectionId);
  return [`${INSERT_LOG_ROOT}/${c}/`, `${DELTA_LOG_ROOT}/${c}/`, `${STATS_LOG_ROOT}/${c}/`];
}

/** The binlog, deltalog and statslog prefixes of one segment. */
export function segmentFilePrefixes(collectionId: number, partitionId: number, segmentId: number): readonly string[] {
  const p = ids({ collectionId, partitionId, segmentId });
  return [`${INSERT_LOG_ROOT}/${p}/`, `${DELTA_LOG_ROOT}/${p}/`, `${STATS_LOG_ROOT}/${p}/`];
}

export function indexBuildPrefix(buildId: number): string {
  return `${INDEX_FILES_ROOT}/${id('buildId', buildId)}/`;
}

export function snapshotsPrefix(collectionId: number): string {
  return `${SNAPSHOTS_ROOT}/${id('collectionId', collectionId)}/`;
}

export function snapshotManifestsPrefix(collectionId: number, snapshotId: number): string {
  return `${snapshotsPrefix(collectionId)}manifests/${id('snapshotId', snapshotId)}/`;
}

// ---------------------------------------------------------------------------------------------------
// Parsers: undefined for anything that is not exactly a key the builders produce

export function parseSegmentKey(key: string): SegmentKey | undefined {
  if (typeof key !== 'string') return undefined;
  const parts = key.split('/');
  const root = parts[0];
  const n = parts.slice(1).map(parseId);
  const [a, b, c, d, e] = n;
  switch (root) {
    case INSERT_LOG_ROOT:
    case STATS_LOG_ROOT:
      if (parts.length !== 6 || a === undefined || b === undefined || c === undefined || d === undefined || e === undefined) {
        return undefined;
      }
      return {
        kind: root === INSERT_LOG_ROOT ? 'insert' : 'stats',
        collectionId: a,
        partitionId: b,
        segmentId: c,
        fieldId: d,
        logId: e,
      };
    case DELTA_LOG_ROOT:
      if (parts.length !== 5 || a === undefined || b === undefined || c === undefined || d === undefined) return undefined;
      return { kind: 'delta', collectionId: a, partitionId: b, segmentId: c, logId: d };
    case INDEX_FILES_ROOT: {
      const file = parts[5];
      if (parts.length !== 6 || a === undefined || b === undefined || c === undefined || d === undefined || !file) {
        return undefined;
      }
      if (file === '.' || file === '..') return undefined;
      return { kind: 'index', buildId: a, version: b, partitionId: c, segmentId: d, file };
    }
    default:
      return undefined;
  }
}

export function parseSnapshotKey(key: string): SnapshotKey | undefined {
  if (typeof key !== 'string') return undefined;
  const parts = key.split('/');
  if (parts[0] !== SNAPSHOTS_ROOT) return undefined;
  const collectionId = parseId(parts[1]);
  if (collectionId === undefined) return undefined;
  if (parts.length === 4 && parts[2] === 'metadata') {
    const snapshotId = parseId(stripSuffix(parts[3], '.json'));
    return snapshotId === undefined ? undefined : { kind: 'metadata', collectionId, snapshotId };
  }
  if (parts.length === 5 && parts[2] === 'manifests') {
    const snapshotId = parseId(parts[3]);
    const segmentId = parseId(stripSuffix(parts[4], '.avro'));
    if (snapshotId === undefined || segmentId === undefined) return undefined;
    return { kind: 'manifest', collectionId, snapshotId, segmentId };
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------------------

const CANONICAL_ID = /^(0|[1-9][0-9]*)$/;

function parseId(text: string | undefined): number | undefined {
  if (text === undefined || !CANONICAL_ID.test(text)) return undefined;
  const value = Number(text);
  return Number.isSafeInteger(value) ? value : undefined;
}

function stripSuffix(text: string | undefined, suffix: string): string | undefined {
  return text !== undefined && text.endsWith(suffix) ? text.slice(0, -suffix.length) : undefined;
}

function id(name: string, value: number): string {
  if (!Number.isSafeInteger(value) || value < 0) {
    throw quiverError('ParameterInvalid', `${name} must be a non-negative safe integer, got ${String(value)}`);
  }
  return String(value);
}

/** Joins ids in insertion order with '/', checking each. */
function ids(values: Readonly<Record<string, number>>): string {
  return Object.entries(values)
    .map(([name, value]) => id(name, value))
    .join('/');
}
