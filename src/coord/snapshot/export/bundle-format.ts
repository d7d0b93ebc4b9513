/**
 * Snapshot bundle: what `ExportSnapshot` writes and `RestoreExternalSnapshot` reads (docs/SNAPSHOTS.md
 * "Export bundles"). Layout under the bundle root (a directory or an S3 prefix):
 *
 *   blobs/sha256/{h[0..2]}/{h}                          every file's bytes, keyed by their SHA-256
 *   bundles/{db}/{collection}/{snapshot}-{id}.json      one bundle manifest per exported snapshot
 *
 * Content addressing is what makes a second export into the same root cheap: a file whose hash is
 * already there is not written again (segment files are immutable, so most of them are). The bundle
 * manifest lists every file at its original key with its SHA-256 and size, and it is written LAST, after
 * every blob it names: a crash mid-export leaves blobs but no manifest, and a reader only ever starts
 * from a manifest, so a partial bundle is never taken for a complete one. Blobs are written whole
 * (ObjectStore.put is atomic), so a blob that exists has the bytes of its name unless the medium flipped
 * them, which the reader's hash check catches.
 *
 * Versioning: `bundle_format_version` (1). A reader refuses a larger version ("upgrade Quiver") rather
 * than guess; fields may be added without a version bump (readers ignore what they do not know).
 */

import { createHash } from 'node:crypto';
import { z } from 'zod';
import { quiverError } from '../../../common/errors.js';

export const BUNDLE_FORMAT_VERSION = 1;
/** A bundle manifest lists a few files per segment (at most 20,000 segments per restore): bounded well below this. */
export const BUNDLE_MANIFEST_BYTES_MAX = 256 * 1024 * 1024;
export const BUNDLE_MANIFESTS_DIR = 'bundles';
const SHA256_HEX = /^[0-9a-f]{64}$/;

export interface BundleFile {
  /** The file's key in the exporting store (insert_log/..., snapshots/...). */
  readonly key: string;
  readonly sha256: string;
  readonly size: number;
}

export interface BundleManifest {
  readonly bundle_format_version: number;
  readonly created_at_ms: number;
  readonly snapshot: {
    readonly id: number;
    readonly name: string;
    readonly collection_id: number;
    readonly collection_name: string;
    readonly db_name: string;
    readonly create_ts: string;
  };
  /** The snapshot metadata file's original key; it is one of `files`. */
  readonly metadata_key: string;
  readonly files: readonly BundleFile[];
  readonly total_bytes: number;
}

const fileSchema = z.object({
  key: z.string().min(1).max(1024),
  sha256: z.string().regex(SHA256_HEX),
  size: z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER),
});
const manifestSchema = z.object({
  bundle_format_version: z.literal(BUNDLE_FORMAT_VERSION),
  created_at_ms: z.number().int().nonnegative(),
  snapshot: z.object({
    id: z.number().int().nonnegative(),
    name: z.string().min(1),
    collection_id: z.number().int().nonnegative(),
    collection_name: z.string().min(1),
    db_name: z.string().min(1),
    create_ts: z.string().regex(/^\d+$/),
  }),
  metadata_key: z.string().min(1),
  files: z.array(fileSchema),
  total_bytes: z.number().int().nonnegative(),
});

export function blobKey(sha256: string): string {
  if (!SHA256_HEX.test(sha256)) throw new Error(`assertion failed: ${JSON.stringify(sha256)} is not a SHA-256 hex digest`);
  return `blobs/sha256/${sha256.slice(0, 2)}/${sha256}`;
}

/** Where the bundle manifest of a snapshot goes, relative to the bundle root (names are collection-name safe). */
export function bundleManifestKey(m: Pick<BundleManifest, 'snapshot'>): string {
  return `${BUNDLE_MANIFESTS_DIR}/${m.snapshot.db_name}/${m.snapshot.collection_name}/${m.snapshot.name}-${m.snapshot.id}.json`;
}

export function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

export function encodeBundleManifest(m: BundleManifest): Uint8Array {
  const parsed = manifestSchema.safeParse(m);
  if (!parsed.success) throw new Error(`assertion failed: bundle manifest is invalid: ${parsed.error.issues[0]?.message ?? ''}`);
  check(m, (msg) => new Error(`assertion failed: ${msg}`));
  return new TextEncoder().encode(JSON.stringify(m));
}

/**
 * Validates a bundle manifest read from `where`. A newer format version is refused with "upgrade
 * Quiver"; anything else that is not a valid manifest is ParameterInvalid naming the problem (the
 * bundle is damaged or not a bundle: reading it again will not help).
 */
export function decodeBundleManifest(bytes: Uint8Array, where: string): BundleManifest {
  const bad = (msg: string) => quiverError('ParameterInvalid', `bundle manifest ${where}: ${msg}`);
  if (bytes.byteLength > BUNDLE_MANIFEST_BYTES_MAX) throw bad(`${bytes.byteLength} bytes, at most ${BUNDLE_MANIFEST_BYTES_MAX}`);
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch (e) {
    throw bad(`not valid UTF-8 JSON: ${(e as Error).message}`);
  }
  const version = (value as { bundle_format_version?: unknown } | null)?.bundle_format_version;
  if (typeof version === 'number' && Number.isInteger(version) && version > BUNDLE_FORMAT_VERSION) {
    throw bad(`bundle_format_version ${version} is newer than this Quiver reads (${BUNDLE_FORMAT_VERSION}); upgrade Quiver`);
  }
  const parsed = manifestSchema.safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw bad(`${issue?.path.join('.') ?? ''}: ${issue?.message ?? 'invalid'}`);
  }
  const m = parsed.data as BundleManifest;
  check(m, bad);
  return m;
}

/** Cross-field invariants: unique keys, the metadata file listed, the total right. */
function check(m: BundleManifest, fail: (msg: string) => Error): void {
  const keys = new Set<string>();
  let total = 0;
  for (const f of m.files) {
    if (keys.has(f.key)) throw fail(`file ${JSON.stringify(f.key)} is listed twice`);
    if (f.key.split('/').some((part) => part === '' || part === '.' || part === '..')) throw fail(`file key ${JSON.stringify(f.key)} is not a plain key`);
    keys.add(f.key);
    total += f.size;
  }
  if (!keys.has(m.metadata_key)) throw fail(`the metadata file ${JSON.stringify(m.metadata_key)} is not among its files`);
  if (total !== m.total_bytes) throw fail(`total_bytes ${m.total_bytes} is not the sum of its files' sizes (${total})`);
}
