import type { Logger } from 'pino';
import { quiverError } from '../common/errors.js';
import { readFile } from 'node:fs/promises';
import { TIMESTAMP_FIELD_ID, type CollectionRecord, type IndexRecord, type SegmentIndexFile, type SegmentRecord } from '../coord/records.js';
import { isScalarIndexType, scalarIndexKey } from '../index/scalar/scalar-index-params.js';
import { ScalarIndex, type SegmentScalarIndex } from '../index/scalar/scalar-index.js';
import { hasTypedIndexFile, openTypedIndex, type TypedVectorIndex } from '../index/typed-index-file.js';
import type { CatalogReader, LoadStateStore } from '../coord/types.js';
import type { SegmentsView } from '../datanode/types.js';
import { compileFilter, type CompiledExpr, type ExprSchema, type TemplateValues } from '../expr/index.js';
import {
  attachVectors,
  hasIndexFiles,
  makesColumnRedundant,
  openIndexBytes,
  openIndexFile,
  type MetricType,
  type VectorIndex,
  type VectorSource,
} from '../index/index.js';
import type { Column, FieldSchema } from '../schema/types.js';
import type { CollectionRuntime, RowRef, SearchHit } from '../segcore/collection-runtime.js';
import { exprSchemaAt, partitionOf } from '../segcore/collection-helpers.js';
import { newChunk, recountDeleted, segmentBytes, stripToPk, type Chunk, type Segment } from '../segcore/segment.js';
import { ttlCutTs } from '../segcore/collection-ttl.js';
import { systemClock, type Clock } from '../common/clock.js';
import { applyDeltalogs, readSegment } from '../segcore/segment-io.js';
import type { ObjectStore } from '../storage/object-store.js';
import { openLazyVectorColumn } from '../storage/lazy-vector-column.js';
import { defaultMetricFor, floatMetric, type AnyMetricType } from '../index/typed-index-params.js';
import { floatVectorsOf } from '../index/typed-search.js';
import { attachBm25Index, Bm25ColumnIndex, bm25ParamsOf } from '../text/bm25.js';
import { analyzerKeyOf, openTextIndexFile, textIndexFilesOf } from '../text/text-index-file.js';
import { attachPositionalIndex } from '../expr/text-match.js';
import type { FilterRequest, LoadedSegments, LoadProgress, QueryNodeApi, QuerySegmentInfo, SearchParams } from './types.js';

/** Compiled filters kept per collection record (least recently used evicted). */
const COMPILED_FILTERS_MAX = 256;

/**
 * The query node: the segment loader (binlogs and index files of flushed segments into memory, sharing
 * content between a restored segment and its loaded source) and search / query / count over loaded
 * flushed data and the data node's growing data. It reaches the in-memory collections only through the
 * data node's `SegmentsView`, and writes load state only through the coordinator's `LoadStateStore`.
 */
export class QueryNode implements QueryNodeApi, LoadedSegments {
  readonly #store: ObjectStore;
  readonly #catalog: Pick<CatalogReader, 'indexes'>;
  readonly #segments: SegmentsView;
  readonly #loadState: LoadStateStore;
  readonly #log: Logger;
  readonly #loading = new Map<number, Promise<void>>();

  /** Collection TTL is judged on this clock. */
  readonly #clock: Clock;
  /**
   * Whether a FloatVector column whose loaded index is quantized (makesColumnRedundant) is read from its
   * local binlog on demand rather than kept resident. Default true; the column stays resident when the
   * store has no local files.
   */
  readonly #lazyVectors: boolean;

  constructor(deps: {
    store: ObjectStore;
    catalog: Pick<CatalogReader, 'indexes'>;
    segments: SegmentsView;
    loadState: LoadStateStore;
    log: Logger;
    clock?: Clock;
    /** Another query node's `contentIndex`: share loaded segments with it (snapshot views share the live one's). */
    contentIndex?: Map<number, WeakRef<Chunk>[]>;
    lazyVectors?: boolean;
  }) {
    this.#clock = deps.clock ?? systemClock;
    this.#loadedContent = deps.contentIndex ?? new Map();
    this.#lazyVectors = deps.lazyVectors ?? true;
    this.#store = deps.store;
    this.#catalog = deps.catalog;
    this.#segments = deps.segments;
    this.#loadState = deps.loadState;
    this.#log = deps.log;
  }

