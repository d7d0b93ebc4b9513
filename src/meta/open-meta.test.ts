import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { isQuiverError } from '../common/errors.js';
import { EtcdServer, etcdUnavailableReason } from '../testing/etcd-server.js';
import { freePort } from '../testing/free-port.js';
import { openMeta, parseMetaUrl } from './open-meta.js';

const dataDir = mkdtempSync(join(tmpdir(), 'quiver-open-meta-'));
afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

function problem(url: string): string {
  try {
    parseMetaUrl(url, dataDir);
  } catch (e) {
    expect(isQuiverError(e, 'ParameterInvalid'), String(e)).toBe(true);
    const message = (e as Error).message;
    expect(message).not.toContain('\n');
    expect(message).toContain(JSON.stringify(url));
    return message;
  }
  throw new Error(`${url} parsed`);
}

describe('parseMetaUrl', () => {
  it('defaults to sqlite in the data dir and accepts sqlite:PATH', () => {
    const dflt = { kind: 'sqlite', path: join(dataDir, 'meta.db') };
    expect(parseMetaUrl(undefined, dataDir)).toEqual(dflt);
    expect(parseMetaUrl('', dataDir)).toEqual(dflt);
    expect(parseMetaUrl('sqlite', dataDir)).toEqual(dflt);
    expect(parseMetaUrl('sqlite:/var/lib/q/meta.db', dataDir)).toEqual({ kind: 'sqlite', path: '/var/lib/q/meta.db' });
  });

  it('parses etcd host lists, default port and root', () => {
    expect(parseMetaUrl('etcd://10.0.0.1:2379,10.0.0.2:2380,etcd-3/prod/quiver/', dataDir)).toEqual({
      kind: 'etcd',
      hosts: ['10.0.0.1:2379', '10.0.0.2:2380', 'etcd-3:2379'],
      root: 'prod/quiver',
    });
    expect(parseMetaUrl('etcd://localhost', dataDir)).toEqual({ kind: 'etcd', hosts: ['localhost:2379'], root: 'quiver' });
    expect(parseMetaUrl('etcd://[::1]:12379/', dataDir)).toEqual({ kind: 'etcd', hosts: ['[::1]:12379'], root: 'quiver' });
  });

  it('names the problem of a bad URL in one line', () => {
    expect(problem('etcd://')).toMatch(/no host/);
    expect(problem('etcd:///root')).toMatch(/no host/);
    expect(problem('foo://x')).toMatch(/unknown scheme "foo"/);
    expect(problem('mysql://db/x')).toMatch(/expected 'sqlite', 'sqlite:PATH' or 'etcd:\/\/HOST:PORT/);
    expect(problem('etcd:/h:2379')).toMatch(/starts with 'etcd:\/\/'/);
    expect(problem('etcd://h:0')).toMatch(/port "0" is not in 1..65535/);
    expect(problem('etcd://h:99999')).toMatch(/port "99999"/);
    expect(problem('etcd://h:')).toMatch(/empty port/);
    expect(problem('etcd://h:2379,,g')).toMatch(/bad host ""/);
    expect(problem('etcd://h:x1')).toMatch(/bad host "h:x1"/);
    expect(problem('etcd://h/a//b')).toMatch(/root "a\/\/b" has an empty segment/);
    expect(problem('sqlite:')).toMatch(/sqlite:PATH takes a file path/);
    expect(problem('/just/a/path')).toMatch(/no scheme/);
  });
});

describe('openMeta', () => {
  it('opens SQLite at <dataDir>/meta.db by default', async () => {
    const kv = await openMeta(undefined, { dataDir });
    try {
      await kv.put('k', 'v');
      expect(existsSync(join(dataDir, 'meta.db'))).toBe(true);
    } finally {
      await kv.close();
    }
  });

  it('an unreachable etcd fails at open with one line naming the hosts', async () => {
    const port = await freePort();
    const url = `etcd://127.0.0.1:${port}/x`;
    const err = await openMeta(url, { dataDir, etcd: { retryWindowMs: 200, requestTimeoutMs: 200, dialTimeoutMs: 200 } }).catch((e: unknown) => e);
    expect(isQuiverError(err, 'ServiceNotReady'), String(err)).toBe(true);
    expect((err as Error).message).toContain(`cannot use etcd at 127.0.0.1:${port}`);
    expect((err as Error).message).not.toContain('\n');
  });

  it.skipIf(etcdUnavailableReason() !== undefined)('opens etcd under the URL root', async () => {
    const server = await EtcdServer.start();
    try {
      const a = await openMeta(`etcd://${server.endpoint}/one`, { dataDir });
      const b = await openMeta(`etcd://${server.endpoint}/two`, { dataDir });
      try {
        await a.put('k', 'a');
        expect(await b.get('k')).toBeUndefined();
        expect(await a.revision()).toBe(1);
      } finally {
        await a.close();
        await b.close();
      }
    } finally {
      await server.stop();
    }
  });
});
