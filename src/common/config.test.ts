import { describe, expect, it } from 'vitest';
import { loadConfig } from './config.js';

describe('config: meta and storage backends', () => {
  it('defaults to the embedded backends; flags win over the environment', () => {
    const c = loadConfig({}, {});
    expect([c.meta, c.storage, c.s3Endpoint]).toEqual(['sqlite', 'local', undefined]);
    const env = { QUIVER_META: 'etcd://a:2379', QUIVER_STORAGE: 's3://b', QUIVER_S3_ENDPOINT: 'http://127.0.0.1:9000' };
    expect(loadConfig({}, env)).toMatchObject({ meta: 'etcd://a:2379', storage: 's3://b', s3Endpoint: 'http://127.0.0.1:9000' });
    expect(loadConfig({ meta: 'etcd://c:1/r' }, env).meta).toBe('etcd://c:1/r');
  });

  it('refuses half of a credential pair, a client certificate without a CA, and an endpoint that is not a URL', () => {
    expect(() => loadConfig({ etcdUsername: 'u' }, {})).toThrow(/etcd-username and --etcd-password/);
    expect(() => loadConfig({}, { QUIVER_ETCD_PASSWORD: 'p' })).toThrow(/etcd-username and --etcd-password/);
    expect(() => loadConfig({ etcdCertFile: 'c', etcdKeyFile: 'k' }, {})).toThrow(/needs --etcd-ca-file/);
    expect(() => loadConfig({ etcdCaFile: 'ca', etcdCertFile: 'c' }, {})).toThrow(/etcd-cert-file and --etcd-key-file/);
    expect(() => loadConfig({ s3Endpoint: '127.0.0.1:9000' }, {})).toThrow(/s3Endpoint/);
    expect(loadConfig({ etcdUsername: 'u', etcdPassword: 'p', etcdCaFile: 'ca' }, {})).toMatchObject({
      etcdUsername: 'u',
      etcdPassword: 'p',
      etcdCaFile: 'ca',
    });
  });
});

describe('config: index build threads', () => {
  it('is unset by default (every core), read from QUIVER_INDEX_BUILD_THREADS or the flag, and at least 1', () => {
    expect(loadConfig({}, {}).indexBuildThreads).toBeUndefined();
    expect(loadConfig({}, { QUIVER_INDEX_BUILD_THREADS: '3' }).indexBuildThreads).toBe(3);
    expect(loadConfig({ indexBuildThreads: '1' }, { QUIVER_INDEX_BUILD_THREADS: '3' }).indexBuildThreads).toBe(1);
    expect(() => loadConfig({}, { QUIVER_INDEX_BUILD_THREADS: '0' })).toThrow(/indexBuildThreads/);
  });
});

describe('config: authentication and TLS', () => {
  it('auth is off by default; QUIVER_AUTH or the flag turns it on; an unclear value is refused', () => {
    expect(loadConfig({}, {}).auth).toBe(false);
    expect(loadConfig({}, { QUIVER_AUTH: 'true' }).auth).toBe(true);
    expect(loadConfig({ auth: true }, { QUIVER_AUTH: 'false' }).auth).toBe(true);
    expect(() => loadConfig({}, { QUIVER_AUTH: 'yes' })).toThrow(/auth/);
  });

  it('builds config.tls from certificate and key (both or neither); a CA needs them', () => {
    expect(loadConfig({}, {}).tls).toBeUndefined();
    expect(loadConfig({}, { QUIVER_TLS_CERT: 's.crt', QUIVER_TLS_KEY: 's.key' }).tls).toEqual({ certFile: 's.crt', keyFile: 's.key', caFile: undefined });
    expect(loadConfig({ tlsCert: 'a', tlsKey: 'b', tlsCa: 'c' }, {}).tls).toEqual({ certFile: 'a', keyFile: 'b', caFile: 'c' });
    expect(() => loadConfig({ tlsCert: 'a' }, {})).toThrow(/--tls-cert and --tls-key/);
    expect(() => loadConfig({ tlsCa: 'c' }, {})).toThrow(/--tls-ca/);
  });

  it('takes the root password from the environment or a file, not both, and never echoes it', () => {
    expect(loadConfig({}, { QUIVER_ROOT_PASSWORD: 'pw-123456' }).rootPassword).toBe('pw-123456');
    expect(() => loadConfig({ rootPasswordFile: 'f' }, { QUIVER_ROOT_PASSWORD: 'pw-123456' })).toThrow(/not both/);
    expect(() => loadConfig({ rootPasswordFile: 'f' }, { QUIVER_ROOT_PASSWORD: 'pw-123456' })).not.toThrow(/pw-123456/);
  });
});
