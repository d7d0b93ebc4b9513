/**
 * Segment manifests: one Avro object container file per (segment, deltalog generation), holding one
 * `quiver.snapshot.ManifestEntry` record, after Milvus's snapshot manifest entry (segment, partition,
 * channel, rows, positions, binlog / deltalog / statslog lists, index files with their index params).
 *
 * Number mapping:
 * - ids, row counts, sizes and versions are Avro `long`. They are JavaScript safe integers everywhere
 *   in Quiver; a small custom long type (SAFE_LONG) reads and writes the whole safe range and refuses
 *   anything larger instead of rounding it. Negative values are refused on encode.
 * - hybrid timestamps (physical ms << 18 | logical) exceed 2^53, so they stay decimal `string`s, as in
 *   the catalog records. `start_position` and `dml_position` both hold the segment's `createdTs` (Quiver
 *   has no per-channel message positions; the field names are kept so the layout reads like Milvus's).
 * - the segment state is a `string` checked against `SegmentState` on decode, not an Avro enum, so that
 *   adding a state later is not a breaking schema change.
 *
 * Index params ride inside each index file entry, as in Milvus, so a manifest alone is enough to
 * restore a segment's index. Params for indexes without files on the segment are not stored (the
 * manifest depends only on what the segment holds: see manifest-store.ts), and decoding gives back one
 * `indexParams` element per distinct index id, in the order of first appearance.
 *
 * Versioning: header entry `quiver.manifest.version` (MANIFEST_SCHEMA_VERSION). The writer schema is
 * embedded; a file written with another schema is read through an Avro schema resolution, so fields
 * can be added later (with defaults) without rewriting old manifests.
 */

import avro from 'avsc';
import { QuiverError, quiverError } from '../../common/errors.js';
import type { Binlog, SegmentIndexFile, SegmentRecord, SegmentState } from '../../coord/records.js';
import { isSha256Hex } from '../content-hash.js';
import { ContainerFormatError, readContainer, writeContainer } from './avro-container.js';

export const MANIFEST_SCHEMA_VERSION = 1;
export const MANIFEST_VERSION_META_KEY = 'quiver.manifest.version';
/** A manifest lists file names, not data: 64 MiB uncompressed is far beyond any real segment. */
export const MANIFEST_BYTES_MAX = 64 * 1024 * 1024;

export interface IndexParams {
  readonly indexId: number;
  readonly indexType: string;
  readonly metric: string;
  readonly M?: number | undefined;
  readonly efConstruction?: number | undefined;
}

export interface ManifestEntry {
  readonly segment: SegmentRecord;
  /** DML channel, e.g. `quiver-dml_0_{collectionId}v0`. */
  readonly channel: string;
  /** Params of (at least) every index that has files on the segment. */
  readonly indexParams: readonly IndexParams[];
}

const SEGMENT_STATES: readonly SegmentState[] = ['Importing', 'Flushed', 'Dropped'];

const BINLOG_SCHEMA = {
  type: 'record',
  name: 'Binlog',
  fields: [
    { name: 'log_id', type: 'long' },
    { name: 'log_path', type: 'string' },
    { name: 'entries_num', type: 'long' },
    { name: 'timestamp_from', type: 'string' },
    { name: 'timestamp_to', type: 'string' },
    { name: 'log_size', type: 'long' },
    // Added after version 1's first files (default null: files without it read as "no recorded hash").
    { name: 'sha256', type: ['null', 'string'], default: null },
  ],
} as const;

