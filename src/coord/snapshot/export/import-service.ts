/**
 * RestoreExternalSnapshot: restores a bundle (bundle-format.ts) written by ExportSnapshot, on this or
 * another server, into a new collection, as a restore job whose id the RPC answers at once.
 *
 *   (1) RPC: check the location against the export roots, read and validate the bundle manifest (a newer
 *       format is refused), check the target name (a collection of another schema under that name is
 *       refused naming the difference), allocate the job id, write the import record `Staging`.
 *   (2) stage: every bundle file is read, its size and SHA-256 verified, and written to the local store
 *       at its original key under `imports/{jobId}/`; then the staged snapshot is read and checked like a
 *       local one (metadata ↔ manifests ↔ build ids).
 *   (3) one MetaKV txn: the target collection (Restoring), the copy job (with `sourcePrefix`, so its
 *       workers copy from the staged files: a hardlink on a local disk) and import record → `Started`.
 *       From here the ordinary restore job runs (checker, inspector, publish or rollback).
 *   (4) the job ended (either way): the staged files are deleted.
 *
 * Every checksum is verified in (2), before the job exists, so nothing is ever published from a bundle
 * with a missing or flipped file: such a bundle ends the import `Failed` with a reason naming the file,
 * and its staged files are removed (nothing else was written).
 *
 * Crash safety: a process that dies in (2) leaves a `Staging` record and staged files; `init` (at start)
 * marks it Failed ("interrupted by a restart") and deletes the files: rolled back. After (3) the restore
 * job resumes or rolls back as any restore does, and (4) runs from `init` too for jobs that ended while
 * the process was down.
 *
 * The job exists from the call's start: its id names the import record while the bundle is verified, and
 * `GetRestoreSnapshotState` / `ListRestoreSnapshotJobs` report it (Pending, progress = bytes verified) and
 * cancel takes it (`cancel`, reached by `quiver snapshot cancel JOB` / `POST /restore-jobs/{id}/cancel`):
 * (c) a CAS Staging → Failed "cancelled" (so the start txn (3), guarded on the record's revision, can no
 * longer win), then staging stops at its next file, and the staged files are deleted before the cancel
 * answers. A cancel that loses to (3) cancels the restore job that now exists, as any restore's cancel.
 *
 * Record states (the service is the only writer; every write is a CAS on the record's revision):
 *   Staging ──(a) txn (3)──▶ Started
 *      └─────(b) failure / restart, (c) cancel──▶ Failed
 */

import type { Logger } from 'pino';
import type { Clock } from '../../../common/clock.js';
import { quiverError, unreachable } from '../../../common/errors.js';
import type { MetaKV } from '../../../meta/meta-kv.js';
import type { CollectionSchema } from '../../../schema/types.js';
import type { ObjectStore } from '../../../storage/object-store.js';
import { PrefixedObjectStore } from '../../../storage/prefixed-object-store.js';
import { sha256Of } from '../../../storage/content-hash.js';
import { mapLimit } from '../../../storage/snapshot-format/concurrency.js';
import { readSnapshot } from '../../../storage/snapshot-format/read-snapshot.js';
import { decodeMetadata, type SnapshotMetadata } from '../../../storage/snapshot-format/metadata.js';
import { CANCELLED_REASON, isTerminalJobState, newCopyJob, SEGMENTS_PER_JOB_MAX, type CopyJob, type CopyOptions } from '../../copy/index.js';
import type { RestoreService } from '../restore-service.js';
import { RestoreTargets, type RestoreHost } from '../restore-targets.js';
import { blobKey, decodeBundleManifest, sha256Hex, type BundleManifest } from './bundle-format.js';
import { recordedHashes } from './exporter.js';
import { checkWithinRoots, formatLocation, openLocation, parseExportUri, parseExternalSpec, type ExportLocation } from './export-location.js';

export type ImportState = 'Staging' | 'Started' | 'Failed';
const IMPORT_TRANSITIONS: Readonly<Record<ImportState, readonly ImportState[]>> = { Staging: ['Started', 'Failed'], Started: [], Failed: [] };

