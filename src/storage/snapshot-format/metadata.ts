/**
 * Snapshot metadata: `snapshots/{collection}/metadata/{snapshotId}.json` (paths.ts snapshotMetadataKey),
 * after Milvus's SnapshotMetadata: snapshot info, the collection's schema and index definitions, the
 * manifest keys, and the pre-computed segment and build ids that GC must protect (the RefIndex input),
 * so that a restart can rebuild the RefIndex without opening a single manifest.
 *
 * Plain JSON without bigints: hybrid timestamps are decimal strings, ids are safe integers, and Int64
 * default values in the schema are already strings in the catalog records.
 *
 * Invariants checked on encode (ParameterInvalid) and on decode (ServiceInternal: a stored file that
 * breaks them is damaged, and reading it again will not help):
 * - `format_version` is 1;
 * - `manifests[i]` is the manifest of `segment_ids[i]`: same length, no duplicates, and each key is a
 *   manifest key of this collection (shared layout, manifest-store.ts, or per-snapshot layout, paths.ts)
 *   whose segment id is `segment_ids[i]`;
 * - ids are unique where they must be (segments, builds, partitions, indexes) and indexes belong to the
 *   collection.
 * Unknown keys are kept (zod passthrough), so a newer writer's additive fields survive a read-modify-write
 * and a future field added to FieldSchema or IndexRecord is never silently dropped.
 */

import { z } from 'zod';
import { QuiverError, quiverError, type ErrorKind } from '../../common/errors.js';
import { parseSnapshotKey } from '../paths.js';
import type { CollectionRecord, IndexRecord } from '../../coord/records.js';
import type { ManifestEntry } from './manifest.js';
import { parseManifestKey } from './manifest-store.js';

export const METADATA_FORMAT_VERSION = 1;
export const METADATA_BYTES_MAX = 64 * 1024 * 1024;

export interface SnapshotMetadata {
  readonly format_version: 1;
  readonly snapshot_id: number;
  readonly name: string;
  readonly description: string;
  readonly collection_id: number;
  readonly collection_name: string;
  readonly db_name: string;
  /** Hybrid timestamp of the snapshot, decimal. */
  readonly create_ts: string;
  readonly created_at_ms: number;
  readonly schema: CollectionRecord['schema'];
  readonly shards_num: number;
  readonly consistency_level: string;
  readonly properties: Readonly<Record<string, string>>;
  readonly partitions: readonly { readonly id: number; readonly name: string }[];
  /** Index definitions. */
  readonly indexes: readonly IndexRecord[];
  /** Object keys of the manifests, one per segment: manifests[i] describes segment_ids[i]. */
  readonly manifests: readonly string[];
  /** What GC must protect (RefIndex input). */
  readonly segment_ids: readonly number[];
  readonly build_ids: readonly number[];
  /** Rows stored in the segments (deletes not subtracted). */
  readonly total_rows: number;
  /** Bytes of every referenced file (binlogs, deltalogs, statslogs, index files). */
  readonly total_bytes: number;
}

const DECIMAL = /^(0|[1-9][0-9]{0,19})$/;

const id = z.number().int().nonnegative().safe();
const timestamp = z.string().regex(DECIMAL, 'must be a decimal hybrid timestamp');
const stringMap = z.record(z.string());
const scalarType = z.enum(['Bool', 'Int8', 'Int16', 'Int32', 'Int64', 'Float', 'Double', 'VarChar']);
const dataType = z.enum([
  'Bool',
  'Int8',
  'Int16',
  'Int32',
  'Int64',
  'Float',
  'Double',
  'VarChar',
  'JSON',
  'Array',
  'Geometry',
  'Timestamptz',
  'FloatVector',
  'BinaryVector',
  'Float16Vector',
  'BFloat16Vector',
  'Int8Vector',
  'SparseFloatVector',
  'ArrayOfStruct',
]);

const structSubField = z
  .object({
    fieldId: id,
    name: z.string(),
    description: z.string(),
    dataType: z.enum(['Bool', 'Int8', 'Int16', 'Int32', 'Int64', 'Float', 'Double', 'VarChar', 'FloatVector']),
    maxLength: id.optional(),
    dim: id.optional(),
    typeParams: stringMap,
  })
  .passthrough();

const fieldSchema = z
  .object({
    fieldId: id,
    name: z.string(),
    description: z.string(),
    dataType,
    isPrimaryKey: z.boolean(),
    autoId: z.boolean(),
    nullable: z.boolean(),
    // JSON has no bigint, NaN or Infinity: Int64 defaults are decimal strings in the records.
    defaultValue: z.union([z.boolean(), z.number().finite(), z.string()]).optional(),
    elementType: scalarType.optional(),
    maxLength: id.optional(),
    maxCapacity: id.optional(),
    dim: id.optional(),
    structFields: z.array(structSubField).optional(),
    isDynamic: z.boolean(),
    isPartitionKey: z.boolean(),
    isClusteringKey: z.boolean(),
    typeParams: stringMap,
  })
  .passthrough();

