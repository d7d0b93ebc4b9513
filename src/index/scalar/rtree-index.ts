/**
 * RTREE: the spatial index of a Geometry field over one sealed segment, an R-tree bulk-loaded with the
 * Sort-Tile-Recursive packing (Leutenegger et al.): the rows' envelopes are sorted into vertical slices
 * by centre x, each slice by centre y, and packed NODE_CAPACITY to a leaf; upper levels group consecutive
 * nodes. A sealed segment never changes, so a packed tree (full nodes, no splits) is all it needs.
 *
 * Like every scalar index here it answers candidate rows, never results: `intersecting(window)` returns
 * the rows whose envelope meets the window, and the filter's exact jsts predicate then runs on those rows
 * only (expr/index-plan.ts). Every ST_* relation needs the row and the literal to share a point, so rows
 * whose envelope misses the literal's envelope cannot match; ST_DWITHIN's window is expr/spatial-window.ts.
 * Null and empty geometries have no envelope, are not in the tree, and match no ST_* predicate.
 *
 * File (index-file.ts container, kind "scalar", params.indexType "RTREE"): sections `boxes` (Float64:
 * minX, minY, maxX, maxY per entry, in leaf order) and `rows` (Int32, the entry's row). Upper levels are
 * rebuilt on load: one linear pass.
 */

import { quiverError } from '../../common/errors.js';
import { WktCodec } from '../../schema/geometry.js';
import type { Column } from '../../schema/types.js';
import type { RangeBound, ScalarIndexReader, SpatialWindow } from '../../expr/index-plan.js';
import { decodeIndexFile, encodeIndexFile, sectionAs } from '../index-file.js';

const NODE_CAPACITY = 16;

export class RTreeIndex implements ScalarIndexReader {
  readonly meta = { indexType: 'RTREE' as const };
  readonly elements = false;
  /** Rows of the segment (not only the indexed ones). */
  readonly rows: number;
  /** True when every envelope lies in lon [-180, 180], lat [-90, 90] (ST_DWITHIN's window is then exact). */
  readonly geodetic: boolean;
  readonly #rowOf: Int32Array;
  /** levels[0] are the entries' boxes; levels[k + 1][j] bounds levels[k][j * NODE_CAPACITY ..]. */
  readonly #levels: Float64Array[];

  private constructor(rows: number, boxes: Float64Array, rowOf: Int32Array) {
    if (boxes.length !== rowOf.length * 4) {
      throw quiverError('SegmentLoadFailed', `RTREE index is inconsistent: ${boxes.length / 4} boxes for ${rowOf.length} rows`);
    }
    this.rows = rows;
    this.#rowOf = rowOf;
    this.#levels = [boxes];
    let geodetic = true;
    for (let i = 0; i < rowOf.length; i++) {
      if (rowOf[i]! < 0 || rowOf[i]! >= rows) throw quiverError('SegmentLoadFailed', `RTREE index row ${rowOf[i]} is outside the segment of ${rows} rows`);
      const [x0, y0, x1, y1] = [boxes[i * 4]!, boxes[i * 4 + 1]!, boxes[i * 4 + 2]!, boxes[i * 4 + 3]!];
      if (x0 < -180 || x1 > 180 || y0 < -90 || y1 > 90) geodetic = false;
    }
    this.geodetic = geodetic;
    for (let level = boxes; level.length > 4 * NODE_CAPACITY;) {
      level = parents(level);
      this.#levels.push(level);
    }
  }

  get entries(): number {
    return this.#rowOf.length;
  }

  /** Builds the tree of a Geometry column (stored canonical WKT; null rows and empty geometries are left out). */
  static build(column: Column): RTreeIndex {
    if (column.kind !== 'string') throw new Error(`assertion failed: an RTREE index needs a Geometry (string) column, got ${column.kind}`);
    const codec = new WktCodec();
    const rows: number[] = [];
    const boxes: number[] = [];
    for (let r = 0; r < column.data.length; r++) {
      if (column.valid && column.valid[r] === 0) continue;
      const env = codec.parse(column.data[r]!, `at row ${r} of the indexed segment`).getEnvelopeInternal();
      if (env.isNull()) continue;
      rows.push(r);
      boxes.push(env.getMinX(), env.getMinY(), env.getMaxX(), env.getMaxY());
    }
    const order = strOrder(Float64Array.from(boxes));
    const packed = new Float64Array(boxes.length);
    const rowOf = new Int32Array(rows.length);
    order.forEach((e, i) => {
      for (let k = 0; k < 4; k++) packed[i * 4 + k] = boxes[e * 4 + k]!;
      rowOf[i] = rows[e]!;
    });
    return new RTreeIndex(column.data.length, packed, rowOf);
  }

