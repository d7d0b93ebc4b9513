import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DataType, ErrorCode } from '@zilliz/milvus2-sdk-node';
import { httpInsightsClient, SnapshotInsightCommands } from '../src/cli/snapshot-insight-commands.js';
import type { OutputSink } from '../src/cli/snapshot-commands.js';
import { startTestServer, until, vectors, type TestServer } from './helpers.js';

function capture(): OutputSink & { stdout: string[]; stderr: string[] } {
  const stdout: string[] = [];
  const stderr: string[] = [];
  return { stdout, stderr, out: (l) => stdout.push(l), err: (l) => stderr.push(l) };
}

describe('snapshot diff and byte accounting through the SDK, the HTTP port and the CLI', () => {
  let t: TestServer;
  const vs = vectors(300, 4, 5);
  const cli = (sink: OutputSink) => new SnapshotInsightCommands({ client: t.client, http: httpInsightsClient(`127.0.0.1:${t.server.metricsPort}`), sink });
  const snap = async (name: string) =>
    expect((await t.client.createSnapshot({ collection_name: 'docs', snapshot_name: name })).error_code).toBe(ErrorCode.SUCCESS);
  const diff = async (from: string, to: string) => {
    const s = capture();
    expect(await cli(s).diff({ db: 'default', collection: 'docs', from, to, jsonl: true })).toBe(0);
    return { changes: s.stdout.map((l) => JSON.parse(l) as { op: string; pk: number }), summary: s.stderr[0]! };
  };

  beforeAll(async () => {
    t = await startTestServer({ autoCompaction: false, gcDroppedGraceMs: 0, gcIntervalMs: 3_600_000 });
    await t.client.createCollection({
      collection_name: 'docs',
      fields: [
        { name: 'id', data_type: DataType.Int64, is_primary_key: true },
        { name: 'n', data_type: DataType.Int64 },
        { name: 'v', data_type: DataType.FloatVector, dim: 4 },
      ],
    });
    for (let b = 0; b < 3; b++) {
      await t.client.insert({ collection_name: 'docs', data: vs.slice(b * 100, b * 100 + 100).map((v, i) => ({ id: b * 100 + i, n: 0, v })) });
      await t.client.flushSync({ collection_names: ['docs'] });
    }
  });
  afterAll(async () => {
    await t?.close();
  });

  it('pks inserted, deleted and updated between two snapshots and against now; a compaction is no change', async () => {
    await snap('a');
    await t.client.delete({ collection_name: 'docs', ids: [5, 150] });
    await t.client.upsert({ collection_name: 'docs', data: [{ id: 7, n: 1, v: vs[7]! }] });
    await t.client.insert({ collection_name: 'docs', data: [{ id: 1000, n: 0, v: vs[0]! }] });
    await snap('b');
    const ab = await diff('a', 'b');
    expect(ab.changes).toEqual([
      { op: 'delete', pk: 5 },
      { op: 'update', pk: 7 },
      { op: 'delete', pk: 150 },
      { op: 'insert', pk: 1000 },
    ]);
    expect(ab.summary).toMatch(/^a → b: 1 inserted, 2 deleted, 1 updated \(1 segments and 2 deltalogs read, 1 segments unchanged\)$/);
    // The reverse direction mirrors it.
    expect((await diff('b', 'a')).changes.map((c) => c.op)).toEqual(['insert', 'update', 'insert', 'delete']);

    // Unflushed writes are part of "now" (the diff flushes first).
    await t.client.delete({ collection_name: 'docs', ids: [1000] });
    expect((await diff('b', 'now')).changes).toEqual([{ op: 'delete', pk: 1000 }]);

    // Compaction rewrites every segment with the same rows: no change between b+delete and now.
    const res = await t.client.compact({ collection_name: 'docs' });
    await until(async () => String((await t.client.getCompactionState({ compactionID: res.compactionID })).state) === 'Completed');
    await snap('c');
    expect((await diff('c', 'now')).changes).toEqual([]);
    expect((await diff('b', 'c')).changes).toEqual([{ op: 'delete', pk: 1000 }]);

    // Counts only, on stdout.
    const s = capture();
    expect(await cli(s).diff({ db: 'default', collection: 'docs', from: 'a', to: 'c' })).toBe(0);
    expect(s.stdout).toEqual([expect.stringMatching(/^a → c: 0 inserted, 2 deleted, 1 updated/)]);
  });

  it('a missing snapshot or collection answers the Milvus not-found codes', async () => {
    const s = capture();
    expect(await cli(s).diff({ db: 'default', collection: 'docs', from: 'nope', to: 'now' })).toBe(1);
    expect(s.stderr).toEqual([expect.stringMatching(/snapshot not found.*\(code 2600\)$/)]);
    const m = capture();
    expect(await cli(m).diff({ db: 'default', collection: 'missing', from: 'a', to: 'now' })).toBe(1);
    expect(m.stderr).toEqual([expect.stringMatching(/\(code 100\)$/)]);
  });

  it('bytes each snapshot keeps alive match what GC frees once it is dropped', async () => {
    await t.server.gc.tick(); // whatever no snapshot holds goes first
    const usage = async () => httpInsightsClient(`127.0.0.1:${t.server.metricsPort}`).usage('default', 'docs');
    const u = await usage();
    const names = u.snapshots.map((s) => s.name);
    expect(names).toEqual(['a', 'b', 'c']);
    // c was taken after the compaction: it shares every file with the live collection.
    expect(u.snapshots[2]!.exclusive_bytes).toBe(0);
    expect(u.snapshots[0]!.referenced_bytes).toBeGreaterThan(0);
    expect(u.snapshot_only_bytes).toBeGreaterThan(0);
    let freed = 0;
    for (const name of ['a', 'b', 'c']) {
      const before = (await usage()).snapshots.find((s) => s.name === name)!;
      await t.client.dropSnapshot({ collection_name: 'docs', snapshot_name: name });
      const report = await t.server.gc.tick();
      expect(report.bytesDeleted).toBe(before.exclusive_bytes);
      freed += report.bytesDeleted;
    }
    expect(freed).toBe(u.snapshot_only_bytes);
    expect((await usage()).snapshot_only_bytes).toBe(0);

    // The CLI table and the Prometheus gauges.
    await snap('d');
    const s = capture();
    expect(await cli(s).usage({ db: 'default', collection: 'docs' })).toBe(0);
    expect(s.stdout[0]).toMatch(/^NAME\s+CREATED\s+REFERENCED\s+EXCLUSIVE$/);
    expect(s.stdout[1]).toMatch(/^d\s+\S+Z\s+[\d.]+ KiB\s+0 B$/);
    expect(s.stdout[2]).toMatch(/^kept alive by snapshots only: 0 B \(live collection: [\d.]+ KiB\)$/);
    const metrics = await (await fetch(`http://127.0.0.1:${t.server.metricsPort}/metrics`)).text();
    expect(metrics).toMatch(/quiver_snapshot_bytes_exclusive\{db="default",collection="docs",collection_id="\d+",snapshot="d"\} 0/);
    expect(metrics).toMatch(/quiver_collection_snapshot_only_bytes\{db="default",collection="docs",collection_id="\d+"\} 0/);
  });
});
