import { describe, expect, it } from 'vitest';
import { InMemoryReferenceGuard } from './in-memory-reference-guard.js';
import { combineGuards, NO_REFERENCES } from './reference-guard.js';

describe('ReferenceGuard', () => {
  it('NO_REFERENCES is always ready and references nothing', () => {
    expect(NO_REFERENCES.isReady(1)).toBe(true);
    expect(NO_REFERENCES.isSegmentReferenced(1, 2)).toBe(false);
    expect(NO_REFERENCES.isBuildReferenced(3)).toBe(false);
    expect(NO_REFERENCES.isCollectionReferenced?.(1)).toBe(false);
  });

  it('combineGuards is ready only when all are, referenced when any is', () => {
    const a = new InMemoryReferenceGuard();
    const b = new InMemoryReferenceGuard();
    const g = combineGuards(a, b, NO_REFERENCES);
    expect(g.isReady(1)).toBe(true);
    b.setReady(1, false);
    expect(g.isReady(1)).toBe(false);
    expect(g.isReady(2)).toBe(true);
    a.referenceSegment(1, 10);
    b.referenceBuild(7);
    b.referenceCollection(4);
    expect(g.isSegmentReferenced(1, 10)).toBe(true);
    expect(g.isSegmentReferenced(1, 11)).toBe(false);
    expect(g.isBuildReferenced(7)).toBe(true);
    expect(g.isCollectionReferenced?.(4)).toBe(true);
    expect(g.isCollectionReferenced?.(5)).toBe(false);
    // A guard without the optional method counts as "not referenced" for it.
    const plain = combineGuards({ isReady: () => true, isSegmentReferenced: () => false, isBuildReferenced: () => false }, NO_REFERENCES);
    expect(plain.isCollectionReferenced?.(4)).toBe(false);
    expect(combineGuards()).toBe(NO_REFERENCES);
  });

  it('InMemoryReferenceGuard counts references and refuses an unmatched release', () => {
    const g = new InMemoryReferenceGuard({ readyByDefault: false });
    expect(g.isReady(1)).toBe(false);
    g.setReady(1, true);
    expect(g.isReady(1)).toBe(true);
    g.setAllReady(true);
    expect(g.isReady(9)).toBe(true);
    g.referenceSegment(1, 2);
    g.referenceSegment(1, 2);
    g.releaseSegment(1, 2);
    expect(g.isSegmentReferenced(1, 2)).toBe(true);
    g.releaseSegment(1, 2);
    expect(g.isSegmentReferenced(1, 2)).toBe(false);
    expect(() => g.releaseSegment(1, 2)).toThrow(/not referenced/);
    expect(() => g.releaseBuild(5)).toThrow(/build 5/);
  });
});
