/**
 * Builders and fakes for the copy-job tests (not a test file itself: vitest only runs `*.test.ts`).
 */

import { expect } from 'vitest';
import { FakeClock } from '../../common/clock.js';
import { quiverError } from '../../common/errors.js';
import { MemoryMetaKV } from '../../meta/memory-kv.js';
import type { Compare, Op, TxnResult } from '../../meta/meta-kv.js';
import type { ObjectInfo, ObjectStore } from '../../storage/object-store.js';
import { deltaLogKey, indexFileKey, insertLogKey, statsLogKey } from '../../storage/paths.js';
import type { Binlog, SegmentRecord } from '../records.js';
import { CopyJobStore, newCopyJob } from './copy-job-store.js';
import { resolveMappings, sourceKeysOf, targetKeysOf } from '../../storage/snapshot-format/segment-rewrite.js';
import {
  DEFAULT_COPY_OPTIONS,
  type CopiedSegment,
  type CopyJob,
  type CopyOptions,
  type CopyTask,
  type ResolvedMapping,
  type RestoreTargetOps,
  type SegmentMapping,
  type SnapshotRef,
  type SourceSegmentReader,
  type TaskPoll,
  type WorkerClient,
  type WorkerNodeInfo,
} from './types.js';

export const SOURCE_COLLECTION = 100;
export const SOURCE_PARTITION = 101;
export const TARGET_COLLECTION = 200;
export const TARGET_PARTITION = 201;
export const SNAPSHOT_ID = 300;
export const SNAPSHOT: SnapshotRef = { collectionId: SOURCE_COLLECTION, snapshotId: SNAPSHOT_ID };

export function idAllocator(start = 10_000): (count?: number) => Promise<number> {
  let next = start;
  return async (count = 1) => {
    const first = next;
    next += count;
    return first;
  };
}

export interface Harness {
  readonly kv: MemoryMetaKV;
  readonly clock: FakeClock;
  readonly store: CopyJobStore;
  readonly options: CopyOptions;
}

/**
 * A store over a fresh MemoryMetaKV. `viewTasks` (default true, as the server runs it) keeps the task
 * view: a test that writes task records straight into the kv while the store runs passes false.
 */
export function harness(options: Partial<CopyOptions> = {}, { viewTasks = true }: { viewTasks?: boolean } = {}): Harness {
  const kv = new MemoryMetaKV();
  const clock = new FakeClock();
  return { kv, clock, store: new CopyJobStore({ kv, allocId: idAllocator(), viewTasks }), options: { ...DEFAULT_COPY_OPTIONS, ...options } };
}

function binlog(path: string, logId: number, entries: number): Binlog {
  return { logId, path, entries, tsFrom: '1', tsTo: '2', size: 16 };
}

/**
 * A flushed source segment: 2 fields of insert binlogs (plus the timestamp field 1), a deltalog, a
 * statslog and one index with two files. Every id derived from `segmentId`, so segments never share keys.
 */
export function sourceSegment(segmentId: number, numRows = 10): SegmentRecord {
  const c = SOURCE_COLLECTION;
  const p = SOURCE_PARTITION;
  const log = (k: number): number => segmentId * 100 + k;
  const buildId = 50_000 + segmentId;
  return {
    id: segmentId,
    collectionId: c,
    partitionId: p,
    state: 'Flushed',
    numRows,
    binlogs: {
      '1': [binlog(insertLogKey(c, p, segmentId, 1, log(1)), log(1), numRows)],
      '100': [binlog(insertLogKey(c, p, segmentId, 100, log(2)), log(2), numRows)],
      '101': [binlog(insertLogKey(c, p, segmentId, 101, log(3)), log(3), 6), binlog(insertLogKey(c, p, segmentId, 101, log(4)), log(4), 4)],
    },
    deltalogs: [binlog(deltaLogKey(c, p, segmentId, log(5)), log(5), 1)],
    statslogs: [binlog(statsLogKey(c, p, segmentId, 100, log(6)), log(6), numRows)],
    indexes: [
      {
        indexId: 7,
        buildId,
        version: 1,
        files: [indexFileKey(buildId, 1, p, segmentId, 'hnsw.bin'), indexFileKey(buildId, 1, p, segmentId, 'meta.json')],
        size: 64,
      },
    ],
    compactedFrom: [segmentId - 1],
    createdTs: '123',
  };
}

/** Distinct bytes per key, so a copy to the wrong target is caught. */
export function bytesOf(key: string): Uint8Array {
  return new TextEncoder().encode(`bytes of ${key}`);
}

export async function putSourceFiles(objects: ObjectStore, segments: readonly SegmentRecord[]): Promise<string[]> {
  const keys = segments.flatMap(sourceKeysOf);
  for (const k of keys) await objects.put(k, bytesOf(k));
  return keys;
}

export function mappingOf(source: SegmentRecord, targetSegmentId = source.id + 1_000): SegmentMapping {
  return { sourceSegmentId: source.id, targetSegmentId, targetPartitionId: TARGET_PARTITION };
}

