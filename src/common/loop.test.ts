import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { settle } from '../testing/index.js';
import { LoopRunner, type LoopLogger } from './loop.js';

function recordingLog(): LoopLogger & { errors: string[]; debugs: string[] } {
  const errors: string[] = [];
  const debugs: string[] = [];
  return { errors, debugs, error: (_f, msg) => void errors.push(msg), debug: (_f, msg) => void debugs.push(msg) };
}

describe('LoopRunner', () => {
  it('tick runs the body; passes never overlap', async () => {
    let running = 0;
    let maxRunning = 0;
    let passes = 0;
    const loop = new LoopRunner(
      't',
      1_000,
      async () => {
        running++;
        maxRunning = Math.max(maxRunning, running);
        await Promise.resolve();
        await Promise.resolve();
        passes++;
        running--;
      },
      recordingLog(),
    );
    await Promise.all([loop.tick(), loop.tick(), loop.tick()]);
    expect(passes).toBe(3);
    expect(maxRunning).toBe(1);
  });

  it('kick does nothing before start and after stop', async () => {
    let passes = 0;
    const loop = new LoopRunner('t', 3_600_000, async () => void passes++, recordingLog());
    await loop.kick();
    expect(passes).toBe(0);
    await loop.stop();
    loop.start(); // a stopped loop stays stopped
    await loop.kick();
    expect(passes).toBe(0);
  });

  it('start runs a pass at once; kicks before a pass starts coalesce into one', async () => {
    let passes = 0;
    const loop = new LoopRunner('t', 3_600_000, async () => void passes++, recordingLog());
    loop.start();
    loop.start(); // idempotent
    await loop.kick(); // joins the pass start() asked for
    expect(passes).toBe(1);
    await Promise.all([loop.kick(), loop.kick(), loop.kick()]);
    expect(passes).toBe(2);
    await loop.stop();
  });

  it('a kick during a pass runs another pass after it', async () => {
    let passes = 0;
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const loop = new LoopRunner(
      't',
      3_600_000,
      async () => {
        passes++;
        if (passes === 1) await gate;
      },
      recordingLog(),
    );
    loop.start();
    const first = loop.kick();
    await settle(1);
    const second = loop.kick(); // arrives while pass 1 waits at the gate
    release();
    await first;
    await second;
    expect(passes).toBe(2);
    await loop.stop();
  });

  it('kicks that arrive one by one during a pass coalesce into one pass after it', async () => {
    let passes = 0;
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const loop = new LoopRunner(
      't',
      3_600_000,
      async () => {
        passes++;
        if (passes === 1) await gate;
      },
      recordingLog(),
    );
    loop.start(); // pass 1, held at the gate
    await settle(2);
    const kicks: Promise<void>[] = [];
    for (let i = 0; i < 4; i++) {
      kicks.push(loop.kick());
      await settle(2); // each kick's setImmediate has run before the next kick
    }
    release();
    await Promise.all(kicks);
    expect(passes).toBe(2);
    await loop.kick();
    expect(passes).toBe(3);
    await loop.stop();
  });

  it('stop waits for the pass in flight and is idempotent', async () => {
    let finished = false;
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const loop = new LoopRunner(
      't',
      3_600_000,
      async () => {
        await gate;
        finished = true;
      },
      recordingLog(),
    );
    loop.start();
    await settle(1);
    const stopped = loop.stop();
    release();
    await stopped;
    expect(finished).toBe(true);
    await loop.stop();
  });

  it('a failing background pass is logged and the loop keeps running; tick() rethrows', async () => {
    const log = recordingLog();
    let passes = 0;
    const loop = new LoopRunner(
      't',
      3_600_000,
      async () => {
        passes++;
        throw new Error('boom');
      },
      log,
    );
    await expect(loop.tick()).rejects.toThrow('boom');
    loop.start();
    await loop.kick();
    await loop.kick();
    expect(passes).toBe(3);
    expect(log.errors).toEqual(['t pass failed', 't pass failed']);
    await loop.stop();
  });

  it('the fallback interval ticks without kicks', async () => {
    let passes = 0;
    let reached!: () => void;
    const twice = new Promise<void>((r) => (reached = r));
    const loop = new LoopRunner(
      't',
      1,
      async () => {
        if (++passes === 3) reached();
      },
      recordingLog(),
    );
    loop.start();
    await twice; // bounded by the test timeout; each pass is 1 ms apart
    await loop.stop();
    expect(passes).toBeGreaterThanOrEqual(3);
  });

  it('immediate: false waits for the first kick or interval; stopping is visible to the body', async () => {
    let passes = 0;
    const seen: boolean[] = [];
    const loop: LoopRunner = new LoopRunner(
      't',
      3_600_000,
      async () => {
        passes++;
        seen.push(loop.stopping);
      },
      recordingLog(),
      { immediate: false },
    );
    loop.start();
    await new Promise<void>((r) => setImmediate(r));
    expect(passes).toBe(0);
    await loop.kick();
    expect(passes).toBe(1);
    await loop.stop();
    await loop.tick();
    expect(seen).toEqual([false, true]);
  });

  it('a pass that fails because the loop is stopping is logged at debug, not error', async () => {
    const log = recordingLog();
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const loop: LoopRunner = new LoopRunner(
      't',
      3_600_000,
      async () => {
        await gate;
        if (loop.stopping) throw new Error('pool is closed');
      },
      log,
    );
    loop.start();
    await new Promise<void>((r) => setImmediate(r));
    const stopped = loop.stop();
    release();
    await stopped;
    expect(log.errors).toEqual([]);
    expect(log.debugs).toEqual(['t pass cancelled by shutdown']);
  });

  it('a pino logger fits LoopLogger', () => {
    const log: LoopLogger = pino({ enabled: false });
    log.error({ a: 1 }, 'fits');
  });
});
