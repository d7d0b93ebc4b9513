/**
 * The ObjectStore contract as a test suite. Every backend runs it (`object-store.test.ts`); a future S3
 * backend must pass it unchanged.
 */

import { afterEach, describe, expect, it } from 'vitest';
import { isQuiverError, type ErrorKind } from '../common/errors.js';
import { compareObjectKeys } from './object-key.js';
import type { ObjectStore } from './object-store.js';

export type ObjectStoreFactory = () => ObjectStore | Promise<ObjectStore>;

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const dec = (b: Uint8Array): string => new TextDecoder().decode(b);

async function rejection(p: Promise<unknown>): Promise<unknown> {
  return p.then(
    () => undefined,
    (e: unknown) => e,
  );
}

async function expectQuiverError(p: Promise<unknown>, kind: ErrorKind, mentions?: string): Promise<void> {
  const err = await rejection(p);
  expect(isQuiverError(err, kind), `expected QuiverError ${kind}, got ${String(err)}`).toBe(true);
  if (mentions !== undefined) expect(String((err as Error).message)).toContain(mentions);
}

export interface ConformanceOptions {
  /**
   * The backend serves concurrent puts of one key atomically (default). s3rver, the S3 test server, writes an
   * object in place, so two concurrent PUTs of one key can interleave there; AWS S3 and MinIO cannot. Quiver
   * never puts one key concurrently (keys are write-once), so only the test server's guarantee is missing.
   */
  readonly atomicConcurrentPuts?: boolean | undefined;
}