/** The mapping with its source record, as the executor and publish see it. */
export function resolvedOf(source: SegmentRecord, targetSegmentId = source.id + 1_000): ResolvedMapping {
  return { source, targetSegmentId, targetPartitionId: TARGET_PARTITION, targetCollectionId: TARGET_COLLECTION };
}

export function mappings(count: number, firstSegmentId = 1): SegmentMapping[] {
  return Array.from({ length: count }, (_, i) => mappingOf(sourceSegment(firstSegmentId + i)));
}

/** A SourceSegmentReader over records in memory (what the snapshot manifests would hold). */
export class MemorySources implements SourceSegmentReader {
  readonly segments = new Map<number, SegmentRecord>();
  reads = 0;

  constructor(segments: readonly SegmentRecord[] = []) {
    for (const s of segments) this.segments.set(s.id, s);
  }

  async read(_snapshot: SnapshotRef, ids: readonly number[]): Promise<ReadonlyMap<number, SegmentRecord>> {
    this.reads++;
    const out = new Map<number, SegmentRecord>();
    for (const id of ids) {
      const s = this.segments.get(id);
      if (s === undefined) throw quiverError('SegmentLoadFailed', `segment ${id} is not in the snapshot`);
      out.set(id, s);
    }
    return out;
  }
}

/** Sources for the mappings of `count` fake segments from `firstSegmentId` (see `mappings`). */
export function sourcesFor(count: number, firstSegmentId = 1): MemorySources {
  return new MemorySources(Array.from({ length: count }, (_, i) => sourceSegment(firstSegmentId + i)));
}

export async function createJob(h: Harness, ms: readonly SegmentMapping[], timeoutMs = h.options.jobTimeoutMs): Promise<CopyJob> {
  const job = newCopyJob({
    id: await h.store.allocId(),
    snapshotId: SNAPSHOT_ID,
    snapshotName: 'snap',
    sourceCollectionId: SOURCE_COLLECTION,
    sourceDbName: 'default',
    sourceCollectionName: 'src',
    targetCollectionId: TARGET_COLLECTION,
    targetDbName: 'default',
    targetCollectionName: 'dst',
    pinId: 1,
    mappings: ms,
    createdAtMs: h.clock.nowMs(),
    timeoutMs,
  });
  await h.store.createJob(job);
  return job;
}

export async function mustGetJob(store: CopyJobStore, id: number): Promise<CopyJob> {
  const job = await store.getJob(id);
  expect(job, `job ${id}`).toBeDefined();
  return job!;
}

/** A RestoreTargetOps that records its calls; rollback deletes the job's target keys via `onRollback`. */
export class RecordingTargets implements RestoreTargetOps {
  readonly registered: CopyJob[] = [];
  readonly completed: CopyJob[] = [];
  readonly rolledBack: { job: CopyJob; keys: readonly string[] }[] = [];
  /** Calls left that throw (to test retries of the side effects). */
  failNext = 0;
  /** Throw this from the next publish instead (e.g. TargetRefused). */
  publishError: Error | undefined;
  /** Runs inside `rollback` with every target key the job may have written. */
  onRollback: (keys: readonly string[]) => Promise<void> = async () => {};

  constructor(readonly sources: SourceSegmentReader = new MemorySources()) {}

  /** Throw this from the next register instead (e.g. TargetRefused). */
  registerError: Error | undefined;

  async register(job: CopyJob): Promise<void> {
    if (this.registerError !== undefined) {
      const e = this.registerError;
      this.registerError = undefined;
      throw e;
    }
    this.#maybeFail('register');
    this.registered.push(job);
  }

  async publish(job: CopyJob): Promise<void> {
    if (this.publishError !== undefined) {
      const e = this.publishError;
      this.publishError = undefined;
      throw e;
    }
    this.#maybeFail('publish');
    this.completed.push(job);
  }

  async rollback(job: CopyJob): Promise<void> {
    this.#maybeFail('rollback');
    const records = await this.sources
      .read(
        SNAPSHOT,
        job.mappings.map((m) => m.sourceSegmentId),
      )
      .catch(() => new Map<number, SegmentRecord>());
    const keys = records.size === job.mappings.length ? targetKeysOf(resolveMappings(job.mappings, job.targetCollectionId, records)) : [];
    await this.onRollback(keys);
    this.rolledBack.push({ job, keys });
  }

  #maybeFail(what: string): void {
    if (this.failNext > 0) {
      this.failNext--;
      throw quiverError('ServiceInternal', `injected ${what} failure`);
    }
  }
}

/**
 * A scriptable WorkerClient: records dispatches and cancels; polls answer from `answers` (keyed
 * by task id), default InProgress with the polled version.
 */
export class FakeWorkers implements WorkerClient {
  readonly nodeList: WorkerNodeInfo[];
  readonly dispatched: { nodeId: string; task: CopyTask }[] = [];
  readonly cancelled: { nodeId: string; taskId: number }[] = [];
  readonly answers = new Map<number, TaskPoll>();
  refuseDispatch = false;
  /** The message of a refused dispatch (default "node … refuses"). */
  refusal: ((nodeId: string, task: CopyTask) => string) | undefined;

