/**
 * WAL faults under the storage engine (issue 8): a write is visible to reads only once its WAL append is
 * durable, and an append that fails (ENOSPC, EIO) leaves no trace, in memory or after a restart, for
 * insert, upsert and delete. Before the fix rows were applied first and appended after, so a failed batch
 * was counted and returned until the restart dropped it.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { quiverError } from '../../src/common/errors.js';
import type { Wal, WalPosition } from '../../src/wal/wal.js';
import { Harness, sortRows, type Row } from './harness.js';

/** Passes appends through, or fails them (as a full disk does), or holds them until released. */
class ControlledWal implements Wal {
  failWith: Error | null = null;
  #held: (() => void)[] | null = null;
  constructor(readonly inner: Wal) {}

  /** Appends from now on wait; the returned function lets them (and later ones) proceed. */
  hold(): () => void {
    const held: (() => void)[] = [];
    this.#held = held;
    return () => {
      this.#held = null;
      for (const go of held.splice(0)) go();
    };
  }
  append(payloads: readonly Uint8Array[]): Promise<WalPosition[]> {
    if (this.failWith) return Promise.reject(this.failWith);
    if (this.#held) {
      const held = this.#held;
      // Appended now (WAL order is call order), acknowledged only when released.
      const appended = this.inner.append(payloads);
      return new Promise<void>((resolve) => held.push(() => resolve())).then(() => appended);
    }
    return this.inner.append(payloads);
  }
  read(from: WalPosition) {
    return this.inner.read(from);
  }
  truncateBefore(position: WalPosition) {
    return this.inner.truncateBefore(position);
  }
  endPosition() {
    return this.inner.endPosition();
  }
  startPosition() {
    return this.inner.startPosition();
  }
  close() {
    return this.inner.close();
  }
}

const ENOSPC = () => quiverError('IoFailed', 'write-ahead log in /data/wal failed; the next append retries: ENOSPC: no space left on device');

const open: Harness[] = [];
afterEach(async () => {
  for (const h of open.splice(0)) await h.destroy();
});

async function setup(): Promise<{ h: Harness; wal: () => ControlledWal; id: number }> {
  let current: ControlledWal | undefined;
  const h = await Harness.create({ wrapWal: (inner) => (current = new ControlledWal(inner)) });
  open.push(h);
  const id = await h.createCollection('w');
  await h.loadAndWait(id);
  return { h, wal: () => current!, id };
}

function rows(from: number, n: number, version = 1): Row[] {
  return Array.from({ length: n }, (_, i) => ({ pk: BigInt(from + i), version }));
}

describe('engine over a failing WAL', () => {
  it('shows an insert only once its append is durable', async () => {
    const { h, wal, id } = await setup();
    await h.insert(id, undefined, rows(0, 3));
    const release = wal().hold();
    const pending = h.insert(id, undefined, rows(10, 5));
    const del = h.deletePks(id, [0n]);
    await new Promise((r) => setImmediate(r));
    expect(await h.readRows(id)).toEqual(rows(0, 3));
    release();
    await pending;
    expect(await del).toBe(1);
    expect(await h.readRows(id)).toEqual(sortRows([...rows(1, 2), ...rows(10, 5)]));
  });

  it('leaves no trace of failed inserts, upserts and deletes, in memory or after a restart', async () => {
    const { h, wal, id } = await setup();
    await h.insert(id, undefined, rows(0, 4));
    await h.engine.flushCollection(id);
    await h.insert(id, undefined, rows(4, 4)); // growing
    const acked = rows(0, 8);

    wal().failWith = ENOSPC();
    await expect(h.insert(id, undefined, rows(100, 10))).rejects.toThrow(/ENOSPC/);
    await expect(h.insert(id, undefined, rows(2, 4, 2), true)).rejects.toThrow(/ENOSPC/); // upsert over flushed + growing rows
    await expect(h.deletePks(id, [1n, 5n])).rejects.toThrow(/ENOSPC/);
    expect(await h.readRows(id)).toEqual(acked);
    expect(await h.engine.count(id, { filter: '', partitionNames: [] })).toBe(8);

    // Space is back: writes work again, and a flush persists exactly what was acknowledged.
    wal().failWith = null;
    await h.insert(id, undefined, rows(8, 2));
    acked.push(...rows(8, 2));
    await h.engine.flushCollection(id);
    expect(await h.readRows(id)).toEqual(acked);
    await h.restart();
    await h.loadAndWait(id);
    expect(await h.readRows(id)).toEqual(acked);
  });

  it('a flush that seals while writes are in flight covers exactly the durable ones', async () => {
    const { h, wal, id } = await setup();
    await h.insert(id, undefined, rows(0, 4));
    const release = wal().hold();
    const inFlight = h.insert(id, undefined, rows(4, 4));
    const upsert = h.insert(id, undefined, rows(0, 2, 2), true);
    const flushed = h.engine.flushCollection(id);
    await new Promise((r) => setImmediate(r));
    release();
    await Promise.all([inFlight, upsert, flushed]);
    const expected = sortRows([...rows(0, 2, 2), ...rows(2, 6)]);
    expect(await h.readRows(id)).toEqual(expected);
    // A write failing after the seal is not flushed; nothing unflushed is lost at restart.
    wal().failWith = ENOSPC();
    await expect(h.insert(id, undefined, rows(50, 3))).rejects.toThrow(/ENOSPC/);
    wal().failWith = null;
    await h.engine.flushCollection(id);
    await h.restart();
    await h.loadAndWait(id);
    expect(await h.readRows(id)).toEqual(expected);
  });
});
