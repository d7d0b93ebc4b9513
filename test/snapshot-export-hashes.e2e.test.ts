import { createHash } from 'node:crypto';
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DataType, ErrorCode } from '@zilliz/milvus2-sdk-node';
import { exportSnapshot, restoreExternal } from '../src/cli/export-rpc.js';
import { CATALOG_KEY_PREFIX, type SegmentRecord } from '../src/coord/records.js';
import { openMeta } from '../src/meta/open-meta.js';
import { startTestServer, vectors, waitRestore, type TestServer } from './helpers.js';

/**
 * Issue 13, export speed: every binlog, deltalog, statslog and index file records its SHA-256 when it is
 * written (flush, delete, index build, compaction), a local restore and a restore on another server keep
 * it (the bytes are the same), the exporter names blobs by it without reading the files, and a recorded
 * hash that no longer matches the bytes (bit rot between write and export) is caught by the
 * restore-external that verifies every blob: the job fails naming the file and leaves nothing behind.
 */

const DIM = 8;
const vs = vectors(600, DIM, 23);
const sha256 = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

interface BundleManifest {
  readonly files: { key: string; sha256: string; size: number }[];
}

async function filesUnder(dir: string): Promise<string[]> {
  try {
    const entries = await readdir(dir, { recursive: true, withFileTypes: true });
    return entries.filter((e) => e.isFile()).map((e) => relative(dir, join(e.parentPath, e.name)));
  } catch {
    return [];
  }
}

function liveSegments(t: TestServer, name: string): SegmentRecord[] {
  const engine = t.server.engine;
  const coll = engine.catalog.resolveCollection('default', name);
  return engine.catalog.segments(coll.id).filter((s) => s.state === 'Flushed');
}

/** Every file of every live segment: key and recorded hash (undefined when none was recorded). */
function recordedFiles(segments: readonly SegmentRecord[]): { key: string; sha256: string | undefined; kind: string }[] {
  const out: { key: string; sha256: string | undefined; kind: string }[] = [];
  for (const s of segments) {
    for (const logs of Object.values(s.binlogs)) for (const b of logs) out.push({ key: b.path, sha256: b.sha256, kind: 'binlog' });
    for (const b of s.deltalogs) out.push({ key: b.path, sha256: b.sha256, kind: 'deltalog' });
    for (const b of s.statslogs) out.push({ key: b.path, sha256: b.sha256, kind: 'statslog' });
    for (const ix of s.indexes) ix.files.forEach((f, i) => out.push({ key: f, sha256: ix.filesSha256?.[i], kind: 'index' }));
  }
  return out;
}

/** Asserts each live file of the collection has a recorded hash equal to the SHA-256 of its bytes on disk. */
async function expectRecordedHashesTrue(t: TestServer, name: string): Promise<Map<string, number>> {
  const kinds = new Map<string, number>();
  for (const f of recordedFiles(liveSegments(t, name))) {
    expect(f.sha256, `${name}: ${f.key} has no recorded sha256`).toMatch(/^[0-9a-f]{64}$/);
    expect(f.sha256, `${name}: ${f.key}`).toBe(sha256(await readFile(join(t.dataDir, 'objects', f.key))));
    kinds.set(f.kind, (kinds.get(f.kind) ?? 0) + 1);
  }
  return kinds;
}

