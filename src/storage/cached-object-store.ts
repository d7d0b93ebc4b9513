/**
 * A local disk cache in front of a remote object store (S3), for the files a restart reads whole: segment
 * binlogs and index files (Milvus keeps such a local chunk cache on its query nodes). A process that wrote a
 * segment keeps a copy, so restarting it on the same data dir reads local disk instead of downloading every
 * file again; files it only read are cached on first read.
 *
 * Correctness does not rest on the layout's write-once keys alone: every cache hit is checked against the
 * remote object's size and last-modified time (one HEAD), and a mismatch, a missing remote object, or an
 * unreadable cache file falls back to the remote store. The remote store stays the only source of truth: a
 * lost or corrupted cache costs a download, never data. Deletes and copies drop the affected entries first.
 *
 * Bounded: at most `maxBytes` on disk, least recently used files evicted first. The index is rebuilt from
 * the directory at open (entries found there are re-validated on their first hit).
 */

import { randomBytes } from 'node:crypto';
import { mkdir, readFile, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, join, relative, sep } from 'node:path';
import { DELTA_LOG_ROOT, INDEX_FILES_ROOT, INSERT_LOG_ROOT, STATS_LOG_ROOT } from './paths.js';
import type { ObjectInfo, ObjectStore } from './object-store.js';

/** Default cache size bound: 8 GiB. */
export const DEFAULT_CACHE_MAX_BYTES = 8 * 1024 ** 3;

const CACHED_ROOTS = [INSERT_LOG_ROOT, DELTA_LOG_ROOT, STATS_LOG_ROOT, INDEX_FILES_ROOT].map((r) => `${r}/`);

interface Entry {
  readonly size: number;
  /** Remote last-modified time it was validated against; undefined until the first validation. */
  remoteModifiedMs: number | undefined;
}

export interface CacheStats {
  hits: number;
  misses: number;
  evictions: number;
  bytes: number;
}

export class CachedObjectStore implements ObjectStore {
  readonly name: string;
  readonly #inner: ObjectStore;
  readonly #dir: string;
  readonly #maxBytes: number;
  /** key → entry; Map order is recency (a hit re-inserts), so the first key is the eviction candidate. */
  readonly #entries = new Map<string, Entry>();
  readonly #stats: CacheStats = { hits: 0, misses: 0, evictions: 0, bytes: 0 };

  private constructor(inner: ObjectStore, dir: string, maxBytes: number) {
    this.name = `${inner.name}+cache`;
    this.#inner = inner;
    this.#dir = dir;
    this.#maxBytes = maxBytes;
  }

  /** Opens the cache in `dir` (created if needed) and indexes the files already there. */
  static async open(inner: ObjectStore, dir: string, maxBytes = DEFAULT_CACHE_MAX_BYTES): Promise<CachedObjectStore> {
    const store = new CachedObjectStore(inner, dir, maxBytes);
    await mkdir(dir, { recursive: true });
    await store.#index();
    return store;
  }

