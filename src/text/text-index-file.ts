/**
 * Persisted full-text indexes of a sealed segment: the BM25 inverted index of a BM25 function's output
 * field and the positional inverted index of an `enable_match` VarChar field (what text_match and
 * phrase_match read). Milvus keeps these as a segment's bm25 / text stats logs; Quiver does the same: each
 * is one immutable file listed in the segment record's `statslogs` under the field's id
 * (`stats_log/.../{fieldId}/{logId}`), written when the segment's binlogs are (flush, compaction, import),
 * so snapshots, restores, exports and GC carry it like any other segment file. The build (mostly analysis:
 * seconds per 50k texts for a positional index) runs on a build worker thread where the caller has one
 * (segcore/segment-io.ts), so requests do not wait behind it. A loaded segment opens the
 * file instead of analysing its texts again; a segment written before these files existed (or whose file
 * does not match the field's analyzer) falls back to the in-memory build on first use.
 *
 *   bytes 0..5   "QVRTXT"
 *   bytes 6..7   u16 LE format version (1)
 *   bytes 8..11  u32 LE length H of the JSON header
 *   bytes 12..   H bytes of UTF-8 JSON: { kind, fieldId, rows, analyzer, sections: [{ name, length }] }
 *   sections     one after another from the first 8-byte boundary after the header, each padded to 8 bytes
 *
 * kind "bm25": sections terms (u32 term hash, ascending), termStarts (u32, terms + 1), rows (u32), tfs (f32),
 * docLen (f32, one per row). kind "text": sections termBytes (UTF-8 of every term, concatenated), termEnds
 * (u32 end offset of each term in termBytes), termStarts (u32, terms + 1, into rows), rows (u32),
 * posStarts (u32, rows + 1, into positions), positions (u32).
 */

import { quiverError } from '../common/errors.js';
import type { CollectionRecord, SegmentRecord } from '../coord/records.js';
import type { Column, FieldSchema } from '../schema/types.js';
import { parseSegmentKey } from '../storage/paths.js';
import { Bm25ColumnIndex } from './bm25.js';
import { analyzerOf, matchEnabled } from './functions.js';
import { parseAnalyzerParams } from './analyzer.js';
import { textIndexCounters } from './index-counters.js';
import { PositionalIndex } from './positional-index.js';

const MAGIC = 'QVRTXT';
const VERSION = 1;
const PREFIX_BYTES = 12;
const HEADER_BYTES_MAX = 1 << 20;

export type TextIndexKind = 'bm25' | 'text';

interface Header {
  readonly kind: TextIndexKind;
  readonly fieldId: number;
  readonly rows: number;
  /** Canonical analyzer params of a text index ('' for bm25: its rows are already term frequencies). */
  readonly analyzer: string;
  readonly sections: readonly { name: string; length: number }[];
}

/** The canonical form of a field's analyzer params (what a text index file records and is checked against). */
export function analyzerKeyOf(f: FieldSchema): string {
  return JSON.stringify(parseAnalyzerParams(f.typeParams['analyzer_params']));
}

/** Which kind of full-text index a field gets in a sealed segment, if any. */
export function textIndexKindOf(coll: CollectionRecord, f: FieldSchema): TextIndexKind | undefined {
  if (f.dataType === 'SparseFloatVector' && (coll.schema.functions ?? []).some((fn) => fn.type === 'BM25' && fn.outputFieldNames.includes(f.name))) {
    return 'bm25';
  }
  // A pk's statslog already sits under its field id: a VarChar pk with enable_match keeps the in-memory build.
  if (f.dataType === 'VarChar' && matchEnabled(f) && !f.isPrimaryKey) return 'text';
  return undefined;
}

const align8 = (n: number): number => Math.ceil(n / 8) * 8;

function bytesOf(a: Uint32Array | Float32Array | Uint8Array): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

function encode(header: Omit<Header, 'sections'>, sections: readonly [string, Uint32Array | Float32Array | Uint8Array][]): Uint8Array {
  const json = Buffer.from(JSON.stringify({ ...header, sections: sections.map(([name, a]) => ({ name, length: a.byteLength })) }), 'utf8');
  let pos = align8(PREFIX_BYTES + json.byteLength);
  const at = sections.map(([, a]) => {
    const p = pos;
    pos = align8(pos + a.byteLength);
    return p;
  });
  const out = new Uint8Array(pos);
  for (let i = 0; i < MAGIC.length; i++) out[i] = MAGIC.charCodeAt(i);
  const view = new DataView(out.buffer);
  view.setUint16(6, VERSION, true);
  view.setUint32(8, json.byteLength, true);
  out.set(json, PREFIX_BYTES);
  sections.forEach(([, a], i) => out.set(bytesOf(a), at[i]!));
  return out;
}

