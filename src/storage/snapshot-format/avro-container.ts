/**
 * Avro object container files (Avro 1.11 specification, "Object Container Files"), built and parsed in
 * memory. avsc only offers the container format as Node streams, which are asynchronous and made for
 * large files; a manifest is one small record, so we frame it here and use avsc for the record itself.
 *
 *   file   = magic "Obj\x01" · meta (map<bytes>) · sync (16 bytes) · block*
 *   block  = count (long) · size (long) · data (size bytes, compressed with the codec) · sync
 *
 * Codecs: 'null' and 'deflate' (raw RFC 1951 deflate, as the spec requires; any Avro reader opens them).
 *
 * Two things go beyond the spec:
 * - `quiver.crc32` (decimal) in the header metadata: a CRC-32 of the uncompressed data of all blocks.
 *   Avro has no checksum of its own (deflate is not even framed), so without it a flipped bit could
 *   decode into a different but valid record. It is verified before any record is decoded.
 * - The sync marker is derived from the content (a SHA-256 prefix) instead of being random, so that
 *   encoding the same records twice gives the same bytes. Two writers racing on one content-addressed
 *   key then write identical objects.
 *
 * The reader is bounded: every length is checked against the bytes that remain, the header may hold at
 * most `CONTAINER_META_ENTRIES_MAX` entries and the inflated data at most `bytesMax`, so a damaged or
 * hostile file fails fast with a reason instead of looping or allocating without limit.
 */

import { createHash } from 'node:crypto';
import * as zlib from 'node:zlib';
import { assert } from '../../common/errors.js';
import { crc32 } from '../checksum.js';

export type AvroCodec = 'null' | 'deflate';

export const AVRO_MAGIC = Uint8Array.of(0x4f, 0x62, 0x6a, 0x01); // "Obj" 1
export const SYNC_BYTES = 16;
export const CONTAINER_META_ENTRIES_MAX = 64;
export const CRC32_META_KEY = 'quiver.crc32';

export interface ContainerBlock {
  /** Number of records in `data`. */
  readonly count: number;
  /** The records, serialised back to back, uncompressed. */
  readonly data: Uint8Array;
}

export interface ContainerInput {
  /** The writer schema as JSON text (stored as `avro.schema`). */
  readonly schemaJson: string;
  readonly codec: AvroCodec;
  /** Extra header entries (the `avro.` prefix is reserved by the spec). */
  readonly meta?: Readonly<Record<string, string>> | undefined;
  readonly blocks: readonly ContainerBlock[];
}

export interface ContainerFile {
  readonly schemaJson: string;
  readonly codec: AvroCodec;
  /** Every header entry, including `avro.schema` and `avro.codec`, as raw bytes. */
  readonly meta: ReadonlyMap<string, Uint8Array>;
  /** Blocks with their data already decompressed and checksum-verified. */
  readonly blocks: readonly ContainerBlock[];
}

/** Why a container could not be read; the caller turns it into a QuiverError with its own context. */
export class ContainerFormatError extends Error {
  constructor(reason: string) {
    super(reason);
    this.name = 'ContainerFormatError';
  }
}

const utf8 = new TextEncoder();
const utf8Strict = new TextDecoder('utf-8', { fatal: true });

export function writeContainer(input: ContainerInput): Uint8Array {
  for (const key of Object.keys(input.meta ?? {})) {
    assert(!key.startsWith('avro.') && key !== CRC32_META_KEY, `reserved container meta key ${key}`);
  }
  let checksum = 0;
  for (const block of input.blocks) checksum = crc32(block.data, checksum);

  const hash = createHash('sha256').update(input.schemaJson);
  for (const block of input.blocks) hash.update(block.data);
  const sync = hash.digest().subarray(0, SYNC_BYTES);

  const w = new ByteWriter();
  w.raw(AVRO_MAGIC);
  const meta: [string, Uint8Array][] = [
    ['avro.codec', utf8.encode(input.codec)],
    ['avro.schema', utf8.encode(input.schemaJson)],
    [CRC32_META_KEY, utf8.encode(String(checksum))],
    ...Object.entries(input.meta ?? {}).map(([k, v]): [string, Uint8Array] => [k, utf8.encode(v)]),
  ];
  w.long(meta.length);
  for (const [key, value] of meta) {
    w.bytes(utf8.encode(key));
    w.bytes(value);
  }
  w.long(0);
  w.raw(sync);
  for (const block of input.blocks) {
    const data = input.codec === 'deflate' ? zlib.deflateRawSync(block.data) : block.data;
    w.long(block.count);
    w.bytes(data);
    w.raw(sync);
  }
  return w.finish();
}

