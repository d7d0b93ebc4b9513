/**
 * A FloatVector column served from its binlog on the local disk instead of from memory. A query node
 * whose loaded index holds its own (quantized) copy of the vectors needs the float rows only for refine,
 * output fields and the exact search of a selective filter, each of which touches few rows; reading those
 * rows with pread from the immutable binlog keeps index + vectors resident at the size of the index.
 *
 * The binlog is decoded once at open (so the CRC is checked as on any load), which also tells where the
 * contiguous float32 values sit in the file: the decoder's values are a view of the file bytes. The file
 * descriptor is held for the reader's life, so a file that GC unlinks after a compaction stays readable by
 * searches still running on the old segment; it is closed by `close()` or, as a backstop, when the reader
 * is collected.
 */

import fs from 'node:fs';

import { quiverError } from '../common/errors.js';
import type { Column, VectorRowReader } from '../schema/types.js';
import { decodeColumn } from './binlog.js';

const closeFd = new FinalizationRegistry<number>((fd) => {
  try {
    fs.closeSync(fd);
  } catch {
    // Already closed by close().
  }
});

export class FileVectorRows implements VectorRowReader {
  readonly rows: number;
  readonly dim: number;
  readonly #path: string;
  readonly #offset: number;
  #fd: number | undefined;

  constructor(filePath: string, valuesOffset: number, dim: number, rows: number) {
    this.#path = filePath;
    this.#offset = valuesOffset;
    this.dim = dim;
    this.rows = rows;
    this.#fd = fs.openSync(filePath, 'r');
    closeFd.register(this, this.#fd, this);
  }

  gather(rows: ArrayLike<number>): Float32Array {
    const fd = this.#fd;
    if (fd === undefined) throw new Error(`assertion failed: vector rows of ${this.#path} read after close()`);
    const rowBytes = this.dim * 4;
    const out = new Float32Array(rows.length * this.dim);
    const bytes = new Uint8Array(out.buffer);
    // Runs of consecutive rows are one read: readAll and the sorted candidate lists of refine are mostly runs.
    for (let i = 0; i < rows.length;) {
      const first = rows[i]!;
      let run = 1;
      while (i + run < rows.length && rows[i + run] === first + run) run++;
      if (!Number.isInteger(first) || first < 0 || first + run > this.rows) {
        throw new Error(`assertion failed: vector row ${first} out of [0, ${this.rows}) in ${this.#path}`);
      }
      const want = run * rowBytes;
      let got = 0;
      while (got < want) {
        const n = fs.readSync(fd, bytes, i * rowBytes + got, want - got, this.#offset + first * rowBytes + got);
        if (n === 0) throw quiverError('SegmentLoadFailed', `binlog ${this.#path} ended before vector row ${first + run - 1}`);
        got += n;
      }
      i += run;
    }
    return out;
  }

  readAll(): Float32Array {
    const all = new Int32Array(this.rows);
    for (let i = 0; i < this.rows; i++) all[i] = i;
    return this.gather(all);
  }

  /** Idempotent. */
  close(): void {
    const fd = this.#fd;
    if (fd === undefined) return;
    this.#fd = undefined;
    closeFd.unregister(this);
    fs.closeSync(fd);
  }
}

/**
 * Opens the binlog of a FloatVector column as a lazy column of `expectRows` rows. Returns the resident
 * column instead when the values could not be located in the file (an unaligned file the decoder had to
 * copy), so a caller always gets a column that answers correctly.
 */
export function openLazyVectorColumn(filePath: string, expectRows: number): Column & { kind: 'vector' } {
  let buf: Buffer;
  try {
    buf = fs.readFileSync(filePath);
  } catch (e) {
    throw quiverError('SegmentLoadFailed', `cannot read binlog ${filePath}: ${e instanceof Error ? e.message : String(e)}`, e);
  }
  const bytes = new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
  let col: Column;
  try {
    col = decodeColumn(bytes, 'vector');
  } catch (e) {
    throw quiverError('SegmentLoadFailed', `corrupt binlog ${filePath}: ${e instanceof Error ? e.message : String(e)}`, e);
  }
  if (col.kind !== 'vector') throw new Error(`assertion failed: binlog ${filePath} decoded as ${col.kind}`);
  const rows = col.data.length / col.dim;
  if (rows !== expectRows) throw quiverError('SegmentLoadFailed', `binlog ${filePath} has ${rows} rows, meta says ${expectRows}`);
  if (col.data.buffer !== bytes.buffer) return col;
  const reader = new FileVectorRows(filePath, col.data.byteOffset - bytes.byteOffset, col.dim, rows);
  // Assert after read: the located rows are the decoded ones (first and last row, byte for byte).
  if (rows > 0) {
    const probe = reader.gather([0, rows - 1]);
    const d = col.dim;
    for (let j = 0; j < d; j++) {
      if (!Object.is(probe[j], col.data[j]) || !Object.is(probe[d + j], col.data[(rows - 1) * d + j])) {
        reader.close();
        return col;
      }
    }
  }
  return { kind: 'vector', dim: col.dim, data: new Float32Array(0), valid: col.valid, lazy: reader };
}
