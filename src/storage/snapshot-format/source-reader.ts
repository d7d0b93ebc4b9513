/**
 * ManifestSourceReader: the source segment records of a restore, read from the snapshot's manifests.
 * Copy jobs and tasks persist id mappings only; the copy executor (on a worker) and publish/rollback (on
 * the coordinator) read file lists here. Snapshot files are immutable, so decoded metadata is cached
 * (a few snapshots at most: a restore reads one snapshot many times, once per task).
 */

import type { SegmentRecord } from '../../coord/records.js';
import type { SnapshotRef, SourceSegmentReader } from './copy-types.js';
import type { ObjectStore } from '../object-store.js';
import { snapshotMetadataKey } from '../paths.js';
import { PrefixedObjectStore } from '../prefixed-object-store.js';
import { readSnapshotMetadata, readSnapshotSegments, type SnapshotMetadata } from './index.js';

/** Decoded metadata files kept (each is at most a few MiB for the largest snapshots). */
const METADATA_CACHED_MAX = 4;

export class ManifestSourceReader implements SourceSegmentReader {
  readonly #store: ObjectStore;
  readonly #metadata = new Map<string, Promise<SnapshotMetadata>>();

  constructor(store: ObjectStore) {
    this.#store = store;
  }

  async read(snapshot: SnapshotRef, sourceSegmentIds: readonly number[]): Promise<ReadonlyMap<number, SegmentRecord>> {
    const key = snapshotMetadataKey(snapshot.collectionId, snapshot.snapshotId);
    // A staged external snapshot keeps its original keys under its prefix.
    const store = snapshot.sourcePrefix ? new PrefixedObjectStore(this.#store, snapshot.sourcePrefix) : this.#store;
    const metadata = await this.#metadataOf(store, (snapshot.sourcePrefix ?? '') + key, key);
    const entries = await readSnapshotSegments(store, key, metadata, sourceSegmentIds);
    return new Map([...entries].map(([id, e]) => [id, e.segment] as const));
  }

  #metadataOf(store: ObjectStore, cacheKey: string, key: string): Promise<SnapshotMetadata> {
    let p = this.#metadata.get(cacheKey);
    if (p === undefined) {
      p = readSnapshotMetadata(store, key);
      // A failed read is not cached: the next task tries again.
      p.catch(() => this.#metadata.delete(cacheKey));
      this.#metadata.set(cacheKey, p);
      if (this.#metadata.size > METADATA_CACHED_MAX) this.#metadata.delete(this.#metadata.keys().next().value!);
    }
    return p;
  }
}
