import { Worker } from 'node:worker_threads';
import type { BuildTask } from './index-build-task.js';
import { runBuildTask } from './index-build-task.js';

/**
 * Runs HNSW builds off the main thread (a build of 100k vectors takes tens of seconds and would otherwise
 * stall every request). One worker, tasks queued: on a 2-core machine one build at a time leaves a core
 * for serving. `inline: true` builds on the calling thread (tests of tiny indexes).
 */
export class IndexBuildPool {
  readonly #inline: boolean;
  #worker: Worker | undefined;
  #nextId = 1;
  readonly #pending = new Map<number, { resolve: (v: { rows: number }) => void; reject: (e: Error) => void }>();
  #closed = false;

  constructor(opts: { inline?: boolean } = {}) {
    this.#inline = opts.inline ?? false;
  }

  #ensureWorker(): Worker {
    if (this.#worker) return this.#worker;
    const w = new Worker(new URL('./index-build-worker.mjs', import.meta.url));
    w.on('message', (msg: { id: number; ok: boolean; result?: { rows: number }; error?: string }) => {
      const p = this.#pending.get(msg.id);
      if (!p) return;
      this.#pending.delete(msg.id);
      if (msg.ok) p.resolve(msg.result!);
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

  async build(task: Omit<BuildTask, 'id'>): Promise<{ rows: number }> {
    if (this.#closed) throw new Error('index build pool is closed');
    const id = this.#nextId++;
    if (this.#inline) return runBuildTask({ ...task, id });
    const w = this.#ensureWorker();
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      w.postMessage({ ...task, id });
    });
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#failAll(new Error('index build pool closed'));
    await this.#worker?.terminate();
  }
}
