import { spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { ChildCommand } from './model-child.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const READY_TIMEOUT_MS = 60_000;

export interface ModelChild {
  /** Sends a command without waiting (the crash step kills while it runs). */
  send(cmd: ChildCommand): void;
  /** Sends a command and resolves with the child's answer. */
  call(cmd: ChildCommand): Promise<unknown>;
  /** SIGKILL; resolves once the process is gone. Idempotent. */
  kill9(): Promise<void>;
}

/** Starts model-child.ts on `dir` and resolves once it has opened the dir and printed ready. */
export async function startChild(dir: string, sealRows: number): Promise<ModelChild> {
  const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'test/model/model-child.ts'), dir, String(sealRows)], {
    cwd: ROOT,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  // A test that fails must not leave the child running on a dir about to be removed.
  const killOnExit = () => child.kill('SIGKILL');
  process.once('exit', killOnExit);
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const answers: ((line: unknown) => void)[] = [];
  let ready: (() => void) | undefined;
  createInterface({ input: child.stdout }).on('line', (line) => {
    const msg = JSON.parse(line) as { ready?: boolean };
    if (msg.ready) ready?.();
    else answers.shift()?.(msg);
  });
  const kill9 = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
    process.off('exit', killOnExit);
  };
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`model child not ready within ${READY_TIMEOUT_MS} ms:\n${stderr}`)), READY_TIMEOUT_MS);
      ready = () => {
        clearTimeout(timer);
        resolve();
      };
      void exited.then(() => {
        clearTimeout(timer);
        reject(new Error(`model child exited before ready:\n${stderr}`));
      });
    });
  } catch (e) {
    await kill9();
    throw e;
  }
  const send = (cmd: ChildCommand) => {
    child.stdin.write(`${JSON.stringify(cmd)}\n`);
  };
  return {
    send,
    call: (cmd) =>
      new Promise((resolve, reject) => {
        answers.push(resolve);
        void exited.then(() => reject(new Error(`model child exited during ${JSON.stringify(cmd)}:\n${stderr}`)));
        send(cmd);
      }),
    kill9,
  };
}
