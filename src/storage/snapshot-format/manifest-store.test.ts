import { performance } from 'node:perf_hooks';
import { describe, expect, it } from 'vitest';
import { isQuiverError } from '../../common/errors.js';
import type { ObjectStore } from '../object-store.js';
import { MemoryObjectStore } from '../memory-object-store.js';
import { parseSnapshotKey, snapshotManifestKey } from '../paths.js';
import { decodeManifest } from './manifest.js';
import { formatManifestKey, manifestKey, parseManifestKey, sharedManifestsPrefix, writeManifests } from './manifest-store.js';
import { entry, segment } from './test-fixtures.js';

/** Counts store calls, to check that reuse costs one stat and no put. */
class CountingStore extends MemoryObjectStore {
  puts = 0;
  stats = 0;
  inFlight = 0;
  maxInFlight = 0;
  override async put(key: string, data: Uint8Array): Promise<void> {
    this.puts += 1;
    return this.#track(() => super.put(key, data));
  }
  override async stat(key: string) {
    this.stats += 1;
    return this.#track(() => super.stat(key));
  }
  async #track<T>(fn: () => Promise<T>): Promise<T> {
    this.inFlight += 1;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    try {
      await Promise.resolve();
      return await fn();
    } finally {
      this.inFlight -= 1;
    }
  }
}

describe('manifestKey', () => {
  it('is stable and follows the shared layout', () => {
    const a = manifestKey(7, entry(segment(42, { deltalogs: 2, builds: [901, 900] })));
    expect(a).toBe(manifestKey(7, entry(segment(42, { deltalogs: 2, builds: [900, 901] }))));
    expect(a).toMatch(/^snapshots\/7\/manifests\/shared\/42-2-[0-9a-f]{8}\.avro$/);
    expect(manifestKey(7, entry(segment(42)))).toBe('snapshots/7/manifests/shared/42-0-none.avro');
    expect(a.startsWith(sharedManifestsPrefix(7))).toBe(true);
  });

  it('changes with a new deltalog or a new index build, and only then', () => {
    const base = manifestKey(7, entry(segment(42, { deltalogs: 2, builds: [900] })));
    expect(manifestKey(7, entry(segment(42, { deltalogs: 3, builds: [900] })))).not.toBe(base);
    expect(manifestKey(7, entry(segment(42, { deltalogs: 2, builds: [900, 901] })))).not.toBe(base);
    expect(manifestKey(7, entry(segment(42, { deltalogs: 2, builds: [902] })))).not.toBe(base);
    expect(manifestKey(7, entry(segment(42, { deltalogs: 2 })))).not.toBe(base);
    expect(manifestKey(7, entry(segment(43, { deltalogs: 2, builds: [900] })))).not.toBe(base);
    // Same segment, same generation, same builds: the channel or row count cannot differ in practice,
    // and does not enter the key.
    expect(manifestKey(7, { ...entry(segment(42, { deltalogs: 2, builds: [900] })), channel: 'other' })).toBe(base);
  });

  it('parses back, and is never mistaken for the per-snapshot layout', () => {
    const key = manifestKey(7, entry(segment(42, { deltalogs: 2, builds: [900] })));
    const parts = parseManifestKey(key);
    expect(parts).toMatchObject({ collectionId: 7, segmentId: 42, deltaGen: 2 });
    expect(formatManifestKey(parts!)).toBe(key);
    expect(parseSnapshotKey(key)).toBeUndefined();
    expect(parseManifestKey(snapshotManifestKey(7, 1, 42))).toBeUndefined();
    for (const bad of [
      'snapshots/7/manifests/shared/42-2-none.json',
      'snapshots/07/manifests/shared/1-0-none.avro',
      'snapshots/7/manifests/shared/1-0-ABCDEF12.avro',
      'snapshots/7/manifests/shared/1-0.avro',
      'snapshots/7/manifests/shared/99999999999999999-0-none.avro',
    ]) {
      expect(parseManifestKey(bad), bad).toBeUndefined();
    }
  });

  it('refuses segments that cannot have a shared manifest', () => {
    expect(() => manifestKey(8, entry(segment(42)))).toThrow(/belongs to collection 7, not 8/);
    expect(() => manifestKey(7, entry(segment(42, { state: 'Dropped' })))).toThrow(/segment 42 is Dropped: only Flushed/);
  });
});

