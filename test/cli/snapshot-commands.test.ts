import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DataType } from '@zilliz/milvus2-sdk-node';
import { SnapshotCommands, type OutputSink, type SnapshotClient } from '../../src/cli/snapshot-commands.js';
import { withSnapshotCommands } from '../../src/cli/connect.js';
import { startTestServer, vectors, type TestServer } from '../helpers.js';

interface Captured extends OutputSink {
  readonly stdout: string[];
  readonly stderr: string[];
}

function capture(tty?: NodeJS.WritableStream): Captured {
  const stdout: string[] = [];
  const stderr: string[] = [];
  return { stdout, stderr, out: (l) => stdout.push(l), err: (l) => stderr.push(l), tty };
}

describe('quiver snapshot commands against a real server', () => {
  let t: TestServer;
  const vs = vectors(120, 4, 3);
  const commands = (sink: OutputSink, client: SnapshotClient = t.client) => new SnapshotCommands({ client, sink, pollIntervalMs: 20 });

  beforeAll(async () => {
    t = await startTestServer({ autoCompaction: false });
    await t.client.createCollection({
      collection_name: 'docs',
      fields: [
        { name: 'id', data_type: DataType.Int64, is_primary_key: true },
        { name: 'v', data_type: DataType.FloatVector, dim: 4 },
      ],
    });
    await t.client.insert({ collection_name: 'docs', data: vs.map((v, i) => ({ id: i, v })) });
  });
  afterAll(async () => {
    await t?.close();
  });

  it('create, list (text and JSON), describe (text and JSON), drop', async () => {
    // Its own collection, so the exact list does not depend on the other tests.
    await t.client.createCollection({
      collection_name: 'listed',
      fields: [
        { name: 'id', data_type: DataType.Int64, is_primary_key: true },
        { name: 'v', data_type: DataType.FloatVector, dim: 4 },
      ],
    });
    const s = capture();
    expect(await commands(s).create({ db: 'default', collection: 'listed', name: 'first', description: 'before import', protectSeconds: 60 })).toBe(0);
    expect(await commands(s).create({ db: 'default', collection: 'listed', name: 'second' })).toBe(0);
    expect(s.stdout).toEqual(['created snapshot first of collection listed', 'created snapshot second of collection listed']);
    expect(s.stderr).toEqual([]);

    const l = capture();
    expect(await commands(l).list({ db: 'default', collection: 'listed' })).toBe(0);
    expect(await commands(l).list({ db: 'default', collection: 'listed', json: true })).toBe(0);
    expect(l.stdout).toEqual(['first', 'second', '["first","second"]']);

    const d = capture();
    expect(await commands(d).describe({ db: 'default', collection: 'listed', name: 'first' })).toBe(0);
    const text = d.stdout.join('\n');
    expect(text).toMatch(/^name:\s+first$/m);
    expect(text).toMatch(/^description:\s+before import$/m);
    expect(text).toMatch(/^collection:\s+default\.listed$/m);
    expect(text).toMatch(/^partitions:\s+_default$/m);
    expect(text).toMatch(/^created:\s+\d{4}-\d\d-\d\dT.*Z \(ts \d+\)$/m);
    expect(text).toMatch(/^location:\s+snapshots\/\d+\/metadata\/\d+\.json$/m);
    const dj = capture();
    expect(await commands(dj).describe({ db: 'default', collection: 'listed', name: 'first', json: true })).toBe(0);
    const obj = JSON.parse(dj.stdout[0]!) as Record<string, unknown>;
    expect(obj).toMatchObject({
      name: 'first',
      description: 'before import',
      collection_name: 'listed',
      partition_names: ['_default'],
      db_name: 'default',
    });
    // The hybrid timestamp's physical part is the wall clock of the create.
    expect(Math.abs(Date.parse(String(obj['created_at'])) - Date.now())).toBeLessThan(60_000);

    const x = capture();
    expect(await commands(x).drop({ db: 'default', collection: 'listed', name: 'second' })).toBe(0);
    expect(x.stdout).toEqual(['dropped snapshot second of collection listed']);
    // Dropping again succeeds (idempotent) but does not claim a drop.
    const again = capture();
    expect(await commands(again).drop({ db: 'default', collection: 'listed', name: 'second' })).toBe(0);
    expect(again.stdout).toEqual(['snapshot second of collection listed did not exist; nothing dropped']);
    const l2 = capture();
    await commands(l2).list({ db: 'default', collection: 'listed' });
    expect(l2.stdout).toEqual(['first']);
  });

  it('failures print "error: <reason> (code <code>)" and exit 1', async () => {
    const s = capture();
    expect(await commands(s).describe({ db: 'default', collection: 'docs', name: 'ghost' })).toBe(1);
    expect(s.stdout).toEqual([]);
    expect(s.stderr).toHaveLength(1);
    expect(s.stderr[0]).toMatch(/^error: .*snapshot not found.*ghost.* \(code 2600\)$/);

    const dup = capture();
    await commands(dup).create({ db: 'default', collection: 'docs', name: 'dup' });
    expect(await commands(dup).create({ db: 'default', collection: 'docs', name: 'dup' })).toBe(1);
    expect(dup.stderr).toEqual([expect.stringMatching(/^error: snapshot dup already exists in collection docs \(code 2602\)$/)]);

    const bad = capture();
    expect(await commands(bad).create({ db: 'default', collection: 'docs', name: 'p', protectSeconds: 8 * 24 * 3600 })).toBe(1);
    expect(bad.stderr[0]).toMatch(/^error: compaction_protection_seconds 691200 is out of range.* \(code 1100\)$/);

    const missing = capture();
    expect(await commands(missing).list({ db: 'default', collection: 'nope' })).toBe(1);
    expect(missing.stderr[0]).toMatch(/^error: .*nope.* \(code 100\)$/);

    const nodb = capture();
    expect(await commands(nodb).list({ db: 'nodb', collection: 'docs' })).toBe(1);
    expect(nodb.stderr[0]).toMatch(/^error: .*nodb.*\(code 800\)$/);
  });

  it('restore waits with progress lines until Completed; the restored collection has the rows', async () => {
    expect((await t.client.createSnapshot({ collection_name: 'docs', snapshot_name: 'for_restore' })).error_code).toBe('Success');
    const s = capture();
    const code = await commands(s).restore({ db: 'default', collection: 'docs', name: 'for_restore', targetCollection: 'docs_restored', wait: true });
    expect(s.stderr).toEqual([]);
    expect(code).toBe(0);
    const jobId = s.stdout[0]!;
    expect(jobId).toMatch(/^\d+$/);
    const progress = s.stdout.filter((l) => l.startsWith('progress '));
    expect(progress.length).toBeGreaterThan(0);
    for (const l of progress) expect(l).toMatch(/^progress \d{1,3}% (Pending|Executing|Completed)$/);
    expect(progress.at(-1)).toBe('progress 100% Completed');
    expect(s.stdout.at(-1)).toMatch(/^restored snapshot for_restore of default\.docs into default\.docs_restored in \d+ ms$/);

    await t.client.loadCollectionSync({ collection_name: 'docs_restored' });
    expect((await t.client.count({ collection_name: 'docs_restored' })).data).toBe(vs.length);

    const j = capture();
    expect(await commands(j).jobs({ collection: 'docs_restored' })).toBe(0);
    expect(j.stdout[0]).toMatch(/^JOB\s+STATE\s+PROGRESS\s+SNAPSHOT\s+TARGET\s+TIME\s+REASON$/);
    expect(j.stdout).toHaveLength(2);
    expect(j.stdout[1]).toMatch(new RegExp(`^${jobId}\\s+Completed\\s+100%\\s+for_restore\\s+default\\.docs_restored\\s+\\d+ms$`));
    const jj = capture();
    expect(await commands(jj).jobs({ collection: 'docs_restored', json: true })).toBe(0);
    expect(JSON.parse(jj.stdout[0]!)).toEqual([
      expect.objectContaining({ job_id: jobId, state: 'Completed', progress: 100, collection_name: 'docs_restored' }),
    ]);
    const none = capture();
    expect(await commands(none).jobs({ collection: 'no_such_target' })).toBe(0);
    expect(none.stdout).toEqual([]);
  });

  it('restore into an existing collection fails with the reason; --no-wait only prints the job id', async () => {
    expect((await t.client.createSnapshot({ collection_name: 'docs', snapshot_name: 'for_nowait' })).error_code).toBe('Success');
    const s = capture();
    expect(await commands(s).restore({ db: 'default', collection: 'docs', name: 'for_nowait', targetCollection: 'docs', wait: true })).toBe(1);
    expect(s.stdout).toEqual([]);
    expect(s.stderr).toEqual([expect.stringMatching(/^error: collection already exists: docs in database default.* \(code 1100\)$/)]);

    const nw = capture();
    expect(await commands(nw).restore({ db: 'default', collection: 'docs', name: 'for_nowait', targetCollection: 'docs_nowait', wait: false })).toBe(0);
    expect(nw.stdout).toHaveLength(1);
    expect(nw.stdout[0]).toMatch(/^\d+$/);
    const info = await t.server.restores.waitFor(Number(nw.stdout[0]));
    expect(info.state).toBe('Completed');
  });

  it('a failed job prints its reason and exits 1 (stubbed job state)', async () => {
    const states = [
      { state: 'RestoreSnapshotPending', progress: 0 },
      { state: 'RestoreSnapshotExecuting', progress: 40 },
      { state: 'RestoreSnapshotFailed', progress: 40, reason: 'task 7 failed: disk full' },
    ];
    const ok = { error_code: 'Success', code: 0, reason: '' };
    let polls = 0;
    const sleeps: number[] = [];
    const stub = {
      restoreSnapshot: async () => ({ status: ok, job_id: '42' }),
      getRestoreSnapshotState: async () => ({
        status: ok,
        info: { job_id: '42', time_cost: '5', reason: '', ...states[Math.min(polls++, states.length - 1)]! },
      }),
    } as unknown as SnapshotClient;
    const s = capture();
    const cmds = new SnapshotCommands({ client: stub, sink: s, sleep: async (ms) => void sleeps.push(ms) });
    expect(await cmds.restore({ db: 'default', collection: 'a', name: 's', targetCollection: 'b', wait: true })).toBe(1);
    expect(s.stdout).toEqual(['42', 'progress 0% Pending', 'progress 40% Executing', 'progress 40% Failed']);
    expect(s.stderr).toEqual(['error: restore job 42 failed: task 7 failed: disk full']);
    // Polled every 200 ms by default.
    expect(sleeps).toEqual([200, 200]);
  });

  it('on a TTY the restore progress is a bar drawn on that stream', async () => {
    let drawn = '';
    const tty = Object.assign(
      new Writable({
        write(chunk: Buffer, _enc, cb) {
          drawn += chunk.toString();
          cb();
        },
      }),
      { isTTY: true, columns: 120 },
    );
    expect((await t.client.createSnapshot({ collection_name: 'docs', snapshot_name: 'for_tty' })).error_code).toBe('Success');
    const s = capture(tty);
    const code = await commands(s).restore({ db: 'default', collection: 'docs', name: 'for_tty', targetCollection: 'docs_tty', wait: true });
    expect(code).toBe(0);
    expect(s.stdout.filter((l) => l.startsWith('progress '))).toEqual([]);
    expect(drawn).toContain('100% | Completed');
    expect(drawn).toContain('restore job');
  });

  it('an unreachable server is reported, not thrown', async () => {
    const s = capture();
    expect(await withSnapshotCommands('127.0.0.1:1', s, (c) => c.list({ db: 'default', collection: 'docs' }))).toBe(1);
    expect(s.stderr).toHaveLength(1);
    expect(s.stderr[0]).toMatch(/^error: cannot connect to Quiver at 127\.0\.0\.1:1: .*UNAVAILABLE/);
  });

  it('withSnapshotCommands runs a command over its own connection', async () => {
    expect((await t.client.createSnapshot({ collection_name: 'docs', snapshot_name: 'for_list' })).error_code).toBe('Success');
    const s = capture();
    expect(await withSnapshotCommands(`127.0.0.1:${t.server.port}`, s, (c) => c.list({ db: 'default', collection: 'docs' }))).toBe(0);
    expect(s.stdout).toContain('for_list');
  });
});
