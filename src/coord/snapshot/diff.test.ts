import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { encodeColumn, encodeDeltas } from '../../storage/binlog.js';
import { MemoryObjectStore } from '../../storage/memory-object-store.js';
import { deltaLogKey, insertLogKey } from '../../storage/paths.js';
import type { Binlog, SegmentRecord } from '../records.js';
import { diffSegments, type DiffChange } from './diff.js';

const C = 1;
const P = 7;
const PK = { fieldId: 100, dataType: 'Int64' as const };

interface Row {
  readonly pk: bigint;
  readonly ts: bigint;
  deleted: boolean;
}

interface Seg {
  readonly id: number;
  readonly rows: Row[];
  pending: { pk: bigint; ts: bigint }[];
  record: SegmentRecord;
}

/**
 * A collection the way segcore keeps one: a growing buffer, flushed segments with immutable binlogs,
 * deletes recorded per row they hit and written as a new deltalog of that row's segment at the next
 * flush, compactions that rewrite the live rows (with their timestamps) of two segments into a new one.
 * `visible` is the model: pk → timestamp of its visible row.
 */
class World {
  readonly store = new MemoryObjectStore();
  readonly segs = new Map<number, Seg>();
  growing: Row[] = [];
  growingPending: { pk: bigint; ts: bigint }[] = [];
  readonly visible = new Map<bigint, bigint>();
  #ts = 100n;
  #id = 1;

  upsert(pk: bigint): void {
    const ts = this.#ts++;
    this.#deleteAt(pk, ts);
    this.growing.push({ pk, ts, deleted: false });
    this.visible.set(pk, ts);
  }

  delete(pk: bigint): void {
    this.#deleteAt(pk, this.#ts++);
    this.visible.delete(pk);
  }

  #deleteAt(pk: bigint, ts: bigint): void {
    for (const s of this.segs.values()) {
      for (const r of s.rows) {
        if (!r.deleted && r.pk === pk && r.ts < ts) {
          r.deleted = true;
          s.pending.push({ pk, ts });
        }
      }
    }
    for (const r of this.growing) {
      if (!r.deleted && r.pk === pk && r.ts < ts) {
        r.deleted = true;
        this.growingPending.push({ pk, ts });
      }
    }
  }

  async flush(): Promise<void> {
    for (const s of this.segs.values()) {
      if (s.pending.length === 0) continue;
      const log = await this.#deltalog(s.id, s.pending);
      s.pending = [];
      s.record = { ...s.record, deltalogs: [...s.record.deltalogs, log] };
    }
    if (this.growing.length === 0) return;
    const rows = this.growing;
    const pending = this.growingPending;
    this.growing = [];
    this.growingPending = [];
    const seg = await this.#segment(rows);
    if (pending.length > 0) seg.record = { ...seg.record, deltalogs: [await this.#deltalog(seg.id, pending)] };
  }

  async compact(pick: number): Promise<void> {
    await this.flush();
    const ids = [...this.segs.keys()];
    if (ids.length < 2) return;
    const x = this.segs.get(ids[pick % ids.length]!)!;
    const y = this.segs.get(ids[(pick + 1) % ids.length]!)!;
    const live = [...x.rows, ...y.rows].filter((r) => !r.deleted).map((r) => ({ ...r }));
    this.segs.delete(x.id);
    this.segs.delete(y.id);
    if (live.length > 0) await this.#segment(live);
  }

  /** The segment records a snapshot taken now would hold. */
  async snapshot(): Promise<{ segments: SegmentRecord[]; visible: Map<bigint, bigint> }> {
    await this.flush();
    return { segments: [...this.segs.values()].map((s) => s.record), visible: new Map(this.visible) };
  }

  async #segment(rows: Row[]): Promise<Seg> {
    const id = this.#id++;
    const pkKey = insertLogKey(C, P, id, 100, this.#id++);
    const tsKey = insertLogKey(C, P, id, 1, this.#id++);
    const pkBytes = encodeColumn({ kind: 'int64', data: BigInt64Array.from(rows.map((r) => r.pk)) });
    const tsBytes = encodeColumn({ kind: 'int64', data: BigInt64Array.from(rows.map((r) => r.ts)) });
    await this.store.put(pkKey, pkBytes);
    await this.store.put(tsKey, tsBytes);
    const log = (path: string, size: number): Binlog => ({ logId: 0, path, entries: rows.length, tsFrom: '0', tsTo: '0', size });
    const record: SegmentRecord = {
      id,
      collectionId: C,
      partitionId: P,
      state: 'Flushed',
      numRows: rows.length,
      binlogs: { '1': [log(tsKey, tsBytes.byteLength)], '100': [log(pkKey, pkBytes.byteLength)] },
      deltalogs: [],
      statslogs: [],
      indexes: [],
      createdTs: '0',
    };
    const seg: Seg = { id, rows, pending: [], record };
    this.segs.set(id, seg);
    return seg;
  }

  async #deltalog(segId: number, deletes: { pk: bigint; ts: bigint }[]): Promise<Binlog> {
    const path = deltaLogKey(C, P, segId, this.#id++);
    const bytes = encodeDeltas(BigInt64Array.from(deletes.map((d) => d.pk)), BigInt64Array.from(deletes.map((d) => d.ts)));
    await this.store.put(path, bytes);
    return { logId: 0, path, entries: deletes.length, tsFrom: '0', tsTo: '0', size: bytes.byteLength };
  }
}

/** The naive diff: both sides' visible rows in full. */
function naiveDiff(a: Map<bigint, bigint>, b: Map<bigint, bigint>): DiffChange[] {
  const out: DiffChange[] = [];
  for (const [pk, ts] of b) {
    const before = a.get(pk);
    if (before === undefined) out.push({ op: 'insert', pk });
    else if (before !== ts) out.push({ op: 'update', pk });
  }
  for (const pk of a.keys()) if (!b.has(pk)) out.push({ op: 'delete', pk });
  return out.sort((x, y) => (x.pk < y.pk ? -1 : x.pk > y.pk ? 1 : 0));
}

type Action =
  | { readonly t: 'upsert'; readonly pk: number }
  | { readonly t: 'delete'; readonly pk: number }
  | { readonly t: 'flush' }
  | { readonly t: 'compact'; readonly pick: number }
  | { readonly t: 'snapshot' };

const action: fc.Arbitrary<Action> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ t: fc.constant('upsert' as const), pk: fc.integer({ min: 0, max: 25 }) }) },
  { weight: 3, arbitrary: fc.record({ t: fc.constant('delete' as const), pk: fc.integer({ min: 0, max: 25 }) }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('flush' as const) }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('compact' as const), pick: fc.nat() }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('snapshot' as const) }) },
);

