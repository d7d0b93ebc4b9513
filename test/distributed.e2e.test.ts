/**
 * `quiver serve --meta etcd://... --storage s3://... --s3-endpoint ...` as a real process on a real etcd
 * and an S3-compatible server (s3rver), driven with the official SDK: the whole user workflow (create,
 * insert, flush, index, load, search, query, delete), a snapshot and its restore (server-side copies),
 * compaction, GC with zero grace, a restart on the same etcd + bucket, and the CLI; then the start
 * refusals for wrong URLs (one line, non-zero exit, nothing created in the data dir, etcd or bucket).
 *
 * Skipped, with the reason printed, only when the `etcd` binary is missing (CI installs it).
 */

import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DataType, ErrorCode, type MilvusClient } from '@zilliz/milvus2-sdk-node';
import { EtcdMetaKV } from '../src/meta/etcd-kv.js';
import { S3ObjectStore } from '../src/storage/s3-object-store.js';
import { EtcdServer, etcdUnavailableReason } from '../src/testing/etcd-server.js';
import { S3RVER_CREDENTIALS, S3Server } from '../src/testing/s3-server.js';
import { makeTestCertificates, opensslUnavailableReason } from '../src/testing/tls-certs.js';
import { until, vectors, waitRestore } from './helpers.js';
import { killAllServers, spawnServer, type ServerProcess } from './process.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const BUCKET = 'quiver-e2e';
const PREFIX = 'cluster1';
const META_ROOT = 'quiver-e2e';

const skipReason = etcdUnavailableReason();
if (skipReason !== undefined) console.warn(`distributed e2e skipped: ${skipReason}`);
/** `etcdctl` (Debian etcd-client) turns on etcd authentication for the auth test; without it that test is skipped. */
const noEtcdctl = spawnSync('etcdctl', ['version'], { encoding: 'utf8' }).status !== 0;
/** `openssl` makes the certificates of the TLS test; without it that test is skipped. */
const noOpenssl = opensslUnavailableReason() !== undefined;
if (skipReason === undefined && noOpenssl) console.warn(`distributed e2e: etcd TLS test skipped: ${opensslUnavailableReason()}`);
if (skipReason === undefined && noEtcdctl) console.warn('distributed e2e: etcd auth test skipped: no etcdctl on PATH (apt-get install etcd-client)');

/** What the SDK sees of a collection: every row's id and title, sorted by id. */
async function rowsOf(c: MilvusClient, collection: string): Promise<string[]> {
  const r = await c.query({ collection_name: collection, filter: 'id >= 0', output_fields: ['id', 'title'], limit: 16_384 });
  expect(r.status.error_code).toBe(ErrorCode.SUCCESS);
  return r.data.map((x) => `${String(x['id'])}:${String(x['title'])}`).sort((a, b) => parseInt(a) - parseInt(b));
}

/** Runs `quiver <args>` to its end (killed after 30 s: a start that should have been refused serves instead). */
function runCli(args: readonly string[], env: Record<string, string>): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'src/cli/main.ts'), ...args], {
      cwd: ROOT,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 90_000);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