/** The Avro schema of a manifest record (embedded in every file as `avro.schema`). */
export const MANIFEST_AVRO_SCHEMA = {
  type: 'record',
  name: 'ManifestEntry',
  namespace: 'quiver.snapshot',
  fields: [
    { name: 'segment_id', type: 'long' },
    { name: 'collection_id', type: 'long' },
    { name: 'partition_id', type: 'long' },
    { name: 'channel_name', type: 'string' },
    { name: 'num_of_rows', type: 'long' },
    { name: 'state', type: 'string' },
    { name: 'start_position', type: 'string' },
    { name: 'dml_position', type: 'string' },
    {
      name: 'binlog_files',
      type: {
        type: 'array',
        items: {
          type: 'record',
          name: 'FieldBinlog',
          fields: [
            { name: 'field_id', type: 'long' },
            { name: 'binlogs', type: { type: 'array', items: BINLOG_SCHEMA } },
          ],
        },
      },
    },
    { name: 'deltalog_files', type: { type: 'array', items: 'Binlog' } },
    { name: 'statslog_files', type: { type: 'array', items: 'Binlog' } },
    {
      name: 'index_files',
      type: {
        type: 'array',
        items: {
          type: 'record',
          name: 'IndexFile',
          fields: [
            { name: 'index_id', type: 'long' },
            { name: 'build_id', type: 'long' },
            { name: 'version', type: 'long' },
            { name: 'files', type: { type: 'array', items: 'string' } },
            { name: 'size', type: 'long' },
            { name: 'index_type', type: 'string' },
            { name: 'metric_type', type: 'string' },
            { name: 'm', type: ['null', 'long'], default: null },
            { name: 'ef_construction', type: ['null', 'long'], default: null },
            { name: 'files_sha256', type: ['null', { type: 'array', items: 'string' }], default: null },
          ],
        },
      },
    },
    { name: 'compacted_from', type: ['null', { type: 'array', items: 'long' }], default: null },
    { name: 'compacted_to', type: ['null', 'long'], default: null },
    { name: 'dropped_at_ms', type: ['null', 'long'], default: null },
  ],
} as const;

/** The record as avsc reads and writes it. */
interface AvroBinlog {
  log_id: number;
  log_path: string;
  entries_num: number;
  timestamp_from: string;
  timestamp_to: string;
  log_size: number;
  sha256: string | null;
}

interface AvroIndexFile {
  index_id: number;
  build_id: number;
  version: number;
  files: string[];
  size: number;
  index_type: string;
  metric_type: string;
  m: number | null;
  ef_construction: number | null;
  files_sha256: string[] | null;
}

interface AvroManifest {
  segment_id: number;
  collection_id: number;
  partition_id: number;
  channel_name: string;
  num_of_rows: number;
  state: string;
  start_position: string;
  dml_position: string;
  binlog_files: { field_id: number; binlogs: AvroBinlog[] }[];
  deltalog_files: AvroBinlog[];
  statslog_files: AvroBinlog[];
  index_files: AvroIndexFile[];
  compacted_from: number[] | null;
  compacted_to: number | null;
  dropped_at_ms: number | null;
}

/**
 * avsc's default long stops at 2^53 - 2 (it keeps a margin for its float arithmetic); Quiver ids go up
 * to Number.MAX_SAFE_INTEGER (paths.ts accepts any safe integer). This long goes through BigInt (avsc
 * hands it 8 little-endian bytes) and covers exactly the safe integers; the bytes on disk are standard
 * Avro longs. Anything beyond fails to decode rather than rounding.
 */
const SAFE_LONG = avro.types.LongType.__with({
  fromBuffer: (buf: Buffer): number => {
    const n = buf.readBigInt64LE(0);
    if (n > BigInt(Number.MAX_SAFE_INTEGER) || n < BigInt(Number.MIN_SAFE_INTEGER)) throw new Error(`long ${n} is beyond 2^53`);
    return Number(n);
  },
  toBuffer: (n: number): Buffer => {
    const buf = Buffer.alloc(8);
    buf.writeBigInt64LE(BigInt(n), 0);
    return buf;
  },
  fromJSON: Number,
  toJSON: (n: number): number => n,
  isValid: (n: unknown): boolean => Number.isSafeInteger(n),
  compare: (a: number, b: number): number => (a === b ? 0 : a < b ? -1 : 1),
});

function manifestType(schema: unknown): avro.Type {
  return avro.Type.forSchema(schema as avro.Schema, { omitRecordMethods: true, registry: { long: SAFE_LONG } });
}

// Immutable once built (a Type holds no per-call state), so sharing them is not shared mutable state.
const MANIFEST_SCHEMA_JSON = JSON.stringify(MANIFEST_AVRO_SCHEMA);
const MANIFEST_TYPE = manifestType(MANIFEST_AVRO_SCHEMA);

const DECIMAL = /^(0|[1-9][0-9]{0,19})$/;

// ---------------------------------------------------------------------------------------------------
// Encode

