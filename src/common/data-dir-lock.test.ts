import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { lockDataDir } from './data-dir-lock.js';

const dirs: string[] = [];
async function tempDir(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'quiver-lock-'));
  dirs.push(d);
  return d;
}
afterEach(async () => {
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

describe('data dir lock', () => {
  it('refuses a second owner, naming the data dir, until the first releases', async () => {
    const dir = await tempDir();
    const first = await lockDataDir(dir);
    await expect(lockDataDir(dir)).rejects.toThrow(`data dir ${dir} is in use`);
    first.release();
    first.release(); // idempotent
    const again = await lockDataDir(dir);
    again.release();
  });

  it('is free as soon as its owner is killed, even while the dead process is not yet reaped', async () => {
    const dir = await tempDir();
    const module = resolve('src/common/data-dir-lock.ts');
    const holder = join(dir, 'holder.mjs');
    await writeFile(
      holder,
      `const m = await import(${JSON.stringify(module)});\nawait m.lockDataDir(${JSON.stringify(dir)});\nconsole.log('locked ' + process.pid);\nsetInterval(() => {}, 1e6);\n`,
    );
    // sh starts the holder in the background and execs sleep, which never waits for children: the killed
    // holder stays a zombie, which kill(pid, 0) still reports as alive.
    const sh = spawn('sh', ['-c', `"${process.execPath}" --import tsx "${holder}" & exec sleep 60`], { stdio: ['ignore', 'pipe', 'inherit'] });
    try {
      const pid = await new Promise<number>((res, rej) => {
        let out = '';
        sh.stdout!.on('data', (d: Buffer) => {
          out += d.toString();
          const m = /locked (\d+)/.exec(out);
          if (m) res(Number(m[1]));
        });
        sh.once('exit', () => rej(new Error(`holder exited: ${out}`)));
      });
      await expect(lockDataDir(dir)).rejects.toThrow(/in use/);
      process.kill(pid, 'SIGKILL');
      // The kernel drops the lock when the process dies; wait for that (the zombie stays until the end).
      let stat = '';
      for (let i = 0; i < 200 && !/^\d+ \(.*\) Z/.test(stat); i++) {
        stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => 'gone');
        if (stat === 'gone') break;
        await new Promise((r) => setTimeout(r, 25));
      }
      expect(stat).toMatch(/^\d+ \(.*\) Z/); // dead but not reaped
      const lock = await lockDataDir(dir);
      lock.release();
    } finally {
      sh.kill('SIGKILL');
    }
  });

  it('replaces a pid file left by an earlier version whose process is gone', async () => {
    const dir = await tempDir();
    await writeFile(join(dir, 'LOCK'), '999999999');
    const lock = await lockDataDir(dir);
    lock.release();
    await writeFile(join(dir, 'LOCK'), String(process.ppid));
    await expect(lockDataDir(dir)).rejects.toThrow(`pid ${process.ppid}`);
  });
});