export interface ReadContainerOptions {
  /** Upper bound on the uncompressed data of all blocks together. */
  readonly bytesMax: number;
  /** Upper bound on the number of records in the file. */
  readonly recordsMax: number;
  /** Refuse a file that carries no `quiver.crc32` (every file Quiver writes has one). */
  readonly requireChecksum: boolean;
}

/** Throws ContainerFormatError naming what is wrong. */
export function readContainer(bytes: Uint8Array, options: ReadContainerOptions): ContainerFile {
  const r = new ByteReader(bytes);
  const magic = r.fixed(AVRO_MAGIC.length, 'magic');
  if (!AVRO_MAGIC.every((b, i) => magic[i] === b)) {
    throw new ContainerFormatError(`not an Avro object container file (magic ${hex(magic)})`);
  }

  const meta = new Map<string, Uint8Array>();
  for (;;) {
    let count = r.long('header map block count');
    if (count === 0) break;
    if (count < 0) {
      count = -count;
      r.long('header map block size');
    }
    // Each entry takes at least two bytes (two empty lengths): a larger count cannot be genuine.
    if (meta.size + count > CONTAINER_META_ENTRIES_MAX || count * 2 > r.remaining) {
      throw new ContainerFormatError(`header declares ${count} more metadata entries (at most ${CONTAINER_META_ENTRIES_MAX}, ${r.remaining} bytes left)`);
    }
    for (let i = 0; i < count; i++) {
      const key = text(r.bytes('header metadata key'), 'header metadata key');
      meta.set(key, r.bytes(`header metadata value of ${key}`));
    }
  }
  const sync = r.fixed(SYNC_BYTES, 'sync marker');

  const schemaBytes = meta.get('avro.schema');
  if (schemaBytes === undefined) throw new ContainerFormatError('header has no avro.schema');
  const schemaJson = text(schemaBytes, 'avro.schema');
  const codecBytes = meta.get('avro.codec');
  const codecName = codecBytes === undefined ? 'null' : text(codecBytes, 'avro.codec');
  if (codecName !== 'null' && codecName !== 'deflate') throw new ContainerFormatError(`unsupported codec ${JSON.stringify(codecName)}`);
  const codec: AvroCodec = codecName;

  const blocks: ContainerBlock[] = [];
  let records = 0;
  let dataBytes = 0;
  let checksum = 0;
  while (r.remaining > 0) {
    const count = r.long(`block ${blocks.length} record count`);
    if (count < 0 || records + count > options.recordsMax) {
      throw new ContainerFormatError(`block ${blocks.length} declares ${count} records (at most ${options.recordsMax} in the file)`);
    }
    const stored = r.bytes(`block ${blocks.length} data`);
    const blockSync = r.fixed(SYNC_BYTES, `block ${blocks.length} sync marker`);
    if (!sync.every((b, i) => blockSync[i] === b)) {
      throw new ContainerFormatError(`block ${blocks.length} ends with sync marker ${hex(blockSync)}, the header's is ${hex(sync)}`);
    }
    const data = codec === 'deflate' ? inflate(stored, options.bytesMax - dataBytes, blocks.length) : stored;
    dataBytes += data.byteLength;
    if (dataBytes > options.bytesMax) throw new ContainerFormatError(`data exceeds ${options.bytesMax} bytes`);
    checksum = crc32(data, checksum);
    records += count;
    blocks.push({ count, data });
  }

  const expected = meta.get(CRC32_META_KEY);
  if (expected === undefined) {
    if (options.requireChecksum) throw new ContainerFormatError(`header has no ${CRC32_META_KEY}`);
  } else if (text(expected, CRC32_META_KEY) !== String(checksum)) {
    throw new ContainerFormatError(`checksum mismatch: data has CRC-32 ${checksum}, header says ${text(expected, CRC32_META_KEY)}`);
  }
  return { schemaJson, codec, meta, blocks };
}