/** Avro object container bytes (schema embedded, deflate codec, one record). ParameterInvalid on bad input. */
export function encodeManifest(entry: ManifestEntry): Uint8Array {
  const record = toAvro(entry);
  const problems: string[] = [];
  const valid = MANIFEST_TYPE.isValid(record, {
    errorHook: (path: string[], value: unknown) => {
      if (problems.length < 5) problems.push(`${path.join('.')} = ${safeJson(value)}`);
    },
  });
  if (!valid) {
    throw quiverError('ParameterInvalid', `segment ${entry.segment.id}: manifest entry does not fit the Avro schema: ${problems.join('; ')}`);
  }
  const data = MANIFEST_TYPE.toBuffer(record);
  return writeContainer({
    schemaJson: MANIFEST_SCHEMA_JSON,
    codec: 'deflate',
    meta: { [MANIFEST_VERSION_META_KEY]: String(MANIFEST_SCHEMA_VERSION) },
    blocks: [{ count: 1, data }],
  });
}

function toAvro(entry: ManifestEntry): AvroManifest {
  const s = entry.segment;
  const where = `segment ${String(s?.id)}`;
  if (s === null || typeof s !== 'object') throw quiverError('ParameterInvalid', `manifest entry has no segment record, got ${safeJson(s)}`);
  count(where, 'id', s.id);
  count(where, 'collectionId', s.collectionId);
  count(where, 'partitionId', s.partitionId);
  count(where, 'numRows', s.numRows);
  timestamp(where, 'createdTs', s.createdTs);
  if (!SEGMENT_STATES.includes(s.state)) throw quiverError('ParameterInvalid', `${where}: unknown state ${safeJson(s.state)}`);
  if (typeof entry.channel !== 'string' || entry.channel.length === 0) {
    throw quiverError('ParameterInvalid', `${where}: channel must be a non-empty string, got ${safeJson(entry.channel)}`);
  }

  const fieldIds = Object.keys(s.binlogs ?? {});
  const binlogFiles = fieldIds
    .map((key) => {
      if (!DECIMAL.test(key) || !Number.isSafeInteger(Number(key))) {
        throw quiverError('ParameterInvalid', `${where}: binlogs key ${safeJson(key)} is not a field id`);
      }
      return { fieldId: Number(key), logs: s.binlogs[key] ?? [] };
    })
    .sort((a, b) => a.fieldId - b.fieldId)
    .map(({ fieldId, logs }) => ({ field_id: fieldId, binlogs: logs.map((b, i) => binlog(`${where}: binlogs[${fieldId}][${i}]`, b)) }));

  const params = new Map<number, IndexParams>();
  for (const p of entry.indexParams ?? []) {
    if (!params.has(p.indexId)) params.set(p.indexId, p);
  }
  const indexFiles = (s.indexes ?? []).map((f, i) => indexFile(`${where}: indexes[${i}]`, f, params));

  return {
    segment_id: s.id,
    collection_id: s.collectionId,
    partition_id: s.partitionId,
    channel_name: entry.channel,
    num_of_rows: s.numRows,
    state: s.state,
    start_position: s.createdTs,
    dml_position: s.createdTs,
    binlog_files: binlogFiles,
    deltalog_files: (s.deltalogs ?? []).map((b, i) => binlog(`${where}: deltalogs[${i}]`, b)),
    statslog_files: (s.statslogs ?? []).map((b, i) => binlog(`${where}: statslogs[${i}]`, b)),
    index_files: indexFiles,
    compacted_from: s.compactedFrom === undefined ? null : s.compactedFrom.map((id, i) => count(where, `compactedFrom[${i}]`, id)),
    compacted_to: s.compactedTo === undefined ? null : count(where, 'compactedTo', s.compactedTo),
    dropped_at_ms: s.droppedAtMs === undefined ? null : count(where, 'droppedAtMs', s.droppedAtMs),
  };
}

function binlog(where: string, b: Binlog): AvroBinlog {
  if (typeof b?.path !== 'string' || b.path.length === 0)
    throw quiverError('ParameterInvalid', `${where}: path must be a non-empty string, got ${safeJson(b?.path)}`);
  return {
    log_id: count(where, 'logId', b.logId),
    log_path: b.path,
    entries_num: count(where, 'entries', b.entries),
    timestamp_from: timestamp(where, 'tsFrom', b.tsFrom),
    timestamp_to: timestamp(where, 'tsTo', b.tsTo),
    log_size: count(where, 'size', b.size),
    sha256: b.sha256 === undefined ? null : sha256Hex(where, b.sha256),
  };
}

