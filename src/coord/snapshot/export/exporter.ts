/**
 * ExportSnapshot: writes a self-contained bundle of one committed snapshot to a `file:///` or `s3://`
 * location (format: bundle-format.ts). Order, and why:
 *   1. check the location against the export roots, before opening anything there;
 *   2. pin the snapshot (a drop cannot remove its metadata or manifests while they are read);
 *   3. every file the snapshot names (metadata, manifests, binlogs, deltalogs, statslogs, index files):
 *      put as `blobs/sha256/..` unless a blob of that hash and size is already there (an earlier export
 *      to the same root): the second export of a collection writes what changed. The hash is the one
 *      recorded when the file was written (Binlog.sha256, SegmentIndexFile.filesSha256: files are
 *      immutable), else one an earlier export computed, else it is computed now, on the worker threads
 *      of a FileHashPool (never on the event loop). A recorded hash is trusted here; a file whose bytes
 *      rotted after it was written still fails the restore-external that verifies every blob. From a
 *      local store to a local root the bytes never pass through this process (local-blobs.ts: a kernel
 *      copy, hashed beside it when the hash is not known); otherwise each file is read, hashed unless
 *      known, and put. Files go 8 at a time; no fsync per file: every written blob is fsynced at once, before
 *   4. the bundle manifest, last: a crash before it leaves only blobs, which no reader starts from.
 * The pin is released on every path.
 */

import type { Logger } from 'pino';
import type { Clock } from '../../../common/clock.js';
import type { ObjectStore } from '../../../storage/object-store.js';
import { sha256Of } from '../../../storage/content-hash.js';
import { FileHashPool } from '../../../storage/file-hash-pool.js';
import { mapLimit } from '../../../storage/snapshot-format/concurrency.js';
import type { SegmentRecord } from '../../records.js';
import { sourceKeysOf } from '../../../storage/snapshot-format/segment-rewrite.js';
import type { SnapshotManager } from '../snapshot-manager.js';
import { quiverError } from '../../../common/errors.js';
import {
  BUNDLE_FORMAT_VERSION,
  BUNDLE_MANIFESTS_DIR,
  blobKey,
  bundleManifestKey,
  encodeBundleManifest,
  type BundleFile,
  type BundleManifest,
} from './bundle-format.js';
import { LocalBlobs } from './local-blobs.js';
import { checkWithinRoots, locationUri, openLocation, parseExportUri, parseExternalSpec, syncLocation, type ExportLocation } from './export-location.js';

/** Files read and written at once: enough to keep a disk or an S3 connection pool busy, bounded in memory. */
export const EXPORT_CONCURRENCY = 8;
/** The export's pin expires by itself if the process dies mid-export. */
const EXPORT_PIN_TTL_S = 24 * 3600;

export interface ExportProgress {
  readonly bytesDone: number;
  readonly bytesTotal: number;
  readonly bytesWritten: number;
}

export interface ExportResult extends ExportProgress {
  readonly uri: string;
  readonly filesTotal: number;
  readonly filesWritten: number;
}

export interface ExporterDeps {
  readonly snapshots: SnapshotManager;
  readonly store: ObjectStore;
  readonly clock: Clock;
  readonly log: Logger;
  readonly roots: readonly ExportLocation[];
  readonly dataDir: string;
  /** Test-only (crash tests, QUIVER_FAULT_EXPORT_FILE_DELAY_MS): wait this long before reading each file. */
  readonly faultFileDelayMs?: number | undefined;
  /** Worker threads hashing files without a known hash (default 2). */
  readonly hashThreads?: number | undefined;
}

/** SHA-256 recorded at write time for each file of these segments, by object key. */
export function recordedHashes(segments: Iterable<SegmentRecord>): Map<string, string> {
  const out = new Map<string, string>();
  for (const s of segments) {
    for (const logs of Object.values(s.binlogs)) for (const b of logs) if (b.sha256 !== undefined) out.set(b.path, b.sha256);
    for (const b of s.deltalogs) if (b.sha256 !== undefined) out.set(b.path, b.sha256);
    for (const b of s.statslogs) if (b.sha256 !== undefined) out.set(b.path, b.sha256);
    for (const ix of s.indexes) {
      const hs = ix.filesSha256;
      if (hs === undefined || hs.length !== ix.files.length) continue;
      ix.files.forEach((f, i) => out.set(f, hs[i]!));
    }
  }
  return out;
}

/** Hashes remembered (object keys are never reused with other bytes, so an entry never goes stale). */
const HASHES_CACHED_MAX = 200_000;

export class SnapshotExporter {
  readonly #d: ExporterDeps;
  /**
   * SHA-256 and size by source key: segment files are immutable, so the next export of the collection
   * reads only the files it has not hashed yet (what changed) and stats the rest at the target.
   */
  readonly #hashes = new Map<string, { readonly sha256: string; readonly size: number }>();
  /** In-flight exports by target URI, for the CLI's progress view (GET /exports on the HTTP port). */
  readonly inFlight = new Map<string, ExportProgress & { readonly startedAtMs: number }>();

  readonly #hashPool: FileHashPool;

  constructor(deps: ExporterDeps) {
    this.#d = deps;
    this.#hashPool = new FileHashPool({ threads: deps.hashThreads ?? 2 });
  }

  /** Ends the hashing workers (idle ones never keep the process alive either way). */
  async close(): Promise<void> {
    await this.#hashPool.close();
  }

