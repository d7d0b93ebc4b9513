import { quiverError } from '../common/errors.js';
import { TIMESTAMP_FIELD_ID, type Binlog, type CollectionRecord, type SegmentRecord } from '../coord/records.js';
import { decodeColumn, decodeDeltas, encodeColumn, encodeDeltas } from '../storage/binlog.js';
import { sha256Of } from '../storage/content-hash.js';
import type { ObjectStore } from '../storage/object-store.js';
import { deltaLogKey, insertLogKey, statsLogKey } from '../storage/paths.js';
import type { Column, FieldSchema } from '../schema/types.js';
import { columnKindOf, columnLength } from '../schema/types.js';
import { missingFieldColumn } from '../schema/missing-column.js';
import { newChunk, type Chunk } from './segment.js';
import { backfillFunctionOutput, functionOf } from '../text/functions.js';
import { attachPositionalIndex } from '../expr/text-match.js';
import { attachBm25Index, type Bm25ColumnIndex } from '../text/bm25.js';
import type { PositionalIndex } from '../text/positional-index.js';
import { analyzerKeyOf, buildTextIndexFile, decodeTextIndexFile, textIndexKindOf, type TextIndexKind } from '../text/text-index-file.js';
import { textIndexCounters } from '../text/index-counters.js';

/** Log ids come from the id allocator (any object with this shape). */
interface LogIds {
  alloc(count?: number): Promise<number>;
}

/**
 * Where full-text index files are built off the main thread (the data node's text build pool,
 * datanode/index-builder.ts): a positional index of 50k texts takes seconds of analysis, which on the
 * main thread every request would wait behind. Without one the build runs on the calling thread.
 */
export interface TextIndexBuilds {
  buildText(task: { textKind: TextIndexKind; field: FieldSchema; column: Column }): Promise<{ bytes: Uint8Array }>;
}

/**
 * Segment files: writing a sealed segment's binlogs (one Arrow IPC file per field, plus the row
 * timestamps as field 1), its deltalogs and a stats log; reading them back into a chunk.
 */

function tsRange(ts: BigInt64Array): { tsFrom: string; tsTo: string } {
  let lo = ts[0] ?? 0n;
  let hi = lo;
  for (let i = 1; i < ts.length; i++) {
    const t = ts[i]!;
    if (t < lo) lo = t;
    if (t > hi) hi = t;
  }
  return { tsFrom: lo.toString(), tsTo: hi.toString() };
}

export interface WrittenFiles {
  readonly binlogs: Record<string, Binlog[]>;
  readonly statslogs: Binlog[];
}

export async function writeInsertFiles(
  store: ObjectStore,
  ids: LogIds,
  coll: CollectionRecord,
  segmentId: number,
  partitionId: number,
  chunk: Chunk,
  textBuilds?: TextIndexBuilds,
): Promise<WrittenFiles> {
  const encoded = new Map<number, Uint8Array>();
  for (const f of coll.schema.fields) {
    const col = chunk.columns.get(f.name);
    if (!col) throw new Error(`segment ${segmentId} lacks column ${f.name}`);
    encoded.set(f.fieldId, encodeColumn(col, { fieldId: f.fieldId }));
  }
  encoded.set(TIMESTAMP_FIELD_ID, encodeColumn({ kind: 'int64', data: chunk.ts }, { fieldId: TIMESTAMP_FIELD_ID }));
  return writeEncodedInsertFiles(store, ids, coll, segmentId, partitionId, chunk, encoded, undefined, textBuilds);
}

