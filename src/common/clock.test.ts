import { describe, expect, it } from 'vitest';
import { FakeClock, systemClock } from './clock.js';

describe('Clock.sleep', () => {
  it('a fake clock wakes sleepers when advanced past their time, in any order, and an abort wakes one early', async () => {
    const clock = new FakeClock(1000);
    const woke: string[] = [];
    const a = clock.sleep(100).then(() => woke.push('a'));
    const b = clock.sleep(50).then(() => woke.push('b'));
    const abort = new AbortController();
    const c = clock.sleep(10_000, abort.signal).then(() => woke.push('c'));
    expect(clock.sleeping()).toBe(3);
    clock.advance(60);
    await b;
    expect(woke).toEqual(['b']);
    abort.abort();
    await c;
    expect(clock.sleeping()).toBe(1);
    clock.advance(40);
    await a;
    expect(woke).toEqual(['b', 'c', 'a']);
    expect(clock.sleeping()).toBe(0);
  });

  it('the system clock resolves at once when already aborted', async () => {
    const abort = new AbortController();
    abort.abort();
    await systemClock.sleep(60_000, abort.signal);
  });
});
