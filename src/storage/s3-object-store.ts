/**
 * ObjectStore on S3 and S3-compatible servers (AWS S3, MinIO, R2) through `@aws-sdk/client-s3`.
 *
 * Keys live under an optional prefix of one bucket (`s3://bucket/prefix`), so several stores can share a
 * bucket. With an explicit endpoint the client uses path-style addressing (what MinIO and most
 * self-hosted servers need); credentials and region come from the standard AWS chain unless given.
 * Retries and timeouts are the SDK's (standard retry mode, `maxAttempts`); what still fails is mapped
 * to one QuiverError: a missing key is IoKeyNotFound, network trouble and 5xx are a retriable
 * IoFailed, refusals (403, ...) are non-retriable.
 *
 * Integrity: every upload carries a CRC-32 (`x-amz-checksum-crc32`, per part for multipart uploads)
 * that the server checks before storing and keeps with the object, and every whole-object get asks for
 * it back (ChecksumMode ENABLED) so that the SDK checks the bytes received; a mismatch is a retriable
 * IoFailed. Every read also checks that it got exactly the announced number of bytes. (A server without
 * checksum support skips both; a multipart object has a composite checksum the SDK does not re-check on
 * get, so there only the length is checked. Quiver's own files carry their own checksums too.)
 *
 * Size thresholds: puts above `multipartThresholdBytes` go as a multipart upload (parts in parallel, the
 * upload aborted on failure); copies are one server-side CopyObject, and above S3's 5 GiB CopyObject
 * limit a multipart copy of UploadPartCopy ranges, pinned to the source's ETag so that a source replaced
 * mid-copy fails the copy instead of mixing two versions.
 */

import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
  UploadPartCopyCommand,
  type CompletedPart,
  type S3ClientConfig,
} from '@aws-sdk/client-s3';
import { isQuiverError, quiverError, type QuiverError } from '../common/errors.js';
import { compareObjectKeys, validateObjectKey, validateObjectPrefix, validateRange } from './object-key.js';
import type { ObjectInfo, ObjectStore, ObjectStoreOp } from './object-store.js';

export interface S3ObjectStoreOptions {
  readonly bucket: string;
  /** Key prefix inside the bucket ('' or 'a/b', no leading or trailing '/'). */
  readonly prefix?: string | undefined;
  /** e.g. http://127.0.0.1:9000 for MinIO; implies path-style addressing. Omit for AWS S3. */
  readonly endpoint?: string | undefined;
  /** Default: the AWS chain (AWS_REGION, config files), or us-east-1 when an endpoint is given. */
  readonly region?: string | undefined;
  /** Default: the AWS credential chain (env, shared files, SSO, instance metadata, ...). */
  readonly credentials?: { readonly accessKeyId: string; readonly secretAccessKey: string; readonly sessionToken?: string } | undefined;
  /** The SDK's attempts per request, retries included (standard retry mode). */
  readonly maxAttempts?: number | undefined;
  readonly connectionTimeoutMs?: number | undefined;
  /** A request whose socket stays idle this long fails (and the SDK retries it): a stalled server. */
  readonly socketIdleTimeoutMs?: number | undefined;
  /** Cap on one whole request and its answer (a part of a multipart upload is one request). */
  readonly requestTimeoutMs?: number | undefined;
  readonly multipartThresholdBytes?: number | undefined;
  readonly partBytes?: number | undefined;
  /** Parts of one multipart upload or copy in flight at once. */
  readonly partConcurrency?: number | undefined;
  /** Objects larger than this are copied with UploadPartCopy (S3 refuses CopyObject above 5 GiB). */
  readonly copyObjectBytesMax?: number | undefined;
  readonly copyPartBytes?: number | undefined;
  /** Keys per ListObjectsV2 page (S3 answers at most 1000). */
  readonly listPageKeysMax?: number | undefined;
  /** Keys per DeleteObjects request (S3 accepts at most 1000). */
  readonly deleteBatchKeysMax?: number | undefined;
  /** For tests: a prepared client (the options above that configure a client are then ignored). */
  readonly client?: S3Client | undefined;
}

