import { isQuiverError, quiverError } from '../common/errors.js';
import type { CollectionRecord, SegmentRecord } from '../coord/records.js';
import { concatColumns, takeRows } from '../schema/columns.js';
import type { Column } from '../schema/types.js';
import { writeInsertFiles } from '../segcore/segment-io.js';
import { newChunk } from '../segcore/segment.js';
import type { ObjectStore } from '../storage/object-store.js';
import { IMPORT_SEGMENTS_MAX } from './job-store.js';
import { openSources, type ImportSource } from './readers.js';
import { RowError, rowsToRequest } from './rows-to-fields.js';
import type { ImportJob } from './types.js';

/* eslint-disable @typescript-eslint/no-explicit-any */

/**
 * Runs one import job: reads every source, validates each batch of rows by the insert rules, cuts the
 * accepted rows into sealed segments and writes their files. Nothing is published here: the caller
 * commits every returned record in one transaction, so a failure at any row of any file leaves only
 * unlisted files (garbage-collector orphans) and no visible row.
 */

export interface ImportExecutorDeps {
  readonly store: ObjectStore;
  readonly ids: { alloc(count?: number): Promise<number> };
  readonly tso: { next(): bigint };
  /** The insert validation (proxy/write-columns.ts): request → columns, or a QuiverError naming the problem. */
  readonly toColumns: (coll: CollectionRecord, req: { fields_data: any[]; num_rows: number }) => { columns: Map<string, Column>; numRows: number };
}

export interface ImportExecutorOptions {
  /** Rows validated per request-shaped batch. */
  readonly batchRows: number;
  /** Rows per written segment (the seal size). */
  readonly segmentRowsMax: number;
}

export interface ImportProgress {
  readonly rows: number;
  readonly readBytes: number;
  readonly totalBytes: number;
}

export interface ImportRun {
  readonly records: SegmentRecord[];
  readonly rows: number;
  readonly totalBytes: number;
}

function sliceColumns(columns: ReadonlyMap<string, Column>, from: number, count: number): Map<string, Column> {
  const rows = Int32Array.from({ length: count }, (_, i) => from + i);
  const out = new Map<string, Column>();
  for (const [name, c] of columns) out.set(name, takeRows(c, rows));
  return out;
}

/** Strips the batch-relative row the insert validation names ("at row 0"): the caller names the file row. */
function withoutBatchRow(reason: string): string {
  return reason.replace(/,? (at )?row( number:)? 0\b/g, '');
}

export class ImportExecutor {
  readonly #deps: ImportExecutorDeps;
  readonly #opts: ImportExecutorOptions;

  constructor(deps: ImportExecutorDeps, opts: ImportExecutorOptions) {
    this.#deps = deps;
    this.#opts = opts;
  }

  /**
   * `progress` is awaited after every written segment (it persists the counters; a false return means
   * the job was taken away, e.g. cancelled, and the run stops). `signal` stops the run between batches.
   */
  async run(job: ImportJob, coll: CollectionRecord, progress: (p: ImportProgress) => Promise<boolean>, signal: AbortSignal): Promise<ImportRun> {
    const sources = await openSources(this.#deps.store, job.files, coll);
    const totalBytes = sources.reduce((a, s) => a + s.bytes, 0);
    const pk = coll.schema.fields.find((f) => f.isPrimaryKey)!;
    // Every row of a job shares one timestamp: the job is one write, published at once.
    const ts = this.#deps.tso.next();
    const records: SegmentRecord[] = [];
    let pending: Map<string, Column>[] = [];
    let pendingRows = 0;
    let rows = 0;
    let readBytes = 0;

    const seal = async (): Promise<void> => {
      if (pendingRows === 0) return;
      if (records.length >= IMPORT_SEGMENTS_MAX) {
        throw quiverError(
          'ParameterTooLarge',
          `import job ${job.id} needs more than ${IMPORT_SEGMENTS_MAX} segments; split the files over several imports`,
        );
      }
      const columns = new Map<string, Column>();
      for (const name of pending[0]!.keys()) columns.set(name, concatColumns(pending.map((p) => p.get(name)!)));
      const chunk = newChunk(pendingRows, columns, new BigInt64Array(pendingRows).fill(ts));
      const segmentId = await this.#deps.ids.alloc();
      const files = await writeInsertFiles(this.#deps.store, this.#deps.ids, coll, segmentId, job.partitionId, chunk);
      records.push({
        id: segmentId,
        collectionId: coll.id,
        partitionId: job.partitionId,
        state: 'Flushed',
        numRows: pendingRows,
        binlogs: files.binlogs,
        deltalogs: [],
        statslogs: files.statslogs,
        indexes: [],
        createdTs: ts.toString(),
      });
      rows += pendingRows;
      pending = [];
      pendingRows = 0;
      if (!(await progress({ rows, readBytes, totalBytes }))) throw quiverError('ServiceNotReady', `import job ${job.id} was taken over or cancelled`);
    };

    for (const src of sources) {
      for await (const batch of src.batches(this.#opts.batchRows)) {
        if (signal.aborted) throw quiverError('ServiceNotReady', `import job ${job.id} stopped by shutdown`);
        const columns = this.#validate(coll, src, batch.rows, batch.firstRow);
        if (pk.autoId && !columns.has(pk.name)) {
          const first = await this.#deps.ids.alloc(batch.rows.length);
          const data = new BigInt64Array(batch.rows.length);
          for (let i = 0; i < data.length; i++) data[i] = BigInt(first + i);
          columns.set(pk.name, { kind: 'int64', data });
        }
        // Segments hold exactly segmentRowsMax rows (the last one the rest): cut batches at the boundary.
        let offset = 0;
        while (offset < batch.rows.length) {
          const take = Math.min(batch.rows.length - offset, this.#opts.segmentRowsMax - pendingRows);
          pending.push(offset === 0 && take === batch.rows.length ? columns : sliceColumns(columns, offset, take));
          pendingRows += take;
          offset += take;
          if (pendingRows >= this.#opts.segmentRowsMax) await seal();
        }
      }
      readBytes += src.bytes;
    }
    await seal();
    return { records, rows, totalBytes };
  }

  /** Columns of one batch; on a rejected batch, finds the first bad row so the reason names it. */
  #validate(coll: CollectionRecord, src: ImportSource, rows: readonly Record<string, unknown>[], firstRow: number): Map<string, Column> {
    try {
      return this.#deps.toColumns(coll, rowsToRequest(coll, rows, firstRow)).columns;
    } catch (e) {
      if (e instanceof RowError) throw quiverError('DataInvalid', `import file ${JSON.stringify(src.label)} row ${e.row}: ${e.message}`);
      if (!isQuiverError(e)) throw e;
      for (let i = 0; i < rows.length; i++) {
        try {
          this.#deps.toColumns(coll, rowsToRequest(coll, [rows[i]!], firstRow + i));
        } catch (one) {
          const reason = one instanceof Error ? one.message : String(one);
          throw quiverError('DataInvalid', `import file ${JSON.stringify(src.label)} row ${firstRow + i}: ${withoutBatchRow(reason)}`);
        }
      }
      throw quiverError('DataInvalid', `import file ${JSON.stringify(src.label)} rows ${firstRow}-${firstRow + rows.length - 1}: ${e.message}`);
    }
  }
}
