import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isQuiverError } from '../common/errors.js';
import { freePort } from '../testing/free-port.js';
import { S3RVER_CREDENTIALS, S3Server, s3rverBin } from '../testing/s3-server.js';
import { openObjectStore, parseStoreUrl } from './open-store.js';

const dataDir = mkdtempSync(join(tmpdir(), 'quiver-open-store-'));
afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

function problem(url: string): string {
  try {
    parseStoreUrl(url, dataDir);
  } catch (e) {
    expect(isQuiverError(e, 'ParameterInvalid'), String(e)).toBe(true);
    const message = (e as Error).message;
    expect(message).not.toContain('\n');
    expect(message).toContain(JSON.stringify(url));
    return message;
  }
  throw new Error(`${url} parsed`);
}

describe('parseStoreUrl', () => {
  it('defaults to <dataDir>/objects and accepts local:PATH', () => {
    const dflt = { kind: 'local', dir: join(dataDir, 'objects') };
    expect(parseStoreUrl(undefined, dataDir)).toEqual(dflt);
    expect(parseStoreUrl('local', dataDir)).toEqual(dflt);
    expect(parseStoreUrl('local:/srv/q', dataDir)).toEqual({ kind: 'local', dir: '/srv/q' });
  });

  it('parses s3://BUCKET[/PREFIX]', () => {
    expect(parseStoreUrl('s3://my-bucket', dataDir)).toEqual({ kind: 's3', bucket: 'my-bucket', prefix: '' });
    expect(parseStoreUrl('s3://my.bucket/a/b/', dataDir)).toEqual({ kind: 's3', bucket: 'my.bucket', prefix: 'a/b' });
  });

  it('names the problem of a bad URL in one line', () => {
    expect(problem('s3://')).toMatch(/no bucket/);
    expect(problem('s3:///prefix')).toMatch(/no bucket/);
    expect(problem('s3://Bad_Bucket')).toMatch(/"Bad_Bucket" is not a valid bucket name/);
    expect(problem('s3://ab')).toMatch(/not a valid bucket name/);
    expect(problem('gs://bucket')).toMatch(/unknown scheme "gs"/);
    expect(problem('s3:/bucket')).toMatch(/starts with 's3:\/\/'/);
    expect(problem('s3://bucket/a/../b')).toMatch(/prefix: .*'\.\.'/);
    expect(problem('s3://bucket/a//b')).toMatch(/prefix/);
    expect(problem('local:')).toMatch(/local:PATH takes a directory path/);
    expect(problem('./objects')).toMatch(/no scheme/);
  });
});

describe('openObjectStore', () => {
  it('opens a local directory under the data dir by default', async () => {
    const s = await openObjectStore(undefined, { dataDir });
    try {
      await s.put('a/b', new Uint8Array([1]));
      expect(existsSync(join(dataDir, 'objects', 'a', 'b'))).toBe(true);
      expect(s.name).toBe('local');
    } finally {
      await s.close();
    }
  });

  it('an unreachable endpoint fails at open with one line naming it', async () => {
    const port = await freePort();
    const err = await openObjectStore('s3://bucket', {
      dataDir,
      s3: { endpoint: `http://127.0.0.1:${port}`, credentials: S3RVER_CREDENTIALS, maxAttempts: 1 },
    }).catch((e: unknown) => e);
    expect(isQuiverError(err, 'IoFailed'), String(err)).toBe(true);
    expect((err as Error).message).toMatch(new RegExp(`s3://bucket/ at http://127.0.0.1:${port}: cannot reach bucket "bucket"`));
    expect((err as Error).message).not.toContain('\n');
  });

  describe.skipIf(s3rverBin() === undefined)('against s3rver', () => {
    let server: S3Server | undefined;
    beforeAll(async () => {
      server = await S3Server.start(['exists']);
    });
    afterAll(async () => {
      await server?.stop();
    });
    const s3 = (credentials: { accessKeyId: string; secretAccessKey: string } = S3RVER_CREDENTIALS) => ({
      endpoint: server?.endpoint,
      credentials,
      maxAttempts: 1,
    });

    it('opens an existing bucket under a prefix', async () => {
      const s = await openObjectStore('s3://exists/some/prefix', { dataDir, s3: s3() });
      try {
        await s.put('k', new Uint8Array([7]));
        expect(Array.from(await s.get('k'))).toEqual([7]);
        expect(s.name).toBe('s3');
      } finally {
        await s.close();
      }
    });

    it('a bucket that does not exist and refused credentials each fail at open with one line', async () => {
      const missing = await openObjectStore('s3://nope-bucket', { dataDir, s3: s3() }).catch((e: unknown) => e);
      expect(isQuiverError(missing, 'ParameterInvalid'), String(missing)).toBe(true);
      expect((missing as Error).message).toMatch(/bucket "nope-bucket" does not exist/);
      expect((missing as Error).message).not.toContain('\n');
      const denied = await openObjectStore('s3://exists', { dataDir, s3: s3({ accessKeyId: 'WRONG', secretAccessKey: 'WRONG' }) }).catch((e: unknown) => e);
      expect(isQuiverError(denied, 'ParameterInvalid'), String(denied)).toBe(true);
      expect((denied as Error).message).toMatch(/access denied to bucket "exists"; check the AWS credentials/);
      expect((denied as Error).message).not.toContain('\n');
    });
  });
});
