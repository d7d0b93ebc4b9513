// Worker-thread entry for CPU-heavy background work (HNSW builds, compaction merges). Plain JS so that it
// starts without a TypeScript toolchain in the parent's module graph; it registers tsx and runs the
// TypeScript task modules.
import { parentPort, workerData } from 'node:worker_threads';
import { register } from 'tsx/esm/api';

register();
const { runBuildTask } = await import('./index-build-task.ts');
const { runMergeTask } = await import('./merge-task.ts');

// Set by the pool on close: builds stop at their next check instead of being terminated mid native call.
const cancel = new Int32Array(workerData.cancel);
const shouldStop = () => Atomics.load(cancel, 0) === 1;

parentPort.on('message', (msg) => {
  try {
    if (msg.kind === 'merge') {
      const result = runMergeTask(msg);
      const transfer = Object.values(result.encoded).map((b) => b.buffer);
      parentPort.postMessage({ id: msg.id, ok: true, result }, transfer);
    } else {
      const result = runBuildTask(msg, shouldStop);
      parentPort.postMessage({ id: msg.id, ok: true, result });
    }
  } catch (e) {
    parentPort.postMessage({ id: msg.id, ok: false, error: String(e && e.message ? e.message : e) });
  }
});
