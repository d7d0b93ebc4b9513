/** Test-only helpers: a GC wired over memory backends, with segments whose files really exist. */
import { FakeClock } from '../../common/clock.js';
import { MemoryMetaKV } from '../../meta/memory-kv.js';
import { FaultyObjectStore } from '../../storage/faulty-object-store.js';
import { MemoryObjectStore } from '../../storage/memory-object-store.js';
import { collectionRecord, segmentRecord, type SegmentSpec } from '../../testing/index.js';
import { Catalog } from '../catalog.js';
import type { CollectionRecord, SegmentRecord } from '../records.js';
import { GarbageCollector, type GcOptions } from './garbage-collector.js';
import { InMemoryReferenceGuard } from './in-memory-reference-guard.js';
import { segmentFiles } from './segment-files.js';

export const MINUTE_MS = 60_000;
export const HOUR_MS = 60 * MINUTE_MS;

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
