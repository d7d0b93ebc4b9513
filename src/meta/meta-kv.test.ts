import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { decodeString } from './json.js';
import { MemoryMetaKV } from './memory-kv.js';
import { runMetaKvConformance } from './meta-kv.conformance.js';
import { SqliteMetaKV } from './sqlite-kv.js';

const dir = mkdtempSync(join(tmpdir(), 'quiver-meta-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let fileCounter = 0;
runMetaKvConformance('memory', () => new MemoryMetaKV());
runMetaKvConformance('sqlite :memory:', () => new SqliteMetaKV(':memory:'));
runMetaKvConformance('sqlite file', () => new SqliteMetaKV(join(dir, `conf-${++fileCounter}.db`)));

describe('SqliteMetaKV persistence', () => {
  it('keeps entries, versions and the revision across close and reopen', async () => {
    const path = join(dir, 'reopen.db');
    const kv = new SqliteMetaKV(path);
    await kv.put('a/1', 'one');
    await kv.put('a/1', 'uno');
    await kv.put('a/2', 'two');
    await kv.txn(
      [],
      [
        { type: 'delete', key: 'a/2' },
        { type: 'put', key: 'b', value: new Uint8Array([0, 255]) },
      ],
    );
    await kv.close();

    const again = new SqliteMetaKV(path);
    try {
      expect(await again.revision()).toBe(4);
      const a1 = await again.get('a/1');
      expect(a1).toMatchObject({ createRevision: 1, modRevision: 2, version: 2 });
      expect(a1 && decodeString(a1)).toBe('uno');
      expect(await again.get('a/2')).toBeUndefined();
      expect(Array.from((await again.get('b'))?.value ?? [])).toEqual([0, 255]);
      expect(await again.put('c', 'x')).toBe(5);
    } finally {
      await again.close();
    }
  });

  it('opens in WAL mode with synchronous=FULL', async () => {
    const path = join(dir, 'pragmas.db');
    const kv = new SqliteMetaKV(path);
    await kv.put('k', 'v');
    await kv.close();
    // Inspect the file with a second connection: journal_mode=WAL is persistent in the file.
    const Database = (await import('better-sqlite3')).default;
    const db = new Database(path, { readonly: true });
    try {
      expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
    } finally {
      db.close();
    }
  });

  it('reports an unopenable path as IoFailed naming the path', () => {
    const bad = join(dir, 'no-such-dir', 'x.db');
    expect(() => new SqliteMetaKV(bad)).toThrow(/no-such-dir/);
  });
});
