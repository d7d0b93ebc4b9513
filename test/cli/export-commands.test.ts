import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DataType, ErrorCode } from '@zilliz/milvus2-sdk-node';
import { withSnapshotCommands } from '../../src/cli/connect.js';
import { bytesAndEta, type OutputSink } from '../../src/cli/snapshot-commands.js';
import { startTestServer, vectors, type TestServer } from '../helpers.js';

/**
 * `quiver snapshot export|import` against a real server (default export root `<data-dir>/exports`):
 * byte progress with an ETA while the server reads (each file slowed by the test-only fault delay, so
 * the command polls at least once), the bundle URI and the job id on stdout, errors on stderr.
 */

function capture(): OutputSink & { stdout: string[]; stderr: string[] } {
  const stdout: string[] = [];
  const stderr: string[] = [];
  return { stdout, stderr, out: (l) => stdout.push(l), err: (l) => stderr.push(l) };
}

describe('quiver snapshot export and import', () => {
  let t: TestServer;
  const cli = (sink: OutputSink, run: Parameters<typeof withSnapshotCommands>[2]) =>
    withSnapshotCommands(`127.0.0.1:${t.server.port}`, sink, run, `127.0.0.1:${t.server.metricsPort}`);

  beforeAll(async () => {
    t = await startTestServer({ autoCompaction: false, faultExportFileDelayMs: 400, copyCheckIntervalMs: 50 });
    // Many fields: more files than the export reads at once, so it takes several delayed rounds.
    const extra = Array.from({ length: 20 }, (_, i) => `f${i}`);
    await t.client.createCollection({
      collection_name: 'docs',
      fields: [
        { name: 'id', data_type: DataType.Int64, is_primary_key: true },
        { name: 'v', data_type: DataType.FloatVector, dim: 4 },
        ...extra.map((name) => ({ name, data_type: DataType.Int64 })),
      ],
    });
    const vs = vectors(50, 4, 9);
    await t.client.insert({ collection_name: 'docs', data: vs.map((v, id) => ({ id, v, ...Object.fromEntries(extra.map((f) => [f, id])) })) });
    expect((await t.client.createSnapshot({ collection_name: 'docs', snapshot_name: 's' })).error_code).toBe(ErrorCode.SUCCESS);
  });
  afterAll(async () => {
    await t?.close();
  });

  it('export shows bytes and an ETA, prints the bundle URI; import verifies, follows and restores', async () => {
    const out = capture();
    const target = `file://${join(t.dataDir, 'exports', 'cli')}`;
    expect(await cli(out, (c) => c.export({ db: 'default', collection: 'docs', name: 's', target }))).toBe(0);
    expect(out.stderr).toEqual([]);
    expect(out.stdout.some((l) => /^progress \d+% \d+\.\d MiB \/ \d+\.\d MiB/.test(l))).toBe(true);
    const uri = out.stdout.at(-1)!;
    expect(uri).toMatch(/^file:\/\/.*\/exports\/cli\/bundles\/default\/docs\/s-\d+\.json$/);

    const imp = capture();
    expect(await cli(imp, (c) => c.import({ db: 'default', uri, targetCollection: 'docs_copy', wait: true }))).toBe(0);
    expect(imp.stderr).toEqual([]);
    expect(imp.stdout[0]).toMatch(/^\d+$/);
    expect(imp.stdout.some((l) => /^progress \d+% Pending \d+\.\d MiB \/ \d+\.\d MiB/.test(l))).toBe(true);
    expect(imp.stdout.at(-1)).toMatch(/^restored bundle .* into default\.docs_copy in \d+ ms$/);
    await t.client.loadCollectionSync({ collection_name: 'docs_copy' });
    expect((await t.client.count({ collection_name: 'docs_copy' })).data).toBe(50);
  });

  it('errors: a target outside the roots, a missing bundle', async () => {
    const e = capture();
    expect(await cli(e, (c) => c.export({ db: 'default', collection: 'docs', name: 's', target: 'file:///tmp/not-a-root' }))).toBe(1);
    expect(e.stderr[0]).toMatch(/^error: export target file:\/\/\/tmp\/not-a-root is outside the allowed export roots .*\(code 1100\)$/);
    const i = capture();
    const missing = `file://${join(t.dataDir, 'exports', 'none', 'bundles', 'default', 'docs', 's-1.json')}`;
    expect(await cli(i, (c) => c.import({ db: 'default', uri: missing, targetCollection: 'x', wait: true }))).toBe(1);
    expect(i.stderr[0]).toMatch(/does not exist.*\(code 1000\)$/);
  });

  it('ETA text', () => {
    expect(bytesAndEta(0, 10 * 1024 * 1024, 1000)).toBe('0.0 MiB / 10.0 MiB');
    expect(bytesAndEta(5 * 1024 * 1024, 10 * 1024 * 1024, 2000)).toBe('5.0 MiB / 10.0 MiB, ETA 2s');
  });
});
