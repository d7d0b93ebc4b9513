/**
 * A throwaway S3-compatible server for tests and benchmarks: s3rver (a devDependency) in a child
 * process under `node --openssl-legacy-provider` (its signing code needs the legacy provider on the
 * OpenSSL 3 of Node 20), on a free loopback port with a temporary directory, removed on stop.
 */

import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** s3rver's built-in account. */
export const S3RVER_CREDENTIALS = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' } as const;

/** The s3rver CLI script, or undefined when the package is not installed. */
export function s3rverBin(): string | undefined {
  try {
    return createRequire(import.meta.url).resolve('s3rver/bin/s3rver.js');
  } catch {
    return undefined;
  }
}

export class S3Server {
  readonly endpoint: string;
  readonly #child: ChildProcess;
  readonly #dir: string;
  readonly #exited: Promise<void>;

  private constructor(endpoint: string, child: ChildProcess, dir: string, exited: Promise<void>) {
    this.endpoint = endpoint;
    this.#child = child;
    this.#dir = dir;
    this.#exited = exited;
  }

  /** Starts s3rver with the given buckets created. Resolves once it prints the port it listens on. */
  static async start(buckets: readonly string[], startTimeoutMs = 30_000): Promise<S3Server> {
    const bin = s3rverBin();
    if (bin === undefined) throw new Error('s3rver is not installed (npm devDependency)');
    const dir = mkdtempSync(join(tmpdir(), 'quiver-s3rver-'));
    const args = ['--openssl-legacy-provider', bin, '-d', dir, '-a', '127.0.0.1', '-p', '0', '--silent'];
    for (const b of buckets) args.push('--configure-bucket', b);
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    let output = '';
    try {
      const port = await new Promise<number>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`s3rver did not start in ${startTimeoutMs} ms: ${output}`)), startTimeoutMs);
        const onData = (chunk: Buffer): void => {
          output = (output + chunk.toString('utf8')).slice(-4000);
          const m = /listening on [^:\s]+:(\d+)/.exec(output);
          if (m?.[1] !== undefined) {
            clearTimeout(timer);
            resolve(Number(m[1]));
          }
        };
        child.stdout?.on('data', onData);
        child.stderr?.on('data', onData);
        void exited.then(() => {
          clearTimeout(timer);
          reject(new Error(`s3rver exited during start: ${output}`));
        });
      });
      return new S3Server(`http://127.0.0.1:${port}`, child, dir, exited);
    } catch (e) {
      child.kill('SIGTERM');
      await exited;
      rmSync(dir, { recursive: true, force: true });
      throw e;
    }
  }

  async stop(): Promise<void> {
    if (this.#child.exitCode === null && this.#child.signalCode === null) {
      this.#child.kill('SIGTERM');
      await this.#exited;
    }
    rmSync(this.#dir, { recursive: true, force: true });
  }
}
