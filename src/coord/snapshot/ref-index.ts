import type { ReferenceGuard } from '../gc/reference-guard.js';

/**
 * RefIndex: the segment ids and index build ids each snapshot references, answering GC's "is this still
 * needed?". Fail-closed: until `markLoaded()` (after every snapshot record was read at start) it says
 * "not ready" for every collection, so GC deletes nothing.
 *
 * Snapshots in every state count (PENDING ones too: a create in flight has already chosen its segments),
 * and a create registers its segments here before it releases the collection lock, so there is no
 * window in which a chosen segment is unprotected.
 */
export class RefIndex implements ReferenceGuard {
  readonly #bySnapshot = new Map<number, { collectionId: number; segments: ReadonlySet<number>; builds: ReadonlySet<number> }>();
  readonly #segmentRefs = new Map<string, number>();
  readonly #buildRefs = new Map<number, number>();
  readonly #collectionRefs = new Map<number, number>();
  #loaded = false;

  markLoaded(): void {
    this.#loaded = true;
  }

  get loaded(): boolean {
    return this.#loaded;
  }

  add(snapshotId: number, collectionId: number, segmentIds: readonly number[], buildIds: readonly number[]): void {
    this.remove(snapshotId);
    const segments = new Set(segmentIds);
    const builds = new Set(buildIds);
    this.#bySnapshot.set(snapshotId, { collectionId, segments, builds });
    for (const s of segments) inc(this.#segmentRefs, `${collectionId}/${s}`);
    for (const b of builds) inc(this.#buildRefs, b);
    inc(this.#collectionRefs, collectionId);
  }

  remove(snapshotId: number): void {
    const e = this.#bySnapshot.get(snapshotId);
    if (!e) return;
    this.#bySnapshot.delete(snapshotId);
    for (const s of e.segments) dec(this.#segmentRefs, `${e.collectionId}/${s}`);
    for (const b of e.builds) dec(this.#buildRefs, b);
    dec(this.#collectionRefs, e.collectionId);
  }

  isReady(): boolean {
    return this.#loaded;
  }

  isSegmentReferenced(collectionId: number, segmentId: number): boolean {
    return this.#segmentRefs.has(`${collectionId}/${segmentId}`);
  }

  isBuildReferenced(buildId: number): boolean {
    return this.#buildRefs.has(buildId);
  }

  isCollectionReferenced(collectionId: number): boolean {
    return this.#collectionRefs.has(collectionId);
  }

  referencedSegments(collectionId: number): number[] {
    const out: number[] = [];
    for (const e of this.#bySnapshot.values()) if (e.collectionId === collectionId) out.push(...e.segments);
    return [...new Set(out)];
  }
}

function inc<K>(m: Map<K, number>, k: K): void {
  m.set(k, (m.get(k) ?? 0) + 1);
}

function dec<K>(m: Map<K, number>, k: K): void {
  const n = (m.get(k) ?? 0) - 1;
  if (n <= 0) m.delete(k);
  else m.set(k, n);
}