  /** Rows whose envelope meets the window (closed boxes: touching counts). */
  intersecting(w: SpatialWindow): Int32Array {
    const out: number[] = [];
    const top = this.#levels.length - 1;
    const stack: number[] = [];
    // The top level is scanned whole; below it, node j of level k covers children j*C .. j*C+C-1 of level k-1.
    for (let j = 0; j < this.#levels[top]!.length / 4; j++) stack.push(top, j);
    while (stack.length > 0) {
      const j = stack.pop()!;
      const level = stack.pop()!;
      const b = this.#levels[level]!;
      if (b[j * 4]! > w.maxX || b[j * 4 + 2]! < w.minX || b[j * 4 + 1]! > w.maxY || b[j * 4 + 3]! < w.minY) continue;
      if (level === 0) {
        out.push(this.#rowOf[j]!);
        continue;
      }
      const below = this.#levels[level - 1]!.length / 4;
      for (let c = j * NODE_CAPACITY; c < Math.min(below, (j + 1) * NODE_CAPACITY); c++) stack.push(level - 1, c);
    }
    return Int32Array.from(out);
  }

  spatial(w: SpatialWindow): Int32Array | undefined {
    // A geodesic window assumes lon/lat coordinates; rows outside that range could wrap into it.
    if (w.geodesic && !this.geodetic) return undefined;
    return this.intersecting(w);
  }

  equalAny(): Int32Array | undefined {
    return undefined;
  }
  range(_lower: RangeBound | undefined, _upper: RangeBound | undefined): Int32Array | undefined {
    return undefined;
  }
  prefix(): Int32Array | undefined {
    return undefined;
  }

  toBytes(): Uint8Array {
    const sections = new Map<string, Uint8Array>();
    const boxes = this.#levels[0]!;
    sections.set('boxes', new Uint8Array(boxes.buffer, boxes.byteOffset, boxes.byteLength));
    sections.set('rows', new Uint8Array(this.#rowOf.buffer, this.#rowOf.byteOffset, this.#rowOf.byteLength));
    return encodeIndexFile({ kind: 'scalar', dim: 0, metric: '', rows: this.rows, params: { indexType: 'RTREE' } }, sections);
  }

  static fromBytes(bytes: Uint8Array, source: string, rows: number): RTreeIndex {
    const { header, sections } = decodeIndexFile(bytes, source, { dim: 0, metric: '', rows, kind: 'scalar' });
    const bad = (why: string): never => {
      throw quiverError('SegmentLoadFailed', `RTREE index file ${source} is not usable: ${why}`);
    };
    if (header.params['indexType'] !== 'RTREE') bad(`it was built as ${String(header.params['indexType'])}, expected RTREE`);
    const need = (name: string): Uint8Array => sections.get(name) ?? bad(`section ${name} is missing`);
    return new RTreeIndex(header.rows, sectionAs(need('boxes'), Float64Array), sectionAs(need('rows'), Int32Array));
  }
}

/** The bounding boxes of consecutive groups of NODE_CAPACITY boxes. */
function parents(level: Float64Array): Float64Array {
  const n = level.length / 4;
  const out = new Float64Array(Math.ceil(n / NODE_CAPACITY) * 4);
  for (let p = 0; p * NODE_CAPACITY < n; p++) {
    let [x0, y0, x1, y1] = [Infinity, Infinity, -Infinity, -Infinity];
    for (let c = p * NODE_CAPACITY; c < Math.min(n, (p + 1) * NODE_CAPACITY); c++) {
      x0 = Math.min(x0, level[c * 4]!);
      y0 = Math.min(y0, level[c * 4 + 1]!);
      x1 = Math.max(x1, level[c * 4 + 2]!);
      y1 = Math.max(y1, level[c * 4 + 3]!);
    }
    out.set([x0, y0, x1, y1], p * 4);
  }
  return out;
}

/** Sort-Tile-Recursive leaf order: slices of ~sqrt(leaves) leaves by centre x, each sorted by centre y. */
function strOrder(boxes: Float64Array): number[] {
  const n = boxes.length / 4;
  const cx = (i: number): number => boxes[i * 4]! + boxes[i * 4 + 2]!;
  const cy = (i: number): number => boxes[i * 4 + 1]! + boxes[i * 4 + 3]!;
  const byX = Array.from({ length: n }, (_, i) => i).sort((a, b) => cx(a) - cx(b) || a - b);
  const leaves = Math.ceil(n / NODE_CAPACITY);
  const sliceSize = Math.ceil(Math.sqrt(leaves)) * NODE_CAPACITY;
  const out: number[] = [];
  for (let s = 0; s < n; s += sliceSize) out.push(...byX.slice(s, s + sliceSize).sort((a, b) => cy(a) - cy(b) || a - b));
  return out;
}
