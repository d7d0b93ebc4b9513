/**
 * ObjectStore over a local directory: the embedded default (`<data>/objects`).
 *
 * Atomic put: bytes go to a fresh file under `<root>/.quiver-tmp/`, are fsynced, then renamed over the
 * destination; the destination directory is fsynced too (and every directory the put created, up to the
 * first that existed), so an acknowledged put survives a crash and a reader never sees a partial file.
 * Temp files live outside the key tree, so `list` never shows them. A crash can strand temp files;
 * they are invisible and `removeTempFiles()` clears them.
 *
 * Copy: a hardlink (`fs.link`) — O(1) and safe because objects are never modified in place (a put
 * replaces the directory entry, so the other link keeps the old bytes). Where links are impossible
 * (EXDEV, EPERM, ...) it falls back to `copyFile` with reflink-if-possible; copyMode 'copy' forces a
 * real byte copy (benchmarks). Deletes remove directories left empty, so a put that races such a
 * cleanup can find its directory gone; it then recreates it and retries.
 */

import { randomBytes } from 'node:crypto';
import { constants as fsConstants } from 'node:fs';
import { link, mkdir, open, readdir, rename, rm, rmdir, stat, unlink, copyFile, type FileHandle } from 'node:fs/promises';
import { dirname, join, resolve, sep } from 'node:path';
import { isQuiverError, quiverError, type QuiverError } from '../common/errors.js';
import { compareObjectKeys, RESERVED_TMP_SEGMENT, validateObjectKey, validateObjectPrefix, validateRange } from './object-key.js';
import type { ObjectInfo, ObjectStore, ObjectStoreOp } from './object-store.js';

export interface LocalObjectStoreOptions {
  /** fsync files and directories on put/copy (default true). Off only for tests and benchmarks. */
  readonly fsync?: boolean | undefined;
  /** 'link' (default): hardlink, falling back to a copy. 'copy': always copy bytes. */
  readonly copyMode?: 'link' | 'copy' | undefined;
}