export interface ImportRecord {
  readonly id: number;
  readonly state: ImportState;
  readonly reason: string;
  readonly snapshotName: string;
  readonly targetDbName: string;
  readonly targetCollectionName: string;
  readonly bytesTotal: number;
  readonly createdAtMs: number;
  readonly finishedAtMs?: number | undefined;
}

/** Files staged at once. */
const STAGE_CONCURRENCY = 8;
const IMPORT_KEY_PREFIX = 'quiver/import/';
export const IMPORTS_ROOT = 'imports/';
const importKey = (id: number) => `${IMPORT_KEY_PREFIX}${id}`;
export const stagingPrefix = (id: number) => `${IMPORTS_ROOT}${id}/`;

export interface ImportDeps {
  readonly host: RestoreHost;
  readonly restores: RestoreService;
  readonly kv: MetaKV;
  readonly store: ObjectStore;
  readonly clock: Clock;
  readonly log: Logger;
  readonly roots: readonly ExportLocation[];
  readonly dataDir: string;
  readonly options: Pick<CopyOptions, 'jobTimeoutMs' | 'taskRetentionMs'>;
  /** Test-only (crash tests, QUIVER_FAULT_EXPORT_FILE_DELAY_MS): wait this long before reading each bundle file. */
  readonly faultFileDelayMs?: number | undefined;
}

export class ExternalRestoreService {
  readonly #d: ImportDeps;
  /** Bytes verified so far of each import still staging (progress; lost on restart, like the staging itself). */
  readonly #staged = new Map<number, number>();
  readonly #running = new Set<Promise<void>>();
  /** Per import still staging in this process: its run and the abort a cancel fires. */
  readonly #staging = new Map<number, { run: Promise<void>; abort: AbortController }>();
  /** Aborted by `stop`: staging stops at the next file and rolls back (a restart would roll it back anyway). */
  readonly #closing = new AbortController();

  constructor(deps: ImportDeps) {
    this.#d = deps;
    deps.restores.onJobFinished.push((job) => {
      if (job.sourcePrefix === stagingPrefix(job.id)) void this.#dropStaged(job.id);
    });
  }

