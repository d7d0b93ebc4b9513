/**
 * Index files of the binary and sparse vector indexes: BIN_IVF_FLAT (its lists) and SPARSE_INVERTED_INDEX /
 * SPARSE_WAND (the inverted index), built at index-build time from a sealed segment's column, stored in the
 * index-file.ts container like the float indexes, loaded without a rebuild, carried by snapshots and reused
 * by restore. BIN_FLAT has nothing to build (exact scan), nor has a sparse field searched by BM25 (its
 * statistics are collection-wide, text/bm25.ts).
 */

import type { Column } from '../schema/types.js';
import type { BinaryMetric } from './binary-index.js';
import { BinaryIvfIndex } from './binary-ivf-index.js';
import { SparseInvertedIndex } from './sparse-index.js';
import type { AnyMetricType } from './typed-index-params.js';

export type TypedVectorIndex = BinaryIvfIndex | SparseInvertedIndex;

/** What a build or load needs of the index record. */
export interface TypedIndexSpec {
  readonly indexType: string;
  readonly metric: AnyMetricType | '';
  readonly buildParams: { readonly nlist?: number | undefined; readonly dropRatioBuild?: number | undefined };
}

/** True for the binary / sparse index types whose build writes a file. */
export function hasTypedIndexFile(spec: Pick<TypedIndexSpec, 'indexType' | 'metric'>): boolean {
  if (spec.indexType === 'BIN_IVF_FLAT') return spec.metric === 'HAMMING' || spec.metric === 'JACCARD';
  if (spec.indexType === 'SPARSE_INVERTED_INDEX' || spec.indexType === 'SPARSE_WAND') return spec.metric === 'IP';
  return false;
}

/** Builds the index over a segment's column (binary bytes or sparse rows). */
export function buildTypedIndex(column: Column, spec: TypedIndexSpec): TypedVectorIndex {
  if (!hasTypedIndexFile(spec)) throw new Error(`assertion failed: ${spec.indexType} (${spec.metric}) has no index file to build`);
  if (spec.indexType === 'BIN_IVF_FLAT') {
    if (column.kind !== 'bytevec' || column.vtype !== 'BinaryVector') throw new Error(`assertion failed: BIN_IVF_FLAT over a ${column.kind} column`);
    return BinaryIvfIndex.build(column.data, column.dim / 8, spec.metric as BinaryMetric, spec.buildParams.nlist ?? 128);
  }
  if (column.kind !== 'sparse') throw new Error(`assertion failed: ${spec.indexType} over a ${column.kind} column`);
  return SparseInvertedIndex.build(column.data, { type: spec.indexType as 'SPARSE_WAND', dropRatioBuild: spec.buildParams.dropRatioBuild ?? 0 });
}

/** Opens an index file written by buildTypedIndex, checked against the segment (rows) and field (dim, metric). */
export function openTypedIndex(bytes: Uint8Array, source: string, spec: TypedIndexSpec, expect: { rows: number; dim: number }): TypedVectorIndex {
  if (spec.indexType === 'BIN_IVF_FLAT')
    return BinaryIvfIndex.fromBytes(bytes, source, { dim: expect.dim, metric: spec.metric as BinaryMetric, rows: expect.rows });
  return SparseInvertedIndex.fromBytes(bytes, source, { rows: expect.rows, type: spec.indexType as 'SPARSE_WAND' });
}
