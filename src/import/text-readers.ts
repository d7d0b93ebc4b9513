import { quiverError } from '../common/errors.js';
import type { CollectionRecord } from '../coord/records.js';
import { DYNAMIC_FIELD_NAME, type FieldSchema } from '../schema/types.js';
import type { ObjectStore } from '../storage/object-store.js';
import type { ImportSource, RowBatch } from './readers.js';

/**
 * The text import formats, read as a stream: the file is fetched in ranges of `chunkBytes`, so memory
 * holds one range plus the batch being built, whatever the file's size. Rows are numbered from 0 in file
 * order (JSON: the array element; CSV: the data line after the header), and every error names the file
 * and that row.
 *
 * - JSON: a top-level array of row objects, or an object whose `rows` member is that array (other members
 *   are skipped). The scanner only finds where each element begins and ends (strings, escapes and nesting
 *   are tracked); each element is then parsed on its own with JSON.parse.
 * - CSV (Milvus 2.6 layout): a header line of field names, then one line per row, separated by `sep`
 *   (the request option, default ","), fields quoted with `"` as RFC 4180 does. Cells are read by the
 *   field's type: numbers, `true`/`false`, Int64 as decimal text, vectors / arrays / sparse vectors as
 *   JSON, JSON and `$meta` as JSON text; a cell equal to `nullkey` (option, default empty) is null.
 */

/** Bytes per ranged read. */
export const TEXT_CHUNK_BYTES = 4 << 20;

async function sizeOf(store: ObjectStore, key: string): Promise<number> {
  let info;
  try {
    info = await store.stat(key);
  } catch (e) {
    throw quiverError('IoKeyNotFound', `import file ${JSON.stringify(key)} cannot be read from the object store: ${(e as Error).message}`, e);
  }
  if (!info) throw quiverError('IoKeyNotFound', `import file ${JSON.stringify(key)} cannot be read from the object store: no such key`);
  return info.size;
}

/** The file's text in chunks (UTF-8 sequences split across ranges are joined by the streaming decoder). */
async function* textChunks(store: ObjectStore, key: string, size: number, chunkBytes: number): AsyncGenerator<string> {
  const dec = new TextDecoder('utf-8', { fatal: true });
  for (let off = 0; off < size; off += chunkBytes) {
    const len = Math.min(chunkBytes, size - off);
    let bytes: Uint8Array;
    try {
      bytes = await store.getRange(key, off, len);
    } catch (e) {
      throw quiverError('IoKeyNotFound', `import file ${JSON.stringify(key)} cannot be read at byte ${off}: ${(e as Error).message}`, e);
    }
    try {
      yield dec.decode(bytes, { stream: off + len < size });
    } catch {
      throw quiverError('DataInvalid', `import file ${JSON.stringify(key)} is not valid UTF-8 (near byte ${off})`);
    }
  }
}

const WS = (c: number): boolean => c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;