const collectionSchema = z
  .object({
    name: z.string(),
    description: z.string(),
    autoId: z.boolean(),
    enableDynamicField: z.boolean(),
    fields: z.array(fieldSchema),
  })
  .passthrough();

const indexRecord = z
  .object({
    id,
    collectionId: id,
    fieldId: id,
    name: z.string(),
    indexType: z.enum([
      'FLAT',
      'HNSW',
      'HNSW_SQ',
      'HNSW_PQ',
      'HNSW_PRQ',
      'IVF_FLAT',
      'IVF_SQ8',
      'IVF_PQ',
      'BIN_FLAT',
      'BIN_IVF_FLAT',
      'SPARSE_INVERTED_INDEX',
      'SPARSE_WAND',
      'INVERTED',
      'STL_SORT',
      'BITMAP',
      'Trie',
      'RTREE',
    ]),
    // '' for scalar indexes, which have no metric.
    metric: z.enum(['L2', 'IP', 'COSINE', 'HAMMING', 'JACCARD', 'BM25', '']),
    userParams: stringMap,
    buildParams: z.object({ M: id.optional(), efConstruction: id.optional() }).passthrough(),
    createdTs: timestamp,
  })
  .passthrough();

const snapshotMetadata = z
  .object({
    format_version: z.literal(METADATA_FORMAT_VERSION),
    snapshot_id: id,
    name: z.string().min(1),
    description: z.string(),
    collection_id: id,
    collection_name: z.string().min(1),
    db_name: z.string().min(1),
    create_ts: timestamp,
    created_at_ms: id,
    schema: collectionSchema,
    shards_num: z.number().int().positive().safe(),
    consistency_level: z.string(),
    properties: stringMap,
    partitions: z.array(z.object({ id, name: z.string().min(1) }).passthrough()),
    indexes: z.array(indexRecord),
    manifests: z.array(z.string()),
    segment_ids: z.array(id),
    build_ids: z.array(id),
    total_rows: id,
    total_bytes: id,
  })
  .passthrough()
  .superRefine((m, ctx) => {
    const issue = (path: (string | number)[], message: string) => ctx.addIssue({ code: z.ZodIssueCode.custom, path, message });
    duplicates(m.segment_ids).forEach((v) => issue(['segment_ids'], `segment ${v} is listed twice`));
    duplicates(m.build_ids).forEach((v) => issue(['build_ids'], `build ${v} is listed twice`));
    duplicates(m.manifests).forEach((v) => issue(['manifests'], `manifest ${JSON.stringify(v)} is listed twice`));
    duplicates(m.partitions.map((p) => p.id)).forEach((v) => issue(['partitions'], `partition ${v} is listed twice`));
    duplicates(m.indexes.map((x) => x.id)).forEach((v) => issue(['indexes'], `index ${v} is listed twice`));
    m.indexes.forEach((x, i) => {
      if (x.collectionId !== m.collection_id)
        issue(['indexes', i, 'collectionId'], `index ${x.id} belongs to collection ${x.collectionId}, not ${m.collection_id}`);
    });
    if (m.manifests.length !== m.segment_ids.length) {
      issue(['manifests'], `${m.manifests.length} manifests for ${m.segment_ids.length} segments (one per segment)`);
      return;
    }
    m.manifests.forEach((key, i) => {
      const ref = manifestRef(key);
      if (ref === undefined) issue(['manifests', i], `${JSON.stringify(key)} is not a manifest key`);
      else if (ref.collectionId !== m.collection_id)
        issue(['manifests', i], `${JSON.stringify(key)} belongs to collection ${ref.collectionId}, not ${m.collection_id}`);
      else if (ref.segmentId !== m.segment_ids[i])
        issue(['manifests', i], `${JSON.stringify(key)} is the manifest of segment ${ref.segmentId}, but segment_ids[${i}] is ${m.segment_ids[i]}`);
    });
  });

// Compile-time check that what zod returns is a SnapshotMetadata.
const METADATA_SCHEMA: z.ZodType<SnapshotMetadata, z.ZodTypeDef, unknown> = snapshotMetadata;

/** The collection and segment a manifest key names, in either layout. */
export function manifestRef(key: string): { collectionId: number; segmentId: number } | undefined {
  const shared = parseManifestKey(key);
  if (shared !== undefined) return { collectionId: shared.collectionId, segmentId: shared.segmentId };
  const perSnapshot = parseSnapshotKey(key);
  return perSnapshot?.kind === 'manifest' ? { collectionId: perSnapshot.collectionId, segmentId: perSnapshot.segmentId } : undefined;
}

