import { quiverError } from '../common/errors.js';
import { decodeJson, encodeJson } from '../meta/json.js';
import type { KvEntry, MetaKV } from '../meta/meta-kv.js';
import { assertImportTransition, IMPORT_TRANSITIONS, type ImportJob, type ImportJobPatch, type ImportJobState, type ImportJobStore } from './types.js';

/**
 * Import jobs in MetaKV, one key per job (`import/jobs/{id}`). Every update reads the entry, checks the
 * expected state and writes with a compare on the entry's modRevision, so two writers (a tick and a
 * restart's reconcile) never both win. Records are checked before each write and after each read.
 */

const PREFIX = 'import/jobs/';
/** A job names its files; bound them so one record stays far below etcd's 1.5 MiB value limit. */
export const IMPORT_FILES_MAX = 1024;
/** Segment ids a job may publish (one catalog transaction holds all their records). */
export const IMPORT_SEGMENTS_MAX = 512;

const keyOf = (id: number): string => `${PREFIX}${String(id).padStart(20, '0')}`;

function checkJob(j: ImportJob): void {
  const ok =
    Number.isSafeInteger(j.id) &&
    Number.isSafeInteger(j.collectionId) &&
    typeof j.collectionName === 'string' &&
    Array.isArray(j.files) &&
    j.files.length <= IMPORT_FILES_MAX &&
    (j.options === undefined || (typeof j.options === 'object' && j.options !== null && Object.keys(j.options).length <= 64)) &&
    j.state in IMPORT_TRANSITIONS &&
    Number.isSafeInteger(j.rows) &&
    j.rows >= 0 &&
    Array.isArray(j.segmentIds) &&
    j.segmentIds.length <= IMPORT_SEGMENTS_MAX &&
    typeof j.reason === 'string' &&
    Number.isSafeInteger(j.attempts);
  if (!ok) throw new Error(`assertion failed: malformed import job record ${JSON.stringify(j).slice(0, 200)}`);
}

function read(e: KvEntry): ImportJob {
  const j = decodeJson<ImportJob>(e);
  checkJob(j);
  return j;
}

export class MetaImportJobStore implements ImportJobStore {
  readonly #kv: MetaKV;

  constructor(deps: { kv: MetaKV }) {
    this.#kv = deps.kv;
  }

  async create(job: ImportJob): Promise<void> {
    checkJob(job);
    const key = keyOf(job.id);
    const r = await this.#kv.txn([{ key, target: 'version', op: '==', value: 0 }], [{ type: 'put', key, value: encodeJson(job) }]);
    if (!r.succeeded) throw quiverError('ParameterInvalid', `import job ${job.id} already exists`);
  }

  async get(id: number): Promise<ImportJob | undefined> {
    const e = await this.#kv.get(keyOf(id));
    return e === undefined ? undefined : read(e);
  }

  async list(): Promise<ImportJob[]> {
    return (await this.#kv.scan(PREFIX)).map(read);
  }

  async updateInState(id: number, expected: ImportJobState, patch: ImportJobPatch, nowMs: number): Promise<boolean> {
    const key = keyOf(id);
    const e = await this.#kv.get(key);
    if (e === undefined) return false;
    const cur = read(e);
    if (cur.state !== expected) return false;
    if (patch.state !== undefined && patch.state !== expected) assertImportTransition(expected, patch.state);
    const next: ImportJob = { ...cur, ...patch, updatedMs: nowMs };
    checkJob(next);
    const r = await this.#kv.txn([{ key, target: 'modRevision', op: '==', value: e.modRevision }], [{ type: 'put', key, value: encodeJson(next) }]);
    return r.succeeded;
  }

  async delete(id: number): Promise<void> {
    await this.#kv.delete(keyOf(id));
  }
}