function decode(
  bytes: Uint8Array,
  source: string,
  expect: { kind: TextIndexKind; fieldId: number; rows: number },
): { header: Header; sections: Map<string, Uint8Array> } {
  const bad = (why: string): never => {
    throw quiverError('SegmentLoadFailed', `full-text index file ${source} is not usable: ${why}`);
  };
  if (bytes.byteLength < PREFIX_BYTES) bad(`it has only ${bytes.byteLength} bytes`);
  for (let i = 0; i < MAGIC.length; i++) if (bytes[i] !== MAGIC.charCodeAt(i)) bad('it is not a Quiver full-text index');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const version = view.getUint16(6, true);
  if (version !== VERSION) bad(`format version ${version} is not supported (this build reads ${VERSION})`);
  const headerBytes = view.getUint32(8, true);
  if (headerBytes > HEADER_BYTES_MAX || PREFIX_BYTES + headerBytes > bytes.byteLength) bad(`header length ${headerBytes} is out of bounds`);
  let h: Header;
  try {
    h = JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset + PREFIX_BYTES, headerBytes).toString('utf8')) as Header;
  } catch (e) {
    return bad(`header is not JSON (${(e as Error).message})`);
  }
  if (h.kind !== expect.kind) bad(`it holds a ${String(h.kind)} index, expected ${expect.kind}`);
  if (h.fieldId !== expect.fieldId) bad(`it indexes field ${String(h.fieldId)}, expected ${expect.fieldId}`);
  if (h.rows !== expect.rows) bad(`it holds ${String(h.rows)} rows, expected ${expect.rows}`);
  if (!Array.isArray(h.sections)) bad('header lacks sections');
  const sections = new Map<string, Uint8Array>();
  let pos = align8(PREFIX_BYTES + headerBytes);
  for (const s of h.sections) {
    if (typeof s.name !== 'string' || !Number.isSafeInteger(s.length) || s.length < 0) bad(`malformed section ${JSON.stringify(s)}`);
    if (pos + s.length > bytes.byteLength) bad(`section ${s.name} ends at ${pos + s.length}, past the file's ${bytes.byteLength} bytes`);
    sections.set(s.name, bytes.subarray(pos, pos + s.length));
    pos = align8(pos + s.length);
  }
  return { header: h, sections };
}

function section<T extends Uint32Array | Float32Array>(
  sections: ReadonlyMap<string, Uint8Array>,
  name: string,
  ctor: { new (buffer: ArrayBuffer, byteOffset: number, length: number): T; new (length: number): T },
  source: string,
): T {
  const b = sections.get(name);
  if (!b || b.byteLength % 4 !== 0)
    throw quiverError('SegmentLoadFailed', `full-text index file ${source} is not usable: section ${name} is missing or torn`);
  if (b.byteOffset % 4 === 0 && b.buffer instanceof ArrayBuffer) return new ctor(b.buffer, b.byteOffset, b.byteLength / 4);
  const copy = new ctor(b.byteLength / 4);
  new Uint8Array(copy.buffer).set(b);
  return copy;
}

/**
 * Builds and encodes the index of one field's column (sparse term-frequency rows for bm25, texts for text):
 * the one encoder of these files, run on the main thread (buildTextIndexFile) or on the build worker
 * (datanode/index-build-task.ts runTextBuildTask), so both write the same bytes. Counts nothing: the
 * worker's counters are not this process's main-thread counters, so callers count.
 */
