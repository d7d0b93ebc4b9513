import { readFile, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import Database from 'better-sqlite3';

/**
 * One server per data dir: two processes appending to one WAL and one SQLite file would corrupt both.
 *
 * The lock is an exclusive SQLite write lock on `<data>/LOCK`, held for the life of the connection
 * (`locking_mode=EXCLUSIVE`). SQLite takes it with fcntl, and the kernel drops fcntl locks when the
 * process dies, however it dies: a restart right after `kill -9` finds the lock free even before the dead
 * process has been reaped, which a pid file checked with kill(pid, 0) cannot tell. Node has no flock;
 * better-sqlite3 is already a dependency. fcntl locks are per process, but SQLite also tracks them per
 * inode inside the process, so a second server in the same process is refused too (tests).
 */

export interface DataDirLock {
  /** Idempotent. The LOCK file stays; only the lock on it matters. */
  release(): void;
}

const SQLITE_MAGIC = 'SQLite format 3\0';

export async function lockDataDir(dataDir: string): Promise<DataDirLock> {
  const path = join(dataDir, 'LOCK');
  await removeLegacyPidLock(path, dataDir);
  let db: Database.Database;
  try {
    db = new Database(path, { timeout: 0 });
  } catch (e) {
    throw new Error(`cannot open the lock file of data dir ${dataDir}: ${(e as Error).message}`, { cause: e });
  }
  try {
    db.pragma('journal_mode = MEMORY'); // no LOCK-journal file beside it
    db.pragma('locking_mode = EXCLUSIVE');
    // The first write takes the exclusive lock; in EXCLUSIVE mode COMMIT keeps it until close.
    db.exec('BEGIN EXCLUSIVE');
    db.exec('CREATE TABLE IF NOT EXISTS owner (pid INTEGER NOT NULL)');
    db.prepare('DELETE FROM owner').run();
    db.prepare('INSERT INTO owner (pid) VALUES (?)').run(process.pid);
    db.exec('COMMIT');
  } catch (e) {
    db.close();
    if ((e as { code?: string }).code === 'SQLITE_BUSY') {
      throw new Error(`data dir ${dataDir} is in use by another Quiver process; stop it or use another --data-dir`, { cause: e });
    }
    throw new Error(`cannot lock data dir ${dataDir}: ${(e as Error).message}`, { cause: e });
  }
  let released = false;
  return {
    release() {
      if (released) return;
      released = true;
      db.close();
    },
  };
}

/**
 * Earlier versions wrote the owner's pid into a plain-text LOCK file. Such a file is replaced, unless the
 * pid in it is alive (an old server still running there).
 */
async function removeLegacyPidLock(path: string, dataDir: string): Promise<void> {
  let bytes: Buffer;
  try {
    bytes = await readFile(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw e;
  }
  if (bytes.length === 0 || bytes.subarray(0, SQLITE_MAGIC.length).toString('latin1') === SQLITE_MAGIC) return;
  const pid = Number(bytes.toString('utf8').trim());
  if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && isAlive(pid)) {
    throw new Error(`data dir ${dataDir} is in use by another Quiver process (pid ${pid}); stop it or use another --data-dir`);
  }
  await unlink(path).catch(() => undefined);
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}