/** Writes already-encoded binlogs (fieldId → bytes, timestamps under field 1) plus the stats log. */
export async function writeEncodedInsertFiles(
  store: ObjectStore,
  ids: LogIds,
  coll: CollectionRecord,
  segmentId: number,
  partitionId: number,
  chunk: Chunk,
  encoded: ReadonlyMap<number, Uint8Array>,
  /** The binlogs are already stored under log ids from this one on (a data node's merge wrote them): write only the stats. */
  writtenFrom?: number,
  textBuilds?: TextIndexBuilds,
): Promise<WrittenFiles> {
  const fields = coll.schema.fields;
  const first = writtenFrom ?? (await ids.alloc(fields.length + 2));
  const range = tsRange(chunk.ts);
  const binlogs: Record<string, Binlog[]> = {};
  const writes: Promise<void>[] = [];
  const fieldIds = [...fields.map((f) => f.fieldId), TIMESTAMP_FIELD_ID];
  fieldIds.forEach((fieldId, i) => {
    const bytes = encoded.get(fieldId);
    if (!bytes) throw new Error(`segment ${segmentId} lacks the binlog of field ${fieldId}`);
    const logId = first + i;
    const path = insertLogKey(coll.id, partitionId, segmentId, fieldId, logId);
    // The hash of the bytes being written (or, after a data node's merge, read back): what an export names the file by.
    writes.push(
      sha256Of(bytes).then((sha256) => {
        binlogs[String(fieldId)] = [{ logId, path, entries: chunk.numRows, ...range, size: bytes.byteLength, sha256 }];
      }),
    );
    if (writtenFrom === undefined) writes.push(store.put(path, bytes));
  });
  const pk = fields.find((f) => f.isPrimaryKey)!;
  const stats = pkStats(chunk.columns.get(pk.name)!);
  const statsBytes = new TextEncoder().encode(JSON.stringify({ fieldId: pk.fieldId, rows: chunk.numRows, ...stats }));
  const statsPath = statsLogKey(coll.id, partitionId, segmentId, pk.fieldId, first + fields.length + 1);
  writes.push(store.put(statsPath, statsBytes));
  const [statsSha256, textLogs] = await Promise.all([
    sha256Of(statsBytes),
    writeTextIndexFiles(store, ids, coll, segmentId, partitionId, chunk, range, textBuilds),
    Promise.all(writes),
  ]);
  // Keys in field order (the hashes above may finish in any order).
  const ordered: Record<string, Binlog[]> = {};
  for (const fieldId of fieldIds) ordered[String(fieldId)] = binlogs[String(fieldId)]!;
  return {
    binlogs: ordered,
    statslogs: [
      { logId: first + fields.length + 1, path: statsPath, entries: chunk.numRows, ...range, size: statsBytes.byteLength, sha256: statsSha256 },
      ...textLogs,
    ],
  };
}

/**
 * Builds and writes the segment's full-text index files (BM25 output fields, enable_match fields) as stats
 * logs under each field's id (text/text-index-file.ts), and attaches each index to the chunk's column so
 * that the segment in memory uses it at once. With `textBuilds` the build runs there (a worker thread) and
 * the index attached is the one opened from the returned bytes, as a segment load would.
 */
async function writeTextIndexFiles(
  store: ObjectStore,
  ids: LogIds,
  coll: CollectionRecord,
  segmentId: number,
  partitionId: number,
  chunk: Chunk,
  range: { tsFrom: string; tsTo: string },
  textBuilds: TextIndexBuilds | undefined,
): Promise<Binlog[]> {
  const fields = coll.schema.fields.filter((f) => textIndexKindOf(coll, f) !== undefined && chunk.columns.has(f.name));
  if (fields.length === 0) return [];
  const first = await ids.alloc(fields.length);
  return Promise.all(
    fields.map(async (f, i) => {
      const col = chunk.columns.get(f.name)!;
      const kind = textIndexKindOf(coll, f)!;
      const logId = first + i;
      const path = statsLogKey(coll.id, partitionId, segmentId, f.fieldId, logId);
      let bytes: Uint8Array;
      let index: Bm25ColumnIndex | PositionalIndex;
      if (textBuilds) {
        ({ bytes } = await textBuilds.buildText({ textKind: kind, field: f, column: col }));
        textIndexCounters.builtForFile++;
        const opened = decodeTextIndexFile(bytes, path, kind, f, chunk.numRows);
        if (!opened) throw new Error(`assertion failed: the text index file built for field ${f.name} does not match its analyzer`);
        index = opened;
      } else {
        ({ bytes, index } = buildTextIndexFile(coll, f, col)!);
      }
      if (kind === 'bm25') attachBm25Index(col, index as Bm25ColumnIndex);
      else attachPositionalIndex(col, analyzerKeyOf(f), index as PositionalIndex);
      const [sha256] = await Promise.all([sha256Of(bytes), store.put(path, bytes)]);
      return { logId, path, entries: chunk.numRows, ...range, size: bytes.byteLength, sha256 };
    }),
  );
}

