import { describe, expect, it } from 'vitest';
import { isQuiverError } from '../../common/errors.js';
import { MemoryObjectStore } from '../memory-object-store.js';
import { snapshotMetadataKey } from '../paths.js';
import { encodeMetadata, writeManifests } from './index.js';
import { metadata, snapshotEntries } from './test-fixtures.js';
import { ManifestSourceReader } from './source-reader.js';

/** A snapshot of collection 7 (id 77) over segments 1..5, as the snapshot manager writes it. */
async function stored() {
  const store = new MemoryObjectStore();
  const segments = [1, 2, 3, 4, 5];
  const entries = snapshotEntries(segments);
  await writeManifests(store, 7, entries);
  await store.put(snapshotMetadataKey(7, 77), encodeMetadata(metadata(segments)));
  return { store, entries };
}

describe('ManifestSourceReader', () => {
  it('reads only the requested segments from the manifests, file lists included', async () => {
    const { store, entries } = await stored();
    let gets = 0;
    const counting = Object.assign(Object.create(store) as MemoryObjectStore, {
      get: (key: string) => {
        gets++;
        return store.get(key);
      },
    });
    const reader = new ManifestSourceReader(counting);
    const got = await reader.read({ collectionId: 7, snapshotId: 77 }, [4, 2]);
    expect([...got.keys()].sort()).toEqual([2, 4]);
    expect(got.get(4)).toStrictEqual(entries[3]!.segment);
    expect(gets).toBe(3); // metadata + two manifests
    await reader.read({ collectionId: 7, snapshotId: 77 }, [1]);
    expect(gets).toBe(4); // the metadata is cached (snapshot files are immutable)
  });

  it('refuses a segment the snapshot does not hold, and a snapshot that is gone', async () => {
    const { store } = await stored();
    const reader = new ManifestSourceReader(store);
    await expect(reader.read({ collectionId: 7, snapshotId: 77 }, [9])).rejects.toSatisfy((e: unknown) => isQuiverError(e, 'SegmentLoadFailed'));
    await expect(reader.read({ collectionId: 7, snapshotId: 78 }, [1])).rejects.toSatisfy((e: unknown) => isQuiverError(e, 'IoKeyNotFound'));
  });
});