export function encodeTextIndexFile(kind: TextIndexKind, f: FieldSchema, col: Column): { bytes: Uint8Array; index: Bm25ColumnIndex | PositionalIndex } {
  if (kind === 'bm25') {
    if (col.kind !== 'sparse') throw new Error(`assertion failed: BM25 output field ${f.name} holds a ${col.kind} column`);
    const index = new Bm25ColumnIndex(col.data);
    const p = index.toArrays();
    const header = { kind, fieldId: f.fieldId, rows: index.numRows, analyzer: '' };
    const bytes = encode(header, [
      ['terms', p.terms],
      ['termStarts', p.termStarts],
      ['rows', p.rows],
      ['tfs', p.tfs],
      ['docLen', index.docLen],
    ]);
    return { bytes, index };
  }
  if (col.kind !== 'string') throw new Error(`assertion failed: text field ${f.name} holds a ${col.kind} column`);
  const index = PositionalIndex.build(col, analyzerOf(f));
  const p = index.toArrays();
  const header = { kind, fieldId: f.fieldId, rows: col.data.length, analyzer: analyzerKeyOf(f) };
  const bytes = encode(header, [
    ['termBytes', p.termBytes],
    ['termEnds', p.termEnds],
    ['termStarts', p.termStarts],
    ['rows', p.rows],
    ['posStarts', p.posStarts],
    ['positions', p.positions],
  ]);
  return { bytes, index };
}

/** Builds the file of one field's column on the calling thread (where no build worker exists). */
export function buildTextIndexFile(
  coll: CollectionRecord,
  f: FieldSchema,
  col: Column,
): { bytes: Uint8Array; index: Bm25ColumnIndex | PositionalIndex; kind: TextIndexKind } | undefined {
  const kind = textIndexKindOf(coll, f);
  if (!kind) return undefined;
  const built = encodeTextIndexFile(kind, f, col);
  textIndexCounters.builtForFile++;
  return { ...built, kind };
}

/**
 * Opens a file written by buildTextIndexFile, checked against the field and the segment's row count.
 * Undefined when the file was built with other analyzer params than the field has now (then the caller
 * builds in memory instead).
 */
export function openTextIndexFile(
  bytes: Uint8Array,
  source: string,
  coll: CollectionRecord,
  f: FieldSchema,
  rows: number,
): Bm25ColumnIndex | PositionalIndex | undefined {
  const kind = textIndexKindOf(coll, f);
  if (!kind) return undefined;
  const index = decodeTextIndexFile(bytes, source, kind, f, rows);
  if (index) textIndexCounters.loadedFromFile++;
  return index;
}

/** openTextIndexFile of a known kind, uncounted (a file the build worker just built is opened, not loaded). */
export function decodeTextIndexFile(
  bytes: Uint8Array,
  source: string,
  kind: TextIndexKind,
  f: FieldSchema,
  rows: number,
): Bm25ColumnIndex | PositionalIndex | undefined {
  const { header, sections } = decode(bytes, source, { kind, fieldId: f.fieldId, rows });
  if (kind === 'bm25') {
    const index = Bm25ColumnIndex.fromArrays({
      terms: section(sections, 'terms', Uint32Array, source),
      termStarts: section(sections, 'termStarts', Uint32Array, source),
      rows: section(sections, 'rows', Uint32Array, source),
      tfs: section(sections, 'tfs', Float32Array, source),
      docLen: section(sections, 'docLen', Float32Array, source),
    });
    if (index.numRows !== rows)
      throw quiverError('SegmentLoadFailed', `full-text index file ${source} is not usable: ${index.numRows} document lengths for ${rows} rows`);
    return index;
  }
  if (header.analyzer !== analyzerKeyOf(f)) return undefined;
  const termBytes = sections.get('termBytes');
  if (!termBytes) throw quiverError('SegmentLoadFailed', `full-text index file ${source} is not usable: section termBytes is missing`);
  return PositionalIndex.fromArrays(
    {
      termBytes,
      termEnds: section(sections, 'termEnds', Uint32Array, source),
      termStarts: section(sections, 'termStarts', Uint32Array, source),
      rows: section(sections, 'rows', Uint32Array, source),
      posStarts: section(sections, 'posStarts', Uint32Array, source),
      positions: section(sections, 'positions', Uint32Array, source),
    },
    rows,
    source,
  );
}

/** The full-text index files a segment record lists: field id → statslog path (pk stats excluded). */
export function textIndexFilesOf(coll: CollectionRecord, rec: SegmentRecord): Map<FieldSchema, string> {
  const out = new Map<FieldSchema, string>();
  for (const log of rec.statslogs) {
    const key = parseSegmentKey(log.path);
    if (key?.kind !== 'stats') continue;
    const f = coll.schema.fields.find((x) => x.fieldId === key.fieldId);
    if (f && !f.isPrimaryKey && textIndexKindOf(coll, f)) out.set(f, log.path);
  }
  return out;
}