  stats(): Readonly<CacheStats> {
    return { ...this.#stats };
  }

  async put(key: string, data: Uint8Array): Promise<void> {
    await this.#drop(key);
    await this.#inner.put(key, data);
    if (cacheable(key)) await this.#fill(key, data, undefined);
  }

  async get(key: string): Promise<Uint8Array> {
    if (!cacheable(key)) return this.#inner.get(key);
    const local = await this.#read(key);
    if (local !== undefined) return local;
    this.#stats.misses++;
    const remoteBefore = await this.#inner.stat(key);
    const data = await this.#inner.get(key);
    // Record the validation stamp only when the object did not change while it was downloaded.
    const stamp = remoteBefore !== undefined && remoteBefore.size === data.length ? remoteBefore.lastModifiedMs : undefined;
    await this.#fill(key, data, stamp);
    return data;
  }

  async getRange(key: string, offset: number, length: number): Promise<Uint8Array> {
    if (cacheable(key) && this.#entries.has(key)) {
      const local = await this.#read(key);
      if (local !== undefined && offset <= local.length) return local.subarray(offset, Math.min(local.length, offset + length));
    }
    return this.#inner.getRange(key, offset, length);
  }

  stat(key: string): Promise<ObjectInfo | undefined> {
    return this.#inner.stat(key);
  }

  list(prefix: string): Promise<ObjectInfo[]> {
    return this.#inner.list(prefix);
  }

  async delete(key: string): Promise<void> {
    await this.#drop(key);
    await this.#inner.delete(key);
  }

  async deletePrefix(prefix: string): Promise<number> {
    for (const key of [...this.#entries.keys()]) if (key.startsWith(prefix)) await this.#drop(key);
    return this.#inner.deletePrefix(prefix);
  }

  async copy(srcKey: string, dstKey: string): Promise<void> {
    await this.#drop(dstKey);
    await this.#inner.copy(srcKey, dstKey);
  }

  async close(): Promise<void> {
    await this.#inner.close();
  }

  /** The cached bytes if present and still matching the remote object; drops a stale entry. */
  async #read(key: string): Promise<Uint8Array | undefined> {
    const entry = this.#entries.get(key);
    if (entry === undefined) return undefined;
    const remote = await this.#inner.stat(key);
    const fresh =
      remote !== undefined && remote.size === entry.size && (entry.remoteModifiedMs === undefined || entry.remoteModifiedMs === remote.lastModifiedMs);
    if (!fresh) {
      await this.#drop(key);
      return undefined;
    }
    let data: Uint8Array;
    try {
      data = await readFile(this.#path(key));
    } catch {
      await this.#drop(key);
      return undefined;
    }
    if (data.length !== entry.size) {
      await this.#drop(key);
      return undefined;
    }
    entry.remoteModifiedMs = remote.lastModifiedMs;
    this.#entries.delete(key);
    this.#entries.set(key, entry);
    this.#stats.hits++;
    return data;
  }

  /** Best effort: a cache that cannot be written (disk full, permissions) only costs downloads later. */
  async #fill(key: string, data: Uint8Array, remoteModifiedMs: number | undefined): Promise<void> {
    if (data.length > this.#maxBytes) return;
    try {
      await this.#evictFor(data.length);
      const path = this.#path(key);
      await mkdir(dirname(path), { recursive: true });
      const tmp = `${path}.tmp-${randomBytes(6).toString('hex')}`;
      await writeFile(tmp, data);
      await rename(tmp, path);
      this.#entries.set(key, { size: data.length, remoteModifiedMs });
      this.#stats.bytes += data.length;
    } catch {
      // Not cached; the remote copy is intact.
    }
  }

  async #evictFor(bytes: number): Promise<void> {
    for (const key of this.#entries.keys()) {
      if (this.#stats.bytes + bytes <= this.#maxBytes) return;
      await this.#drop(key);
      this.#stats.evictions++;
    }
  }

  async #drop(key: string): Promise<void> {
    const entry = this.#entries.get(key);
    if (entry === undefined) return;
    this.#entries.delete(key);
    this.#stats.bytes -= entry.size;
    await rm(this.#path(key), { force: true });
  }

  #path(key: string): string {
    return join(this.#dir, ...key.split('/'));
  }

  async #index(): Promise<void> {
    const found: { key: string; size: number; atimeMs: number }[] = [];
    for (const e of await readdir(this.#dir, { withFileTypes: true, recursive: true })) {
      if (!e.isFile()) continue;
      const path = join(e.parentPath, e.name);
      if (e.name.includes('.tmp-')) {
        await rm(path, { force: true });
        continue;
      }
      const key = relative(this.#dir, path).split(sep).join('/');
      if (!cacheable(key)) continue;
      const s = await stat(path);
      found.push({ key, size: s.size, atimeMs: s.mtimeMs });
    }
    found.sort((a, b) => a.atimeMs - b.atimeMs);
    for (const f of found) {
      this.#entries.set(f.key, { size: f.size, remoteModifiedMs: undefined });
      this.#stats.bytes += f.size;
    }
    await this.#evictFor(0);
  }
}

function cacheable(key: string): boolean {
  return CACHED_ROOTS.some((root) => key.startsWith(root));
}
