import { writeFileSync } from 'node:fs';
import { buildIndex } from '../index/index.js';
import type { IndexParams, IndexType, MetricType } from '../index/index.js';

/** A build's inputs: small and structured-clone serialisable (it crosses to a worker, or to a remote data node). */
export interface BuildTask {
  readonly id: number;
  readonly vectors: Float32Array;
  readonly dim: number;
  readonly metric: MetricType;
  readonly indexType: IndexType;
  readonly params: Omit<IndexParams, 'type' | 'metric'>;
  /** Native threads the build may use. */
  readonly threads: number;
  readonly outPath: string;
}

/** Builds an index and writes its file (the versioned container, index-file.ts) to `outPath`. Runs inside a worker thread. */
export function runBuildTask(task: BuildTask, shouldStop?: () => boolean): { rows: number } {
  const index = buildIndex(task.vectors, task.dim, task.metric, task.indexType, task.params, { threads: task.threads, shouldStop });
  try {
    writeFileSync(task.outPath, index.toBytes());
  } finally {
    index.dispose();
  }
  return { rows: task.vectors.length / task.dim };
}
