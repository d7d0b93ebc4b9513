/**
 * The versioned index file container. Files written before it exist in users' data dirs and snapshots in
 * hnswlib's raw format, which starts with a u64 level-0 offset of 0; a container starts with the magic
 * "QVRIDX" instead, so the first 8 bytes tell the two apart and an old file loads without a rebuild.
 *
 *   bytes 0..5   "QVRIDX"
 *   bytes 6..7   u16 LE format version (1)
 *   bytes 8..11  u32 LE length H of the JSON header
 *   bytes 12..   H bytes of UTF-8 JSON: { kind, dim, metric, rows, params, sections: [{ name, offset, length }] }
 *   sections     at the offsets the header gives (absolute, 8-byte aligned so typed arrays can view them)
 *
 * The header is checked against what the segment record expects (dim, metric, rows) before any section is
 * trusted.
 */

import { quiverError } from '../common/errors.js';
import type { MetricType } from './types.js';

export const INDEX_FILE_MAGIC = 'QVRIDX';
export const INDEX_FILE_VERSION = 1;
const PREFIX_BYTES = 12;
const ALIGN = 8;
/** A header is a few hundred bytes; anything this large is a corrupt length. */
const HEADER_BYTES_MAX = 1 << 20;

export type IndexFileKind = 'usearch-hnsw' | 'ivf' | 'hnsw-pq' | 'bin-ivf' | 'sparse' | 'scalar';

export interface IndexFileHeader {
  readonly kind: IndexFileKind;
  readonly dim: number;
  /** Vector kinds only: a scalar file records '' (and dim 0), which its decoder checks against the same. */
  readonly metric: MetricType;
  readonly rows: number;
  /** Kind-specific parameters (quantization, nlist, scale...), JSON values only. */
  readonly params: Readonly<Record<string, unknown>>;
}

interface SectionRef {
  readonly name: string;
  readonly offset: number;
  readonly length: number;
}

export interface IndexFileContents {
  readonly header: IndexFileHeader;
  readonly sections: ReadonlyMap<string, Uint8Array>;
}

/** True when `head` (at least the first 6 bytes of a file) starts a container rather than a raw hnswlib file. */
export function isIndexContainer(head: Uint8Array): boolean {
  if (head.length < INDEX_FILE_MAGIC.length) return false;
  for (let i = 0; i < INDEX_FILE_MAGIC.length; i++) if (head[i] !== INDEX_FILE_MAGIC.charCodeAt(i)) return false;
  return true;
}

export function encodeIndexFile(
  header: Omit<IndexFileHeader, 'metric'> & { metric: MetricType | '' },
  sections: ReadonlyMap<string, Uint8Array>,
): Uint8Array {
  // The header records section offsets, which depend on the header's own length: lay out with a generous
  // fixed header slot computed from a first encoding with placeholder offsets of the final width.
  const names = [...sections.keys()];
  const draft = (offsets: number[]): Buffer =>
    Buffer.from(
      JSON.stringify({
        ...header,
        version: INDEX_FILE_VERSION,
        sections: names.map((name, i) => ({ name, offset: offsets[i]!, length: sections.get(name)!.byteLength })),
      }),
      'utf8',
    );
  let offsets = names.map(() => Number.MAX_SAFE_INTEGER);
  const slot = align(PREFIX_BYTES + draft(offsets).byteLength);
  let pos = slot;
  offsets = names.map((name) => {
    const at = pos;
    pos = align(pos + sections.get(name)!.byteLength);
    return at;
  });
  const json = draft(offsets);
  if (PREFIX_BYTES + json.byteLength > slot) throw new Error('assertion failed: index header outgrew its slot');
  const out = new Uint8Array(pos);
  const view = new DataView(out.buffer);
  for (let i = 0; i < INDEX_FILE_MAGIC.length; i++) out[i] = INDEX_FILE_MAGIC.charCodeAt(i);
  view.setUint16(6, INDEX_FILE_VERSION, true);
  view.setUint32(8, json.byteLength, true);
  out.set(json, PREFIX_BYTES);
  names.forEach((name, i) => out.set(sections.get(name)!, offsets[i]!));
  return out;
}