export function encodeMetadata(m: SnapshotMetadata): Uint8Array {
  validate(m, 'ParameterInvalid', 'snapshot metadata is invalid');
  let json: string;
  try {
    json = JSON.stringify(m, (key, value: unknown) => {
      if (typeof value === 'bigint')
        throw quiverError('ParameterInvalid', `snapshot metadata: ${JSON.stringify(key)} holds bigint ${value}n; JSON has no int64`);
      return value;
    });
  } catch (e) {
    if (e instanceof QuiverError) throw e;
    throw quiverError('ParameterInvalid', `snapshot metadata cannot be written as JSON: ${(e as Error).message}`, e);
  }
  return new TextEncoder().encode(json);
}

/** ServiceInternal naming the problem when the bytes are not a valid metadata file. */
export function decodeMetadata(bytes: Uint8Array): SnapshotMetadata {
  if (!(bytes instanceof Uint8Array)) throw quiverError('ParameterInvalid', 'decodeMetadata: bytes must be a Uint8Array');
  if (bytes.byteLength > METADATA_BYTES_MAX) throw damaged(`file has ${bytes.byteLength} bytes, at most ${METADATA_BYTES_MAX}`);
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch (e) {
    throw damaged(`not valid UTF-8 JSON: ${(e as Error).message}`, e);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw damaged('not a JSON object');
  const version = (value as { format_version?: unknown }).format_version;
  if (version !== METADATA_FORMAT_VERSION) {
    throw damaged(
      typeof version === 'number' && Number.isInteger(version) && version > METADATA_FORMAT_VERSION
        ? `format_version ${version} is newer than this reader (${METADATA_FORMAT_VERSION}); upgrade Quiver`
        : `format_version must be ${METADATA_FORMAT_VERSION}, got ${JSON.stringify(version)}`,
    );
  }
  return validate(value, 'ServiceInternal', 'snapshot metadata is damaged');
}

/** The derived fields of a snapshot's metadata, from its entries and their manifest keys (same order). */
export function summarizeEntries(
  entries: readonly ManifestEntry[],
  keys: readonly string[],
): Pick<SnapshotMetadata, 'manifests' | 'segment_ids' | 'build_ids' | 'total_rows' | 'total_bytes'> {
  if (entries.length !== keys.length) throw quiverError('ParameterInvalid', `${entries.length} entries but ${keys.length} manifest keys`);
  const builds = new Set<number>();
  let totalRows = 0;
  let totalBytes = 0;
  for (const { segment: s } of entries) {
    totalRows += s.numRows;
    for (const logs of Object.values(s.binlogs)) for (const b of logs) totalBytes += b.size;
    for (const b of s.deltalogs) totalBytes += b.size;
    for (const b of s.statslogs) totalBytes += b.size;
    for (const f of s.indexes) {
      totalBytes += f.size;
      builds.add(f.buildId);
    }
  }
  return {
    manifests: [...keys],
    segment_ids: entries.map((e) => e.segment.id),
    build_ids: [...builds].sort((a, b) => a - b),
    total_rows: totalRows,
    total_bytes: totalBytes,
  };
}

function validate(value: unknown, kind: ErrorKind, what: string): SnapshotMetadata {
  const parsed = METADATA_SCHEMA.safeParse(value);
  if (parsed.success) return parsed.data;
  const issues = parsed.error.issues.slice(0, 5).map((i) => {
    const path = i.path.join('.') || '(root)';
    const got = i.code === z.ZodIssueCode.custom ? '' : ` (got ${preview(at(value, i.path))})`;
    return `${path}: ${i.message}${got}`;
  });
  const more = parsed.error.issues.length > 5 ? `; and ${parsed.error.issues.length - 5} more` : '';
  throw quiverError(kind, `${what}: ${issues.join('; ')}${more}`);
}

function damaged(reason: string, cause?: unknown): QuiverError {
  return quiverError('ServiceInternal', `snapshot metadata is damaged: ${reason}`, cause);
}

function duplicates<T>(values: readonly T[]): T[] {
  const seen = new Set<T>();
  const dups = new Set<T>();
  for (const v of values) (seen.has(v) ? dups : seen).add(v);
  return [...dups];
}

function at(value: unknown, path: readonly (string | number)[]): unknown {
  let v = value;
  for (const p of path) v = typeof v === 'object' && v !== null ? (v as Record<string | number, unknown>)[p] : undefined;
  return v;
}

function preview(value: unknown): string {
  if (typeof value === 'bigint') return `${value}n`;
  if (value === undefined) return 'nothing';
  let text: string;
  try {
    text = JSON.stringify(value) ?? String(value);
  } catch {
    text = String(value);
  }
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}
