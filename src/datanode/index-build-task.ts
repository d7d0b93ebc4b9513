import { writeFileSync } from 'node:fs';
import { buildIndex } from '../index/index.js';
import type { IndexParams, IndexType, MetricType } from '../index/index.js';
import type { IndexRecord } from '../coord/records.js';
import { isScalarIndexType } from '../index/scalar/scalar-index-params.js';
import { ScalarIndex } from '../index/scalar/scalar-index.js';
import { buildTypedIndex, hasTypedIndexFile } from '../index/typed-index-file.js';
import type { Column } from '../schema/types.js';

/** A build's inputs: small and structured-clone serialisable (it crosses to a worker, or to a remote data node). */
export interface BuildTask {
  readonly id: number;
  readonly vectors: Float32Array;
  readonly dim: number;
  readonly metric: MetricType;
  readonly indexType: IndexType;
  readonly params: Omit<IndexParams, 'type' | 'metric'>;
  /** Native threads the build may use. */
  readonly threads: number;
  readonly outPath: string;
}

/** Builds an index and writes its file (the versioned container, index-file.ts) to `outPath`. Runs inside a worker thread. */
export function runBuildTask(task: BuildTask, shouldStop?: () => boolean): { rows: number } {
  const index = buildIndex(task.vectors, task.dim, task.metric, task.indexType, task.params, { threads: task.threads, shouldStop });
  try {
    writeFileSync(task.outPath, index.toBytes());
  } finally {
    index.dispose();
  }
  return { rows: task.vectors.length / task.dim };
}

/** A scalar / binary / sparse index build's inputs: the segment's column and what the build needs of the index record. */
export interface ColumnBuildTask {
  readonly id: number;
  readonly column: Column;
  readonly index: Pick<IndexRecord, 'indexType' | 'metric' | 'buildParams'>;
}

/**
 * Builds a scalar index (index/scalar), or a BIN_IVF_FLAT / sparse index (index/typed-index-file.ts), over
 * one segment's column and returns its file's bytes (an ArrayBuffer of its own: the worker transfers it).
 */
export function runColumnBuildTask(task: ColumnBuildTask): { bytes: Uint8Array } {
  const idx = task.index;
  let bytes: Uint8Array;
  if (hasTypedIndexFile(idx)) {
    bytes = buildTypedIndex(task.column, idx).toBytes();
  } else {
    if (!isScalarIndexType(idx.indexType)) throw new Error(`assertion failed: ${idx.indexType} is not a scalar or typed index type`);
    const built = ScalarIndex.build(task.column, {
      indexType: idx.indexType,
      jsonPath: idx.buildParams.jsonPath,
      jsonCastType: idx.buildParams.jsonCastType,
    });
    bytes = built.toBytes();
  }
  // A view into a larger (or pooled) buffer cannot be transferred on its own: copy it out.
  if (bytes.byteOffset !== 0 || bytes.byteLength !== bytes.buffer.byteLength) bytes = bytes.slice();
  return { bytes };
}