describe('SHA-256 recorded at write time, carried through compaction and restores, trusted by export', () => {
  let a: TestServer;
  let b: TestServer;
  let roots: string;

  beforeAll(async () => {
    roots = await mkdtemp(join(tmpdir(), 'quiver-exports-h-'));
    a = await startTestServer({ autoCompaction: false, exportRoots: roots, copyCheckIntervalMs: 50 });
    b = await startTestServer({ autoCompaction: false, exportRoots: roots, copyCheckIntervalMs: 50 });
    const c = a.client;
    await c.createCollection({
      collection_name: 'h',
      fields: [
        { name: 'id', data_type: DataType.Int64, is_primary_key: true },
        { name: 'title', data_type: DataType.VarChar, max_length: 32 },
        { name: 'v', data_type: DataType.FloatVector, dim: DIM },
      ],
    });
    for (let part = 0; part < 3; part++) {
      await c.insert({
        collection_name: 'h',
        data: vs.slice(part * 200, part * 200 + 200).map((v, i) => ({ id: part * 200 + i, title: `t${part * 200 + i}`, v })),
      });
      await c.flushSync({ collection_names: ['h'] });
    }
    await c.createIndex({ collection_name: 'h', field_name: 'v', index_type: 'HNSW', metric_type: 'L2', params: { M: 8, efConstruction: 64 } });
    await a.server.engine.waitForIndexes(a.server.engine.catalog.resolveCollection('default', 'h').id);
    await c.delete({ collection_name: 'h', ids: [3, 250, 590] });
    await c.flushSync({ collection_names: ['h'] });
  });
  afterAll(async () => {
    await a?.close();
    await b?.close();
    if (roots) await rm(roots, { recursive: true, force: true });
  });

  it('flush, delete and index build record the hash of the bytes they wrote', async () => {
    const kinds = await expectRecordedHashesTrue(a, 'h');
    expect(kinds.get('binlog')).toBeGreaterThanOrEqual(3 * 4); // 3 segments × (id, title, v, timestamps)
    expect(kinds.get('statslog')).toBeGreaterThanOrEqual(3);
    expect(kinds.get('deltalog')).toBeGreaterThanOrEqual(1);
    expect(kinds.get('index')).toBeGreaterThanOrEqual(3);
  });

  it('a compaction target records the hashes of its merged binlogs and its index', async () => {
    const coll = a.server.engine.catalog.resolveCollection('default', 'h');
    await a.server.engine.compact(coll.id, { force: true, wait: true });
    await a.server.engine.waitForIndexes(coll.id);
    const segs = liveSegments(a, 'h');
    expect(segs.some((s) => (s.compactedFrom?.length ?? 0) > 1)).toBe(true);
    const kinds = await expectRecordedHashesTrue(a, 'h');
    expect(kinds.get('index')).toBeGreaterThanOrEqual(1);
    await a.client.loadCollectionSync({ collection_name: 'h' });
    expect((await a.client.count({ collection_name: 'h' })).data).toBe(600 - 3);
  });

  let bundle: BundleManifest;
  let bundleUri = '';

  it('a local restore keeps the hashes, and the export lists the recorded hash of every segment file', async () => {
    const c = a.client;
    expect((await c.createSnapshot({ collection_name: 'h', snapshot_name: 'hs' })).error_code).toBe(ErrorCode.SUCCESS);
    const rs = await c.restoreSnapshot({ snapshot_name: 'hs', source_collection_name: 'h', target_collection_name: 'h_local' });
    expect(rs.status.error_code, rs.status.reason).toBe(ErrorCode.SUCCESS);
    expect((await waitRestore(c, rs.job_id)).state).toBe('RestoreSnapshotCompleted');
    const restoredKinds = await expectRecordedHashesTrue(a, 'h_local');
    expect(restoredKinds.get('binlog')).toBeGreaterThan(0);

    const r = await exportSnapshot(a.server.port, { collection_name: 'h', name: 'hs', target_s3_path: `file://${roots}/h` });
    expect(r.status.code, r.status.reason).toBe(0);
    bundleUri = r.snapshot_metadata_uri!;
    bundle = JSON.parse(await readFile(fileURLToPath(bundleUri), 'utf8')) as BundleManifest;
    const listed = new Map(bundle.files.map((f) => [f.key, f.sha256]));
    const recorded = recordedFiles(liveSegments(a, 'h'));
    expect(recorded.length).toBeGreaterThan(0);
    for (const f of recorded) expect(listed.get(f.key), f.key).toBe(f.sha256);
    // Every blob holds the bytes its name says (the bytes were sound, so trusting the record was right).
    for (const f of bundle.files) {
      const blob = await readFile(join(roots, 'h', 'blobs', 'sha256', f.sha256.slice(0, 2), f.sha256));
      expect(sha256(blob), f.key).toBe(f.sha256);
    }
  });

  it('a restore on another server verifies the bundle, and its segments keep the hashes', async () => {
    const r = await restoreExternal(b.server.port, { target_collection_name: 'h_ext', snapshot_metadata_uri: bundleUri });
    expect(r.status.code, r.status.reason).toBe(0);
    const info = await waitRestore(b.client, r.job_id!);
    expect(info.state, info.reason).toBe('RestoreSnapshotCompleted');
    const kinds = await expectRecordedHashesTrue(b, 'h_ext');
    expect(kinds.get('binlog')).toBeGreaterThan(0);
    await b.client.loadCollectionSync({ collection_name: 'h_ext' });
    expect((await b.client.count({ collection_name: 'h_ext' })).data).toBe(600 - 3);
  });

  it('bit rot after the write: the export trusts the recorded hash, the restore elsewhere fails naming the file, nothing is left', async () => {
    const c = a.client;
    expect((await c.createSnapshot({ collection_name: 'h', snapshot_name: 'rot' })).error_code).toBe(ErrorCode.SUCCESS);
    const victim = recordedFiles(liveSegments(a, 'h')).find((f) => f.kind === 'binlog' && f.key.startsWith('insert_log/'))!;
    const path = join(a.dataDir, 'objects', victim.key);
    const bytes = await readFile(path);
    bytes[bytes.length >> 1]! ^= 0x04;
    // A new inode: a local restore above may share the old one by hardlink, and it must stay sound.
    await rm(path);
    await writeFile(path, bytes);
    const r = await exportSnapshot(a.server.port, { collection_name: 'h', name: 'rot', target_s3_path: `file://${roots}/rot` });
    expect(r.status.code, r.status.reason).toBe(0);
    const m = JSON.parse(await readFile(fileURLToPath(r.snapshot_metadata_uri!), 'utf8')) as BundleManifest;
    const listed = m.files.find((f) => f.key === victim.key)!;
    expect(listed.sha256).toBe(victim.sha256);
    expect(sha256(await readFile(join(roots, 'rot', 'blobs', 'sha256', listed.sha256.slice(0, 2), listed.sha256)))).not.toBe(listed.sha256);

    const engine = b.server.engine;
    for (const coll of engine.catalog.allCollections().filter((x) => x.state === 'Created')) await engine.waitForIndexes(coll.id);
    const before = (await filesUnder(join(b.dataDir, 'objects'))).filter((f) => !f.startsWith('.quiver-tmp')).sort();
    const job = await restoreExternal(b.server.port, { target_collection_name: 'h_rot', snapshot_metadata_uri: r.snapshot_metadata_uri! });
    expect(job.status.code, job.status.reason).toBe(0);
    const info = await waitRestore(b.client, job.job_id!);
    expect(info.state).toBe('RestoreSnapshotFailed');
    expect(info.reason).toContain(victim.key);
    expect(info.reason).toMatch(/corrupt/);
    expect((await b.client.hasCollection({ collection_name: 'h_rot' })).value).toBe(false);
    const after = (await filesUnder(join(b.dataDir, 'objects'))).filter((f) => !f.startsWith('.quiver-tmp')).sort();
    expect(after.filter((f) => !before.includes(f))).toEqual([]);
  });

  it('data written before hashes were recorded: the export hashes it, and the bundle restores elsewhere', async () => {
    let old = await startTestServer({ autoCompaction: false, exportRoots: roots });
    const dir = old.dataDir;
    try {
      const c = old.client;
      await c.createCollection({
        collection_name: 'old',
        fields: [
          { name: 'id', data_type: DataType.Int64, is_primary_key: true },
          { name: 'v', data_type: DataType.FloatVector, dim: DIM },
        ],
      });
      await c.insert({ collection_name: 'old', data: vs.slice(0, 300).map((v, i) => ({ id: i, v })) });
      await c.flushSync({ collection_names: ['old'] });
      await c.createIndex({ collection_name: 'old', field_name: 'v', index_type: 'HNSW', metric_type: 'L2', params: { M: 8, efConstruction: 64 } });
      await old.server.engine.waitForIndexes(old.server.engine.catalog.resolveCollection('default', 'old').id);
      await c.delete({ collection_name: 'old', ids: [1, 2] });
      await c.flushSync({ collection_names: ['old'] });
      // What an older Quiver left in its catalog: segment records without hashes.
      await old.close({ keepData: true });
      const kv = await openMeta(undefined, { dataDir: dir });
      let stripped = 0;
      for (const e of await kv.scan(`${CATALOG_KEY_PREFIX}seg/`)) {
        const text = new TextDecoder().decode(e.value).replace(/,"(sha256|filesSha256)":("[0-9a-f]{64}"|\[[^\]]*\])/g, () => {
          stripped++;
          return '';
        });
        await kv.put(e.key, text);
      }
      await kv.close();
      expect(stripped).toBeGreaterThan(0);
      old = await startTestServer({ autoCompaction: false, exportRoots: roots }, {}, dir);
      const files = recordedFiles(liveSegments(old, 'old'));
      expect(files.length).toBeGreaterThan(0);
      expect(files.filter((f) => f.sha256 !== undefined)).toEqual([]);

      expect((await old.client.createSnapshot({ collection_name: 'old', snapshot_name: 'o' })).error_code).toBe(ErrorCode.SUCCESS);
      const r = await exportSnapshot(old.server.port, { collection_name: 'old', name: 'o', target_s3_path: `file://${roots}/old` });
      expect(r.status.code, r.status.reason).toBe(0);
      const m = JSON.parse(await readFile(fileURLToPath(r.snapshot_metadata_uri!), 'utf8')) as BundleManifest;
      const listed = new Map(m.files.map((f) => [f.key, f.sha256]));
      for (const f of files) expect(listed.get(f.key), f.key).toBe(sha256(await readFile(join(dir, 'objects', f.key))));

      const job = await restoreExternal(b.server.port, { target_collection_name: 'from_old', snapshot_metadata_uri: r.snapshot_metadata_uri! });
      expect(job.status.code, job.status.reason).toBe(0);
      const info = await waitRestore(b.client, job.job_id!);
      expect(info.state, info.reason).toBe('RestoreSnapshotCompleted');
      await b.client.loadCollectionSync({ collection_name: 'from_old' });
      expect((await b.client.count({ collection_name: 'from_old' })).data).toBe(298);
      // Its manifests recorded no hashes, so neither do the restored segments: their next export hashes them.
      expect(recordedFiles(liveSegments(b, 'from_old')).filter((f) => f.sha256 !== undefined)).toEqual([]);
    } finally {
      await old.close();
    }
  });
});