function inflate(stored: Uint8Array, bytesMax: number, block: number): Uint8Array {
  try {
    return zlib.inflateRawSync(stored, { maxOutputLength: Math.max(1, bytesMax) });
  } catch (e) {
    throw new ContainerFormatError(`block ${block}: cannot inflate deflate data: ${(e as Error).message}`);
  }
}

function text(bytes: Uint8Array, what: string): string {
  try {
    return utf8Strict.decode(bytes);
  } catch {
    throw new ContainerFormatError(`${what} is not valid UTF-8`);
  }
}

function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');
}

/** Avro binary primitives over a growing buffer (zig-zag varint longs, length-prefixed bytes). */
class ByteWriter {
  #buf = new Uint8Array(1024);
  #len = 0;

  raw(bytes: Uint8Array): void {
    this.#reserve(bytes.byteLength);
    this.#buf.set(bytes, this.#len);
    this.#len += bytes.byteLength;
  }

  long(value: number): void {
    assert(Number.isSafeInteger(value), `Avro long ${value} is not a safe integer`);
    // Zig-zag without 32-bit operators, which would truncate values above 2^31.
    let n = value >= 0 ? value * 2 : -value * 2 - 1;
    this.#reserve(10);
    while (n >= 0x80) {
      this.#buf[this.#len++] = (n % 0x80) | 0x80;
      n = Math.floor(n / 0x80);
    }
    this.#buf[this.#len++] = n;
  }

  bytes(bytes: Uint8Array): void {
    this.long(bytes.byteLength);
    this.raw(bytes);
  }

  finish(): Uint8Array {
    return this.#buf.slice(0, this.#len);
  }

  #reserve(n: number): void {
    if (this.#len + n <= this.#buf.byteLength) return;
    const next = new Uint8Array(Math.max(this.#buf.byteLength * 2, this.#len + n));
    next.set(this.#buf.subarray(0, this.#len));
    this.#buf = next;
  }
}

class ByteReader {
  readonly #buf: Uint8Array;
  #pos = 0;

  constructor(buf: Uint8Array) {
    this.#buf = buf;
  }

  get remaining(): number {
    return this.#buf.byteLength - this.#pos;
  }

  long(what: string): number {
    let n = 0;
    let scale = 1;
    for (let i = 0; ; i++) {
      if (this.#pos >= this.#buf.byteLength) throw new ContainerFormatError(`truncated at byte ${this.#pos} while reading ${what}`);
      const b = this.#buf[this.#pos++]!;
      n += (b & 0x7f) * scale;
      if ((b & 0x80) === 0) break;
      scale *= 0x80;
      if (i >= 8 || n > Number.MAX_SAFE_INTEGER) throw new ContainerFormatError(`${what} at byte ${this.#pos} is out of range`);
    }
    if (n > Number.MAX_SAFE_INTEGER) throw new ContainerFormatError(`${what} at byte ${this.#pos} is out of range`);
    return n % 2 === 0 ? n / 2 : -(n + 1) / 2;
  }

  bytes(what: string): Uint8Array {
    const length = this.long(`length of ${what}`);
    if (length < 0 || length > this.remaining) {
      throw new ContainerFormatError(`${what} declares ${length} bytes at byte ${this.#pos}, ${this.remaining} remain (truncated or damaged)`);
    }
    return this.fixed(length, what);
  }

  fixed(length: number, what: string): Uint8Array {
    if (length > this.remaining) throw new ContainerFormatError(`truncated at byte ${this.#pos} while reading ${what} (${length} bytes)`);
    const out = this.#buf.subarray(this.#pos, this.#pos + length);
    this.#pos += length;
    return out;
  }
}