/** A JSON import file, streamed. */
export async function jsonStreamSource(store: ObjectStore, key: string, chunkBytes = TEXT_CHUNK_BYTES): Promise<ImportSource> {
  const size = await sizeOf(store, key);
  const label = JSON.stringify(key);
  const invalid = (why: string) => quiverError('DataInvalid', `import file ${label} is not valid JSON: ${why}`);
  return {
    label: key,
    bytes: size,
    async *batches(batchRows): AsyncGenerator<RowBatch> {
      let depth = 0;
      let inString = false;
      let escape = false;
      /** Depth of the rows array's elements (0: not inside it yet / any more). */
      let rowsDepth = 0;
      let sawRows = false;
      let top = 0; // first non-space character: '[' or '{'
      let lastKey = ''; // the last string completed at depth 1 of a top-level object
      let strStart = -1;
      let elemStart = -1; // start of the element being read, in `buf`
      let row = 0;
      let batch: Record<string, unknown>[] = [];
      let firstRow = 0;
      let buf = '';
      let carry = 0; // characters of `buf` already scanned

      const element = (text: string): void => {
        let v: unknown;
        try {
          v = JSON.parse(text);
        } catch (e) {
          throw quiverError('DataInvalid', `import file ${label} row ${row}: not valid JSON: ${(e as Error).message}`);
        }
        if (v === null || typeof v !== 'object' || Array.isArray(v)) {
          throw quiverError('DataInvalid', `import file ${label} row ${row}: a row must be a JSON object, got ${text.slice(0, 64)}`);
        }
        batch.push(v as Record<string, unknown>);
        row++;
      };

      for await (const chunk of textChunks(store, key, size, chunkBytes)) {
        // Keep the unfinished element, or a top-level key split by the range boundary.
        const keep = elemStart >= 0 ? elemStart : inString && top === 0x7b && depth === 1 ? strStart : buf.length;
        buf = buf.slice(keep) + chunk;
        if (elemStart >= 0) elemStart -= keep;
        strStart -= keep;
        for (let i = carry; i < buf.length; i++) {
          const c = buf.charCodeAt(i);
          if (inString) {
            if (escape) escape = false;
            else if (c === 0x5c) escape = true;
            else if (c === 0x22) {
              inString = false;
              if (top === 0x7b && depth === 1 && strStart >= 0) lastKey = buf.slice(strStart, i);
            }
            continue;
          }
          if (sawRows && depth === 0) {
            if (WS(c)) continue;
            throw invalid(`unexpected ${JSON.stringify(buf[i])} after the rows`);
          }
          if (top === 0) {
            if (WS(c)) continue;
            if (c !== 0x5b && c !== 0x7b) throw invalid(`expected a JSON array of rows or {"rows": [...]}, found ${JSON.stringify(buf[i])}`);
            top = c;
          }
          // At the element depth, outside an element: the start of one, a separator, or the array's end.
          if (rowsDepth > 0 && depth === rowsDepth && elemStart < 0) {
            if (WS(c) || c === 0x2c) continue;
            if (c === 0x5d) {
              depth--;
              rowsDepth = 0;
              continue;
            }
            elemStart = i;
          }
          if (c === 0x22) {
            inString = true;
            strStart = i + 1;
          } else if (c === 0x5b || c === 0x7b) {
            depth++;
            if (!sawRows && ((top === 0x5b && depth === 1) || (top === 0x7b && depth === 2 && c === 0x5b && lastKey === 'rows'))) {
              rowsDepth = depth;
              sawRows = true;
            }
          } else if (c === 0x5d || c === 0x7d) {
            depth--;
            if (depth < 0) throw invalid(`unbalanced ${buf[i]}`);
          }
          // An element ends when its last bracket closes, or (a bare value) at the next separator.
          if (elemStart >= 0 && depth === rowsDepth) {
            const closes = c === 0x5d || c === 0x7d;
            const bareEnd = (c === 0x2c || c === 0x5d || WS(c)) && !(buf.charCodeAt(elemStart) === 0x5b || buf.charCodeAt(elemStart) === 0x7b);
            if (closes && (buf.charCodeAt(elemStart) === 0x5b || buf.charCodeAt(elemStart) === 0x7b)) {
              element(buf.slice(elemStart, i + 1));
              elemStart = -1;
            } else if (bareEnd && i > elemStart) {
              element(buf.slice(elemStart, i));
              elemStart = -1;
            }
          } else if (elemStart >= 0 && depth < rowsDepth) {
            // `]` right after a bare value: the value ends here and so does the array.
            element(buf.slice(elemStart, i));
            elemStart = -1;
            rowsDepth = 0;
          }
          if (batch.length >= batchRows) {
            yield { firstRow, rows: batch };
            firstRow = row;
            batch = [];
          }
        }
        carry = buf.length - (elemStart >= 0 ? elemStart : inString && top === 0x7b && depth === 1 ? strStart : buf.length);
      }
      if (!sawRows) throw invalid(top === 0 ? 'the file is empty' : 'expected a JSON array of rows or {"rows": [...]}');
      if (inString || depth !== 0 || elemStart >= 0) throw invalid(`the file ends inside a value (after row ${row - 1})`);
      if (batch.length > 0) yield { firstRow, rows: batch };
    },
  };
}

