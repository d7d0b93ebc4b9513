import { validateSnapshotPolicyProperties } from './snapshot/policy/policy.js';
import type { Logger } from 'pino';
import type { Clock } from '../common/clock.js';
import { quiverError } from '../common/errors.js';
import { Mutex } from '../common/mutex.js';
import { IdAllocator, TsoAllocator, type BoundStore } from '../common/tso.js';
import type { MetaKV } from '../meta/meta-kv.js';
import type { FunctionSchema } from '../schema/functions.js';
import type { FieldSchema } from '../schema/types.js';
import { assignSubFieldIds, maxFieldId } from '../schema/types.js';
import { Catalog, DEFAULT_DB, type CatalogChange } from './catalog.js';
import type { CollectionRecord, DatabaseRecord, IndexRecord, SegmentRecord } from './records.js';
import { DEFAULT_PARTITION } from '../segcore/collection-helpers.js';
import type { CatalogServiceApi, CollectionEvents, CreateCollectionInput, IndexDefinition, LoadStateStore } from './types.js';

/**
 * The catalog service (Milvus RootCoord): databases, collections, partitions, aliases and index
 * definitions, plus the id and timestamp allocators. DDL runs one statement at a time (one mutex), and
 * every commit that changes what the nodes hold in memory is followed, in the same critical section, by
 * a `CollectionEvents` call, so the nodes never see a collection the catalog no longer has (or the
 * reverse).
 */

const enc = new TextEncoder();
/** Index properties AlterIndex may change (Milvus: mmap; the rest are build parameters). */
const ALTERABLE_INDEX_KEYS: readonly string[] = ['mmap.enabled'];
/** Milvus's default `maxFieldNum`. */
const FIELDS_MAX = 64;
const dec = new TextDecoder();

function kvBound(kv: MetaKV, key: string): BoundStore {
  return {
    load: async () => {
      const e = await kv.get(key);
      return e ? Number(dec.decode(e.value)) : 0;
    },
    save: async (bound) => {
      await kv.put(key, enc.encode(String(bound)));
    },
  };
}

export interface CatalogServiceDeps {
  readonly kv: MetaKV;
  readonly clock: Clock;
  readonly log: Logger;
  /** Where the WAL ends now: a new collection's checkpoint (it has nothing before). */
  readonly walEnd: () => number;
  /** The collection lock of the segment manager (drops must not race a flush or compaction commit). */
  readonly locks: { withCollectionLock<T>(collectionId: number, fn: () => Promise<T>): Promise<T> };
  readonly events: CollectionEvents;
  /** A new index definition: the index-build scheduler has work. */
  readonly onIndexCreated: (collectionId: number) => void;
}

export class CatalogService implements CatalogServiceApi, LoadStateStore {
  readonly catalog: Catalog;
  readonly tso: TsoAllocator;
  readonly ids: IdAllocator;
  readonly #clock: Clock;
  readonly #log: Logger;
  readonly #walEnd: () => number;
  readonly #locks: CatalogServiceDeps['locks'];
  readonly #events: CollectionEvents;
  readonly #onIndexCreated: (collectionId: number) => void;
  readonly #ddl = new Mutex();
  /** Called after a collection was dropped (snapshots of it are dropped by their manager). */
  readonly #dropHooks: ((coll: CollectionRecord) => Promise<void>)[] = [];
  #dropRestoring: ((coll: CollectionRecord) => Promise<void>) | undefined;

  constructor(deps: CatalogServiceDeps) {
    this.catalog = new Catalog(deps.kv);
    this.tso = new TsoAllocator(deps.clock, kvBound(deps.kv, 'quiver/alloc/tso'));
    this.ids = new IdAllocator(kvBound(deps.kv, 'quiver/alloc/id'));
    this.#clock = deps.clock;
    this.#log = deps.log;
    this.#walEnd = deps.walEnd;
    this.#locks = deps.locks;
    this.#events = deps.events;
    this.#onIndexCreated = deps.onIndexCreated;
  }

  /** Loads the allocators and the catalog; creates the default database on first start. */
  async init(): Promise<void> {
    await this.tso.init();
    await this.ids.init();
    await this.catalog.load();
    if (!this.catalog.database(DEFAULT_DB)) {
      const id = await this.ids.alloc();
      await this.catalog.commit([{ type: 'putDatabase', record: { id, name: DEFAULT_DB, createdTs: this.tso.next().toString(), properties: {} } }]);
    }
    await this.#finishInterruptedDrops();
  }

