import { describe, expect, it } from 'vitest';
import { isQuiverError } from '../common/errors.js';
import { anyFault, failFromNth, failKeysWithPrefix, failNth, FaultyObjectStore } from './faulty-object-store.js';
import { MemoryObjectStore } from './memory-object-store.js';
import { runObjectStoreConformance } from './object-store.conformance.js';

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);

runObjectStoreConformance('faulty(memory) with no faults', () => new FaultyObjectStore(new MemoryObjectStore(), { failOn: () => false }));

async function failure(p: Promise<unknown>): Promise<unknown> {
  return p.then(
    () => undefined,
    (e: unknown) => e,
  );
}

describe('FaultyObjectStore', () => {
  it('fails the nth put with a retriable IoFailed naming the key, before it takes effect', async () => {
    const inner = new MemoryObjectStore();
    const s = new FaultyObjectStore(inner, { failOn: failNth('put', 2) });
    await s.put('k/1', enc('1'));
    const err = await failure(s.put('k/2', enc('2')));
    expect(isQuiverError(err, 'IoFailed')).toBe(true);
    expect(String(err)).toContain('k/2');
    expect((err as { retriable: boolean }).retriable).toBe(true);
    await s.put('k/3', enc('3'));
    expect((await inner.list('')).map((o) => o.key)).toEqual(['k/1', 'k/3']);
    expect(s.injectedFailures).toBe(1);
    expect(s.name).toBe('faulty(memory)');
  });

  it("with when: 'after' the call takes effect and still fails", async () => {
    const inner = new MemoryObjectStore();
    const s = new FaultyObjectStore(inner, { failOn: failKeysWithPrefix('put', 'insert_log/'), when: 'after' });
    expect(isQuiverError(await failure(s.put('insert_log/1', enc('x'))), 'IoFailed')).toBe(true);
    expect(await inner.stat('insert_log/1')).toMatchObject({ size: 1 });
    await s.put('delta_log/1', enc('y'));
  });

  it('fails by prefix for any op, copies by destination, and heals with setFailOn', async () => {
    const inner = new MemoryObjectStore();
    await inner.put('src/a', enc('a'));
    const s = new FaultyObjectStore(inner, { failOn: failKeysWithPrefix('any', 'dst/') });
    expect(isQuiverError(await failure(s.copy('src/a', 'dst/a')), 'IoFailed')).toBe(true);
    expect(isQuiverError(await failure(s.list('dst/')), 'IoFailed')).toBe(true);
    expect(isQuiverError(await failure(s.get('dst/a')), 'IoFailed')).toBe(true);
    expect(await s.get('src/a')).toEqual(enc('a'));
    s.setFailOn(() => false);
    await s.copy('src/a', 'dst/a');
    expect(await s.get('dst/a')).toEqual(enc('a'));
  });

  it('failFromNth keeps failing; anyFault combines predicates', async () => {
    const s = new FaultyObjectStore(new MemoryObjectStore(), {
      failOn: anyFault(failFromNth('get', 2), failNth('delete', 1)),
    });
    await s.put('k', enc('v'));
    await s.get('k');
    expect(isQuiverError(await failure(s.get('k')), 'IoFailed')).toBe(true);
    expect(isQuiverError(await failure(s.get('k')), 'IoFailed')).toBe(true);
    expect(isQuiverError(await failure(s.delete('k')), 'IoFailed')).toBe(true);
    await s.delete('k');
    expect(s.injectedFailures).toBe(3);
  });

  it('passes localPath through to the inner store', () => {
    expect(new FaultyObjectStore(new MemoryObjectStore(), { failOn: () => false }).localPath('a')).toBeUndefined();
  });
});