export interface CsvOptions {
  /** Cell separator (one character). */
  readonly sep: string;
  /** The cell text that means null. */
  readonly nullkey: string;
}

export const CSV_DEFAULTS: CsvOptions = { sep: ',', nullkey: '' };

/** The import request options Quiver reads; any other is refused rather than ignored. */
export const IMPORT_OPTIONS: readonly string[] = ['sep', 'nullkey'];

/** The request's `sep` / `nullkey` options, checked. */
export function csvOptions(options: Readonly<Record<string, string>>): CsvOptions {
  const sep = options['sep'] ?? CSV_DEFAULTS.sep;
  if ([...sep].length !== 1 || sep === '"' || sep === '\n' || sep === '\r') {
    throw quiverError('ParameterInvalid', `import option sep ${JSON.stringify(sep)} is invalid: expected one character other than a quote or a line break`);
  }
  return { sep, nullkey: options['nullkey'] ?? CSV_DEFAULTS.nullkey };
}

const JSON_CELL = new Set(['FloatVector', 'BinaryVector', 'Float16Vector', 'BFloat16Vector', 'Int8Vector', 'SparseFloatVector', 'Array']);

/** One cell by its field's type; a problem is thrown as a message for the caller to place. */
function cellValue(f: FieldSchema | undefined, text: string): unknown {
  const t = f?.dataType;
  if (t === undefined || t === 'VarChar' || t === 'Timestamptz' || t === 'Geometry' || t === 'JSON') return text;
  if (t === 'Bool') {
    const l = text.toLowerCase();
    if (l === 'true' || l === 'false') return l === 'true';
    throw new Error(`field ${f!.name}: ${JSON.stringify(text)} is not a bool (true or false)`);
  }
  if (t === 'Int64') {
    if (/^\s*[-+]?\d+\s*$/.test(text)) return text.trim();
    throw new Error(`field ${f!.name}: ${JSON.stringify(text)} is not an integer`);
  }
  if (t === 'Int8' || t === 'Int16' || t === 'Int32' || t === 'Float' || t === 'Double') {
    const n = text.trim() === '' ? NaN : Number(text);
    if (Number.isNaN(n)) throw new Error(`field ${f!.name}: ${JSON.stringify(text)} is not a number`);
    return n;
  }
  if (JSON_CELL.has(t)) {
    try {
      return JSON.parse(text);
    } catch {
      throw new Error(`field ${f!.name}: ${JSON.stringify(text.slice(0, 64))} is not a JSON array`);
    }
  }
  return text;
}

