/**
 * Faults under `quiver serve` on etcd + S3 (real processes, official SDK): etcd frozen (SIGSTOP, every
 * thread stopped) and then thawed, or stopped and restarted on its data dir, while an insert, a flush, a
 * createSnapshot, a restore and a read of etcd run. Each call
 * either succeeds or fails with a Milvus code and a reason; after etcd is back, every acknowledged row is
 * there, the snapshot is committed or absent, the restore target complete or absent, and a flush, a
 * snapshot and a restore started afterwards complete without restarting the server.
 *
 * Skipped, with the reason printed, only when the `etcd` binary is missing.
 */

import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DataType, ErrorCode, type MilvusClient } from '@zilliz/milvus2-sdk-node';
import { S3ObjectStore } from '../src/storage/s3-object-store.js';
import { EtcdServer, etcdUnavailableReason } from '../src/testing/etcd-server.js';
import { S3RVER_CREDENTIALS, S3Server } from '../src/testing/s3-server.js';
import { until, vectors, waitRestore } from './helpers.js';
import { killAllServers, spawnServer, type ServerProcess } from './process.js';

const BUCKET = 'quiver-faults';
const skipReason = etcdUnavailableReason();
if (skipReason !== undefined) console.warn(`distributed fault e2e skipped: ${skipReason}`);

/** Every row's id, sorted, as the SDK sees it. */
async function idsOf(c: MilvusClient, collection: string): Promise<number[]> {
  const r = await c.query({ collection_name: collection, filter: 'id >= 0', output_fields: ['id'], limit: 16_384 });
  expect(r.status.error_code, r.status.reason).toBe(ErrorCode.SUCCESS);
  return r.data.map((x) => Number(x['id'])).sort((a, b) => a - b);
}

/**
 * A call's outcome during an outage: Success, or a failure that names a Milvus code and a reason and is
 * flagged retriable (the client may simply try again once etcd is back).
 */
function expectSuccessOrReasoned(status: { error_code: string | number; reason: string; retriable?: boolean }): boolean {
  if (status.error_code === ErrorCode.SUCCESS) return true;
  expect(status.reason, `failed with ${String(status.error_code)} and no reason`).not.toBe('');
  expect(status.retriable, `${String(status.error_code)}: ${status.reason}`).toBe(true);
  return false;
}

/**
 * A fault injector in front of s3rver: forwards every request, or (mode '503') answers 503 SlowDown, or
 * (mode 'stall') holds the request until the mode changes back. A few lines of node:http, no dependency.
 */
class S3FaultProxy {
  mode: 'pass' | '503' | 'stall' = 'pass';
  faultsServed = 0;
  readonly #server: Server;
  readonly #held: (() => void)[] = [];

  private constructor(server: Server) {
    this.#server = server;
  }

  get endpoint(): string {
    return `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}`;
  }