/** How many file system calls list/deletePrefix keep in flight. */
const PARALLEL_FS_CALLS = 64;
/** Attempts of a rename whose target directory a concurrent delete removed. */
const RENAME_ATTEMPTS_MAX = 5;
const COPY_CHUNK_BYTES = 1 << 20;
/** link(2) failures that mean "this file system cannot link here", not "the source is bad". */
const LINK_UNSUPPORTED = new Set(['EXDEV', 'EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'EMLINK', 'ENOSYS']);
const NOT_FOUND = new Set(['ENOENT', 'ENOTDIR', 'EISDIR']);

export class LocalObjectStore implements ObjectStore {
  readonly name = 'local';
  readonly #root: string;
  readonly #tmpDir: string;
  readonly #fsync: boolean;
  readonly #copyMode: 'link' | 'copy';
  /** Temp names are unique per process and instance; they never influence results, only avoid clashes. */
  readonly #tmpPrefix: string;
  #tmpCounter = 0;
  #tmpDirReady: Promise<void> | undefined;
  #closed = false;

  constructor(rootDir: string, options: LocalObjectStoreOptions = {}) {
    this.#root = resolve(rootDir);
    this.#tmpDir = join(this.#root, RESERVED_TMP_SEGMENT);
    this.#fsync = options.fsync ?? true;
    this.#copyMode = options.copyMode ?? 'link';
    this.#tmpPrefix = `${process.pid}-${randomBytes(4).toString('hex')}`;
  }

  get rootDir(): string {
    return this.#root;
  }

  async put(key: string, data: Uint8Array): Promise<void> {
    this.#checkOpen();
    validateObjectKey(key);
    if (!(data instanceof Uint8Array)) {
      throw quiverError('ParameterInvalid', `object store local: put ${JSON.stringify(key)}: data must be a Uint8Array`);
    }
    const tmp = await this.#newTmpPath('put', key);
    try {
      const fh = await open(tmp, 'wx');
      try {
        await fh.writeFile(data);
        if (this.#fsync) await fh.sync();
      } finally {
        await fh.close();
      }
      await this.#renameIntoPlace(tmp, key);
    } catch (e) {
      await rm(tmp, { force: true }).catch(() => undefined);
      throw ioError('put', key, e);
    }
  }

  async get(key: string): Promise<Uint8Array> {
    this.#checkOpen();
    validateObjectKey(key);
    let fh: FileHandle | undefined;
    try {
      fh = await open(this.#pathOf(key), 'r');
      const size = (await fh.stat()).size;
      // A fresh, exactly sized, 8-byte aligned buffer: Arrow readers can view it without copying.
      const out = new Uint8Array(size);
      await readFully(fh, out, 0);
      return out;
    } catch (e) {
      throw ioError('get', key, e);
    } finally {
      await fh?.close();
    }
  }

  async getRange(key: string, offset: number, length: number): Promise<Uint8Array> {
    this.#checkOpen();
    validateObjectKey(key);
    validateRange(key, offset, length);
    let fh: FileHandle | undefined;
    try {
      fh = await open(this.#pathOf(key), 'r');
      const size = (await fh.stat()).size;
      if (offset > size) {
        throw quiverError('ParameterInvalid', `object ${JSON.stringify(key)}: range offset ${offset} is beyond its size ${size}`);
      }
      const out = new Uint8Array(Math.min(length, size - offset));
      await readFully(fh, out, offset);
      return out;
    } catch (e) {
      throw ioError('getRange', key, e);
    } finally {
      await fh?.close();
    }
  }

  async stat(key: string): Promise<ObjectInfo | undefined> {
    this.#checkOpen();
    validateObjectKey(key);
    try {
      const s = await stat(this.#pathOf(key));
      return s.isFile() ? { key, size: s.size, lastModifiedMs: Math.floor(s.mtimeMs) } : undefined;
    } catch (e) {
      if (errCode(e) === 'ENOENT' || errCode(e) === 'ENOTDIR') return undefined;
      throw ioError('stat', key, e);
    }
  }

  async list(prefix: string): Promise<ObjectInfo[]> {
    this.#checkOpen();
    validateObjectPrefix(prefix);
    try {
      const keys = await this.#listKeys(prefix);
      const infos: ObjectInfo[] = [];
      await forEachParallel(keys, async (key) => {
        try {
          const s = await stat(this.#pathOf(key));
          if (s.isFile()) infos.push({ key, size: s.size, lastModifiedMs: Math.floor(s.mtimeMs) });
        } catch (e) {
          if (errCode(e) !== 'ENOENT') throw e; // deleted since readdir: not listed
        }
      });
      return infos.sort((a, b) => compareObjectKeys(a.key, b.key));
    } catch (e) {
      throw ioError('list', prefix, e);
    }
  }

  async delete(key: string): Promise<void> {
    this.#checkOpen();
    validateObjectKey(key);
    try {
      const removed = await this.#unlink(key);
      if (removed) await this.#pruneAndSync([dirname(this.#pathOf(key))]);
    } catch (e) {
      throw ioError('delete', key, e);
    }
  }

  async deletePrefix(prefix: string): Promise<number> {
    this.#checkOpen();
    validateObjectPrefix(prefix);
    if (prefix.length === 0) throw quiverError('ParameterInvalid', 'object store local: deletePrefix refuses the empty prefix');
    try {
      const keys = await this.#listKeys(prefix);
      let removed = 0;
      const dirs = new Set<string>();
      await forEachParallel(keys, async (key) => {
        if (await this.#unlink(key)) {
          removed += 1;
          dirs.add(dirname(this.#pathOf(key)));
        }
      });
      await this.#pruneAndSync([...dirs]);
      return removed;
    } catch (e) {
      throw ioError('deletePrefix', prefix, e);
    }
  }

  async copy(srcKey: string, dstKey: string): Promise<void> {
    this.#checkOpen();
    validateObjectKey(srcKey);
    validateObjectKey(dstKey);
    if (srcKey === dstKey) {
      if ((await this.stat(srcKey)) === undefined) throw notFound('copy', srcKey);
      return;
    }
    const src = this.#pathOf(srcKey);
    const tmp = await this.#newTmpPath('copy', dstKey);
    try {
      try {
        if (this.#copyMode === 'copy') await this.#copyBytes(src, tmp);
        else await this.#linkOrCopy(src, tmp);
      } catch (e) {
        if (NOT_FOUND.has(errCode(e) ?? '')) throw notFound('copy', srcKey);
        throw e;
      }
      await this.#renameIntoPlace(tmp, dstKey);
    } catch (e) {
      await rm(tmp, { force: true }).catch(() => undefined);
      throw ioError('copy', `${srcKey} -> ${dstKey}`, e);
    }
  }

  /** The file of `key` (whether or not it exists). */
  localPath(key: string): string {
    validateObjectKey(key);
    return this.#pathOf(key);
  }

  /** Removes temp files stranded by a crash. Only call when no put/copy is in flight on this root. */
  async removeTempFiles(): Promise<number> {
    this.#checkOpen();
    try {
      const names = await readdir(this.#tmpDir);
      await forEachParallel(names, (n) => rm(join(this.#tmpDir, n), { force: true }));
      return names.length;
    } catch (e) {
      if (errCode(e) === 'ENOENT') return 0;
      throw ioError('removeTempFiles', RESERVED_TMP_SEGMENT, e);
    }
  }

  async close(): Promise<void> {
    this.#closed = true;
  }

  #checkOpen(): void {
    if (this.#closed) throw quiverError('ServiceNotReady', `object store local ${JSON.stringify(this.#root)} is closed`);
  }

  #pathOf(key: string): string {
    return join(this.#root, ...key.split('/'));
  }

  async #newTmpPath(op: ObjectStoreOp, key: string): Promise<string> {
    this.#tmpDirReady ??= mkdir(this.#tmpDir, { recursive: true }).then(() => undefined);
    try {
      await this.#tmpDirReady;
    } catch (e) {
      this.#tmpDirReady = undefined;
      throw ioError(op, key, e);
    }
    this.#tmpCounter += 1;
    return join(this.#tmpDir, `${this.#tmpPrefix}-${this.#tmpCounter}`);
  }

  /** Renames a finished temp file onto `key`, creating (and syncing) missing directories. */
  async #renameIntoPlace(tmp: string, key: string): Promise<void> {
    const dst = this.#pathOf(key);
    const parent = dirname(dst);
    for (let attempt = 1; ; attempt++) {
      let firstCreated: string | undefined;
      try {
        firstCreated = await mkdir(parent, { recursive: true });
        await rename(tmp, dst);
      } catch (e) {
        const code = errCode(e);
        // ENOENT: a concurrent delete pruned the (empty) directory between mkdir and rename.
        if (code === 'ENOENT' && attempt < RENAME_ATTEMPTS_MAX) continue;
        if (code === 'EISDIR' || code === 'ENOTEMPTY' || code === 'ENOTDIR' || code === 'EEXIST') {
          throw quiverError('ParameterInvalid', `object key ${JSON.stringify(key)} conflicts with an existing object or directory (${code})`, e);
        }
        throw e;
      }
      if (this.#fsync) {
        if (firstCreated !== undefined) {
          // New directories are only durable once their own parents are synced.
          for (let d = parent; d.length >= firstCreated.length; d = dirname(d)) await syncDir(dirname(d));
        }
        await syncDir(parent);
      }
      return;
    }
  }

  async #linkOrCopy(src: string, tmp: string): Promise<void> {
    try {
      await link(src, tmp);
      return;
    } catch (e) {
      if (!LINK_UNSUPPORTED.has(errCode(e) ?? '')) throw e;
    }
    await copyFile(src, tmp, fsConstants.COPYFILE_FICLONE);
    if (this.#fsync) await syncFile(tmp);
  }

  /** A physical byte copy (copy_file_range may share extents, so this reads and writes). */
  async #copyBytes(src: string, tmp: string): Promise<void> {
    const input = await open(src, 'r');
    try {
      const output = await open(tmp, 'wx');
      try {
        const buf = new Uint8Array(COPY_CHUNK_BYTES);
        for (;;) {
          const { bytesRead } = await input.read(buf, 0, buf.byteLength, null);
          if (bytesRead === 0) break;
          await output.write(buf, 0, bytesRead);
        }
        if (this.#fsync) await output.sync();
      } finally {
        await output.close();
      }
    } finally {
      await input.close();
    }
  }

  /** Keys (paths relative to the root, '/'-separated) starting with `prefix`, unsorted. */
  async #listKeys(prefix: string): Promise<string[]> {
    const slash = prefix.lastIndexOf('/');
    const startRel = slash < 0 ? '' : prefix.slice(0, slash);
    const keys: string[] = [];
    const walk = async (rel: string): Promise<void> => {
      let entries;
      try {
        entries = await readdir(rel === '' ? this.#root : this.#pathOf(rel), { withFileTypes: true });
      } catch (e) {
        if (errCode(e) === 'ENOENT' || errCode(e) === 'ENOTDIR') return;
        throw e;
      }
      const subdirs: string[] = [];
      for (const entry of entries) {
        if (rel === '' && entry.name === RESERVED_TMP_SEGMENT) continue;
        const childRel = rel === '' ? entry.name : `${rel}/${entry.name}`;
        if (entry.isDirectory()) {
          // Descend only where keys under the directory can still start with the prefix.
          const asDir = `${childRel}/`;
          if (asDir.startsWith(prefix) || prefix.startsWith(asDir)) subdirs.push(childRel);
        } else if (entry.isFile() && childRel.startsWith(prefix)) {
          keys.push(childRel);
        }
      }
      await forEachParallel(subdirs, walk);
    };
    await walk(startRel);
    return keys;
  }

  /** Unlinks the file of `key`; false when there was none. */
  async #unlink(key: string): Promise<boolean> {
    try {
      await unlink(this.#pathOf(key));
      return true;
    } catch (e) {
      const code = errCode(e);
      // EISDIR/EPERM: the key names a directory (a prefix of other keys), not an object.
      if (code === 'ENOENT' || code === 'ENOTDIR' || code === 'EISDIR' || code === 'EPERM') return false;
      throw e;
    }
  }

  /**
   * Removes directories left empty (up to, not including, the root) and syncs the deepest surviving
   * directory of each chain, so that the deletes are durable.
   */
  async #pruneAndSync(dirs: readonly string[]): Promise<void> {
    // Deepest first, so that a parent is tried after its children are gone.
    const ordered = [...new Set(dirs)].sort((a, b) => b.split(sep).length - a.split(sep).length);
    const toSync = new Set<string>();
    for (const start of ordered) {
      let d = start;
      while (d.length > this.#root.length && d.startsWith(this.#root + sep)) {
        try {
          await rmdir(d);
        } catch (e) {
          const code = errCode(e);
          if (code === 'ENOENT') {
            d = dirname(d);
            continue;
          }
          if (code !== 'ENOTEMPTY' && code !== 'EEXIST') throw e;
          break;
        }
        d = dirname(d);
      }
      toSync.add(d);
    }
    if (!this.#fsync) return;
    for (const d of toSync) {
      try {
        await syncDir(d);
      } catch (e) {
        // A concurrent delete emptied and removed the directory since: it synced the parent that
        // records the removal, and there is nothing left here to make durable.
        if (errCode(e) !== 'ENOENT') throw e;
      }
    }
  }
}

async function readFully(fh: FileHandle, out: Uint8Array, position: number): Promise<void> {
  let done = 0;
  while (done < out.byteLength) {
    const { bytesRead } = await fh.read(out, done, out.byteLength - done, position + done);
    if (bytesRead === 0) throw Object.assign(new Error(`file shrank while reading (${done} of ${out.byteLength} bytes)`), { code: 'ESHORT' });
    done += bytesRead;
  }
}

async function syncFile(path: string): Promise<void> {
  const fh = await open(path, 'r+');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

async function syncDir(path: string): Promise<void> {
  let fh: FileHandle | undefined;
  try {
    fh = await open(path, 'r');
    await fh.sync();
  } catch (e) {
    // Some platforms cannot open or fsync a directory; there is nothing more to do there.
    const code = errCode(e);
    if (code !== 'EISDIR' && code !== 'EPERM' && code !== 'EINVAL' && code !== 'EACCES') throw e;
  } finally {
    await fh?.close();
  }
}

async function forEachParallel<T>(items: readonly T[], fn: (item: T) => Promise<unknown>): Promise<void> {
  for (let i = 0; i < items.length; i += PARALLEL_FS_CALLS) {
    await Promise.all(items.slice(i, i + PARALLEL_FS_CALLS).map(fn));
  }
}

function errCode(e: unknown): string | undefined {
  const code = (e as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

function notFound(op: ObjectStoreOp, key: string): QuiverError {
  return quiverError('IoKeyNotFound', `object store local: ${op}: no object ${JSON.stringify(key)}`);
}

/** Maps a file system error of `op` on `key`: absent files are IoKeyNotFound, the rest IoFailed. */
function ioError(op: string, key: string, e: unknown): QuiverError {
  if (isQuiverError(e)) return e;
  const code = errCode(e);
  if ((op === 'get' || op === 'getRange') && code !== undefined && NOT_FOUND.has(code)) {
    return quiverError('IoKeyNotFound', `object store local: ${op}: no object ${JSON.stringify(key)}`, e);
  }
  const message = e instanceof Error ? e.message : String(e);
  return quiverError('IoFailed', `object store local: ${op} ${JSON.stringify(key)} failed: ${message}`, e);
}
