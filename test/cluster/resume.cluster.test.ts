/**
 * A coordinator restart in the middle of index builds on data nodes (issue 10): kill -9 of `quiver serve
 * --datanode-slots 0` while both data nodes build, then a restart over the same data dir. The new
 * coordinator re-attaches to the runs still going on the nodes (same task id and version) and collects
 * them: every segment gets its index and no node started a build twice (`quiver_datanode_tasks_started_total`).
 *
 * Skipped, with the reason printed, only when the `etcd` binary is missing (CI installs it).
 */

import { afterEach, describe, expect, it, onTestFailed } from 'vitest';
import { DataType, ErrorCode, type MilvusClient } from '@zilliz/milvus2-sdk-node';
import { Cluster, metricSum, scrapeMetrics, type QuiverProcess } from '../../src/testing/cluster.js';
import { etcdUnavailableReason } from '../../src/testing/etcd-server.js';
import { until } from '../../src/testing/wait.js';
import { vectors } from '../helpers.js';

const skipReason = etcdUnavailableReason();
if (skipReason !== undefined) console.warn(`cluster tests skipped: ${skipReason}`);

const DIM = 32;
const SEGMENTS = 2;
/** Enough rows that an HNSW build at efConstruction 400 on one thread runs for seconds, not milliseconds. */
const ROWS_PER_SEGMENT = 8_000;

async function fill(c: MilvusClient): Promise<void> {
  await c.createCollection({
    collection_name: 'c',
    fields: [
      { name: 'id', data_type: DataType.Int64, is_primary_key: true },
      { name: 'v', data_type: DataType.FloatVector, dim: DIM },
    ],
  });
  const vs = vectors(SEGMENTS * ROWS_PER_SEGMENT, DIM, 5);
  for (let s = 0; s < SEGMENTS; s++) {
    for (let from = 0; from < ROWS_PER_SEGMENT; from += 4_000) {
      const data = Array.from({ length: 4_000 }, (_, i) => ({ id: s * ROWS_PER_SEGMENT + from + i, v: vs[s * ROWS_PER_SEGMENT + from + i]! }));
      expect((await c.insert({ collection_name: 'c', data })).status.error_code).toBe(ErrorCode.SUCCESS);
    }
    await c.flushSync({ collection_names: ['c'] });
  }
}

async function started(nodes: readonly QuiverProcess[]): Promise<number[]> {
  return Promise.all(
    nodes.map(async (n) => metricSum(await scrapeMetrics(n.metricsAddress), 'quiver_datanode_tasks_started_total', { type: 'index_build' })),
  );
}

describe.skipIf(skipReason !== undefined)('coordinator restart during index builds on data nodes', () => {
  let cluster: Cluster | undefined;
  afterEach(async () => {
    await cluster?.stop();
    cluster = undefined;
  });

  it('re-attaches to the builds still running on the nodes: none is started again', async () => {
    cluster = await Cluster.start({ metaRoot: 'qresume' });
    const c0 = cluster;
    onTestFailed(() => c0.printLogs());
    let serve = await cluster.serve({
      args: ['--datanode-slots', '0'],
      env: { QUIVER_AUTO_COMPACTION: 'false', QUIVER_LOG_LEVEL: 'info' },
    });
    const nodes = [
      await cluster.datanode({ slots: 1, args: ['--index-build-threads', '1'] }),
      await cluster.datanode({ slots: 1, args: ['--index-build-threads', '1'] }),
    ];
    await fill(serve.client);
    const idx = await serve.client.createIndex({
      collection_name: 'c',
      field_name: 'v',
      index_type: 'HNSW',
      metric_type: 'L2',
      params: { M: 16, efConstruction: 400 },
    });
    expect(idx.error_code).toBe(ErrorCode.SUCCESS);
    // Both nodes run a build (their own gauges say so), then the coordinator dies.
    await until(
      async () => {
        const used = await Promise.all(nodes.map(async (n) => metricSum(await scrapeMetrics(n.metricsAddress), 'quiver_datanode_slots', { kind: 'used' })));
        return used.every((u) => u > 0);
      },
      { timeoutMs: 60_000, intervalMs: 20, what: 'a build running on each data node' },
    );
    await cluster.kill9(serve);
    const before = await started(nodes);
    expect(before).toEqual([1, 1]);

    serve = await cluster.restart(serve);
    await until(async () => (await serve.client.describeIndex({ collection_name: 'c', field_name: 'v' })).index_descriptions[0]?.state === 'Finished', {
      timeoutMs: 120_000,
      what: 'the index on every segment after the restart',
    });
    // Collected, not rebuilt: still one build started per node, and the new coordinator says it adopted them.
    expect(await started(nodes)).toEqual([1, 1]);
    const log = serve.output().split('----- ').at(-1) ?? '';
    expect(log.match(/index-build task adopted after a restart/g)?.length).toBe(SEGMENTS);
    expect((await serve.client.loadCollectionSync({ collection_name: 'c' })).error_code).toBe(ErrorCode.SUCCESS);
    const q = await serve.client.query({ collection_name: 'c', filter: 'id >= 0', output_fields: ['count(*)'] });
    expect(Number(q.data[0]?.['count(*)'])).toBe(SEGMENTS * ROWS_PER_SEGMENT);
  });
});
