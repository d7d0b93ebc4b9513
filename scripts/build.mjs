// `npm run build` (and `prepare`, so `npm ci` builds too): compiles src/ to dist/ with tsc and copies the
// plain-JS files tsc does not emit (the worker-thread entry), so `bin/quiver.mjs` runs without a
// TypeScript loader.
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const src = join(root, 'src');
const dist = join(root, 'dist');
let tsc;
try {
  tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
} catch {
  // An install without dev dependencies: no compiler. bin/quiver.mjs then runs the sources through tsx.
  console.warn('build: typescript is not installed (dev dependencies omitted?); skipping, quiver will run the sources through tsx');
  process.exit(0);
}
rmSync(dist, { recursive: true, force: true }); // no stale modules of deleted sources
execFileSync(process.execPath, [tsc, '-p', join(root, 'tsconfig.build.json')], { stdio: 'inherit' });

function copyPlainJs(dir) {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) copyPlainJs(path);
    else if (entry.name.endsWith('.mjs')) {
      const to = join(dist, relative(src, path));
      mkdirSync(dirname(to), { recursive: true });
      copyFileSync(path, to);
    }
  }
}
copyPlainJs(src);
