/**
 * The protection hook of the garbage collector. Before GC deletes a segment's files or meta, or an
 * orphan file, it asks the guard whether anything (a snapshot, a restore in flight, later features)
 * still needs that segment, index build or collection.
 *
 * Fail-closed: a guard that has not yet loaded its references (say the snapshot RefIndex right after a
 * restart) answers `isReady(c) === false`, and GC then deletes nothing of collection `c`. A "not
 * referenced" answer from a guard that is not ready would be a guess, and a wrong guess loses data that
 * a snapshot promised to keep; a "keep" answer only delays reclaiming space.
 *
 * Answers must be synchronous and cheap: GC asks once per candidate segment and per orphan key.
 */

export interface ReferenceGuard {
  /** false until the guard has loaded its references (e.g. after a restart). While false for a collection, GC deletes nothing of it. */
  isReady(collectionId: number): boolean;
  isSegmentReferenced(collectionId: number, segmentId: number): boolean;
  isBuildReferenced(buildId: number): boolean;
  /**
   * Optional: the collection record itself is still needed although none of its segments is, e.g. a
   * snapshot of an empty collection still needs the schema to restore. A Dropped collection whose
   * record is referenced keeps its record (its unreferenced segments are still reclaimed).
   */
  isCollectionReferenced?(collectionId: number): boolean;
}

/** Always ready, nothing referenced: GC without snapshots. */
export const NO_REFERENCES: ReferenceGuard = Object.freeze({
  isReady: () => true,
  isSegmentReferenced: () => false,
  isBuildReferenced: () => false,
  isCollectionReferenced: () => false,
});

/**
 * One guard out of several: ready only when every guard is ready, referenced when any guard says so.
 * With no guards it behaves as NO_REFERENCES.
 */
export function combineGuards(...guards: readonly ReferenceGuard[]): ReferenceGuard {
  const list = [...guards];
  if (list.length === 0) return NO_REFERENCES;
  if (list.length === 1 && list[0] !== undefined) return list[0];
  return Object.freeze({
    isReady: (collectionId: number) => list.every((g) => g.isReady(collectionId)),
    isSegmentReferenced: (collectionId: number, segmentId: number) => list.some((g) => g.isSegmentReferenced(collectionId, segmentId)),
    isBuildReferenced: (buildId: number) => list.some((g) => g.isBuildReferenced(buildId)),
    isCollectionReferenced: (collectionId: number) => list.some((g) => g.isCollectionReferenced?.(collectionId) ?? false),
  });
}