  /**
   * Finishes the cleanup half of a drop that committed in batches (`Catalog.commitInBatches`) and was
   * cut short by a crash or an error: the drop itself committed first, so what is left is derived
   * from the catalog alone and removing it is idempotent.
   *  - aliases of a collection that is no longer live (drop collection);
   *  - Flushed segments of a partition that no longer exists (drop partition), or created before the
   *    collection's last truncate → Dropped, for GC;
   *  - a Flushed segment's entries of an index that no longer exists (drop index).
   */
  async #finishInterruptedDrops(): Promise<void> {
    const changes: CatalogChange[] = [];
    for (const db of this.catalog.databases()) {
      for (const a of this.catalog.aliasesIn(db.id)) {
        if (this.catalog.collectionIncludingDropped(a.collectionId)?.state !== 'Created')
          changes.push({ type: 'deleteAlias', dbId: db.id, alias: a.alias });
      }
    }
    const now = this.#clock.nowMs();
    for (const coll of this.catalog.allCollections()) {
      if (coll.state !== 'Created') continue;
      const partitions = new Set(coll.partitions.map((p) => p.id));
      const indexes = new Set(this.catalog.indexes(coll.id).map((i) => i.id));
      for (const seg of this.catalog.segments(coll.id)) {
        if (seg.state !== 'Flushed') continue;
        const truncated = coll.truncatedTs !== undefined && BigInt(seg.createdTs) <= BigInt(coll.truncatedTs);
        if (!partitions.has(seg.partitionId) || truncated) changes.push({ type: 'putSegment', record: { ...seg, state: 'Dropped', droppedAtMs: now } });
        else if (seg.indexes.some((i) => !indexes.has(i.indexId))) {
          changes.push({ type: 'putSegment', record: { ...seg, indexes: seg.indexes.filter((i) => indexes.has(i.indexId)) } });
        }
      }
    }
    if (changes.length === 0) return;
    this.#log.warn({ changes: changes.length }, 'finishing drops a crash interrupted');
    await this.catalog.commitInBatches(changes);
  }

  /** Runs `fn` as one DDL statement (the restore publish and rollback take it too). */
  ddl<T>(fn: () => Promise<T>): Promise<T> {
    return this.#ddl.run(fn);
  }

  /**
   * Who handles a drop of a collection that is still being restored (the restore service: it cancels
   * the job, whose rollback removes the target). Registered late because the restore service is built
   * on top of this one. Without it such a drop answers CollectionNotFound (the target is invisible).
   */
  onDropRestoring(handler: (coll: CollectionRecord) => Promise<void>): void {
    this.#dropRestoring = handler;
  }

  onCollectionDropped(hook: (coll: CollectionRecord) => Promise<void>): void {
    this.#dropHooks.push(hook);
  }

  #created(collectionId: number): CollectionRecord {
    const coll = this.catalog.collection(collectionId);
    if (!coll || coll.state !== 'Created') throw quiverError('CollectionNotFound', `collection not found[collectionID=${collectionId}]`);
    return coll;
  }

  async #putCollection(rec: CollectionRecord, extra: CatalogChange[] = []): Promise<void> {
    await this.catalog.commit([{ type: 'putCollection', record: rec }, ...extra]);
    this.#events.collectionChanged(rec);
  }

  async setLoadState(collectionId: number, loaded: boolean, loadedPartitions: readonly number[] | undefined): Promise<CollectionRecord> {
    const coll = this.#created(collectionId);
    const record: CollectionRecord = { ...coll, loaded, loadedPartitions: loadedPartitions ? [...loadedPartitions] : undefined };
    await this.#putCollection(record);
    return record;
  }

  // ------------------------------------------------------------------ databases

  async createDatabase(name: string, properties: Record<string, string>): Promise<void> {
    await this.#ddl.run(async () => {
      if (this.catalog.database(name)) throw quiverError('ParameterInvalid', `database already exist: ${name}`);
      if (this.catalog.databases().length >= 64) throw quiverError('ParameterInvalid', `database number (64) exceeds max configuration`);
      const id = await this.ids.alloc();
      await this.catalog.commit([{ type: 'putDatabase', record: { id, name, createdTs: this.tso.next().toString(), properties } }]);
    });
  }

  async dropDatabase(name: string): Promise<void> {
    await this.#ddl.run(async () => {
      if (name === DEFAULT_DB) throw quiverError('ParameterInvalid', 'can not drop default database');
      const db = this.catalog.database(name);
      if (!db) return;
      if (this.catalog.collections(db.id).length > 0) {
        throw quiverError('ParameterInvalid', `database:${name} not empty, must drop all collections before drop database`);
      }
      await this.catalog.commit([{ type: 'deleteDatabase', name }]);
    });
  }

  async alterDatabase(name: string, set: Record<string, string>, deleteKeys: readonly string[]): Promise<void> {
    await this.#ddl.run(async () => {
      const db = this.catalog.requireDatabase(name);
      const properties = { ...db.properties, ...set };
      for (const k of deleteKeys) delete properties[k];
      const record: DatabaseRecord = { ...db, properties };
      await this.catalog.commit([{ type: 'putDatabase', record }]);
    });
  }

  async createCollection(input: CreateCollectionInput): Promise<CollectionRecord> {
    validateSnapshotPolicyProperties(input.properties);
    return this.#ddl.run(async () => {
      const db = this.catalog.requireDatabase(input.dbName);
      const existing = this.catalog.collectionByName(db.id, input.name);
      if (existing || (this.catalog.nameTaken(db.id, input.name) && !this.catalog.alias(db.id, input.name))) {
        throw quiverError('ParameterInvalid', `collection already exists: ${input.name}`);
      }
      if (this.catalog.alias(db.id, input.name)) {
        throw quiverError('ParameterInvalid', `collection name [${input.name}] conflicts with an existing alias, please choose a unique name`);
      }
      const id = await this.ids.alloc();
      // A partition-key collection has `numPartitions` hidden partitions (Milvus: _default_0 … _default_{n-1},
      // default 16) that the proxy routes rows to by key; any other starts with `_default` alone.
      const keyed = input.fields.some((f) => f.isPartitionKey);
      const partCount = keyed ? input.numPartitions || 16 : 1;
      const partId = await this.ids.alloc(partCount);
      const ts = this.tso.next().toString();
      // Sub-fields of struct array fields take ids after the top-level fields, as Milvus numbers them.
      const fields: FieldSchema[] = assignSubFieldIds(
        input.fields.map((f, i) => ({ ...f, fieldId: 100 + i })),
        100 + input.fields.length,
      );
      const record: CollectionRecord = {
        id,
        dbId: db.id,
        name: input.name,
        schema: {
          name: input.name,
          description: input.description,
          autoId: input.autoId,
          enableDynamicField: input.enableDynamicField,
          fields,
          ...(input.functions?.length ? { functions: input.functions } : {}),
        },
        shardsNum: input.shardsNum,
        consistencyLevel: input.consistencyLevel,
        properties: input.properties,
        partitions: keyed
          ? Array.from({ length: partCount }, (_, i) => ({ id: partId + i, name: `${DEFAULT_PARTITION}_${i}`, createdTs: ts }))
          : [{ id: partId, name: DEFAULT_PARTITION, createdTs: ts }],
        createdTs: ts,
        updateTs: ts,
        state: 'Created',
        loaded: false,
      };
      await this.catalog.commit([
        { type: 'putCollection', record },
        { type: 'putCheckpoint', collectionId: id, position: this.#walEnd() },
      ]);
      this.#events.collectionCreated(record);
      return record;
    });
  }

  async dropCollection(dbName: string, name: string): Promise<void> {
    let dropped: CollectionRecord | undefined;
    let restoring: CollectionRecord | undefined;
    await this.#ddl.run(async () => {
      const db = this.catalog.requireDatabase(dbName);
      const coll = this.catalog.collectionByName(db.id, name);
      if (!coll) {
        restoring = this.#dropRestoring && this.catalog.allCollections().find((c) => c.dbId === db.id && c.name === name && c.state === 'Restoring');
        if (restoring) return;
        throw quiverError('CollectionNotFound', `collection not found[database=${dbName}][collection=${name}]`);
      }
      await this.#locks.withCollectionLock(coll.id, async () => {
        dropped = { ...coll, state: 'Dropped', droppedAtMs: this.#clock.nowMs(), loaded: false };
        const changes: CatalogChange[] = [
          { type: 'putCollection', record: dropped },
          { type: 'deleteCheckpoint', collectionId: coll.id },
        ];
        for (const a of this.catalog.aliasesIn(db.id)) if (a.collectionId === coll.id) changes.push({ type: 'deleteAlias', dbId: db.id, alias: a.alias });
        // Aliases are unbounded, so batches: the Dropped flip is in the first one (the drop takes effect
        // there), alias deletes follow; aliases a crash left are deleted by `#finishInterruptedDrops`.
        await this.catalog.commitInBatches(changes);
        // Drop the in-memory data now (and make it unusable as a sharing donor).
        this.#events.collectionDropped(dropped);
      });
    });
    // Outside the DDL lock: the cancel only records a request on the job; its rollback takes the lock later.
    if (restoring) return this.#dropRestoring!(restoring);
    const d = dropped;
    if (d) for (const hook of this.#dropHooks) await hook(d).catch((err: Error) => this.#log.error({ err }, 'drop hook failed'));
  }

  async renameCollection(dbName: string, oldName: string, newName: string, newDbName: string): Promise<void> {
    await this.#ddl.run(async () => {
      const db = this.catalog.requireDatabase(dbName);
      const coll = this.catalog.collectionByName(db.id, oldName);
      if (!coll) throw quiverError('CollectionNotFound', `collection not found[database=${dbName}][collection=${oldName}]`);
      const target = this.catalog.requireDatabase(newDbName || dbName);
      if (this.catalog.collectionByName(target.id, newName) || (this.catalog.nameTaken(target.id, newName) && !this.catalog.alias(target.id, newName))) {
        throw quiverError('ParameterInvalid', `duplicated new collection name ${newName} in database ${target.name}`);
      }
      if (this.catalog.alias(target.id, newName)) throw quiverError('ParameterInvalid', `cannot rename collection to an existing alias: ${newName}`);
      if (target.id !== db.id && this.catalog.aliasesOf(coll.id).length > 0) {
        throw quiverError('ParameterInvalid', `fail to rename collection to different database, must drop all aliases of collection ${oldName} first`);
      }
      const record: CollectionRecord = {
        ...coll,
        name: newName,
        dbId: target.id,
        schema: { ...coll.schema, name: newName },
        updateTs: this.tso.next().toString(),
      };
      await this.#putCollection(record);
    });
  }

  async alterCollection(dbName: string, name: string, set: Record<string, string>, deleteKeys: readonly string[]): Promise<void> {
    await this.#ddl.run(async () => {
      const coll = this.catalog.resolveCollection(dbName, name);
      const properties = { ...coll.properties, ...set };
      for (const k of deleteKeys) delete properties[k];
      validateSnapshotPolicyProperties(properties);
      await this.#putCollection({ ...coll, properties, updateTs: this.tso.next().toString() });
    });
  }

  async alterCollectionField(dbName: string, name: string, fieldName: string, set: Record<string, string>, deleteKeys: readonly string[]): Promise<void> {
    await this.#ddl.run(async () => {
      const coll = this.catalog.resolveCollection(dbName, name);
      const field = coll.schema.fields.find((f) => f.name === fieldName && !f.isDynamic);
      if (!field) throw quiverError('FieldNotFound', `field not found[field=${fieldName}][collection=${name}]`);
      const typeParams = { ...field.typeParams, ...set };
      for (const k of deleteKeys) delete typeParams[k];
      let maxLength = field.maxLength;
      if (set['max_length'] !== undefined) {
        const n = Number(set['max_length']);
        if (field.dataType !== 'VarChar' && !(field.dataType === 'Array' && field.elementType === 'VarChar')) {
          throw quiverError('ParameterInvalid', `max_length can only be altered on VarChar fields, ${fieldName} is ${field.dataType}`);
        }
        if (!Number.isInteger(n) || n < (field.maxLength ?? 0) || n > 65535) {
          throw quiverError(
            'ParameterInvalid',
            `invalid max_length ${set['max_length']} for field ${fieldName}: must be an integer in [${field.maxLength}, 65535]`,
          );
        }
        maxLength = n;
      }
      const fields = coll.schema.fields.map((f) => (f === field ? { ...f, typeParams, maxLength } : f));
      await this.#putCollection({ ...coll, schema: { ...coll.schema, fields }, updateTs: this.tso.next().toString() });
    });
  }

  // ------------------------------------------------------------------ schema changes (AlterCollectionSchema)

  /**
   * Adds a field (Milvus AddCollectionField). Rows written before it read as its default or null: the
   * field records the schema version that added it, and data of an older version has no column for it
   * (segcore fills one; see `missingFieldColumn`). Taken under the collection lock, so no flush or
   * compaction commit writes a segment while the in-memory chunks gain the new column.
   */
  async addCollectionField(dbName: string, collName: string, field: Omit<FieldSchema, 'fieldId'>): Promise<FieldSchema> {
    return this.#ddl.run(async () => {
      const coll = this.catalog.resolveCollection(dbName, collName);
      const bad = (why: string): never => {
        throw quiverError('ParameterInvalid', `cannot add field ${field.name} to collection ${coll.name}: ${why}`);
      };
      if (coll.schema.fields.some((f) => f.name === field.name)) bad(`a field named ${field.name} already exists`);
      if (field.isPrimaryKey) bad('a primary key cannot be added');
      if (field.isPartitionKey) bad('a partition key cannot be added');
      if (field.isClusteringKey) bad('a clustering key cannot be added');
      if (field.autoId) bad('autoID cannot be set on an added field');
      // Existing rows need a value: the default, or null.
      if (!field.nullable && field.defaultValue === undefined) bad('an added field must be nullable or have a default value');
      if (field.dataType === 'FloatVector' && !field.nullable) bad('an added vector field must be nullable');
      if (coll.schema.fields.filter((f) => !f.isDynamic).length >= FIELDS_MAX) bad(`a collection has at most ${FIELDS_MAX} fields`);
      const version = (coll.schema.version ?? 0) + 1;
      const fieldId = maxFieldId(coll.schema.fields) + 1;
      const added: FieldSchema = assignSubFieldIds([{ ...field, fieldId, addedInVersion: version }], fieldId + 1)[0]!;
      // The dynamic `$meta` column stays last, as describe lists it.
      const fields = [...coll.schema.fields.filter((f) => !f.isDynamic), added, ...coll.schema.fields.filter((f) => f.isDynamic)];
      await this.#locks.withCollectionLock(coll.id, () =>
        this.#putCollection({ ...coll, schema: { ...coll.schema, fields, version }, updateTs: this.tso.next().toString() }),
      );
      return added;
    });
  }

  /**
   * Adds a function output field with its function and its bound index in one catalog commit (Milvus
   * `addFunctionField`: AlterCollectionSchema with `func_schema` and the index in `extra_params`). The
   * caller has validated the function against the fields (input analyzed VarChar, output this field) and
   * the index against the field. Rows written before have no column for the output: segcore computes it
   * from their input text where they are read (`missingFieldColumn`'s function-output case), so every row
   * is searchable through the new field at once, and a compaction writes the computed column to disk.
   */
  async addFunctionField(
    dbName: string,
    collName: string,
    field: Omit<FieldSchema, 'fieldId'>,
    fn: FunctionSchema,
    index: { readonly name: string; readonly def: IndexDefinition },
  ): Promise<FieldSchema> {
    const added = await this.#ddl.run(async () => {
      const coll = this.catalog.resolveCollection(dbName, collName);
      const bad = (why: string): never => {
        throw quiverError('ParameterInvalid', `cannot add function field ${field.name} to collection ${coll.name}: ${why}`);
      };
      if (coll.schema.fields.some((f) => f.name === field.name)) bad(`a field named ${field.name} already exists`);
      if ((coll.schema.functions ?? []).some((f) => f.name === fn.name)) bad(`a function named ${fn.name} already exists`);
      if (!fn.outputFieldNames.includes(field.name)) bad(`function ${fn.name} does not output it`);
      if (field.isPrimaryKey || field.isPartitionKey || field.isClusteringKey || field.autoId) bad('a function output is a plain field');
      if (coll.schema.fields.filter((f) => !f.isDynamic).length >= FIELDS_MAX) bad(`a collection has at most ${FIELDS_MAX} fields`);
      if (this.catalog.indexes(coll.id).some((i) => i.name === index.name)) bad(`index name ${index.name} is already used`);
      const version = (coll.schema.version ?? 0) + 1;
      const fieldId = Math.max(99, ...coll.schema.fields.map((f) => f.fieldId)) + 1;
      const out: FieldSchema = { ...field, fieldId, addedInVersion: version };
      const fields = [...coll.schema.fields.filter((f) => !f.isDynamic), out, ...coll.schema.fields.filter((f) => f.isDynamic)];
      const functions = [...(coll.schema.functions ?? []), fn];
      const indexId = await this.ids.alloc();
      await this.#locks.withCollectionLock(coll.id, () =>
        this.#putCollection({ ...coll, schema: { ...coll.schema, fields, functions, version }, updateTs: this.tso.next().toString() }, [
          {
            type: 'putIndex',
            record: { ...index.def, id: indexId, collectionId: coll.id, fieldId, name: index.name, createdTs: this.tso.next().toString() },
          },
        ]),
      );
      return { out, collectionId: coll.id };
    });
    this.#onIndexCreated(added.collectionId);
    return added.out;
  }

  /**
   * Drops a schema function with its output fields and their indexes (Milvus `dropFunctionField`). Refused
   * while the collection is loaded, as dropping an index is. The output binlogs stay in old segments for
   * the snapshots that reference them, and are never read again (reads go by the schema's field ids).
   */
  async dropFunctionField(dbName: string, collName: string, functionName: string): Promise<void> {
    await this.#ddl.run(async () => {
      const coll = this.catalog.resolveCollection(dbName, collName);
      const fn = (coll.schema.functions ?? []).find((f) => f.name === functionName);
      if (!fn) throw quiverError('ParameterInvalid', `function ${functionName} not found in collection ${coll.name}`);
      if (coll.loaded) throw quiverError('ParameterInvalid', `cannot drop function ${fn.name} while collection ${coll.name} is loaded; release it first`);
      const outputs = coll.schema.fields.filter((f) => fn.outputFieldNames.includes(f.name));
      const outIds = new Set(outputs.map((f) => f.fieldId));
      const dropped = this.catalog.indexes(coll.id).filter((i) => outIds.has(i.fieldId));
      const droppedIds = new Set(dropped.map((i) => i.id));
      const version = (coll.schema.version ?? 0) + 1;
      const schema = {
        ...coll.schema,
        fields: coll.schema.fields.filter((f) => !outIds.has(f.fieldId)),
        functions: (coll.schema.functions ?? []).filter((f) => f !== fn),
        version,
      };
      await this.#locks.withCollectionLock(coll.id, async () => {
        // The schema change and the index definitions go first, in one commit (the drop takes effect); the
        // segments' entries of those indexes follow in batches, as dropIndex does.
        await this.#putCollection(
          { ...coll, schema, updateTs: this.tso.next().toString() },
          dropped.map((i) => ({ type: 'deleteIndex' as const, collectionId: coll.id, indexId: i.id })),
        );
        const changes: CatalogChange[] = [];
        const records: SegmentRecord[] = [];
        for (const seg of this.catalog.segments(coll.id)) {
          if (seg.state !== 'Flushed' || !seg.indexes.some((i) => droppedIds.has(i.indexId))) continue;
          const record = { ...seg, indexes: seg.indexes.filter((i) => !droppedIds.has(i.indexId)) };
          changes.push({ type: 'putSegment', record });
          records.push(record);
        }
        if (changes.length > 0) {
          await this.catalog.commitInBatches(changes);
          this.#events.segmentsCommitted(coll.id, records);
        }
      });
    });
  }

  /**
   * Drops a field (Milvus AlterCollectionSchema drop_request). Its binlogs stay in old segments (files are
   * immutable, and snapshots taken before still restore them) but are never read again: reads go by the
   * schema's field ids, and a field added later under the same name gets a new id.
   */
  async dropCollectionField(dbName: string, collName: string, by: { name?: string | undefined; id?: number | undefined }): Promise<void> {
    await this.#ddl.run(async () => {
      const coll = this.catalog.resolveCollection(dbName, collName);
      const field = coll.schema.fields.find((f) => !f.isDynamic && (by.name !== undefined ? f.name === by.name : f.fieldId === by.id));
      const label = by.name ?? `id ${by.id}`;
      if (!field) throw quiverError('FieldNotFound', `field not found[field=${label}][collection=${coll.name}]`);
      const refuse = (why: string): never => {
        throw quiverError('ParameterInvalid', `cannot drop field ${field.name} of collection ${coll.name}: ${why}`);
      };
      if (field.isPrimaryKey) refuse('it is the primary key');
      if (field.dataType === 'FloatVector') refuse('it is a vector field');
      if (field.isPartitionKey) refuse('it is the partition key');
      if (field.isClusteringKey) refuse('it is the clustering key');
      const idx = this.catalog.indexes(coll.id).find((i) => i.fieldId === field.fieldId);
      if (idx) refuse(`it has index ${idx.name}; drop the index first`);
      const version = (coll.schema.version ?? 0) + 1;
      const fields = coll.schema.fields.filter((f) => f !== field);
      await this.#locks.withCollectionLock(coll.id, () =>
        this.#putCollection({ ...coll, schema: { ...coll.schema, fields, version }, updateTs: this.tso.next().toString() }),
      );
    });
  }

  /**
   * Removes every row and keeps the schema, indexes, partitions and properties (Milvus TruncateCollection).
   * Atomic: the collection record's `truncatedTs` and the WAL checkpoint (everything logged so far is
   * behind it) commit first, in one transaction, and from then on no segment created at or before that ts
   * is live: the remaining batches mark them Dropped, and a crash between batches is finished at the next
   * start (`#finishInterruptedDrops`). Dropped segments' files stay for snapshots that reference them.
   */
  async truncateCollection(dbName: string, collName: string): Promise<void> {
    await this.#ddl.run(async () => {
      const coll = this.catalog.resolveCollection(dbName, collName);
      await this.#locks.withCollectionLock(coll.id, async () => {
        const truncatedTs = this.tso.next().toString();
        const record: CollectionRecord = { ...coll, truncatedTs, updateTs: truncatedTs };
        const now = this.#clock.nowMs();
        const changes: CatalogChange[] = [
          { type: 'putCollection', record },
          { type: 'putCheckpoint', collectionId: coll.id, position: this.#walEnd() },
        ];
        for (const seg of this.catalog.segments(coll.id)) {
          if (seg.state === 'Flushed') changes.push({ type: 'putSegment', record: { ...seg, state: 'Dropped', droppedAtMs: now } });
        }
        await this.catalog.commitInBatches(changes);
        this.#events.collectionChanged(record);
        // Every in-memory segment (growing, sealed, flushed) of every partition goes; the partitions stay.
        for (const p of coll.partitions) this.#events.partitionDropped(coll.id, p.id);
      });
    });
  }

  async createPartition(dbName: string, collName: string, name: string): Promise<void> {
    await this.#ddl.run(async () => {
      const coll = this.catalog.resolveCollection(dbName, collName);
      if (coll.partitions.some((p) => p.name === name)) throw quiverError('ParameterInvalid', `partition already exists: ${name}`);
      if (coll.partitions.length >= 1024)
        throw quiverError('ParameterInvalid', `partition number (1024) exceeds max configuration, collection: ${collName}`);
      const id = await this.ids.alloc();
      await this.#putCollection({ ...coll, partitions: [...coll.partitions, { id, name, createdTs: this.tso.next().toString() }] });
    });
  }

  async dropPartition(dbName: string, collName: string, name: string): Promise<void> {
    await this.#ddl.run(async () => {
      const coll = this.catalog.resolveCollection(dbName, collName);
      if (name === DEFAULT_PARTITION) throw quiverError('ParameterInvalid', 'default partition cannot be deleted');
      const p = coll.partitions.find((x) => x.name === name);
      if (!p) return;
      if (coll.loaded && (coll.loadedPartitions === undefined || coll.loadedPartitions.includes(p.id))) {
        throw quiverError('ParameterInvalid', `partition ${name} cannot be dropped, release it first`);
      }
      await this.#locks.withCollectionLock(coll.id, async () => {
        const changes: CatalogChange[] = [];
        const now = this.#clock.nowMs();
        for (const seg of this.catalog.segments(coll.id)) {
          if (seg.partitionId !== p.id || seg.state !== 'Flushed') continue;
          changes.push({ type: 'putSegment', record: { ...seg, state: 'Dropped', droppedAtMs: now } });
        }
        const record: CollectionRecord = { ...coll, partitions: coll.partitions.filter((x) => x.id !== p.id) };
        // A partition may hold any number of segments, so batches: the collection record without the
        // partition first (the drop takes effect: nothing reads segments of a partition that is gone),
        // then its segments marked Dropped for GC. Segments a crash or an error left Flushed are marked
        // by `#finishInterruptedDrops` at the next start.
        await this.catalog.commitInBatches([{ type: 'putCollection', record }, ...changes]);
        this.#events.collectionChanged(record);
        // Unflushed rows of the partition die with it; the WAL copies are skipped at replay because the
        // partition no longer exists.
        this.#events.partitionDropped(coll.id, p.id);
      });
    });
  }

  async createAlias(dbName: string, collName: string, alias: string): Promise<void> {
    await this.#ddl.run(async () => {
      const db = this.catalog.requireDatabase(dbName);
      const coll = this.catalog.collectionByName(db.id, collName);
      if (!coll) throw quiverError('CollectionNotFound', `collection not found[database=${dbName}][collection=${collName}]`);
      if (this.catalog.collectionByName(db.id, alias))
        throw quiverError('AliasCollectionNameConflict', `alias ${alias} conflicts with an existing collection name`);
      const existing = this.catalog.alias(db.id, alias);
      if (existing) {
        if (existing.collectionId === coll.id) return;
        throw quiverError('AliasAlreadyExist', `alias ${alias} already exists and points to another collection`);
      }
      await this.catalog.commit([{ type: 'putAlias', record: { dbId: db.id, alias, collectionId: coll.id } }]);
    });
  }

  async alterAlias(dbName: string, collName: string, alias: string): Promise<void> {
    await this.#ddl.run(async () => {
      const db = this.catalog.requireDatabase(dbName);
      const coll = this.catalog.collectionByName(db.id, collName);
      if (!coll) throw quiverError('CollectionNotFound', `collection not found[database=${dbName}][collection=${collName}]`);
      if (!this.catalog.alias(db.id, alias)) throw quiverError('AliasNotFound', `alias not found[database=${dbName}][alias=${alias}]`);
      await this.catalog.commit([{ type: 'putAlias', record: { dbId: db.id, alias, collectionId: coll.id } }]);
    });
  }

  async dropAlias(dbName: string, alias: string): Promise<void> {
    await this.#ddl.run(async () => {
      const db = this.catalog.requireDatabase(dbName);
      if (!this.catalog.alias(db.id, alias)) return;
      await this.catalog.commit([{ type: 'deleteAlias', dbId: db.id, alias }]);
    });
  }

  async createIndex(collectionId: number, field: FieldSchema, name: string, def: IndexDefinition): Promise<void> {
    await this.#ddl.run(async () => {
      const coll = this.#created(collectionId);
      const existing = this.catalog.indexes(collectionId);
      // A JSON field may hold one path index per json_path (Milvus); any other field one index.
      const pathOf = (p: IndexDefinition['buildParams']): string => JSON.stringify(p.jsonPath ?? null);
      const sameField = existing.find((i) => i.fieldId === field.fieldId && pathOf(i.buildParams) === pathOf(def.buildParams));
      if (sameField) {
        const same =
          sameField.name === name &&
          sameField.indexType === def.indexType &&
          sameField.metric === def.metric &&
          JSON.stringify(sameField.buildParams) === JSON.stringify(def.buildParams);
        if (same) return;
        throw quiverError(
          'IndexDuplicate',
          `at most one distinct index is allowed per field; field ${field.name} already has index ${sameField.name} (${sameField.indexType}, ${sameField.metric})`,
        );
      }
      if (existing.some((i) => i.name === name)) throw quiverError('IndexDuplicate', `index name ${name} is already used in collection ${coll.name}`);
      const id = await this.ids.alloc();
      await this.catalog.commit([
        { type: 'putIndex', record: { ...def, id, collectionId, fieldId: field.fieldId, name, createdTs: this.tso.next().toString() } },
      ]);
    });
    this.#created(collectionId);
    this.#onIndexCreated(collectionId);
  }

  /**
   * Alters an index's properties (Milvus AlterIndex): only those that change how a built index is served,
   * never how it is built (that would make existing index files disagree with their definition).
   */
  async alterIndexProperties(collectionId: number, indexId: number, set: Record<string, string>, deleteKeys: readonly string[]): Promise<IndexRecord> {
    return this.#ddl.run(async () => {
      this.#created(collectionId);
      const index = this.catalog.indexes(collectionId).find((i) => i.id === indexId);
      if (!index) throw quiverError('IndexNotFound', `index not found[indexID=${indexId}]`);
      for (const k of [...Object.keys(set), ...deleteKeys]) {
        if (!ALTERABLE_INDEX_KEYS.includes(k)) {
          throw quiverError(
            'ParameterInvalid',
            `index property ${k} of index ${index.name} cannot be altered; alterable: ${ALTERABLE_INDEX_KEYS.join(', ')} (drop and re-create the index to change how it is built)`,
          );
        }
      }
      const mmap = set['mmap.enabled'];
      if (mmap !== undefined && !['true', 'false'].includes(mmap.toLowerCase())) {
        throw quiverError('ParameterInvalid', `mmap.enabled ${JSON.stringify(mmap)} of index ${index.name} is invalid: must be true or false`);
      }
      const userParams: Record<string, string> = { ...index.userParams, ...set };
      for (const k of deleteKeys) delete userParams[k];
      const record: IndexRecord = { ...index, userParams };
      await this.catalog.commit([{ type: 'putIndex', record }]);
      return record;
    });
  }

  async dropIndex(collectionId: number, index: IndexRecord): Promise<void> {
    await this.#ddl.run(async () => {
      const coll = this.#created(collectionId);
      if (coll.loaded) throw quiverError('ParameterInvalid', `index cannot be dropped, collection is loaded, please release it first`);
      await this.#locks.withCollectionLock(collectionId, async () => {
        const changes: CatalogChange[] = [{ type: 'deleteIndex', collectionId, indexId: index.id }];
        const records: SegmentRecord[] = [];
        for (const seg of this.catalog.segments(collectionId)) {
          if (seg.state !== 'Flushed' || !seg.indexes.some((i) => i.indexId === index.id)) continue;
          const record = { ...seg, indexes: seg.indexes.filter((i) => i.indexId !== index.id) };
          changes.push({ type: 'putSegment', record });
          records.push(record);
        }
        // One record per indexed segment, so batches: the index definition is deleted first (the drop
        // takes effect), then each segment's entry of it. Entries a crash or an error left are removed
        // by `#finishInterruptedDrops` at the next start; until then they only keep their files from GC.
        await this.catalog.commitInBatches(changes);
        this.#events.segmentsCommitted(collectionId, records);
      });
    });
  }
}