function pkStats(col: Column): { min: string; max: string } {
  const data = col.data as ArrayLike<bigint | string>;
  if (data.length === 0) return { min: '', max: '' };
  let lo = data[0]!;
  let hi = lo;
  for (let i = 1; i < data.length; i++) {
    const v = data[i]!;
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  return { min: String(lo), max: String(hi) };
}

export async function writeDeltaFile(
  store: ObjectStore,
  ids: LogIds,
  coll: CollectionRecord,
  segmentId: number,
  partitionId: number,
  pkField: FieldSchema,
  deletes: { pks: readonly (bigint | string)[]; ts: readonly bigint[] },
): Promise<Binlog> {
  const logId = await ids.alloc();
  const ts = BigInt64Array.from(deletes.ts);
  const pks = pkField.dataType === 'Int64' ? BigInt64Array.from(deletes.pks as bigint[]) : (deletes.pks as string[]);
  const bytes = encodeDeltas(pks, ts);
  const path = deltaLogKey(coll.id, partitionId, segmentId, logId);
  const [sha256] = await Promise.all([sha256Of(bytes), store.put(path, bytes)]);
  return { logId, path, entries: ts.length, ...tsRange(ts), size: bytes.byteLength, sha256 };
}

/**
 * Reads a flushed segment into a chunk. `fields` limits which columns are read (the pk is always read,
 * it is what deletes match on). Deltalogs are applied to the delete bitmap.
 */
export async function readSegment(store: ObjectStore, coll: CollectionRecord, rec: SegmentRecord, fields: readonly FieldSchema[]): Promise<Chunk> {
  const read = async (fieldId: number, kind: ReturnType<typeof columnKindOf>): Promise<Column> => {
    const logs = rec.binlogs[String(fieldId)] ?? [];
    if (logs.length === 0) throw quiverError('SegmentLoadFailed', `segment ${rec.id} of collection ${coll.name} has no binlog for field ${fieldId}`);
    const parts: Column[] = [];
    for (const log of logs) {
      let bytes: Uint8Array;
      try {
        bytes = await store.get(log.path);
      } catch (e) {
        throw quiverError('SegmentLoadFailed', `segment ${rec.id}: cannot read binlog ${log.path}: ${(e as Error).message}`, e);
      }
      try {
        parts.push(decodeColumn(bytes, kind));
      } catch (e) {
        throw quiverError('SegmentLoadFailed', `segment ${rec.id}: corrupt binlog ${log.path}: ${(e as Error).message}`, e);
      }
    }
    if (parts.length !== 1) throw quiverError('SegmentLoadFailed', `segment ${rec.id}: field ${fieldId} has ${parts.length} binlogs`);
    return parts[0]!;
  };
  const columns = new Map<string, Column>();
  // A field added after the segment was written has no binlog in it: it reads as its default or null.
  // Only an added field may lack one; a missing binlog of any other field is a broken segment.
  const absent = (f: FieldSchema): boolean => f.addedInVersion !== undefined && (rec.binlogs[String(f.fieldId)] ?? []).length === 0;
  const cols = await Promise.all(
    fields.map((f) => (absent(f) ? Promise.resolve(missingFieldColumn(f, rec.numRows)) : read(f.fieldId, columnKindOf(f.dataType)))),
  );
  // A function output added after this segment was written is computed from the segment's input text.
  for (let i = 0; i < fields.length; i++) {
    const f = fields[i]!;
    const fn = absent(f) ? functionOf(coll.schema, f.name) : undefined;
    if (!fn) continue;
    const inputField = coll.schema.fields.find((x) => x.name === fn.inputFieldNames[0])!;
    const j = fields.findIndex((x) => x.name === inputField.name);
    const input = j >= 0 ? cols[j]! : absent(inputField) ? missingFieldColumn(inputField, rec.numRows) : await read(inputField.fieldId, 'string');
    cols[i] = backfillFunctionOutput(coll.schema, f, input, rec.numRows, (name) => {
      const k = fields.findIndex((x) => x.name === name);
      return k >= 0 ? cols[k] : undefined;
    })!;
  }
  fields.forEach((f, i) => columns.set(f.name, cols[i]!));
  const tsCol = await read(TIMESTAMP_FIELD_ID, 'int64');
  if (tsCol.kind !== 'int64') throw new Error('timestamp binlog is not int64');
  const chunk = newChunk(rec.numRows, columns, tsCol.data);
  for (const c of cols) {
    const n = columnLength(c);
    if (n !== rec.numRows) throw quiverError('SegmentLoadFailed', `segment ${rec.id}: binlog has ${n} rows, meta says ${rec.numRows}`);
  }
  // Deletes match on the pk: a read of other columns only (index builds) has no use for them.
  if (fields.some((f) => f.isPrimaryKey)) await applyDeltalogs(store, coll, rec, chunk);
  return chunk;
}

export async function applyDeltalogs(store: ObjectStore, coll: CollectionRecord, rec: SegmentRecord, chunk: Chunk): Promise<void> {
  if (rec.deltalogs.length === 0) return;
  const latest = new Map<bigint | string, bigint>();
  for (const log of rec.deltalogs) {
    let d: ReturnType<typeof decodeDeltas>;
    try {
      d = decodeDeltas(await store.get(log.path));
    } catch (e) {
      throw quiverError('SegmentLoadFailed', `segment ${rec.id}: cannot read deltalog ${log.path}: ${(e as Error).message}`, e);
    }
    for (let i = 0; i < d.ts.length; i++) {
      const pk = d.pks[i]!;
      const t = d.ts[i]!;
      const prev = latest.get(pk);
      if (prev === undefined || t > prev) latest.set(pk, t);
    }
  }
  const pk = coll.schema.fields.find((f) => f.isPrimaryKey)!;
  const pkData = chunk.columns.get(pk.name)!.data as ArrayLike<bigint | string>;
  for (let i = 0; i < chunk.numRows; i++) {
    const t = latest.get(pkData[i]!);
    if (t !== undefined && chunk.ts[i]! < t) chunk.deleted[i] = 1;
  }
}
