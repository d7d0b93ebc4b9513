import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { FakeClock } from '../common/clock.js';
import { MemoryMetaKV } from '../meta/memory-kv.js';
import { LOG_REDACT_PATHS, openCredentials } from './credentials-config.js';

const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

const base = { auth: true, rootPassword: undefined, rootPasswordFile: undefined, authFailuresFree: 5, authLockoutMs: 30_000 };

describe('openCredentials', () => {
  it('reads the first root password from a file (one trailing newline dropped); an unreadable one is named, not shown', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'quiver-auth-'));
    dirs.push(dir);
    const file = join(dir, 'pw');
    await writeFile(file, 'file-Secret-1\n');
    const kv = new MemoryMetaKV();
    const store = await openCredentials({ ...base, rootPasswordFile: file }, { kv, clock: new FakeClock() });
    expect(await store.verify({ authorization: 'root:file-Secret-1', encoding: 'plain', peer: 'p' })).toBe('root');
    await expect(openCredentials({ ...base, rootPasswordFile: join(dir, 'missing') }, { kv: new MemoryMetaKV(), clock: new FakeClock() })).rejects.toThrow(
      /--root-password-file .*missing.*ENOENT/,
    );
    await expect(openCredentials(base, { kv: new MemoryMetaKV(), clock: new FakeClock() })).rejects.toThrow(/no root user exists yet/);
    // Auth off and no password: no root is created, the start goes on.
    expect((await openCredentials({ ...base, auth: false }, { kv: new MemoryMetaKV(), clock: new FakeClock() })).list()).toEqual([]);
  });
});

describe('LOG_REDACT_PATHS', () => {
  it('redacts password and authorization fields at the top level and one level down', () => {
    let out = '';
    const stream = new Writable({
      write(chunk: Buffer, _e, cb) {
        out += chunk.toString();
        cb();
      },
    });
    const log = pino({ redact: { paths: [...LOG_REDACT_PATHS], censor: '[redacted]' } }, stream);
    log.info(
      {
        password: 'p-1',
        req: { password: 'p-2', newPassword: 'p-3', oldPassword: 'p-4' },
        authorization: 'a-1',
        config: { rootPassword: 'p-5', etcdPassword: 'p-6' },
      },
      'x',
    );
    for (const s of ['p-1', 'p-2', 'p-3', 'p-4', 'p-5', 'p-6', 'a-1']) expect(out).not.toContain(s);
    expect(out).toContain('[redacted]');
  });
});
