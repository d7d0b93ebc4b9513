/**
 * The INDEX_BUILD executor of a remote data node: the task names ids only (collection, segment, index);
 * this reads the records from the metadata store and the segment's vector binlog from the object store,
 * builds on the node's build worker and uploads the file under the build id and version the coordinator
 * chose (task id and dispatch epoch). It publishes nothing: the coordinator commits the file list.
 */

import { quiverError } from '../../common/errors.js';
import { catalogKeys, type CollectionRecord, type IndexRecord, type SegmentIndexFile, type SegmentRecord } from '../../coord/records.js';
import { floatVectorsOf, isFloatIndexable } from '../../index/typed-search.js';
import { decodeJson } from '../../meta/json.js';
import type { MetaKV } from '../../meta/meta-kv.js';
import { readSegment } from '../../segcore/segment-io.js';
import type { ObjectStore } from '../../storage/object-store.js';
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
  readonly builds: Pick<IndexBuildExecutor, 'buildAs'>;
}

export class IndexBuildRunner {
  readonly #meta: Pick<MetaKV, 'get'>;
  readonly #store: ObjectStore;
  readonly #builds: Pick<IndexBuildExecutor, 'buildAs'>;

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
    const field = coll.schema.fields.find((f) => f.fieldId === idx.fieldId);
    if (!field || !isFloatIndexable(field.dataType)) {
      throw quiverError('ParameterInvalid', `index ${idx.id} of collection ${coll.name}: field ${idx.fieldId} has no float vectors to build`);
    }
    const chunk = await readSegment(this.#store, coll, seg, [field]);
    const vectors = floatVectorsOf(chunk.columns.get(field.name));
    if (!vectors) throw new Error(`assertion failed: segment ${seg.id} field ${field.name} read without vectors`);
    const file = await this.#builds.buildAs(vectors, idx, field, seg.partitionId, seg.id, req.buildId, req.version);
    return { ...file, rows: chunk.numRows };
  }

  async #record<T>(key: string, what: string): Promise<T> {
    const e = await this.#meta.get(key);
    if (e === undefined) throw quiverError('ParameterInvalid', `${what} has no record (dropped since dispatch?)`);
    return decodeJson<T>(e);
  }
}