export function runObjectStoreConformance(name: string, factory: ObjectStoreFactory, options: ConformanceOptions = {}): void {
  describe(`ObjectStore conformance: ${name}`, () => {
    const opened: ObjectStore[] = [];
    const open = async (): Promise<ObjectStore> => {
      const s = await factory();
      opened.push(s);
      return s;
    };
    afterEach(async () => {
      for (const s of opened.splice(0)) await s.close();
    });

    it('put then get returns the same bytes; put replaces; empty objects work', async () => {
      const s = await open();
      const bytes = new Uint8Array(1000).map((_, i) => (i * 7) & 0xff);
      await s.put('a/b/c.bin', bytes);
      expect(Array.from(await s.get('a/b/c.bin'))).toEqual(Array.from(bytes));
      await s.put('a/b/c.bin', enc('v2'));
      expect(dec(await s.get('a/b/c.bin'))).toBe('v2');
      await s.put('empty', new Uint8Array(0));
      expect((await s.get('empty')).byteLength).toBe(0);
      expect(await s.stat('empty')).toMatchObject({ key: 'empty', size: 0 });
    });

    it('returns plain Uint8Arrays that are independent of the stored object', async () => {
      const s = await open();
      const input = enc('hello');
      await s.put('k', input);
      input[0] = 0;
      const out = await s.get('k');
      expect(Object.getPrototypeOf(out)).toBe(Uint8Array.prototype);
      out[1] = 0;
      expect(dec(await s.get('k'))).toBe('hello');
    });

    it('round-trips an 8 MiB object', async () => {
      const s = await open();
      const big = new Uint8Array(8 << 20);
      for (let i = 0; i < big.length; i += 4096) big[i] = i & 0xff;
      await s.put('big/object', big);
      const back = await s.get('big/object');
      expect(back.byteLength).toBe(big.byteLength);
      expect(Buffer.compare(back, big)).toBe(0);
      expect(Array.from(await s.getRange('big/object', 4096 * 3, 2))).toEqual([(4096 * 3) & 0xff, 0]);
    });

    it('get and getRange of an absent key are IoKeyNotFound naming the key', async () => {
      const s = await open();
      await expectQuiverError(s.get('no/such/key'), 'IoKeyNotFound', 'no/such/key');
      await expectQuiverError(s.getRange('no/such/key', 0, 1), 'IoKeyNotFound', 'no/such/key');
      await s.put('dir/file', enc('x'));
      // A key that is only a prefix of others is not an object.
      await expectQuiverError(s.get('dir'), 'IoKeyNotFound', 'dir');
      expect(await s.stat('dir')).toBeUndefined();
      expect(await s.stat('dir/file/deeper')).toBeUndefined();
    });

    it('getRange reads a window, clips at the end, and refuses offsets past the end', async () => {
      const s = await open();
      await s.put('r', enc('0123456789'));
      expect(dec(await s.getRange('r', 2, 3))).toBe('234');
      expect(dec(await s.getRange('r', 8, 100))).toBe('89');
      expect(dec(await s.getRange('r', 0, 0))).toBe('');
      expect(dec(await s.getRange('r', 10, 5))).toBe('');
      await expectQuiverError(s.getRange('r', 11, 1), 'ParameterInvalid', '"r"');
      await expectQuiverError(s.getRange('r', -1, 1), 'ParameterInvalid');
      await expectQuiverError(s.getRange('r', 0, 1.5), 'ParameterInvalid');
    });

    it('stat reports size and a modification time', async () => {
      const s = await open();
      await s.put('x/y', enc('abc'));
      const info = await s.stat('x/y');
      expect(info).toMatchObject({ key: 'x/y', size: 3 });
      expect(Number.isFinite(info?.lastModifiedMs)).toBe(true);
      expect(await s.stat('x/z')).toBeUndefined();
    });

    it('list is recursive, sorted, and uses plain string prefixes', async () => {
      const s = await open();
      const keys = ['insert_log/1/2/3/100/1', 'insert_log/1/2/3/101/1', 'insert_log/10/1/1/1/1', 'insert_log/1x', 'delta_log/1/2/3/9', 'top'];
      for (const k of [...keys].reverse()) await s.put(k, enc(k));
      expect((await s.list('insert_log/1/')).map((o) => o.key)).toEqual(['insert_log/1/2/3/100/1', 'insert_log/1/2/3/101/1']);
      expect((await s.list('insert_log/1')).map((o) => o.key)).toEqual([
        'insert_log/1/2/3/100/1',
        'insert_log/1/2/3/101/1',
        'insert_log/10/1/1/1/1',
        'insert_log/1x',
      ]);
      expect((await s.list('insert_log/1/2/3/10')).map((o) => o.key)).toEqual(['insert_log/1/2/3/100/1', 'insert_log/1/2/3/101/1']);
      expect((await s.list('')).map((o) => o.key)).toEqual([...keys].sort(compareObjectKeys));
      expect(await s.list('nothing/')).toEqual([]);
      expect(await s.list('top/')).toEqual([]);
      const one = await s.list('top');
      expect(one).toHaveLength(1);
      expect(one[0]).toMatchObject({ key: 'top', size: 3 });
    });

    it('lists unicode keys in code point order', async () => {
      const s = await open();
      const keys = ['u/\u{1F600}', 'u/\uE000', 'u/é', 'u/z', 'u/日本'];
      for (const k of keys) await s.put(k, enc(k));
      expect((await s.list('u/')).map((o) => o.key)).toEqual(['u/z', 'u/é', 'u/日本', 'u/\uE000', 'u/\u{1F600}']);
      expect(dec(await s.get('u/日本'))).toBe('u/日本');
    });

    it('delete is idempotent and ignores keys that are only prefixes', async () => {
      const s = await open();
      await s.put('d/1', enc('1'));
      await s.put('d/2/x', enc('2'));
      await s.delete('d/1');
      await s.delete('d/1');
      await s.delete('d/2');
      await s.delete('never/was');
      expect(await s.stat('d/1')).toBeUndefined();
      expect((await s.list('')).map((o) => o.key)).toEqual(['d/2/x']);
      await s.delete('d/2/x');
      expect(await s.list('')).toEqual([]);
      await s.put('d/2/x', enc('again'));
      expect(dec(await s.get('d/2/x'))).toBe('again');
    });

    it('deletePrefix removes exactly the matching keys and counts them', async () => {
      const s = await open();
      // (A key may not also be a directory of other keys on a local disk, so 'p/1' and 'p/1/a' never coexist.)
      for (const k of ['p/1/a', 'p/1/b/c', 'p/10/a', 'p/1x', 'q/1/a']) await s.put(k, enc(k));
      expect(await s.deletePrefix('p/1/')).toBe(2);
      expect((await s.list('')).map((o) => o.key)).toEqual(['p/10/a', 'p/1x', 'q/1/a']);
      expect(await s.deletePrefix('p/1')).toBe(2);
      expect(await s.deletePrefix('p/')).toBe(0);
      expect((await s.list('')).map((o) => o.key)).toEqual(['q/1/a']);
      await expectQuiverError(s.deletePrefix(''), 'ParameterInvalid');
    });

    it('copy makes an independent object', async () => {
      const s = await open();
      await s.put('src/a', enc('original'));
      await s.copy('src/a', 'dst/deep/a');
      expect(dec(await s.get('dst/deep/a'))).toBe('original');
      // Replacing the source leaves the copy unchanged.
      await s.put('src/a', enc('replaced'));
      expect(dec(await s.get('dst/deep/a'))).toBe('original');
      // Deleting the source leaves the copy readable.
      await s.delete('src/a');
      expect(dec(await s.get('dst/deep/a'))).toBe('original');
      expect(await s.stat('dst/deep/a')).toMatchObject({ size: 8 });
      // Copy onto an existing key replaces it; copy to itself is a no-op.
      await s.put('other', enc('other'));
      await s.copy('other', 'dst/deep/a');
      expect(dec(await s.get('dst/deep/a'))).toBe('other');
      await s.copy('other', 'other');
      expect(dec(await s.get('other'))).toBe('other');
      // Deleting the copy leaves the source.
      await s.delete('dst/deep/a');
      expect(dec(await s.get('other'))).toBe('other');
    });

    it('copy of an absent source is IoKeyNotFound naming it and creates nothing', async () => {
      const s = await open();
      await expectQuiverError(s.copy('missing/src', 'dst/x'), 'IoKeyNotFound', 'missing/src');
      await expectQuiverError(s.copy('missing/src', 'missing/src'), 'IoKeyNotFound', 'missing/src');
      expect(await s.list('')).toEqual([]);
    });

    it('rejects keys that could escape or alias: .., absolute, empty segments', async () => {
      const s = await open();
      const bad = ['', '..', '../x', 'a/../b', '/abs', 'a//b', 'a/', './a', 'a/./b', 'a\\b', 'nul\0', '.quiver-tmp/x', 'x'.repeat(300)];
      for (const key of bad) {
        await expectQuiverError(s.put(key, enc('x')), 'ParameterInvalid');
        await expectQuiverError(s.get(key), 'ParameterInvalid');
        await expectQuiverError(s.delete(key), 'ParameterInvalid');
        await expectQuiverError(s.copy('a', key), 'ParameterInvalid');
      }
      await expectQuiverError(s.list('../'), 'ParameterInvalid');
      await expectQuiverError(s.list('/'), 'ParameterInvalid');
      await expectQuiverError(s.deletePrefix('a//'), 'ParameterInvalid');
      expect(await s.list('')).toEqual([]);
      // Names that merely contain dots are fine.
      await s.put('a/..b/.c/d.', enc('ok'));
      expect((await s.list('a/.')).map((o) => o.key)).toEqual(['a/..b/.c/d.']);
    });

    it('concurrent puts are atomic: readers see one whole version and list shows only real keys', async () => {
      const s = await open();
      const versions = Array.from({ length: 8 }, (_, v) => new Uint8Array(64 * 1024).fill(v + 1));
      await Promise.all([
        ...versions.map((bytes) => s.put('same/key', bytes)),
        ...Array.from({ length: 40 }, (_, i) => s.put(`many/${String(i).padStart(2, '0')}`, enc(String(i)))),
      ]);
      const final = await s.get('same/key');
      expect(final.byteLength).toBe(64 * 1024);
      if (options.atomicConcurrentPuts !== false) expect(new Set(final).size).toBe(1);
      const listed = (await s.list('')).map((o) => o.key);
      expect(listed).toEqual(['same/key', ...Array.from({ length: 40 }, (_, i) => `many/${String(i).padStart(2, '0')}`)].sort(compareObjectKeys));
    });

    it('close is idempotent and later calls reject with ServiceNotReady', async () => {
      const s = await open();
      await s.put('k', enc('v'));
      await s.close();
      await s.close();
      await expectQuiverError(s.get('k'), 'ServiceNotReady');
      await expectQuiverError(s.put('k', enc('v')), 'ServiceNotReady');
    });
  });
}
