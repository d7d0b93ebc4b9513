import { describe, expect, it } from 'vitest';
import { QuiverError } from '../../common/errors.js';
import { MemoryObjectStore } from '../memory-object-store.js';
import { snapshotManifestKey, snapshotMetadataKey } from '../paths.js';
import { encodeManifest } from './manifest.js';
import { writeManifests } from './manifest-store.js';
import { encodeMetadata } from './metadata.js';
import { readSnapshot } from './read-snapshot.js';
import { entry, metadata, segment, snapshotEntries } from './test-fixtures.js';

const SEGMENTS = [5, 1, 2, 3, 4];

async function stored(segments = SEGMENTS) {
  const store = new MemoryObjectStore();
  const entries = snapshotEntries(segments);
  const { keys } = await writeManifests(store, 7, entries);
  const m = metadata(segments);
  expect(m.manifests).toEqual(keys);
  const key = snapshotMetadataKey(7, m.snapshot_id);
  await store.put(key, encodeMetadata(m));
  return { store, entries, metadata: m, key };
}

async function failure(p: Promise<unknown>): Promise<QuiverError> {
  try {
    await p;
  } catch (e) {
    if (e instanceof QuiverError) return e;
    throw e;
  }
  throw new Error('resolved');
}

describe('readSnapshot', () => {
  it('reads the metadata and every manifest, in segment order', async () => {
    const s = await stored();
    const got = await readSnapshot(s.store, s.key, { concurrency: 2 });
    expect(got.metadata).toStrictEqual(s.metadata);
    expect(got.entries.map((e) => e.segment)).toStrictEqual(s.entries.map((e) => e.segment));
    expect(got.entries.map((e) => e.segment.id)).toEqual(SEGMENTS);
    expect(got.entries[0]?.indexParams).toEqual(s.entries[0]?.indexParams);
  });

  it('reads an empty snapshot and the per-snapshot manifest layout', async () => {
    const empty = await stored([]);
    expect((await readSnapshot(empty.store, empty.key)).entries).toEqual([]);

    const store = new MemoryObjectStore();
    const entries = snapshotEntries([1, 2]);
    const manifests = entries.map((e) => snapshotManifestKey(7, 77, e.segment.id));
    for (const [i, e] of entries.entries()) await store.put(manifests[i]!, encodeManifest(e));
    await store.put(snapshotMetadataKey(7, 77), encodeMetadata(metadata([1, 2], { manifests })));
    expect((await readSnapshot(store, snapshotMetadataKey(7, 77))).entries.map((e) => e.segment)).toStrictEqual(entries.map((e) => e.segment));
  });

  it('names a missing manifest', async () => {
    const s = await stored();
    const gone = s.metadata.manifests[3]!;
    await s.store.delete(gone);
    const e = await failure(readSnapshot(s.store, s.key));
    expect(e.kind).toBe('IoKeyNotFound');
    expect(e.message).toContain(`manifest ${JSON.stringify(gone)} of segment 3 is missing`);
    expect(e.message).toContain(s.key);
  });

  it('names a missing or damaged metadata file', async () => {
    const s = await stored();
    const missing = await failure(readSnapshot(s.store, snapshotMetadataKey(7, 78)));
    expect(missing.kind).toBe('IoKeyNotFound');
    expect(missing.message).toContain('snapshots/7/metadata/78.json');

    await s.store.put(s.key, new TextEncoder().encode('{"format_version":1'));
    const damaged = await failure(readSnapshot(s.store, s.key));
    expect(damaged.kind).toBe('ServiceInternal');
    expect(damaged.message).toMatch(/^snapshots\/7\/metadata\/77\.json: snapshot metadata is damaged/);
  });

  it('names a damaged manifest', async () => {
    const s = await stored();
    const key = s.metadata.manifests[1]!;
    const bytes = await s.store.get(key);
    await s.store.put(key, bytes.subarray(0, bytes.length - 3));
    const e = await failure(readSnapshot(s.store, s.key));
    expect(e.kind).toBe('SegmentLoadFailed');
    expect(e.message).toContain(`manifest ${JSON.stringify(key)}: manifest is damaged`);
  });

  it('refuses a manifest that disagrees with the metadata', async () => {
    const s = await stored();
    const key = s.metadata.manifests[1]!; // segment 1

    // Another segment's manifest under this key.
    await s.store.put(key, encodeManifest(s.entries[2]!));
    expect((await failure(readSnapshot(s.store, s.key))).message).toMatch(/describes segment 2, but the metadata lists it for segment 1/);

    // The right segment, but content that belongs under another key (e.g. a digest collision).
    await s.store.put(key, encodeManifest(entry(segment(1, { deltalogs: 1, builds: [999] }))));
    expect((await failure(readSnapshot(s.store, s.key))).message).toMatch(/holds content whose key is .*shared\/1-1-/);

    // A build that GC would not protect.
    await s.store.put(key, encodeManifest(s.entries[1]!));
    await s.store.put(s.key, encodeMetadata({ ...s.metadata, build_ids: s.metadata.build_ids.filter((b) => b !== 901) }));
    expect((await failure(readSnapshot(s.store, s.key))).message).toMatch(/lists index build 901, which is not in the snapshot's build_ids/);
  });
});