  /** Reconciles what a crash left (see the header). Call after `RestoreService.init`. */
  async init(): Promise<{ rolledBack: number; stagingRemoved: number }> {
    let rolledBack = 0;
    let stagingRemoved = 0;
    const now = this.#d.clock.nowMs();
    for (const rec of await this.#records()) {
      if (rec.state === 'Staging') {
        await this.#dropStaged(rec.id);
        await this.#transition(rec, 'Failed', 'interrupted by a server restart while verifying the bundle; nothing was kept');
        rolledBack++;
      } else if (
        rec.state === 'Failed'
          ? now - (rec.finishedAtMs ?? 0) > this.#d.options.taskRetentionMs
          : (await this.#d.restores.jobs.getJob(rec.id)) === undefined
      ) {
        // A failed import is listed as long as a failed job would be; a started one as long as its job exists.
        await this.#d.kv.delete(importKey(rec.id));
      }
    }
    // Staged files of jobs that ended (or never started) while the process was down.
    const dirs = new Set((await this.#d.store.list(IMPORTS_ROOT)).map((o) => Number(o.key.slice(IMPORTS_ROOT.length).split('/')[0])));
    for (const id of dirs) {
      if (!Number.isSafeInteger(id)) continue;
      const job = await this.#d.restores.jobs.getJob(id);
      if (job === undefined || isTerminalJobState(job.state)) {
        await this.#dropStaged(id);
        stagingRemoved++;
      }
    }
    return { rolledBack, stagingRemoved };
  }

  /** Awaits the staging work in flight (server close). */
  async stop(): Promise<void> {
    this.#closing.abort();
    await Promise.allSettled([...this.#running]);
  }

  /** Step (1); the job id it answers names the import until the restore job exists, and the job after. */
  async start(input: { db: string; target: string; uri: unknown; externalSpec?: unknown }): Promise<number> {
    const loc = parseExportUri(input.uri, 'snapshot_metadata_uri');
    const spec = parseExternalSpec(input.externalSpec);
    if (loc.kind === 'local' ? !loc.dir.endsWith('.json') : !loc.prefix.endsWith('.json')) {
      throw quiverError('ParameterInvalid', `snapshot_metadata_uri ${formatLocation(loc)} must name a bundle manifest (…/bundles/…/NAME-ID.json)`);
    }
    const { root, key } = splitBundleUri(loc);
    await checkWithinRoots(root, this.#d.roots, 'restore source');
    const source = await openLocation(root, spec, this.#d.dataDir);
    let manifest: BundleManifest;
    try {
      manifest = decodeBundleManifest(
        await readOrExplain(source, key, `bundle manifest ${formatLocation(loc)} does not exist (an export that did not finish writes none)`),
        formatLocation(loc),
      );
    } catch (e) {
      await source.close();
      throw e;
    }
    try {
      // The schema is in the snapshot's metadata file: small, read (and verified) now, so that a bundle of
      // another collection is refused by the RPC itself.
      this.#checkTarget(input.db, input.target, (await this.#readMetadata(source, manifest)).schema);
      const id = await this.#d.host.ids.alloc();
      const rec: ImportRecord = {
        id,
        state: 'Staging',
        reason: '',
        snapshotName: manifest.snapshot.name,
        targetDbName: input.db,
        targetCollectionName: input.target,
        bytesTotal: manifest.total_bytes,
        createdAtMs: this.#d.clock.nowMs(),
      };
      const r = await this.#d.kv.txn(
        [{ key: importKey(id), target: 'version', op: '==', value: 0 }],
        [{ type: 'put', key: importKey(id), value: JSON.stringify(rec) }],
      );
      if (!r.succeeded) throw new Error(`assertion failed: import record ${id} exists for a fresh id`);
      const abort = new AbortController();
      const run = this.#stageAndStart(rec, manifest, source, abort.signal).finally(() => {
        this.#running.delete(run);
        this.#staging.delete(id);
        this.#staged.delete(id);
        void source.close();
      });
      this.#running.add(run);
      this.#staging.set(id, { run, abort });
      this.#d.log.info({ jobId: id, uri: formatLocation(loc), target: input.target, bytes: manifest.total_bytes }, 'external restore started');
      return id;
    } catch (e) {
      await source.close();
      throw e;
    }
  }

  /** The import record of a job id (GetRestoreSnapshotState before the restore job exists, or when staging failed). */
  async record(id: number): Promise<(ImportRecord & { readonly bytesVerified: number }) | undefined> {
    const e = await this.#d.kv.get(importKey(id));
    if (e === undefined) return undefined;
    const rec = readRecord(e.value, e.key);
    return { ...rec, bytesVerified: rec.state === 'Staging' ? (this.#staged.get(id) ?? 0) : 0 };
  }

  /**
   * Import records still staging or failed before their restore job existed (ListRestoreSnapshotJobs
   * lists them beside the jobs), with the bytes verified so far.
   */
  async list(): Promise<(ImportRecord & { readonly bytesVerified: number })[]> {
    return (await this.#records())
      .filter((r) => r.state !== 'Started')
      .map((r) => ({ ...r, bytesVerified: r.state === 'Staging' ? (this.#staged.get(r.id) ?? 0) : 0 }));
  }

  /**
   * Cancels an external restore whose job does not exist yet (see (c) in the header). Undefined when the
   * id names no import, or one whose restore job exists (the caller cancels the job then). A Failed
   * "cancelled" import answers itself again (idempotent); one failed for another reason is refused.
   */
  async cancel(id: number): Promise<ImportRecord | undefined> {
    for (let attempt = 0; attempt < 3; attempt++) {
      const cur = await this.#d.kv.get(importKey(id));
      if (cur === undefined) return undefined;
      const rec = readRecord(cur.value, cur.key);
      switch (rec.state) {
        case 'Started':
          return undefined;
        case 'Failed':
          if (rec.reason === CANCELLED_REASON) return rec;
          throw quiverError('ParameterInvalid', `restore job ${id} cannot be cancelled: it has already failed (${rec.reason})`);
        case 'Staging': {
          if (!(await this.#transition(rec, 'Failed', CANCELLED_REASON))) continue; // lost to (3) or a failure: re-read
          const staging = this.#staging.get(id);
          staging?.abort.abort();
          // Staging stops at its next file (mapLimit awaits the reads and writes in flight); then nothing is left.
          await staging?.run;
          await this.#dropStaged(id);
          this.#d.log.info({ jobId: id }, 'external restore cancelled while verifying its bundle; staged files removed');
          const after = await this.#d.kv.get(importKey(id));
          return after === undefined ? rec : readRecord(after.value, after.key);
        }
        default:
          return unreachable(rec.state);
      }
    }
    throw quiverError('ServiceNotReady', `restore job ${id} kept changing state while being cancelled; retry`);
  }

  async #stageAndStart(rec: ImportRecord, manifest: BundleManifest, source: ObjectStore, cancelled: AbortSignal): Promise<void> {
    const prefix = stagingPrefix(rec.id);
    const stop = AbortSignal.any([this.#closing.signal, cancelled]);
    try {
      let verified = 0;
      this.#staged.set(rec.id, 0);
      await mapLimit(manifest.files, STAGE_CONCURRENCY, async (f) => {
        const blob = blobKey(f.sha256);
        const checkStop = () => {
          if (cancelled.aborted) throw quiverError('ServiceNotReady', CANCELLED_REASON);
          if (this.#closing.signal.aborted)
            throw quiverError('ServiceNotReady', 'the server is shutting down; the external restore was rolled back, start it again');
        };
        checkStop();
        if (this.#d.faultFileDelayMs) {
          await this.#d.clock.sleep(this.#d.faultFileDelayMs, stop);
          checkStop();
        }
        const bytes = await readOrExplain(source, blob, `bundle file ${JSON.stringify(f.key)} is missing (blob ${blob})`);
        if (bytes.byteLength !== f.size)
          throw quiverError('DataInvalid', `bundle file ${JSON.stringify(f.key)} is corrupt: ${bytes.byteLength} bytes, the bundle lists ${f.size}`);
        const got = await sha256Of(bytes); // off the event loop: a bundle is mostly large files
        if (got !== f.sha256)
          throw quiverError('DataInvalid', `bundle file ${JSON.stringify(f.key)} is corrupt: sha256 ${got}, the bundle lists ${f.sha256}`);
        await this.#d.store.put(prefix + f.key, bytes);
        verified += f.size;
        this.#staged.set(rec.id, verified);
      });
      const staged = new PrefixedObjectStore(this.#d.store, prefix);
      const contents = await readSnapshot(staged, manifest.metadata_key);
      const md = contents.metadata;
      if (md.snapshot_id !== manifest.snapshot.id || md.collection_id !== manifest.snapshot.collection_id) {
        throw quiverError(
          'DataInvalid',
          `bundle metadata ${manifest.metadata_key} is of snapshot ${md.snapshot_id} of collection ${md.collection_id}, not the bundle's`,
        );
      }
      // A hash a manifest records must be the one verified above: the restored segments keep it.
      const listed = new Map(manifest.files.map((f) => [f.key, f.sha256]));
      for (const [key, sha256] of recordedHashes(contents.entries.map((e) => e.segment))) {
        if (listed.get(key) !== sha256)
          throw quiverError(
            'DataInvalid',
            `bundle file ${JSON.stringify(key)}: its manifest records sha256 ${sha256}, the bundle lists ${listed.get(key) ?? 'no such file'}`,
          );
      }
      if (contents.entries.length > SEGMENTS_PER_JOB_MAX)
        throw quiverError('ParameterInvalid', `the bundle has ${contents.entries.length} segments; a restore takes at most ${SEGMENTS_PER_JOB_MAX}`);
      const job = await this.#startJob(rec, contents, prefix);
      this.#d.log.info({ jobId: job.id, segments: job.mappings.length }, 'external restore: bundle verified, restore job created');
      void this.#d.restores.checker.kick();
    } catch (e) {
      const reason = e instanceof Error ? e.message : String(e);
      this.#d.log.warn({ jobId: rec.id, reason }, 'external restore failed before its job started; staged files removed');
      try {
        await this.#dropStaged(rec.id);
        const cur = await this.#d.kv.get(importKey(rec.id));
        const now = cur === undefined ? undefined : readRecord(cur.value, cur.key);
        // Already Failed when a cancel (c) won: its reason stays.
        if (now?.state === 'Staging') await this.#transition(now, 'Failed', reason);
      } catch (cleanup) {
        // The Staging record stays; `init` rolls it back at the next start.
        this.#d.log.error({ jobId: rec.id, err: cleanup }, 'external restore: cleanup failed');
      }
    }
  }

  /** Step (3): target, job and record → Started in one txn (the ordinary restore start, without a source pin). */
  async #startJob(rec: ImportRecord, contents: Awaited<ReturnType<typeof readSnapshot>>, prefix: string): Promise<CopyJob> {
    const { host, restores } = this.#d;
    const md = contents.metadata;
    const partitionName = new Map(md.partitions.map((p) => [p.id, p.name]));
    const partitions = md.partitions.map((p) => ({ name: p.name }));
    // The pin id is never written: an external source has no local snapshot to pin; releasing it is a no-op.
    const pinId = await host.ids.alloc();
    const firstId = await host.ids.alloc(RestoreTargets.idsNeeded(partitions, contents.entries.length));
    return host.withDdlLock(async () => {
      const db = this.#checkTarget(rec.targetDbName, rec.targetCollectionName, md.schema);
      const plan = restores.targets.plan({
        firstId,
        dbId: db,
        name: rec.targetCollectionName,
        source: { schema: md.schema, shardsNum: md.shards_num, consistencyLevel: md.consistency_level, properties: md.properties },
        partitions,
        indexes: md.indexes,
        segments: contents.entries.map((e) => ({ sourceId: e.segment.id, partitionName: partitionName.get(e.segment.partitionId) ?? '_default' })),
      });
      const job = newCopyJob({
        id: rec.id,
        snapshotId: md.snapshot_id,
        snapshotName: md.name,
        sourceCollectionId: md.collection_id,
        sourcePrefix: prefix,
        sourceDbName: md.db_name,
        sourceCollectionName: md.collection_name,
        targetCollectionId: plan.collection.id,
        targetDbName: rec.targetDbName,
        targetCollectionName: rec.targetCollectionName,
        pinId,
        mappings: plan.mappings,
        createdAtMs: rec.createdAtMs,
        timeoutMs: this.#d.options.jobTimeoutMs,
      });
      const jobTxn = restores.jobs.createJobTxn(job);
      const cur = await this.#d.kv.get(importKey(rec.id));
      if (cur === undefined || readRecord(cur.value, cur.key).state !== 'Staging')
        throw quiverError('ServiceNotReady', `import ${rec.id} is no longer staging`);
      const started: ImportRecord = { ...rec, state: 'Started', reason: '' };
      const ok = await host.catalog.commitGuarded(plan.changes, {
        expect: [{ kind: 'collection', id: plan.collection.id, state: 'absent' }],
        extra: {
          compares: [jobTxn.compare, { key: cur.key, target: 'modRevision', op: '==', value: cur.modRevision }],
          ops: [jobTxn.op, { type: 'put', key: cur.key, value: JSON.stringify(started) }],
        },
      });
      if (!ok) throw quiverError('ServiceNotReady', `restore of the bundle into ${rec.targetCollectionName}: lost a race while starting; retry`);
      return job;
    });
  }

  /**
   * The database id when `name` is free in `dbName`. A taken name is refused; when `schema` is given and
   * the existing collection's differs, the message says so (the bundle is another collection's).
   */
  #checkTarget(dbName: string, name: string, schema: CollectionSchema | undefined): number {
    const catalog = this.#d.host.catalog;
    const db = catalog.requireDatabase(dbName);
    if (!catalog.nameTaken(db.id, name)) return db.id;
    const existing = catalog.collectionByName(db.id, name);
    if (schema !== undefined && existing !== undefined && schemaShape(existing.schema) !== schemaShape(schema)) {
      throw quiverError(
        'CollectionSchemaMismatch',
        `collection ${name} exists in database ${dbName} with another schema than the bundle's; restore into a new name`,
      );
    }
    throw quiverError('ParameterInvalid', `collection already exists: ${name} in database ${dbName}; restore needs a new collection name`);
  }

  async #readMetadata(source: ObjectStore, manifest: BundleManifest): Promise<SnapshotMetadata> {
    const f = manifest.files.find((x) => x.key === manifest.metadata_key)!;
    const bytes = await readOrExplain(source, blobKey(f.sha256), `bundle file ${JSON.stringify(f.key)} is missing (blob ${blobKey(f.sha256)})`);
    if (sha256Hex(bytes) !== f.sha256)
      throw quiverError('DataInvalid', `bundle file ${JSON.stringify(f.key)} is corrupt: its sha256 is not the one the bundle lists`);
    return decodeMetadata(bytes);
  }

  async #dropStaged(id: number): Promise<void> {
    await this.#d.store.deletePrefix(stagingPrefix(id));
  }

  async #records(): Promise<ImportRecord[]> {
    return (await this.#d.kv.scan(IMPORT_KEY_PREFIX)).map((e) => readRecord(e.value, e.key));
  }

  async #transition(rec: ImportRecord, to: ImportState, reason: string): Promise<boolean> {
    if (!IMPORT_TRANSITIONS[rec.state].includes(to)) throw new Error(`assertion failed: import ${rec.id}: ${rec.state} → ${to} is not a transition`);
    const cur = await this.#d.kv.get(importKey(rec.id));
    if (cur === undefined || readRecord(cur.value, cur.key).state !== rec.state) return false;
    const next: ImportRecord = { ...rec, state: to, reason, finishedAtMs: this.#d.clock.nowMs() };
    const r = await this.#d.kv.txn(
      [{ key: cur.key, target: 'modRevision', op: '==', value: cur.modRevision }],
      [{ type: 'put', key: cur.key, value: JSON.stringify(next) }],
    );
    return r.succeeded;
  }
}

/** `…/bundles/…/x.json` → the bundle root location and the manifest key under it. */
function splitBundleUri(loc: ExportLocation): { root: ExportLocation; key: string } {
  const path = loc.kind === 'local' ? loc.dir.split(/[/\\]/).join('/') : loc.prefix;
  const at = path.lastIndexOf('/bundles/');
  if (at < 0 && !path.startsWith('bundles/')) {
    throw quiverError(
      'ParameterInvalid',
      `snapshot_metadata_uri ${formatLocation(loc)} is not a bundle manifest: expected …/bundles/DB/COLLECTION/SNAPSHOT-ID.json`,
    );
  }
  const rootPath = at < 0 ? '' : path.slice(0, at);
  const key = at < 0 ? path : path.slice(at + 1);
  const root: ExportLocation =
    loc.kind === 'local' ? { kind: 'local', dir: rootPath === '' ? '/' : rootPath } : { kind: 's3', bucket: loc.bucket, prefix: rootPath };
  return { root, key };
}

/** What makes two schemas hold the same data: fields by name, type, key role and shape. */
function schemaShape(s: CollectionSchema): string {
  return JSON.stringify(s.fields.map((f) => [f.name, f.dataType, f.isPrimaryKey, f.dim ?? null, f.elementType ?? null, f.maxLength ?? null, f.isDynamic]));
}

async function readOrExplain(store: ObjectStore, key: string, missing: string): Promise<Uint8Array> {
  try {
    return await store.get(key);
  } catch (e) {
    if ((e as { kind?: string }).kind === 'IoKeyNotFound') throw quiverError('IoKeyNotFound', missing, e);
    throw e;
  }
}

function readRecord(value: Uint8Array, key: string): ImportRecord {
  let r: ImportRecord;
  try {
    r = JSON.parse(new TextDecoder().decode(value)) as ImportRecord;
  } catch (e) {
    throw quiverError('ServiceInternal', `${key}: not JSON: ${(e as Error).message}`);
  }
  const ok =
    typeof r === 'object' &&
    r !== null &&
    Number.isSafeInteger(r.id) &&
    (r.state === 'Staging' || r.state === 'Started' || r.state === 'Failed') &&
    typeof r.reason === 'string' &&
    typeof r.targetCollectionName === 'string' &&
    typeof r.targetDbName === 'string' &&
    Number.isSafeInteger(r.bytesTotal);
  if (!ok) throw quiverError('ServiceInternal', `${key}: not a valid import record`);
  return r;
}
