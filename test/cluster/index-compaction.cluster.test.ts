/**
 * Index builds and compaction merges on data nodes as separate processes (issue 10): etcd + s3rver +
 * `quiver serve --datanode-slots 0` + two `quiver datanode` processes; the same writes to an embedded
 * `quiver serve` (SQLite + local files, in-process data node) answer the same.
 *
 * Skipped, with the reason printed, only when the `etcd` binary is missing (CI installs it).
 */

import { afterEach, describe, expect, it } from 'vitest';
import { DataType, ErrorCode, type MilvusClient } from '@zilliz/milvus2-sdk-node';
import { createHash } from 'node:crypto';
import { CATALOG_KEY_PREFIX, type SegmentRecord } from '../../src/coord/records.js';
import { openMeta } from '../../src/meta/open-meta.js';
import { etcdUnavailableReason } from '../../src/testing/etcd-server.js';
import { until } from '../../src/testing/wait.js';
import { vectors } from '../helpers.js';
import { Cluster, metricSum, scrapeMetrics } from '../../src/testing/cluster.js';

const skipReason = etcdUnavailableReason();
if (skipReason !== undefined) console.warn(`cluster tests skipped: ${skipReason}`);

const DIM = 16;
const SEGMENTS = 4;
const ROWS_PER_SEGMENT = 400;
const DELETED = [0, 1, 2, 401, 1203];

/** SEGMENTS flushed segments, an HNSW index built on all of them, a few deletes, then a manual compaction. */
async function fillIndexCompact(c: MilvusClient): Promise<void> {
  await c.createCollection({
    collection_name: 'c',
    fields: [
      { name: 'id', data_type: DataType.Int64, is_primary_key: true },
      { name: 'title', data_type: DataType.VarChar, max_length: 32 },
      { name: 'v', data_type: DataType.FloatVector, dim: DIM },
    ],
  });
  const vs = vectors(SEGMENTS * ROWS_PER_SEGMENT, DIM, 11);
  for (let s = 0; s < SEGMENTS; s++) {
    const data = Array.from({ length: ROWS_PER_SEGMENT }, (_, i) => ({
      id: s * ROWS_PER_SEGMENT + i,
      title: `t${s * ROWS_PER_SEGMENT + i}`,
      v: vs[s * ROWS_PER_SEGMENT + i]!,
    }));
    expect((await c.insert({ collection_name: 'c', data })).status.error_code).toBe(ErrorCode.SUCCESS);
    await c.flushSync({ collection_names: ['c'] });
  }
  const idx = await c.createIndex({ collection_name: 'c', field_name: 'v', index_type: 'HNSW', metric_type: 'L2', params: { M: 16, efConstruction: 200 } });
  expect(idx.error_code).toBe(ErrorCode.SUCCESS);
  // A scalar index too: built over the column, on the data nodes as well (and by the compaction's merge).
  const tidx = await c.createIndex({ collection_name: 'c', field_name: 'title', index_type: 'INVERTED' });
  expect(tidx.error_code).toBe(ErrorCode.SUCCESS);
  for (const field_name of ['v', 'title']) {
    await until(async () => (await c.describeIndex({ collection_name: 'c', field_name })).index_descriptions[0]?.state === 'Finished', {
      timeoutMs: 120_000,
      what: `the ${field_name} index on every segment`,
    });
  }
  expect((await c.loadCollectionSync({ collection_name: 'c' })).error_code).toBe(ErrorCode.SUCCESS);
  expect((await c.delete({ collection_name: 'c', ids: DELETED })).status.error_code).toBe(ErrorCode.SUCCESS);
  await c.flushSync({ collection_names: ['c'] });
  const task = await c.compact({ collection_name: 'c' });
  expect(task.status.error_code).toBe(ErrorCode.SUCCESS);
  await until(async () => String((await c.getCompactionState({ compactionID: task.compactionID })).state) === 'Completed', {
    timeoutMs: 120_000,
    what: 'the compaction',
  });
  const plans = await c.getCompactionStateWithPlans({ compactionID: task.compactionID });
  expect(plans.mergeInfos.length).toBeGreaterThan(0);
  await until(async () => (await c.describeIndex({ collection_name: 'c', field_name: 'v' })).index_descriptions[0]?.state === 'Finished', {
    timeoutMs: 120_000,
    what: 'the index after compaction',
  });
}

/** Top-10 ids of each query by brute force over the rows left after the deletes (the reference both modes must give). */
function exactTop10(queries: number[][]): string[][] {
  const all = vectors(SEGMENTS * ROWS_PER_SEGMENT, DIM, 11);
  const gone = new Set(DELETED);
  return queries.map((q) =>
    all
      .map((v, id) => ({ id, d: v.reduce((acc, x, i) => acc + (x - q[i]!) ** 2, 0) }))
      .filter((h) => !gone.has(h.id))
      .sort((a, b) => a.d - b.d)
      .slice(0, 10)
      .map((h) => String(h.id)),
  );
}

/** Share of the exact top-10 that a search found (an HNSW graph can leave a node unreachable, so not always 1). */
function recall(hits: string[][], exact: string[][]): number {
  return hits.reduce((n, h, i) => n + h.filter((id) => exact[i]!.includes(id)).length, 0) / (10 * exact.length);
}

/**
 * Rows, and top-10 ids of 20 queries at an ef above the row count. Both servers build with one thread, so the
 * same segments give the same graphs in both modes (a multi-threaded usearch build is not deterministic).
 */
