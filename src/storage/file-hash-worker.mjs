// Worker-thread entry of FileHashPool (file-hash-pool.ts): streams a file through SHA-256 with
// synchronous reads (this thread has nothing else to do) and answers its hash and size. Plain JS with
// no project imports, so it starts the same from src/ (tests) and from dist/ (copied by scripts/build.mjs).
import { Buffer } from 'node:buffer';
import { createHash } from 'node:crypto';
import { closeSync, openSync, readSync } from 'node:fs';
import { parentPort } from 'node:worker_threads';

const CHUNK = 4 * 1024 * 1024;
const buf = Buffer.allocUnsafe(CHUNK);

parentPort.on('message', (msg) => {
  let fd;
  try {
    fd = openSync(msg.path, 'r');
    const h = createHash('sha256');
    let size = 0;
    for (;;) {
      const n = readSync(fd, buf, 0, CHUNK, null);
      if (n === 0) break;
      h.update(n === CHUNK ? buf : buf.subarray(0, n));
      size += n;
    }
    parentPort.postMessage({ id: msg.id, ok: true, sha256: h.digest('hex'), size });
  } catch (e) {
    parentPort.postMessage({ id: msg.id, ok: false, error: String(e && e.message ? e.message : e), code: e && e.code });
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
});
