import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * Whether this process may mount a tmpfs (root, as in CI). Full-disk tests need a small filesystem that
 * really fills up; where mounting is not permitted they are reported as skipped (`it.skipIf`), never
 * passed without checking. Probed once per test file, at collection time.
 */
export function tmpfsMountable(): boolean {
  const dir = mkdtempSync(join(tmpdir(), 'quiver-tmpfs-probe-'));
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', dir], { stdio: 'ignore' });
    execFileSync('umount', [dir], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
