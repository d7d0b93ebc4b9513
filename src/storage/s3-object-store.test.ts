import { S3Client, UploadPartCopyCommand } from '@aws-sdk/client-s3';
import { createServer, type RequestListener } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isQuiverError } from '../common/errors.js';
import { freePort } from '../testing/free-port.js';
import { S3RVER_CREDENTIALS, S3Server, s3rverBin } from '../testing/s3-server.js';
import { crc32 } from './checksum.js';
import { runObjectStoreConformance } from './object-store.conformance.js';
import { S3ObjectStore, type S3ObjectStoreOptions } from './s3-object-store.js';

const MIB = 1024 * 1024;
const BUCKET = 'quiver-test';
const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const dec = (b: Uint8Array): string => new TextDecoder().decode(b);

const missing = s3rverBin() === undefined ? 'the s3rver devDependency is not installed (npm ci)' : undefined;
if (missing !== undefined) console.warn(`SKIPPED S3 ObjectStore tests: ${missing}`);

describe.skipIf(missing !== undefined)('S3ObjectStore against s3rver', () => {
  let server: S3Server | undefined;
  let prefixCounter = 0;
  const opened: S3ObjectStore[] = [];
  const open = (options: Partial<S3ObjectStoreOptions> = {}): S3ObjectStore => {
    if (server === undefined) throw new Error('s3rver not started');
    const store = new S3ObjectStore({
      bucket: BUCKET,
      prefix: `run-${++prefixCounter}`,
      endpoint: server.endpoint,
      credentials: S3RVER_CREDENTIALS,
      ...options,
    });
    opened.push(store);
    return store;
  };

  beforeAll(async () => {
    server = await S3Server.start([BUCKET, 'quiver-root']);
  });
  afterAll(async () => {
    for (const s of opened) await s.close();
    await server?.stop();
  });

  // Small multipart threshold, list pages and delete batches, so that the suite crosses each boundary.
  // s3rver writes objects in place: concurrent PUTs of one key may interleave on it (not on S3 or MinIO).
  runObjectStoreConformance(
    's3 (s3rver)',
    () => open({ multipartThresholdBytes: 5 * MIB, partBytes: 5 * MIB, listPageKeysMax: 7, deleteBatchKeysMax: 3 }),
    { atomicConcurrentPuts: false },
  );

  it('works at the bucket root, without a prefix', async () => {
    if (server === undefined) throw new Error('s3rver not started');
    const s = new S3ObjectStore({ bucket: 'quiver-root', endpoint: server.endpoint, credentials: S3RVER_CREDENTIALS });
    opened.push(s);
    await s.put('a/b', enc('x'));
    await s.copy('a/b', 'c');
    expect((await s.list('')).map((o) => o.key)).toEqual(['a/b', 'c']);
    expect(await s.deletePrefix('a/')).toBe(1);
    expect((await s.list('')).map((o) => o.key)).toEqual(['c']);
  });

  it('a multipart put of many parts reads back whole, and its copy too', async () => {
    const s = open({ multipartThresholdBytes: 5 * MIB, partBytes: 5 * MIB, partConcurrency: 2 });
    const big = new Uint8Array(17 * MIB);
    for (let i = 0; i < big.length; i += 997) big[i] = (i / 997) & 0xff;
    await s.put('mp/big', big);
    expect(await s.stat('mp/big')).toMatchObject({ size: big.byteLength });
    expect(Buffer.compare(await s.get('mp/big'), big)).toBe(0);
    await s.copy('mp/big', 'mp/copy');
    expect(Buffer.compare(await s.get('mp/copy'), big)).toBe(0);
    expect(Array.from(await s.getRange('mp/copy', 5 * MIB - 1, 3))).toEqual(Array.from(big.subarray(5 * MIB - 1, 5 * MIB + 2)));
  });

  it('checkAccess names a missing bucket and refused credentials in one line', async () => {
    if (server === undefined) throw new Error('s3rver not started');
    await expect(open().checkAccess()).resolves.toBeUndefined();
    const noBucket = await open({ bucket: 'no-such-bucket' })
      .checkAccess()
      .catch((e: unknown) => e);
    expect(isQuiverError(noBucket, 'ParameterInvalid')).toBe(true);
    expect(String(noBucket)).toMatch(/bucket "no-such-bucket" does not exist/);
    const badKey = await open({ credentials: { accessKeyId: 'WRONG', secretAccessKey: 'WRONG' } })
      .checkAccess()
      .catch((e: unknown) => e);
    expect(isQuiverError(badKey, 'ParameterInvalid')).toBe(true);
    expect(String(badKey)).toMatch(/access denied to bucket "quiver-test"; check the AWS credentials/);
    expect(String(badKey)).not.toContain('\n');
  });

  it('an unreachable endpoint fails with a retriable IoFailed naming the store', async () => {
    const port = await freePort();
    const s = open({ endpoint: `http://127.0.0.1:${port}`, maxAttempts: 2, connectionTimeoutMs: 500 });
    const err = await s.get('k').catch((e: unknown) => e);
    expect(isQuiverError(err, 'IoFailed'), String(err)).toBe(true);
    expect((err as { retriable: boolean }).retriable).toBe(true);
    expect(String(err)).toContain(`127.0.0.1:${port}`);
  });
});

