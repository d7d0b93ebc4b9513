import { isQuiverError, quiverError } from '../common/errors.js';
import type { CollectionRecord, SegmentRecord } from '../coord/records.js';
import { concatColumns, takeRows } from '../schema/columns.js';
import type { Column } from '../schema/types.js';
import { writeInsertFiles, type TextIndexBuilds } from '../segcore/segment-io.js';
import { newChunk } from '../segcore/segment.js';
import type { ObjectStore } from '../storage/object-store.js';
import { partitionKeyOf, keyPartitionName } from '../proxy/partition-key.js';
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
  /** Where full-text index files are built (the data node's text worker); undefined: on the calling thread. */
  readonly textBuilds?: TextIndexBuilds | undefined;
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
    const sources = await openSources(this.#deps.store, job.files, coll, job.options ?? {});
    const totalBytes = sources.reduce((a, s) => a + s.bytes, 0);
    const pk = coll.schema.fields.find((f) => f.isPrimaryKey)!;
    // Every row of a job shares one timestamp: the job is one write, published at once.
    const ts = this.#deps.tso.next();
    const records: SegmentRecord[] = [];
    // Rows waiting for a segment, per partition (a partition-key collection routes every row by its key).
    const pending = new Map<number, { parts: Map<string, Column>[]; rows: number }>();
    let rows = 0;
    let readBytes = 0;
    const key = partitionKeyOf(coll);

    const seal = async (partitionId: number): Promise<void> => {
      const p = pending.get(partitionId);
      if (!p || p.rows === 0) return;
      if (records.length >= IMPORT_SEGMENTS_MAX) {
        throw quiverError(
          'ParameterTooLarge',
          `import job ${job.id} needs more than ${IMPORT_SEGMENTS_MAX} segments; split the files over several imports`,
        );
      }
      const columns = new Map<string, Column>();
      for (const name of p.parts[0]!.keys()) columns.set(name, concatColumns(p.parts.map((c) => c.get(name)!)));
      const chunk = newChunk(p.rows, columns, new BigInt64Array(p.rows).fill(ts));
      const segmentId = await this.#deps.ids.alloc();
      const files = await writeInsertFiles(this.#deps.store, this.#deps.ids, coll, segmentId, partitionId, chunk, this.#deps.textBuilds);
      records.push({
        id: segmentId,
        collectionId: coll.id,
        partitionId,
        state: 'Flushed',
        numRows: p.rows,
        binlogs: files.binlogs,
        deltalogs: [],
        statslogs: files.statslogs,
        indexes: [],
        createdTs: ts.toString(),
      });
      rows += p.rows;
      pending.delete(partitionId);
      if (!(await progress({ rows, readBytes, totalBytes }))) throw quiverError('ServiceNotReady', `import job ${job.id} was taken over or cancelled`);
    };

    // Segments hold exactly segmentRowsMax rows (the last one of each partition the rest): cut at the boundary.
    const add = async (partitionId: number, columns: Map<string, Column>, n: number): Promise<void> => {
      let offset = 0;
      while (offset < n) {
        let p = pending.get(partitionId);
        if (!p) pending.set(partitionId, (p = { parts: [], rows: 0 }));
        const take = Math.min(n - offset, this.#opts.segmentRowsMax - p.rows);
        p.parts.push(offset === 0 && take === n ? columns : sliceColumns(columns, offset, take));
        p.rows += take;
        offset += take;
        if (p.rows >= this.#opts.segmentRowsMax) await seal(partitionId);
      }
    };

    for (const src of sources) {
      for await (const batch of src.batches(this.#opts.batchRows)) {
        if (signal.aborted) throw quiverError('ServiceNotReady', `import job ${job.id} stopped by shutdown`);
        const columns = this.#validate(coll, src, batch.rows, batch.firstRow);
        const n = batch.rows.length;
        if (pk.autoId && !columns.has(pk.name)) {
          const first = await this.#deps.ids.alloc(n);
          const data = new BigInt64Array(n);
          for (let i = 0; i < n; i++) data[i] = BigInt(first + i);
          columns.set(pk.name, { kind: 'int64', data });
        }
        if (!key) {
          await add(job.partitionId, columns, n);
          continue;
        }
        // The same routing as an insert (proxy/partition-key.ts): hidden partition by the key's hash.
        const keys = columns.get(key.name)!.data as ArrayLike<bigint | string>;
        const byPartition = new Map<number, number[]>();
        for (let i = 0; i < n; i++) {
          const name = keyPartitionName(keys[i]!, coll.partitions.length);
          const part = coll.partitions.find((p) => p.name === name);
          if (!part) throw quiverError('PartitionNotFound', `partition key ${String(keys[i])} routes to ${name}, which collection ${coll.name} lacks`);
          let list = byPartition.get(part.id);
          if (!list) byPartition.set(part.id, (list = []));
          list.push(i);
        }
        for (const [partitionId, idx] of byPartition) {
          const sel = Int32Array.from(idx);
          const part = new Map<string, Column>();
          for (const [name, c] of columns) part.set(name, takeRows(c, sel));
          await add(partitionId, part, idx.length);
        }
      }
      readBytes += src.bytes;
    }
    for (const partitionId of [...pending.keys()]) await seal(partitionId);
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
