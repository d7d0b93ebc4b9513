/**
 * SHA-256 of whole files on a few worker threads, so that hashing (the bound of a first export, ~1.6 GB/s
 * per core) does not run on the event loop. Workers start on first use, are unref'd (they never keep the
 * process alive while idle) and take one file at a time each; calls beyond that wait in a queue. `close()` ends them.
 */

import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';

export interface FileHash {
  readonly sha256: string;
  readonly size: number;
}

interface Job {
  readonly id: number;
  readonly path: string;
  readonly resolve: (h: FileHash) => void;
  readonly reject: (e: Error) => void;
}

interface Slot {
  readonly worker: Worker;
  job: Job | undefined;
}

type Answer = { id: number; ok: true; sha256: string; size: number } | { id: number; ok: false; error: string; code?: string };

export class FileHashPool {
  readonly #size: number;
  readonly #slots: Slot[] = [];
  readonly #queue: Job[] = [];
  #nextId = 1;
  #closed = false;

  /** `threads`: workers at most (default 2, and never more than the cores). */
  constructor(opts: { threads?: number } = {}) {
    this.#size = Math.max(1, Math.min(opts.threads ?? 2, availableParallelism()));
  }

  hash(path: string): Promise<FileHash> {
    if (this.#closed) return Promise.reject(new Error('file hash pool is closed'));
    return new Promise<FileHash>((resolve, reject) => {
      this.#queue.push({ id: this.#nextId++, path, resolve, reject });
      this.#pump();
    });
  }

  async close(): Promise<void> {
    this.#closed = true;
    const err = new Error('file hash pool is closed');
    for (const j of this.#queue.splice(0)) j.reject(err);
    await Promise.all(this.#slots.splice(0).map((s) => s.worker.terminate()));
  }

  #pump(): void {
    while (this.#queue.length > 0) {
      let slot = this.#slots.find((s) => s.job === undefined);
      if (slot === undefined && this.#slots.length < this.#size) slot = this.#spawn();
      if (slot === undefined) return;
      const job = this.#queue.shift()!;
      slot.job = job;
      slot.worker.ref(); // a pending hash keeps the process up; an idle worker does not
      slot.worker.postMessage({ id: job.id, path: job.path });
    }
  }

  #spawn(): Slot {
    const worker = new Worker(new URL('./file-hash-worker.mjs', import.meta.url));
    const slot: Slot = { worker, job: undefined };
    worker.on('message', (m: Answer) => {
      const job = slot.job;
      if (job === undefined || job.id !== m.id) return;
      slot.job = undefined;
      worker.unref();
      if (m.ok) job.resolve({ sha256: m.sha256, size: m.size });
      else job.reject(Object.assign(new Error(m.error), m.code === undefined ? {} : { code: m.code }));
      this.#pump();
    });
    const fail = (e: Error): void => {
      const i = this.#slots.indexOf(slot);
      if (i >= 0) this.#slots.splice(i, 1);
      slot.job?.reject(e);
      slot.job = undefined;
      if (!this.#closed) this.#pump();
    };
    worker.on('error', fail);
    worker.on('exit', (code) => fail(new Error(`file hash worker exited (code ${code})`)));
    worker.unref();
    this.#slots.push(slot);
    return slot;
  }
}
