// Writes docs/RPC-COVERAGE.md from the SDK proto and the server's handler table (src/wiring/rpc-coverage.ts).
// `npx tsx scripts/rpc-coverage.ts`; with `--check`, exits 1 when the file is stale instead of writing it.
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { rpcCoverageMarkdown } from '../src/wiring/rpc-coverage.js';

const file = join(dirname(fileURLToPath(import.meta.url)), '..', 'docs', 'RPC-COVERAGE.md');
const text = rpcCoverageMarkdown();
if (process.argv.includes('--check')) {
  let current = '';
  try {
    current = readFileSync(file, 'utf8');
  } catch {
    // missing: stale
  }
  if (current !== text) {
    console.error('docs/RPC-COVERAGE.md is stale: run npx tsx scripts/rpc-coverage.ts');
    process.exit(1);
  }
} else {
  writeFileSync(file, text);
  console.log(`wrote ${file}`);
}