  constructor(nodes: readonly WorkerNodeInfo[] = [{ nodeId: 'node-1', slots: 4, usedSlots: 0 }]) {
    this.nodeList = [...nodes];
  }

  /** Like a real worker: `usedSlots` (other work) plus the dispatched tasks it has not finished. */
  nodes(): readonly WorkerNodeInfo[] {
    return this.nodeList.map((n) => {
      const latest = new Map<number, string>();
      for (const d of this.dispatched) latest.set(d.task.id, d.nodeId);
      let ours = 0;
      for (const [taskId, nodeId] of latest) {
        const a = this.answers.get(taskId)?.state;
        if (nodeId === n.nodeId && a !== 'Completed' && a !== 'Failed' && a !== 'Unknown') ours++;
      }
      return { ...n, usedSlots: n.usedSlots + ours };
    });
  }

  async dispatch(nodeId: string, task: CopyTask): Promise<void> {
    if (this.refuseDispatch) throw quiverError('ServiceNotReady', this.refusal?.(nodeId, task) ?? `node ${nodeId} refuses`);
    this.dispatched.push({ nodeId, task });
  }

  async poll(_nodeId: string, taskId: number, version: number): Promise<TaskPoll> {
    return this.answers.get(taskId) ?? { state: 'InProgress', version };
  }

  async cancel(nodeId: string, taskId: number): Promise<void> {
    this.cancelled.push({ nodeId, taskId });
  }
}

/** What a correct worker would report for a task (fake segments: 10 rows, 9 files). */
export function resultsFor(task: CopyTask): CopiedSegment[] {
  return task.mappings.map((m) => ({ targetSegmentId: m.targetSegmentId, numRows: 10, filesCopied: 9 }));
}

/**
 * An ObjectStore whose copies wait at a gate until `open()`: lets a test stop a restore halfway.
 * `copiesStarted` counts copies that reached the gate; `maxInFlight` the most copies waiting at once.
 */
export class GatedObjectStore implements ObjectStore {
  readonly name: string;
  readonly #inner: ObjectStore;
  #gate: Promise<void> | undefined;
  #release: () => void = () => {};
  #inFlight = 0;
  copiesStarted = 0;
  maxInFlight = 0;
  /** Let this many copies through before closing (Infinity = never closed). */
  #passes: number;

  constructor(inner: ObjectStore, passes = Infinity) {
    this.name = `gated(${inner.name})`;
    this.#inner = inner;
    this.#passes = passes;
    if (passes !== Infinity) this.#close();
  }

  get inFlight(): number {
    return this.#inFlight;
  }

  /** Every waiting and future copy proceeds. */
  open(): void {
    this.#passes = Infinity;
    this.#gate = undefined;
    this.#release();
  }

  #close(): void {
    this.#gate = new Promise<void>((r) => (this.#release = r));
  }

  async copy(srcKey: string, dstKey: string): Promise<void> {
    this.copiesStarted++;
    this.#inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.#inFlight);
    try {
      if (this.#passes > 0 && this.#passes !== Infinity) this.#passes--;
      else if (this.#gate !== undefined) await this.#gate;
      await this.#inner.copy(srcKey, dstKey);
    } finally {
      this.#inFlight--;
    }
  }

  put(key: string, data: Uint8Array): Promise<void> {
    return this.#inner.put(key, data);
  }
  get(key: string): Promise<Uint8Array> {
    return this.#inner.get(key);
  }
  getRange(key: string, offset: number, length: number): Promise<Uint8Array> {
    return this.#inner.getRange(key, offset, length);
  }
  stat(key: string): Promise<ObjectInfo | undefined> {
    return this.#inner.stat(key);
  }
  list(prefix: string): Promise<ObjectInfo[]> {
    return this.#inner.list(prefix);
  }
  delete(key: string): Promise<void> {
    return this.#inner.delete(key);
  }
  deletePrefix(prefix: string): Promise<number> {
    return this.#inner.deletePrefix(prefix);
  }
  close(): Promise<void> {
    return this.#inner.close();
  }
}

/** A MetaKV that measures every txn it forwards (bytes of keys and values, op count). */
export class MeasuringKV extends MemoryMetaKV {
  readonly txns: { bytes: number; ops: number; valueMax: number }[] = [];
  override async txn(compares: readonly Compare[], success: readonly Op[], failure?: readonly Op[]): Promise<TxnResult> {
    let bytes = 0;
    let valueMax = 0;
    for (const op of success) {
      const v = op.type === 'put' ? (typeof op.value === 'string' ? Buffer.byteLength(op.value) : op.value.byteLength) : 0;
      bytes += (op.type === 'deletePrefix' ? op.prefix.length : op.key.length) + v;
      valueMax = Math.max(valueMax, v);
    }
    for (const c of compares)
      bytes += c.key.length + (c.target === 'value' ? (typeof c.value === 'string' ? Buffer.byteLength(c.value) : c.value.byteLength) : 8);
    this.txns.push({ bytes, ops: success.length, valueMax });
    return super.txn(compares, success, failure);
  }
}
