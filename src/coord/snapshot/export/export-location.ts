/**
 * Where an export may write and a restore-external may read: `file:///DIR` or `s3://BUCKET/PREFIX`
 * locations, checked against the roots an operator allows (`QUIVER_EXPORT_ROOTS`: comma-separated local
 * directories (absolute paths or file:// URIs) and `s3://bucket/prefix` entries; default
 * `<data-dir>/exports`). The check runs before any byte is read or written.
 *
 * Traversal: a location whose path holds a '.' or '..' segment (raw or percent-encoded) is refused
 * outright instead of normalized, so what the user wrote is what is checked; a local path is then
 * resolved through symlinks (the deepest existing ancestor), so a link inside a root that points outside
 * it does not let a write escape.
 */

import { open, realpath } from 'node:fs/promises';
import { dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { quiverError } from '../../../common/errors.js';
import type { ObjectStore } from '../../../storage/object-store.js';
import { openObjectStore, parseStoreUrl } from '../../../storage/open-store.js';
import { mapLimit } from '../../../storage/snapshot-format/concurrency.js';

export type ExportLocation = { readonly kind: 'local'; readonly dir: string } | { readonly kind: 's3'; readonly bucket: string; readonly prefix: string };

/** S3 connection settings of an `external_spec` (JSON). Credentials are never persisted or logged. */
export interface ExternalSpec {
  readonly endpoint?: string | undefined;
  readonly region?: string | undefined;
  readonly accessKeyId?: string | undefined;
  readonly secretAccessKey?: string | undefined;
  readonly sessionToken?: string | undefined;
}

const SPEC_KEYS: Readonly<Record<string, keyof ExternalSpec>> = {
  endpoint: 'endpoint',
  region: 'region',
  access_key_id: 'accessKeyId',
  secret_access_key: 'secretAccessKey',
  session_token: 'sessionToken',
};

export function parseExternalSpec(text: unknown): ExternalSpec {
  if (text === undefined || text === null || text === '') return {};
  if (typeof text !== 'string') throw quiverError('ParameterInvalid', 'external_spec must be a JSON string');
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw quiverError('ParameterInvalid', `external_spec is not valid JSON: ${(e as Error).message}`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw quiverError('ParameterInvalid', 'external_spec must be a JSON object');
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(value)) {
    const name = SPEC_KEYS[k];
    // A misspelt key would otherwise fall back to the server's own credentials without a word.
    if (name === undefined)
      throw quiverError('ParameterInvalid', `external_spec: unknown key ${JSON.stringify(k)}; expected ${Object.keys(SPEC_KEYS).join(', ')}`);
    if (typeof v !== 'string') throw quiverError('ParameterInvalid', `external_spec.${k} must be a string`);
    out[name] = v;
  }
  if ((out.accessKeyId === undefined) !== (out.secretAccessKey === undefined)) {
    throw quiverError('ParameterInvalid', 'external_spec: give both access_key_id and secret_access_key, or neither');
  }
  return out;
}

/** Parses a location URI; refuses other schemes and any '.'/'..' path segment. */
export function parseExportUri(uri: unknown, what = 'location'): ExportLocation {
  if (typeof uri !== 'string' || uri.trim() === '') throw quiverError('ParameterMissing', `export ${what} is required (file:///DIR or s3://BUCKET/PREFIX)`);
  const text = uri.trim();
  if (text.startsWith('file://')) {
    let path: string;
    try {
      path = fileURLToPath(text);
    } catch (e) {
      throw quiverError('ParameterInvalid', `${what} ${JSON.stringify(text)}: ${(e as Error).message}`);
    }
    if (hasDotSegment(path) || hasDotSegment(safeDecode(text.slice('file://'.length)))) {
      throw quiverError('ParameterInvalid', `${what} ${JSON.stringify(text)}: '.' and '..' path segments are not allowed`);
    }
    return { kind: 'local', dir: resolve(path) };
  }
  if (text.startsWith('s3://')) {
    if (hasDotSegment(safeDecode(text.slice('s3://'.length)))) {
      throw quiverError('ParameterInvalid', `${what} ${JSON.stringify(text)}: '.' and '..' path segments are not allowed`);
    }
    const where = parseStoreUrl(text, '/');
    if (where.kind !== 's3') throw new Error('assertion failed: an s3:// URL parses to an S3 location');
    return where;
  }
  throw quiverError('ParameterInvalid', `${what} ${JSON.stringify(text)}: expected file:///DIR or s3://BUCKET/PREFIX`);
}

/** The roots of `QUIVER_EXPORT_ROOTS` (empty: `<dataDir>/exports`). A relative local root is a config error. */
export function parseExportRoots(text: string | undefined, dataDir: string): ExportLocation[] {
  const entries = (text ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  if (entries.length === 0) return [{ kind: 'local', dir: resolve(dataDir, 'exports') }];
  return entries.map((e) => {
    if (e.startsWith('file://') || e.startsWith('s3://')) return parseExportUri(e, 'export root');
    if (!isAbsolute(e))
      throw quiverError('ParameterInvalid', `export root ${JSON.stringify(e)} must be an absolute path, file:///DIR or s3://BUCKET/PREFIX`);
    if (hasDotSegment(e)) throw quiverError('ParameterInvalid', `export root ${JSON.stringify(e)}: '.' and '..' path segments are not allowed`);
    return { kind: 'local', dir: resolve(e) };
  });
}

/** Refuses (ParameterInvalid naming the location and the roots) a location outside every root. */
export async function checkWithinRoots(loc: ExportLocation, roots: readonly ExportLocation[], what: string): Promise<void> {
  for (const root of roots) if (await within(loc, root)) return;
  throw quiverError(
    'ParameterInvalid',
    `${what} ${formatLocation(loc)} is outside the allowed export roots (${roots.map(formatLocation).join(', ')}; QUIVER_EXPORT_ROOTS)`,
  );
}

export function formatLocation(loc: ExportLocation): string {
  return loc.kind === 'local' ? `file://${loc.dir}` : `s3://${loc.bucket}${loc.prefix ? `/${loc.prefix}` : ''}`;
}

/** A key under a location, as a URI (what ExportSnapshot answers). */
export function locationUri(loc: ExportLocation, key: string): string {
  return loc.kind === 'local' ? `file://${join(loc.dir, ...key.split('/'))}` : `s3://${loc.bucket}/${loc.prefix ? `${loc.prefix}/` : ''}${key}`;
}

export async function openLocation(loc: ExportLocation, spec: ExternalSpec, dataDir: string): Promise<ObjectStore> {
  if (loc.kind === 'local') {
    if (Object.keys(spec).length > 0) throw quiverError('ParameterInvalid', 'external_spec applies to s3:// locations only');
    // No fsync per file: `syncLocation` makes every blob durable at once before the bundle manifest is written.
    return openObjectStore(`local:${loc.dir}`, { dataDir, local: { fsync: false } });
  }
  const credentials =
    spec.accessKeyId !== undefined && spec.secretAccessKey !== undefined
      ? { accessKeyId: spec.accessKeyId, secretAccessKey: spec.secretAccessKey, ...(spec.sessionToken ? { sessionToken: spec.sessionToken } : {}) }
      : undefined;
  return openObjectStore(formatLocation(loc), {
    dataDir,
    s3: { ...(spec.endpoint ? { endpoint: spec.endpoint } : {}), ...(spec.region ? { region: spec.region } : {}), ...(credentials ? { credentials } : {}) },
  });
}

/**
 * Makes the files written under a local location durable before the bundle manifest names them: an fsync
 * of each, in parallel once all are written (the kernel writes them back together; an fsync inside every
 * put serialized each write behind its own flush). Not `syncfs`: on a shared disk that also waits for
 * everyone else's dirty pages. S3 puts are durable when they return.
 */
export async function syncLocation(loc: ExportLocation, written: readonly string[]): Promise<void> {
  if (loc.kind !== 'local') return;
  await mapLimit(written, SYNC_CONCURRENCY, async (path) => {
    const fh = await open(path, 'r');
    try {
      await fh.datasync();
    } finally {
      await fh.close();
    }
  });
  // The new directory entries too (a blob's name is what the manifest refers to).
  await mapLimit([...new Set(written.map((p) => dirname(p)))], SYNC_CONCURRENCY, async (dir) => {
    const fh = await open(dir, 'r');
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
  });
}

const SYNC_CONCURRENCY = 32;

async function within(loc: ExportLocation, root: ExportLocation): Promise<boolean> {
  if (loc.kind === 's3' || root.kind === 's3') {
    if (loc.kind !== 's3' || root.kind !== 's3' || loc.bucket !== root.bucket) return false;
    return root.prefix === '' || loc.prefix === root.prefix || loc.prefix.startsWith(`${root.prefix}/`);
  }
  const [dir, base] = await Promise.all([realDeepest(loc.dir), realDeepest(root.dir)]);
  const rel = relative(base, dir);
  return rel === '' || (!rel.startsWith(`..${sep}`) && rel !== '..' && !isAbsolute(rel));
}

/** The path with its deepest existing ancestor resolved through symlinks (the rest does not exist yet). */
async function realDeepest(path: string): Promise<string> {
  let head = path;
  const tail: string[] = [];
  for (;;) {
    try {
      return join(await realpath(head), ...tail.reverse());
    } catch {
      const up = dirname(head);
      if (up === head) return path;
      tail.push(head.slice(up.length).replace(/^[/\\]+/, ''));
      head = up;
    }
  }
}

function hasDotSegment(path: string): boolean {
  return path.split(/[/\\]/).some((s) => s === '.' || s === '..');
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}
