import { describe, expect, it } from 'vitest';
import { FakeClock } from './clock.js';
import { IdAllocator, TsoAllocator, composeTs, physicalMsOf, type BoundStore } from './tso.js';

function memoryBound(initial = 0): BoundStore & { saved: number[] } {
  const saved: number[] = [];
  let value = initial;
  return {
    saved,
    load: async () => value,
    save: async (b) => {
      value = b;
      saved.push(b);
    },
  };
}

describe('TsoAllocator', () => {
  it('is strictly increasing, even when the wall clock stands still or goes back', async () => {
    const clock = new FakeClock(1_000_000);
    const tso = new TsoAllocator(clock, memoryBound(), 3000);
    await tso.init();
    let last = tso.next();
    for (let i = 0; i < 1000; i++) {
      if (i === 300) clock.advance(5);
      if (i === 600) clock.set(900_000); // the clock jumps back
      const t = tso.next();
      expect(t > last).toBe(true);
      last = t;
    }
  });

  it('never goes back after a restart, even if the clock did (the persisted window is the floor)', async () => {
    const clock = new FakeClock(2_000_000);
    const bound = memoryBound();
    const a = new TsoAllocator(clock, bound, 3000);
    await a.init();
    const before = a.next();
    clock.set(1_000_000); // a restart on a machine whose clock is behind
    const b = new TsoAllocator(clock, bound, 3000);
    await b.init();
    expect(b.next() > before).toBe(true);
  });

  it('extends its persisted window before running out, and the hybrid layout round-trips', async () => {
    const clock = new FakeClock(5_000_000);
    const bound = memoryBound();
    const tso = new TsoAllocator(clock, bound, 1000);
    await tso.init();
    clock.advance(800);
    tso.next();
    await tso.flush();
    expect(Math.max(...bound.saved)).toBeGreaterThanOrEqual(5_000_800 + 1000);
    expect(physicalMsOf(composeTs(1234, 5))).toBe(1234);
  });
});

describe('IdAllocator', () => {
  it('hands out unique ids and never reuses one after a restart (it starts above the persisted bound)', async () => {
    const bound = memoryBound();
    const a = new IdAllocator(bound, 10);
    await a.init();
    const seen = new Set<number>();
    for (let i = 0; i < 25; i++) {
      const first = await a.alloc(3);
      for (let k = 0; k < 3; k++) {
        expect(seen.has(first + k)).toBe(false);
        seen.add(first + k);
      }
    }
    // Crash: the next allocator only knows the persisted bound.
    const b = new IdAllocator(bound, 10);
    await b.init();
    const next = await b.alloc(1);
    expect(next).toBeGreaterThan(Math.max(...seen));
  });

  it('concurrent allocations never overlap', async () => {
    const a = new IdAllocator(memoryBound(), 7);
    await a.init();
    const firsts = await Promise.all(Array.from({ length: 50 }, () => a.alloc(4)));
    const all = firsts.flatMap((f) => [f, f + 1, f + 2, f + 3]);
    expect(new Set(all).size).toBe(all.length);
  });
});

describe('IdAllocator over a failing store', () => {
  it('fails only the allocation whose save failed; the next one saves again (no restart after a full disk)', async () => {
    const inner = memoryBound();
    let failing = false;
    const store: BoundStore = { load: inner.load, save: async (b) => (failing ? Promise.reject(new Error('ENOSPC')) : inner.save(b)) };
    const ids = new IdAllocator(store, 10);
    await ids.init();
    const first = await ids.alloc(10);
    failing = true;
    await expect(ids.alloc(5)).rejects.toThrow('ENOSPC');
    await expect(ids.alloc(5)).rejects.toThrow('ENOSPC');
    failing = false;
    const next = await ids.alloc(5);
    expect(next).toBe(first + 10);
    expect(inner.saved[inner.saved.length - 1]).toBeGreaterThanOrEqual(next + 5);
  });
});

describe('TsoAllocator after an idle gap', () => {
  it('follows the clock again once the window is extended (no stall at the old physical time)', async () => {
    const clock = new FakeClock(1_000_000);
    let saved = 0;
    const tso = new TsoAllocator(clock, { load: async () => saved, save: async (b) => void (saved = b) }, 3000);
    await tso.init();
    tso.next();
    clock.advance(60_000); // idle far longer than the window
    tso.next(); // still under the old window: a logical tick, and the window is extended
    await tso.flush();
    expect(Number(tso.next() >> 18n)).toBe(1_060_000);
  });
});
