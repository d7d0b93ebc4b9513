import { describe, expect, it } from 'vitest';
import { isQuiverError } from '../../common/errors.js';
import { deltaLogKey, indexFileKey, insertLogKey, parseSegmentKey, statsLogKey } from '../paths.js';
import {
  mappingOf,
  resolvedOf,
  sourceSegment,
  SOURCE_COLLECTION,
  SOURCE_PARTITION,
  TARGET_COLLECTION,
  TARGET_PARTITION,
} from '../../coord/copy/copy.test-util.js';
import { copyPlanOf, mappingsProblem, resolvedMappingsProblem, rewriteSegmentRecord, sourceKeysOf, targetKeyOf, targetKeysOf } from './segment-rewrite.js';

const C = SOURCE_COLLECTION;
const P = SOURCE_PARTITION;

describe('targetKeyOf', () => {
  const m = resolvedOf(sourceSegment(7), 777);
  it('rewrites collection, partition and segment of binlogs, deltalogs and statslogs', () => {
    expect(targetKeyOf(insertLogKey(C, P, 7, 101, 42), m)).toBe(insertLogKey(TARGET_COLLECTION, TARGET_PARTITION, 777, 101, 42));
    expect(targetKeyOf(deltaLogKey(C, P, 7, 43), m)).toBe(deltaLogKey(TARGET_COLLECTION, TARGET_PARTITION, 777, 43));
    expect(targetKeyOf(statsLogKey(C, P, 7, 100, 44), m)).toBe(statsLogKey(TARGET_COLLECTION, TARGET_PARTITION, 777, 100, 44));
  });
  it('keeps the build id and version of index files, rewriting partition and segment', () => {
    const dst = targetKeyOf(indexFileKey(9, 2, P, 7, 'hnsw.bin'), m);
    expect(dst).toBe(indexFileKey(9, 2, TARGET_PARTITION, 777, 'hnsw.bin'));
    expect(parseSegmentKey(dst)).toMatchObject({ kind: 'index', buildId: 9, version: 2, segmentId: 777 });
  });
  it('refuses a key that is not a segment file, naming it', () => {
    expect(() => targetKeyOf('snapshots/1/metadata/2.json', m)).toThrow('snapshots/1/metadata/2.json');
    let thrown: unknown;
    try {
      targetKeyOf('nope', m);
    } catch (e) {
      thrown = e;
    }
    expect(thrown).toBeDefined();
    expect(isQuiverError(thrown, 'ParameterInvalid')).toBe(true);
  });
});

describe('copy plans and target keys', () => {
  it('covers every file of the segment once, never onto a source key', () => {
    const s = sourceSegment(3);
    const plan = copyPlanOf(resolvedOf(s));
    expect(plan.map((p) => p.src)).toEqual(sourceKeysOf(s));
    expect(plan).toHaveLength(8);
    const sources = new Set(sourceKeysOf(s));
    for (const { dst } of plan) expect(sources.has(dst)).toBe(false);
  });
  it('copies a file listed twice once', () => {
    const s = sourceSegment(3);
    const dup = { ...s, statslogs: [...s.statslogs, ...s.statslogs] };
    expect(copyPlanOf(resolvedOf(dup))).toHaveLength(8);
  });
  it('refuses two source files that would land on one target key', () => {
    const s = sourceSegment(3);
    // Same field and log id under another segment: rewriting the segment id makes them collide.
    const clash = { ...s, deltalogs: [...s.deltalogs, { ...s.deltalogs[0]!, path: deltaLogKey(C, P, 4, 305) }] };
    expect(() => copyPlanOf(resolvedOf(clash))).toThrow(/both map to/);
    expect(resolvedMappingsProblem([resolvedOf(clash)])).toMatch(/both map to/);
  });
  it('targetKeysOf is deterministic and covers every mapping of a job or task', () => {
    const ms = [resolvedOf(sourceSegment(1)), resolvedOf(sourceSegment(2))];
    const keys = targetKeysOf(ms);
    expect(keys).toEqual(targetKeysOf(ms));
    expect(keys).toEqual(ms.flatMap((m) => copyPlanOf(m).map((p) => p.dst)));
    expect(keys).toHaveLength(16);
  });
  it('resolvedMappingsProblem finds duplicate targets and bad keys', () => {
    expect(resolvedMappingsProblem([resolvedOf(sourceSegment(1)), resolvedOf(sourceSegment(2))])).toBeUndefined();
    expect(resolvedMappingsProblem([resolvedOf(sourceSegment(1), 5), resolvedOf(sourceSegment(2), 5)])).toMatch(/target segment 5/);
    const bad = { ...sourceSegment(1), deltalogs: [{ ...sourceSegment(1).deltalogs[0]!, path: 'elsewhere/x' }] };
    expect(resolvedMappingsProblem([resolvedOf(bad)])).toMatch(/"elsewhere\/x"/);
    expect(resolvedMappingsProblem([])).toBeUndefined();
  });
  it('mappingsProblem (ids only) finds a source or a target twice', () => {
    expect(mappingsProblem([mappingOf(sourceSegment(1)), mappingOf(sourceSegment(2))])).toBeUndefined();
    expect(mappingsProblem([mappingOf(sourceSegment(1), 5), mappingOf(sourceSegment(2), 5)])).toMatch(/target segment 5/);
    expect(mappingsProblem([mappingOf(sourceSegment(1), 5), mappingOf(sourceSegment(1), 6)])).toMatch(/source segment 1/);
  });
});

describe('rewriteSegmentRecord', () => {
  it('is the source record with target ids, Importing state and rewritten file lists', () => {
    const s = sourceSegment(3, 42);
    const m = resolvedOf(s, 333);
    const r = rewriteSegmentRecord(m);
    expect(r).toMatchObject({ id: 333, collectionId: TARGET_COLLECTION, partitionId: TARGET_PARTITION, state: 'Importing', numRows: 42, createdTs: '123' });
    expect(r.compactedFrom).toBeUndefined();
    expect(sourceKeysOf(r)).toEqual(copyPlanOf(m).map((p) => p.dst));
    expect(r.binlogs['101']![1]).toEqual({ ...s.binlogs['101']![1]!, path: insertLogKey(TARGET_COLLECTION, TARGET_PARTITION, 333, 101, 304) });
    expect(r.indexes[0]).toMatchObject({ indexId: 7, buildId: s.indexes[0]!.buildId, version: 1, size: 64 });
  });
});