describe('snapshot diff', () => {
  it('agrees with a naive full-scan diff between any two points of random histories', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(action, { minLength: 1, maxLength: 60 }), async (actions) => {
        const w = new World();
        const points = [await w.snapshot()];
        for (const a of actions) {
          if (a.t === 'upsert') w.upsert(BigInt(a.pk));
          else if (a.t === 'delete') w.delete(BigInt(a.pk));
          else if (a.t === 'flush') await w.flush();
          else if (a.t === 'compact') await w.compact(a.pick);
          else points.push(await w.snapshot());
        }
        points.push(await w.snapshot()); // "now"
        for (let i = 0; i < points.length; i++) {
          for (const j of [i, points.length - 1, (i + 1) % points.length]) {
            const got = await diffSegments(w.store, PK, points[i]!.segments, points[j]!.segments);
            expect(got.changes).toEqual(naiveDiff(points[i]!.visible, points[j]!.visible));
            expect(got.inserted + got.deleted + got.updated).toBe(got.changes.length);
          }
        }
      }),
      { numRuns: 150 },
    );
  });

  it('reads only what changed: unchanged segments are skipped, a compaction that moved rows is no change', async () => {
    const w = new World();
    for (let i = 0; i < 40; i++) w.upsert(BigInt(i));
    await w.flush();
    for (let i = 40; i < 80; i++) w.upsert(BigInt(i));
    const a = await w.snapshot();
    w.delete(3n);
    w.upsert(50n);
    const b = await w.snapshot();
    const d = await diffSegments(w.store, PK, a.segments, b.segments);
    expect(d.changes).toEqual([
      { op: 'delete', pk: 3n },
      { op: 'update', pk: 50n },
    ]);
    // Two old segments gained one deltalog each; only the new segment (the upserted row) was read.
    expect({ read: d.segmentsRead, deltalogs: d.deltalogsRead, skipped: d.segmentsSkipped }).toEqual({ read: 1, deltalogs: 2, skipped: 0 });
    await w.compact(0);
    const c = await w.snapshot();
    expect((await diffSegments(w.store, PK, b.segments, c.segments)).changes).toEqual([]);
    expect((await diffSegments(w.store, PK, c.segments, c.segments)).segmentsSkipped).toBe(c.segments.length);
  });
});
