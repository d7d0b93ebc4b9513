/**
 * One place that maps an index type and its parameters to an implementation, for builds (data node) and
 * loads (query node). Loads dispatch on the file, not on the index record: a segment indexed before the
 * versioned container existed holds a raw hnswlib file, and it keeps loading as one (no rebuild).
 */

import fs from 'node:fs';

import { quiverError } from '../common/errors.js';
import { HnswIndex } from './hnsw-index.js';
import { isIndexContainer } from './index-file.js';
import { HnswPqIndex } from './hnsw-pq-index.js';
import {
  HNSW_EF_CONSTRUCTION_DEFAULT,
  HNSW_M_DEFAULT,
  HNSW_PQ_M_DEFAULT,
  HNSW_PRQ_M_DEFAULT,
  HNSW_PRQ_NRQ_DEFAULT,
  IVF_NLIST_DEFAULT,
  IVF_PQ_NBITS_DEFAULT,
  type IndexParams,
  type SqType,
} from './index-params.js';
import { IvfIndex } from './ivf-index.js';
import type { IndexType, MetricType, VectorIndex } from './types.js';
import { type HnswQuantization, UsearchHnswIndex } from './usearch-hnsw-index.js';
import type { VectorSource } from './vector-source.js';

/** Index types whose build writes files (binary and sparse structures are built in memory at load). */
export function hasIndexFiles(type: string): type is Exclude<IndexType, 'FLAT'> {
  return (
    type === 'HNSW' || type === 'HNSW_SQ' || type === 'HNSW_PQ' || type === 'HNSW_PRQ' || type === 'IVF_FLAT' || type === 'IVF_SQ8' || type === 'IVF_PQ'
  );
}

export interface IndexBuildOptions {
  /** Native threads a build may use (HNSW). */
  readonly threads: number;
  readonly shouldStop?: (() => boolean) | undefined;
}

/** Built index that can be persisted. */
export type PersistableIndex = VectorIndex & { toBytes(): Uint8Array; dispose(): void };

function quantizationOf(sq: SqType | undefined): HnswQuantization {
  switch (sq ?? 'SQ8') {
    case 'SQ8':
      // See usearch-hnsw-index.ts: the one-byte code that keeps magnitudes.
      return 'e4m3';
    case 'FP16':
      return 'f16';
    case 'BF16':
      return 'bf16';
  }
}

export function buildIndex(
  vectors: Float32Array,
  dim: number,
  metric: MetricType,
  type: IndexType,
  params: Omit<IndexParams, 'type' | 'metric'>,
  opts: IndexBuildOptions,
): PersistableIndex {
  switch (type) {
    case 'FLAT':
      throw new Error('assertion failed: FLAT has no index files to build');
    case 'HNSW':
    case 'HNSW_SQ':
      return UsearchHnswIndex.build(
        vectors,
        dim,
        metric,
        {
          M: params.M ?? HNSW_M_DEFAULT,
          efConstruction: params.efConstruction ?? HNSW_EF_CONSTRUCTION_DEFAULT,
          quantization: type === 'HNSW' ? 'f32' : quantizationOf(params.sqType),
          refine: type === 'HNSW_SQ' && params.refine === true,
        },
        opts,
      );
    case 'HNSW_PQ':
    case 'HNSW_PRQ':
      return HnswPqIndex.build(
        vectors,
        dim,
        metric,
        {
          M: params.M ?? HNSW_M_DEFAULT,
          efConstruction: params.efConstruction ?? HNSW_EF_CONSTRUCTION_DEFAULT,
          quantizer: type === 'HNSW_PQ' ? 'PQ' : 'PRQ',
          m: params.m ?? (type === 'HNSW_PQ' ? HNSW_PQ_M_DEFAULT : HNSW_PRQ_M_DEFAULT),
          nbits: params.nbits ?? IVF_PQ_NBITS_DEFAULT,
          nrq: type === 'HNSW_PQ' ? 1 : (params.nrq ?? HNSW_PRQ_NRQ_DEFAULT),
          refine: params.refine === true,
        },
        opts,
      );
    case 'IVF_FLAT':
    case 'IVF_SQ8':
    case 'IVF_PQ':
      return IvfIndex.build(
        vectors,
        dim,
        metric,
        {
          coding: type === 'IVF_FLAT' ? 'FLAT' : type === 'IVF_SQ8' ? 'SQ8' : 'PQ',
          nlist: params.nlist ?? IVF_NLIST_DEFAULT,
          m: params.m,
          nbits: params.nbits ?? IVF_PQ_NBITS_DEFAULT,
        },
        { shouldStop: opts.shouldStop },
      );
    default: {
      const never: never = type;
      throw quiverError('IndexNotSupported', `index type ${String(never)} is not supported`);
    }
  }
}

export interface IndexExpectation {
  readonly dim: number;
  readonly metric: MetricType;
  readonly rows: number;
}

/** Opens index bytes of any format this build has written. */
export function openIndexBytes(bytes: Uint8Array, source: string, expect: IndexExpectation): VectorIndex {
  if (!isIndexContainer(bytes)) return HnswIndex.fromBytes(bytes, expect.dim, expect.metric, expect.rows);
  // The kind is in the header; both loaders check it, so try the one it names.
  const kind = peekKind(bytes);
  if (kind === 'ivf') return IvfIndex.fromBytes(bytes, source, expect);
  if (kind === 'hnsw-pq') return HnswPqIndex.fromBytes(bytes, source, expect);
  return UsearchHnswIndex.fromBytes(bytes, source, expect);
}

/** Opens a local index file; a legacy hnswlib file is loaded in place (no copy through JS). */
export function openIndexFile(filePath: string, expect: IndexExpectation): VectorIndex {
  const head = Buffer.alloc(8);
  let read = 0;
  try {
    const fd = fs.openSync(filePath, 'r');
    try {
      read = fs.readSync(fd, head, 0, head.length, 0);
    } finally {
      fs.closeSync(fd);
    }
  } catch (e) {
    throw quiverError('SegmentLoadFailed', `cannot read index file ${filePath}: ${e instanceof Error ? e.message : String(e)}`, e);
  }
  if (!isIndexContainer(head.subarray(0, read))) return HnswIndex.load(filePath, expect.dim, expect.metric, expect.rows);
  const buf = fs.readFileSync(filePath);
  return openIndexBytes(new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength), filePath, expect);
}

function peekKind(bytes: Uint8Array): string {
  const len = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(8, true);
  try {
    const header = JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset + 12, Math.min(len, bytes.byteLength - 12)).toString('utf8')) as {
      kind?: unknown;
    };
    return String(header.kind);
  } catch {
    // decodeIndexFile reports the malformed header with its reason.
    return 'usearch-hnsw';
  }
}

/** Gives an index the raw column (or a reader of it) when it can use it (exact paths, refine); indexes that hold the vectors ignore it. */
export function attachVectors(index: VectorIndex, vectors: VectorSource): void {
  if (index instanceof UsearchHnswIndex || index instanceof IvfIndex || index instanceof HnswPqIndex) index.attachVectors(vectors);
}

/**
 * Index types that hold their own coded copy of the vectors and need the float column only for refine,
 * output fields and selective filters: with these loaded the query node reads that column from its binlog
 * on demand instead of keeping it resident.
 */
export function makesColumnRedundant(type: string): boolean {
  return type === 'HNSW_SQ' || type === 'HNSW_PQ' || type === 'HNSW_PRQ' || type === 'IVF_SQ8' || type === 'IVF_PQ';
}
