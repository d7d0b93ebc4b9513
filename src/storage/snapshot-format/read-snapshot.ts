/**
 * Reading a snapshot back: its metadata file, then every manifest it lists (bounded concurrency), each
 * checked against the metadata, so that restore never copies a segment the snapshot does not describe:
 * - manifests[i] must decode to segment_ids[i] of the snapshot's collection;
 * - a shared manifest's content must re-derive its own key (catches a misplaced file or a digest
 *   collision, see manifest-store.ts);
 * - every index build a manifest lists must be in build_ids, or GC would not protect its files.
 */

import { QuiverError, isQuiverError, quiverError } from '../../common/errors.js';
import type { ObjectStore } from '../object-store.js';
import { checkConcurrency, mapLimit } from './concurrency.js';
import { decodeManifest, type ManifestEntry } from './manifest.js';
import { manifestKey, parseManifestKey } from './manifest-store.js';
import { decodeMetadata, type SnapshotMetadata } from './metadata.js';

export interface ReadSnapshotOptions {
  /** Manifest reads in flight at once. Default 16. */
  readonly concurrency?: number | undefined;
}

export interface SnapshotContents {
  readonly metadata: SnapshotMetadata;
  /** entries[i] is the manifest of metadata.segment_ids[i]. */
  readonly entries: ManifestEntry[];
}

/**
 * IoKeyNotFound naming the key when the metadata file or a manifest is missing; ServiceInternal /
 * SegmentLoadFailed (prefixed with the key) when one is damaged or disagrees with the metadata.
 */
export async function readSnapshot(store: ObjectStore, metadataKey: string, opts: ReadSnapshotOptions = {}): Promise<SnapshotContents> {
  const concurrency = checkConcurrency(opts.concurrency);
  const metadata = await readSnapshotMetadata(store, metadataKey);
  const entries = await mapLimit(metadata.manifests, concurrency, (_key, i) => readManifestAt(store, metadataKey, metadata, i));
  return { metadata, entries };
}

/** The metadata file alone (same errors as `readSnapshot`). */
export async function readSnapshotMetadata(store: ObjectStore, metadataKey: string): Promise<SnapshotMetadata> {
  const metadataBytes = await getOrExplain(store, metadataKey, `snapshot metadata ${JSON.stringify(metadataKey)} is missing`);
  return withContext(`${metadataKey}`, () => decodeMetadata(metadataBytes));
}

/**
 * The manifests of some segments only (a copy task reads its own segments, not the whole snapshot),
 * with the same checks as `readSnapshot`. SegmentLoadFailed when a segment is not in the snapshot.
 */
export async function readSnapshotSegments(
  store: ObjectStore,
  metadataKey: string,
  metadata: SnapshotMetadata,
  segmentIds: readonly number[],
  opts: ReadSnapshotOptions = {},
): Promise<Map<number, ManifestEntry>> {
  const concurrency = checkConcurrency(opts.concurrency);
  const at = new Map(metadata.segment_ids.map((id, i) => [id, i] as const));
  const indexes = segmentIds.map((id) => {
    const i = at.get(id);
    if (i === undefined) throw quiverError('SegmentLoadFailed', `snapshot ${metadata.snapshot_id} (${metadataKey}) has no segment ${id}`);
    return i;
  });
  const entries = await mapLimit(indexes, concurrency, (i) => readManifestAt(store, metadataKey, metadata, i));
  return new Map(entries.map((e) => [e.segment.id, e] as const));
}

const buildSets = new WeakMap<SnapshotMetadata, ReadonlySet<number>>();

/** The build ids as a set, once per metadata object (a lookup per manifest entry). */
function buildsOf(metadata: SnapshotMetadata): ReadonlySet<number> {
  let s = buildSets.get(metadata);
  if (s === undefined) {
    s = new Set(metadata.build_ids);
    buildSets.set(metadata, s);
  }
  return s;
}

async function readManifestAt(store: ObjectStore, metadataKey: string, metadata: SnapshotMetadata, i: number): Promise<ManifestEntry> {
  const key = metadata.manifests[i]!;
  const segmentId = metadata.segment_ids[i];
  const bytes = await getOrExplain(
    store,
    key,
    `snapshot ${metadata.snapshot_id} (${metadataKey}): manifest ${JSON.stringify(key)} of segment ${segmentId} is missing`,
  );
  const entry = withContext(`snapshot ${metadata.snapshot_id}: manifest ${JSON.stringify(key)}`, () => decodeManifest(bytes));
  const s = entry.segment;
  const mismatch = (reason: string) => quiverError('SegmentLoadFailed', `snapshot ${metadata.snapshot_id}: manifest ${JSON.stringify(key)} ${reason}`);
  if (s.id !== segmentId) throw mismatch(`describes segment ${s.id}, but the metadata lists it for segment ${segmentId}`);
  if (s.collectionId !== metadata.collection_id) throw mismatch(`describes a segment of collection ${s.collectionId}, not ${metadata.collection_id}`);
  if (parseManifestKey(key) !== undefined) {
    let derived: string;
    try {
      derived = manifestKey(metadata.collection_id, entry);
    } catch (e) {
      throw mismatch(`cannot be a shared manifest: ${(e as Error).message}`);
    }
    if (derived !== key) throw mismatch(`holds content whose key is ${JSON.stringify(derived)}`);
  }
  const builds = buildsOf(metadata);
  for (const f of s.indexes) {
    if (!builds.has(f.buildId)) throw mismatch(`lists index build ${f.buildId}, which is not in the snapshot's build_ids`);
  }
  return entry;
}

async function getOrExplain(store: ObjectStore, key: string, missing: string): Promise<Uint8Array> {
  try {
    return await store.get(key);
  } catch (e) {
    if (isQuiverError(e, 'IoKeyNotFound')) throw quiverError('IoKeyNotFound', missing, e);
    throw e;
  }
}

/** Prefixes a QuiverError's reason with where it happened, keeping its kind. */
function withContext<T>(where: string, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    if (e instanceof QuiverError) throw new QuiverError(e.kind, `${where}: ${e.message}`, { cause: e });
    throw e;
  }
}