function indexFile(where: string, f: SegmentIndexFile, params: ReadonlyMap<number, IndexParams>): AvroIndexFile {
  const p = params.get(f.indexId);
  if (p === undefined) {
    throw quiverError(
      'ParameterInvalid',
      `${where}: no indexParams for index ${safeJson(f.indexId)} (build ${safeJson(f.buildId)}); a manifest must describe every index it lists`,
    );
  }
  const files = [...(f.files ?? [])];
  files.forEach((file, i) => {
    if (typeof file !== 'string' || file.length === 0)
      throw quiverError('ParameterInvalid', `${where}: files[${i}] must be a non-empty string, got ${safeJson(file)}`);
  });
  return {
    index_id: count(where, 'indexId', f.indexId),
    build_id: count(where, 'buildId', f.buildId),
    version: count(where, 'version', f.version),
    files,
    size: count(where, 'size', f.size),
    index_type: p.indexType,
    metric_type: p.metric,
    m: p.M === undefined ? null : count(where, 'M', p.M),
    ef_construction: p.efConstruction === undefined ? null : count(where, 'efConstruction', p.efConstruction),
    files_sha256: filesSha256(where, f, files.length),
  };
}

function sha256Hex(where: string, value: string): string {
  if (!isSha256Hex(value)) throw quiverError('ParameterInvalid', `${where}: sha256 must be 64 lowercase hex digits, got ${safeJson(value)}`);
  return value;
}

function filesSha256(where: string, f: SegmentIndexFile, files: number): string[] | null {
  if (f.filesSha256 === undefined) return null;
  if (f.filesSha256.length !== files) {
    throw quiverError('ParameterInvalid', `${where}: filesSha256 has ${f.filesSha256.length} hashes for ${files} files`);
  }
  return f.filesSha256.map((h, i) => sha256Hex(`${where}: filesSha256[${i}]`, h));
}

function count(where: string, name: string, value: number): number {
  if (!Number.isSafeInteger(value) || value < 0) {
    throw quiverError('ParameterInvalid', `${where}: ${name} must be a non-negative safe integer, got ${safeJson(value)}`);
  }
  return value;
}

function timestamp(where: string, name: string, value: string): string {
  if (typeof value !== 'string' || !DECIMAL.test(value)) {
    throw quiverError('ParameterInvalid', `${where}: ${name} must be a decimal hybrid timestamp string, got ${safeJson(value)}`);
  }
  return value;
}

// ---------------------------------------------------------------------------------------------------
// Decode

/** Inverse of encodeManifest. SegmentLoadFailed naming the problem on a damaged or foreign file. */
export function decodeManifest(bytes: Uint8Array): ManifestEntry {
  if (!(bytes instanceof Uint8Array)) throw quiverError('ParameterInvalid', 'decodeManifest: bytes must be a Uint8Array');
  try {
    return fromAvro(readRecord(bytes));
  } catch (e) {
    if (e instanceof QuiverError) throw e;
    throw corrupt(e instanceof ContainerFormatError ? e.message : `cannot decode the record: ${(e as Error).message}`, e);
  }
}

function readRecord(bytes: Uint8Array): AvroManifest {
  const file = readContainer(bytes, { bytesMax: MANIFEST_BYTES_MAX, recordsMax: 1, requireChecksum: true });
  const version = file.meta.get(MANIFEST_VERSION_META_KEY);
  const versionText = version === undefined ? undefined : Buffer.from(version).toString('utf8');
  if (versionText === undefined || !DECIMAL.test(versionText)) {
    throw corrupt(`header has no valid ${MANIFEST_VERSION_META_KEY} (got ${safeJson(versionText)}); not a Quiver manifest`);
  }
  if (Number(versionText) > MANIFEST_SCHEMA_VERSION) {
    throw corrupt(`manifest version ${versionText} is newer than this reader (${MANIFEST_SCHEMA_VERSION}); upgrade Quiver`);
  }
  const block = file.blocks.find((b) => b.count > 0);
  const records = file.blocks.reduce((n, b) => n + b.count, 0);
  if (block === undefined || records !== 1) throw corrupt(`file holds ${records} records, a manifest holds exactly 1`);

  const buf = Buffer.from(block.data.buffer, block.data.byteOffset, block.data.byteLength);
  let decoded: { value: unknown; offset: number };
  if (file.schemaJson === MANIFEST_SCHEMA_JSON) {
    decoded = MANIFEST_TYPE.decode(buf, 0);
  } else {
    let resolver;
    try {
      const writer = manifestType(JSON.parse(file.schemaJson));
      resolver = MANIFEST_TYPE.createResolver(writer);
    } catch (e) {
      throw corrupt(`writer schema cannot be read as ${MANIFEST_AVRO_SCHEMA.namespace}.${MANIFEST_AVRO_SCHEMA.name}: ${(e as Error).message}`, e);
    }
    decoded = MANIFEST_TYPE.decode(buf, 0, resolver);
  }
  if (decoded.offset !== buf.byteLength) {
    throw corrupt(decoded.offset < 0 ? 'record is truncated' : `record ends at byte ${decoded.offset} of ${buf.byteLength}`);
  }
  return decoded.value as AvroManifest;
}

