/**
 * The MetaKV contract as a test suite. Every backend runs it (`meta-kv.test.ts`); a future etcd backend
 * must pass it unchanged.
 */

import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { isQuiverError } from '../common/errors.js';
import { compareKeys } from './key-order.js';
import { decodeJson, decodeString, encodeJson } from './json.js';
import { VALUE_BYTES_MAX_DEFAULT, type KvEntry, type MetaKV, type Op } from './meta-kv.js';

export type MetaKvFactory = () => MetaKV | Promise<MetaKV>;

const text = (e: KvEntry | undefined): string | undefined => (e === undefined ? undefined : decodeString(e));
const keysOf = (entries: readonly KvEntry[]): string[] => entries.map((e) => e.key);

async function expectQuiverError(p: Promise<unknown>, kind: Parameters<typeof isQuiverError>[1]): Promise<void> {
  const err: unknown = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(isQuiverError(err, kind), `expected QuiverError ${kind}, got ${String(err)}`).toBe(true);
}

export function runMetaKvConformance(name: string, factory: MetaKvFactory): void {
  describe(`MetaKV conformance: ${name}`, () => {
    const opened: MetaKV[] = [];
    const open = async (): Promise<MetaKV> => {
      const kv = await factory();
      opened.push(kv);
      return kv;
    };
    afterEach(async () => {
      for (const kv of opened.splice(0)) await kv.close();
    });

    it('get of an absent key is undefined and a fresh store is at revision 0', async () => {
      const kv = await open();
      expect(await kv.get('missing')).toBeUndefined();
      expect(await kv.revision()).toBe(0);
    });

    it('put returns increasing revisions and tracks create/mod revision and version', async () => {
      const kv = await open();
      const r1 = await kv.put('k', 'v1');
      const r2 = await kv.put('other', new Uint8Array([1, 2, 3]));
      const r3 = await kv.put('k', 'v2');
      expect(r1).toBe(1);
      expect(r2).toBe(2);
      expect(r3).toBe(3);
      expect(await kv.revision()).toBe(3);
      const e = await kv.get('k');
      expect(e).toMatchObject({ key: 'k', createRevision: 1, modRevision: 3, version: 2 });
      expect(text(e)).toBe('v2');
      const o = await kv.get('other');
      expect(o?.value).toBeInstanceOf(Uint8Array);
      expect(Array.from(o?.value ?? [])).toEqual([1, 2, 3]);
    });

    it('stores empty values and binary values byte for byte', async () => {
      const kv = await open();
      const bytes = new Uint8Array(256).map((_, i) => i);
      await kv.put('empty', new Uint8Array(0));
      await kv.put('bin', bytes);
      expect((await kv.get('empty'))?.value.byteLength).toBe(0);
      expect(Array.from((await kv.get('bin'))?.value ?? [])).toEqual(Array.from(bytes));
    });

    it('isolates stored values from caller buffers', async () => {
      const kv = await open();
      const input = new Uint8Array([1, 2, 3]);
      await kv.put('k', input);
      input[0] = 9;
      const out = await kv.get('k');
      if (out === undefined) throw new Error('missing');
      out.value[1] = 9;
      expect(Array.from((await kv.get('k'))?.value ?? [])).toEqual([1, 2, 3]);
    });

    it('delete reports existence, bumps the revision only when it removes something, resets version', async () => {
      const kv = await open();
      await kv.put('k', 'a');
      await kv.put('k', 'b');
      expect(await kv.delete('nope')).toBe(false);
      expect(await kv.revision()).toBe(2);
      expect(await kv.delete('k')).toBe(true);
      expect(await kv.revision()).toBe(3);
      expect(await kv.get('k')).toBeUndefined();
      expect(await kv.delete('k')).toBe(false);
      const r = await kv.put('k', 'c');
      expect(r).toBe(4);
      expect(await kv.get('k')).toMatchObject({ createRevision: 4, modRevision: 4, version: 1 });
    });

    it('scan matches a prefix exactly: a/ never matches ab or a', async () => {
      const kv = await open();
      for (const k of ['a', 'a/', 'a/1', 'a/2/x', 'ab', 'a0', 'a.', 'b/1', '`']) await kv.put(k, k);
      expect(keysOf(await kv.scan('a/'))).toEqual(['a/', 'a/1', 'a/2/x']);
      expect(keysOf(await kv.scan('a'))).toEqual(['a', 'a.', 'a/', 'a/1', 'a/2/x', 'a0', 'ab']);
      expect(keysOf(await kv.scan('ab'))).toEqual(['ab']);
      expect(keysOf(await kv.scan('c'))).toEqual([]);
      expect(keysOf(await kv.scan(''))).toEqual(['`', 'a', 'a.', 'a/', 'a/1', 'a/2/x', 'a0', 'ab', 'b/1']);
      const entries = await kv.scan('a/1');
      expect(entries.map(text)).toEqual(['a/1']);
      expect(entries[0]).toMatchObject({ version: 1 });
    });

    it('scan pages with limit and startAfter', async () => {
      const kv = await open();
      const keys = Array.from({ length: 25 }, (_, i) => `p/${String(i).padStart(3, '0')}`);
      for (const k of [...keys].reverse()) await kv.put(k, 'x');
      await kv.put('q/000', 'x');
      const seen: string[] = [];
      let startAfter: string | undefined;
      for (;;) {
        const page = await kv.scan('p/', { limit: 10, startAfter });
        seen.push(...keysOf(page));
        if (page.length < 10) break;
        startAfter = page[page.length - 1]?.key;
      }
      expect(seen).toEqual(keys);
      // startAfter before the prefix range is the same as no startAfter; after it yields nothing.
      expect(keysOf(await kv.scan('p/', { startAfter: 'a', limit: 2 }))).toEqual(['p/000', 'p/001']);
      expect(keysOf(await kv.scan('p/', { startAfter: 'p/024' }))).toEqual([]);
      expect(keysOf(await kv.scan('p/', { startAfter: 'p/0105' }))).toEqual(keys.slice(11));
      expect(keysOf(await kv.scan('p/', { startAfter: 'z' }))).toEqual([]);
    });

    it('orders keys by code point (UTF-8 bytes), like SQLite and etcd', async () => {
      const kv = await open();
      const keys = ['u/\u{1F600}', 'u/\uE000', 'u/\uFFFF', 'u/é', 'u/z', 'u/\u{10FFFF}', 'u/日本'];
      for (const k of keys) await kv.put(k, k);
      const expected = [...keys].sort(compareKeys);
      expect(expected).toEqual(['u/z', 'u/é', 'u/日本', 'u/\uE000', 'u/\uFFFF', 'u/\u{1F600}', 'u/\u{10FFFF}']);
      expect(keysOf(await kv.scan('u/'))).toEqual(expected);
      expect(keysOf(await kv.scan('u/\u{1F600}'))).toEqual(['u/\u{1F600}']);
      expect(text(await kv.get('u/日本'))).toBe('u/日本');
    });

    it('txn create-if-absent (version == 0) succeeds once', async () => {
      const kv = await open();
      const create = () => kv.txn([{ key: 'lock', target: 'version', op: '==', value: 0 }], [{ type: 'put', key: 'lock', value: 'me' }]);
      const first = await create();
      expect(first).toEqual({ succeeded: true, revision: 1 });
      const second = await create();
      expect(second).toEqual({ succeeded: false, revision: 1 });
      expect(text(await kv.get('lock'))).toBe('me');
    });

    it('concurrent CAS on one key: exactly one wins', async () => {
      const kv = await open();
      const results = await Promise.all(
        Array.from({ length: 20 }, (_, i) =>
          kv.txn([{ key: 'leader', target: 'version', op: '==', value: 0 }], [{ type: 'put', key: 'leader', value: `n${i}` }]),
        ),
      );
      expect(results.filter((r) => r.succeeded)).toHaveLength(1);
      expect(await kv.revision()).toBe(1);
    });

    it('txn compares on value and version, and runs failure ops when a compare fails', async () => {
      const kv = await open();
      await kv.put('state', 'Pending');
      const moved = await kv.txn(
        [{ key: 'state', target: 'value', op: '==', value: 'Pending' }],
        [{ type: 'put', key: 'state', value: 'Executing' }],
        [{ type: 'put', key: 'lost', value: '1' }],
      );
      expect(moved.succeeded).toBe(true);
      const again = await kv.txn(
        [{ key: 'state', target: 'value', op: '==', value: new TextEncoder().encode('Pending') }],
        [{ type: 'put', key: 'state', value: 'Executing' }],
        [{ type: 'put', key: 'lost', value: '1' }],
      );
      expect(again.succeeded).toBe(false);
      expect(again.revision).toBe(3);
      expect(text(await kv.get('lost'))).toBe('1');
      expect((await kv.txn([{ key: 'state', target: 'version', op: '==', value: 2 }], [])).succeeded).toBe(true);
      expect((await kv.txn([{ key: 'state', target: 'version', op: '==', value: 1 }], [])).succeeded).toBe(false);
      // A value compare on an absent key fails, even against an empty value.
      expect((await kv.txn([{ key: 'absent', target: 'value', op: '==', value: '' }], [])).succeeded).toBe(false);
    });

    it('txn compares on modRevision with ==, < and >; an absent key has modRevision 0', async () => {
      const kv = await open();
      await kv.put('x', '1'); // rev 1
      await kv.put('y', '1'); // rev 2
      const holds = async (op: '==' | '<' | '>', key: string, value: number) => (await kv.txn([{ key, target: 'modRevision', op, value }], [])).succeeded;
      expect(await holds('==', 'x', 1)).toBe(true);
      expect(await holds('==', 'x', 2)).toBe(false);
      expect(await holds('<', 'x', 2)).toBe(true);
      expect(await holds('<', 'y', 2)).toBe(false);
      expect(await holds('>', 'y', 1)).toBe(true);
      expect(await holds('>', 'x', 1)).toBe(false);
      expect(await holds('==', 'absent', 0)).toBe(true);
      expect(await holds('<', 'absent', 1)).toBe(true);
      // All compares must hold.
      const both = await kv.txn(
        [
          { key: 'x', target: 'modRevision', op: '==', value: 1 },
          { key: 'y', target: 'modRevision', op: '==', value: 1 },
        ],
        [{ type: 'put', key: 'z', value: '1' }],
      );
      expect(both.succeeded).toBe(false);
      expect(await kv.get('z')).toBeUndefined();
    });

    it('all ops of a txn share one revision; a txn that writes nothing keeps the revision', async () => {
      const kv = await open();
      await kv.put('old', 'x');
      const r = await kv.txn(
        [],
        [
          { type: 'put', key: 'a', value: '1' },
          { type: 'put', key: 'b', value: '1' },
          { type: 'put', key: 'a', value: '2' },
          { type: 'delete', key: 'old' },
          { type: 'delete', key: 'never-existed' },
        ],
      );
      expect(r).toEqual({ succeeded: true, revision: 2 });
      expect(await kv.get('a')).toMatchObject({ createRevision: 2, modRevision: 2, version: 2 });
      expect(text(await kv.get('a'))).toBe('2');
      expect(await kv.get('b')).toMatchObject({ modRevision: 2, version: 1 });
      expect(await kv.get('old')).toBeUndefined();
      const noop = await kv.txn(
        [],
        [
          { type: 'delete', key: 'never-existed' },
          { type: 'deletePrefix', prefix: 'zz/' },
        ],
      );
      expect(noop).toEqual({ succeeded: true, revision: 2 });
      expect(await kv.txn([{ key: 'a', target: 'version', op: '==', value: 9 }], [{ type: 'put', key: 'c', value: '' }])).toEqual({
        succeeded: false,
        revision: 2,
      });
      expect(await kv.revision()).toBe(2);
    });

    it('deletePrefix removes exactly the keys under the prefix', async () => {
      const kv = await open();
      for (const k of ['c/1', 'c/1/a', 'c/1/b', 'c/10', 'c/1x', 'c', 'd/1']) await kv.put(k, k);
      const r = await kv.txn([], [{ type: 'deletePrefix', prefix: 'c/1/' }]);
      expect(r.revision).toBe(8);
      expect(keysOf(await kv.scan(''))).toEqual(['c', 'c/1', 'c/10', 'c/1x', 'd/1']);
      await kv.txn(
        [],
        [
          { type: 'deletePrefix', prefix: 'c/1' },
          { type: 'put', key: 'c/1/new', value: 'n' },
        ],
      );
      expect(keysOf(await kv.scan(''))).toEqual(['c', 'c/1/new', 'd/1']);
      await expectQuiverError(kv.txn([], [{ type: 'deletePrefix', prefix: '' }]), 'ParameterInvalid');
    });

    it('a txn with an invalid op applies nothing', async () => {
      const kv = await open();
      await kv.put('k', 'v');
      await expectQuiverError(
        kv.txn(
          [],
          [
            { type: 'put', key: 'a', value: '1' },
            { type: 'delete', key: '' },
            { type: 'delete', key: 'k' },
          ],
        ),
        'ParameterInvalid',
      );
      expect(await kv.get('a')).toBeUndefined();
      expect(text(await kv.get('k'))).toBe('v');
      expect(await kv.revision()).toBe(1);
    });

    it('rejects bad keys, options and oversized values with a reason naming them', async () => {
      const kv = await open();
      await expectQuiverError(kv.put('', 'x'), 'ParameterInvalid');
      await expectQuiverError(kv.get(''), 'ParameterInvalid');
      await expectQuiverError(kv.put('bad\uD800', 'x'), 'ParameterInvalid');
      await expectQuiverError(kv.put('k'.repeat(5000), 'x'), 'ParameterInvalid');
      await expectQuiverError(kv.scan('a', { limit: 0 }), 'ParameterInvalid');
      await expectQuiverError(kv.put('big', new Uint8Array(VALUE_BYTES_MAX_DEFAULT + 1)), 'ParameterTooLarge');
      const err = await kv.put('big', new Uint8Array(VALUE_BYTES_MAX_DEFAULT + 1)).catch((e: unknown) => e);
      expect(String(err)).toContain('"big"');
      expect(await kv.revision()).toBe(0);
    });

    it('round-trips JSON with bigints through encodeJson/decodeJson', async () => {
      const kv = await open();
      const value = { id: 7, ts: 449_192_031_846_318_081n, list: [1n, -2n], name: 'x', nested: { $bigint: 5 } };
      await kv.put('j', encodeJson(value));
      const e = await kv.get('j');
      if (e === undefined) throw new Error('missing');
      expect(decodeJson<typeof value>(e)).toEqual(value);
    });

    it('close is idempotent and later calls reject with ServiceNotReady', async () => {
      const kv = await open();
      await kv.put('k', 'v');
      await kv.close();
      await kv.close();
      await expectQuiverError(kv.get('k'), 'ServiceNotReady');
      await expectQuiverError(kv.put('k', 'v'), 'ServiceNotReady');
      await expectQuiverError(kv.txn([], []), 'ServiceNotReady');
    });

    it('behaves like a model map under random op sequences', async () => {
      const keyArb = fc.constantFrom('a', 'a/', 'a/1', 'a/2', 'ab', 'b', 'b/1', 'b/1/x', '\u{1F600}', '\uE000');
      const prefixArb = fc.constantFrom('a', 'a/', 'b/', 'b/1', 'ab', '\u{1F600}');
      const opArb: fc.Arbitrary<Op> = fc.oneof(
        fc.record({ type: fc.constant('put' as const), key: keyArb, value: fc.string({ maxLength: 4 }) }),
        fc.record({ type: fc.constant('delete' as const), key: keyArb }),
        fc.record({ type: fc.constant('deletePrefix' as const), prefix: prefixArb }),
      );
      const stepArb = fc.record({
        ops: fc.array(opArb, { minLength: 1, maxLength: 4 }),
        guardKey: keyArb,
        guardVersion: fc.integer({ min: 0, max: 2 }),
      });
      await fc.assert(
        fc.asyncProperty(fc.array(stepArb, { maxLength: 15 }), async (steps) => {
          const kv = await factory();
          try {
            const model = new Map<string, { value: string; create: number; mod: number; version: number }>();
            let revision = 0;
            for (const step of steps) {
              const holds = (model.get(step.guardKey)?.version ?? 0) === step.guardVersion;
              const result = await kv.txn([{ key: step.guardKey, target: 'version', op: '==', value: step.guardVersion }], step.ops);
              expect(result.succeeded).toBe(holds);
              let changed = false;
              if (holds) {
                for (const op of step.ops) {
                  if (op.type === 'put') {
                    const prev = model.get(op.key);
                    model.set(op.key, {
                      value: String(op.value),
                      create: prev?.create ?? revision + 1,
                      mod: revision + 1,
                      version: (prev?.version ?? 0) + 1,
                    });
                    changed = true;
                  } else if (op.type === 'delete') {
                    changed = model.delete(op.key) || changed;
                  } else {
                    for (const k of [...model.keys()]) {
                      if (k.startsWith(op.prefix)) changed = model.delete(k) || changed;
                    }
                  }
                }
              }
              if (changed) revision += 1;
              expect(result.revision).toBe(revision);
            }
            const actual = (await kv.scan('')).map((e) => [e.key, decodeString(e), e.createRevision, e.modRevision, e.version]);
            const expected = [...model.entries()].sort(([x], [y]) => compareKeys(x, y)).map(([k, m]) => [k, m.value, m.create, m.mod, m.version]);
            expect(actual).toEqual(expected);
          } finally {
            await kv.close();
          }
        }),
        { numRuns: 60, seed: 20240601 },
      );
    });
  });
}
