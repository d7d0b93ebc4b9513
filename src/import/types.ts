/**
 * Bulk import (Milvus: `Import` / `GetImportState` / `ListImportTasks`, run by DataCoord's import
 * checker and the DataNodes' import tasks). A job reads files that are already in the collection's object
 * store, validates every row by the insert rules, writes sealed segments and publishes them all at once.
 *
 * Job states, as Milvus reports them (ImportPending, ImportStarted, ImportCompleted, ImportFailed):
 *
 *   (submit) Pending ──(1) picked by the manager──▶ Importing ──(2) all segments published──▶ Completed
 *               ▲                                       │
 *               └──(3) the process restarted mid-job ───┤
 *                                                       └──(4) bad file, collection gone, attempts used up──▶ Failed
 *   Pending ──(5) collection dropped before it ran──▶ Failed
 *   Completed / Failed ──▶ (record deleted after `retentionMs`)
 *
 * All-or-nothing per job: segment files are written while Importing but no segment record exists until
 * (2), which commits every record in one catalog transaction. A job that fails or is interrupted leaves
 * only unlisted files, which the garbage collector's orphan pass reclaims. (3) re-runs the whole job (new
 * segment ids), so a restart never publishes half of one.
 */

export type ImportJobState = 'Pending' | 'Importing' | 'Completed' | 'Failed';

export const IMPORT_TRANSITIONS: Readonly<Record<ImportJobState, readonly ImportJobState[]>> = {
  Pending: ['Importing', 'Failed'], // (1) (5)
  Importing: ['Completed', 'Pending', 'Failed'], // (2) (3) (4)
  Completed: [],
  Failed: [],
};

export function assertImportTransition(from: ImportJobState, to: ImportJobState): void {
  if (!IMPORT_TRANSITIONS[from].includes(to)) throw new Error(`assertion failed: illegal import job transition ${from} → ${to}`);
}

export function isTerminal(s: ImportJobState): boolean {
  return s === 'Completed' || s === 'Failed';
}

/**
 * One persisted job: small (file keys, counters, ids of the published segments), so it fits one meta
 * value at any data size.
 */
export interface ImportJob {
  readonly id: number;
  readonly dbName: string;
  readonly collectionId: number;
  readonly collectionName: string;
  readonly partitionId: number;
  /** Object-store keys as the request named them (a NumPy job: the .npy files of one folder). */
  readonly files: readonly string[];
  /** The request's options (CSV `sep`, `nullkey`); absent when none were given. */
  readonly options?: Readonly<Record<string, string>>;
  readonly state: ImportJobState;
  /** Rows validated and written so far (progress); the final count once Completed. */
  readonly rows: number;
  /** Total bytes of the files (known once Importing) and bytes read so far: progress in percent. */
  readonly totalBytes: number;
  readonly readBytes: number;
  readonly segmentIds: readonly number[];
  readonly reason: string;
  /** How many times the job was started (a restart mid-job starts it again). */
  readonly attempts: number;
  readonly createdMs: number;
  readonly updatedMs: number;
  /** The TSO value of the submit (Milvus replies it as create_ts). */
  readonly createTs: string;
}

export type ImportJobPatch = Partial<Pick<ImportJob, 'state' | 'rows' | 'totalBytes' | 'readBytes' | 'segmentIds' | 'reason' | 'attempts'>>;

/** Persistence of jobs; every update is a compare-and-set against the expected state. */
export interface ImportJobStore {
  create(job: ImportJob): Promise<void>;
  get(id: number): Promise<ImportJob | undefined>;
  list(): Promise<ImportJob[]>;
  /** false (nothing written) when the job is gone or no longer in `expected`. */
  updateInState(id: number, expected: ImportJobState, patch: ImportJobPatch, nowMs: number): Promise<boolean>;
  delete(id: number): Promise<void>;
}

export interface ImportRequest {
  readonly dbName: string;
  readonly collectionName: string;
  readonly partitionName?: string | undefined;
  readonly files: readonly string[];
  readonly options?: Readonly<Record<string, string>> | undefined;
}

/** What the proxy calls. */
export interface ImportApi {
  submit(req: ImportRequest): Promise<ImportJob>;
  get(id: number): Promise<ImportJob | undefined>;
  list(dbName: string, collectionName: string | undefined, limit: number): Promise<ImportJob[]>;
}