async function answers(c: MilvusClient): Promise<{ rows: string[]; hits: string[][]; titled: string[] }> {
  const q = await c.query({ collection_name: 'c', filter: 'id >= 0', output_fields: ['id', 'title'], limit: 16_384 });
  // Answered through the title index: exact matches, deleted ones left out.
  const t = await c.query({ collection_name: 'c', filter: 'title in ["t1", "t5", "t401", "t777", "t1203", "t1599"]', output_fields: ['id'], limit: 100 });
  const data = vectors(SEGMENTS * ROWS_PER_SEGMENT, DIM, 11).slice(100, 120);
  const s = await c.search({ collection_name: 'c', data, limit: 10, params: { ef: 16_384 } });
  return {
    rows: q.data.map((x) => `${String(x['id'])}:${String(x['title'])}`).sort(),
    hits: (s.results as unknown as { id: string }[][]).map((list) => list.map((h) => String(h.id))),
    titled: t.data.map((x) => String(x['id'])).sort(),
  };
}

describe.skipIf(skipReason !== undefined)('index builds and compaction merges on data nodes', () => {
  let cluster: Cluster | undefined;
  afterEach(async () => {
    await cluster?.stop();
    cluster = undefined;
  });

  it('run on the data nodes, with the embedded mode’s results', async () => {
    cluster = await Cluster.start({ metaRoot: 'qi' });
    // No background compaction: the manual one below is what merges (and it must run on a data node).
    const serve = await cluster.serve({ args: ['--datanode-slots', '0'], env: { QUIVER_AUTO_COMPACTION: 'false', QUIVER_INDEX_BUILD_THREADS: '1' } });
    const nodes = [
      await cluster.datanode({ slots: 2, args: ['--index-build-threads', '1'] }),
      await cluster.datanode({ slots: 2, args: ['--index-build-threads', '1'] }),
    ];
    await fillIndexCompact(serve.client);
    const onCluster = await answers(serve.client);
    const exact = exactTop10(vectors(SEGMENTS * ROWS_PER_SEGMENT, DIM, 11).slice(100, 120));
    expect(recall(onCluster.hits, exact)).toBeGreaterThanOrEqual(0.99);
    expect(onCluster.rows).toHaveLength(SEGMENTS * ROWS_PER_SEGMENT - DELETED.length);
    expect(onCluster.titled).toEqual(['1599', '5', '777']);

    // The work ran on the data nodes: each built some of the segments' indexes, one of them merged.
    const metrics = await Promise.all(nodes.map((n) => scrapeMetrics(n.metricsAddress)));
    const builds = metrics.map((m) => metricSum(m, 'quiver_datanode_tasks_total', { type: 'index_build', outcome: 'completed' }));
    expect(
      builds.every((b) => b > 0),
      `index builds per node: ${builds.join(', ')}`,
    ).toBe(true);
    // Two indexes (HNSW and the title INVERTED) on every segment: all built on the nodes.
    expect(builds.reduce((a, b) => a + b, 0)).toBeGreaterThanOrEqual(2 * SEGMENTS);
    const merges = metrics.map((m) => metricSum(m, 'quiver_datanode_tasks_total', { type: 'compaction_merge', outcome: 'completed' }));
    expect(merges.reduce((a, b) => a + b, 0)).toBeGreaterThanOrEqual(1);

    // Files the data nodes wrote (index builds, the merge's binlogs and its index) carry the SHA-256 of
    // their bytes in the segment records (issue 13: what an export names them by without reading them).
    const kv = await openMeta(cluster.metaUrl, { dataDir: cluster.dataDir() });
    try {
      const segs = (await kv.scan(`${CATALOG_KEY_PREFIX}seg/`))
        .map((e) => JSON.parse(new TextDecoder().decode(e.value)) as SegmentRecord)
        .filter((s) => s.state === 'Flushed');
      expect(segs.some((s) => (s.compactedFrom?.length ?? 0) > 0)).toBe(true);
      let checked = 0;
      for (const s of segs) {
        const files = [
          ...Object.values(s.binlogs).flatMap((logs) => logs.map((b) => [b.path, b.sha256] as const)),
          ...s.deltalogs.map((b) => [b.path, b.sha256] as const),
          ...s.statslogs.map((b) => [b.path, b.sha256] as const),
          ...s.indexes.flatMap((ix) => ix.files.map((f, i) => [f, ix.filesSha256?.[i]] as const)),
        ];
        for (const [key, sha] of files) {
          expect(sha, `${key} has no recorded sha256`).toBe(
            createHash('sha256')
              .update(await cluster.store.get(key))
              .digest('hex'),
          );
          checked++;
        }
        expect(s.indexes.length, `segment ${s.id} has its index`).toBeGreaterThan(0);
      }
      expect(checked).toBeGreaterThan(0);
    } finally {
      await kv.close();
    }
    await cluster.stopProcess(serve);

    // The embedded mode (SQLite, local files, in-process data node), same writes: same answers.
    const embedded = await cluster.serve({
      env: { QUIVER_META: 'sqlite', QUIVER_STORAGE: 'local', QUIVER_AUTO_COMPACTION: 'false', QUIVER_INDEX_BUILD_THREADS: '1' },
      args: ['--datanode-slots', '4'],
    });
    await fillIndexCompact(embedded.client);
    const onEmbedded = await answers(embedded.client);
    expect(recall(onEmbedded.hits, exact)).toBeGreaterThanOrEqual(0.99);
    expect(onEmbedded).toEqual(onCluster);
  });
});
