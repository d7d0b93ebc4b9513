import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SeededRandom } from '../../../testing/index.js';
import { blobKey, sha256Hex } from './bundle-format.js';
import { hashFile, LocalBlobs } from './local-blobs.js';

describe('LocalBlobs: kernel copy into a bundle root, hashed beside it', () => {
  let dir: string;
  let root: string;
  let src: string;
  let bytes: Uint8Array;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'quiver-blobs-'));
    root = join(dir, 'bundle');
    src = join(dir, 'src.bin');
    // More than one read chunk (4 MiB), not a multiple of it.
    const r = new SeededRandom(7);
    bytes = new Uint8Array(9 * 1024 * 1024 + 123);
    for (let i = 0; i < bytes.length; i++) bytes[i] = r.int(256);
    await writeFile(src, bytes);
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const blobAt = (sha: string) => join(root, ...blobKey(sha).split('/'));
  const tmpFiles = async () => readdir(join(root, '.quiver-tmp')).catch(() => []);

  it('hashFile streams the same SHA-256 and size as hashing the whole file', async () => {
    expect(await hashFile(src)).toEqual({ sha256: sha256Hex(bytes), size: bytes.byteLength });
  });

  for (const speculative of [true, false]) {
    it(`an unknown file is hashed and written once under its hash (speculative ${speculative}); a second put writes nothing`, async () => {
      const blobs = new LocalBlobs(root);
      const first = await blobs.copyIn(src, undefined, speculative);
      expect(first).toEqual({ sha256: sha256Hex(bytes), size: bytes.byteLength, written: blobAt(sha256Hex(bytes)) });
      expect(Buffer.compare(await readFile(first.written!), bytes)).toBe(0);
      const again = await blobs.copyIn(src, undefined, speculative);
      expect(again).toEqual({ sha256: first.sha256, size: first.size, written: undefined });
      expect(await tmpFiles()).toEqual([]);
    });
  }

  it('a known hash is trusted (source files are immutable): the file is copied under it without being read for a hash', async () => {
    const blobs = new LocalBlobs(root);
    const known = { sha256: 'ab'.repeat(32), size: bytes.byteLength };
    const out = await blobs.copyIn(src, known, false);
    expect(out).toEqual({ ...known, written: blobAt(known.sha256) });
    expect(Buffer.compare(await readFile(out.written!), bytes)).toBe(0);
    // A blob of that name and size is taken as present; one of another size is not.
    expect(await blobs.has(known)).toBe(true);
    expect(await blobs.has({ ...known, size: 1 })).toBe(false);
  });

  it('a missing source fails with ENOENT and leaves no temp file', async () => {
    const blobs = new LocalBlobs(root);
    for (const speculative of [true, false]) {
      await expect(blobs.copyIn(join(dir, 'nope'), undefined, speculative)).rejects.toMatchObject({ code: 'ENOENT' });
    }
    await expect(blobs.copyIn(join(dir, 'nope'), { sha256: 'cd'.repeat(32), size: 3 }, false)).rejects.toMatchObject({ code: 'ENOENT' });
    expect(await tmpFiles()).toEqual([]);
  });
});
