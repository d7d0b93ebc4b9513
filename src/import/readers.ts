import { parquetMetadata, parquetReadObjects, type AsyncBuffer } from 'hyparquet';
import { compressors } from 'hyparquet-compressors';
import { quiverError } from '../common/errors.js';
import type { CollectionRecord } from '../coord/records.js';
import type { ObjectStore } from '../storage/object-store.js';
import { npyRow, parseNpy, type NpyArray } from './npy.js';
import { csvOptions, csvSource, jsonStreamSource } from './text-readers.js';

/**
 * Import sources: what one job reads, as batches of rows (plain objects keyed by field name) with the
 * row number in the file of each batch's first row, so that a rejected row is named exactly.
 *
 * Layouts, as Milvus's BulkWriter writes them and Milvus's import accepts them:
 * - JSON: a file holding `{"rows": [ {...}, ... ]}` or a top-level array of row objects (streamed:
 *   text-readers.ts).
 * - CSV: a header line of field names, then one line per row (streamed: text-readers.ts).
 * - Parquet: one column per field (vectors as lists, JSON and `$meta` as strings).
 * - NumPy: one `<field>.npy` per field, all with the same number of rows; the request names the files,
 *   or a folder (a key ending in `/`, or one without a file extension) whose .npy files are listed.
 */

export interface RowBatch {
  readonly firstRow: number;
  readonly rows: readonly Record<string, unknown>[];
}

export interface ImportSource {
  /** What errors name: the file key (NumPy: the folder). */
  readonly label: string;
  readonly bytes: number;
  /** Known up front for Parquet and NumPy; the streamed text formats count as they read. */
  readonly rows?: number;
  batches(batchRows: number): AsyncIterable<RowBatch>;
}

export type ImportFormat = 'json' | 'csv' | 'parquet' | 'numpy';

export const SUPPORTED_FILES = 'supported: .json, .csv, .parquet, .npy (or a folder of .npy files)';

export function formatOf(key: string): ImportFormat | undefined {
  const k = key.toLowerCase();
  if (k.endsWith('.json')) return 'json';
  if (k.endsWith('.csv')) return 'csv';
  if (k.endsWith('.parquet')) return 'parquet';
  if (k.endsWith('.npy')) return 'numpy';
  if (k.endsWith('/') || !/\.[a-z0-9]+$/.test(k.split('/').pop() ?? '')) return 'numpy';
  return undefined;
}

async function getFile(store: ObjectStore, key: string): Promise<Uint8Array> {
  try {
    return await store.get(key);
  } catch (e) {
    throw quiverError('IoKeyNotFound', `import file ${JSON.stringify(key)} cannot be read from the object store: ${(e as Error).message}`, e);
  }
}

/**
 * Groups the request's keys into sources: each JSON or Parquet file is one; .npy files (or folders of
 * them) form one NumPy source per folder.
 */
export async function openSources(
  store: ObjectStore,
  keys: readonly string[],
  coll: CollectionRecord,
  options: Readonly<Record<string, string>> = {},
): Promise<ImportSource[]> {
  const out: ImportSource[] = [];
  const npyByFolder = new Map<string, string[]>();
  for (const key of keys) {
    const fmt = formatOf(key);
    if (fmt === undefined) throw quiverError('ParameterInvalid', `import file ${JSON.stringify(key)}: unsupported file type; ${SUPPORTED_FILES}`);
    if (fmt === 'json') out.push(await jsonStreamSource(store, key));
    else if (fmt === 'csv') out.push(await csvSource(store, key, coll, csvOptions(options)));
    else if (fmt === 'parquet') out.push(await parquetSource(store, key));
    else if (key.toLowerCase().endsWith('.npy')) {
      const folder = key.slice(0, key.lastIndexOf('/') + 1);
      npyByFolder.set(folder, [...(npyByFolder.get(folder) ?? []), key]);
    } else {
      const folder = key.endsWith('/') ? key : `${key}/`;
      const listed = (await store.list(folder)).map((o) => o.key).filter((k) => k.toLowerCase().endsWith('.npy') && !k.slice(folder.length).includes('/'));
      if (listed.length === 0) throw quiverError('ParameterInvalid', `import folder ${JSON.stringify(key)} holds no .npy files`);
      npyByFolder.set(folder, [...(npyByFolder.get(folder) ?? []), ...listed]);
    }
  }
  for (const [folder, files] of npyByFolder) out.push(await numpySource(store, folder, [...new Set(files)], coll));
  return out;
}

async function parquetSource(store: ObjectStore, key: string): Promise<ImportSource> {
  const bytes = await getFile(store, key);
  const ab = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
  let metadata: ReturnType<typeof parquetMetadata>;
  try {
    metadata = parquetMetadata(ab);
  } catch (e) {
    throw quiverError('DataInvalid', `import file ${JSON.stringify(key)} is not a valid Parquet file: ${(e as Error).message}`);
  }
  const file: AsyncBuffer = { byteLength: ab.byteLength, slice: (s, e) => ab.slice(s, e) };
  const rows = Number(metadata.num_rows);
  return {
    label: key,
    bytes: bytes.length,
    rows,
    async *batches(batchRows) {
      for (let i = 0; i < rows; i += batchRows) {
        const end = Math.min(rows, i + batchRows);
        let got: Record<string, unknown>[];
        try {
          got = (await parquetReadObjects({ file, metadata, rowStart: i, rowEnd: end, compressors })) as Record<string, unknown>[];
        } catch (e) {
          throw quiverError('DataInvalid', `import file ${JSON.stringify(key)}: cannot decode rows ${i}-${end - 1}: ${(e as Error).message}`);
        }
        yield { firstRow: i, rows: got };
      }
    },
  };
}

async function numpySource(store: ObjectStore, folder: string, files: readonly string[], coll: CollectionRecord): Promise<ImportSource> {
  const arrays = new Map<string, NpyArray>();
  let bytes = 0;
  const fieldNames = new Set(coll.schema.fields.map((f) => f.name));
  for (const key of files) {
    const name = key.slice(key.lastIndexOf('/') + 1, -'.npy'.length);
    if (!fieldNames.has(name)) {
      throw quiverError(
        'DataInvalid',
        `import file ${JSON.stringify(key)}: ${name} is not a field of collection ${coll.name} (NumPy files are named <field>.npy)`,
      );
    }
    const data = await getFile(store, key);
    bytes += data.length;
    arrays.set(name, parseNpy(data, `import file ${JSON.stringify(key)}`));
  }
  const counts = [...arrays.entries()].map(([n, a]) => `${n}: ${a.rows}`);
  const rows = arrays.values().next().value?.rows ?? 0;
  if ([...arrays.values()].some((a) => a.rows !== rows)) {
    throw quiverError('DataInvalid', `import folder ${JSON.stringify(folder)}: the .npy files have different row counts (${counts.join(', ')})`);
  }
  return {
    label: folder,
    bytes,
    rows,
    async *batches(batchRows) {
      for (let i = 0; i < rows; i += batchRows) {
        const end = Math.min(rows, i + batchRows);
        const out: Record<string, unknown>[] = [];
        for (let r = i; r < end; r++) {
          const row: Record<string, unknown> = {};
          for (const [name, a] of arrays) row[name] = npyRow(a, r);
          out.push(row);
        }
        yield { firstRow: i, rows: out };
      }
    },
  };
}
