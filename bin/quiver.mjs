#!/usr/bin/env node
// The `quiver` command. Runs the compiled CLI in dist/ (built by `npm run build`, which `npm ci` runs
// through `prepare`): one plain node process, no TypeScript loader, so a signal sent to it reaches the
// server itself. Without a build, or with a build older than the sources (a checkout being edited), it
// says so and compiles the TypeScript sources at run time with tsx, in this same process.
import { existsSync, readdirSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const compiled = new URL('../dist/cli/main.js', import.meta.url);
const sources = fileURLToPath(new URL('../src', import.meta.url));

/** Newest modification time of the files under `dir` (0 when there is no such dir). */
function newestMs(dir) {
  if (!existsSync(dir)) return 0;
  let newest = 0;
  for (const e of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (e.isFile()) newest = Math.max(newest, statSync(`${e.parentPath ?? e.path}/${e.name}`).mtimeMs);
  }
  return newest;
}

const built = existsSync(compiled) ? statSync(compiled).mtimeMs : 0;
if (built > 0 && built >= newestMs(sources)) {
  await import(compiled.href);
} else {
  const why = built > 0 ? 'dist/ is older than src/' : 'dist/ not found';
  process.stderr.write(`quiver: ${why} (run \`npm run build\`); running the TypeScript sources through tsx instead\n`);
  const { register } = await import('tsx/esm/api');
  register();
  await import('../src/cli/main.ts');
}