describe.skipIf(skipReason !== undefined)('quiver serve on etcd + S3 (real processes, official SDK)', () => {
  let etcd: EtcdServer;
  let s3: S3Server;
  let store: S3ObjectStore;
  const dirs: string[] = [];
  let awsEnv: Record<string, string>;
  let serverEnv: Record<string, string>;

  beforeAll(async () => {
    [etcd, s3] = await Promise.all([EtcdServer.start(), S3Server.start([BUCKET])]);
    awsEnv = {
      AWS_ACCESS_KEY_ID: S3RVER_CREDENTIALS.accessKeyId,
      AWS_SECRET_ACCESS_KEY: S3RVER_CREDENTIALS.secretAccessKey,
      AWS_REGION: 'us-east-1',
      // The AWS SDK's multi-line notice about Node < 22 would be a second stderr "line" of every refusal.
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
    };
    serverEnv = {
      ...awsEnv,
      QUIVER_META: `etcd://${etcd.endpoint}/${META_ROOT}`,
      QUIVER_STORAGE: `s3://${BUCKET}/${PREFIX}`,
      QUIVER_S3_ENDPOINT: s3.endpoint,
      QUIVER_AUTO_COMPACTION: 'false',
      QUIVER_GC_DROPPED_GRACE_MS: '0',
      QUIVER_GC_INTERVAL_MS: '200',
      QUIVER_COPY_CHECK_INTERVAL_MS: '200',
    };
    store = new S3ObjectStore({ bucket: BUCKET, prefix: PREFIX, endpoint: s3.endpoint, region: 'us-east-1', credentials: S3RVER_CREDENTIALS });
  }, 60_000);

  afterAll(async () => {
    killAllServers();
    await store?.close();
    await Promise.all([etcd?.stop(), s3?.stop()]);
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });

  const freshDir = async (): Promise<string> => {
    const d = await mkdtemp(join(tmpdir(), 'quiver-dist-'));
    dirs.push(d);
    return d;
  };

  it('runs the SDK workflow, snapshots, restore, compaction, GC, a restart and the CLI; the data dir holds only the WAL and a file cache', async () => {
    const dataDir = await freshDir();
    let srv: ServerProcess = await spawnServer(dataDir, serverEnv);
    const c = srv.client;
    const vs = vectors(500, 8, 91);
    const title = (i: number) => `t${i}`;

    await c.createCollection({
      collection_name: 'src',
      fields: [
        { name: 'id', data_type: DataType.Int64, is_primary_key: true },
        { name: 'title', data_type: DataType.VarChar, max_length: 32 },
        { name: 'v', data_type: DataType.FloatVector, dim: 8 },
      ],
    });
    const collId = Number((await c.describeCollection({ collection_name: 'src' })).collectionID);
    const segment = async (b: number) => {
      const ins = await c.insert({
        collection_name: 'src',
        data: vs.slice(b * 100, b * 100 + 100).map((v, i) => ({ id: b * 100 + i, title: title(b * 100 + i), v })),
      });
      expect(ins.status.error_code).toBe(ErrorCode.SUCCESS);
      await c.flushSync({ collection_names: ['src'] });
    };
    for (let b = 0; b < 3; b++) await segment(b);
    expect(
      (await c.createIndex({ collection_name: 'src', field_name: 'v', index_type: 'HNSW', metric_type: 'L2', params: { M: 8, efConstruction: 32 } }))
        .error_code,
    ).toBe(ErrorCode.SUCCESS);
    const indexBuilt = async () => (await c.describeIndex({ collection_name: 'src', field_name: 'v' })).index_descriptions[0]?.state === 'Finished';
    await until(indexBuilt);
    expect((await c.loadCollectionSync({ collection_name: 'src' })).error_code).toBe(ErrorCode.SUCCESS);
    const hit = await c.search({ collection_name: 'src', data: [vs[42]!], limit: 1, output_fields: ['title'] });
    expect(hit.results[0]!.title).toBe('t42');
    expect((await c.delete({ collection_name: 'src', ids: [0, 1, 2] })).status.error_code).toBe(ErrorCode.SUCCESS);
    expect((await c.count({ collection_name: 'src' })).data).toBe(297);

    // Every file is in the bucket under the prefix; the data dir has no metadata and no objects.
    const insertLogs = await store.list(`insert_log/${collId}/`);
    expect(insertLogs.length).toBeGreaterThan(0);
    expect(existsSync(join(dataDir, 'meta.db'))).toBe(false);
    expect(existsSync(join(dataDir, 'objects'))).toBe(false);

    // Snapshot (holds the unflushed delete), then writes it must not see.
    expect((await c.createSnapshot({ collection_name: 'src', snapshot_name: 'snap' })).error_code).toBe(ErrorCode.SUCCESS);
    const atSnapshot = await rowsOf(c, 'src');
    expect(atSnapshot).toHaveLength(297);
    const referenced = new Set(
      (await store.list('')).map((o) => o.key).filter((k) => k.startsWith(`insert_log/${collId}/`) || k.startsWith('index_files/')),
    );
    for (let b = 3; b < 5; b++) await segment(b);
    await until(indexBuilt);

    // Restore: a job of server-side copies; the target holds exactly the snapshot.
    const r = await c.restoreSnapshot({ snapshot_name: 'snap', source_collection_name: 'src', target_collection_name: 'back' });
    expect(r.status.error_code).toBe(ErrorCode.SUCCESS);
    expect((await waitRestore(c, r.job_id)).state).toBe('RestoreSnapshotCompleted');
    expect((await c.loadCollectionSync({ collection_name: 'back' })).error_code).toBe(ErrorCode.SUCCESS);
    expect(await rowsOf(c, 'back')).toEqual(atSnapshot);
    const backId = Number((await c.describeCollection({ collection_name: 'back' })).collectionID);
    expect((await store.list(`insert_log/${backId}/`)).length).toBeGreaterThan(0);

    // Compaction merges the five segments; GC (zero grace) reclaims the two the snapshot does not hold
    // and keeps every file it does.
    const unreferenced = (await store.list(`insert_log/${collId}/`)).map((o) => o.key).filter((k) => !referenced.has(k));
    expect(unreferenced.length).toBeGreaterThan(0);
    const task = await c.compact({ collection_name: 'src' });
    await until(async () => String((await c.getCompactionState({ compactionID: task.compactionID })).state) === 'Completed');
    await until(async () => {
      const now = new Set((await store.list(`insert_log/${collId}/`)).map((o) => o.key));
      return unreferenced.every((k) => !now.has(k));
    });
    const afterGc = new Set((await store.list('')).map((o) => o.key));
    expect([...referenced].filter((k) => !afterGc.has(k))).toEqual([]);
    const live = await rowsOf(c, 'src');
    expect(live).toHaveLength(497);

    // The CLI against the running server.
    const list = await runCli(['snapshot', 'list', 'src', '--address', `127.0.0.1:${srv.port}`], {});
    expect(list.code, list.stderr).toBe(0);
    expect(list.stdout.trim().split('\n')).toEqual(['snap']);

    // Restart on the same etcd + bucket (and WAL): everything is still there; unflushed rows come back from the WAL.
    await c.insert({ collection_name: 'src', data: [{ id: 10_000, title: 'unflushed', v: vs[7]! }] });
    await srv.stop();
    srv = await spawnServer(dataDir, serverEnv);
    const c2 = srv.client;
    expect((await c2.loadCollectionSync({ collection_name: 'src' })).error_code).toBe(ErrorCode.SUCCESS);
    expect((await c2.loadCollectionSync({ collection_name: 'back' })).error_code).toBe(ErrorCode.SUCCESS);
    expect(await rowsOf(c2, 'src')).toEqual([...live, '10000:unflushed']);
    expect(await rowsOf(c2, 'back')).toEqual(atSnapshot);
    const again = await c2.search({ collection_name: 'back', data: [vs[42]!], limit: 1, output_fields: ['title'] });
    expect(again.results[0]!.title).toBe('t42');
    expect((await c2.listSnapshots({ collection_name: 'src' })).snapshots).toEqual(['snap']);
    await srv.stop();

    // Only the WAL and the file cache (plus the lock and scratch space) live in the data dir; every object is in S3,
    // the cache only holds copies of segment and index files.
    const entries = (await readdir(dataDir)).filter((e) => e !== 'tmp' && !/lock/i.test(e));
    expect(entries).toEqual(['s3-cache', 'wal']);
    const cached = (await readdir(join(dataDir, 's3-cache'))).sort();
    expect(cached.every((d) => ['insert_log', 'delta_log', 'stats_log', 'index_files'].includes(d))).toBe(true);
  }, 120_000);

  it('refuses to start on a wrong URL with one line naming the problem and leaves nothing behind', async () => {
    const parent = await freshDir();
    const cases: { name: string; args: string[]; env?: Record<string, string>; line: RegExp }[] = [
      { name: 'etcd without host', args: ['--meta', 'etcd://'], line: /meta URL "etcd:\/\/": no host/ },
      { name: 'unknown meta scheme', args: ['--meta', 'zookeeper://127.0.0.1:2181'], line: /meta URL .*unknown scheme "zookeeper"/ },
      { name: 'unknown storage scheme', args: ['--storage', 'gs://bucket'], line: /storage URL .*unknown scheme "gs"/ },
      { name: 'unreachable etcd', args: ['--meta', 'etcd://127.0.0.1:1/x'], line: /cannot use etcd at 127\.0\.0\.1:1/ },
      {
        name: 'missing bucket',
        args: ['--meta', `etcd://${etcd.endpoint}/refused-bucket`, '--storage', 's3://no-such-bucket', '--s3-endpoint', s3.endpoint],
        line: /bucket "no-such-bucket" does not exist/,
      },
      {
        name: 'wrong credentials',
        args: ['--meta', `etcd://${etcd.endpoint}/refused-creds`, '--storage', `s3://${BUCKET}/refused`, '--s3-endpoint', s3.endpoint],
        // s3rver checks the access key id (a wrong secret alone passes its HEAD checks).
        env: { AWS_ACCESS_KEY_ID: 'nobody', AWS_SECRET_ACCESS_KEY: 'wrong-secret' },
        line: /access denied to bucket "quiver-e2e"; check the AWS credentials/,
      },
    ];
    const results = await Promise.all(
      cases.map(async (k, i) => {
        const dataDir = join(parent, `d${i}`);
        const res = await runCli(['serve', '--port', '0', '--metrics-port', '0', '--data-dir', dataDir, ...k.args], { ...awsEnv, ...(k.env ?? {}) });
        return { k, dataDir, res };
      }),
    );
    for (const { k, dataDir, res } of results) {
      expect(res.code, k.name).not.toBe(0);
      const lines = res.stderr.split('\n').filter((l) => l.trim() !== '');
      expect(lines, `${k.name}: ${res.stderr}`).toHaveLength(1);
      expect(lines[0], k.name).toMatch(k.line);
      expect(res.stdout, k.name).not.toMatch(/quiver is serving/);
      expect(existsSync(dataDir), `${k.name}: data dir created`).toBe(false);
    }
    // Nothing was written to etcd under the refused roots, nor to the bucket under the refused prefix.
    for (const root of ['refused-bucket', 'refused-creds']) {
      const kv = new EtcdMetaKV({ hosts: [etcd.endpoint], root });
      try {
        expect(await kv.scan(''), root).toEqual([]);
        expect(await kv.revision(), root).toBe(0);
      } finally {
        await kv.close();
      }
    }
    const refused = new S3ObjectStore({ bucket: BUCKET, prefix: 'refused', endpoint: s3.endpoint, region: 'us-east-1', credentials: S3RVER_CREDENTIALS });
    try {
      expect(await refused.list('')).toEqual([]);
    } finally {
      await refused.close();
    }
  }, 150_000);

  it.skipIf(noEtcdctl)(
    'with etcd authentication: serves with the right user and password, refuses without or with a wrong one',
    async () => {
      const secured = await EtcdServer.start();
      try {
        const ctl = (...args: string[]) =>
          execFileSync('etcdctl', [`--endpoints=http://${secured.endpoint}`, ...args], { env: { ...process.env, ETCDCTL_API: '3' }, stdio: 'pipe' });
        ctl('user', 'add', 'root:rootpw');
        ctl('auth', 'enable');
        const parent = await freshDir();
        const meta = ['--meta', `etcd://${secured.endpoint}/auth`];
        const [none, wrong] = await Promise.all([
          runCli(['serve', '--port', '0', '--metrics-port', '0', '--data-dir', join(parent, 'a'), ...meta], awsEnv),
          runCli(
            ['serve', '--port', '0', '--metrics-port', '0', '--data-dir', join(parent, 'b'), ...meta, '--etcd-username', 'root', '--etcd-password', 'nope'],
            awsEnv,
          ),
        ]);
        expect(none.code).not.toBe(0);
        expect(none.stderr.trim()).toMatch(/^meta "etcd:\/\/.*": cannot use etcd at .*user name is empty$/);
        expect(wrong.code).not.toBe(0);
        expect(wrong.stderr.trim()).toMatch(/^meta "etcd:\/\/.*": cannot use etcd at .*authentication failed/);
        expect(existsSync(join(parent, 'a')) || existsSync(join(parent, 'b'))).toBe(false);
        const srv = await spawnServer(join(parent, 'c'), {
          ...awsEnv,
          QUIVER_META: `etcd://${secured.endpoint}/auth`,
          QUIVER_ETCD_USERNAME: 'root',
          QUIVER_ETCD_PASSWORD: 'rootpw',
        });
        try {
          await srv.client.createCollection({
            collection_name: 'authed',
            fields: [
              { name: 'id', data_type: DataType.Int64, is_primary_key: true },
              { name: 'v', data_type: DataType.FloatVector, dim: 2 },
            ],
          });
          expect((await srv.client.listCollections()).data.map((x) => x.name)).toEqual(['authed']);
        } finally {
          await srv.stop();
        }
      } finally {
        await secured.stop();
      }
    },
    60_000,
  );

  it.skipIf(noOpenssl)(
    'with etcd over TLS (client certificates required): serves with the CA and a client certificate, refuses a wrong CA or no certificate',
    async () => {
      const parent = await freshDir();
      const certs = makeTestCertificates(parent);
      const secured = await EtcdServer.start({
        tls: {
          certFile: certs.serverCertFile,
          keyFile: certs.serverKeyFile,
          caFile: certs.caFile,
          client: { certFile: certs.clientCertFile, keyFile: certs.clientKeyFile },
        },
      });
      try {
        const meta = ['--meta', `etcd://${secured.endpoint}/tls`];
        const serve = (dir: string, ...flags: string[]) =>
          runCli(['serve', '--port', '0', '--metrics-port', '0', '--data-dir', join(parent, dir), ...meta, ...flags], awsEnv);
        const [plain, wrongCa, noCert] = await Promise.all([
          serve('a'),
          serve('b', '--etcd-ca-file', certs.otherCaFile, '--etcd-cert-file', certs.clientCertFile, '--etcd-key-file', certs.clientKeyFile),
          serve('c', '--etcd-ca-file', certs.caFile),
        ]);
        for (const [name, r] of [
          ['plain http', plain],
          ['wrong CA', wrongCa],
          ['no client certificate', noCert],
        ] as const) {
          expect(r.code, name).not.toBe(0);
          // Node's own one-time warning: grpc-js sends the IP of an etcd endpoint as the TLS server name.
          const stderr = r.stderr
            .split('\n')
            .filter((l) => !/^\(node:\d+\) \[DEP0123\]|^\(Use `node --trace-deprecation/.test(l))
            .join('\n');
          expect(stderr.trim(), `${name}: ${r.stderr}`).toMatch(/^meta "etcd:\/\/.*": cannot use etcd at 127\.0\.0\.1:\d+: [^\n]+$/);
        }
        for (const d of ['a', 'b', 'c']) expect(existsSync(join(parent, d)), d).toBe(false);

        const env = {
          ...awsEnv,
          QUIVER_META: `etcd://${secured.endpoint}/tls`,
          QUIVER_ETCD_CA_FILE: certs.caFile,
          QUIVER_ETCD_CERT_FILE: certs.clientCertFile,
          QUIVER_ETCD_KEY_FILE: certs.clientKeyFile,
        };
        let srv = await spawnServer(join(parent, 'd'), env);
        try {
          await srv.client.createCollection({
            collection_name: 'over_tls',
            fields: [
              { name: 'id', data_type: DataType.Int64, is_primary_key: true },
              { name: 'v', data_type: DataType.FloatVector, dim: 2 },
            ],
          });
          expect((await srv.client.insert({ collection_name: 'over_tls', data: [{ id: 1, v: [0.5, 0.5] }] })).status.error_code).toBe(ErrorCode.SUCCESS);
          await srv.client.flushSync({ collection_names: ['over_tls'] });
          expect((await srv.client.createSnapshot({ collection_name: 'over_tls', snapshot_name: 's' })).error_code).toBe(ErrorCode.SUCCESS);
          // A restart reads it all back over TLS.
          await srv.stop();
          srv = await spawnServer(join(parent, 'd'), env);
          expect((await srv.client.listCollections()).data.map((x) => x.name)).toEqual(['over_tls']);
          expect((await srv.client.listSnapshots({ collection_name: 'over_tls' })).snapshots).toEqual(['s']);
        } finally {
          await srv.stop();
        }
      } finally {
        await secured.stop();
      }
    },
    90_000,
  );
});
