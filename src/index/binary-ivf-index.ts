/**
 * BIN_IVF_FLAT: binary rows clustered into `nlist` lists by k-means in Hamming space (or Jaccard, the
 * index's metric); a search scans the `nprobe` lists whose centroids are nearest the query, exactly. A
 * centroid is itself a bit vector: each bit is the majority vote of its members' bits, which minimises the
 * summed Hamming distance to them (the binary analogue of the mean).
 *
 * Training is bounded and reproducible, as for the float IVF: a seeded sample of at most
 * nlist * TRAIN_ROWS_PER_LIST rows, at most ITERATIONS_MAX rounds. Rows are stored grouped by list, so a
 * probe scans contiguous bytes. The file (index-file.ts container, kind 'bin-ivf') holds the centroids, the
 * list offsets, the row ids and the grouped rows; loading it needs no training.
 */

import { quiverError } from '../common/errors.js';
import { type BinaryMetric, hammingDistance, jaccardDistance } from './binary-index.js';
import { type IndexFileHeader, decodeIndexFile, encodeIndexFile, sectionAs } from './index-file.js';
import { sampleRows, seeded } from './ivf-index.js';
import { type Hits, type SearchOptions, emptyHits } from './types.js';

const TRAIN_ROWS_PER_LIST = 64;
const ITERATIONS_MAX = 10;
const SEED = 0xb17;
/** Milvus's default nprobe. */
export const BIN_IVF_NPROBE_DEFAULT = 8;
export const BIN_IVF_NPROBE_MAX = 65_536;

export class BinaryIvfIndex {
  readonly type = 'BIN_IVF_FLAT' as const;
  readonly metric: BinaryMetric;
  /** Bytes per row. */
  readonly width: number;
  readonly size: number;
  readonly nlist: number;
  readonly #centroids: Uint8Array;
  /** nlist + 1 positions into ids / rows. */
  readonly #offsets: Int32Array;
  readonly #ids: Int32Array;
  readonly #rows: Uint8Array;

  private constructor(metric: BinaryMetric, width: number, size: number, centroids: Uint8Array, offsets: Int32Array, ids: Int32Array, rows: Uint8Array) {
    this.metric = metric;
    this.width = width;
    this.size = size;
    this.nlist = offsets.length - 1;
    this.#centroids = centroids;
    this.#offsets = offsets;
    this.#ids = ids;
    this.#rows = rows;
  }

  static build(data: Uint8Array, width: number, metric: BinaryMetric, nlistWanted: number): BinaryIvfIndex {
    const n = data.length / width;
    const dist = metric === 'HAMMING' ? hammingDistance : jaccardDistance;
    const nlist = Math.max(1, Math.min(nlistWanted, n));
    const rand = seeded(SEED);
    const sample = sampleRows(n, nlist * TRAIN_ROWS_PER_LIST, rand);
    const centroids = new Uint8Array(nlist * width);
    const seeds = sampleRows(sample.length, nlist, rand);
    for (let c = 0; c < nlist && n > 0; c++) {
      const r = sample[seeds[c % seeds.length]!]!;
      centroids.set(data.subarray(r * width, (r + 1) * width), c * width);
    }
    const nearest = (src: Uint8Array, off: number): number => {
      let best = 0;
      let bestD = Infinity;
      for (let c = 0; c < nlist; c++) {
        const d = dist(src, off, centroids, c * width, width);
        if (d < bestD) {
          bestD = d;
          best = c;
        }
      }
      return best;
    };
    const bits = width * 8;
    const ones = new Int32Array(nlist * bits);
    const counts = new Int32Array(nlist);
    const assign = new Int32Array(sample.length).fill(-1);
    for (let it = 0; it < ITERATIONS_MAX && n > 0; it++) {
      let moved = 0;
      for (let i = 0; i < sample.length; i++) {
        const c = nearest(data, sample[i]! * width);
        if (c !== assign[i]) moved++;
        assign[i] = c;
      }
      if (moved === 0) break;
      ones.fill(0);
      counts.fill(0);
      for (let i = 0; i < sample.length; i++) {
        const c = assign[i]!;
        counts[c]!++;
        const o = sample[i]! * width;
        for (let b = 0; b < width; b++) {
          const byte = data[o + b]!;
          if (byte === 0) continue;
          for (let k = 0; k < 8; k++) if (byte & (1 << k)) ones[c * bits + b * 8 + k]!++;
        }
      }
      for (let c = 0; c < nlist; c++) {
        const cnt = counts[c]!;
        if (cnt === 0) {
          // An empty list takes a random sample row, as the float k-means does.
          const r = sample[Math.floor(rand() * sample.length)]!;
          centroids.set(data.subarray(r * width, (r + 1) * width), c * width);
          continue;
        }
        for (let b = 0; b < width; b++) {
          let byte = 0;
          for (let k = 0; k < 8; k++) if (2 * ones[c * bits + b * 8 + k]! > cnt) byte |= 1 << k;
          centroids[c * width + b] = byte;
        }
      }
    }
    // Every row into its nearest list, rows grouped by list.
    const of = new Int32Array(n);
    const sizes = new Int32Array(nlist);
    for (let r = 0; r < n; r++) {
      of[r] = nearest(data, r * width);
      sizes[of[r]!]!++;
    }
    const offsets = new Int32Array(nlist + 1);
    for (let c = 0; c < nlist; c++) offsets[c + 1] = offsets[c]! + sizes[c]!;
    const fill = offsets.slice(0, nlist);
    const ids = new Int32Array(n);
    const rows = new Uint8Array(n * width);
    for (let r = 0; r < n; r++) {
      const p = fill[of[r]!]!++;
      ids[p] = r;
      rows.set(data.subarray(r * width, (r + 1) * width), p * width);
    }
    return new BinaryIvfIndex(metric, width, n, centroids, offsets, ids, rows);
  }

