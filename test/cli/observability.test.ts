import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Registry } from 'prom-client';
import { DataType, ErrorCode } from '@zilliz/milvus2-sdk-node';
import { FakeClock } from '../../src/common/clock.js';
import type { CopyJob } from '../../src/coord/copy/types.js';
import { registerObservability, type Observability } from '../../src/proxy/observability.js';
import { startTestServer, vectors, type TestServer } from '../helpers.js';

/** The value of one sample line, e.g. `quiver_snapshots{collection="a"} 1`; undefined when absent. */
function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

describe('snapshot, restore and GC metrics', () => {
  let t: TestServer;
  let registry: Registry;
  let obs: Observability;
  let collectionId: number;

  beforeAll(async () => {
    t = await startTestServer({ autoCompaction: false });
    registry = new Registry();
    obs = registerObservability(registry, { snapshots: t.server.snapshots, restores: t.server.restores });
    const c = t.client;
    await c.createCollection({
      collection_name: 'm',
      fields: [
        { name: 'id', data_type: DataType.Int64, is_primary_key: true },
        { name: 'v', data_type: DataType.FloatVector, dim: 4 },
      ],
    });
    await c.insert({ collection_name: 'm', data: vectors(50, 4, 5).map((v, i) => ({ id: i, v })) });
    collectionId = t.server.engine.catalog.resolveCollection('default', 'm').id;
  });
  afterAll(async () => {
    await t?.close();
  });

  it('starts with zeroed state series and no snapshot series', async () => {
    // Its own server: the shared one has whatever state the other tests left.
    const fresh = await startTestServer({ autoCompaction: false });
    let text: string;
    try {
      const reg = new Registry();
      registerObservability(reg, { snapshots: fresh.server.snapshots, restores: fresh.server.restores });
      text = await reg.metrics();
    } finally {
      await fresh.close();
    }
    for (const s of ['Pending', 'Executing', 'Completed', 'Failed']) expect(sample(text, `quiver_copy_segment_jobs{state="${s}"}`)).toBe(0);
    for (const s of ['Pending', 'InProgress', 'Completed', 'Failed']) expect(sample(text, `quiver_copy_segment_tasks{state="${s}"}`)).toBe(0);
    expect(sample(text, 'quiver_snapshot_pins_active')).toBe(0);
    expect(text).not.toMatch(/^quiver_snapshots\{/m);
    expect(sample(text, 'quiver_gc_files_reclaimed_total')).toBe(0);
  });

  it('counts snapshots, referenced bytes, pins, restore jobs and tasks at scrape time', async () => {
    const c = t.client;
    expect((await c.createSnapshot({ collection_name: 'm', snapshot_name: 's1' })).error_code).toBe(ErrorCode.SUCCESS);
    const pin = await c.pinSnapshotData({ collection_name: 'm', snapshot_name: 's1', ttl_seconds: 600 });
    expect(pin.status.error_code).toBe(ErrorCode.SUCCESS);
    const r = await c.restoreSnapshot({ snapshot_name: 's1', source_collection_name: 'm', target_collection_name: 'm_restored' });
    expect(r.status.error_code).toBe(ErrorCode.SUCCESS);
    expect((await t.server.restores.waitFor(Number(r.job_id))).state).toBe('Completed');
    await obs.settled();

    const text = await registry.metrics();
    const labels = `{db="default",collection="m",collection_id="${collectionId}"}`;
    expect(sample(text, `quiver_snapshots${labels}`)).toBe(1);
    const rec = (await t.server.snapshots.records.list(collectionId))[0]!;
    expect(rec.totalBytes).toBeGreaterThan(0);
    expect(sample(text, `quiver_snapshot_referenced_bytes${labels}`)).toBe(rec.totalBytes);
    // The restore's own pin was released when it completed: only the explicit one is left.
    expect(sample(text, 'quiver_snapshot_pins_active')).toBe(1);
    expect(sample(text, 'quiver_copy_segment_jobs{state="Completed"}')).toBe(1);
    expect(sample(text, 'quiver_copy_segment_jobs{state="Executing"}')).toBe(0);
    const tasks = await t.server.restores.jobs.listAllTasks();
    expect(tasks.length).toBeGreaterThan(0);
    expect(sample(text, 'quiver_copy_segment_tasks{state="Completed"}')).toBe(tasks.length);
    expect(sample(text, 'quiver_copy_segment_job_duration_seconds_count{outcome="Completed"}')).toBe(1);
    expect(sample(text, 'quiver_copy_segment_job_duration_seconds_bucket{le="+Inf",outcome="Completed"}')).toBe(1);
    expect(sample(text, 'quiver_copy_segment_task_duration_seconds_count{state="Completed"}')).toBe(tasks.length);

    // Gauges follow the state: unpin and drop, and the series go away at the next scrape.
    await c.unpinSnapshotData({ pin_id: pin.pin_id });
    await c.dropSnapshot({ collection_name: 'm', snapshot_name: 's1' });
    const after = await registry.metrics();
    expect(sample(after, 'quiver_snapshot_pins_active')).toBe(0);
    expect(after).not.toMatch(/^quiver_snapshots\{/m);
    expect(after).not.toMatch(/^quiver_snapshot_referenced_bytes\{/m);
  });

  it('observes a job duration once per job, from its creation, by outcome', async () => {
    const clock = new FakeClock(10_000);
    const hooks: ((job: CopyJob, outcome: 'Completed' | 'Failed') => void)[] = [];
    const reg = new Registry();
    const jobs = { listJobs: async () => [], listAllTasks: async () => [], listTasks: async () => [] };
    const o = registerObservability(reg, {
      snapshots: t.server.snapshots,
      restores: { jobs, onJobFinished: hooks } as never,
      clock,
    });
    const job = { id: 7, createdAtMs: 7_500 } as CopyJob;
    for (const h of hooks) h(job, 'Failed');
    // A finalizer re-run (crash between rollback and the state flip) must not count twice.
    for (const h of hooks) h(job, 'Failed');
    await o.settled();
    const text = await reg.metrics();
    expect(sample(text, 'quiver_copy_segment_job_duration_seconds_count{outcome="Failed"}')).toBe(1);
    expect(sample(text, 'quiver_copy_segment_job_duration_seconds_sum{outcome="Failed"}')).toBe(2.5);
    expect(sample(text, 'quiver_copy_segment_job_duration_seconds_bucket{le="2.5",outcome="Failed"}')).toBe(1);
    expect(sample(text, 'quiver_copy_segment_job_duration_seconds_bucket{le="1",outcome="Failed"}')).toBe(0);
  });

  it('GC counters accumulate through the GcMetrics it returns', async () => {
    obs.gcMetrics.filesReclaimed(3);
    obs.gcMetrics.filesReclaimed(2);
    obs.gcMetrics.bytesReclaimed(4096);
    obs.gcMetrics.errors(1);
    const text = await registry.metrics();
    expect(sample(text, 'quiver_gc_files_reclaimed_total')).toBe(5);
    expect(sample(text, 'quiver_gc_bytes_reclaimed_total')).toBe(4096);
    expect(sample(text, 'quiver_gc_errors_total')).toBe(1);
  });
});