  /**
   * Compiled filters by collection record and text. Parsing and compiling a filter cost more than an
   * index-narrowed count or query itself; clients repeat the same few filter texts, and a compiled filter
   * holds no per-evaluation state. Keyed by record: a DDL (new schema, timezone) replaces the record, so
   * entries of the old one are never used again and go with it. Filters with template values are not cached.
   */
  readonly #compiled = new WeakMap<CollectionRecord, Map<string, CompiledExpr | null>>();

  #filter(coll: CollectionRecord, text: string, templates: TemplateValues | undefined, timezone: string | undefined): CompiledExpr | null {
    // The request's zone reads offset-less Timestamptz literals, so it is part of what was compiled.
    const schema = (): ExprSchema => exprSchemaAt(coll, timezone);
    if (templates !== undefined && Object.keys(templates).length > 0) return compileFilter(text, schema(), templates);
    let byText = this.#compiled.get(coll);
    if (byText === undefined) this.#compiled.set(coll, (byText = new Map()));
    const key = `${timezone ?? ''}\u0000${text}`;
    const hit = byText.get(key);
    if (hit !== undefined) {
      // Most recently used last: the oldest entry is the first one evicted.
      byText.delete(key);
      byText.set(key, hit);
      return hit;
    }
    const compiled = compileFilter(text, schema());
    if (byText.size >= COMPILED_FILTERS_MAX) byText.delete(byText.keys().next().value!);
    byText.set(key, compiled);
    return compiled;
  }

  #runtime(collectionId: number): CollectionRuntime {
    const rt = this.#segments.runtime(collectionId);
    if (!rt) throw quiverError('CollectionNotFound', `collection not found[collectionID=${collectionId}]`);
    return rt;
  }

  /**
   * Reads every flushed segment of a collection the data node just opened (recovery, a published
   * restore): pk + ts always (deletes match on them), everything when the collection is loaded. A
   * segment that cannot be read is marked with its error, not skipped.
   */
  async readFlushed(rt: CollectionRuntime, opts: { full: boolean; logErrors: boolean }): Promise<void> {
    await Promise.all(
      [...rt.segments.values()]
        .filter((seg) => seg.phase === 'flushed')
        .map(async (seg) => {
          try {
            await this.readSegmentInto(rt, seg, opts.full);
          } catch (err) {
            seg.error = (err as Error).message;
            if (opts.logErrors) this.#log.error({ err, segment: seg.id, collection: rt.record.name }, 'segment failed to load');
          }
        }),
    );
  }

  // ------------------------------------------------------------------ LoadedSegments

  loadedVectors(collectionId: number, segmentId: number, fieldName: string): Float32Array | undefined {
    const seg = this.#segments.runtime(collectionId)?.segments.get(segmentId);
    return seg?.loaded ? floatVectorsOf(seg.chunks[0]?.columns.get(fieldName)) : undefined;
  }

  async prepareIndex(
    collectionId: number,
    segmentId: number,
    field: FieldSchema,
    metric: MetricType,
    file: SegmentIndexFile,
  ): Promise<(() => void) | undefined> {
    const seg = this.#segments.runtime(collectionId)?.segments.get(segmentId);
    if (!seg?.loaded || file.files.length === 0) return undefined;
    const built = await this.openIndex(file.files[0]!, field.dim!, metric, seg.numRows);
    const resident = seg.chunks[0]?.columns.get(field.name);
    const lazyPath = resident?.kind === 'vector' && !resident.lazy ? this.#lazyVectorPath(seg.record, field, built.type) : undefined;
    const lazy = lazyPath === undefined ? undefined : openLazyVectorColumn(lazyPath, seg.numRows);
    return () => {
      const chunk = seg.loaded ? seg.chunks[0] : undefined;
      if (!chunk) return;
      // The column read from disk replaces the resident one only if nothing swapped it meanwhile.
      if (lazy && chunk.columns.get(field.name) === resident) chunk.columns.set(field.name, lazy);
      const source = vectorSourceOf(chunk.columns.get(field.name));
      if (source) attachVectors(built, source);
      chunk.indexes.set(field.name, built);
      chunk.indexBuilds.set(field.name, file.buildId);
    };
  }

  async prepareScalarIndex(
    collectionId: number,
    segmentId: number,
    index: IndexRecord,
    field: FieldSchema,
    file: SegmentIndexFile,
  ): Promise<(() => void) | undefined> {
    const seg = this.#segments.runtime(collectionId)?.segments.get(segmentId);
    if (!seg?.loaded || file.files.length === 0) return undefined;
    if (hasTypedIndexFile(index)) {
      const typed = await this.#openTypedIndex(index, field, file.files[0]!, seg.numRows);
      return () => {
        const chunk = seg.loaded ? seg.chunks[0] : undefined;
        if (!chunk) return;
        chunk.typedIndexes.set(field.name, typed);
        chunk.indexBuilds.set(field.name, file.buildId);
      };
    }
    const built = await this.#openScalarIndex(index, file.files[0]!, seg.numRows);
    const key = scalarIndexKey(field.name, index.buildParams.jsonPath);
    return () => {
      const chunk = seg.loaded ? seg.chunks[0] : undefined;
      if (!chunk) return;
      chunk.scalarIndexes.set(key, built);
      chunk.indexBuilds.set(key, file.buildId);
    };
  }

  async #openScalarIndex(index: IndexRecord, key: string, rows: number): Promise<SegmentScalarIndex> {
    if (!isScalarIndexType(index.indexType)) throw new Error(`assertion failed: ${index.indexType} is not a scalar index type`);
    const local = this.#store.localPath?.(key);
    const bytes = local ? new Uint8Array(await readFile(local)) : await this.#store.get(key);
    return ScalarIndex.fromBytes(bytes, key, { rows, indexType: index.indexType });
  }

  async #openTypedIndex(index: IndexRecord, field: FieldSchema, key: string, rows: number): Promise<TypedVectorIndex> {
    const local = this.#store.localPath?.(key);
    const bytes = local ? new Uint8Array(await readFile(local)) : await this.#store.get(key);
    return openTypedIndex(bytes, key, index, { rows, dim: field.dim ?? 0 });
  }

  /** Opens the BIN_IVF_FLAT / sparse index files of a segment into `chunk`, sharing the donor's by build id (as below). */
  async #attachTypedIndexes(coll: CollectionRecord, rec: SegmentRecord, chunk: Chunk, donor?: Chunk): Promise<void> {
    for (const si of rec.indexes) {
      const idx = this.#catalog.indexes(coll.id).find((i) => i.id === si.indexId);
      const field = idx && coll.schema.fields.find((f) => f.fieldId === idx.fieldId);
      if (!idx || !field || !hasTypedIndexFile(idx) || si.files.length === 0) continue;
      const shared = donor?.indexBuilds.get(field.name) === si.buildId ? donor.typedIndexes.get(field.name) : undefined;
      chunk.typedIndexes.set(field.name, shared ?? (await this.#openTypedIndex(idx, field, si.files[0]!, rec.numRows)));
      chunk.indexBuilds.set(field.name, si.buildId);
    }
  }

  /**
   * Opens the scalar indexes of a segment into `chunk`; one whose build id matches the donor's (a restored
   * segment's source, loaded) is shared rather than read again.
   */
  async #attachScalarIndexes(coll: CollectionRecord, rec: SegmentRecord, chunk: Chunk, donor?: Chunk): Promise<void> {
    for (const si of rec.indexes) {
      const idx = this.#catalog.indexes(coll.id).find((i) => i.id === si.indexId);
      const field = idx && coll.schema.fields.find((f) => f.fieldId === idx.fieldId);
      if (!idx || !field || !isScalarIndexType(idx.indexType) || si.files.length === 0) continue;
      const key = scalarIndexKey(field.name, idx.buildParams.jsonPath);
      const shared = donor?.indexBuilds.get(key) === si.buildId ? donor.scalarIndexes.get(key) : undefined;
      chunk.scalarIndexes.set(key, shared ?? (await this.#openScalarIndex(idx, si.files[0]!, rec.numRows)));
      chunk.indexBuilds.set(key, si.buildId);
    }
  }

  // ------------------------------------------------------------------ loader

  async readSegmentInto(rt: CollectionRuntime, seg: Segment, full: boolean): Promise<void> {
    const coll = rt.record;
    const rec = seg.record!;
    const fields = full ? coll.schema.fields : coll.schema.fields.filter((f) => f.isPrimaryKey);
    const chunk = (full ? await this.#shareLoaded(coll, rec) : undefined) ?? (await this.#readChunk(coll, rec, fields, full));
    // Deletes applied while we were reading are in the old chunk's bitmap: keep them.
    const old = seg.chunks[0];
    if (old) for (let i = 0; i < chunk.numRows; i++) if (old.deleted[i] === 1) chunk.deleted[i] = 1;
    recountDeleted(chunk);
    seg.chunks = [chunk];
    seg.loaded = full;
    seg.error = undefined;
    if (full) this.registerLoaded(rec, chunk);
  }

  async #readChunk(coll: CollectionRecord, rec: SegmentRecord, fields: readonly FieldSchema[], withIndexes: boolean): Promise<Chunk> {
    // Columns a quantized index makes redundant are not read into memory: they are served from the binlog.
    const lazy = new Map<string, string>();
    if (withIndexes) {
      for (const { field, type } of this.#indexedFields(coll, rec)) {
        const local = this.#lazyVectorPath(rec, field, type);
        if (local !== undefined) lazy.set(field.name, local);
      }
    }
    // Binlog reads run on libuv threads while the (synchronous, native) index load runs here.
    const reading = readSegment(
      this.#store,
      coll,
      rec,
      fields.filter((f) => !lazy.has(f.name)),
    );
    reading.catch(() => undefined);
    const indexes = withIndexes ? await this.#loadSegmentIndexes(coll, rec) : new Map<string, { index: VectorIndex; buildId: number }>();
    const chunk = await reading;
    for (const [name, local] of lazy) chunk.columns.set(name, openLazyVectorColumn(local, rec.numRows));
    for (const [name, { index, buildId }] of indexes) {
      // Exact paths of selective filters and refine re-rank from the column (resident or read on demand).
      const vectors = vectorSourceOf(chunk.columns.get(name));
      if (vectors) attachVectors(index, vectors);
      chunk.indexes.set(name, index);
      chunk.indexBuilds.set(name, buildId);
    }
    if (withIndexes) {
      await this.#attachScalarIndexes(coll, rec, chunk);
      await this.#attachTypedIndexes(coll, rec, chunk);
      await this.#attachTextIndexes(coll, rec, chunk);
    }
    return chunk;
  }

  /**
   * Opens the segment's full-text index files (BM25, text/phrase match) onto its columns. A file that cannot
   * be used is logged and skipped: the index is then built in memory on first use, from the same column.
   */
  async #attachTextIndexes(coll: CollectionRecord, rec: SegmentRecord, chunk: Chunk): Promise<void> {
    for (const [field, key] of textIndexFilesOf(coll, rec)) {
      const col = chunk.columns.get(field.name);
      if (!col) continue;
      try {
        const local = this.#store.localPath?.(key);
        const bytes = local ? new Uint8Array(await readFile(local)) : await this.#store.get(key);
        const index = openTextIndexFile(bytes, key, coll, field, rec.numRows);
        if (index instanceof Bm25ColumnIndex) attachBm25Index(col, index);
        else if (index) attachPositionalIndex(col, analyzerKeyOf(field), index);
      } catch (err) {
        this.#log.warn({ err, segment: rec.id, field: field.name }, 'full-text index file not usable; it is rebuilt in memory on first use');
      }
    }
  }

  /**
   * Loaded segment data by content: the binlog of a segment's row timestamps (field 1) has a log id no
   * other flush ever reuses, and a restore copies files keeping their log ids and index build ids. So a
   * segment whose timestamp log id matches a loaded chunk holds byte-identical columns, and identical
   * index files where the build ids match: loading a restored collection while its source is loaded
   * shares that memory instead of reading it again (deletes are the segment's own, from its deltalogs).
   * Weak references: this index never keeps data alive.
   */
  readonly #loadedContent: Map<number, WeakRef<Chunk>[]>;

  /** What `contentIndex` of another query node takes to share this one's loaded segments. */
  get contentIndex(): Map<number, WeakRef<Chunk>[]> {
    return this.#loadedContent;
  }

  registerLoaded(rec: SegmentRecord, chunk: Chunk): void {
    const key = rec.binlogs[String(TIMESTAMP_FIELD_ID)]?.[0]?.logId;
    if (key === undefined) return;
    // Several segments (a source and its restores) may hold the same content; any loaded one will do.
    const live = (this.#loadedContent.get(key) ?? []).filter((r) => r.deref() !== undefined);
    live.push(new WeakRef(chunk));
    this.#loadedContent.set(key, live);
  }

  async #shareLoaded(coll: CollectionRecord, rec: SegmentRecord): Promise<Chunk | undefined> {
    const key = rec.binlogs[String(TIMESTAMP_FIELD_ID)]?.[0]?.logId;
    // A candidate released since (its columns stripped) or collected does not count: read the files.
    const donor = (key === undefined ? [] : (this.#loadedContent.get(key) ?? []))
      .map((r) => r.deref())
      .find((c) => c !== undefined && c.numRows === rec.numRows && coll.schema.fields.every((f) => c.columns.has(f.name)));
    if (!donor) return undefined;
    const columns = new Map<string, Column>();
    for (const f of coll.schema.fields) columns.set(f.name, donor.columns.get(f.name)!);
    const chunk = newChunk(rec.numRows, columns, donor.ts);
    await applyDeltalogs(this.#store, coll, rec, chunk);
    for (const si of rec.indexes) {
      const idx = this.#catalog.indexes(coll.id).find((i) => i.id === si.indexId);
      const field = idx && coll.schema.fields.find((f) => f.fieldId === idx.fieldId);
      if (!idx || !field || !hasIndexFiles(idx.indexType) || si.files.length === 0) continue;
      const shared = donor.indexBuilds.get(field.name) === si.buildId ? donor.indexes.get(field.name) : undefined;
      const index = shared ?? (await this.openIndex(si.files[0]!, field.dim!, floatMetric(idx.metric), rec.numRows));
      const vectors = shared ? undefined : vectorSourceOf(columns.get(field.name));
      if (vectors) attachVectors(index, vectors);
      chunk.indexes.set(field.name, index);
      chunk.indexBuilds.set(field.name, si.buildId);
    }
    await this.#attachScalarIndexes(coll, rec, chunk, donor);
    await this.#attachTypedIndexes(coll, rec, chunk, donor);
    return chunk;
  }

  /** The fields of a segment with index files, and their index types. */
  #indexedFields(coll: CollectionRecord, rec: SegmentRecord): { field: FieldSchema; type: string }[] {
    const out: { field: FieldSchema; type: string }[] = [];
    for (const si of rec.indexes) {
      const idx = this.#catalog.indexes(coll.id).find((i) => i.id === si.indexId);
      const field = idx && coll.schema.fields.find((f) => f.fieldId === idx.fieldId);
      if (idx && field && hasIndexFiles(idx.indexType) && si.files.length > 0) out.push({ field, type: idx.indexType });
    }
    return out;
  }

  /** The local binlog to serve a FloatVector column from, when an index of `indexType` makes it redundant. */
  #lazyVectorPath(rec: SegmentRecord | undefined, field: FieldSchema, indexType: string): string | undefined {
    if (!this.#lazyVectors || !rec || field.dataType !== 'FloatVector' || !makesColumnRedundant(indexType)) return undefined;
    const logs = rec.binlogs[String(field.fieldId)] ?? [];
    return logs.length === 1 ? this.#store.localPath?.(logs[0]!.path) : undefined;
  }

  async #loadSegmentIndexes(coll: CollectionRecord, rec: SegmentRecord): Promise<Map<string, { index: VectorIndex; buildId: number }>> {
    const out = new Map<string, { index: VectorIndex; buildId: number }>();
    for (const si of rec.indexes) {
      const idx = this.#catalog.indexes(coll.id).find((i) => i.id === si.indexId);
      if (!idx) continue;
      const field = coll.schema.fields.find((f) => f.fieldId === idx.fieldId);
      if (!field || !hasIndexFiles(idx.indexType) || si.files.length === 0) continue;
      out.set(field.name, { index: await this.openIndex(si.files[0]!, field.dim!, floatMetric(idx.metric), rec.numRows), buildId: si.buildId });
    }
    return out;
  }

  async openIndex(key: string, dim: number, metric: MetricType, rows: number): Promise<VectorIndex> {
    const local = this.#store.localPath?.(key);
    // The file says which format it is in: raw hnswlib (older builds) or the versioned container.
    if (local) return openIndexFile(local, { dim, metric, rows });
    return openIndexBytes(await this.#store.get(key), key, { dim, metric, rows });
  }

  // ------------------------------------------------------------------ load / release

  async load(collectionId: number, partitionNames: readonly string[] | undefined): Promise<void> {
    const rt = this.#runtime(collectionId);
    const coll = rt.record;
    let loadedPartitions: number[] | undefined;
    if (partitionNames && partitionNames.length > 0) {
      const ids = partitionNames.map((n) => partitionOf(coll, n).id);
      const prev = coll.loaded ? (coll.loadedPartitions ?? coll.partitions.map((p) => p.id)) : [];
      loadedPartitions = [...new Set([...prev, ...ids])];
      if (loadedPartitions.length === coll.partitions.length) loadedPartitions = undefined;
    }
    await this.#loadState.setLoadState(collectionId, true, loadedPartitions);
    this.#startLoading(rt);
  }

  #startLoading(rt: CollectionRuntime): void {
    if (this.#loading.has(rt.record.id)) return;
    const p = (async () => {
      for (const seg of [...rt.segments.values()]) {
        if (seg.phase !== 'flushed' || seg.loaded || !rt.record.loaded) continue;
        try {
          await this.readSegmentInto(rt, seg, true);
        } catch (err) {
          seg.error = (err as Error).message;
          this.#log.error({ err, segment: seg.id }, 'segment load failed');
        }
      }
    })().finally(() => this.#loading.delete(rt.record.id));
    this.#loading.set(rt.record.id, p);
  }

  async waitLoaded(collectionId: number): Promise<void> {
    await this.#loading.get(collectionId);
  }

  async release(collectionId: number, partitionNames?: readonly string[]): Promise<void> {
    const rt = this.#runtime(collectionId);
    const coll = rt.record;
    if (partitionNames && partitionNames.length > 0) {
      const ids = new Set(partitionNames.map((n) => partitionOf(coll, n).id));
      const prev = coll.loaded ? (coll.loadedPartitions ?? coll.partitions.map((p) => p.id)) : [];
      const rest = prev.filter((id) => !ids.has(id));
      await this.#loadState.setLoadState(collectionId, rest.length > 0, rest.length > 0 ? rest : undefined);
      return;
    }
    await this.#loading.get(collectionId);
    await this.#loadState.setLoadState(collectionId, false, undefined);
    for (const seg of rt.segments.values()) if (seg.phase === 'flushed') stripToPk(seg, rt.pkField.name);
  }

  loadProgress(collectionId: number, partitionNames?: readonly string[]): LoadProgress {
    const rt = this.#runtime(collectionId);
    const coll = rt.record;
    if (!coll.loaded) return { state: 'NotLoad', progress: 0 };
    if (partitionNames && partitionNames.length > 0) {
      const loaded = coll.loadedPartitions ?? coll.partitions.map((p) => p.id);
      for (const n of partitionNames) {
        if (!loaded.includes(partitionOf(coll, n).id)) return { state: 'NotLoad', progress: 0 };
      }
    }
    let total = 0;
    let done = 0;
    for (const seg of rt.segments.values()) {
      if (seg.phase !== 'flushed') continue;
      total++;
      if (seg.loaded || seg.error) done++;
    }
    const progress = total === 0 ? 100 : Math.floor((done * 100) / total);
    return { state: progress >= 100 ? 'Loaded' : 'Loading', progress };
  }

  #readablePartitions(coll: CollectionRecord, names: readonly string[]): Set<number> | null {
    if (!coll.loaded) throw quiverError('CollectionNotLoaded', `collection not loaded[collection=${coll.name}]`);
    const loaded = coll.loadedPartitions;
    if (names.length === 0) return loaded ? new Set(loaded) : null;
    const ids = new Set<number>();
    for (const n of names) {
      const p = partitionOf(coll, n);
      if (loaded && !loaded.includes(p.id)) throw quiverError('PartitionNotLoaded', `partition not loaded[partition=${n}]`);
      ids.add(p.id);
    }
    return ids;
  }

  async #ensureReadable(rt: CollectionRuntime): Promise<void> {
    const pending = this.#loading.get(rt.record.id);
    if (pending) await pending;
  }

  async search(collectionId: number, p: SearchParams): Promise<{ hits: SearchHit[][]; metric: AnyMetricType }> {
    const rt = this.#runtime(collectionId);
    const coll = rt.record;
    const parts = this.#readablePartitions(coll, p.partitionNames);
    await this.#ensureReadable(rt);
    const idx = this.#catalog.indexes(collectionId).find((i) => i.fieldId === p.field.fieldId);
    let metric: AnyMetricType | undefined = p.metric;
    if (idx && metric && metric !== idx.metric) {
      throw quiverError('ParameterInvalid', `metric type not match: invalid parameter[expected=${idx.metric}][actual=${metric}]`);
    }
    metric = metric ?? (idx?.metric || undefined) ?? defaultMetricFor(p.field.dataType);
    const filter = this.#filter(coll, p.filter, p.templates, p.timezone);
    const hits = rt.search({
      field: p.field,
      queries: p.queries,
      typedQueries: p.typedQueries,
      dropRatioSearch: p.dropRatioSearch,
      dropRatioBuild: idx?.buildParams.dropRatioBuild,
      bm25: metric === 'BM25' ? bm25ParamsOf(idx?.userParams) : undefined,
      binaryIvfNlist: idx?.indexType === 'BIN_IVF_FLAT' ? idx.buildParams.nlist : undefined,
      nq: p.nq,
      k: p.k,
      offset: p.offset,
      metric,
      filter,
      partitionIds: parts,
      ef: p.ef,
      nprobe: p.nprobe,
      refineK: p.refineK,
      radius: p.radius,
      rangeFilter: p.rangeFilter,
      ignoreGrowing: p.ignoreGrowing,
      expiredBefore: ttlCutTs(coll, this.#clock.nowMs()),
      after: p.after,
    });
    return { hits, metric };
  }

  async query(collectionId: number, q: FilterRequest & { offset: number; limit: number | undefined }): Promise<RowRef[]> {
    const rt = this.#runtime(collectionId);
    const parts = this.#readablePartitions(rt.record, q.partitionNames);
    await this.#ensureReadable(rt);
    const filter = this.#filter(rt.record, q.filter, q.templates, q.timezone);
    return rt.query(filter, parts, q.offset, q.limit, ttlCutTs(rt.record, this.#clock.nowMs()));
  }

  async count(collectionId: number, q: FilterRequest): Promise<number> {
    const rt = this.#runtime(collectionId);
    const parts = this.#readablePartitions(rt.record, q.partitionNames);
    await this.#ensureReadable(rt);
    const filter = this.#filter(rt.record, q.filter, q.templates, q.timezone);
    return rt.count(filter, parts, ttlCutTs(rt.record, this.#clock.nowMs()));
  }

  segmentInfos(collectionId: number): QuerySegmentInfo[] {
    const rt = this.#runtime(collectionId);
    if (!rt.record.loaded) throw quiverError('CollectionNotLoaded', `collection not loaded[collection=${rt.record.name}]`);
    const out: QuerySegmentInfo[] = [];
    for (const seg of [...rt.segments.values()].sort((a, b) => a.id - b.id)) {
      const chunk = seg.chunks[0];
      out.push({
        segmentId: seg.id,
        partitionId: seg.partitionId,
        numRows: seg.numRows,
        memBytes: segmentBytes(seg),
        state: seg.phase === 'growing' ? 'Growing' : seg.phase === 'sealed' ? 'Sealed' : 'Flushed',
        indexed: chunk && seg.chunks.length === 1 ? [...chunk.indexBuilds].map(([fieldName, buildId]) => ({ fieldName, buildId })) : [],
      });
    }
    return out;
  }

  /** Row count of the collection (or partition) as statistics report it: live rows, loaded or not. */
  rowCount(collectionId: number, partitionName?: string): number {
    const rt = this.#runtime(collectionId);
    const parts = partitionName ? new Set([partitionOf(rt.record, partitionName).id]) : undefined;
    return rt.liveRowCount(parts);
  }
}

/** What an index can read the float rows of a column from: the resident array or the binlog reader. */
function vectorSourceOf(column: Column | undefined): VectorSource | undefined {
  if (column?.kind === 'vector' && column.lazy) return column.lazy;
  return floatVectorsOf(column);
}
