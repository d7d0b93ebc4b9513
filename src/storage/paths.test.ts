import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isQuiverError } from '../common/errors.js';
import { validateObjectKey } from './object-key.js';
import {
  collectionFilePrefixes,
  deltaLogKey,
  formatSegmentKey,
  indexBuildPrefix,
  indexFileKey,
  insertLogKey,
  parseSegmentKey,
  parseSnapshotKey,
  segmentFilePrefixes,
  snapshotManifestKey,
  snapshotManifestsPrefix,
  snapshotMetadataKey,
  snapshotsPrefix,
  statsLogKey,
  type SegmentKey,
} from './paths.js';

describe('object paths', () => {
  it('builds the DESIGN.md section 3 layout', () => {
    expect(insertLogKey(1, 2, 3, 100, 7)).toBe('insert_log/1/2/3/100/7');
    expect(deltaLogKey(1, 2, 3, 8)).toBe('delta_log/1/2/3/8');
    expect(statsLogKey(1, 2, 3, 100, 9)).toBe('stats_log/1/2/3/100/9');
    expect(indexFileKey(44, 1, 2, 3, 'HNSW_0')).toBe('index_files/44/1/2/3/HNSW_0');
    expect(snapshotMetadataKey(1, 5)).toBe('snapshots/1/metadata/5.json');
    expect(snapshotManifestKey(1, 5, 3)).toBe('snapshots/1/manifests/5/3.avro');
    expect(collectionFilePrefixes(1)).toEqual(['insert_log/1/', 'delta_log/1/', 'stats_log/1/']);
    expect(segmentFilePrefixes(1, 2, 3)).toEqual(['insert_log/1/2/3/', 'delta_log/1/2/3/', 'stats_log/1/2/3/']);
    expect(indexBuildPrefix(44)).toBe('index_files/44/');
    expect(snapshotsPrefix(1)).toBe('snapshots/1/');
    expect(snapshotManifestsPrefix(1, 5)).toBe('snapshots/1/manifests/5/');
    expect(insertLogKey(Number.MAX_SAFE_INTEGER, 0, 0, 0, 0)).toBe(`insert_log/${Number.MAX_SAFE_INTEGER}/0/0/0/0`);
  });

  it('refuses ids that are not non-negative safe integers, and bad index file names', () => {
    for (const bad of [-1, 1.5, NaN, Infinity, 2 ** 53]) {
      let err: unknown;
      try {
        insertLogKey(1, 2, bad, 4, 5);
      } catch (e) {
        err = e;
      }
      expect(isQuiverError(err, 'ParameterInvalid')).toBe(true);
      expect(String(err)).toContain('segmentId');
    }
    for (const file of ['', 'a/b', '..', '.']) {
      expect(() => indexFileKey(1, 1, 1, 1, file)).toThrow();
    }
  });

  it('parses every kind of segment file key', () => {
    expect(parseSegmentKey('insert_log/1/2/3/100/7')).toEqual({ kind: 'insert', collectionId: 1, partitionId: 2, segmentId: 3, fieldId: 100, logId: 7 });
    expect(parseSegmentKey('delta_log/1/2/3/8')).toEqual({ kind: 'delta', collectionId: 1, partitionId: 2, segmentId: 3, logId: 8 });
    expect(parseSegmentKey('stats_log/1/2/3/100/9')).toEqual({ kind: 'stats', collectionId: 1, partitionId: 2, segmentId: 3, fieldId: 100, logId: 9 });
    expect(parseSegmentKey('index_files/44/1/2/3/HNSW_0')).toEqual({
      kind: 'index',
      buildId: 44,
      version: 1,
      partitionId: 2,
      segmentId: 3,
      file: 'HNSW_0',
    });
  });

  it('returns undefined for keys that are not segment files', () => {
    for (const key of [
      '',
      'insert_log',
      'insert_log/1/2/3/100',
      'insert_log/1/2/3/100/7/extra',
      'insert_log/01/2/3/100/7',
      'insert_log/-1/2/3/100/7',
      'insert_log/1/2/3/100/7.5',
      'insert_log/1/2/3/100/x',
      'insert_log/1/2/3/100/',
      'insert_log/9007199254740993/2/3/100/7',
      'delta_log/1/2/3',
      'delta_log/1/2/3/8/9',
      'stats_log/1/2/3/4',
      'index_files/44/1/2/3',
      'index_files/44/1/2/3/',
      'index_files/44/1/2/3/a/b',
      'snapshots/1/metadata/5.json',
      'other/1/2/3/4/5',
    ]) {
      expect(parseSegmentKey(key), key).toBeUndefined();
    }
  });

  it('parses snapshot keys and rejects near misses', () => {
    expect(parseSnapshotKey('snapshots/1/metadata/5.json')).toEqual({ kind: 'metadata', collectionId: 1, snapshotId: 5 });
    expect(parseSnapshotKey('snapshots/1/manifests/5/3.avro')).toEqual({ kind: 'manifest', collectionId: 1, snapshotId: 5, segmentId: 3 });
    for (const key of [
      'snapshots/1/metadata/5',
      'snapshots/1/metadata/5.avro',
      'snapshots/x/metadata/5.json',
      'snapshots/1/manifests/5/3',
      'snapshots/1/manifests/5.avro',
      'insert_log/1/2/3/4/5',
    ]) {
      expect(parseSnapshotKey(key), key).toBeUndefined();
    }
  });

  it('format(parse(key)) is the identity, and keys are valid object keys (property)', () => {
    const idArb = fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER });
    const keyArb: fc.Arbitrary<SegmentKey> = fc.oneof(
      fc.record({ kind: fc.constant('insert' as const), collectionId: idArb, partitionId: idArb, segmentId: idArb, fieldId: idArb, logId: idArb }),
      fc.record({ kind: fc.constant('delta' as const), collectionId: idArb, partitionId: idArb, segmentId: idArb, logId: idArb }),
      fc.record({ kind: fc.constant('stats' as const), collectionId: idArb, partitionId: idArb, segmentId: idArb, fieldId: idArb, logId: idArb }),
      fc.record({
        kind: fc.constant('index' as const),
        buildId: idArb,
        version: idArb,
        partitionId: idArb,
        segmentId: idArb,
        file: fc.stringMatching(/^[A-Za-z0-9_.-]{1,20}$/).filter((f) => f !== '.' && f !== '..'),
      }),
    );
    fc.assert(
      fc.property(keyArb, (k) => {
        const key = formatSegmentKey(k);
        validateObjectKey(key);
        expect(parseSegmentKey(key)).toEqual(k);
        expect(formatSegmentKey({ ...k, segmentId: k.segmentId === 0 ? 1 : 0 })).not.toBe(key);
      }),
      { numRuns: 300, seed: 42 },
    );
  });
});
