import { mkdir, mkdtemp, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkWithinRoots, parseExportRoots, parseExportUri, parseExternalSpec } from './export-location.js';

describe('export locations and roots', () => {
  let base: string;
  beforeAll(async () => {
    base = await mkdtemp(join(tmpdir(), 'quiver-roots-'));
    await mkdir(join(base, 'root', 'in'), { recursive: true });
    await mkdir(join(base, 'elsewhere'), { recursive: true });
    // A link inside the root that points outside it.
    await symlink(join(base, 'elsewhere'), join(base, 'root', 'escape'));
  });
  afterAll(async () => {
    await rm(base, { recursive: true, force: true });
  });

  it('default root is <dataDir>/exports; relative roots and dot segments are config errors', () => {
    expect(parseExportRoots('', '/data')).toEqual([{ kind: 'local', dir: '/data/exports' }]);
    expect(parseExportRoots(' /a , s3://bkt/p ,file:///b', '/d')).toEqual([
      { kind: 'local', dir: '/a' },
      { kind: 's3', bucket: 'bkt', prefix: 'p' },
      { kind: 'local', dir: '/b' },
    ]);
    expect(() => parseExportRoots('rel/dir', '/d')).toThrow(/absolute path/);
    expect(() => parseExportRoots('/a/../b', '/d')).toThrow(/path segments/);
  });

  it('refuses dot segments (raw or percent-encoded), other schemes and empty locations', () => {
    for (const bad of ['file:///a/../b', 'file:///a/./b', 'file:///a/%2E%2E/b', 's3://bkt/a/../b', 's3://bkt/%2e%2e/b']) {
      expect(() => parseExportUri(bad), bad).toThrow(/'\.' and '\.\.'/);
    }
    expect(() => parseExportUri('ftp://x/y')).toThrow(/expected file/);
    expect(() => parseExportUri('')).toThrow(/required/);
    expect(parseExportUri('file:///a/b/')).toEqual({ kind: 'local', dir: '/a/b' });
  });

  it('a location is inside a root only below it: sibling prefixes and symlinks out do not count', async () => {
    const roots = parseExportRoots(`${join(base, 'root')},s3://bkt/exports`, '/d');
    await checkWithinRoots(parseExportUri(`file://${join(base, 'root')}`), roots, 't');
    await checkWithinRoots(parseExportUri(`file://${join(base, 'root', 'in', 'new', 'deeper')}`), roots, 't');
    await checkWithinRoots(parseExportUri('s3://bkt/exports/daily'), roots, 't');
    for (const out of [
      `file://${join(base, 'root2')}`,
      `file://${join(base, 'elsewhere')}`,
      `file://${join(base, 'root', 'escape', 'x')}`,
      's3://bkt/exports2',
      's3://other/exports',
    ]) {
      await expect(checkWithinRoots(parseExportUri(out), roots, 't'), out).rejects.toThrow(/outside the allowed export roots/);
    }
  });

  it('external_spec: known keys only, both credentials or neither', () => {
    expect(parseExternalSpec('')).toEqual({});
    expect(parseExternalSpec('{"endpoint":"http://h:9000","access_key_id":"a","secret_access_key":"b"}')).toEqual({
      endpoint: 'http://h:9000',
      accessKeyId: 'a',
      secretAccessKey: 'b',
    });
    expect(() => parseExternalSpec('{"access_key_id":"a"}')).toThrow(/both/);
    expect(() => parseExternalSpec('{"endpiont":"x"}')).toThrow(/unknown key/);
    expect(() => parseExternalSpec('[1]')).toThrow(/object/);
  });
});