describe('S3ObjectStore multipart copy (fake client: test servers lack UploadPartCopy)', () => {
  it('copies a 12 GiB source in ranges pinned to its ETag and completes the parts in order', async () => {
    const client = new S3Client({ region: 'us-east-1', credentials: { accessKeyId: 'x', secretAccessKey: 'y' } });
    const sent: { name: string; input: Record<string, unknown> }[] = [];
    const size = 12 * 1024 ** 3 + 5;
    (client as unknown as { send: (c: { constructor: { name: string }; input: Record<string, unknown> }) => Promise<unknown> }).send = async (cmd) => {
      const name = cmd.constructor.name;
      sent.push({ name, input: cmd.input });
      switch (name) {
        case 'CopyObjectCommand':
          throw Object.assign(new Error('The specified copy source is larger than the maximum allowable size'), {
            name: 'InvalidRequest',
            $metadata: { httpStatusCode: 400 },
          });
        case 'HeadObjectCommand':
          return { ContentLength: size, ETag: '"etag-1"' };
        case 'CreateMultipartUploadCommand':
          return { UploadId: 'up-1' };
        case 'UploadPartCopyCommand':
          return { CopyPartResult: { ETag: `"p${String(cmd.input.PartNumber)}"` } };
        case 'CompleteMultipartUploadCommand':
          return {};
        default:
          throw new Error(`unexpected ${name}`);
      }
    };
    const s = new S3ObjectStore({ bucket: 'bkt', prefix: 'root', client, copyPartBytes: 4 * 1024 ** 3, partConcurrency: 2 });
    await s.copy('src/k', 'dst/k');
    const parts = sent.filter((c) => c.name === UploadPartCopyCommand.name).map((c) => c.input);
    expect(parts.map((p) => [p.PartNumber, p.CopySourceRange, p.CopySourceIfMatch, p.CopySource])).toEqual([
      [1, `bytes=0-${4 * 1024 ** 3 - 1}`, '"etag-1"', 'bkt/root/src/k'],
      [2, `bytes=${4 * 1024 ** 3}-${8 * 1024 ** 3 - 1}`, '"etag-1"', 'bkt/root/src/k'],
      [3, `bytes=${8 * 1024 ** 3}-${12 * 1024 ** 3 - 1}`, '"etag-1"', 'bkt/root/src/k'],
      [4, `bytes=${12 * 1024 ** 3}-${size - 1}`, '"etag-1"', 'bkt/root/src/k'],
    ]);
    const create = sent.find((c) => c.name === 'CreateMultipartUploadCommand')?.input;
    expect(create).toMatchObject({ Bucket: 'bkt', Key: 'root/dst/k' });
    const complete = sent.find((c) => c.name === 'CompleteMultipartUploadCommand')?.input;
    expect(complete).toMatchObject({ UploadId: 'up-1', MultipartUpload: { Parts: [1, 2, 3, 4].map((n) => ({ PartNumber: n, ETag: `"p${n}"` })) } });
  });
});

