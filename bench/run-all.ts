/**
 * Runs the benchmarks one after another, each in its own process (so one's memory and worker threads do
 * not skew the next), with this process's environment passed through: BENCH_QUICK=1 and the BENCH_*
 * sizes apply to all of them. The restart benchmark is not included: at its full size (1M rows, indexed)
 * it takes far longer than the others; run `npx tsx bench/restart.ts` on its own.
 *
 * Usage: npm run bench   (BENCH_ONLY=compaction,snapshot runs a subset; BENCH_QUICK=1 for a smoke run)
 */
import { spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ALL = ['insert', 'search', 'compaction', 'snapshot'] as const;
const here = dirname(fileURLToPath(import.meta.url));
/** insert.ts and search.ts predate BENCH_QUICK: their smoke sizes, used unless the env sets them. */
const QUICK_SIZES: Readonly<Record<string, Readonly<Record<string, string>>>> = {
  insert: { BENCH_ROWS: '20000', BENCH_SDK_ROWS: '5000' },
  search: { BENCH_N: '5000', BENCH_Q: '100' },
};

function runScript(name: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const env = process.env.BENCH_QUICK === '1' ? { ...QUICK_SIZES[name], ...process.env } : process.env;
    const child = spawn(process.execPath, ['--import', 'tsx', join(here, `${name}.ts`)], { cwd: join(here, '..'), env, stdio: 'inherit' });
    child.once('error', reject);
    child.once('exit', (code, signal) => resolve(code ?? (signal ? 128 : 1)));
  });
}

async function main(): Promise<void> {
  const only = process.env.BENCH_ONLY?.split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  const unknown = only?.filter((n) => !(ALL as readonly string[]).includes(n)) ?? [];
  if (unknown.length > 0) throw new Error(`BENCH_ONLY names unknown benchmarks: ${unknown.join(', ')} (known: ${ALL.join(', ')})`);
  const names = only ?? [...ALL];
  const summary: { name: string; code: number; seconds: number }[] = [];
  for (const name of names) {
    console.log(`\n<!-- bench/${name}.ts -->`);
    const t0 = performance.now();
    const code = await runScript(name);
    summary.push({ name, code, seconds: (performance.now() - t0) / 1000 });
  }
  console.log('\n## Benchmark runs\n');
  console.log('| script | exit | seconds |');
  console.log('| --- | --- | --- |');
  for (const s of summary) console.log(`| bench/${s.name}.ts | ${s.code} | ${s.seconds.toFixed(0)} |`);
  if (summary.some((s) => s.code !== 0)) process.exitCode = 1;
}

await main();
