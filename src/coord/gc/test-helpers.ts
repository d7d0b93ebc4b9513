/** Test-only helpers: records with real object keys, and a GC wired over memory backends. */
import { FakeClock } from '../../common/clock.js';
import { MemoryMetaKV } from '../../meta/memory-kv.js';
import { FaultyObjectStore } from '../../storage/faulty-object-store.js';
import { MemoryObjectStore } from '../../storage/memory-object-store.js';
import { deltaLogKey, indexFileKey, insertLogKey, statsLogKey } from '../../storage/paths.js';
import { Catalog } from '../catalog.js';
import type { Binlog, CollectionRecord, SegmentRecord, SegmentState } from '../records.js';
import { GarbageCollector, type GcOptions } from './garbage-collector.js';
import { InMemoryReferenceGuard } from './in-memory-reference-guard.js';
import { segmentFiles } from './segment-files.js';

export const PARTITION_ID = 7;
export const MINUTE_MS = 60_000;
export const HOUR_MS = 60 * MINUTE_MS;

export function collectionRecord(id: number, state: 'Created' | 'Dropped' = 'Created', droppedAtMs?: number): CollectionRecord {
  return {
    id,
    dbId: 1,
    name: `c${id}`,
    schema: { name: `c${id}`, description: '', autoId: false, enableDynamicField: false, fields: [] },
    shardsNum: 1,
    consistencyLevel: 'Bounded',
    properties: {},
    partitions: [{ id: PARTITION_ID, name: '_default', createdTs: '1' }],
    createdTs: '1',
    updateTs: '1',
    state,
    droppedAtMs,
    loaded: false,
  };
}

export interface SegmentSpec {
  readonly collectionId: number;
  readonly id: number;
  readonly state?: SegmentState;
  readonly droppedAtMs?: number;
  /** Insert binlog fields (default [1, 100, 101]). */
  readonly fieldIds?: readonly number[];
  readonly deltalogs?: number;
  /** Adds one index entry with this build id and two files. */
  readonly buildId?: number;
}

function binlog(path: string, logId: number, size: number): Binlog {
  return { logId, path, entries: 10, tsFrom: '1', tsTo: '2', size };
}

export function segmentRecord(spec: SegmentSpec): SegmentRecord {
  const { collectionId: c, id: s } = spec;
  const p = PARTITION_ID;
  const binlogs: Record<string, Binlog[]> = {};
  let logId = 1;
  for (const f of spec.fieldIds ?? [1, 100, 101]) binlogs[String(f)] = [binlog(insertLogKey(c, p, s, f, logId), logId++, 100 + f)];
  const deltalogs = Array.from({ length: spec.deltalogs ?? 1 }, () => binlog(deltaLogKey(c, p, s, logId), logId++, 30));
  const statslogs = [binlog(statsLogKey(c, p, s, 100, logId), logId++, 20)];
  const indexes =
    spec.buildId === undefined
      ? []
      : [{ indexId: 900, buildId: spec.buildId, version: 1, size: 500, files: [indexFileKey(spec.buildId, 1, p, s, 'hnsw.bin'), indexFileKey(spec.buildId, 1, p, s, 'meta.json')] }];
  return {
    id: s,
    collectionId: c,
    partitionId: p,
    state: spec.state ?? 'Flushed',
    numRows: 10,
    binlogs,
    deltalogs,
    statslogs,
    indexes,
    droppedAtMs: spec.droppedAtMs,
    createdTs: '1',
  };
}

/** Clock, memory store behind a FaultyObjectStore (healthy until told otherwise), catalog over memory KV, guard. */
export class GcEnv {
  readonly clock = new FakeClock();
  readonly memory = new MemoryObjectStore({ clock: this.clock });
  readonly store = new FaultyObjectStore(this.memory, { failOn: () => false });
  readonly kv = new MemoryMetaKV();
  readonly catalog = new Catalog(this.kv);
  readonly guard = new InMemoryReferenceGuard();
  readonly logs: { msg: string; extra?: object | undefined }[] = [];
  readonly inUse = new Set<string>();

  gc(opts: GcOptions = {}): GarbageCollector {
    return new GarbageCollector(
      {
        catalog: this.catalog,
        store: this.store,
        clock: this.clock,
        guard: this.guard,
        log: (msg, extra) => this.logs.push({ msg, extra }),
        isSegmentInUse: (c, s) => this.inUse.has(`${c}/${s}`),
      },
      { droppedGraceMs: 10 * MINUTE_MS, orphanGraceMs: 24 * HOUR_MS, ...opts },
    );
  }

  async createCollection(id: number): Promise<CollectionRecord> {
    const record = collectionRecord(id);
    await this.catalog.commit([
      { type: 'putCollection', record },
      { type: 'putCheckpoint', collectionId: id, position: 0 },
    ]);
    return record;
  }

  async dropCollection(id: number): Promise<void> {
    const record = this.catalog.collectionIncludingDropped(id);
    if (!record) throw new Error(`no collection ${id}`);
    await this.catalog.commit([{ type: 'putCollection', record: { ...record, state: 'Dropped', droppedAtMs: this.clock.nowMs() } }]);
  }

  /** Writes the segment's files, then commits its record (the flush order). */
  async createSegment(spec: SegmentSpec): Promise<SegmentRecord> {
    const record = segmentRecord(spec);
    for (const f of segmentFiles(record)) await this.memory.put(f.key, new Uint8Array(Math.max(1, f.size)));
    await this.catalog.commit([{ type: 'putSegment', record }]);
    return record;
  }

  async dropSegment(collectionId: number, segmentId: number): Promise<void> {
    const record = this.catalog.segment(collectionId, segmentId);
    if (!record) throw new Error(`no segment ${collectionId}/${segmentId}`);
    await this.catalog.commit([{ type: 'putSegment', record: { ...record, state: 'Dropped', droppedAtMs: this.clock.nowMs() } }]);
  }

  async keys(): Promise<string[]> {
    return (await this.memory.list('')).map((o) => o.key);
  }

  async has(key: string): Promise<boolean> {
    return (await this.memory.stat(key)) !== undefined;
  }

  async hasAll(record: SegmentRecord): Promise<boolean> {
    for (const f of segmentFiles(record)) if (!(await this.has(f.key))) return false;
    return true;
  }

  async hasNone(record: SegmentRecord): Promise<boolean> {
    for (const f of segmentFiles(record)) if (await this.has(f.key)) return false;
    return true;
  }
}
