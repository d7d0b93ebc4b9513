/**
 * Content-addressed manifests (DESIGN.md section 4, "Where we go beyond Milvus's design").
 *
 * A flushed segment's binlogs and statslogs never change, its index files appear once per build and
 * never change after, and its deltalog list only grows by appending. So the manifest of a segment is a
 * function of (segment id, deltalog generation = number of deltalogs, set of index builds), and we key
 * it by exactly that:
 *
 *   snapshots/{collection}/manifests/shared/{segment}-{deltaGen}-{indexDigest}.avro
 *
 * indexDigest is "none" for a segment without index files, else 8 lowercase hex digits: FNV-1a 32 of the
 * sorted "{buildId}.{version}" pairs joined with ','. (The version is included so that rebuilding under
 * the same build id, if it ever happens, still gives a new key.) A 32-bit digest can collide only
 * between two index sets of the same segment and deltalog generation, and readSnapshot re-derives the
 * key of every manifest it reads, so a collision would be detected, not silently served.
 *
 * Every snapshot then writes only the manifests of segments that changed since an earlier snapshot, plus
 * its metadata file, and refers to the unchanged ones by key.
 *
 * Only Flushed segments get a shared manifest: the state (and compactedTo / droppedAtMs, which come
 * with Dropped) is the one part of a segment record that changes without changing the key, and
 * snapshots hold flushed segments only.
 *
 * The per-snapshot layout of DESIGN.md section 3 (`snapshots/{c}/manifests/{snapshotId}/{segment}.avro`,
 * paths.ts) stays readable: readSnapshot accepts both. `parseSnapshotKey` in paths.ts does not match the
 * shared layout ('shared' is not a snapshot id), so the two cannot be confused.
 *
 * Deleting shared manifests is not done here. A manifest may be referenced by several snapshots, so
 * dropping one snapshot must not delete them; they are reclaimed when no committed or pending snapshot
 * references them, under the same per-collection lock as snapshot creation (otherwise a creation that
 * found a manifest by `stat` could commit a reference to a file being deleted).
 */

import { quiverError } from '../../common/errors.js';
import type { ObjectStore } from '../object-store.js';
import { snapshotsPrefix } from '../paths.js';
import { checkConcurrency, mapLimit } from './concurrency.js';
import { encodeManifest, type ManifestEntry } from './manifest.js';

export const SHARED_MANIFESTS_DIR = 'shared';
export const NO_INDEX_DIGEST = 'none';

export interface ManifestKeyParts {
  readonly collectionId: number;
  readonly segmentId: number;
  /** Number of deltalogs of the segment. */
  readonly deltaGen: number;
  /** "none" or 8 lowercase hex digits. */
  readonly indexDigest: string;
}

/** `snapshots/{collectionId}/manifests/shared/` */
export function sharedManifestsPrefix(collectionId: number): string {
  return `${snapshotsPrefix(collectionId)}manifests/${SHARED_MANIFESTS_DIR}/`;
}

export function formatManifestKey(parts: ManifestKeyParts): string {
  checkId('segmentId', parts.segmentId);
  checkId('deltaGen', parts.deltaGen);
  if (!DIGEST.test(parts.indexDigest)) {
    throw quiverError('ParameterInvalid', `indexDigest must be "none" or 8 lowercase hex digits, got ${JSON.stringify(parts.indexDigest)}`);
  }
  return `${sharedManifestsPrefix(parts.collectionId)}${parts.segmentId}-${parts.deltaGen}-${parts.indexDigest}.avro`;
}

/** The shared key of an entry's manifest. ParameterInvalid for a segment that cannot have one. */
export function manifestKey(collectionId: number, entry: ManifestEntry): string {
  const s = entry.segment;
  if (s.collectionId !== collectionId) {
    throw quiverError('ParameterInvalid', `segment ${s.id} belongs to collection ${s.collectionId}, not ${collectionId}`);
  }
  if (s.state !== 'Flushed') {
    throw quiverError('ParameterInvalid', `segment ${s.id} is ${s.state}: only Flushed segments have a shared manifest`);
  }
  return formatManifestKey({ collectionId, segmentId: s.id, deltaGen: s.deltalogs.length, indexDigest: indexDigest(entry) });
}

/** Inverse of formatManifestKey; undefined for anything else (including the per-snapshot layout). */
export function parseManifestKey(key: string): ManifestKeyParts | undefined {
  if (typeof key !== 'string') return undefined;
  const m = SHARED_KEY.exec(key);
  if (m === null) return undefined;
  const [, c, s, g, indexDigest] = m;
  const collectionId = Number(c);
  const segmentId = Number(s);
  const deltaGen = Number(g);
  if (![collectionId, segmentId, deltaGen].every(Number.isSafeInteger) || indexDigest === undefined) return undefined;
  return { collectionId, segmentId, deltaGen, indexDigest };
}

export function indexDigest(entry: ManifestEntry): string {
  const builds = entry.segment.indexes.map((f) => `${f.buildId}.${f.version}`).sort();
  if (builds.length === 0) return NO_INDEX_DIGEST;
  return fnv1a32(builds.join(',')).toString(16).padStart(8, '0');
}

export interface WriteManifestsOptions {
  /** Store calls in flight at once (stat, then put when missing). Default 16. */
  readonly concurrency?: number | undefined;
}

/**
 * Writes the manifests that do not exist yet (stat first) and returns every entry's key, in the order
 * of `entries`, and how many were written. Idempotent: encoding is deterministic, so a retry or a racing
 * writer puts identical bytes.
 */
export async function writeManifests(
  store: ObjectStore,
  collectionId: number,
  entries: readonly ManifestEntry[],
  opts: WriteManifestsOptions = {},
): Promise<{ keys: string[]; written: number }> {
  const concurrency = checkConcurrency(opts.concurrency);
  // Keys first: a bad entry fails the call before anything is written.
  const keys = entries.map((e) => manifestKey(collectionId, e));
  const seen = new Set<number>();
  for (const e of entries) {
    if (seen.has(e.segment.id)) throw quiverError('ParameterInvalid', `segment ${e.segment.id} is listed twice in one snapshot`);
    seen.add(e.segment.id);
  }
  const wrote = await mapLimit(entries, concurrency, async (entry, i) => {
    const key = keys[i]!;
    if ((await store.stat(key)) !== undefined) return false;
    await store.put(key, encodeManifest(entry));
    return true;
  });
  return { keys, written: wrote.filter(Boolean).length };
}

const DIGEST = /^(none|[0-9a-f]{8})$/;
const SHARED_KEY = /^snapshots\/(0|[1-9][0-9]*)\/manifests\/shared\/(0|[1-9][0-9]*)-(0|[1-9][0-9]*)-(none|[0-9a-f]{8})\.avro$/;

function checkId(name: string, value: number): void {
  if (!Number.isSafeInteger(value) || value < 0) {
    throw quiverError('ParameterInvalid', `${name} must be a non-negative safe integer, got ${String(value)}`);
  }
}

/** FNV-1a, 32 bits, over the UTF-16 code units of an ASCII string. */
function fnv1a32(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}
