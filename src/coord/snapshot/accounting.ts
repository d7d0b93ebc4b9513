import type { SegmentRecord } from '../records.js';
import { segmentFiles } from '../gc/segment-files.js';
import type { SnapshotRecord } from './snapshot-store.js';

/**
 * Snapshot storage accounting: which bytes each snapshot keeps alive.
 *
 * Files are immutable and shared: a snapshot names segment records, the live collection names its own,
 * and one file (a binlog of a segment never compacted since) is usually named by both. So bytes are
 * attributed per file key, with the sizes GC itself attributes (`segmentFiles`: a binlog's own size, an
 * index entry's total on its first file), which is what makes the numbers agree with what GC frees:
 * - referenced: every file the snapshot names;
 * - exclusive: files the snapshot names that neither the live collection (its non-Dropped segments) nor
 *   any other snapshot names: dropping the snapshot lets GC delete exactly these;
 * - per collection, kept alive by snapshots: files some snapshot names and the live collection does not.
 * The snapshot's own metadata file and manifests (kilobytes, deleted by the drop itself) are not counted.
 */

export interface SnapshotUsage {
  readonly snapshotId: number;
  readonly name: string;
  readonly createdAtMs: number;
  readonly referencedBytes: number;
  readonly exclusiveBytes: number;
}

export interface CollectionUsage {
  /** Bytes of the live collection's files (its segments that are not Dropped). */
  readonly liveBytes: number;
  /** Bytes that only snapshots keep: what dropping every snapshot would let GC free. */
  readonly snapshotOnlyBytes: number;
  readonly snapshots: readonly SnapshotUsage[];
}

export interface SnapshotSegments {
  readonly record: Pick<SnapshotRecord, 'id' | 'name' | 'createdAtMs'>;
  readonly segments: readonly SegmentRecord[];
}

/**
 * Pure: the collection's segment records as the catalog holds them (Dropped ones included) and each
 * snapshot's segment records as its manifests hold them.
 *
 * A Dropped segment a snapshot names keeps its whole current record alive in GC (files and meta), which
 * may list deltalogs written after the snapshot: those count for the snapshot too.
 */
export function computeUsage(catalogSegments: readonly SegmentRecord[], snapshots: readonly SnapshotSegments[]): CollectionUsage {
  const size = new Map<string, number>();
  const live = new Set<string>();
  const dropped = new Map<number, SegmentRecord>();
  for (const seg of catalogSegments) {
    if (seg.state === 'Dropped') {
      dropped.set(seg.id, seg);
      continue;
    }
    for (const f of segmentFiles(seg)) {
      live.add(f.key);
      size.set(f.key, f.size);
    }
  }
  // key → how many snapshots name it
  const owners = new Map<string, number>();
  const perSnapshot = snapshots.map((s) => {
    const keys = new Set<string>();
    for (const seg of s.segments) {
      const current = dropped.get(seg.id);
      for (const f of [...segmentFiles(seg), ...(current ? segmentFiles(current) : [])]) {
        keys.add(f.key);
        if (!size.has(f.key)) size.set(f.key, f.size);
      }
    }
    for (const k of keys) owners.set(k, (owners.get(k) ?? 0) + 1);
    return keys;
  });
  const sum = (keys: Iterable<string>) => {
    let n = 0;
    for (const k of keys) n += size.get(k) ?? 0;
    return n;
  };
  const usage = snapshots.map((s, i) => {
    const keys = perSnapshot[i]!;
    let exclusive = 0;
    for (const k of keys) if (!live.has(k) && owners.get(k) === 1) exclusive += size.get(k) ?? 0;
    return { snapshotId: s.record.id, name: s.record.name, createdAtMs: s.record.createdAtMs, referencedBytes: sum(keys), exclusiveBytes: exclusive };
  });
  let snapshotOnly = 0;
  for (const k of owners.keys()) if (!live.has(k)) snapshotOnly += size.get(k) ?? 0;
  return { liveBytes: sum(live), snapshotOnlyBytes: snapshotOnly, snapshots: usage };
}

/** What `SnapshotAccounting` needs: the live segments and the snapshots with their manifests. */
export interface AccountingDeps {
  /** Every segment record of the collection, Dropped ones included. */
  segments(collectionId: number): readonly SegmentRecord[];
  listCommitted(collectionId: number): Promise<SnapshotRecord[]>;
  /** The segment records a snapshot's manifests hold. */
  readSegments(rec: SnapshotRecord): Promise<readonly SegmentRecord[]>;
}

/** Snapshots beyond this many per collection have their manifests re-read on each call instead of cached. */
const CACHED_SNAPSHOTS_MAX = 4096;

/**
 * `computeUsage` over the stored state. A snapshot's manifests never change, so the segment lists read
 * from them are cached by snapshot id (bounded) and a scrape re-reads only new snapshots.
 */
export class SnapshotAccounting {
  readonly #deps: AccountingDeps;
  readonly #cache = new Map<number, readonly SegmentRecord[]>();

  constructor(deps: AccountingDeps) {
    this.#deps = deps;
  }

  async collection(collectionId: number): Promise<CollectionUsage> {
    const recs = await this.#deps.listCommitted(collectionId);
    const snaps: SnapshotSegments[] = [];
    for (const r of recs) {
      let segs = this.#cache.get(r.id);
      if (segs === undefined) {
        segs = await this.#deps.readSegments(r);
        if (this.#cache.size < CACHED_SNAPSHOTS_MAX) this.#cache.set(r.id, segs);
      }
      snaps.push({ record: r, segments: segs });
    }
    // Forget dropped snapshots of this collection (ids are never reused).
    const ids = new Set(recs.map((r) => r.id));
    for (const [id, segs] of this.#cache) if (segs[0]?.collectionId === collectionId && !ids.has(id)) this.#cache.delete(id);
    return computeUsage(this.#deps.segments(collectionId), snaps);
  }
}
