/**
 * Export of a file from a local store into a local bundle root without moving its bytes through this
 * process: `fs.copyFile` (a reflink where the filesystem shares extents, else an in-kernel copy) writes
 * the blob, and the SHA-256 that names it comes from a streamed read of the source running beside the
 * copy (that second read hits the page cache; on worker threads when the exporter passes its FileHashPool),
 * or is not computed at all when it is already known (recorded when the file was written, or hashed by an
 * earlier export).
 *
 * A blob is copied to a temp file under `{root}/.quiver-tmp/` (never read: readers start from a bundle
 * manifest, and a crash leaves at most temp files), then renamed to `blobs/sha256/{h[0..2]}/{h}` once its
 * hash is known. No fsync here: the exporter fsyncs every written blob at once before it writes the
 * bundle manifest (`syncLocation`), which is what makes them part of a bundle.
 */

import { createHash } from 'node:crypto';
import { constants as fsConstants, createReadStream } from 'node:fs';
import { copyFile, mkdir, rename, rm, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { blobKey } from './bundle-format.js';

/** Read size of the hashing stream: large enough that the per-chunk overhead vanishes beside the hash. */
const HASH_CHUNK_BYTES = 4 * 1024 * 1024;
const TMP_DIR = '.quiver-tmp';

export interface FileHash {
  readonly sha256: string;
  readonly size: number;
}

/** SHA-256 and size of a file, streamed (bounded memory whatever the file's size). */
export async function hashFile(path: string): Promise<FileHash> {
  const h = createHash('sha256');
  let size = 0;
  for await (const chunk of createReadStream(path, { highWaterMark: HASH_CHUNK_BYTES })) {
    const b = chunk as Buffer;
    h.update(b);
    size += b.byteLength;
  }
  return { sha256: h.digest('hex'), size };
}

export interface CopyOutcome extends FileHash {
  /** The blob's path when this call wrote it (the exporter fsyncs these), undefined when it was there. */
  readonly written: string | undefined;
}

/** Hashes a whole file: `hashFile` on this thread, or a FileHashPool's worker threads. */
export type FileHasher = (path: string) => Promise<FileHash>;

export class LocalBlobs {
  readonly #root: string;
  readonly #hash: FileHasher;
  readonly #tmpPrefix = `export-${process.pid}-${Date.now().toString(36)}`;
  #tmpCounter = 0;
  #tmpReady: Promise<unknown> | undefined;

  constructor(root: string, hash: FileHasher = hashFile) {
    this.#root = root;
    this.#hash = hash;
  }

  /** True when the blob of that hash exists with that size (blobs are written whole: renamed into place). */
  async has(h: FileHash): Promise<boolean> {
    const s = await stat(this.#blobPath(h.sha256)).catch(() => undefined);
    return s?.size === h.size;
  }

  /**
   * Puts the file at `src` into the bundle as a blob. `known`: its hash from an earlier read (source files
   * are immutable), so nothing is read. Otherwise, `speculative` (a fresh root, where a blob rarely exists
   * already) copies while hashing and drops the copy if the blob turns out to exist; without it the file
   * is hashed first and copied only when its blob is missing (an incremental export writes what changed).
   */
  async copyIn(src: string, known: FileHash | undefined, speculative: boolean): Promise<CopyOutcome> {
    if (known !== undefined) {
      if (await this.has(known)) return { ...known, written: undefined };
      return { ...known, written: await this.#place(await this.#copyToTmp(src), known.sha256) };
    }
    if (!speculative) {
      const h = await this.#hash(src);
      if (await this.has(h)) return { ...h, written: undefined };
      return { ...h, written: await this.#place(await this.#copyToTmp(src), h.sha256) };
    }
    const tmp = await this.#tmpPath();
    try {
      const [h] = await Promise.all([this.#hash(src), this.#copy(src, tmp)]);
      if (await this.has(h)) {
        await rm(tmp, { force: true });
        return { ...h, written: undefined };
      }
      return { ...h, written: await this.#place(tmp, h.sha256) };
    } catch (e) {
      await rm(tmp, { force: true }).catch(() => undefined);
      throw e;
    }
  }

  #blobPath(sha256: string): string {
    return join(this.#root, ...blobKey(sha256).split('/'));
  }

  async #tmpPath(): Promise<string> {
    const dir = join(this.#root, TMP_DIR);
    this.#tmpReady ??= mkdir(dir, { recursive: true });
    await this.#tmpReady;
    this.#tmpCounter++;
    return join(dir, `${this.#tmpPrefix}-${this.#tmpCounter}`);
  }

  async #copyToTmp(src: string): Promise<string> {
    const tmp = await this.#tmpPath();
    try {
      await this.#copy(src, tmp);
      return tmp;
    } catch (e) {
      await rm(tmp, { force: true }).catch(() => undefined);
      throw e;
    }
  }

  #copy(src: string, tmp: string): Promise<void> {
    return copyFile(src, tmp, fsConstants.COPYFILE_FICLONE);
  }

  /** Renames a finished temp file to its blob path; returns that path. */
  async #place(tmp: string, sha256: string): Promise<string> {
    const dst = this.#blobPath(sha256);
    try {
      await mkdir(dirname(dst), { recursive: true });
      await rename(tmp, dst);
      return dst;
    } catch (e) {
      await rm(tmp, { force: true }).catch(() => undefined);
      throw e;
    }
  }
}
