/**
 * Throwaway TLS material for tests, made with the `openssl` binary: a CA, a server certificate for
 * 127.0.0.1 and a client certificate, all signed by that CA, plus a second CA that signed nothing (for
 * "wrong CA" cases). EC P-256 keys: fast to generate. Valid for one day.
 */

import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface TestCertificates {
  readonly caFile: string;
  /** A CA that signed none of these certificates. */
  readonly otherCaFile: string;
  readonly serverCertFile: string;
  readonly serverKeyFile: string;
  readonly clientCertFile: string;
  readonly clientKeyFile: string;
}

/** Why certificates cannot be made here (for a skip message), or undefined when openssl runs. */
export function opensslUnavailableReason(): string | undefined {
  const r = spawnSync('openssl', ['version'], { encoding: 'utf8' });
  if (r.error !== undefined) return `no 'openssl' binary on PATH: ${r.error.message}`;
  if (r.status !== 0) return `'openssl version' exited with ${r.status}: ${r.stderr}`;
  return undefined;
}

function openssl(dir: string, args: readonly string[]): void {
  const r = spawnSync('openssl', args, { cwd: dir, encoding: 'utf8' });
  if (r.error !== undefined || r.status !== 0) throw new Error(`openssl ${args.join(' ')} failed: ${r.error?.message ?? r.stderr}`);
}

/** Writes the certificates and keys into `dir` (which must exist). */
export function makeTestCertificates(dir: string): TestCertificates {
  const key = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  for (const ca of ['ca', 'other-ca']) {
    openssl(dir, ['req', '-x509', ...key, '-keyout', `${ca}.key`, '-out', `${ca}.crt`, '-days', '1', '-subj', `/CN=quiver-test-${ca}`]);
  }
  const sign = (name: string, ext: string) => {
    writeFileSync(join(dir, `${name}.ext`), ext);
    openssl(dir, ['req', ...key, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=quiver-test-${name}`]);
    openssl(dir, [
      'x509',
      '-req',
      '-in',
      `${name}.csr`,
      '-CA',
      'ca.crt',
      '-CAkey',
      'ca.key',
      '-CAcreateserial',
      '-out',
      `${name}.crt`,
      '-days',
      '1',
      '-extfile',
      `${name}.ext`,
    ]);
  };
  // grpc (and etcd) check the IP SAN; etcd's client-cert-auth wants clientAuth usage on the client's.
  sign('server', 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n');
  sign('client', 'extendedKeyUsage=clientAuth\n');
  return {
    caFile: join(dir, 'ca.crt'),
    otherCaFile: join(dir, 'other-ca.crt'),
    serverCertFile: join(dir, 'server.crt'),
    serverKeyFile: join(dir, 'server.key'),
    clientCertFile: join(dir, 'client.crt'),
    clientKeyFile: join(dir, 'client.key'),
  };
}
