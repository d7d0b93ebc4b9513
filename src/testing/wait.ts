/**
 * Waiters for tests that watch something asynchronous happen: poll a condition, or let in-process work
 * run. They replace fixed sleeps: a test waits exactly as long as the event takes, and the timeout is only
 * the bound after which it reports a hang (it is never what the test measures).
 */

import type { MilvusClient } from '@zilliz/milvus2-sdk-node';

export interface UntilOptions {
  /** Bound on the whole wait; past it `until` throws (default 30 s). */
  readonly timeoutMs?: number;
  /** Pause between two checks (default 25 ms). */
  readonly intervalMs?: number;
  /** Names the condition in the timeout error. */
  readonly what?: string;
}

/** Polls `predicate` until it holds; throws after `timeoutMs`. */
export async function until(predicate: () => boolean | Promise<boolean>, opts: UntilOptions = {}): Promise<void> {
  const timeoutMs = opts.timeoutMs ?? 30_000;
  const intervalMs = opts.intervalMs ?? 25;
  const endMs = Date.now() + timeoutMs;
  while (!(await predicate())) {
    if (Date.now() > endMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${opts.what ?? 'a condition'}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/**
 * Lets every pending microtask and I/O callback of in-process work run, `rounds` turns of the event loop
 * (no timers involved): for code driven by kicks and promises rather than by a clock.
 */
export async function settle(rounds = 20): Promise<void> {
  for (let i = 0; i < rounds; i++) await new Promise<void>((r) => setImmediate(r));
}

type RestoreStateClient = Pick<MilvusClient, 'getRestoreSnapshotState'>;
type RestoreInfo = NonNullable<Awaited<ReturnType<MilvusClient['getRestoreSnapshotState']>>['info']>;

export interface WaitRestoreOptions {
  /** Bound on the whole wait (default 60 s). */
  readonly timeoutMs?: number;
  /** Pause between two polls (default 20 ms; a benchmark measuring the job's duration polls faster). */
  readonly intervalMs?: number;
}

/**
 * Polls a restore job through the SDK until it is Completed or Failed and returns its last info. A
 * status other than Success (unknown job, server error) throws at once instead of polling to the timeout.
 */
export async function waitRestore(client: RestoreStateClient, jobId: string, opts: WaitRestoreOptions = {}): Promise<RestoreInfo> {
  const timeoutMs = opts.timeoutMs ?? 60_000;
  const endMs = Date.now() + timeoutMs;
  for (;;) {
    const s = await client.getRestoreSnapshotState({ job_id: jobId });
    if (s.status.error_code !== 'Success') throw new Error(`getRestoreSnapshotState(${jobId}): ${s.status.error_code} ${s.status.reason}`);
    const info = s.info;
    if (info?.state === 'RestoreSnapshotCompleted' || info?.state === 'RestoreSnapshotFailed') return info;
    if (Date.now() > endMs) throw new Error(`restore job ${jobId} still ${info?.state} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, opts.intervalMs ?? 20));
  }
}
