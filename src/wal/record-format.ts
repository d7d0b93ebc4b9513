/**
 * On-disk framing of WAL records, shared by the writer, the open-time recovery scan and readers.
 *
 *   record := length:u32le  checksum:u32le  payload[length]
 *   checksum := mask(crc32(payload))
 *
 * The checksum is the CRC-32 of the payload, *masked* the way LevelDB/RocksDB mask theirs (rotate right
 * by 15, add a constant). Reason: a file tail that a crash left zero-filled (the file size reached disk
 * before the data did) would otherwise parse as a run of valid empty records, because crc32(empty) = 0.
 * mask(0) = 0xa282ead8, so an all-zero header is always rejected.
 *
 * There is no file header: a record's position is the byte offset of its header in the concatenation of
 * all segment files, and a segment file is named after the position of its first byte, so positions stay
 * dense and are recovered from file names plus file sizes.
 */
import type { FileHandle } from 'node:fs/promises';
import { crc32 } from './crc32.js';

export const HEADER_BYTES = 8;

/**
 * Hard format limit on one payload. Recovery treats a larger length field as corruption; it must not
 * depend on a configurable option, or lowering the option would turn valid records into a "torn tail".
 */
export const FORMAT_PAYLOAD_BYTES_MAX = 1024 * 1024 * 1024;

/** Payloads up to this size are copied next to their header so that small records coalesce into one write. */
export const SMALL_PAYLOAD_BYTES_MAX = 64 * 1024;

/** Read granularity of the scanner; larger payloads are read straight into their own buffer. */
const SCAN_CHUNK_BYTES = 1024 * 1024;

const CRC_MASK_DELTA = 0xa282ead8;

export function maskCrc(crc: number): number {
  return ((((crc >>> 15) | (crc << 17)) >>> 0) + CRC_MASK_DELTA) >>> 0;
}

export function payloadChecksum(payload: Uint8Array): number {
  return maskCrc(crc32(payload));
}

/** A framed record ready to be written: either one buffer (header + small payload) or header and payload. */
export interface Frame {
  readonly parts: readonly Uint8Array[];
  readonly bytes: number;
}

export function encodeFrame(payload: Uint8Array): Frame {
  const bytes = HEADER_BYTES + payload.length;
  const checksum = payloadChecksum(payload);
  if (payload.length <= SMALL_PAYLOAD_BYTES_MAX) {
    // Copying also protects small payloads from being mutated by the caller before the write happens.
    const buf = Buffer.allocUnsafe(bytes);
    buf.writeUInt32LE(payload.length, 0);
    buf.writeUInt32LE(checksum, 4);
    buf.set(payload, HEADER_BYTES);
    return { parts: [buf], bytes };
  }
  const header = Buffer.allocUnsafe(HEADER_BYTES);
  header.writeUInt32LE(payload.length, 0);
  header.writeUInt32LE(checksum, 4);
  return { parts: [header, payload], bytes };
}

export type ScanItem =
  | { readonly kind: 'record'; readonly offset: number; readonly payload: Uint8Array }
  | { readonly kind: 'corrupt'; readonly offset: number; readonly reason: string };

export interface ScanRange {
  /** File offset of a record header to start at. */
  readonly beginOffset: number;
  /** File offset where the scanned region ends (the last record must end exactly here). */
  readonly endOffset: number;
  /**
   * Records that start before this offset are stepped over by their length field alone, without reading
   * or verifying their payload: that is how a reader seeks to a position inside a file.
   */
  readonly yieldFromOffset: number;
}

/**
 * Yields the records of one segment file in order. On the first malformed record (short header, length
 * past the end of the region, bad checksum) yields one `corrupt` item and stops; the caller decides
 * whether that is a torn tail to cut off (last file, at open) or an error (anywhere else).
 */