/** A CSV import file, streamed. */
export async function csvSource(
  store: ObjectStore,
  key: string,
  coll: CollectionRecord,
  opts: CsvOptions = CSV_DEFAULTS,
  chunkBytes = TEXT_CHUNK_BYTES,
): Promise<ImportSource> {
  const size = await sizeOf(store, key);
  const label = JSON.stringify(key);
  const byName = new Map(coll.schema.fields.map((f) => [f.name, f]));
  const sep = opts.sep.charCodeAt(0);
  return {
    label: key,
    bytes: size,
    async *batches(batchRows): AsyncGenerator<RowBatch> {
      let header: string[] | undefined;
      let fields: (FieldSchema | undefined)[] = [];
      let row = 0;
      let batch: Record<string, unknown>[] = [];
      let firstRow = 0;
      // The record being read: its cells, the cell being read, and the quote state.
      let cells: string[] = [];
      let cellQuoted: boolean[] = [];
      let cell = '';
      let quoted = false; // inside a quoted cell
      let wasQuoted = false; // the current cell was quoted (so an empty one is "", not null)
      let quoteSeen = false; // a quote inside a quoted cell: either an escaped quote or the cell's end
      let pendingCr = false;
      let any = false; // the record has any character

      const endRecord = (): void => {
        cells.push(cell);
        cellQuoted.push(wasQuoted);
        const rec = cells;
        const recQuoted = cellQuoted;
        cells = [];
        cellQuoted = [];
        cell = '';
        wasQuoted = false;
        if (!any) return; // a blank line
        any = false;
        if (!header) {
          header = rec.map((h) => h.trim());
          const seen = new Set<string>();
          for (const h of header) {
            if (h === '') throw quiverError('DataInvalid', `import file ${label}: the header names an empty column`);
            if (seen.has(h)) throw quiverError('DataInvalid', `import file ${label}: the header names column ${h} twice`);
            seen.add(h);
            const f = byName.get(h);
            if (!f && h !== DYNAMIC_FIELD_NAME && !coll.schema.enableDynamicField) {
              throw quiverError('DataInvalid', `import file ${label}: column ${h} is not a field of collection ${coll.name}`);
            }
          }
          fields = header.map((h) => byName.get(h));
          return;
        }
        if (rec.length !== header.length) {
          throw quiverError('DataInvalid', `import file ${label} row ${row}: ${rec.length} cells, the header names ${header.length} columns`);
        }
        const out: Record<string, unknown> = {};
        for (let c = 0; c < rec.length; c++) {
          const text = rec[c]!;
          // A quoted empty cell ("") is the empty string, not null.
          if (text === opts.nullkey && !(recQuoted[c] && text === '')) {
            out[header[c]!] = null;
            continue;
          }
          try {
            out[header[c]!] = cellValue(fields[c], text);
          } catch (e) {
            throw quiverError('DataInvalid', `import file ${label} row ${row}: ${(e as Error).message}`);
          }
        }
        batch.push(out);
        row++;
      };

      for await (const chunk of textChunks(store, key, size, chunkBytes)) {
        let start = 0; // start of the run of plain characters not yet appended to `cell`
        for (let i = 0; i < chunk.length; i++) {
          const c = chunk.charCodeAt(i);
          if (quoted) {
            if (quoteSeen) {
              quoteSeen = false;
              if (c === 0x22) {
                cell += '"';
                start = i + 1;
                continue;
              }
              quoted = false; // the quote closed the cell; fall through to handle c
            } else {
              if (c === 0x22) {
                cell += chunk.slice(start, i);
                quoteSeen = true;
                start = i + 1;
              }
              continue;
            }
          }
          if (pendingCr) {
            pendingCr = false;
            if (c === 0x0a) {
              start = i + 1;
              continue;
            }
          }
          if (c === sep) {
            cell += chunk.slice(start, i);
            cells.push(cell);
            cellQuoted.push(wasQuoted);
            cell = '';
            wasQuoted = false;
            any = true;
            start = i + 1;
          } else if (c === 0x0a || c === 0x0d) {
            cell += chunk.slice(start, i);
            endRecord();
            if (batch.length >= batchRows) {
              yield { firstRow, rows: batch };
              firstRow = row;
              batch = [];
            }
            pendingCr = c === 0x0d;
            start = i + 1;
          } else if (c === 0x22 && cell === '' && start === i) {
            quoted = true;
            wasQuoted = true;
            any = true;
            start = i + 1;
          } else {
            any = true;
          }
        }
        cell += chunk.slice(start);
      }
      if (quoted && quoteSeen) quoted = false;
      if (quoted) throw quiverError('DataInvalid', `import file ${label} row ${row}: a quoted cell is not closed before the end of the file`);
      if (any || cells.length > 0) endRecord();
      if (!header) throw quiverError('DataInvalid', `import file ${label}: no header line (the first line names the columns)`);
      if (batch.length > 0) yield { firstRow, rows: batch };
    },
  };
}
