import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { DataType, ErrorCode, type MilvusClient } from '@zilliz/milvus2-sdk-node';
import { until, waitRestore } from '../../src/testing/index.js';
import { objectKeys } from '../data-dir.js';
import { killAllServers, spawnServer, spawnServerRetrying, type ServerProcess } from '../process.js';

/**
 * A restore killed (kill -9 of the server's process group) in each persisted phase of its copy job
 * (coord/copy/types.ts): Pending, Executing, Publishing, RollingBack. The phase is held open by a
 * test-only fault hook and confirmed before the kill, both through getRestoreSnapshotState (public
 * state) and through the hook's own log line (which names the internal state):
 *   Pending      QUIVER_FAULT_RESTORE_PAUSE_STATE=Pending      (the checker waits before registering)
 *   Executing    QUIVER_FAULT_COPY_DELAY_MS                     (every copy waits)
 *   Publishing   QUIVER_FAULT_RESTORE_PAUSE_STATE=Publishing   (waits before publishing)
 *   RollingBack  a job timeout shorter than the copy delay, and PAUSE_STATE=RollingBack
 * After a restart on the same dir (no faults, a short finalize lease so a cut publish/rollback resumes
 * soon) the job must end either
 *   Completed  with the target row for row equal to the snapshot, or
 *   Failed     with the set of files under objects/ exactly as before the restore call (GC removes
 *              nothing here: no drop happened and the graces are the defaults), the target name
 *              reusable (a second restore to it completes with exact content),
 * and in both cases the source snapshot can then be dropped.
 */

const DIM = 4;
const ROWS_PER_BATCH = 60;
const BATCHES = 3;
const PAUSE_MS = '120000';

type Phase = 'Pending' | 'Executing' | 'Publishing' | 'RollingBack';

const BASE_ENV: Record<string, string> = {
  QUIVER_AUTO_COMPACTION: 'false',
  QUIVER_COPY_CHECK_INTERVAL_MS: '50',
  QUIVER_COPY_FINALIZE_LEASE_MS: '500',
  QUIVER_LOG_LEVEL: 'info',
};

const FAULT_ENV: Record<Phase, Record<string, string>> = {
  Pending: { QUIVER_FAULT_RESTORE_PAUSE_STATE: 'Pending', QUIVER_FAULT_RESTORE_PAUSE_MS: PAUSE_MS },
  Executing: { QUIVER_FAULT_COPY_DELAY_MS: PAUSE_MS },
  Publishing: { QUIVER_FAULT_RESTORE_PAUSE_STATE: 'Publishing', QUIVER_FAULT_RESTORE_PAUSE_MS: PAUSE_MS },
  // The job times out in Executing (copies wait longer than the job may run) and rolls back.
  RollingBack: {
    QUIVER_FAULT_COPY_DELAY_MS: '1500',
    QUIVER_COPY_JOB_TIMEOUT_MS: '1000',
    QUIVER_FAULT_RESTORE_PAUSE_STATE: 'RollingBack',
    QUIVER_FAULT_RESTORE_PAUSE_MS: PAUSE_MS,
  },
};

/** What proves the job is persisted in the phase: the public state, and a log line of the server. */
const PUBLIC_STATE: Record<Phase, string> = {
  Pending: 'RestoreSnapshotPending',
  Executing: 'RestoreSnapshotExecuting',
  Publishing: 'RestoreSnapshotExecuting',
  RollingBack: 'RestoreSnapshotExecuting',
};

const ok = (s: { error_code?: string | number } | undefined) => s?.error_code === ErrorCode.SUCCESS;

function logLines(srv: ServerProcess): { msg?: string; state?: string; to?: string }[] {
  const out: { msg?: string; state?: string; to?: string }[] = [];
  for (const line of srv.output().split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      out.push(JSON.parse(line) as { msg?: string; state?: string });
    } catch {
      // a line cut by the kill
    }
  }
  return out;
}

/** The hook's line names the internal state; Executing has no pause hook, its entry is logged. */
function inPhase(srv: ServerProcess, phase: Phase): boolean {
  const lines = logLines(srv);
  if (phase === 'Executing') return lines.some((l) => l.msg === 'copy job executing');
  return lines.some((l) => l.msg === 'fault: restore paused' && l.state === phase);
}

async function rowsOf(c: MilvusClient, collection: string): Promise<string[]> {
  const l = await c.loadCollectionSync({ collection_name: collection });
  if (!ok(l)) throw new Error(`load ${collection}: ${l.reason}`);
  const q = await c.query({ collection_name: collection, filter: 'id >= 0', output_fields: ['id', 'val', 'v'] });
  if (!ok(q.status)) throw new Error(`query ${collection}: ${q.status.reason}`);
  return q.data.map((r) => `${String(r['id'])}:${String(r['val'])}:${(r['v'] as number[]).join(',')}`).sort();
}

