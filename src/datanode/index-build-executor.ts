import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { SegmentIndexFile } from '../coord/records.js';
import type { IdSource } from '../coord/types.js';
import { sha256Of } from '../storage/content-hash.js';
import type { ObjectStore } from '../storage/object-store.js';
import { indexFileKey } from '../storage/paths.js';
import type { IndexRecord } from '../coord/records.js';
import type { FieldSchema } from '../schema/types.js';
import { hasIndexFiles } from '../index/index.js';
import type { IndexBuildPool } from './index-builder.js';
import { floatMetric } from '../index/typed-index-params.js';
import { isScalarIndexType } from '../index/scalar/scalar-index-params.js';
import { hasTypedIndexFile } from '../index/typed-index-file.js';
import type { Column } from '../schema/types.js';

/**
 * The index-build executor of the data node: builds one index's files for one segment's vectors (on the
 * worker thread; FLAT has no files) and stores them under a fresh build id. It publishes nothing:
 * the coordinator commits the returned file list.
 */
export class IndexBuildExecutor {
  readonly #store: ObjectStore;
  readonly #ids: IdSource;
  readonly #pool: IndexBuildPool;
  readonly #tmpDir: string;

  constructor(deps: { store: ObjectStore; ids: IdSource; pool: IndexBuildPool }, opts: { tmpDir: string }) {
    this.#store = deps.store;
    this.#ids = deps.ids;
    this.#pool = deps.pool;
    this.#tmpDir = opts.tmpDir;
  }

  /**
   * Builds a scalar index (index/scalar), or a BIN_IVF_FLAT / sparse index (index/typed-index-file.ts), over
   * one sealed segment's column, on the build worker, and stores it under a fresh build id.
   */
  async buildColumn(column: Column, idx: IndexRecord, partitionId: number, segmentId: number): Promise<SegmentIndexFile> {
    return (await this.buildColumnAs(column, idx, partitionId, segmentId, await this.#ids.alloc(), 1)).file;
  }

  /**
   * The same under a build id and version the caller chose (a remote data node's task id and dispatch
   * epoch). Also answers the file's bytes: a compaction target of a loaded collection opens them at once.
   */
  async buildColumnAs(
    column: Column,
    idx: IndexRecord,
    partitionId: number,
    segmentId: number,
    buildId: number,
    version: number,
  ): Promise<{ file: SegmentIndexFile; bytes: Uint8Array }> {
    if (!isScalarIndexType(idx.indexType) && !hasTypedIndexFile(idx)) {
      throw new Error(`assertion failed: ${idx.indexType} (${idx.metric}) is not built over a column`);
    }
    const { bytes } = await this.#pool.buildColumn({
      column: sendable(column),
      index: { indexType: idx.indexType, metric: idx.metric, buildParams: idx.buildParams },
    });
    const key = indexFileKey(buildId, version, partitionId, segmentId, `${idx.indexType.toLowerCase()}.qvx`);
    const [sha256] = await Promise.all([sha256Of(bytes), this.#store.put(key, bytes)]);
    return { file: { indexId: idx.id, buildId, version, files: [key], size: bytes.byteLength, filesSha256: [sha256] }, bytes };
  }

  async build(vectors: Float32Array, idx: IndexRecord, field: FieldSchema, partitionId: number, segmentId: number): Promise<SegmentIndexFile> {
    return this.buildAs(vectors, idx, field, partitionId, segmentId, await this.#ids.alloc(), 1);
  }

  /**
   * Builds under a build id and version the caller chose: a remote data node gets both from the
   * coordinator (task id and dispatch epoch), so a re-dispatched build writes to a key of its own.
   */
  async buildAs(
    vectors: Float32Array,
    idx: IndexRecord,
    field: FieldSchema,
    partitionId: number,
    segmentId: number,
    buildId: number,
    version: number,
  ): Promise<SegmentIndexFile> {
    if (!hasIndexFiles(idx.indexType)) return { indexId: idx.id, buildId, version, files: [], size: 0 };
    const tmp = join(this.#tmpDir, `build-${buildId}-${version}.idx`);
    try {
      await this.#pool.build({
        vectors,
        dim: field.dim!,
        metric: floatMetric(idx.metric),
        indexType: idx.indexType,
        params: idx.buildParams,
        outPath: tmp,
      });
      const bytes = await readFile(tmp);
      // A new name for the container format: files named hnsw.bin are raw hnswlib files from older builds.
      const key = indexFileKey(buildId, version, partitionId, segmentId, `${idx.indexType.toLowerCase()}.qvx`);
      const [sha256] = await Promise.all([sha256Of(bytes), this.#store.put(key, bytes)]);
      return { indexId: idx.id, buildId, version, files: [key], size: bytes.byteLength, filesSha256: [sha256] };
    } finally {
      await rm(tmp, { force: true });
    }
  }
}

/** A column as the worker can receive it (structured clone): a lazy vector column's reader stays here. */
function sendable(column: Column): Column {
  if (column.kind === 'vector' && column.lazy !== undefined) throw new Error('assertion failed: a column index build over a lazy vector column');
  return column;
}
