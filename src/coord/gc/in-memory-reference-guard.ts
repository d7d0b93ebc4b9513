import { assert } from '../../common/errors.js';
import type { ReferenceGuard } from './reference-guard.js';

/**
 * A ReferenceGuard held in memory with explicit reference counts and per-collection readiness: the test
 * double of the snapshot RefIndex, and a ready-made guard for any in-process holder (a restore job
 * pinning its source segments). Counts, not flags: two snapshots may reference one segment, and dropping
 * one of them must not release the other's hold.
 */
export class InMemoryReferenceGuard implements ReferenceGuard {
  readonly #segments = new Map<string, number>();
  readonly #builds = new Map<number, number>();
  readonly #collections = new Map<number, number>();
  /** Per-collection overrides of `#readyByDefault`. */
  readonly #ready = new Map<number, boolean>();
  #readyByDefault: boolean;

  constructor(options: { readonly readyByDefault?: boolean | undefined } = {}) {
    this.#readyByDefault = options.readyByDefault ?? true;
  }

  isReady(collectionId: number): boolean {
    return this.#ready.get(collectionId) ?? this.#readyByDefault;
  }
  isSegmentReferenced(collectionId: number, segmentId: number): boolean {
    return (this.#segments.get(segKey(collectionId, segmentId)) ?? 0) > 0;
  }
  isBuildReferenced(buildId: number): boolean {
    return (this.#builds.get(buildId) ?? 0) > 0;
  }
  isCollectionReferenced(collectionId: number): boolean {
    return (this.#collections.get(collectionId) ?? 0) > 0;
  }

  setReady(collectionId: number, ready: boolean): void {
    this.#ready.set(collectionId, ready);
  }
  /** Readiness of every collection without an override of its own (and clears all overrides). */
  setAllReady(ready: boolean): void {
    this.#ready.clear();
    this.#readyByDefault = ready;
  }

  referenceSegment(collectionId: number, segmentId: number): void {
    inc(this.#segments, segKey(collectionId, segmentId));
  }
  releaseSegment(collectionId: number, segmentId: number): void {
    dec(this.#segments, segKey(collectionId, segmentId), `segment ${collectionId}/${segmentId}`);
  }
  referenceBuild(buildId: number): void {
    inc(this.#builds, buildId);
  }
  releaseBuild(buildId: number): void {
    dec(this.#builds, buildId, `build ${buildId}`);
  }
  referenceCollection(collectionId: number): void {
    inc(this.#collections, collectionId);
  }
  releaseCollection(collectionId: number): void {
    dec(this.#collections, collectionId, `collection ${collectionId}`);
  }
}

function segKey(collectionId: number, segmentId: number): string {
  return `${collectionId}/${segmentId}`;
}

function inc<K>(m: Map<K, number>, k: K): void {
  m.set(k, (m.get(k) ?? 0) + 1);
}

function dec<K>(m: Map<K, number>, k: K, what: string): void {
  const n = m.get(k) ?? 0;
  // Releasing more than was referenced is a bookkeeping bug in the caller; it would silently unprotect
  // a hold taken by someone else, so it crashes instead.
  assert(n > 0, `release of ${what} that is not referenced`);
  if (n === 1) m.delete(k);
  else m.set(k, n - 1);
}
