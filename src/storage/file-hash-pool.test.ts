import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sha256Of } from './content-hash.js';
import { FileHashPool } from './file-hash-pool.js';

describe('FileHashPool', () => {
  let dir: string;
  const pool = new FileHashPool({ threads: 2 });
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'quiver-hash-pool-'));
  });
  afterAll(async () => {
    await pool.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('answers the SHA-256 and size of each file, many at once, across chunk boundaries', async () => {
    // Sizes around the worker's 4 MiB read: empty, small, exactly one chunk, a chunk and a byte.
    const sizes = [0, 1, 1000, 4 * 1024 * 1024, 4 * 1024 * 1024 + 1, 9_000_000];
    const files = await Promise.all(
      sizes.map(async (n, i) => {
        const bytes = randomBytes(n);
        const path = join(dir, `f${i}`);
        await writeFile(path, bytes);
        return { path, sha256: createHash('sha256').update(bytes).digest('hex'), size: n };
      }),
    );
    const got = await Promise.all([...files, ...files].map((f) => pool.hash(f.path)));
    expect(got).toEqual([...files, ...files].map((f) => ({ sha256: f.sha256, size: f.size })));
  });

  it('a missing file rejects with ENOENT, and the pool keeps working', async () => {
    await expect(pool.hash(join(dir, 'nope'))).rejects.toMatchObject({ code: 'ENOENT' });
    const path = join(dir, 'after');
    await writeFile(path, 'abc');
    expect(await pool.hash(path)).toEqual({ sha256: createHash('sha256').update('abc').digest('hex'), size: 3 });
  });

  it('refuses work once closed', async () => {
    const p = new FileHashPool({ threads: 1 });
    await p.close();
    await expect(p.hash(join(dir, 'after'))).rejects.toThrow(/closed/);
  });
});

describe('sha256Of (bytes in memory, at write time)', () => {
  it('equals createHash for small (inline) and large (thread pool) inputs', async () => {
    for (const n of [0, 5, 64 * 1024, 64 * 1024 + 1, 3_000_000]) {
      const bytes = randomBytes(n);
      expect(await sha256Of(bytes), String(n)).toBe(createHash('sha256').update(bytes).digest('hex'));
    }
    // A view into a larger buffer hashes only its own bytes.
    const big = randomBytes(200_000);
    const view = big.subarray(1000, 150_000);
    expect(await sha256Of(view)).toBe(createHash('sha256').update(view).digest('hex'));
  });
});
