import { writeFileSync } from 'node:fs';
import { buildIndex } from '../index/index.js';
import type { IndexParams, IndexType, MetricType } from '../index/index.js';
import type { IndexRecord } from '../coord/records.js';
import { isScalarIndexType } from '../index/scalar/scalar-index-params.js';
import { ScalarIndex, walkPath } from '../index/scalar/scalar-index.js';
import { buildTypedIndex, hasTypedIndexFile } from '../index/typed-index-file.js';
import type { Column, FieldSchema, ScalarValue, SparseRow } from '../schema/types.js';
import { encodeTextIndexFile, type TextIndexKind } from '../text/text-index-file.js';

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
  /** The column, or its packed form (packForBuild): what crosses to the worker. */
  readonly column: Column | PackedColumn;
  readonly index: Pick<IndexRecord, 'indexType' | 'metric' | 'buildParams'>;
  /** A JSON path index's column holds the values at the path already (projectForBuild). */
  readonly jsonWalked?: boolean | undefined;
}

/**
 * Builds a scalar index (index/scalar), or a BIN_IVF_FLAT / sparse index (index/typed-index-file.ts), over
 * one segment's column and returns its file's bytes (an ArrayBuffer of its own: the worker transfers it).
 */
export function runColumnBuildTask(task: ColumnBuildTask): { bytes: Uint8Array } {
  const idx = task.index;
  const column = unpack(task.column);
  let bytes: Uint8Array;
  if (hasTypedIndexFile(idx)) {
    bytes = buildTypedIndex(column, idx).toBytes();
  } else {
    if (!isScalarIndexType(idx.indexType)) throw new Error(`assertion failed: ${idx.indexType} is not a scalar or typed index type`);
    const built = ScalarIndex.build(
      column,
      { indexType: idx.indexType, jsonPath: idx.buildParams.jsonPath, jsonCastType: idx.buildParams.jsonCastType },
      { jsonWalked: task.jsonWalked ?? false },
    );
    bytes = built.toBytes();
  }
  // A view into a larger (or pooled) buffer cannot be transferred on its own: copy it out.
  if (bytes.byteOffset !== 0 || bytes.byteLength !== bytes.buffer.byteLength) bytes = bytes.slice();
  return { bytes };
}

/** A full-text index file build's inputs (text/text-index-file.ts): the field (its id and analyzer) and its column. */
export interface TextBuildTask {
  readonly id: number;
  readonly textKind: TextIndexKind;
  readonly field: FieldSchema;
  /** A BM25 output field's sparse rows packed (packForTextBuild), an enable_match field's strings as they are. */
  readonly column: Column | PackedColumn;
}

/** Builds a full-text index file with the same encoder as the main thread; answers bytes that own their buffer. */
export function runTextBuildTask(task: TextBuildTask): { bytes: Uint8Array } {
  let { bytes } = encodeTextIndexFile(task.textKind, task.field, unpack(task.column));
  if (bytes.byteOffset !== 0 || bytes.byteLength !== bytes.buffer.byteLength) bytes = bytes.slice();
  return { bytes };
}

/**
 * A text build's column in a form cheap to copy to the worker: sparse rows packed (as for a column index
 * build), strings as one array (cloned far faster than the analysis they feed), a validity bitmap that is
 * a view of a larger buffer copied out (a clone copies a view's whole buffer).
 */
export function packForTextBuild(column: Column): Column | PackedColumn {
  if (column.kind !== 'sparse' && column.kind !== 'string') throw new Error(`assertion failed: a full-text index build over a ${column.kind} column`);
  const own = (v: Uint8Array | undefined): Uint8Array | undefined => (v && v.byteLength !== v.buffer.byteLength ? v.slice() : v);
  if (column.kind === 'string') return { kind: 'string', data: column.data, valid: own(column.valid) };
  const packed = pack(column) as Extract<PackedColumn, { kind: 'sparse-packed' }>;
  return { ...packed, valid: own(packed.valid) };
}

/**
 * Sparse rows and array rows packed into a few flat arrays: cloning one object (and two typed arrays) per
 * row to the worker costs far more than the build itself (seconds per 200k sparse rows, measured).
 */
export type PackedColumn =
  | {
      readonly kind: 'sparse-packed';
      readonly offsets: Uint32Array;
      readonly indices: Uint32Array;
      readonly values: Float32Array;
      readonly valid?: Uint8Array | undefined;
    }
  | {
      readonly kind: 'array-packed';
      readonly elementType: Extract<Column, { kind: 'array' }>['elementType'];
      readonly offsets: Uint32Array;
      readonly flat: readonly ScalarValue[];
      readonly valid?: Uint8Array | undefined;
    };

function pack(column: Column): Column | PackedColumn {
  if (column.kind === 'sparse') {
    const n = column.data.length;
    const offsets = new Uint32Array(n + 1);
    for (let i = 0; i < n; i++) offsets[i + 1] = offsets[i]! + column.data[i]!.indices.length;
    const indices = new Uint32Array(offsets[n]!);
    const values = new Float32Array(offsets[n]!);
    for (let i = 0; i < n; i++) {
      indices.set(column.data[i]!.indices, offsets[i]);
      values.set(column.data[i]!.values, offsets[i]);
    }
    return { kind: 'sparse-packed', offsets, indices, values, valid: column.valid };
  }
  if (column.kind === 'array') {
    const n = column.data.length;
    const offsets = new Uint32Array(n + 1);
    const flat: ScalarValue[] = [];
    for (let i = 0; i < n; i++) {
      for (const v of column.data[i]!) flat.push(v);
      offsets[i + 1] = flat.length;
    }
    return { kind: 'array-packed', elementType: column.elementType, offsets, flat, valid: column.valid };
  }
  return column;
}

function unpack(c: Column | PackedColumn): Column {
  if (c.kind === 'sparse-packed') {
    const data: SparseRow[] = [];
    for (let i = 0; i + 1 < c.offsets.length; i++) {
      data.push({ indices: c.indices.subarray(c.offsets[i], c.offsets[i + 1]), values: c.values.subarray(c.offsets[i], c.offsets[i + 1]) });
    }
    return { kind: 'sparse', data, valid: c.valid };
  }
  if (c.kind === 'array-packed') {
    const data: ScalarValue[][] = [];
    for (let i = 0; i + 1 < c.offsets.length; i++) data.push(c.flat.slice(c.offsets[i], c.offsets[i + 1]));
    return { kind: 'array', elementType: c.elementType, data, valid: c.valid };
  }
  return c;
}

/**
 * What of a column a build needs, in a form cheap to copy to the worker: a JSON path index needs only the
 * values at its path (whole documents cost seconds per million rows to clone; objects at the path are
 * dropped too: no cast takes them, so they index nothing either way); sparse and array rows go packed.
 */
export function projectForBuild(
  column: Column,
  index: Pick<IndexRecord, 'indexType' | 'buildParams'>,
): { column: Column | PackedColumn; jsonWalked: boolean } {
  if (column.kind === 'vector' && column.lazy !== undefined) throw new Error('assertion failed: a column index build over a lazy vector column');
  const path = index.buildParams.jsonPath;
  if (column.kind !== 'json' || path === undefined || !isScalarIndexType(index.indexType)) return { column: pack(column), jsonWalked: false };
  const data = column.data.map((doc) => {
    const v = walkPath(doc, path);
    return v !== null && typeof v === 'object' && !Array.isArray(v) ? undefined : v;
  });
  return { column: { kind: 'json', data, valid: column.valid }, jsonWalked: true };
}