/**
 * Parses and checks a container. Sections are views into `bytes` (no copy); they are 8-byte aligned when
 * `bytes` itself is.
 */
export function decodeIndexFile(
  bytes: Uint8Array,
  source: string,
  expect: { dim: number; metric: MetricType | ''; rows: number; kind?: IndexFileKind },
): IndexFileContents {
  const bad = (why: string): never => {
    throw quiverError('SegmentLoadFailed', `index file ${source} is not usable: ${why}`);
  };
  if (!isIndexContainer(bytes) || bytes.byteLength < PREFIX_BYTES) bad('it is not a Quiver index container');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const version = view.getUint16(6, true);
  if (version !== INDEX_FILE_VERSION) bad(`format version ${version} is not supported (this build reads ${INDEX_FILE_VERSION})`);
  const headerBytes = view.getUint32(8, true);
  if (headerBytes > HEADER_BYTES_MAX || PREFIX_BYTES + headerBytes > bytes.byteLength) bad(`header length ${headerBytes} is out of bounds`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset + PREFIX_BYTES, headerBytes).toString('utf8'));
  } catch (e) {
    return bad(`header is not JSON (${e instanceof Error ? e.message : String(e)})`);
  }
  const h = parsed as Partial<IndexFileHeader & { sections: SectionRef[] }>;
  if (h.kind !== 'usearch-hnsw' && h.kind !== 'ivf' && h.kind !== 'hnsw-pq' && h.kind !== 'bin-ivf' && h.kind !== 'sparse' && h.kind !== 'scalar')
    bad(`unknown index kind ${String(h.kind)}`);
  // A scalar file must not open as a vector index (or the reverse) when records and files disagree.
  if ((h.kind === 'scalar') !== (expect.kind === 'scalar')) bad(`it holds a ${String(h.kind)} index, expected ${expect.kind ?? 'a vector index'}`);
  if (h.dim !== expect.dim) bad(`it indexes dim ${String(h.dim)}, expected ${expect.dim}`);
  if (h.metric !== expect.metric) bad(`it was built for metric ${String(h.metric)}, expected ${expect.metric}`);
  if (h.rows !== expect.rows) bad(`it holds ${String(h.rows)} rows, expected ${expect.rows}`);
  if (typeof h.params !== 'object' || h.params === null || !Array.isArray(h.sections)) bad('header lacks params or sections');
  const sections = new Map<string, Uint8Array>();
  for (const s of h.sections!) {
    if (typeof s.name !== 'string' || !Number.isSafeInteger(s.offset) || !Number.isSafeInteger(s.length) || s.offset < 0 || s.length < 0) {
      bad(`malformed section ${JSON.stringify(s)}`);
    }
    if (s.offset + s.length > bytes.byteLength) bad(`section ${s.name} ends at ${s.offset + s.length}, past the file's ${bytes.byteLength} bytes`);
    sections.set(s.name, bytes.subarray(s.offset, s.offset + s.length));
  }
  return { header: { kind: h.kind!, dim: h.dim!, metric: h.metric as MetricType, rows: h.rows!, params: h.params! }, sections };
}

function align(n: number): number {
  return Math.ceil(n / ALIGN) * ALIGN;
}

/** A section as a typed array; copies only when the section is not aligned for the element size. */
export function sectionAs<T extends Float32Array | Float64Array | Int32Array | Uint32Array | Uint16Array | Uint8Array>(
  bytes: Uint8Array,
  ctor: { new (buffer: ArrayBuffer, byteOffset: number, length: number): T; new (length: number): T; BYTES_PER_ELEMENT: number },
): T {
  const size = ctor.BYTES_PER_ELEMENT;
  if (bytes.byteLength % size !== 0)
    throw quiverError('SegmentLoadFailed', `index section of ${bytes.byteLength} bytes is not a whole number of ${size}-byte elements`);
  if (bytes.byteOffset % size === 0 && bytes.buffer instanceof ArrayBuffer) return new ctor(bytes.buffer, bytes.byteOffset, bytes.byteLength / size);
  const copy = new ctor(bytes.byteLength / size);
  new Uint8Array(copy.buffer).set(bytes);
  return copy;
}