const GIB = 1024 ** 3;
const MIB = 1024 ** 2;
/** S3 limits. */
const PARTS_MAX = 10_000;
const PART_BYTES_MIN = 5 * MIB;
const COPY_OBJECT_BYTES_MAX = 5 * GIB;
const LIST_PAGE_KEYS_MAX = 1000;
const DELETE_BATCH_KEYS_MAX = 1000;

export class S3ObjectStore implements ObjectStore {
  readonly name = 's3';
  readonly #client: S3Client;
  readonly #bucket: string;
  /** '' or 'a/b/' */
  readonly #prefix: string;
  readonly #where: string;
  readonly #multipartThresholdBytes: number;
  readonly #partBytes: number;
  readonly #partConcurrency: number;
  readonly #copyObjectBytesMax: number;
  readonly #copyPartBytes: number;
  readonly #listPageKeysMax: number;
  readonly #deleteBatchKeysMax: number;
  #closed = false;

  constructor(options: S3ObjectStoreOptions) {
    if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(options.bucket)) {
      throw quiverError('ParameterInvalid', `object store s3: ${JSON.stringify(options.bucket)} is not a valid bucket name`);
    }
    const prefix = options.prefix ?? '';
    if (prefix !== '') validateObjectKey(prefix);
    this.#bucket = options.bucket;
    this.#prefix = prefix === '' ? '' : `${prefix}/`;
    this.#where = `s3://${this.#bucket}/${this.#prefix}${options.endpoint === undefined ? '' : ` at ${options.endpoint}`}`;
    this.#partBytes = Math.max(PART_BYTES_MIN, options.partBytes ?? 16 * MIB);
    this.#multipartThresholdBytes = Math.max(this.#partBytes, options.multipartThresholdBytes ?? 32 * MIB);
    this.#partConcurrency = Math.max(1, options.partConcurrency ?? 4);
    this.#copyObjectBytesMax = Math.min(COPY_OBJECT_BYTES_MAX, options.copyObjectBytesMax ?? COPY_OBJECT_BYTES_MAX);
    this.#copyPartBytes = Math.max(PART_BYTES_MIN, options.copyPartBytes ?? GIB);
    this.#listPageKeysMax = Math.min(LIST_PAGE_KEYS_MAX, Math.max(1, options.listPageKeysMax ?? LIST_PAGE_KEYS_MAX));
    this.#deleteBatchKeysMax = Math.min(DELETE_BATCH_KEYS_MAX, Math.max(1, options.deleteBatchKeysMax ?? DELETE_BATCH_KEYS_MAX));
    this.#client = options.client ?? new S3Client(clientConfig(options));
  }

  /**
   * Checks that the bucket exists and the credentials may use it, so that a wrong URL or key fails at
   * startup with one line naming the problem rather than at the first write.
   */
  async checkAccess(): Promise<void> {
    this.#checkOpen();
    try {
      await this.#client.send(new HeadBucketCommand({ Bucket: this.#bucket }));
    } catch (e) {
      const status = httpStatus(e);
      if (status === 404 || errName(e) === 'NoSuchBucket' || errName(e) === 'NotFound') {
        throw quiverError('ParameterInvalid', `object store ${this.#where}: bucket ${JSON.stringify(this.#bucket)} does not exist`, e);
      }
      if (status === 403 || status === 401) {
        throw quiverError(
          'ParameterInvalid',
          `object store ${this.#where}: access denied to bucket ${JSON.stringify(this.#bucket)}; check the AWS credentials (${errName(e)})`,
          e,
        );
      }
      const hint = /region is missing/i.test(errText(e)) ? ' (set AWS_REGION or give a region)' : '';
      throw quiverError(
        'IoFailed',
        `object store ${this.#where}: cannot reach bucket ${JSON.stringify(this.#bucket)}: ${errName(e)}: ${oneLine(errText(e))}${hint}`,
        e,
      );
    }
  }

  async put(key: string, data: Uint8Array): Promise<void> {
    this.#checkOpen();
    validateObjectKey(key);
    if (!(data instanceof Uint8Array)) {
      throw quiverError('ParameterInvalid', `object store s3: put ${JSON.stringify(key)}: data must be a Uint8Array`);
    }
    try {
      if (data.byteLength <= this.#multipartThresholdBytes) {
        await this.#client.send(
          new PutObjectCommand({ Bucket: this.#bucket, Key: this.#full(key), Body: data, ContentLength: data.byteLength, ChecksumAlgorithm: 'CRC32' }),
        );
      } else {
        await this.#multipartPut(key, data);
      }
    } catch (e) {
      throw this.#error('put', key, e);
    }
  }

  async get(key: string): Promise<Uint8Array> {
    this.#checkOpen();
    validateObjectKey(key);
    try {
      const res = await this.#client.send(new GetObjectCommand({ Bucket: this.#bucket, Key: this.#full(key), ChecksumMode: 'ENABLED' }));
      return await readBody(res.Body, res.ContentLength);
    } catch (e) {
      throw this.#error('get', key, e);
    }
  }

  async getRange(key: string, offset: number, length: number): Promise<Uint8Array> {
    this.#checkOpen();
    validateObjectKey(key);
    validateRange(key, offset, length);
    try {
      if (length > 0) {
        try {
          const res = await this.#client.send(
            new GetObjectCommand({ Bucket: this.#bucket, Key: this.#full(key), Range: `bytes=${offset}-${offset + length - 1}` }),
          );
          const bytes = await readBody(res.Body, res.ContentLength);
          // A server that ignores Range answers 200 (no Content-Range) with the whole object: cut the window out.
          if (res.ContentRange === undefined) {
            if (offset > bytes.byteLength) {
              throw quiverError('ParameterInvalid', `object ${JSON.stringify(key)}: range offset ${offset} is beyond its size ${bytes.byteLength}`);
            }
            return bytes.slice(offset, Math.min(bytes.byteLength, offset + length));
          }
          if (bytes.byteLength > length) {
            throw quiverError(
              'IoFailed',
              `object store ${this.#where}: getRange ${JSON.stringify(key)}: asked for ${length} bytes, got ${bytes.byteLength}`,
            );
          }
          return bytes;
        } catch (e) {
          // 416: the range starts at or past the end; the size decides between "empty" and "invalid".
          if (httpStatus(e) !== 416 && errName(e) !== 'InvalidRange') throw e;
        }
      }
      const info = await this.stat(key);
      if (info === undefined) throw this.#notFound('getRange', key);
      if (offset > info.size) {
        throw quiverError('ParameterInvalid', `object ${JSON.stringify(key)}: range offset ${offset} is beyond its size ${info.size}`);
      }
      return new Uint8Array(0);
    } catch (e) {
      throw this.#error('getRange', key, e);
    }
  }

  async stat(key: string): Promise<ObjectInfo | undefined> {
    this.#checkOpen();
    validateObjectKey(key);
    try {
      const res = await this.#client.send(new HeadObjectCommand({ Bucket: this.#bucket, Key: this.#full(key) }));
      return { key, size: res.ContentLength ?? 0, lastModifiedMs: res.LastModified?.getTime() ?? 0 };
    } catch (e) {
      if (isNotFound(e)) return undefined;
      throw this.#error('stat', key, e);
    }
  }

  async list(prefix: string): Promise<ObjectInfo[]> {
    this.#checkOpen();
    validateObjectPrefix(prefix);
    try {
      return await this.#list(prefix);
    } catch (e) {
      throw this.#error('list', prefix, e);
    }
  }

  async delete(key: string): Promise<void> {
    this.#checkOpen();
    validateObjectKey(key);
    try {
      // S3 answers 204 whether or not the key existed.
      await this.#client.send(new DeleteObjectCommand({ Bucket: this.#bucket, Key: this.#full(key) }));
    } catch (e) {
      if (isNotFound(e)) return;
      throw this.#error('delete', key, e);
    }
  }

  async deletePrefix(prefix: string): Promise<number> {
    this.#checkOpen();
    validateObjectPrefix(prefix);
    if (prefix.length === 0) throw quiverError('ParameterInvalid', 'object store s3: deletePrefix refuses the empty prefix');
    try {
      const keys = (await this.#list(prefix)).map((o) => o.key);
      for (let i = 0; i < keys.length; i += this.#deleteBatchKeysMax) {
        const batch = keys.slice(i, i + this.#deleteBatchKeysMax);
        const res = await this.#client.send(
          new DeleteObjectsCommand({
            Bucket: this.#bucket,
            Delete: { Objects: batch.map((k) => ({ Key: this.#full(k) })), Quiet: true },
          }),
        );
        const failed = res.Errors?.[0];
        if (failed !== undefined) {
          throw quiverError(
            'IoFailed',
            `object store ${this.#where}: deletePrefix ${JSON.stringify(prefix)}: ${res.Errors?.length} keys not deleted, first ${JSON.stringify(failed.Key)}: ${failed.Code} ${failed.Message}`,
          );
        }
      }
      return keys.length;
    } catch (e) {
      throw this.#error('deletePrefix', prefix, e);
    }
  }

  async copy(srcKey: string, dstKey: string): Promise<void> {
    this.#checkOpen();
    validateObjectKey(srcKey);
    validateObjectKey(dstKey);
    if (srcKey === dstKey) {
      // S3 refuses a copy onto itself that changes nothing; the contract makes it a no-op.
      if ((await this.stat(srcKey)) === undefined) throw this.#notFound('copy', srcKey);
      return;
    }
    try {
      try {
        await this.#client.send(
          new CopyObjectCommand({ Bucket: this.#bucket, Key: this.#full(dstKey), CopySource: this.#copySource(srcKey), MetadataDirective: 'COPY' }),
        );
        return;
      } catch (e) {
        // Only a too large source falls through to the multipart copy; which error code a server uses for
        // that varies, so the size decides.
        if (isNotFound(e) || httpStatus(e) !== 400) throw e;
        const head = await this.#client.send(new HeadObjectCommand({ Bucket: this.#bucket, Key: this.#full(srcKey) }));
        if ((head.ContentLength ?? 0) <= this.#copyObjectBytesMax) throw e;
        await this.#multipartCopy(srcKey, dstKey, head.ContentLength ?? 0, head.ETag);
      }
    } catch (e) {
      if (isNotFound(e)) throw this.#notFound('copy', srcKey);
      throw this.#error('copy', `${srcKey} -> ${dstKey}`, e);
    }
  }

  localPath(_key: string): string | undefined {
    return undefined;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#client.destroy();
  }

  async #list(prefix: string): Promise<ObjectInfo[]> {
    const out: ObjectInfo[] = [];
    let token: string | undefined;
    do {
      const res = await this.#client.send(
        new ListObjectsV2Command({ Bucket: this.#bucket, Prefix: this.#full(prefix), ContinuationToken: token, MaxKeys: this.#listPageKeysMax }),
      );
      for (const o of res.Contents ?? []) {
        if (o.Key === undefined || !o.Key.startsWith(this.#prefix)) continue;
        out.push({ key: o.Key.slice(this.#prefix.length), size: o.Size ?? 0, lastModifiedMs: o.LastModified?.getTime() ?? 0 });
      }
      token = res.IsTruncated === true ? res.NextContinuationToken : undefined;
    } while (token !== undefined);
    // S3 lists in UTF-8 byte order; sorting here keeps the contract on servers that do not.
    return out.sort((a, b) => compareObjectKeys(a.key, b.key));
  }

  async #multipartPut(key: string, data: Uint8Array): Promise<void> {
    const partBytes = Math.max(this.#partBytes, Math.ceil(data.byteLength / PARTS_MAX));
    const ranges: [number, number][] = [];
    for (let start = 0; start < data.byteLength; start += partBytes) ranges.push([start, Math.min(data.byteLength, start + partBytes)]);
    await this.#multipart(key, 'CRC32', ranges, async (uploadId, partNumber, [start, end]) => {
      const res = await this.#client.send(
        new UploadPartCommand({
          Bucket: this.#bucket,
          Key: this.#full(key),
          UploadId: uploadId,
          PartNumber: partNumber,
          Body: data.subarray(start, end),
          ContentLength: end - start,
          ChecksumAlgorithm: 'CRC32',
        }),
      );
      // An upload created with a checksum algorithm must name every part's checksum on completion.
      return { ETag: res.ETag, PartNumber: partNumber, ...(res.ChecksumCRC32 === undefined ? {} : { ChecksumCRC32: res.ChecksumCRC32 }) };
    });
  }

  async #multipartCopy(srcKey: string, dstKey: string, size: number, etag: string | undefined): Promise<void> {
    const partBytes = Math.max(this.#copyPartBytes, Math.ceil(size / PARTS_MAX));
    const ranges: [number, number][] = [];
    for (let start = 0; start < size; start += partBytes) ranges.push([start, Math.min(size, start + partBytes)]);
    await this.#multipart(dstKey, undefined, ranges, async (uploadId, partNumber, [start, end]) => {
      const res = await this.#client.send(
        new UploadPartCopyCommand({
          Bucket: this.#bucket,
          Key: this.#full(dstKey),
          UploadId: uploadId,
          PartNumber: partNumber,
          CopySource: this.#copySource(srcKey),
          CopySourceRange: `bytes=${start}-${end - 1}`,
          CopySourceIfMatch: etag,
        }),
      );
      return { ETag: res.CopyPartResult?.ETag, PartNumber: partNumber };
    });
  }

  /** Create, upload parts (at most partConcurrency at once), complete; abort on any failure. */
  async #multipart(
    key: string,
    checksumAlgorithm: 'CRC32' | undefined,
    ranges: readonly [number, number][],
    uploadPart: (uploadId: string, partNumber: number, range: [number, number]) => Promise<CompletedPart>,
  ): Promise<void> {
    const created = await this.#client.send(
      new CreateMultipartUploadCommand({ Bucket: this.#bucket, Key: this.#full(key), ChecksumAlgorithm: checksumAlgorithm }),
    );
    const uploadId = created.UploadId;
    if (uploadId === undefined) throw quiverError('IoFailed', `object store ${this.#where}: ${JSON.stringify(key)}: no UploadId in the answer`);
    try {
      const parts: CompletedPart[] = new Array<CompletedPart>(ranges.length);
      let next = 0;
      const worker = async (): Promise<void> => {
        while (next < ranges.length) {
          const i = next++;
          const range = ranges[i];
          if (range === undefined) return;
          parts[i] = await uploadPart(uploadId, i + 1, range);
        }
      };
      await Promise.all(Array.from({ length: Math.min(this.#partConcurrency, ranges.length) }, worker));
      await this.#client.send(
        new CompleteMultipartUploadCommand({ Bucket: this.#bucket, Key: this.#full(key), UploadId: uploadId, MultipartUpload: { Parts: parts } }),
      );
    } catch (e) {
      // Best effort: a bucket lifecycle rule for incomplete uploads is the backstop.
      await this.#client.send(new AbortMultipartUploadCommand({ Bucket: this.#bucket, Key: this.#full(key), UploadId: uploadId })).catch(() => undefined);
      throw e;
    }
  }

  #full(key: string): string {
    return this.#prefix + key;
  }

  #copySource(key: string): string {
    return `${this.#bucket}/${this.#full(key).split('/').map(encodeURIComponent).join('/')}`;
  }

  #checkOpen(): void {
    if (this.#closed) throw quiverError('ServiceNotReady', `object store ${this.#where} is closed`);
  }

  #notFound(op: ObjectStoreOp, key: string): QuiverError {
    return quiverError('IoKeyNotFound', `object store ${this.#where}: ${op}: no object ${JSON.stringify(key)}`);
  }

  /** One mapping of SDK failures; see the header. */
  #error(op: ObjectStoreOp, key: string, e: unknown): QuiverError {
    if (isQuiverError(e)) return e;
    if ((op === 'get' || op === 'getRange') && isNotFound(e)) {
      return quiverError('IoKeyNotFound', `object store ${this.#where}: ${op}: no object ${JSON.stringify(key)}`, e);
    }
    const status = httpStatus(e);
    const detail = `${errName(e)}${status === undefined ? '' : ` (HTTP ${status})`}: ${oneLine(errText(e))}`;
    const reason = `object store ${this.#where}: ${op} ${JSON.stringify(key)} failed: ${detail}`;
    if (errName(e) === 'NoSuchBucket') return quiverError('ServiceInternal', `${reason}; the bucket does not exist`, e);
    if (status === 401 || status === 403) return quiverError('ServiceInternal', `${reason}; check the AWS credentials and bucket policy`, e);
    // Network errors, timeouts, throttling and 5xx that outlived the SDK's retries: worth another try later.
    return quiverError('IoFailed', reason, e);
  }
}

function clientConfig(options: S3ObjectStoreOptions): S3ClientConfig {
  const region = options.region ?? (options.endpoint !== undefined ? 'us-east-1' : undefined);
  return {
    // Without an endpoint this is AWS, where a bucket in another region answers with a redirect to follow.
    ...(options.endpoint === undefined ? { followRegionRedirects: true } : { endpoint: options.endpoint, forcePathStyle: true }),
    ...(region === undefined ? {} : { region }),
    ...(options.credentials === undefined ? {} : { credentials: { ...options.credentials } }),
    maxAttempts: options.maxAttempts ?? 5,
    // The SDK's defaults, spelled out because the integrity argument of the header rests on them.
    requestChecksumCalculation: 'WHEN_SUPPORTED',
    responseChecksumValidation: 'WHEN_SUPPORTED',
    retryMode: 'standard',
    requestHandler: {
      connectionTimeout: options.connectionTimeoutMs ?? 5_000,
      socketTimeout: options.socketIdleTimeoutMs ?? 30_000,
      requestTimeout: options.requestTimeoutMs ?? 15 * 60_000,
      // Without this the SDK only logs a warning when requestTimeout passes.
      throwOnRequestTimeout: true,
    },
  };
}

/** Reads a response body into one exactly sized plain Uint8Array, checking the announced length. */
async function readBody(body: unknown, contentLength: number | undefined): Promise<Uint8Array> {
  if (body === undefined || body === null) {
    if (contentLength === undefined || contentLength === 0) return new Uint8Array(0);
    throw quiverError('IoFailed', `object store s3: response has no body but announces ${contentLength} bytes`);
  }
  const stream = body as AsyncIterable<Uint8Array>;
  if (contentLength !== undefined) {
    const out = new Uint8Array(contentLength);
    let filled = 0;
    for await (const chunk of stream) {
      if (filled + chunk.byteLength > contentLength) {
        throw quiverError('IoFailed', `object store s3: response body is longer than the announced ${contentLength} bytes`);
      }
      out.set(chunk, filled);
      filled += chunk.byteLength;
    }
    if (filled !== contentLength) {
      throw quiverError('IoFailed', `object store s3: response body ended after ${filled} of ${contentLength} bytes`);
    }
    return out;
  }
  const chunks: Uint8Array[] = [];
  let total = 0;
  for await (const chunk of stream) {
    chunks.push(chunk);
    total += chunk.byteLength;
  }
  const out = new Uint8Array(total);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.byteLength;
  }
  return out;
}

function httpStatus(e: unknown): number | undefined {
  const status = (e as { $metadata?: { httpStatusCode?: unknown } } | null)?.$metadata?.httpStatusCode;
  return typeof status === 'number' ? status : undefined;
}

function errName(e: unknown): string {
  const name = (e as { name?: unknown } | null)?.name;
  return typeof name === 'string' ? name : 'Error';
}

function isNotFound(e: unknown): boolean {
  const name = errName(e);
  return name === 'NoSuchKey' || name === 'NotFound' || (httpStatus(e) === 404 && name !== 'NoSuchBucket');
}

function errText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

function oneLine(text: string): string {
  return text.replace(/\s*\n\s*/g, ' ');
}
