// Worker-thread entry for index builds. Plain JS so that it starts without a TypeScript toolchain in the
// parent's module graph; it registers tsx and runs the TypeScript task module.
import { parentPort } from 'node:worker_threads';
import { register } from 'tsx/esm/api';

register();
const { runBuildTask } = await import('./index-build-task.ts');

parentPort.on('message', (msg) => {
  try {
    const result = runBuildTask(msg);
    parentPort.postMessage({ id: msg.id, ok: true, result });
  } catch (e) {
    parentPort.postMessage({ id: msg.id, ok: false, error: String(e && e.message ? e.message : e) });
  }
});
