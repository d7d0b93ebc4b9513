import os from 'node:os';
import { Worker } from 'node:worker_threads';
import type { BuildTask, ColumnBuildTask, TextBuildTask } from './index-build-task.js';
import { packForTextBuild, runBuildTask, runColumnBuildTask, runTextBuildTask } from './index-build-task.js';
import type { Column } from '../schema/types.js';
import { runMergeTask, type MergeResult, type MergeTask } from './merge-task.js';

/** The kinds of work the pool runs. */
export type PoolTaskKind = 'build' | 'column' | 'merge' | 'text';

/**
 * Runs index builds off the main thread (a build of 100k vectors takes seconds and would otherwise stall
 * every request): vector indexes, scalar / binary / sparse indexes over a column, compaction merges,
 * full-text index files. One worker, tasks queued; each build spreads over `threads` native threads (usearch's
 * multi-threaded add), so one build at a time already uses every core it is given. `inline: true` builds on
 * the calling thread (tests of tiny indexes).
 */
export class IndexBuildPool {
  readonly #inline: boolean;
  readonly #threads: number;
  #worker: Worker | undefined;
  #nextId = 1;
  readonly #pending = new Map<number, { resolve: (v: never) => void; reject: (e: Error) => void }>();
  #closed = false;
  #terminated = false;
  /** Shared with the worker: 1 = stop building (checked between points). */
  readonly #cancel = new Int32Array(new SharedArrayBuffer(4));
  /** Tasks the worker thread completed, by kind (inline runs are not counted). */
  readonly #workerDone: Record<PoolTaskKind, number> = { build: 0, column: 0, merge: 0, text: 0 };

  /** `threads`: native threads per build (QUIVER_INDEX_BUILD_THREADS), default every core. */
  constructor(opts: { inline?: boolean; threads?: number | undefined } = {}) {
    this.#inline = opts.inline ?? false;
    this.#threads = opts.threads ?? os.availableParallelism();
    if (!Number.isInteger(this.#threads) || this.#threads < 1) throw new Error(`index build threads must be an integer >= 1, got ${this.#threads}`);
  }

  get threads(): number {
    return this.#threads;
  }

  /** How many tasks of each kind the worker thread completed (metrics and tests). */
  workerTasksDone(): Readonly<Record<PoolTaskKind, number>> {
    return { ...this.#workerDone };
  }

  #ensureWorker(): Worker {
    if (this.#worker) return this.#worker;
    const w = new Worker(new URL('./index-build-worker.mjs', import.meta.url), { workerData: { cancel: this.#cancel.buffer } });
    w.on('message', (msg: { id: number; ok: boolean; result?: unknown; error?: string }) => {
      const p = this.#pending.get(msg.id);
      if (!p) return;
      this.#pending.delete(msg.id);
      if (msg.ok) p.resolve(msg.result as never);
      else p.reject(new Error(msg.error));
    });
    w.on('error', (e) => this.#failAll(e));
    w.on('exit', () => {
      this.#worker = undefined;
      if (!this.#closed) this.#failAll(new Error('index build worker exited'));
    });
    w.unref();
    this.#worker = w;
    return w;
  }

  #failAll(e: Error): void {
    for (const p of this.#pending.values()) p.reject(e);
    this.#pending.clear();
  }

  async build(task: Omit<BuildTask, 'id' | 'threads'>): Promise<{ rows: number }> {
    if (this.#closed) throw new Error('index build pool is closed');
    const id = this.#nextId++;
    if (this.#inline) return runBuildTask({ ...task, id, threads: this.#threads });
    return this.#post<{ rows: number }>({ ...task, id, threads: this.#threads, kind: 'build' });
  }

  /** Builds a scalar / binary / sparse index over a column off the main thread; answers the index file's bytes. */
  async buildColumn(task: Omit<ColumnBuildTask, 'id'>): Promise<{ bytes: Uint8Array }> {
    if (this.#closed) throw new Error('index build pool is closed');
    const id = this.#nextId++;
    if (this.#inline) return runColumnBuildTask({ ...task, id });
    return this.#post<{ bytes: Uint8Array }>({ ...task, id, kind: 'column' });
  }

  /** Builds a full-text index file (text/text-index-file.ts) off the main thread; answers the file's bytes. */
  async buildText(task: Omit<TextBuildTask, 'id' | 'column'> & { column: Column }): Promise<{ bytes: Uint8Array }> {
    if (this.#closed) throw new Error('index build pool is closed');
    const id = this.#nextId++;
    // Packed inline too: one path from column to bytes whichever thread runs it.
    const packed = { ...task, id, column: packForTextBuild(task.column) };
    if (this.#inline) return runTextBuildTask(packed);
    return this.#post<{ bytes: Uint8Array }>({ ...packed, kind: 'text' });
  }

  /** Runs a compaction merge (read, filter, concatenate, encode) off the main thread. */
  async merge(task: Omit<MergeTask, 'id'>): Promise<MergeResult> {
    if (this.#closed) throw new Error('index build pool is closed');
    const id = this.#nextId++;
    if (this.#inline) return runMergeTask({ ...task, id });
    return this.#post<MergeResult>({ ...task, id, kind: 'merge' });
  }

  #post<T>(msg: { id: number; kind: PoolTaskKind } & Record<string, unknown>): Promise<T> {
    const w = this.#ensureWorker();
    return new Promise<T>((resolve, reject) => {
      const done = (v: never) => {
        this.#workerDone[msg.kind]++;
        resolve(v);
      };
      this.#pending.set(msg.id, { resolve: done, reject });
      w.postMessage(msg);
    });
  }

  /**
   * Stops accepting tasks and asks a running build to stop at its next check (it then fails): shutdown
   * does not wait tens of seconds for a build whose result nobody will commit.
   */
  cancel(): void {
    this.#closed = true;
    Atomics.store(this.#cancel, 0, 1);
  }

  /**
   * Asks the worker to stop its build at the next check and waits for it (terminating a worker while
   * hnswlib's native code runs aborts the whole process), then terminates it. The shutdown sequence
   * cancels, then drains background work, then closes the pools, so normally nothing is in flight here.
   */
  async close(): Promise<void> {
    if (this.#terminated) return;
    this.#terminated = true;
    this.cancel();
    // The worker is unref'd while idle; keep the process alive until it has answered.
    this.#worker?.ref();
    const inFlight = [...this.#pending.values()].map(
      (p) =>
        new Promise<void>((resolve) => {
          const { resolve: ok, reject: fail } = p;
          p.resolve = ((v: never) => (ok(v), resolve())) as (v: never) => void;
          p.reject = (e: Error) => (fail(e), resolve());
        }),
    );
    await Promise.all(inFlight);
    this.#failAll(new Error('index build pool closed'));
    await this.#worker?.terminate();
  }
}
