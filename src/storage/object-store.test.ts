import { mkdtempSync, readdirSync, rmSync, statSync, writeFileSync, existsSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { FakeClock } from '../common/clock.js';
import { isQuiverError } from '../common/errors.js';
import { LocalObjectStore } from './local-object-store.js';
import { MemoryObjectStore } from './memory-object-store.js';
import { runObjectStoreConformance } from './object-store.conformance.js';
import { RESERVED_TMP_SEGMENT } from './object-key.js';

const base = mkdtempSync(join(tmpdir(), 'quiver-objects-'));
afterAll(() => rmSync(base, { recursive: true, force: true }));
let dirCounter = 0;
const freshDir = (): string => join(base, `store-${++dirCounter}`);
const enc = (s: string): Uint8Array => new TextEncoder().encode(s);

runObjectStoreConformance('memory', () => new MemoryObjectStore());
runObjectStoreConformance('local (link, fsync)', () => new LocalObjectStore(freshDir()));
runObjectStoreConformance('local (copy, no fsync)', () => new LocalObjectStore(freshDir(), { fsync: false, copyMode: 'copy' }));

describe('LocalObjectStore specifics', () => {
  it('leaves no temp files behind and lays keys out as paths', async () => {
    const root = freshDir();
    const s = new LocalObjectStore(root);
    await Promise.all(Array.from({ length: 20 }, (_, i) => s.put(`a/b/${i}`, enc(String(i)))));
    await s.copy('a/b/1', 'c/1');
    expect(readdirSync(join(root, RESERVED_TMP_SEGMENT))).toEqual([]);
    expect(readFileSync(join(root, 'a', 'b', '7'), 'utf8')).toBe('7');
    expect(s.localPath('a/b/7')).toBe(join(root, 'a', 'b', '7'));
    expect(await s.removeTempFiles()).toBe(0);
  });

  it('copy is a hardlink in link mode and a separate file in copy mode', async () => {
    const linkRoot = freshDir();
    const linked = new LocalObjectStore(linkRoot);
    await linked.put('s', enc('bytes'));
    await linked.copy('s', 'd/x');
    expect(statSync(join(linkRoot, 'd', 'x')).ino).toBe(statSync(join(linkRoot, 's')).ino);

    const copyRoot = freshDir();
    const copied = new LocalObjectStore(copyRoot, { copyMode: 'copy' });
    await copied.put('s', enc('bytes'));
    await copied.copy('s', 'd/x');
    expect(statSync(join(copyRoot, 'd', 'x')).ino).not.toBe(statSync(join(copyRoot, 's')).ino);
    expect(readFileSync(join(copyRoot, 'd', 'x'), 'utf8')).toBe('bytes');
  });

  it('removes directories that deletes leave empty, but never the root', async () => {
    const root = freshDir();
    const s = new LocalObjectStore(root);
    await s.put('x/y/z/1', enc('1'));
    await s.put('x/keep', enc('k'));
    await s.delete('x/y/z/1');
    expect(existsSync(join(root, 'x', 'y'))).toBe(false);
    expect(existsSync(join(root, 'x'))).toBe(true);
    await s.put('p/q/1', enc('1'));
    await s.put('p/q/r/2', enc('2'));
    expect(await s.deletePrefix('p/')).toBe(2);
    expect(existsSync(join(root, 'p'))).toBe(false);
    await s.delete('x/keep');
    expect(existsSync(root)).toBe(true);
    expect(readdirSync(root).filter((n) => n !== RESERVED_TMP_SEGMENT)).toEqual([]);
  });

  it('puts racing deletes in the same directory all land', async () => {
    const s = new LocalObjectStore(freshDir());
    for (let round = 0; round < 20; round++) {
      await s.put(`race/${round}/old`, enc('o'));
      await Promise.all([s.delete(`race/${round}/old`), s.put(`race/${round}/new`, enc('n'))]);
      expect(await s.stat(`race/${round}/new`)).toMatchObject({ size: 1 });
    }
  });

  it('reports real I/O errors as IoFailed naming the key', async () => {
    const root = freshDir();
    writeFileSync(root, 'not a directory');
    const s = new LocalObjectStore(root);
    const err = await s.put('some/key', enc('x')).catch((e: unknown) => e);
    expect(isQuiverError(err, 'IoFailed')).toBe(true);
    expect(String(err)).toContain('some/key');
    expect((err as { retriable: boolean }).retriable).toBe(true);
    const listErr = await s.list('some/').catch((e: unknown) => e);
    expect(isQuiverError(listErr, 'IoFailed') || Array.isArray(listErr)).toBe(true);
  });

  it('refuses a key that collides with a directory', async () => {
    const s = new LocalObjectStore(freshDir());
    await s.put('a/b', enc('x'));
    const err = await s.put('a', enc('y')).catch((e: unknown) => e);
    expect(isQuiverError(err, 'ParameterInvalid')).toBe(true);
    expect(String(err)).toContain('"a"');
    expect(dec(await s.get('a/b'))).toBe('x');
  });

  it('sees data written by another instance on the same root', async () => {
    const root = freshDir();
    await new LocalObjectStore(root).put('shared/k', enc('v'));
    expect(dec(await new LocalObjectStore(root).get('shared/k'))).toBe('v');
  });
});

describe('MemoryObjectStore specifics', () => {
  it('stamps lastModifiedMs from its clock and has no local paths', async () => {
    const clock = new FakeClock(1_000);
    const s = new MemoryObjectStore({ clock });
    await s.put('a', enc('x'));
    clock.advance(500);
    await s.copy('a', 'b');
    expect(await s.list('')).toEqual([
      { key: 'a', size: 1, lastModifiedMs: 1_000 },
      { key: 'b', size: 1, lastModifiedMs: 1_500 },
    ]);
    expect(s.localPath('a')).toBeUndefined();
  });
});

function dec(b: Uint8Array): string {
  return new TextDecoder().decode(b);
}

describe('LocalObjectStore: concurrent deletes in one directory', () => {
  it('never fail because another delete pruned the directory first', async () => {
    const { mkdtemp, rm } = await import('node:fs/promises');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const { LocalObjectStore } = await import('./local-object-store.js');
    const dir = await mkdtemp(join(tmpdir(), 'quiver-delrace-'));
    const store = new LocalObjectStore(dir);
    try {
      for (let round = 0; round < 20; round++) {
        const keys = Array.from({ length: 8 }, (_, i) => `a/b${round}/c${i}/d/f`);
        await Promise.all(keys.map((k) => store.put(k, new Uint8Array([1]))));
        await Promise.all(keys.map((k) => store.delete(k)));
        expect(await store.list(`a/b${round}/`)).toEqual([]);
      }
    } finally {
      await store.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
