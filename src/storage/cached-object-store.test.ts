import { mkdtempSync, readdirSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { FakeClock } from '../common/clock.js';
import { isQuiverError } from '../common/errors.js';
import { CachedObjectStore } from './cached-object-store.js';
import { MemoryObjectStore } from './memory-object-store.js';
import { runObjectStoreConformance } from './object-store.conformance.js';

const base = mkdtempSync(join(tmpdir(), 'quiver-cache-'));
afterAll(() => rmSync(base, { recursive: true, force: true }));
let n = 0;
const freshDir = (): string => join(base, `cache-${++n}`);
const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const dec = (b: Uint8Array): string => new TextDecoder().decode(b);
const KEY = 'insert_log/1/2/3/100/7';

runObjectStoreConformance('memory behind a disk cache', () => CachedObjectStore.open(new MemoryObjectStore(), freshDir()));

describe('CachedObjectStore', () => {
  it('serves a segment file it wrote from disk, and other keys from the remote store', async () => {
    const remote = new MemoryObjectStore();
    const dir = freshDir();
    const s = await CachedObjectStore.open(remote, dir);
    await s.put(KEY, enc('column bytes'));
    await s.put('snapshots/1/metadata/5.json', enc('{}'));
    expect(dec(await s.get(KEY))).toBe('column bytes');
    expect(dec(await s.get('snapshots/1/metadata/5.json'))).toBe('{}');
    expect(s.stats()).toMatchObject({ hits: 1, misses: 0 });
    expect(readdirSync(dir)).toEqual(['insert_log']);
    expect(dec(await s.getRange(KEY, 7, 100))).toBe('bytes');
  });

  it('never answers from a stale copy: remote deleted, resized or rewritten behind its back', async () => {
    const clock = new FakeClock();
    const remote = new MemoryObjectStore({ clock });
    const s = await CachedObjectStore.open(remote, freshDir());
    await s.put(KEY, enc('v1-bytes'));
    expect(dec(await s.get(KEY))).toBe('v1-bytes'); // validated: the remote stamp is recorded

    clock.advance(1000);
    await remote.put(KEY, enc('v2-bytes')); // same size, newer
    expect(dec(await s.get(KEY))).toBe('v2-bytes');

    await remote.put(KEY, enc('a longer third version'));
    expect(dec(await s.get(KEY))).toBe('a longer third version');

    await remote.delete(KEY);
    const err = await s.get(KEY).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(isQuiverError(err) && err.kind === 'IoKeyNotFound').toBe(true);
  });

  it('re-indexes its directory on open, and falls back to the remote store on a damaged file', async () => {
    const remote = new MemoryObjectStore();
    const dir = freshDir();
    const first = await CachedObjectStore.open(remote, dir);
    await first.put(KEY, enc('0123456789'));
    await first.put('index_files/9/1/2/3/hnsw', enc('graph'));
    writeFileSync(join(dir, 'insert_log', 'junk.tmp-abc'), 'partial');

    const second = await CachedObjectStore.open(remote, dir);
    expect(second.stats().bytes).toBe(15);
    expect(dec(await second.get('index_files/9/1/2/3/hnsw'))).toBe('graph');
    expect(second.stats().hits).toBe(1);
    truncateSync(join(dir, 'insert_log', '1', '2', '3', '100', '7'), 3);
    expect(dec(await second.get(KEY))).toBe('0123456789');
    expect(readdirSync(join(dir, 'insert_log')).includes('junk.tmp-abc')).toBe(false);
  });

  it('stays within its byte bound, evicting the least recently used file first', async () => {
    const remote = new MemoryObjectStore();
    const s = await CachedObjectStore.open(remote, freshDir(), 25);
    const keys = [0, 1, 2].map((i) => `insert_log/1/2/3/100/${i}`);
    for (const k of keys) await s.put(k, enc('0123456789'));
    expect(s.stats().bytes).toBeLessThanOrEqual(25);
    expect(s.stats().evictions).toBe(1);
    await s.get(keys[1]!); // now the most recent
    await s.put('insert_log/1/2/3/100/9', enc('0123456789'));
    await s.get(keys[1]!);
    expect(s.stats().hits).toBe(2);
    await s.put('insert_log/1/2/3/100/10', enc('x'.repeat(100))); // larger than the bound: not cached
    expect(s.stats().bytes).toBeLessThanOrEqual(25);
    expect(dec(await s.get('insert_log/1/2/3/100/10'))).toBe('x'.repeat(100));
  });

  it('drops entries on delete, deletePrefix and copy onto a cached key', async () => {
    const remote = new MemoryObjectStore();
    const s = await CachedObjectStore.open(remote, freshDir());
    await s.put(KEY, enc('a'));
    await s.put('insert_log/1/2/4/100/1', enc('b'));
    await s.put('insert_log/9/9/9/100/1', enc('other'));
    await s.copy('insert_log/9/9/9/100/1', KEY);
    expect(dec(await s.get(KEY))).toBe('other');
    expect(await s.deletePrefix('insert_log/1/')).toBe(2);
    await s.delete('insert_log/9/9/9/100/1');
    expect(s.stats().bytes).toBe(0);
  });
});
