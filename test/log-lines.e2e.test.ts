/**
 * What operators read (issue 8): snapshot drop, pin and unpin are logged at info; a rejected request is
 * logged at info with its request id and code; restore log lines name the job `jobId`; request metrics
 * label errors by the new code's name.
 */
import { Writable } from 'node:stream';
import { DataType, ErrorCode } from '@zilliz/milvus2-sdk-node';
import { pino } from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { startTestServer, waitRestore, type TestServer } from './helpers.js';

type Line = Record<string, unknown> & { level: number; msg: string };

describe('log lines and request metrics', () => {
  let t: TestServer | undefined;
  afterAll(async () => {
    await t?.close();
  });

  it('logs snapshot drop, pin, unpin and rejected requests at info, and restore lines with jobId', async () => {
    const lines: Line[] = [];
    const stream = new Writable({
      write(chunk: Buffer, _enc, cb) {
        for (const l of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(l) as Line);
        cb();
      },
    });
    t = await startTestServer({ copyCheckIntervalMs: 50 }, { log: pino({ level: 'info' }, stream) });
    const c = t.client;
    await c.createCollection({
      collection_name: 'docs',
      fields: [
        { name: 'id', data_type: DataType.Int64, is_primary_key: true },
        { name: 'v', data_type: DataType.FloatVector, dim: 4 },
      ],
    });
    await c.insert({ collection_name: 'docs', data: [{ id: 1, v: [1, 2, 3, 4] }] });
    expect((await c.createSnapshot({ collection_name: 'docs', snapshot_name: 's1' })).error_code).toBe(ErrorCode.SUCCESS);
    const pin = await c.pinSnapshotData({ collection_name: 'docs', snapshot_name: 's1', ttl_seconds: 600 });
    await c.unpinSnapshotData({ pin_id: pin.pin_id });
    const restore = await c.restoreSnapshot({ snapshot_name: 's1', source_collection_name: 'docs', target_collection_name: 'docs2' });
    expect(restore.status.error_code).toBe(ErrorCode.SUCCESS);
    const jobId = String(restore.job_id);
    await waitRestore(c, jobId);
    expect((await c.dropSnapshot({ collection_name: 'docs', snapshot_name: 's1' })).error_code).toBe(ErrorCode.SUCCESS);
    const missing = await c.describeCollection({ collection_name: 'nope' });
    expect(missing.status.code).toBe(100);
    expect(missing.status.error_code).toBe('CollectionNotExists');

    const info = (msg: string) => lines.filter((l) => l.level === 30 && l.msg === msg);
    // The manual pin, then the restore's own pin (released when the job finishes).
    const byWho = (l: Line) => (l['jobId'] === undefined ? 'manual' : String(l['jobId']));
    expect(info('snapshot pinned').map(byWho)).toEqual(['manual', jobId]);
    expect(info('snapshot unpinned').map(byWho).sort()).toEqual([jobId, 'manual'].sort());
    expect(info('snapshot dropped')).toHaveLength(1);
    const rejected = info('request rejected').filter((l) => l['method'] === 'DescribeCollection');
    expect(rejected).toHaveLength(1);
    expect(rejected[0]).toMatchObject({ code: 100 });
    expect(typeof rejected[0]!['requestId']).toBe('string');
    const restoreLines = lines.filter((l) => /restore|copy job/.test(l.msg));
    expect(restoreLines.length).toBeGreaterThan(1);
    for (const l of restoreLines) {
      expect(l, l.msg).not.toHaveProperty('job');
      expect(String(l['jobId']), l.msg).toBe(jobId);
    }

    const metrics = await (await fetch(`http://127.0.0.1:${t.server.metricsPort}/metrics`)).text();
    expect(metrics).toMatch(/quiver_requests_total\{method="DescribeCollection",status="CollectionNotFound"\} 1/);
  });
});
