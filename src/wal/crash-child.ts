/**
 * Child process of crash.test.ts (not a test itself): appends in a loop from several concurrent writers
 * and prints `<seq> <position>` for every acknowledged record, until it is killed with SIGKILL.
 * Usage: node --import tsx src/wal/crash-child.ts <dir> <fsync policy>
 */
import { openLocalWal } from './local-wal.js';
import type { FsyncPolicy } from './wal.js';

const WRITERS = 4;

/** Payload of record `seq`: its size and bytes both derive from seq, so the parent can verify it. */
export function crashPayload(seq: number): Uint8Array {
  const size = (seq * 7919) % 20_000;
  const out = new Uint8Array(size);
  for (let i = 0; i < size; i++) out[i] = (seq * 31 + i) & 0xff;
  return out;
}

async function main(): Promise<void> {
  const [dir, fsync] = process.argv.slice(2);
  if (dir === undefined) throw new Error('usage: crash-child.ts <dir> [fsync]');
  const wal = await openLocalWal(dir, { fsync: (fsync ?? 'always') as FsyncPolicy, segmentBytesMax: 256 * 1024 });
  let next = 0;
  const writer = async (): Promise<never> => {
    for (;;) {
      const seq = next++;
      const [position] = await wal.append([crashPayload(seq)]);
      // One write per line so that a kill never leaves an acknowledged line half printed *and* counted.
      process.stdout.write(`${seq} ${position}\n`);
    }
  };
  await Promise.all(Array.from({ length: WRITERS }, writer));
}

// Only run when executed as a script, not when the test imports crashPayload.
if (process.argv[1]?.endsWith('crash-child.ts')) {
  main().catch((e: unknown) => {
    process.stderr.write(`${e instanceof Error ? e.stack : String(e)}\n`);
    process.exit(1);
  });
}
