import { describe, expect, it } from 'vitest';
import { QuiverError } from '../../common/errors.js';
import { snapshotManifestKey } from '../paths.js';
import { decodeMetadata, encodeMetadata, type SnapshotMetadata } from './metadata.js';
import { INDEX, SCHEMA, metadata } from './test-fixtures.js';

function decodeError(m: unknown): QuiverError {
  try {
    decodeMetadata(new TextEncoder().encode(JSON.stringify(m)));
  } catch (e) {
    if (e instanceof QuiverError) return e;
    throw e;
  }
  throw new Error('decoded');
}

describe('snapshot metadata', () => {
  it('round-trips', () => {
    const m = metadata();
    expect(decodeMetadata(encodeMetadata(m))).toStrictEqual(m);
    const empty = metadata([], { indexes: [], partitions: [] });
    expect(decodeMetadata(encodeMetadata(empty))).toStrictEqual(empty);
  });

  it('summarizes entries into the GC and size fields', () => {
    const m = metadata([3, 1]);
    expect(m.segment_ids).toEqual([3, 1]);
    expect(m.build_ids).toEqual([901, 903]);
    expect(m.total_rows).toBe(200);
    // per segment: 3 binlogs of 1000 + a statslog of 20 + 2 index files of 4096 total + deltalogs of 50
    expect(m.total_bytes).toBe(2 * (3000 + 20 + 4096) + 2 * 50);
    expect(m.manifests[0]).toMatch(/shared\/3-1-/);
  });

  it('keeps unknown keys (additive fields of a newer writer)', () => {
    const m = { ...metadata(), future_field: { a: 1 }, schema: { ...SCHEMA, futureSchemaFlag: true } };
    expect(decodeMetadata(encodeMetadata(m))).toStrictEqual(m);
  });

  it('accepts the per-snapshot manifest layout of paths.ts', () => {
    const m = metadata([1, 2], { manifests: [snapshotManifestKey(7, 77, 1), snapshotManifestKey(7, 77, 2)] });
    expect(decodeMetadata(encodeMetadata(m))).toStrictEqual(m);
  });

  it('refuses a wrong or newer format_version', () => {
    expect(decodeError({ ...metadata(), format_version: 2 }).message).toMatch(/format_version 2 is newer than this reader \(1\)/);
    expect(decodeError({ ...metadata(), format_version: '1' }).message).toMatch(/format_version must be 1, got "1"/);
    const { format_version: _, ...noVersion } = metadata();
    expect(decodeError(noVersion).message).toMatch(/format_version must be 1, got undefined/);
  });

  it('refuses damaged bytes', () => {
    const bytes = encodeMetadata(metadata());
    for (const cut of [0, 1, 10, bytes.length - 1]) {
      expect(() => decodeMetadata(bytes.subarray(0, cut)), `cut at ${cut}`).toThrow(/snapshot metadata is damaged: not valid UTF-8 JSON/);
    }
    expect(() => decodeMetadata(Uint8Array.of(0xff, 0xfe))).toThrow(/not valid UTF-8 JSON/);
    expect(() => decodeMetadata(new TextEncoder().encode('[1]'))).toThrow(/not a JSON object/);
  });

  const bad: [string, unknown, RegExp][] = [
    ['a missing field', { ...metadata(), name: undefined }, /name: Required \(got nothing\)/],
    ['a string id', { ...metadata(), snapshot_id: '77' }, /snapshot_id: Expected number, received string \(got "77"\)/],
    ['an unsafe id', { ...metadata(), segment_ids: [1, 2, 2 ** 60], manifests: metadata().manifests }, /segment_ids.2: .*(safe|less than)/i],
    ['a bad timestamp', { ...metadata(), create_ts: '12.5' }, /create_ts: must be a decimal hybrid timestamp \(got "12.5"\)/],
    [
      'an unknown data type',
      { ...metadata(), schema: { ...SCHEMA, fields: [{ ...SCHEMA.fields[0], dataType: 'Int128' }] } },
      /schema.fields.0.dataType: Invalid enum value/,
    ],
    ['duplicate segments', metadata([1, 1]), /segment 1 is listed twice/],
    ['manifests not matching segments', { ...metadata(), segment_ids: [1, 2, 4] }, /is the manifest of segment 3, but segment_ids\[2\] is 4/],
    ['a manifest count mismatch', { ...metadata(), manifests: metadata().manifests.slice(1) }, /2 manifests for 3 segments/],
    [
      'a foreign manifest key',
      { ...metadata([1]), manifests: ['insert_log/7/3/1/100/1'] },
      /manifests.0: "insert_log\/7\/3\/1\/100\/1" is not a manifest key/,
    ],
    ["another collection's manifest", { ...metadata([1]), manifests: ['snapshots/8/manifests/shared/1-0-none.avro'] }, /belongs to collection 8, not 7/],
    ['an index of another collection', { ...metadata(), indexes: [{ ...INDEX, collectionId: 9 }] }, /index 500 belongs to collection 9, not 7/],
  ];

  it.each(bad)('decode refuses %s, naming it (ServiceInternal)', (_name, m, reason) => {
    const e = decodeError(m);
    expect(e.kind).toBe('ServiceInternal');
    expect(e.message).toMatch(/^snapshot metadata is damaged: /);
    expect(e.message).toMatch(reason);
  });

  it.each(bad)('encode refuses %s (ParameterInvalid)', (_name, m, reason) => {
    expect(() => encodeMetadata(m as SnapshotMetadata)).toThrow(reason);
    try {
      encodeMetadata(m as SnapshotMetadata);
    } catch (e) {
      expect((e as QuiverError).kind).toBe('ParameterInvalid');
    }
  });

  it('encode refuses bigints and non-finite numbers instead of writing lossy JSON', () => {
    const withBigintDefault = { ...metadata(), schema: { ...SCHEMA, fields: [{ ...SCHEMA.fields[0]!, defaultValue: 5n }] } };
    expect(() => encodeMetadata(withBigintDefault)).toThrow(/schema.fields.0.defaultValue: .* \(got 5n\)/);
    expect(() => encodeMetadata({ ...metadata(), extra: 1n } as SnapshotMetadata)).toThrow(/"extra" holds bigint 1n/);
    const nan = { ...metadata(), schema: { ...SCHEMA, fields: [{ ...SCHEMA.fields[0]!, dataType: 'Double' as const, defaultValue: Number.NaN }] } };
    expect(() => encodeMetadata(nan)).toThrow(/defaultValue/);
  });
});
