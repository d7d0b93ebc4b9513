/**
 * The one place that turns a storage URL into an ObjectStore backend; nothing else branches on the
 * backend. Each backend module is imported only when chosen (an embedded run never loads the AWS SDK).
 *
 *   local                 (default) <dataDir>/objects
 *   local:PATH            a directory at PATH
 *   s3://BUCKET[/PREFIX]  a bucket of AWS S3 or, with the `endpoint` option, of an S3-compatible server
 *                         (MinIO, R2, ...; path-style). Credentials and region: the standard AWS chain
 *                         (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE, AWS_REGION, ...).
 */

import { join } from 'node:path';
import { quiverError } from '../common/errors.js';
import type { LocalObjectStoreOptions } from './local-object-store.js';
import { validateObjectKey } from './object-key.js';
import type { ObjectStore } from './object-store.js';
import type { S3ObjectStoreOptions } from './s3-object-store.js';

export type StoreLocation = { readonly kind: 'local'; readonly dir: string } | { readonly kind: 's3'; readonly bucket: string; readonly prefix: string };

export interface OpenStoreOptions {
  readonly dataDir: string;
  readonly local?: LocalObjectStoreOptions | undefined;
  /** S3 client settings (bucket and prefix come from the URL); `endpoint` selects a non-AWS server. */
  readonly s3?: Omit<Partial<S3ObjectStoreOptions>, 'bucket' | 'prefix' | 'client'> | undefined;
}

const FORMS = "expected 'local', 'local:PATH' or 's3://BUCKET[/PREFIX]'";
/** S3 bucket naming rules (3-63 chars, lower case, digits, '.', '-', starting and ending alphanumeric). */
const BUCKET_NAME = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;

export function parseStoreUrl(url: string | undefined, dataDir: string): StoreLocation {
  const text = (url ?? '').trim();
  if (text === '' || text === 'local') return { kind: 'local', dir: join(dataDir, 'objects') };
  if (text.startsWith('local:')) {
    const dir = text.slice('local:'.length);
    if (dir === '' || dir.startsWith('//')) throw bad(text, 'local:PATH takes a directory path, e.g. local:/var/lib/quiver/objects');
    return { kind: 'local', dir };
  }
  const scheme = /^([a-zA-Z][a-zA-Z0-9+.-]*):/.exec(text)?.[1];
  if (scheme === undefined) throw bad(text, 'no scheme');
  if (scheme.toLowerCase() !== 's3') throw bad(text, `unknown scheme ${JSON.stringify(scheme)}`);
  if (!text.startsWith('s3://')) throw bad(text, "an S3 URL starts with 's3://' (lower case)");
  const rest = text.slice('s3://'.length);
  const slash = rest.indexOf('/');
  const bucket = slash < 0 ? rest : rest.slice(0, slash);
  const prefix = slash < 0 ? '' : rest.slice(slash + 1).replace(/\/+$/, '');
  if (bucket === '') throw bad(text, 'no bucket');
  if (!BUCKET_NAME.test(bucket) || bucket.includes('..')) {
    throw bad(text, `${JSON.stringify(bucket)} is not a valid bucket name (3-63 of a-z 0-9 . -)`);
  }
  if (prefix !== '') {
    try {
      validateObjectKey(prefix);
    } catch (e) {
      throw bad(text, `prefix: ${e instanceof Error ? e.message : String(e)}`);
    }
  }
  return { kind: 's3', bucket, prefix };
}

/**
 * Opens the backend named by `url`. An S3 store is checked with HeadBucket, so that a missing bucket or
 * refused credentials fail here with one line naming the problem.
 */
export async function openObjectStore(url: string | undefined, options: OpenStoreOptions): Promise<ObjectStore> {
  const where = parseStoreUrl(url, options.dataDir);
  switch (where.kind) {
    case 'local': {
      const { LocalObjectStore } = await import('./local-object-store.js');
      return new LocalObjectStore(where.dir, options.local);
    }
    case 's3': {
      const { S3ObjectStore } = await import('./s3-object-store.js');
      const store = new S3ObjectStore({ ...options.s3, bucket: where.bucket, prefix: where.prefix });
      try {
        await store.checkAccess();
      } catch (e) {
        await store.close();
        throw e;
      }
      return store;
    }
    default: {
      const never: never = where;
      throw new Error(`unreachable store location ${JSON.stringify(never)}`);
    }
  }
}

function bad(url: string, problem: string): Error {
  return quiverError('ParameterInvalid', `storage URL ${JSON.stringify(url)}: ${problem}; ${FORMS}`);
}
