/**
 * Append throughput of LocalWal. Not a test: run `npx tsx bench/wal.ts [policy ...]`
 * (default policy `always`). Each case runs `concurrency` appenders, each awaiting one single-record
 * append at a time, for a fixed wall-clock budget, in a fresh directory under os.tmpdir().
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openLocalWal } from '../src/wal/local-wal.js';
import type { FsyncPolicy } from '../src/wal/wal.js';

interface Case {
  readonly label: string;
  readonly payloadBytes: number;
  readonly concurrency: number;
}

const CASES: readonly Case[] = [
  { label: '2.6 MB (5,000 rows)', payloadBytes: 2_600_000, concurrency: 1 },
  { label: '2.6 MB (5,000 rows)', payloadBytes: 2_600_000, concurrency: 16 },
  { label: '100 B', payloadBytes: 100, concurrency: 1 },
  { label: '100 B', payloadBytes: 100, concurrency: 16 },
];
const DURATION_MS = 3000;

async function runCase(policy: FsyncPolicy, c: Case): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'quiver-wal-bench-'));
  try {
    const wal = await openLocalWal(dir, { fsync: policy });
    const payloads = Array.from({ length: c.concurrency }, (_, i) => new Uint8Array(c.payloadBytes).fill(i + 1));
    let records = 0;
    const started = performance.now();
    const deadline = started + DURATION_MS;
    await Promise.all(
      payloads.map(async (p) => {
        while (performance.now() < deadline) {
          await wal.append([p]);
          records++;
        }
      }),
    );
    const seconds = (performance.now() - started) / 1000;
    const stats = wal.stats();
    await wal.close();
    const mb = (records * c.payloadBytes) / 1e6;
    console.log(
      [
        policy.padEnd(6),
        c.label.padEnd(20),
        `x${c.concurrency}`.padStart(4),
        `${(records / seconds).toFixed(0).padStart(8)} records/s`,
        `${(mb / seconds).toFixed(1).padStart(8)} MB/s`,
        `${(stats.appendCalls / Math.max(stats.groupCommits, 1)).toFixed(1).padStart(6)} appends/commit`,
        `${stats.fsyncs} fsyncs`,
      ].join('  '),
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

const policies = (process.argv.length > 2 ? process.argv.slice(2) : ['always']) as FsyncPolicy[];
for (const policy of policies) for (const c of CASES) await runCase(policy, c);
