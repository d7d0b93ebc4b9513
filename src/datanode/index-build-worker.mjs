// Worker-thread entry for CPU-heavy background work (vector, scalar, binary and sparse index builds,
// compaction merges, full-text index files). Plain JS so that it
// starts without a TypeScript toolchain in the parent's module graph. Copied beside the compiled modules
// in dist/ (scripts/build.mjs), it imports them; from src/ (tests, no build) it registers tsx and imports
// the TypeScript sources.
import { existsSync } from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';

const compiled = existsSync(new URL('./index-build-task.js', import.meta.url));
if (!compiled) {
  const { register } = await import('tsx/esm/api');
  register();
}
const ext = compiled ? 'js' : 'ts';
const { runBuildTask, runColumnBuildTask, runTextBuildTask } = await import(`./index-build-task.${ext}`);
const { runMergeTask } = await import(`./merge-task.${ext}`);

// Set by the pool on close: builds stop at their next check instead of being terminated mid native call.
const cancel = new Int32Array(workerData.cancel);
const shouldStop = () => Atomics.load(cancel, 0) === 1;

parentPort.on('message', (msg) => {
  try {
    if (msg.kind === 'merge') {
      const result = runMergeTask(msg);
      const transfer = Object.values(result.encoded).map((b) => b.buffer);
      parentPort.postMessage({ id: msg.id, ok: true, result }, transfer);
    } else if (msg.kind === 'text') {
      const result = runTextBuildTask(msg);
      parentPort.postMessage({ id: msg.id, ok: true, result }, [result.bytes.buffer]);
    } else if (msg.kind === 'column') {
      const result = runColumnBuildTask(msg);
      parentPort.postMessage({ id: msg.id, ok: true, result }, [result.bytes.buffer]);
    } else {
      const result = runBuildTask(msg, shouldStop);
      parentPort.postMessage({ id: msg.id, ok: true, result });
    }
  } catch (e) {
    parentPort.postMessage({ id: msg.id, ok: false, error: String(e && e.message ? e.message : e) });
  }
});
