/**
 * The engine of the model's crash step, in its own process: `node --import tsx model-child.ts <dir>
 * <sealRows>` opens the data dir (the same stack as the harness), prints `{"ready":true}`, then runs one
 * JSON command per stdin line against collection `m` and prints one JSON answer per command once the
 * command returned (a write is in the WAL then: a kill -9 of this process cannot lose it, since the
 * bytes are in the OS's page cache). The parent kills it with SIGKILL, at a step boundary or while a
 * command is in flight. Commands:
 *   {"op":"insert"|"upsert","part":"_default","rows":[[pk, version], ...]}
 *   {"op":"delete","pks":[pk, ...]}
 *   {"op":"flush"}
 *   {"op":"snapshot","name":"s1"}   (create a snapshot of m)
 */
import { createInterface } from 'node:readline';
import { Harness } from './harness.js';

export type ChildCommand =
  | { readonly op: 'insert' | 'upsert'; readonly part: string; readonly rows: readonly (readonly [number, number])[] }
  | { readonly op: 'delete'; readonly pks: readonly number[] }
  | { readonly op: 'flush' }
  | { readonly op: 'snapshot'; readonly name: string };

const [dir, sealRows] = process.argv.slice(2);
if (!dir) throw new Error('usage: model-child.ts <dir> <sealRows>');
const h = await Harness.openDir(dir, { sealRows: Number(sealRows ?? 1000) });
const id = h.engine.catalog.resolveCollection('default', 'm').id;
const reply = (o: object) => process.stdout.write(`${JSON.stringify(o)}\n`);
reply({ ready: true });

// One command at a time, in order: the parent sends the next only after the answer (or kills).
for await (const line of createInterface({ input: process.stdin })) {
  if (line.trim() === '') continue;
  const cmd = JSON.parse(line) as ChildCommand;
  try {
    switch (cmd.op) {
      case 'insert':
      case 'upsert':
        await h.insert(
          id,
          cmd.part,
          cmd.rows.map(([pk, version]) => ({ pk: BigInt(pk), version })),
          cmd.op === 'upsert',
        );
        break;
      case 'delete':
        await h.deletePks(id, cmd.pks.map(BigInt));
        break;
      case 'flush':
        await h.engine.flushCollection(id);
        break;
      case 'snapshot':
        await h.createSnapshot('m', cmd.name);
        break;
      default: {
        const never: never = cmd;
        throw new Error(`unknown command ${JSON.stringify(never)}`);
      }
    }
    reply({ ok: true });
  } catch (e) {
    reply({ ok: false, error: (e as Error).message });
  }
}
await h.close();
