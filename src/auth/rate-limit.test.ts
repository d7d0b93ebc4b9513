import { describe, expect, it } from 'vitest';
import { FakeClock } from '../common/clock.js';
import { LoginRateLimiter } from './rate-limit.js';

const OPTIONS = { failuresFree: 3, lockoutBaseMs: 1000, lockoutMaxMs: 8000, forgetAfterMs: 60_000, entriesMax: 4 };

describe('LoginRateLimiter', () => {
  it('allows failuresFree failures, then locks with a doubling, capped backoff', () => {
    const clock = new FakeClock();
    const rl = new LoginRateLimiter(clock, OPTIONS);
    for (let i = 0; i < 2; i++) rl.recordFailure('alice', '10.0.0.1');
    expect(rl.lockedForMs('alice', '10.0.0.1')).toBe(0);
    rl.recordFailure('alice', '10.0.0.1');
    expect(rl.lockedForMs('alice', '10.0.0.1')).toBe(1000);
    clock.advance(999);
    expect(rl.lockedForMs('alice', '10.0.0.1')).toBe(1);
    clock.advance(1);
    expect(rl.lockedForMs('alice', '10.0.0.1')).toBe(0);
    rl.recordFailure('alice', '10.0.0.1');
    expect(rl.lockedForMs('alice', '10.0.0.1')).toBe(2000);
    rl.recordFailure('alice', '10.0.0.1');
    expect(rl.lockedForMs('alice', '10.0.0.1')).toBe(4000);
    for (let i = 0; i < 40; i++) rl.recordFailure('alice', '10.0.0.1');
    expect(rl.lockedForMs('alice', '10.0.0.1')).toBe(8000);
  });

  it('keys by user and address: other addresses and other users are not locked', () => {
    const rl = new LoginRateLimiter(new FakeClock(), OPTIONS);
    for (let i = 0; i < 3; i++) rl.recordFailure('alice', '10.0.0.1');
    expect(rl.lockedForMs('alice', '10.0.0.1')).toBeGreaterThan(0);
    expect(rl.lockedForMs('alice', '10.0.0.2')).toBe(0);
    expect(rl.lockedForMs('bob', '10.0.0.1')).toBe(0);
    // "a" + "b:c" and "a:b" + "c" are different pairs.
    for (let i = 0; i < 3; i++) rl.recordFailure('a', 'b:c');
    expect(rl.lockedForMs('a:b', 'c')).toBe(0);
  });

  it('a success clears the pair; a pair quiet for forgetAfterMs starts over', () => {
    const clock = new FakeClock();
    const rl = new LoginRateLimiter(clock, OPTIONS);
    for (let i = 0; i < 2; i++) rl.recordFailure('alice', 'h');
    rl.recordSuccess('alice', 'h');
    rl.recordFailure('alice', 'h');
    expect(rl.lockedForMs('alice', 'h')).toBe(0);
    rl.recordFailure('alice', 'h');
    clock.advance(60_000);
    rl.recordFailure('alice', 'h');
    expect(rl.lockedForMs('alice', 'h')).toBe(0);
    expect(rl.size).toBe(1);
  });

  it('stays within entriesMax, dropping the pair that failed longest ago', () => {
    const rl = new LoginRateLimiter(new FakeClock(), { ...OPTIONS, failuresFree: 1 });
    for (const u of ['u1', 'u2', 'u3', 'u4', 'u5']) rl.recordFailure(u, 'h');
    expect(rl.size).toBe(4);
    expect(rl.lockedForMs('u1', 'h')).toBe(0);
    expect(rl.lockedForMs('u5', 'h')).toBeGreaterThan(0);
  });
});