async function setup(c: MilvusClient): Promise<void> {
  const created = await c.createCollection({
    collection_name: 'src',
    fields: [
      { name: 'id', data_type: DataType.Int64, is_primary_key: true },
      { name: 'val', data_type: DataType.Int64 },
      { name: 'v', data_type: DataType.FloatVector, dim: DIM },
    ],
  });
  expect(ok(created), created.reason).toBe(true);
  for (let b = 0; b < BATCHES; b++) {
    const data = Array.from({ length: ROWS_PER_BATCH }, (_, i) => {
      const id = b * ROWS_PER_BATCH + i;
      return { id, val: id * 7, v: [id, b, 0.5, 1] };
    });
    const r = await c.insert({ collection_name: 'src', data });
    expect(ok(r.status), r.status.reason).toBe(true);
    await c.flushSync({ collection_names: ['src'] });
  }
  const del = await c.delete({ collection_name: 'src', ids: [1, 2, 3] });
  expect(ok(del.status)).toBe(true);
  await c.flushSync({ collection_names: ['src'] });
  const idx = await c.createIndex({ collection_name: 'src', field_name: 'v', index_type: 'HNSW', metric_type: 'L2', params: { M: 8, efConstruction: 32 } });
  expect(ok(idx), idx.reason).toBe(true);
  // Index builds run in the background: wait for them, so that the files before the restore are final
  // (and the snapshot carries index files for the restore to copy).
  await until(
    async () => {
      const d = await c.describeIndex({ collection_name: 'src' });
      const i = d.index_descriptions[0];
      return i !== undefined && String(i.state) === 'Finished' && Number(i.pending_index_rows) === 0;
    },
    { timeoutMs: 30_000, what: 'index built' },
  );
  const s = await c.createSnapshot({ collection_name: 'src', snapshot_name: 'snap' });
  expect(ok(s), s.reason).toBe(true);
}

describe('restore killed in each job phase', () => {
  const dirs: string[] = [];
  afterEach(() => killAllServers());
  afterAll(async () => {
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });

  for (const phase of ['Pending', 'Executing', 'Publishing', 'RollingBack'] as const) {
    it(`${phase}: Completed with exact content, or Failed leaving the store as before`, { timeout: 120_000 }, async () => {
      const dir = await mkdtemp(join(tmpdir(), `quiver-restore-${phase}-`));
      dirs.push(dir);
      const srv = await spawnServer(dir, { ...BASE_ENV, ...FAULT_ENV[phase] });
      await setup(srv.client);
      // The snapshot's content: the source is not written after it.
      const expected = await rowsOf(srv.client, 'src');
      expect(expected.length).toBe(BATCHES * ROWS_PER_BATCH - 3);
      const filesBefore = await objectKeys(dir);

      const res = await srv.client.restoreSnapshot({ snapshot_name: 'snap', source_collection_name: 'src', target_collection_name: 'dst' });
      expect(ok(res.status), res.status.reason).toBe(true);
      const jobId = res.job_id;
      await until(() => inPhase(srv, phase), { timeoutMs: 60_000, what: `restore job in ${phase}` });
      const st = await srv.client.getRestoreSnapshotState({ job_id: jobId });
      expect(st.info?.state, `public state while in ${phase}`).toBe(PUBLIC_STATE[phase]);
      await srv.kill9();

      const { server: again } = await spawnServerRetrying(dir, BASE_ENV);
      const c = again.client;
      const info = await waitRestore(c, jobId, { timeoutMs: 60_000 });
      if (info.state === 'RestoreSnapshotCompleted') {
        expect(await rowsOf(c, 'dst'), 'restored rows').toEqual(expected);
      } else {
        expect(info.state).toBe('RestoreSnapshotFailed');
        expect(await objectKeys(dir), 'files under objects/ after a failed restore').toEqual(filesBefore);
        const hasDst = await c.hasCollection({ collection_name: 'dst' });
        expect(hasDst.value, 'target of a failed restore').toBe(false);
        // The name is free again: a second restore to it completes with the snapshot's rows.
        const retry = await c.restoreSnapshot({ snapshot_name: 'snap', source_collection_name: 'src', target_collection_name: 'dst' });
        expect(ok(retry.status), retry.status.reason).toBe(true);
        const info2 = await waitRestore(c, retry.job_id, { timeoutMs: 60_000 });
        expect(info2.state, info2.reason).toBe('RestoreSnapshotCompleted');
        expect(await rowsOf(c, 'dst'), 'rows of the second restore').toEqual(expected);
      }
      // No pin of the job is left: the source snapshot can be dropped.
      const drop = await c.dropSnapshot({ collection_name: 'src', snapshot_name: 'snap' });
      expect(ok(drop), drop.reason).toBe(true);
      expect(await rowsOf(c, 'src'), 'source rows').toEqual(expected);
      console.log(`restore killed in ${phase}: ended ${info.state}`);
      await again.stop();
    });
  }
});
