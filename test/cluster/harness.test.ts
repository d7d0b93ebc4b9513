/**
 * The cluster harness itself (src/testing/cluster.ts), on `quiver serve` over etcd + s3rver: the SDK
 * workflow, kill -9 of the group and a restart on the same etcd + bucket + data dir (the data is there),
 * SIGSTOP/SIGCONT, metrics scraping, per-process logs, and a teardown that leaves no process behind.
 */

import { DataType, ErrorCode } from '@zilliz/milvus2-sdk-node';
import { afterAll, beforeAll, describe, expect, it, onTestFailed } from 'vitest';
import { Cluster, metricSum, parsePrometheus, scrapeMetrics } from '../../src/testing/cluster.js';
import { etcdUnavailableReason } from '../../src/testing/etcd-server.js';
import { vectors } from '../helpers.js';

const skipReason = etcdUnavailableReason();
if (skipReason !== undefined) console.warn(`cluster harness test skipped: ${skipReason}`);

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe.skipIf(skipReason !== undefined)('cluster harness', () => {
  let cluster: Cluster;
  beforeAll(async () => {
    cluster = await Cluster.start({ metaRoot: 'harness' });
  }, 60_000);
  afterAll(async () => {
    await cluster?.stop();
  });

  it('serve on etcd + S3: SDK workflow, kill -9 of the group, restart on the same state, data there', async () => {
    onTestFailed(() => cluster.printLogs());
    let serve = await cluster.serve();
    const c = serve.client;
    const vs = vectors(200, 8, 7);
    const created = await c.createCollection({
      collection_name: 'h',
      fields: [
        { name: 'id', data_type: DataType.Int64, is_primary_key: true },
        { name: 'v', data_type: DataType.FloatVector, dim: 8 },
      ],
    });
    expect(created.error_code).toBe(ErrorCode.SUCCESS);
    const ins = await c.insert({ collection_name: 'h', data: vs.map((v, i) => ({ id: i, v })) });
    expect(ins.status.error_code).toBe(ErrorCode.SUCCESS);
    await c.flushSync({ collection_names: ['h'] });
    expect((await c.createIndex({ collection_name: 'h', field_name: 'v', index_type: 'FLAT', metric_type: 'L2' })).error_code).toBe(ErrorCode.SUCCESS);
    expect((await c.loadCollectionSync({ collection_name: 'h' })).error_code).toBe(ErrorCode.SUCCESS);
    const before = await c.search({ collection_name: 'h', data: [vs[17]!], limit: 1 });
    expect(Number(before.results[0]?.id)).toBe(17);

    const metrics = await scrapeMetrics(serve.metricsPort);
    expect(metricSum(metrics, 'quiver_rows_inserted_total')).toBe(200);

    const oldPid = serve.pid;
    await cluster.kill9(serve);
    expect(alive(oldPid)).toBe(false);
    expect(serve.running).toBe(false);

    serve = await cluster.restart(serve);
    expect(serve.pid).not.toBe(oldPid);
    expect(serve.port).toBeGreaterThan(0);
    const c2 = serve.client;
    expect((await c2.loadCollectionSync({ collection_name: 'h' })).error_code).toBe(ErrorCode.SUCCESS);
    const count = await c2.count({ collection_name: 'h' });
    expect(count.data).toBe(200);
    const after = await c2.search({ collection_name: 'h', data: [vs[17]!], limit: 1 });
    expect(Number(after.results[0]?.id)).toBe(17);
    // One log file per process, appended across the restart.
    const log = serve.output();
    expect(log.match(/^----- .* quiver serve /gm)).toHaveLength(2);
    expect(log).toContain('quiver is serving');
    expect(cluster.logs()).toContain('===== serve.log');
  }, 180_000);

  it('pause freezes the whole group until resume; stop kills what it started', async () => {
    onTestFailed(() => cluster.printLogs());
    const serve = await cluster.serve();
    await cluster.pause(serve);
    const frozen = await fetch(`http://${serve.metricsAddress}/healthz`, { signal: AbortSignal.timeout(300) }).then(
      () => 'answered',
      () => 'no answer',
    );
    expect(frozen).toBe('no answer');
    cluster.resume(serve);
    const res = await fetch(`http://${serve.metricsAddress}/healthz`, { signal: AbortSignal.timeout(10_000) });
    expect(res.status).toBe(200);
    await cluster.pause(serve);
    // A frozen process is killed all the same.
    await cluster.stop();
    expect(alive(serve.pid)).toBe(false);
    await cluster.stop();
  }, 120_000);

  it('parses Prometheus text into series keyed by sorted labels', () => {
    const m = parsePrometheus(
      [
        '# HELP x_total help',
        '# TYPE x_total counter',
        'x_total{type="copy",outcome="ok"} 3',
        'x_total{outcome="failed",type="copy"} 1',
        'up 1',
        'h_bucket{le="+Inf"} 4',
      ].join('\n'),
    );
    expect(m.get('x_total{outcome="ok",type="copy"}')).toBe(3);
    expect(m.get('up')).toBe(1);
    expect(m.get('h_bucket{le="+Inf"}')).toBe(4);
    expect(metricSum(m, 'x_total', { type: 'copy' })).toBe(4);
    expect(metricSum(m, 'x_total', { outcome: 'failed' })).toBe(1);
    expect(metricSum(m, 'missing')).toBe(0);
  });
});