describe('S3ObjectStore integrity checks (a scripted HTTP server)', () => {
  /** Answers every GET with `body` and the given headers: a server or network that corrupts bytes. */
  async function withServer(body: string, headers: Record<string, string>, fn: (endpoint: string) => Promise<void>): Promise<void> {
    await withHandler((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/octet-stream', ...headers });
      res.end(body);
    }, fn);
  }
  async function withHandler(handler: RequestListener, fn: (endpoint: string) => Promise<void>): Promise<void> {
    const server = createServer(handler);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const address = server.address();
    const port = typeof address === 'object' && address !== null ? address.port : 0;
    try {
      await fn(`http://127.0.0.1:${port}`);
    } finally {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  }
  const storeAt = (endpoint: string, options: Partial<S3ObjectStoreOptions> = {}): S3ObjectStore =>
    new S3ObjectStore({ bucket: 'bkt', endpoint, credentials: { accessKeyId: 'a', secretAccessKey: 'b' }, maxAttempts: 1, ...options });

  it('retries 503 answers with the SDK strategy, and a server that never answers times out retriable', async () => {
    let calls = 0;
    await withHandler(
      (_req, res) => {
        calls += 1;
        if (calls <= 2) {
          res.writeHead(503, { 'content-type': 'application/xml' });
          res.end('<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>');
          return;
        }
        res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': '2' });
        res.end('ok');
      },
      async (endpoint) => {
        const s = storeAt(endpoint, { maxAttempts: 3 });
        try {
          expect(dec(await s.get('k'))).toBe('ok');
          expect(calls).toBe(3);
        } finally {
          await s.close();
        }
      },
    );
    // A server that never answers: caught by the idle timeout, and by the whole-request cap on its own.
    for (const timeouts of [{ socketIdleTimeoutMs: 200 }, { socketIdleTimeoutMs: 60_000, requestTimeoutMs: 300 }]) {
      await withHandler(
        () => undefined,
        async (endpoint) => {
          const s = storeAt(endpoint, { maxAttempts: 2, ...timeouts });
          try {
            const err = await s.get('k').catch((e: unknown) => e);
            expect(isQuiverError(err, 'IoFailed'), String(err)).toBe(true);
            expect((err as { retriable: boolean }).retriable).toBe(true);
            expect(String(err)).toContain('"k"');
          } finally {
            await s.close();
          }
        },
      );
    }
  });

  it('a get whose bytes do not match the CRC-32 the server stored is a retriable IoFailed naming the key', async () => {
    const wrongCrc = Buffer.alloc(4).toString('base64'); // CRC-32 of "hello" is not 0
    await withServer('hello', { 'content-length': '5', 'x-amz-checksum-crc32': wrongCrc }, async (endpoint) => {
      const s = storeAt(endpoint);
      try {
        const err = await s.get('bad/key').catch((e: unknown) => e);
        expect(isQuiverError(err, 'IoFailed'), String(err)).toBe(true);
        expect((err as { retriable: boolean }).retriable).toBe(true);
        expect(String(err)).toContain('"bad/key"');
        expect(String(err).toLowerCase()).toContain('checksum');
      } finally {
        await s.close();
      }
    });
    const rightCrc = Buffer.alloc(4);
    rightCrc.writeUInt32BE(crc32(enc('hello')));
    await withServer('hello', { 'content-length': '5', 'x-amz-checksum-crc32': rightCrc.toString('base64') }, async (endpoint) => {
      const s = storeAt(endpoint);
      try {
        expect(dec(await s.get('good/key'))).toBe('hello');
      } finally {
        await s.close();
      }
    });
  });
});
