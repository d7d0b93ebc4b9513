import { pino } from 'pino';
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { quiverError } from './errors.js';
import { monitorWrites, WriteHealth, type WriteTarget } from './write-health.js';

function setup() {
  const lines: { level: number; msg: string; target?: string }[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(l) as (typeof lines)[number]);
      cb();
    },
  });
  let now = 1000;
  const counted: WriteTarget[] = [];
  const health = new WriteHealth({ log: pino({ level: 'debug' }, sink), clock: { nowMs: () => now } as never, countFailure: (t) => counted.push(t) });
  return { lines, health, counted, advance: (ms: number) => (now += ms) };
}

class Store {
  #fail: Error | null = null;
  fail(e: Error | null) {
    this.#fail = e;
  }
  async put(v: number): Promise<number> {
    if (this.#fail) throw this.#fail;
    return v;
  }
  async get(): Promise<string> {
    throw quiverError('IoFailed', 'read failed');
  }
}

describe('WriteHealth', () => {
  it('logs once at error when writes start failing and once at info when they recover, counting every failure', async () => {
    const { lines, health, counted, advance } = setup();
    const inner = new Store();
    const store = monitorWrites(inner, 'wal', ['put'], health);
    expect(await store.put(1)).toBe(1);
    inner.fail(quiverError('IoFailed', 'ENOSPC: no space left on device'));
    for (let i = 0; i < 3; i++) await expect(store.put(2)).rejects.toThrow(/ENOSPC/);
    expect(health.healthy).toBe(false);
    expect(health.faults()).toEqual([{ target: 'wal', reason: 'ENOSPC: no space left on device', sinceMs: 1000, failures: 3 }]);
    expect(counted).toEqual(['wal', 'wal', 'wal']);
    expect(lines.filter((l) => l.level >= 50)).toHaveLength(1);
    advance(500);
    inner.fail(null);
    expect(await store.put(3)).toBe(3);
    expect(health.healthy).toBe(true);
    const recovered = lines.filter((l) => l.level === 30);
    expect(recovered).toHaveLength(1);
    expect(recovered[0]).toMatchObject({ target: 'wal', failures: 3, downMs: 500 });
  });

  it('ignores errors that say nothing about the store, and unwatched methods', async () => {
    const { health } = setup();
    const inner = new Store();
    const store = monitorWrites(inner, 'meta', ['put'], health);
    inner.fail(quiverError('ParameterInvalid', 'bad key'));
    await expect(store.put(1)).rejects.toThrow('bad key');
    await expect(store.get()).rejects.toThrow('read failed');
    expect(health.healthy).toBe(true);
  });
});
