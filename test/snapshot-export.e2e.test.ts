import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DataType, ErrorCode } from '@zilliz/milvus2-sdk-node';
import { exportSnapshot, restoreExternal } from '../src/cli/export-rpc.js';
import { startTestServer, vectors, waitRestore, type TestServer } from './helpers.js';

/**
 * ExportSnapshot / RestoreExternalSnapshot (docs/SNAPSHOTS.md "Export bundles"): a bundle exported by
 * one server is restored by another (its own data dir) into a collection equal row for row, with its
 * index, consistency level and properties; a second export writes only what changed; every bad input of
 * issue 13 is refused before a byte moves, and a damaged bundle fails the job naming the file and leaves
 * nothing behind.
 */

const DIM = 8;
const vs = vectors(400, DIM, 11);

async function filesUnder(dir: string): Promise<string[]> {
  try {
    const entries = await readdir(dir, { recursive: true, withFileTypes: true });
    return entries.filter((e) => e.isFile()).map((e) => relative(dir, join(e.parentPath, e.name)));
  } catch {
    return [];
  }
}

describe('snapshot export and restore on another server', () => {
  let a: TestServer;
  let b: TestServer;
  let roots: string;
  let bundleUri = '';

  beforeAll(async () => {
    roots = await mkdtemp(join(tmpdir(), 'quiver-exports-'));
    a = await startTestServer({ autoCompaction: false, exportRoots: roots });
    b = await startTestServer({ autoCompaction: false, exportRoots: roots, copyCheckIntervalMs: 50 });
    const c = a.client;
    await c.createCollection({
      collection_name: 'src',
      fields: [
        { name: 'id', data_type: DataType.Int64, is_primary_key: true },
        { name: 'title', data_type: DataType.VarChar, max_length: 32 },
        { name: 'v', data_type: DataType.FloatVector, dim: DIM },
      ],
      consistency_level: 'Bounded',
      properties: { 'collection.ttl.seconds': '0', 'mmap.enabled': 'false' },
    });
    await c.createPartition({ collection_name: 'src', partition_name: 'p1' });
    await c.insert({ collection_name: 'src', data: vs.slice(0, 200).map((v, i) => ({ id: i, title: `t${i}`, v })) });
    await c.flushSync({ collection_names: ['src'] });
    await c.createIndex({ collection_name: 'src', field_name: 'v', index_type: 'HNSW', metric_type: 'L2', params: { M: 8, efConstruction: 64 } });
    await a.server.engine.waitForIndexes(a.server.engine.catalog.resolveCollection('default', 'src').id);
    await c.insert({ collection_name: 'src', partition_name: 'p1', data: vs.slice(200, 300).map((v, i) => ({ id: 200 + i, title: `t${200 + i}`, v })) });
    await c.delete({ collection_name: 'src', ids: [0, 250] });
    expect((await c.createSnapshot({ collection_name: 'src', snapshot_name: 's1' })).error_code).toBe(ErrorCode.SUCCESS);
    // After the snapshot: neither may appear in the restore.
    await c.upsert({ collection_name: 'src', data: [{ id: 5, title: 'late', v: vs[5]! }] });
    await c.delete({ collection_name: 'src', ids: [7] });
  });
  afterAll(async () => {
    await a?.close();
    await b?.close();
    if (roots) await rm(roots, { recursive: true, force: true });
  });

  it('exports a bundle whose manifest lists every file with its checksum, under the allowed root', async () => {
    const r = await exportSnapshot(a.server.port, { collection_name: 'src', name: 's1', target_s3_path: `file://${roots}/daily` });
    expect(r.status.code, r.status.reason).toBe(0);
    bundleUri = r.snapshot_metadata_uri!;
    expect(bundleUri).toMatch(/^file:\/\/.*\/daily\/bundles\/default\/src\/s1-\d+\.json$/);
    const manifest = JSON.parse(await readFile(fileURLToPath(bundleUri), 'utf8')) as {
      bundle_format_version: number;
      files: { key: string; sha256: string }[];
    };
    expect(manifest.bundle_format_version).toBe(1);
    const kinds = new Set(manifest.files.map((f) => f.key.split('/')[0]));
    for (const k of ['insert_log', 'delta_log', 'stats_log', 'index_files', 'snapshots']) expect(kinds, k).toContain(k);
    const blobs = await filesUnder(join(roots, 'daily', 'blobs'));
    expect(new Set(blobs.map((p) => p.split('/').pop()))).toEqual(new Set(manifest.files.map((f) => f.sha256)));
  });

  it('restores the bundle on another server: same rows, schema, partitions, index, consistency level and properties', async () => {
    const r = await restoreExternal(b.server.port, { target_collection_name: 'copy', snapshot_metadata_uri: bundleUri });
    expect(r.status.code, r.status.reason).toBe(0);
    const info = await waitRestore(b.client, r.job_id!);
    expect(info.state, info.reason).toBe('RestoreSnapshotCompleted');
    const c = b.client;
    const d = await c.describeCollection({ collection_name: 'copy' });
    expect(d.schema.fields.map((f) => [f.name, f.data_type])).toEqual([
      ['id', 'Int64'],
      ['title', 'VarChar'],
      ['v', 'FloatVector'],
    ]);
    expect(d.consistency_level).toBe('Bounded');
    const props = Object.fromEntries(d.properties.map((p) => [p.key, p.value]));
    expect(props).toMatchObject({ 'collection.ttl.seconds': '0', 'mmap.enabled': 'false' });
    expect((await c.listPartitions({ collection_name: 'copy' })).partition_names).toEqual(['_default', 'p1']);
    expect(
      (await c.describeIndex({ collection_name: 'copy', field_name: 'v' })).index_descriptions[0]!.params.find((p) => p.key === 'index_type')?.value,
    ).toBe('HNSW');
    await c.loadCollectionSync({ collection_name: 'copy' });
    expect((await c.count({ collection_name: 'copy' })).data).toBe(298);
    const rows = await c.query({ collection_name: 'copy', filter: 'id in [0, 5, 7, 250]', output_fields: ['title'] });
    expect(rows.data.map((x) => [Number(x.id), x.title]).sort()).toEqual([
      [5, 't5'],
      [7, 't7'],
    ]);
    const s = await c.search({ collection_name: 'copy', data: [vs[42]!], limit: 1, output_fields: ['title'] });
    expect(s.results[0]!.title).toBe('t42');
    // The staged bundle is gone once the job ended.
    expect(await filesUnder(join(b.dataDir, 'objects', 'imports'))).toEqual([]);
  });

  it('a second export into the same root after a small change writes only the new files', async () => {
    const before = new Set(await filesUnder(join(roots, 'daily', 'blobs')));
    await a.client.insert({ collection_name: 'src', data: [{ id: 1000, title: 'new', v: vs[300]! }] });
    expect((await a.client.createSnapshot({ collection_name: 'src', snapshot_name: 's2' })).error_code).toBe(ErrorCode.SUCCESS);
    const r = await exportSnapshot(a.server.port, { collection_name: 'src', name: 's2', target_s3_path: `file://${roots}/daily` });
    expect(r.status.code, r.status.reason).toBe(0);
    const after = await filesUnder(join(roots, 'daily', 'blobs'));
    const added = after.filter((f) => !before.has(f));
    const manifest = JSON.parse(await readFile(fileURLToPath(r.snapshot_metadata_uri!), 'utf8')) as { files: unknown[] };
    // New: the new segment's files, its manifest, the snapshot's metadata; everything else is shared.
    expect(added.length).toBeGreaterThan(0);
    expect(added.length).toBeLessThan(manifest.files.length / 2);
  });

  it('refuses targets outside the export roots, traversal, unknown schemes and bad specs, before writing anything', async () => {
    const outside = await mkdtemp(join(tmpdir(), 'quiver-outside-'));
    try {
      const cases: [string, string | undefined, RegExp][] = [
        [`file://${outside}`, undefined, /outside the allowed export roots/],
        [`file://${roots}/../${relative(join(roots, '..'), outside)}`, undefined, /'\.' and '\.\.' path segments/],
        [`file://${roots}/%2e%2e/x`, undefined, /'\.' and '\.\.' path segments/],
        ['s3://other-bucket/x', undefined, /outside the allowed export roots/],
        ['http://example.com/x', undefined, /expected file:\/\/\/DIR or s3:\/\/BUCKET\/PREFIX/],
        ['', undefined, /required/],
        [`file://${roots}/ok`, '{"endpoint": "http://x"}', /external_spec applies to s3:\/\/ locations only/],
        [`file://${roots}/ok`, '{"acess_key": "x"}', /unknown key "acess_key"/],
        [`file://${roots}/ok`, 'not json', /not valid JSON/],
      ];
      for (const [target, spec, why] of cases) {
        const r = await exportSnapshot(a.server.port, {
          collection_name: 'src',
          name: 's1',
          target_s3_path: target,
          ...(spec ? { external_spec: spec } : {}),
        });
        expect([1100, 1101], target).toContain(r.status.code);
        expect(r.status.reason, target).toMatch(why);
      }
      expect(await filesUnder(outside)).toEqual([]);
      expect(await filesUnder(join(roots, 'ok'))).toEqual([]);
      // The same check guards the restore source.
      const src = await restoreExternal(b.server.port, {
        target_collection_name: 'x',
        snapshot_metadata_uri: `file://${outside}/bundles/default/src/s1-1.json`,
      });
      expect(src.status.reason).toMatch(/outside the allowed export roots/);
    } finally {
      await rm(outside, { recursive: true, force: true });
    }
    const missing = await exportSnapshot(a.server.port, { collection_name: 'src', name: 'ghost', target_s3_path: `file://${roots}/x` });
    expect(missing.status.code).toBe(2600);
  });

  it('a location that cannot be written fails the export with the reason, and leaves no bundle manifest', async () => {
    // A regular file where a directory must go: unwritable even for root (the tests may run as root).
    await writeFile(join(roots, 'blocked'), 'not a directory');
    const r = await exportSnapshot(a.server.port, { collection_name: 'src', name: 's1', target_s3_path: `file://${roots}/blocked/sub` });
    expect(r.status.code).not.toBe(0);
    expect(r.status.reason).toMatch(/ENOTDIR|not a directory/i);
  });

  /** A fresh copy of the exported bundle to damage. */
  async function bundleCopy(
    name: string,
  ): Promise<{ dir: string; uri: string; manifest: { bundle_format_version: number; files: { key: string; sha256: string }[] } }> {
    const dir = join(roots, name);
    await mkdir(dir, { recursive: true });
    const r = await exportSnapshot(a.server.port, { collection_name: 'src', name: 's1', target_s3_path: `file://${dir}` });
    expect(r.status.code, r.status.reason).toBe(0);
    return { dir, uri: r.snapshot_metadata_uri!, manifest: JSON.parse(await readFile(fileURLToPath(r.snapshot_metadata_uri!), 'utf8')) };
  }
  const blobPath = (dir: string, sha: string) => join(dir, 'blobs', 'sha256', sha.slice(0, 2), sha);

  it('a missing or flipped file fails the job naming it, and nothing is left behind on the target server', async () => {
    // Index builds of the earlier restore write files in the background: let them finish first.
    const engine = b.server.engine;
    for (const coll of engine.catalog.allCollections().filter((x) => x.state === 'Created')) await engine.waitForIndexes(coll.id);
    const objectsBefore = (await filesUnder(join(b.dataDir, 'objects'))).filter((f) => !f.startsWith('.quiver-tmp')).sort();
    for (const damage of ['missing', 'flipped'] as const) {
      const { dir, uri, manifest } = await bundleCopy(`damaged-${damage}`);
      const victim = manifest.files.find((f) => f.key.startsWith('insert_log/'))!;
      if (damage === 'missing') await rm(blobPath(dir, victim.sha256));
      else {
        const bytes = await readFile(blobPath(dir, victim.sha256));
        bytes[bytes.length >> 1]! ^= 0x01;
        await writeFile(blobPath(dir, victim.sha256), bytes);
      }
      const r = await restoreExternal(b.server.port, { target_collection_name: `bad_${damage}`, snapshot_metadata_uri: uri });
      expect(r.status.code, r.status.reason).toBe(0);
      const info = await waitRestore(b.client, r.job_id!);
      expect(info.state).toBe('RestoreSnapshotFailed');
      expect(info.reason).toContain(victim.key);
      expect(info.reason).toMatch(damage === 'missing' ? /missing/ : /corrupt: sha256/);
      expect((await b.client.hasCollection({ collection_name: `bad_${damage}` })).value).toBe(false);
    }
    const objectsAfter = (await filesUnder(join(b.dataDir, 'objects'))).filter((f) => !f.startsWith('.quiver-tmp')).sort();
    expect(objectsAfter.filter((f) => !objectsBefore.includes(f) && !f.startsWith('index_files/'))).toEqual([]);
    // No index file of a collection that never existed: every new one belongs to a live segment.
    const live = new Set(engine.catalog.allCollections().flatMap((x) => engine.catalog.segments(x.id).map((g) => String(g.id))));
    for (const f of objectsAfter.filter((x) => !objectsBefore.includes(x) && x.startsWith('index_files/'))) expect(live, f).toContain(f.split('/')[4]);
  });

  it('refuses a bundle of a newer format version, a partial bundle, and a bundle of another schema into an existing name', async () => {
    const { uri } = await bundleCopy('newer');
    const path = fileURLToPath(uri);
    const m = JSON.parse(await readFile(path, 'utf8')) as Record<string, unknown>;
    await writeFile(path, JSON.stringify({ ...m, bundle_format_version: 2 }));
    const newer = await restoreExternal(b.server.port, { target_collection_name: 'n', snapshot_metadata_uri: uri });
    expect(newer.status.code).toBe(1100);
    expect(newer.status.reason).toMatch(/bundle_format_version 2 is newer .*upgrade Quiver/);

    // What kill -9 mid-export leaves: blobs, no manifest. It is never taken for a bundle.
    const partial = await restoreExternal(b.server.port, {
      target_collection_name: 'n',
      snapshot_metadata_uri: uri.replace(/s1-(\d+)\.json$/, 's9-$1.json'),
    });
    expect(partial.status.code).toBe(1000);
    expect(partial.status.reason).toMatch(/does not exist/);

    await b.client.createCollection({
      collection_name: 'other',
      fields: [
        { name: 'pk', data_type: DataType.VarChar, is_primary_key: true, max_length: 8 },
        { name: 'e', data_type: DataType.FloatVector, dim: 4 },
      ],
    });
    const other = await restoreExternal(b.server.port, { target_collection_name: 'other', snapshot_metadata_uri: bundleUri });
    expect(other.status.code).not.toBe(0);
    expect(other.status.reason).toMatch(/another schema than the bundle's/);
    const same = await restoreExternal(b.server.port, { target_collection_name: 'copy', snapshot_metadata_uri: bundleUri });
    expect(same.status.code).toBe(1100);
    expect(same.status.reason).toMatch(/already exists/);
  });
});
