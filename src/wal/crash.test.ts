/**
 * Crash test: a child process appends in a loop and prints each acknowledged position; it is killed with
 * SIGKILL mid-stream (so a write may be torn). After reopening, every acknowledged record must be present
 * and intact. This exercises process death, not power loss: unsynced page-cache data survives SIGKILL.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { crashPayload } from './crash-child.js';
import { openLocalWal } from './local-wal.js';
import { HEADER_BYTES } from './record-format.js';

const here = dirname(fileURLToPath(import.meta.url));
const KILL_AFTER_FIRST_ACK_MS = 300;

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'quiver-wal-crash-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Runs the child until ~300 ms after its first acknowledgment, SIGKILLs it, returns the acknowledged lines. */
function runAndKill(fsync: string): Promise<Map<number, number>> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', join(here, 'crash-child.ts'), dir, fsync], {
      cwd: join(here, '..', '..'),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    let timer: NodeJS.Timeout | undefined;
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk: string) => {
      out += chunk;
      timer ??= setTimeout(() => child.kill('SIGKILL'), KILL_AFTER_FIRST_ACK_MS);
    });
    child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      if (signal !== 'SIGKILL') {
        reject(new Error(`child exited with ${code ?? signal} before being killed: ${err}`));
        return;
      }
      const acked = new Map<number, number>();
      // Only complete lines count: a line cut by the kill was never fully acknowledged to us.
      for (const line of out.split('\n').slice(0, -1)) {
        const [seq, position] = line.split(' ').map(Number);
        acked.set(seq!, position!);
      }
      resolve(acked);
    });
  });
}

describe('LocalWal crash safety', () => {
  it.each(['always', 'none'])('every record acknowledged before SIGKILL survives (fsync %s)', async (fsync) => {
    const acked = await runAndKill(fsync);
    expect(acked.size).toBeGreaterThan(10);

    const warnings: string[] = [];
    const wal = await openLocalWal(dir, { segmentBytesMax: 256 * 1024, onWarn: (m) => warnings.push(m) });
    const recovered = new Map<number, Uint8Array>();
    let previous = -1;
    let end = 0;
    for await (const r of wal.read(0)) {
      expect(r.position).toBeGreaterThan(previous);
      previous = r.position;
      end = r.position + HEADER_BYTES + r.payload.length;
      recovered.set(r.position, r.payload);
    }
    expect(wal.endPosition()).toBe(end);
    for (const [seq, position] of acked) {
      const got = recovered.get(position);
      expect(got, `acknowledged record ${seq} at position ${position} is missing`).toBeDefined();
      expect(Buffer.from(got!).equals(crashPayload(seq)), `record ${seq} at ${position} differs`).toBe(true);
    }
    // The log is usable after the crash.
    expect(await wal.append([crashPayload(1)])).toEqual([end]);
    await wal.close();
  });
});
