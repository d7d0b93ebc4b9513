/**
 * The check a restore passes before it is published (issue 13 item 7; Milvus has reported restores as
 * Completed with a segment missing or corrupt, #53607, #53665): the restored segments, read back from
 * their TARGET keys with the file lists publish is about to commit, must hold the same primary keys and
 * the same deletes as the snapshot's segments read from their SOURCE keys, and as many rows as the
 * snapshot's manifests say.
 *
 * Digest: row count, and an order-independent checksum (sum mod 2^64 of a 64-bit mix) of every primary
 * key, and the same over (pk, delete ts) pairs of the deltalogs. Reading only the pk column and the
 * deltalogs keeps it cheap (8 bytes a row for Int64 keys); a segment dropped, duplicated or routed to the
 * wrong key, a deltalog left out, or a pk file that decodes differently all change it.
 */

import { quiverError } from '../../common/errors.js';
import { decodeColumn, decodeDeltas } from '../../storage/binlog.js';
import type { ObjectStore } from '../../storage/object-store.js';
import { mapLimit } from '../../storage/snapshot-format/concurrency.js';
import type { CollectionSchema } from '../../schema/types.js';
import type { SegmentRecord } from '../records.js';

export interface PkDigest {
  readonly rows: number;
  readonly pkSum: bigint;
  readonly deletes: number;
  readonly deleteSum: bigint;
}

const MASK = (1n << 64n) - 1n;
/** Files read at once. */
const READ_CONCURRENCY = 16;

/** splitmix64 finalizer: spreads nearby keys over the whole range so that sums do not cancel. */
function mix(x: bigint): bigint {
  let z = (x + 0x9e3779b97f4a7c15n) & MASK;
  z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & MASK;
  z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & MASK;
  return z ^ (z >> 31n);
}

const utf8 = new TextEncoder();

/** FNV-1a 64 of a string key, then mixed like an integer key. */
function mixString(s: string): bigint {
  let h = 0xcbf29ce484222325n;
  for (const b of utf8.encode(s)) h = ((h ^ BigInt(b)) * 0x100000001b3n) & MASK;
  return mix(h);
}

function mixPk(pk: bigint | string): bigint {
  return typeof pk === 'string' ? mixString(pk) : mix(BigInt.asUintN(64, pk));
}

/**
 * The digest of `segments` as stored under `prefix` (the source of an external restore lies under its
 * staging prefix; '' elsewhere).
 */
export async function pkDigest(store: ObjectStore, schema: CollectionSchema, segments: readonly SegmentRecord[], prefix = ''): Promise<PkDigest> {
  const pk = schema.fields.find((f) => f.isPrimaryKey);
  if (pk === undefined) throw new Error('assertion failed: a collection schema has a primary key');
  const kind = pk.dataType === 'VarChar' ? 'string' : 'int64';
  const pkFiles = segments.flatMap((s) => (s.binlogs[String(pk.fieldId)] ?? []).map((b) => b.path));
  const deltaFiles = segments.flatMap((s) => s.deltalogs.map((b) => b.path));
  let rows = 0;
  let pkSum = 0n;
  let deletes = 0;
  let deleteSum = 0n;
  await mapLimit(pkFiles, READ_CONCURRENCY, async (key) => {
    const col = decodeColumn(await store.get(prefix + key), kind);
    const data = col.data as BigInt64Array | readonly string[];
    for (let i = 0; i < data.length; i++) pkSum += mixPk(data[i]!);
    rows += data.length;
  });
  await mapLimit(deltaFiles, READ_CONCURRENCY, async (key) => {
    const d = decodeDeltas(await store.get(prefix + key));
    for (let i = 0; i < d.ts.length; i++) deleteSum += mixPk(d.pks[i]!) ^ mix(BigInt.asUintN(64, d.ts[i]!));
    deletes += d.ts.length;
  });
  return { rows, pkSum: pkSum & MASK, deletes, deleteSum: deleteSum & MASK };
}

/**
 * Undefined when the restored segments match the snapshot's, else why not (for the job's reason).
 * `expectedRows` is the row count the snapshot's manifests record.
 */
export function digestMismatch(source: PkDigest, target: PkDigest, expectedRows: number): string | undefined {
  if (source.rows !== expectedRows) return `the snapshot's files hold ${source.rows} rows, its manifests say ${expectedRows}`;
  if (target.rows !== source.rows) return `restored ${target.rows} rows, the snapshot holds ${source.rows}`;
  if (target.pkSum !== source.pkSum) return 'the primary keys restored differ from the snapshot (checksum mismatch)';
  if (target.deletes !== source.deletes || target.deleteSum !== source.deleteSum) {
    return `the deletes restored differ from the snapshot (${target.deletes} vs ${source.deletes}, or their checksum)`;
  }
  return undefined;
}

/** Throws DataInvalid naming the mismatch (the caller turns it into a refused publish). */
export async function verifyRestoredRows(
  store: ObjectStore,
  schema: CollectionSchema,
  pairs: readonly { readonly source: SegmentRecord; readonly target: SegmentRecord }[],
  sourcePrefix = '',
): Promise<PkDigest> {
  const [source, target] = await Promise.all([
    pkDigest(
      store,
      schema,
      pairs.map((p) => p.source),
      sourcePrefix,
    ),
    pkDigest(
      store,
      schema,
      pairs.map((p) => p.target),
    ),
  ]);
  const expected = pairs.reduce((n, p) => n + p.source.numRows, 0);
  const why = digestMismatch(source, target, expected);
  if (why !== undefined) throw quiverError('DataInvalid', `restore verification failed: ${why}`);
  return target;
}