function fromAvro(r: AvroManifest): ManifestEntry {
  if (!SEGMENT_STATES.includes(r.state as SegmentState)) throw corrupt(`segment ${r.segment_id}: unknown state ${safeJson(r.state)}`);
  if (!DECIMAL.test(r.start_position)) throw corrupt(`segment ${r.segment_id}: start_position ${safeJson(r.start_position)} is not a timestamp`);
  const ids = [r.segment_id, r.collection_id, r.partition_id, r.num_of_rows];
  if (ids.some((v) => v < 0)) throw corrupt(`segment ${r.segment_id}: negative id or row count`);

  const binlogs: Record<string, Binlog[]> = {};
  for (const f of r.binlog_files) {
    const key = String(f.field_id);
    if (binlogs[key] !== undefined) throw corrupt(`segment ${r.segment_id}: field ${key} has two binlog lists`);
    binlogs[key] = f.binlogs.map(fromAvroBinlog);
  }

  const indexParams: IndexParams[] = [];
  const seen = new Set<number>();
  const indexes = r.index_files.map((f): SegmentIndexFile => {
    if (!seen.has(f.index_id)) {
      seen.add(f.index_id);
      indexParams.push({
        indexId: f.index_id,
        indexType: f.index_type,
        metric: f.metric_type,
        ...(f.m === null ? {} : { M: f.m }),
        ...(f.ef_construction === null ? {} : { efConstruction: f.ef_construction }),
      });
    }
    if (f.files_sha256 !== null && (f.files_sha256.length !== f.files.length || !f.files_sha256.every(isSha256Hex))) {
      throw corrupt(`segment ${r.segment_id}: index build ${f.build_id} lists ${f.files.length} files and ${f.files_sha256.length} hashes, or a bad hash`);
    }
    return {
      indexId: f.index_id,
      buildId: f.build_id,
      version: f.version,
      files: [...f.files],
      size: f.size,
      ...(f.files_sha256 === null ? {} : { filesSha256: [...f.files_sha256] }),
    };
  });

  const segment: SegmentRecord = {
    id: r.segment_id,
    collectionId: r.collection_id,
    partitionId: r.partition_id,
    state: r.state as SegmentState,
    numRows: r.num_of_rows,
    binlogs,
    deltalogs: r.deltalog_files.map(fromAvroBinlog),
    statslogs: r.statslog_files.map(fromAvroBinlog),
    indexes,
    // Optional keys only when present, so a decoded record is deep-equal (even strictly) to the input.
    ...(r.compacted_from === null ? {} : { compactedFrom: [...r.compacted_from] }),
    ...(r.compacted_to === null ? {} : { compactedTo: r.compacted_to }),
    ...(r.dropped_at_ms === null ? {} : { droppedAtMs: r.dropped_at_ms }),
    createdTs: r.start_position,
  };
  return { segment, channel: r.channel_name, indexParams };
}

function fromAvroBinlog(b: AvroBinlog): Binlog {
  if (b.sha256 !== null && !isSha256Hex(b.sha256)) throw corrupt(`binlog ${safeJson(b.log_path)}: sha256 ${safeJson(b.sha256)} is not a SHA-256`);
  return {
    logId: b.log_id,
    path: b.log_path,
    entries: b.entries_num,
    tsFrom: b.timestamp_from,
    tsTo: b.timestamp_to,
    size: b.log_size,
    // Only when recorded, so a decoded record is deep-equal to the input.
    ...(b.sha256 === null ? {} : { sha256: b.sha256 }),
  };
}

function corrupt(reason: string, cause?: unknown): QuiverError {
  return quiverError('SegmentLoadFailed', `manifest is damaged or unreadable: ${reason}`, cause);
}

function safeJson(value: unknown): string {
  try {
    return typeof value === 'bigint' ? `${value}n` : (JSON.stringify(value) ?? String(value));
  } catch {
    return String(value);
  }
}
