/**
 * Executes one copy-segment task on a worker. The task holds id mappings only; the executor reads the
 * source segments' file lists from the snapshot's manifests itself (`SourceSegmentReader`), copies every
 * file to its target key (`copyPlanOf`, shared with the coordinator so both agree on every key) with
 * `ObjectStore.copy` (a hardlink on a local disk, a server-side copy on S3), and reports per segment its
 * row count and how many files it copied (never a file list: publish re-derives the lists).
 *
 * Limits: at most `concurrency` copies in flight; a failed copy is retried up to `retriesMax` times
 * (immediately: S3 clients back off on their own, and a local copy that failed twice in a row is not
 * transient). Errors marked non-retriable (a missing source file) fail at once. On the first copy that
 * fails for good no new copy starts, the ones in flight are awaited, and the task fails with a reason
 * naming the key: when this function returns, the task no longer writes anything, which is what lets
 * rollback delete the target keys right after.
 *
 * Re-running a task is safe: target keys are deterministic and `copy` replaces the target with the
 * same bytes.
 */

import { isQuiverError } from '../../common/errors.js';
import { copyPlanOf, resolveMappings, resolvedMappingsProblem, type CopyStep } from '../../storage/snapshot-format/segment-rewrite.js';
import type { CopiedSegment, CopyTask, SourceSegmentReader } from '../../coord/copy/types.js';
import type { ObjectStore } from '../../storage/object-store.js';

export const COPY_CONCURRENCY_DEFAULT = 16;
export const COPY_RETRIES_MAX_DEFAULT = 3;

export interface CopyExecutionOptions {
  readonly concurrency?: number | undefined;
  readonly retriesMax?: number | undefined;
  /** Aborting stops new copies; the returned promise still waits for the ones in flight. */
  readonly signal?: AbortSignal | undefined;
}

export type CopyExecutionResult =
  | { readonly ok: true; readonly results: CopiedSegment[]; readonly filesCopied: number }
  | { readonly ok: false; readonly reason: string; readonly aborted: boolean };

export async function executeCopy(
  store: ObjectStore,
  sources: SourceSegmentReader,
  task: Pick<CopyTask, 'snapshot' | 'targetCollectionId' | 'mappings'>,
  options: CopyExecutionOptions = {},
): Promise<CopyExecutionResult> {
  const concurrency = options.concurrency ?? COPY_CONCURRENCY_DEFAULT;
  const retriesMax = options.retriesMax ?? COPY_RETRIES_MAX_DEFAULT;
  if (!Number.isSafeInteger(concurrency) || concurrency <= 0) throw new Error(`assertion failed: copy concurrency ${concurrency} must be > 0`);
  if (!Number.isSafeInteger(retriesMax) || retriesMax < 0) throw new Error(`assertion failed: copy retries ${retriesMax} must be >= 0`);
  const signal = options.signal;

  let plan: CopyStep[];
  let results: CopiedSegment[];
  try {
    const records = await sources.read(
      task.snapshot,
      task.mappings.map((m) => m.sourceSegmentId),
    );
    const resolved = resolveMappings(task.mappings, task.targetCollectionId, records);
    const problem = resolvedMappingsProblem(resolved);
    if (problem !== undefined) return { ok: false, reason: problem, aborted: false };
    const plans = resolved.map(copyPlanOf);
    // A staged external snapshot keeps its files at their original keys under its prefix.
    const from = task.snapshot.sourcePrefix ?? '';
    plan = from === '' ? plans.flat() : plans.flat().map((s) => ({ src: from + s.src, dst: s.dst }));
    results = resolved.map((m, i) => ({ targetSegmentId: m.targetSegmentId, numRows: m.source.numRows, filesCopied: plans[i]!.length }));
  } catch (e) {
    return { ok: false, reason: message(e), aborted: false };
  }

  let next = 0;
  let failure: string | undefined;
  const stopped = (): boolean => failure !== undefined || signal?.aborted === true;
  const runner = async (): Promise<void> => {
    while (!stopped() && next < plan.length) {
      const step = plan[next++]!;
      const err = await copyWithRetries(store, step, retriesMax, stopped);
      if (err !== undefined && failure === undefined) failure = err;
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, plan.length) }, runner));

  if (failure !== undefined) return { ok: false, reason: failure, aborted: false };
  if (signal?.aborted === true) return { ok: false, reason: 'cancelled', aborted: true };
  return { ok: true, results, filesCopied: plan.length };
}

/** undefined on success, else the failure reason naming the keys. */
async function copyWithRetries(store: ObjectStore, { src, dst }: CopyStep, retriesMax: number, stopped: () => boolean): Promise<string | undefined> {
  for (let attempt = 1; ; attempt++) {
    try {
      await store.copy(src, dst);
      return undefined;
    } catch (e) {
      const permanent = isQuiverError(e) && !e.retriable;
      if (permanent || attempt > retriesMax || stopped()) {
        const tries = attempt === 1 ? '1 attempt' : `${attempt} attempts`;
        return `copy ${JSON.stringify(src)} → ${JSON.stringify(dst)} failed after ${tries}: ${message(e)}`;
      }
    }
  }
}

function message(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
