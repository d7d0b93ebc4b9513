import { wireBuiltIndex } from '../../taskrpc/protocol.js';
/**
 * The INDEX_BUILD executor of a remote data node: the task names ids only (collection, segment, index);
 * this reads the records from the metadata store and the segment's indexed field's binlog from the object
 * store, builds on the node's build worker (float vector indexes; scalar, binary and sparse indexes over
 * the column) and uploads the file under the build id and version the coordinator
 * chose (task id and dispatch epoch). It publishes nothing: the coordinator commits the file list.
 */

import { quiverError } from '../../common/errors.js';
import { catalogKeys, type CollectionRecord, type IndexRecord, type SegmentIndexFile, type SegmentRecord } from '../../coord/records.js';
import { isScalarIndexType } from '../../index/scalar/scalar-index-params.js';
import { hasTypedIndexFile } from '../../index/typed-index-file.js';
import { floatVectorsOf, isFloatIndexable } from '../../index/typed-search.js';
import { decodeJson } from '../../meta/json.js';
import type { MetaKV } from '../../meta/meta-kv.js';
import { readSegment } from '../../segcore/segment-io.js';
import type { ObjectStore } from '../../storage/object-store.js';
import { bytesPerRow, type Column, type FieldSchema } from '../../schema/types.js';
import type { CompactionMergeParams, WireBuiltIndex } from '../../taskrpc/protocol.js';
import type { IndexBuildExecutor } from '../index-build-executor.js';

export interface IndexBuildRequest {
  readonly collectionId: number;
  readonly segmentId: number;
  readonly indexId: number;
  readonly buildId: number;
  readonly version: number;
}

export interface BuiltIndexFile extends SegmentIndexFile {
  readonly rows: number;
}

export interface IndexBuildRunnerDeps {
  readonly meta: Pick<MetaKV, 'get'>;
  readonly store: ObjectStore;
  readonly builds: Pick<IndexBuildExecutor, 'buildAs' | 'buildColumnAs'>;
}

export class IndexBuildRunner {
  readonly #meta: Pick<MetaKV, 'get'>;
  readonly #store: ObjectStore;
  readonly #builds: Pick<IndexBuildExecutor, 'buildAs' | 'buildColumnAs'>;

  constructor(deps: IndexBuildRunnerDeps) {
    this.#meta = deps.meta;
    this.#store = deps.store;
    this.#builds = deps.builds;
  }

  async run(req: IndexBuildRequest): Promise<BuiltIndexFile> {
    const coll = await this.#record<CollectionRecord>(catalogKeys.coll(req.collectionId), `collection ${req.collectionId}`);
    const seg = await this.#record<SegmentRecord>(catalogKeys.segment(req.collectionId, req.segmentId), `segment ${req.segmentId}`);
    const idx = await this.#record<IndexRecord>(catalogKeys.index(req.collectionId, req.indexId), `index ${req.indexId}`);
    // A segment compacted away or an index dropped since dispatch: the coordinator would not commit it.
    if (seg.state !== 'Flushed') throw quiverError('SegmentNotFound', `segment ${seg.id} is ${seg.state}, not Flushed`);
    const { field, overColumn } = buildableField(coll, idx);
    const chunk = await readSegment(this.#store, coll, seg, [field]);
    if (overColumn) {
      const column = chunk.columns.get(field.name);
      if (!column) throw new Error(`assertion failed: segment ${seg.id} field ${field.name} read without its column`);
      const { file } = await this.#builds.buildColumnAs(column, idx, seg.partitionId, seg.id, req.buildId, req.version);
      return { ...file, rows: chunk.numRows };
    }
    const vectors = floatVectorsOf(chunk.columns.get(field.name));
    if (!vectors) throw new Error(`assertion failed: segment ${seg.id} field ${field.name} read without vectors`);
    const file = await this.#builds.buildAs(vectors, idx, field, seg.partitionId, seg.id, req.buildId, req.version);
    return { ...file, rows: chunk.numRows };
  }

  /**
   * The indexes a merge builds over its output (the compaction target's own index): which merged columns
   * they need, and the build over them once the merge has written its binlogs. The file goes under the
   * coordinator's build id and this run's version, like a plain build's.
   */
  async mergeIndexes(p: CompactionMergeParams): Promise<{
    readonly fieldIds: ReadonlySet<number>;
    build(column: (fieldId: number) => Column | undefined, version: number): Promise<WireBuiltIndex[]>;
  }> {
    const wanted = p.indexes ?? [];
    if (wanted.length === 0) return { fieldIds: new Set(), build: async () => [] };
    const coll = await this.#record<CollectionRecord>(catalogKeys.coll(p.collection_id), `collection ${p.collection_id}`);
    const plans = await Promise.all(
      wanted.map(async (w) => {
        const idx = await this.#record<IndexRecord>(catalogKeys.index(p.collection_id, w.index_id), `index ${w.index_id}`);
        return { idx, ...buildableField(coll, idx), buildId: w.build_id };
      }),
    );
    return {
      fieldIds: new Set(plans.map((x) => x.field.fieldId)),
      build: async (column, version) => {
        const out: WireBuiltIndex[] = [];
        for (const { idx, field, overColumn, buildId } of plans) {
          if (overColumn) {
            const col = column(field.fieldId);
            if (!col) throw new Error(`assertion failed: merge into segment ${p.target_segment_id} kept no column of field ${field.name}`);
            const { file: f } = await this.#builds.buildColumnAs(col, idx, p.partition_id ?? 0, p.target_segment_id, buildId, version);
            out.push(wireBuiltIndex(f, columnRows(col)));
            continue;
          }
          const vectors = floatVectorsOf(column(field.fieldId));
          if (!vectors) throw new Error(`assertion failed: merge into segment ${p.target_segment_id} kept no vectors of field ${field.name}`);
          const f = await this.#builds.buildAs(vectors, idx, field, p.partition_id ?? 0, p.target_segment_id, buildId, version);
          const rows = field.dim ? vectors.length / field.dim : 0;
          out.push(wireBuiltIndex(f, rows));
        }
        return out;
      },
    };
  }

  async #record<T>(key: string, what: string): Promise<T> {
    const e = await this.#meta.get(key);
    if (e === undefined) throw quiverError('ParameterInvalid', `${what} has no record (dropped since dispatch?)`);
    return decodeJson<T>(e);
  }
}

/**
 * The field an index is built over, and how: over the column (scalar, BIN_IVF_FLAT, sparse) or over its
 * float-widened vectors (the vector indexes with files).
 */
function buildableField(coll: CollectionRecord, idx: IndexRecord): { field: FieldSchema; overColumn: boolean } {
  const field = coll.schema.fields.find((f) => f.fieldId === idx.fieldId);
  if (field && (isScalarIndexType(idx.indexType) || hasTypedIndexFile(idx))) return { field, overColumn: true };
  if (!field || !isFloatIndexable(field.dataType)) {
    throw quiverError(
      'ParameterInvalid',
      `index ${idx.id} (${idx.indexType}) of collection ${coll.name}: field ${idx.fieldId} has nothing to build an index file from`,
    );
  }
  return { field, overColumn: false };
}

/** Rows of a column an index is built over (scalar values, sparse rows or binary vectors). */
function columnRows(col: Column): number {
  if (col.kind === 'bytevec') return col.data.length / bytesPerRow(col.vtype, col.dim);
  if (col.kind === 'vector') return col.data.length / col.dim;
  return col.data.length;
}
