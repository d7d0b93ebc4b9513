import { HnswIndex } from '../index/index.js';
import type { MetricType } from '../index/index.js';

export interface BuildTask {
  readonly id: number;
  readonly vectors: Float32Array;
  readonly dim: number;
  readonly metric: MetricType;
  readonly M: number;
  readonly efConstruction: number;
  readonly outPath: string;
}

/** Builds an HNSW index and writes it in hnswlib's file format to `outPath`. Runs inside a worker thread. */
export function runBuildTask(task: BuildTask, shouldStop?: () => boolean): { rows: number } {
  const index = HnswIndex.build(task.vectors, task.dim, task.metric, { M: task.M, efConstruction: task.efConstruction }, { shouldStop });
  try {
    index.save(task.outPath);
  } finally {
    index.dispose();
  }
  return { rows: task.vectors.length / task.dim };
}