describe('writeManifests', () => {
  it('writes only the missing manifests', async () => {
    const store = new CountingStore();
    const entries = [1, 2, 3, 4].map((id) => entry(segment(id, { deltalogs: 1, builds: id % 2 ? [100 + id] : [] })));
    const first = await writeManifests(store, 7, entries);
    expect(first.written).toBe(4);
    expect(first.keys).toEqual(entries.map((e) => manifestKey(7, e)));
    for (const [i, key] of first.keys.entries()) expect(decodeManifest(await store.get(key)).segment).toStrictEqual(entries[i]!.segment);

    store.puts = 0;
    const second = await writeManifests(store, 7, entries);
    expect(second).toEqual({ keys: first.keys, written: 0 });
    expect(store.puts).toBe(0);

    // Segment 3 got a new deltalog: one new manifest, the old one stays for the earlier snapshot.
    const changed = entries.map((e) => (e.segment.id === 3 ? entry(segment(3, { deltalogs: 2, builds: [103] })) : e));
    const third = await writeManifests(store, 7, changed);
    expect(third.written).toBe(1);
    expect(third.keys.filter((k, i) => k !== first.keys[i])).toEqual([manifestKey(7, changed[2]!)]);
    expect((await store.list(sharedManifestsPrefix(7))).length).toBe(5);
  });

  it('checks every entry before writing anything', async () => {
    const store = new MemoryObjectStore();
    const entries = [entry(segment(1)), entry(segment(2, { state: 'Importing' }))];
    await expect(writeManifests(store, 7, entries)).rejects.toThrow(/segment 2 is Importing/);
    await expect(writeManifests(store, 7, [entry(segment(1)), entry(segment(1))])).rejects.toThrow(/segment 1 is listed twice/);
    const noParams = { ...entry(segment(5, { builds: [9] })), indexParams: [] };
    await expect(writeManifests(store, 7, [noParams])).rejects.toThrow(/no indexParams for index 500/);
    expect(await store.list('')).toEqual([]);
    await expect(writeManifests(store, 7, [], { concurrency: 0 })).rejects.toSatisfy((e) => isQuiverError(e, 'ParameterInvalid'));
  });

  it('bounds the calls in flight and stops at the first store failure', async () => {
    const store = new CountingStore();
    const entries = Array.from({ length: 50 }, (_, i) => entry(segment(i + 1)));
    await writeManifests(store, 7, entries, { concurrency: 4 });
    expect(store.maxInFlight).toBeLessThanOrEqual(4);
    expect(store.maxInFlight).toBeGreaterThan(1);

    const failing: ObjectStore = Object.assign(new MemoryObjectStore(), {
      put: async (key: string) => {
        throw Object.assign(new Error(`disk full writing ${key}`));
      },
    });
    await expect(writeManifests(failing, 7, entries.slice(0, 3))).rejects.toThrow(/disk full writing snapshots\/7\/manifests\/shared\/1-0-none.avro/);
  });

  it('measures 1,000 manifests: first write and the all-reused second call', async () => {
    const store = new MemoryObjectStore();
    const entries = Array.from({ length: 1000 }, (_, i) => entry(segment(i + 1, { deltalogs: i % 5, builds: i % 3 === 0 ? [10_000 + i] : [] })));
    const t0 = performance.now();
    const first = await writeManifests(store, 7, entries);
    const t1 = performance.now();
    const second = await writeManifests(store, 7, entries);
    const t2 = performance.now();
    expect(first.written).toBe(1000);
    expect(second.written).toBe(0);
    const bytes = (await store.list(sharedManifestsPrefix(7))).reduce((n, o) => n + o.size, 0);
    console.log(
      `writeManifests x1000 (MemoryObjectStore): first ${(t1 - t0).toFixed(1)} ms (${(bytes / 1000).toFixed(0)} B/manifest), all reused ${(t2 - t1).toFixed(1)} ms`,
    );
  });
});
