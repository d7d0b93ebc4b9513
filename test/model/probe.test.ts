import { describe, expect, it } from 'vitest';
import { failNth } from '../../src/storage/faulty-object-store.js';
import { Harness } from './harness.js';

describe('probe', () => {
  it('flush retry', async () => {
    const h = await Harness.create({ faulty: true });
    try {
      const id = await h.createCollection('c');
      await h.insert(id, undefined, [{ pk: 1n, version: 1 }, { pk: 2n, version: 1 }]);
      h.faults.setFailOn(failNth('put', 1));
      await expect(h.engine.flushCollection(id)).rejects.toThrow();
      h.faults.setFailOn(() => false);
      await h.loadAndWait(id);
      console.log('after fail', await h.readRows(id));
      console.log('retry', await h.engine.flushCollection(id));
      await h.restart();
      await h.loadAndWait(id);
      console.log('after restart', await h.readRows(id));
    } finally { await h.destroy(); }
  });
  it('drop partition', async () => {
    const h = await Harness.create();
    try {
      const id = await h.createCollection('c');
      await h.engine.createPartition('default', 'c', 'p1');
      await h.insert(id, 'p1', [{ pk: 1n, version: 1 }]);
      await h.insert(id, undefined, [{ pk: 2n, version: 1 }]);
      await h.engine.dropPartition('default', 'c', 'p1');
      await h.loadAndWait(id);
      console.log('before restart', await h.readRows(id));
      await h.restart();
      await h.loadAndWait(id);
      console.log('after restart', await h.readRows(id), h.engine.rowCount(id));
    } finally { await h.destroy(); }
  });
  it('two collections wal truncation', async () => {
    const h = await Harness.create({ walSegmentBytesMax: 2048 });
    try {
      const a = await h.createCollection('a');
      const b = await h.createCollection('b');
      await h.insert(a, undefined, [{ pk: 1n, version: 1 }]);
      await h.engine.flushCollection(a);
      for (let i = 0; i < 20; i++) await h.insert(b, undefined, [{ pk: BigInt(i), version: 1 }]);
      await h.engine.flushCollection(b);
      await h.engine.backgroundTick();
      await h.restart();
      await h.loadAndWait(a);
      console.log('a', await h.readRows(a));
    } finally { await h.destroy(); }
  });
});