export async function* scanRecords(handle: FileHandle, range: ScanRange): AsyncGenerator<ScanItem> {
  const reader = new ChunkReader(handle);
  const end = range.endOffset;
  let offset = range.beginOffset;
  while (offset < end) {
    if (end - offset < HEADER_BYTES) {
      yield { kind: 'corrupt', offset, reason: `partial header (${end - offset} of ${HEADER_BYTES} bytes)` };
      return;
    }
    const header = await reader.view(offset, HEADER_BYTES);
    if (header === null) {
      yield { kind: 'corrupt', offset, reason: `file ends before offset ${end}` };
      return;
    }
    const length = header.readUInt32LE(0);
    const stored = header.readUInt32LE(4);
    if (length > FORMAT_PAYLOAD_BYTES_MAX) {
      yield { kind: 'corrupt', offset, reason: `length field ${length} exceeds the format limit` };
      return;
    }
    const next = offset + HEADER_BYTES + length;
    if (next > end) {
      yield { kind: 'corrupt', offset, reason: `partial record: ${length}-byte payload extends past offset ${end}` };
      return;
    }
    if (offset >= range.yieldFromOffset) {
      const payload = await reader.copy(offset + HEADER_BYTES, length);
      if (payload === null) {
        yield { kind: 'corrupt', offset, reason: `file ends before offset ${end}` };
        return;
      }
      const actual = payloadChecksum(payload);
      if (actual !== stored) {
        yield {
          kind: 'corrupt',
          offset,
          reason: `checksum mismatch (stored 0x${stored.toString(16)}, computed 0x${actual.toString(16)})`,
        };
        return;
      }
      yield { kind: 'record', offset, payload };
    }
    offset = next;
  }
}

/** Sequential reads of a file through one chunk buffer; big ranges bypass it. */
class ChunkReader {
  readonly #handle: FileHandle;
  #buf: Buffer = Buffer.alloc(0);
  #bufOffset = 0;

  constructor(handle: FileHandle) {
    this.#handle = handle;
  }

  /** A view of [offset, offset + n) valid until the next call, or null if the file is shorter. */
  async view(offset: number, n: number): Promise<Buffer | null> {
    const rel = offset - this.#bufOffset;
    if (rel >= 0 && rel + n <= this.#buf.length) return this.#buf.subarray(rel, rel + n);
    const buf = Buffer.allocUnsafe(Math.max(n, SCAN_CHUNK_BYTES));
    const got = await readFully(this.#handle, buf, offset);
    this.#buf = buf.subarray(0, got);
    this.#bufOffset = offset;
    return got >= n ? this.#buf.subarray(0, n) : null;
  }

  /** A fresh copy of [offset, offset + n) owned by the caller, or null if the file is shorter. */
  async copy(offset: number, n: number): Promise<Uint8Array | null> {
    if (n > SCAN_CHUNK_BYTES / 2) {
      const out = new Uint8Array(n);
      const got = await readFully(this.#handle, out, offset);
      return got === n ? out : null;
    }
    const view = await this.view(offset, n);
    return view === null ? null : new Uint8Array(view);
  }
}

/** Reads until `buf` is full or end of file; returns the number of bytes read. */
async function readFully(handle: FileHandle, buf: Uint8Array, offset: number): Promise<number> {
  let got = 0;
  while (got < buf.length) {
    const { bytesRead } = await handle.read(buf, got, buf.length - got, offset + got);
    if (bytesRead === 0) break;
    got += bytesRead;
  }
  return got;
}

/** Writes every byte of `parts` at `offset`, coping with short writes. */
export async function writeFully(handle: FileHandle, parts: readonly Uint8Array[], offset: number): Promise<void> {
  let pending: Uint8Array[] = [...parts];
  let at = offset;
  while (pending.length > 0) {
    const { bytesWritten } = await handle.writev(pending, at);
    if (bytesWritten <= 0) throw new Error(`write at offset ${at} made no progress`);
    at += bytesWritten;
    pending = dropPrefix(pending, bytesWritten);
  }
}

function dropPrefix(parts: readonly Uint8Array[], bytes: number): Uint8Array[] {
  let left = bytes;
  let i = 0;
  while (i < parts.length && left >= parts[i]!.length) {
    left -= parts[i]!.length;
    i++;
  }
  const rest = parts.slice(i);
  if (left > 0 && rest.length > 0) rest[0] = rest[0]!.subarray(left);
  return rest;
}

/**
 * Merges runs of small buffers into one so that a group of many small records becomes a handful of
 * iovecs; large payloads are passed through by reference (never copied).
 */
export function coalesce(parts: readonly Uint8Array[]): Uint8Array[] {
  const out: Uint8Array[] = [];
  let run: Uint8Array[] = [];
  const flush = (): void => {
    if (run.length === 1) out.push(run[0]!);
    else if (run.length > 1) out.push(Buffer.concat(run));
    run = [];
  };
  for (const p of parts) {
    if (p.length <= SMALL_PAYLOAD_BYTES_MAX + HEADER_BYTES) {
      run.push(p);
    } else {
      flush();
      out.push(p);
    }
  }
  flush();
  return out;
}