  async export(input: { db: string; collection: string; name: string; target: unknown; externalSpec?: unknown }): Promise<ExportResult> {
    const loc = parseExportUri(input.target, 'export target');
    const spec = parseExternalSpec(input.externalSpec);
    await checkWithinRoots(loc, this.#d.roots, 'export target');
    const { snapshots, store } = this.#d;
    const rec = await snapshots.describe(input.db, input.collection, input.name);
    const pin = await snapshots.pin(input.db, input.collection, input.name, EXPORT_PIN_TTL_S);
    const track = `${locationUri(loc, '')}#${rec.collectionName}/${rec.name}`;
    try {
      const contents = await snapshots.readContents(rec);
      const keys = new Set<string>([rec.metadataKey, ...contents.metadata.manifests]);
      for (const e of contents.entries) for (const k of sourceKeysOf(e.segment)) keys.add(k);
      const sizes = await mapLimit([...keys], EXPORT_CONCURRENCY * 4, async (k) => (await store.stat(k))?.size);
      const sizeOf = new Map([...keys].map((k, i) => [k, sizes[i]] as const));
      const bytesTotal = sizes.reduce((a: number, b) => a + (b ?? 0), 0);
      const recorded = recordedHashes(contents.entries.map((e) => e.segment));
      let bytesDone = 0;
      let bytesWritten = 0;
      let filesWritten = 0;
      const writtenPaths: string[] = [];
      const startedAtMs = this.#d.clock.nowMs();
      this.inFlight.set(track, { bytesDone, bytesTotal, bytesWritten, startedAtMs });
      const target = await openLocation(loc, spec, this.#d.dataDir);
      try {
        const blobs = loc.kind === 'local' ? new LocalBlobs(loc.dir, (path) => this.#hashPool.hash(path)) : undefined;
        // A root without any bundle yet rarely holds a blob already: copy while hashing instead of after.
        const fresh = blobs !== undefined && (await target.list(`${BUNDLE_MANIFESTS_DIR}/`)).length === 0;
        const files = await mapLimit([...keys], EXPORT_CONCURRENCY, async (key): Promise<BundleFile> => {
          if (this.#d.faultFileDelayMs) await this.#d.clock.sleep(this.#d.faultFileDelayMs);
          const rec = recorded.get(key);
          const statted = sizeOf.get(key);
          // A recorded hash with the file's current size (a missing file has none: it fails below, naming it).
          const known = this.#hashes.get(key) ?? (rec !== undefined && statted !== undefined ? { sha256: rec, size: statted } : undefined);
          const srcPath = blobs === undefined ? undefined : store.localPath?.(key);
          if (blobs !== undefined && srcPath !== undefined) {
            const out = await blobs.copyIn(srcPath, known, fresh).catch((e: unknown) => {
              if ((e as { code?: string }).code === 'ENOENT') throw quiverError('IoKeyNotFound', `snapshot file ${key} is missing`, e);
              throw e;
            });
            this.#remember(key, out.sha256, out.size);
            if (out.written !== undefined) {
              writtenPaths.push(out.written);
              bytesWritten += out.size;
              filesWritten++;
            }
            bytesDone += out.size;
            this.inFlight.set(track, { bytesDone, bytesTotal, bytesWritten, startedAtMs });
            return { key, sha256: out.sha256, size: out.size };
          }
          // Same hash, same size: the blob is this file (an earlier export wrote it whole, put is atomic).
          if (known !== undefined && (await target.stat(blobKey(known.sha256)))?.size === known.size) {
            bytesDone += known.size;
            this.inFlight.set(track, { bytesDone, bytesTotal, bytesWritten, startedAtMs });
            return { key, ...known };
          }
          const bytes = await store.get(key);
          const sha256 = known?.sha256 ?? (await sha256Of(bytes));
          this.#remember(key, sha256, bytes.byteLength);
          const blob = blobKey(sha256);
          if ((await target.stat(blob))?.size !== bytes.byteLength) {
            await target.put(blob, bytes);
            const path = target.localPath?.(blob);
            if (path !== undefined) writtenPaths.push(path);
            bytesWritten += bytes.byteLength;
            filesWritten++;
          }
          bytesDone += bytes.byteLength;
          this.inFlight.set(track, { bytesDone, bytesTotal, bytesWritten, startedAtMs });
          return { key, sha256, size: bytes.byteLength };
        });
        // Every blob durable before the manifest that makes the bundle complete.
        await syncLocation(loc, writtenPaths);
        const md = contents.metadata;
        const manifest: BundleManifest = {
          bundle_format_version: BUNDLE_FORMAT_VERSION,
          created_at_ms: this.#d.clock.nowMs(),
          snapshot: {
            id: rec.id,
            name: rec.name,
            collection_id: md.collection_id,
            collection_name: md.collection_name,
            db_name: md.db_name,
            create_ts: md.create_ts,
          },
          metadata_key: rec.metadataKey,
          files,
          total_bytes: files.reduce((a, f) => a + f.size, 0),
        };
        const manifestKey = bundleManifestKey(manifest);
        await target.put(manifestKey, encodeBundleManifest(manifest));
        const manifestPath = target.localPath?.(manifestKey);
        await syncLocation(loc, manifestPath === undefined ? [] : [manifestPath]);
        const result = { uri: locationUri(loc, manifestKey), bytesDone, bytesTotal, bytesWritten, filesTotal: files.length, filesWritten };
        this.#d.log.info({ snapshot: rec.name, collection: rec.collectionName, uri: result.uri, bytesWritten, bytesTotal }, 'snapshot exported');
        return result;
      } finally {
        await target.close();
      }
    } finally {
      this.inFlight.delete(track);
      await snapshots.unpin(pin.id);
    }
  }

  #remember(key: string, sha256: string, size: number): void {
    if (this.#hashes.size >= HASHES_CACHED_MAX) this.#hashes.delete(this.#hashes.keys().next().value!);
    this.#hashes.set(key, { sha256, size });
  }
}
