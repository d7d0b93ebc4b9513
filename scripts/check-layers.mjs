#!/usr/bin/env node
// Checks the import graph of src/ against the role layering of docs/DESIGN (section 1):
//
//   cli → wiring → proxy → coord / datanode / querynode → storage, meta, wal, index, expr, segcore → common, schema
//
// - A file may import anything in a lower layer, and anything in its own module (top folder).
// - Peers in the roles layer (coord, datanode, querynode) may import each other only with
//   `import type` / `export type`, and only from an interface file: types.ts, *-api.ts or index.ts.
// - Peers in the library layers may import each other.
// - The proxy may import values from a role only out of its interface files (types only otherwise).
// - Nothing imports a higher layer.
// Test code (*.test.ts, test helpers and fixtures, src/testing/) is not checked.
// Plain Node, no dependencies: import specifiers are found with a regex. Exits 1 with a list of violations.

import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const SRC = join(ROOT, 'src');

/** Layer rank per module (top folder of src/); higher ranks may import lower ones. */
const RANK = {
  common: 0,
  schema: 0,
  storage: 1,
  meta: 1,
  wal: 1,
  index: 1,
  expr: 1,
  segcore: 1,
  // Analyzers, BM25 and text functions: read by expr (text_match), segcore (BM25 search) and the proxy.
  text: 1,
  // The coordinator ⇄ data node task protocol (proto/datanode.proto): shared by both roles, so below them.
  taskrpc: 1,
  coord: 2,
  datanode: 2,
  querynode: 2,
  // Users, credentials, roles and grants (Milvus: RootCoord's credential and RBAC metadata), in the MetaKV.
  auth: 2,
  proxy: 3,
  // Bulk import jobs (src/import): validate file rows with the proxy's insert rules and publish through
  // the engine, so they sit beside the proxy and, like it, take values from roles' interface files only.
  import: 3,
  // The RESTful API v2: a second front door beside the gRPC proxy, calling the same handlers.
  rest: 3,
  wiring: 4,
  cli: 5,
  testing: 6,
};
const ROLE_RANK = 2;
const PROXY = 'proxy';

/** Files that belong to another layer than their folder says. */
const LAYER_OVERRIDES = {
  // The persisted record schema (Milvus: the etcd/datapb messages): read by every role and by storage.
  'coord/records.ts': 'meta',
};

/**
 * Known violations, each with the reason it is tolerated for now. Keep this list short and dated: an
 * entry here is a debt, not a rule.
 */
const ALLOWED = [
  // Empty: the restore service gets its WorkerClient from the wiring, the key-rewrite functions and the
  // snapshot format that coordinator and data node share live in storage/snapshot-format/, and the proxy
  // maps jobs to replies itself (proxy/restore-info.ts).
];

const INTERFACE_FILE = /(^|\/)(types|index|[a-z0-9-]+-api)\.ts$/;
const TEST_FILE = /(\.test\.ts|\.test-util\.ts|\.conformance\.ts|(^|\/)test-helpers\.ts|(^|\/)test-fixtures\.ts|(^|\/)crash-child\.ts)$/;

function walk(dir, out = []) {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) walk(p, out);
    else if (p.endsWith('.ts') || p.endsWith('.mjs')) out.push(p);
  }
  return out;
}

function rel(p) {
  return relative(SRC, p).split(sep).join('/');
}

function moduleOf(relPath) {
  return LAYER_OVERRIDES[relPath] ?? relPath.split('/')[0];
}

/** `import ... from '...'`, `export ... from '...'`, `import('...')`, with whether it is type-only. */
const IMPORT_RE = /(?:^|\n)\s*(import|export)\s+(type\s+)?([^'";]*?)\s*from\s*['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/g;

function importsOf(text) {
  const out = [];
  for (const m of text.matchAll(IMPORT_RE)) {
    if (m[5]) {
      out.push({ spec: m[5], typeOnly: false });
      continue;
    }
    const clause = m[3] ?? '';
    // `import { type A, type B } from` is type-only too.
    const named = /^\{([^}]*)\}$/.exec(clause.trim());
    const allTypeNamed =
      named !== null &&
      named[1]
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean)
        .every((s) => s.startsWith('type '));
    out.push({ spec: m[4], typeOnly: Boolean(m[2]) || allTypeNamed });
  }
  return out;
}

function resolveSpec(fromFile, spec) {
  if (!spec.startsWith('.')) return undefined; // a package
  let target = resolve(dirname(fromFile), spec);
  if (target.endsWith('.js')) target = target.slice(0, -3) + '.ts';
  if (!target.startsWith(SRC + sep)) return undefined;
  return rel(target);
}

const violations = [];
const tolerated = [];
let files = 0;
for (const file of walk(SRC)) {
  const from = rel(file);
  if (TEST_FILE.test(from) || from.startsWith('testing/')) continue;
  files++;
  const fromModule = moduleOf(from);
  const fromRank = RANK[fromModule];
  if (fromRank === undefined) {
    violations.push(`${from}: module "${fromModule}" has no layer (add it to RANK in scripts/check-layers.mjs)`);
    continue;
  }
  for (const { spec, typeOnly } of importsOf(readFileSync(file, 'utf8'))) {
    const to = resolveSpec(file, spec);
    if (to === undefined) continue;
    const toModule = moduleOf(to);
    const toRank = RANK[toModule];
    if (toRank === undefined || toModule === fromModule) continue;
    let problem;
    if (toRank > fromRank) problem = `${fromModule} (layer ${fromRank}) imports ${toModule} (layer ${toRank})`;
    else if (toRank === fromRank && fromRank === ROLE_RANK) {
      if (!typeOnly) problem = `role ${fromModule} imports an implementation of role ${toModule} (only \`import type\` of an interface file is allowed)`;
      else if (!INTERFACE_FILE.test(to))
        problem = `role ${fromModule} imports types from ${to}, which is not an interface file (types.ts, *-api.ts, index.ts)`;
    } else if ((fromModule === PROXY || fromModule === 'import') && toRank === ROLE_RANK && !typeOnly && !INTERFACE_FILE.test(to)) {
      problem = `the proxy imports an implementation of role ${toModule} (values only from an interface file)`;
    }
    if (!problem) continue;
    const allowed = ALLOWED.find((a) => a.from === from && a.to === to);
    if (allowed) tolerated.push(`${from} → ${to}: ${allowed.why}`);
    else violations.push(`${from} → ${to}: ${problem}`);
  }
}

if (tolerated.length > 0) {
  console.log(`check-layers: ${tolerated.length} known exception(s):`);
  for (const t of tolerated) console.log(`  ~ ${t}`);
}
if (violations.length > 0) {
  console.error(`check-layers: ${violations.length} violation(s) in ${files} files:`);
  for (const v of violations) console.error(`  ✗ ${v}`);
  process.exit(1);
}
console.log(`check-layers: ${files} files, layering holds`);