  static async start(target: string): Promise<S3FaultProxy> {
    const to = new URL(target);
    const proxy: S3FaultProxy = new S3FaultProxy(
      createServer((req, res) => {
        const forward = () => {
          const up = request({ host: to.hostname, port: to.port, method: req.method, path: req.url, headers: req.headers }, (upRes) => {
            res.writeHead(upRes.statusCode ?? 502, upRes.headers);
            upRes.pipe(res);
          });
          up.on('error', () => res.destroy());
          req.pipe(up);
        };
        if (proxy.mode === 'pass') return forward();
        proxy.faultsServed++;
        if (proxy.mode === 'stall') return proxy.#held.push(forward);
        req.resume();
        res.writeHead(503, { 'content-type': 'application/xml' });
        res.end('<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code><Message>injected</Message></Error>');
      }),
    );
    await new Promise<void>((resolve) => proxy.#server.listen(0, '127.0.0.1', resolve));
    return proxy;
  }

  heal(): void {
    this.mode = 'pass';
    for (const f of this.#held.splice(0)) f();
  }

  async stop(): Promise<void> {
    this.heal();
    this.#server.closeAllConnections();
    await new Promise((resolve) => this.#server.close(resolve));
  }
}

describe.skipIf(skipReason !== undefined)('quiver serve on etcd + S3 under faults', () => {
  let etcd: EtcdServer;
  let s3: S3Server;
  let srv: ServerProcess;
  let proxy: S3FaultProxy;
  const dirs: string[] = [];
  const awsEnv = {
    AWS_ACCESS_KEY_ID: S3RVER_CREDENTIALS.accessKeyId,
    AWS_SECRET_ACCESS_KEY: S3RVER_CREDENTIALS.secretAccessKey,
    AWS_REGION: 'us-east-1',
    AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
  };

  beforeAll(async () => {
    [etcd, s3] = await Promise.all([EtcdServer.start(), S3Server.start([BUCKET])]);
    proxy = await S3FaultProxy.start(s3.endpoint);
    const dataDir = await mkdtemp(join(tmpdir(), 'quiver-faults-'));
    dirs.push(dataDir);
    srv = await spawnServer(dataDir, {
      ...awsEnv,
      QUIVER_META: `etcd://${etcd.endpoint}/faults`,
      QUIVER_STORAGE: `s3://${BUCKET}/c1`,
      QUIVER_S3_ENDPOINT: s3.endpoint,
      QUIVER_AUTO_COMPACTION: 'false',
      QUIVER_GC_INTERVAL_MS: '200',
      QUIVER_COPY_CHECK_INTERVAL_MS: '200',
    });
  }, 60_000);

  afterAll(async () => {
    killAllServers();
    try {
      etcd?.thaw();
    } catch {
      // already gone
    }
    await proxy?.stop();
    await Promise.all([etcd?.stop(), s3?.stop()]);
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });

  for (const outage of ['frozen', 'stopped and restarted'] as const) {
    it(`etcd ${outage} during insert, flush, createSnapshot, restore and reads: each succeeds or fails retriable with a reason; afterwards nothing acknowledged is lost and work resumes`, async () => {
      const c = srv.client;
      // Names of their own per outage: both run on one server.
      const n = outage === 'frozen' ? 'f' : 'r';
      const src = `src_${n}`;
      const vs = vectors(400, 8, 7);
      await c.createCollection({
        collection_name: src,
        fields: [
          { name: 'id', data_type: DataType.Int64, is_primary_key: true },
          { name: 'v', data_type: DataType.FloatVector, dim: 8 },
        ],
      });
      const rows = (from: number, to: number) => vs.slice(from, to).map((v, i) => ({ id: from + i, v }));
      expect((await c.insert({ collection_name: src, data: rows(0, 100) })).status.error_code).toBe(ErrorCode.SUCCESS);
      await c.flushSync({ collection_names: [src] });
      expect((await c.createSnapshot({ collection_name: src, snapshot_name: 's0' })).error_code).toBe(ErrorCode.SUCCESS);
      expect((await c.createIndex({ collection_name: src, field_name: 'v', index_type: 'FLAT', metric_type: 'L2' })).error_code).toBe(ErrorCode.SUCCESS);
      expect((await c.loadCollectionSync({ collection_name: src })).error_code).toBe(ErrorCode.SUCCESS);
      const atS0 = await idsOf(c, src);

      // The fault: etcd frozen (SIGSTOP) or stopped (SIGTERM; its data dir kept) while four calls are in
      // flight, and back after 7 s (the outage's length, not a wait for an event): longer than the 5 s
      // etcd request deadline and read retry window, so calls that reach etcd time out.
      if (outage === 'frozen') await etcd.freeze();
      else await etcd.halt();
      const inFlight = Promise.all([
        c.insert({ collection_name: src, data: rows(100, 200) }),
        c.flush({ collection_names: [src] }),
        c.createSnapshot({ collection_name: src, snapshot_name: 's1' }),
        c.restoreSnapshot({ snapshot_name: 's0', source_collection_name: src, target_collection_name: `r1_${n}` }),
      ]);
      // A read that needs etcd (snapshots live only there) gives up within its retry window with a
      // retriable code that is not UnexpectedError, and a reason naming etcd.
      const readStartMs = Date.now();
      const read = await c.listSnapshots({ collection_name: src });
      expect(Date.now() - readStartMs).toBeLessThan(7_000);
      expect(read.status.error_code, read.status.reason).toBe('NotReadyServe');
      expect(read.status.retriable).toBe(true);
      expect(read.status.reason).toMatch(/meta kv etcd \(127\.0\.0\.1:\d+\) unreachable/);
      // Reads served from memory do not wait for etcd.
      expect((await c.query({ collection_name: src, filter: 'id >= 0', output_fields: ['id'], limit: 1 })).status.error_code).toBe(ErrorCode.SUCCESS);
      await new Promise((r) => setTimeout(r, Math.max(0, readStartMs + 7_000 - Date.now())));
      if (outage === 'frozen') etcd.thaw();
      else await etcd.restart();
      const [ins, flush, snap, restore] = await inFlight;

      const inserted = expectSuccessOrReasoned(ins.status);
      expectSuccessOrReasoned(flush.status);
      const snapped = expectSuccessOrReasoned(snap);
      const restoring = expectSuccessOrReasoned(restore.status);

      // Acknowledged rows are there (a failed insert may or may not have landed; never partly).
      await until(
        async () => (await c.query({ collection_name: src, filter: 'id >= 0', output_fields: ['id'], limit: 1 })).status.error_code === ErrorCode.SUCCESS,
      );
      const live = await idsOf(c, src);
      const second = rows(100, 200).map((r) => r.id);
      if (inserted) expect(live).toEqual([...atS0, ...second]);
      else expect([atS0, [...atS0, ...second]]).toContainEqual(live);

      // The snapshot is committed (listed and describable) or absent; acknowledged means committed. Reads
      // of etcd come back by themselves once it is up again.
      let listed: string[] = [];
      await until(async () => {
        const l = await c.listSnapshots({ collection_name: src });
        listed = l.snapshots;
        return l.status.error_code === ErrorCode.SUCCESS;
      });
      if (snapped) expect(listed).toContain('s1');
      if (listed.includes('s1'))
        expect((await c.describeSnapshot({ snapshot_name: 's1', collection_name: src })).status.error_code).toBe(ErrorCode.SUCCESS);
      else expect(listed).toEqual(['s0']);

      // The restore: job Completed with the snapshot's rows, or Failed with the target absent.
      if (restoring) {
        const info = await waitRestore(c, restore.job_id);
        if (info.state === 'RestoreSnapshotCompleted') {
          expect((await c.loadCollectionSync({ collection_name: `r1_${n}` })).error_code).toBe(ErrorCode.SUCCESS);
          expect(await idsOf(c, `r1_${n}`)).toEqual(atS0);
        } else {
          await until(async () => !(await c.hasCollection({ collection_name: `r1_${n}` })).value);
        }
      } else {
        // A refused restore either never started (no target) or its job runs to the end on its own.
        await until(async () => {
          if (!(await c.hasCollection({ collection_name: `r1_${n}` })).value) return true;
          return (await c.loadCollectionSync({ collection_name: `r1_${n}` })).error_code === ErrorCode.SUCCESS;
        });
        if ((await c.hasCollection({ collection_name: `r1_${n}` })).value) expect(await idsOf(c, `r1_${n}`)).toEqual(atS0);
      }

      // Background work resumes without a restart: a flush, a snapshot and a restore started now complete.
      expect((await c.insert({ collection_name: src, data: rows(200, 300) })).status.error_code).toBe(ErrorCode.SUCCESS);
      const flushed = await c.flushSync({ collection_names: [src] });
      expect(flushed.status.error_code, flushed.status.reason).toBe(ErrorCode.SUCCESS);
      expect((await c.createSnapshot({ collection_name: src, snapshot_name: 's2' })).error_code).toBe(ErrorCode.SUCCESS);
      const after = await idsOf(c, src);
      const r2 = await c.restoreSnapshot({ snapshot_name: 's2', source_collection_name: src, target_collection_name: `r2_${n}` });
      expect(r2.status.error_code, r2.status.reason).toBe(ErrorCode.SUCCESS);
      expect((await waitRestore(c, r2.job_id)).state).toBe('RestoreSnapshotCompleted');
      expect((await c.loadCollectionSync({ collection_name: `r2_${n}` })).error_code).toBe(ErrorCode.SUCCESS);
      expect(await idsOf(c, `r2_${n}`)).toEqual(after);
    }, 120_000);
  }

  for (const mode of ['503', 'stall'] as const) {
    it(`S3 ${mode === '503' ? 'answering 503' : 'stalling'} during a restore and a flush: clean failure or completion, no half target, no leaked objects, GC keeps what is referenced`, async () => {
      const dataDir = await mkdtemp(join(tmpdir(), 'quiver-faults-'));
      dirs.push(dataDir);
      const prefix = `s3fault-${mode}`;
      const s2 = await spawnServer(dataDir, {
        ...awsEnv,
        QUIVER_META: `etcd://${etcd.endpoint}/${prefix}`,
        QUIVER_STORAGE: `s3://${BUCKET}/${prefix}`,
        QUIVER_S3_ENDPOINT: proxy.endpoint,
        QUIVER_AUTO_COMPACTION: 'false',
        QUIVER_GC_DROPPED_GRACE_MS: '0',
        QUIVER_GC_INTERVAL_MS: '200',
        QUIVER_COPY_CHECK_INTERVAL_MS: '200',
      });
      const store = new S3ObjectStore({ bucket: BUCKET, prefix, endpoint: s3.endpoint, region: 'us-east-1', credentials: S3RVER_CREDENTIALS });
      try {
        const c = s2.client;
        const vs = vectors(300, 8, 11);
        const rows = (from: number, to: number) => vs.slice(from, to).map((v, i) => ({ id: from + i, v }));
        await c.createCollection({
          collection_name: 'a',
          fields: [
            { name: 'id', data_type: DataType.Int64, is_primary_key: true },
            { name: 'v', data_type: DataType.FloatVector, dim: 8 },
          ],
        });
        const srcId = Number((await c.describeCollection({ collection_name: 'a' })).collectionID);
        expect((await c.insert({ collection_name: 'a', data: rows(0, 100) })).status.error_code).toBe(ErrorCode.SUCCESS);
        await c.flushSync({ collection_names: ['a'] });
        expect((await c.createSnapshot({ collection_name: 'a', snapshot_name: 'p0' })).error_code).toBe(ErrorCode.SUCCESS);
        const referenced = (await store.list(`insert_log/${srcId}/`)).map((o) => o.key);
        expect(referenced.length).toBeGreaterThan(0);

        proxy.mode = mode;
        // Not awaited: under a stall the calls that reach S3 wait for the fault to end.
        const restoreDuring = c.restoreSnapshot({ snapshot_name: 'p0', source_collection_name: 'a', target_collection_name: 'pr' });
        expect((await c.insert({ collection_name: 'a', data: rows(100, 200) })).status.error_code).toBe(ErrorCode.SUCCESS);
        const flushDuring = c.flush({ collection_names: ['a'] });
        // The fault lasts until S3 has been hit a few times (the SDK retries) or 5 s have passed.
        const faultEndMs = Date.now() + 5_000;
        await until(async () => proxy.faultsServed >= 5 || Date.now() > faultEndMs);
        proxy.heal();
        const restore = await restoreDuring;
        const restoring = expectSuccessOrReasoned(restore.status);
        expectSuccessOrReasoned((await flushDuring).status);

        if (restoring) {
          const info = await waitRestore(c, restore.job_id);
          if (info.state === 'RestoreSnapshotCompleted') {
            expect((await c.createIndex({ collection_name: 'pr', field_name: 'v', index_type: 'FLAT', metric_type: 'L2' })).error_code).toBe(
              ErrorCode.SUCCESS,
            );
            expect((await c.loadCollectionSync({ collection_name: 'pr' })).error_code).toBe(ErrorCode.SUCCESS);
            expect(await idsOf(c, 'pr')).toEqual(rows(0, 100).map((r) => r.id));
          } else {
            expect(info.reason ?? '').not.toBe('');
            await until(async () => !(await c.hasCollection({ collection_name: 'pr' })).value);
          }
        }

        // No leaked objects: every insert log belongs to a collection that exists (GC, zero grace, removes
        // a rolled-back target's copies), and every file the snapshot references is still there.
        const liveIds = new Set([srcId]);
        if ((await c.hasCollection({ collection_name: 'pr' })).value)
          liveIds.add(Number((await c.describeCollection({ collection_name: 'pr' })).collectionID));
        await until(async () => (await store.list('insert_log/')).every((o) => liveIds.has(Number(o.key.split('/')[1]))));
        const now = new Set((await store.list(`insert_log/${srcId}/`)).map((o) => o.key));
        expect(referenced.filter((k) => !now.has(k))).toEqual([]);

        // Work resumes without a restart.
        const flushed = await c.flushSync({ collection_names: ['a'] });
        expect(flushed.status.error_code, flushed.status.reason).toBe(ErrorCode.SUCCESS);
        const r2 = await c.restoreSnapshot({ snapshot_name: 'p0', source_collection_name: 'a', target_collection_name: 'pr2' });
        expect(r2.status.error_code, r2.status.reason).toBe(ErrorCode.SUCCESS);
        expect((await waitRestore(c, r2.job_id)).state).toBe('RestoreSnapshotCompleted');
        expect((await c.createIndex({ collection_name: 'a', field_name: 'v', index_type: 'FLAT', metric_type: 'L2' })).error_code).toBe(ErrorCode.SUCCESS);
        expect((await c.loadCollectionSync({ collection_name: 'a' })).error_code).toBe(ErrorCode.SUCCESS);
        expect(await idsOf(c, 'a')).toEqual(rows(0, 200).map((r) => r.id));
      } finally {
        proxy.heal();
        await s2.stop();
        await store.close();
      }
    }, 60_000);
  }
});