  static fromBytes(bytes: Uint8Array, source: string, expect: { dim: number; metric: BinaryMetric; rows: number }): BinaryIvfIndex {
    // The container checks dim, metric and rows against the segment's record first.
    const { header, sections } = decodeIndexFile(bytes, source, expect as never);
    const bad = (why: string): never => {
      throw quiverError('SegmentLoadFailed', `index file ${source} is not usable: ${why}`);
    };
    if (header.kind !== 'bin-ivf') bad(`it holds a ${header.kind} index, not BIN_IVF_FLAT`);
    const sec = (name: string): Uint8Array => sections.get(name) ?? bad(`it has no ${name} section`);
    const width = expect.dim / 8;
    const offsets = sectionAs(sec('offsets'), Int32Array);
    const ids = sectionAs(sec('ids'), Int32Array);
    const centroids = sec('centroids');
    const rows = sec('rows');
    const nlist = offsets.length - 1;
    if (nlist < 1 || centroids.length !== nlist * width) bad(`${centroids.length} centroid bytes for ${nlist} lists of ${width} bytes`);
    if (ids.length !== expect.rows || rows.length !== expect.rows * width || offsets[nlist] !== expect.rows) bad('list sizes do not add up to the rows');
    return new BinaryIvfIndex(expect.metric, width, expect.rows, centroids, offsets, ids, rows);
  }

  toBytes(): Uint8Array {
    const header: IndexFileHeader = {
      kind: 'bin-ivf',
      dim: this.width * 8,
      metric: this.metric as never,
      rows: this.size,
      params: { nlist: this.nlist },
    };
    const bytes = (a: ArrayBufferView): Uint8Array => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
    return encodeIndexFile(
      header,
      new Map([
        ['centroids', this.#centroids],
        ['offsets', bytes(this.#offsets)],
        ['ids', bytes(this.#ids)],
        ['rows', this.#rows],
      ]),
    );
  }

  /** Top-k, smallest distance first, ties by row; range search keeps rangeFilter <= d < radius. */
  search(queries: readonly Uint8Array[], opts: SearchOptions): Hits[] {
    const nprobeWanted = opts.nprobe ?? BIN_IVF_NPROBE_DEFAULT;
    if (!Number.isInteger(nprobeWanted) || nprobeWanted < 1 || nprobeWanted > BIN_IVF_NPROBE_MAX) {
      throw quiverError('ParameterInvalid', `nprobe must be an integer in [1, ${BIN_IVF_NPROBE_MAX}], got ${nprobeWanted}`);
    }
    const nprobe = Math.min(nprobeWanted, this.nlist);
    const w = this.width;
    const dist = this.metric === 'HAMMING' ? hammingDistance : jaccardDistance;
    const lo = opts.rangeFilter ?? -Infinity;
    const hi = opts.radius ?? Infinity;
    return queries.map((q) => {
      if (this.size === 0) return emptyHits();
      const order = Array.from({ length: this.nlist }, (_, c) => [c, dist(q, 0, this.#centroids, c * w, w)] as const).sort(
        (a, b) => a[1] - b[1] || a[0] - b[0],
      );
      const rows: number[] = [];
      const scores: number[] = [];
      for (let i = 0; i < nprobe; i++) {
        const c = order[i]![0];
        for (let p = this.#offsets[c]!; p < this.#offsets[c + 1]!; p++) {
          const row = this.#ids[p]!;
          if (opts.allow && opts.allow[row] === 0) continue;
          const d = Math.fround(dist(q, 0, this.#rows, p * w, w));
          if (d < lo || d >= hi) continue;
          rows.push(row);
          scores.push(d);
        }
      }
      const idx = rows.map((_, i) => i).sort((a, b) => scores[a]! - scores[b]! || rows[a]! - rows[b]!);
      const k = Math.min(opts.k, idx.length);
      const out = { rows: new Int32Array(k), scores: new Float32Array(k) };
      for (let i = 0; i < k; i++) {
        out.rows[i] = rows[idx[i]!]!;
        out.scores[i] = scores[idx[i]!]!;
      }
      return out;
    });
  }
}
