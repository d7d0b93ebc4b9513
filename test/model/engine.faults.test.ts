/**
 * Fault tests of the storage engine (issue 3, "Bad input and faults"), in process over real files:
 * store puts failing in the middle of a compaction or a flush, store deletes failing under GC, and
 * binlogs damaged or missing on disk at restart. Each test states what must hold; a test of a product
 * bug found here is kept as a regression test with a comment saying what went wrong.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { SegmentRecord } from '../../src/coord/records.js';
import { anyFault, failKeysWithPrefix, failNth } from '../../src/storage/faulty-object-store.js';
import type { ObjectStore } from '../../src/storage/object-store.js';
import { settle } from '../../src/testing/index.js';
import { Harness, sortRows, type Row } from './harness.js';

const PK_FIELD_ID = '100';
const VECTOR_FIELD_ID = '101';
const TS_FIELD_ID = '1';

const open: Harness[] = [];
afterEach(async () => {
  for (const h of open.splice(0)) await h.destroy();
});

async function harness(opts: Parameters<typeof Harness.create>[0] = {}): Promise<Harness> {
  const h = await Harness.create({ faulty: true, ...opts });
  open.push(h);
  return h;
}

function rows(from: number, n: number, version = 1): Row[] {
  return Array.from({ length: n }, (_, i) => ({ pk: BigInt(from + i), version }));
}

/**
 * A collection with three flushed segments of 6 rows (pks 0..17), a delete of pk 3 flushed as a
 * deltalog (1/6 deleted stays under the delete-ratio trigger, so a forced compaction is one merge of all
 * three), and optionally an HNSW index on every segment. Returns the expected visible rows.
 */
async function seed(h: Harness, opts: { index?: boolean; loaded?: boolean } = {}): Promise<{ id: number; expected: Row[] }> {
  const id = await h.createCollection('f', { index: opts.index ?? true });
  if (opts.loaded ?? true) await h.loadAndWait(id);
  for (let b = 0; b < 3; b++) {
    await h.insert(id, undefined, rows(b * 6, 6));
    await h.engine.flushCollection(id);
  }
  await h.deletePks(id, [3n]);
  await h.engine.flushCollection(id);
  await h.settle(id);
  return { id, expected: rows(0, 18).filter((r) => r.pk !== 3n) };
}

function flushedIds(h: Harness, id: number): number[] {
  return h.engine.flushedSegments(id).map((s) => s.id);
}

/** Every file of every live segment record exists; returns the number checked. */
async function expectLiveFilesPresent(h: Harness, id: number): Promise<number> {
  let n = 0;
  for (const s of h.engine.catalog.segments(id)) {
    if (s.state === 'Dropped') continue;
    for (const key of filesOf(s)) {
      expect(await h.fileExists(key), `live file ${key} of segment ${s.id}`).toBe(true);
      n++;
    }
  }
  return n;
}

function filesOf(s: SegmentRecord): string[] {
  return [
    ...Object.values(s.binlogs).flatMap((l) => l.map((b) => b.path)),
    ...s.deltalogs.map((d) => d.path),
    ...s.statslogs.map((d) => d.path),
    ...s.indexes.flatMap((i) => i.files),
  ];
}

/** Moves the fake clock past the orphan grace of every file that exists now (see harness.ts). */
function pastOrphanGrace(h: Harness): void {
  h.clock.set(Math.max(h.clock.nowMs(), Date.now()) + h.opts.orphanGraceMs + 1000);
}

async function unreferencedFiles(h: Harness): Promise<string[]> {
  const refs = h.referencedKeys();
  return (await h.listFiles()).map((f) => f.key).filter((k) => !refs.has(k));
}

// ------------------------------------------------------------------------------------------------

describe('compaction with a failing store put', () => {
  // A compaction of three indexed segments writes 4 files in parallel (pk, vector, ts binlogs and a
  // stats log) and then the target's index file: puts 1-5. 'after' = the put took effect, then failed.
  const cases = [1, 2, 3, 4, 5].flatMap((n) => (['before', 'after'] as const).map((when) => ({ n, when })));

  it.each(cases)(
    'put $n failing ($when): compaction fails, sources stay, nothing lost; a healthy retry succeeds and GC reclaims the debris',
    async ({ n, when }) => {
      const h = await harness();
      const { id, expected } = await seed(h);
      const sources = flushedIds(h, id);
      expect(sources).toHaveLength(3);

      h.faults.setFailOn(failNth('put', n), when);
      const failed = await h.engine.compact(id, { force: true, wait: true });
      await h.storeIdle();
      h.faults.setFailOn(() => false);
      expect(failed.plans).toHaveLength(1);
      expect(failed.plans[0]!.state).toBe('Failed');
      expect(failed.plans[0]!.error).toContain('injected fault on put');
      // The sources are still the served segments; no target was published.
      expect(flushedIds(h, id)).toEqual(sources);
      expect(h.engine.catalog.segments(id).map((s) => `${s.id}:${s.state}`)).toEqual(sources.map((s) => `${s}:Flushed`));
      expect(await h.readRows(id)).toEqual(expected);
      await expectLiveFilesPresent(h, id);
      // The failed attempt left files nothing lists (at least the one written before or by the fault).
      const debris = await unreferencedFiles(h);
      if (when === 'after' || n > 1) expect(debris.length).toBeGreaterThan(0);

      const ok = await h.engine.compact(id, { force: true, wait: true });
      expect(ok.plans.map((p) => p.state)).toEqual(['Completed']);
      const target = ok.plans[0]!.target;
      expect(flushedIds(h, id)).toEqual([target]);
      expect(await h.readRows(id)).toEqual(expected);

      // GC past both graces: the three sources and the debris go, the target's files stay.
      pastOrphanGrace(h);
      const report = await h.gcTick();
      expect(report.errors).toEqual([]);
      expect(report.segmentsRemoved).toBe(3);
      expect(report.orphanFilesDeleted).toBe(debris.length);
      expect(await unreferencedFiles(h)).toEqual([]);
      expect(await expectLiveFilesPresent(h, id)).toBeGreaterThan(0);

      await h.restart();
      expect(flushedIds(h, id)).toEqual([target]);
      expect(await h.readRows(id)).toEqual(expected);
    },
  );

  it('a compaction of a released collection whose source binlog cannot be read fails and leaves everything as it was', async () => {
    const h = await harness();
    const { id, expected } = await seed(h, { loaded: false, index: false });
    const sources = flushedIds(h, id);
    // The merge reads local binlog files on a worker thread: make one unreadable for the first attempt.
    const victim = h.engine.catalog.segment(id, sources[0]!)!.binlogs['100']![0]!.path;
    const bytes = await h.engine.store.get(victim);
    await h.engine.store.delete(victim);
    const failed = await h.engine.compact(id, { force: true, wait: true });
    await h.engine.store.put(victim, bytes);
    expect(failed.plans.map((p) => p.state)).toEqual(['Failed']);
    expect(failed.plans[0]!.error).toMatch(/ENOENT|no such file/);
    expect(flushedIds(h, id)).toEqual(sources);
    expect(h.engine.rowCount(id)).toBe(expected.length);
    expect((await h.engine.compact(id, { force: true, wait: true })).plans.map((p) => p.state)).toEqual(['Completed']);
    await h.restart();
    await h.loadAndWait(id);
    expect(await h.readRows(id)).toEqual(expected);
  });
});

// ------------------------------------------------------------------------------------------------

describe('flush with a failing store put', () => {
  it('the flush errors, the rows stay visible, and a restart before any other flush recovers them from the WAL', async () => {
    const h = await harness();
    const id = await h.createCollection('f', { index: true });
    await h.loadAndWait(id);
    await h.insert(id, undefined, rows(0, 6));
    h.faults.setFailOn(failNth('put', 2));
    await expect(h.engine.flushCollection(id)).rejects.toThrow(/injected fault on put/);
    await h.storeIdle();
    h.faults.setFailOn(() => false);
    expect(await h.readRows(id)).toEqual(rows(0, 6));
    expect(h.engine.catalog.segments(id)).toEqual([]);

    await h.restart();
    expect(await h.readRows(id)).toEqual(rows(0, 6));
    expect((await h.engine.flushCollection(id)).segmentIds).toHaveLength(1);
    await h.restart();
    expect(await h.readRows(id)).toEqual(rows(0, 6));
    expect(h.engine.catalog.segments(id).map((s) => s.numRows)).toEqual([6]);
    // What the failed flush wrote is garbage GC reclaims once past the orphan grace.
    const debris = await unreferencedFiles(h);
    expect(debris.length).toBeGreaterThan(0);
    pastOrphanGrace(h);
    expect((await h.gcTick()).orphanFilesDeleted).toBe(debris.length);
    await expectLiveFilesPresent(h, id);
    expect(await h.readRows(id)).toEqual(rows(0, 6));
  });

  // Regression test (a bug found by this suite, now fixed): a failed flush leaves its segments in phase 'sealed' (rt.sealAll() took them out of rt.growing
  // and the catch block does not put them back). The retry's sealAll() only returns growing segments, so
  // the stuck ones are never written, yet the retry commits the WAL checkpoint past their rows
  // (lastAppend + 1). They stay visible from memory until the next restart, which loses them: an
  // acknowledged insert is gone. Same with any later successful flush, not only a retry.
  // Fix idea (engine.ts flushCollection): flush every segment whose phase is 'sealed' (not only the ones
  // sealed by this call), or return them to 'growing' in the catch block.
  it('a retried flush writes the rows of the failed one; nothing is lost after a restart', async () => {
    const h = await harness();
    const id = await h.createCollection('f');
    await h.loadAndWait(id);
    await h.insert(id, undefined, rows(0, 2));
    h.faults.setFailOn(failNth('put', 1));
    await expect(h.engine.flushCollection(id)).rejects.toThrow(/injected fault/);
    await h.storeIdle();
    h.faults.setFailOn(() => false);
    expect(await h.readRows(id)).toEqual(rows(0, 2));
    await h.engine.flushCollection(id);
    expect(h.engine.catalog.segments(id).map((s) => s.numRows)).toEqual([2]); // fails: no segment record
    await h.restart();
    expect(await h.readRows(id)).toEqual(rows(0, 2)); // fails: []
  });

  it('a flush whose deltalog put fails keeps the deletes pending; the retry writes them and they survive a restart', async () => {
    const h = await harness();
    const { id, expected } = await seed(h, { index: false });
    await h.deletePks(id, [0n, 7n, 17n]);
    const now = expected.filter((r) => ![0n, 7n, 17n].includes(r.pk));
    h.faults.setFailOn(failKeysWithPrefix('put', 'delta_log/'));
    await expect(h.engine.flushCollection(id)).rejects.toThrow(/injected fault on put "delta_log\//);
    await h.storeIdle();
    h.faults.setFailOn(() => false);
    expect(await h.readRows(id)).toEqual(now);
    await h.engine.flushCollection(id);
    const deltalogs = h.engine.catalog.segments(id).reduce((n, s) => n + s.deltalogs.length, 0);
    expect(deltalogs).toBe(4); // pk 3's from seed, and one per segment for 0, 7 and 17
    await h.restart();
    expect(await h.readRows(id)).toEqual(now);
    // And once more from the files alone: a compaction rewrites the segments from their binlogs + deltalogs.
    expect((await h.engine.compact(id, { force: true, wait: true })).plans.every((p) => p.state === 'Completed')).toBe(true);
    await h.restart();
    expect(await h.readRows(id)).toEqual(now);
  });
});

// ------------------------------------------------------------------------------------------------

describe('GC with failing store deletes', () => {
  /** Seeds, compacts (three Dropped sources) and moves the clock past the dropped grace. */
  async function withDroppedSources(h: Harness): Promise<{ id: number; expected: Row[]; dropped: SegmentRecord[] }> {
    const { id, expected } = await seed(h);
    const sources = flushedIds(h, id);
    expect((await h.engine.compact(id, { force: true, wait: true })).plans.map((p) => p.state)).toEqual(['Completed']);
    const dropped = h.engine.catalog.segments(id).filter((s) => sources.includes(s.id));
    expect(dropped.map((s) => s.state)).toEqual(['Dropped', 'Dropped', 'Dropped']);
    h.clock.advance(h.opts.droppedGraceMs + 1);
    return { id, expected, dropped };
  }

  it('keeps the meta of a segment whose file delete failed, retries next tick, and never touches a live file', async () => {
    const h = await harness();
    const { id, expected, dropped } = await withDroppedSources(h);
    h.faults.setFailOn(failKeysWithPrefix('delete', 'insert_log/'));
    const bad = await h.gcTick();
    h.faults.setFailOn(() => false);
    expect(bad.errors.length).toBeGreaterThan(0);
    expect(bad.errors.every((e) => e.includes('injected fault on delete'))).toBe(true);
    expect(bad.segmentsRemoved).toBe(0);
    // Records kept (they are the list of what is left to delete); their insert binlogs still there.
    for (const s of dropped) {
      expect(h.engine.catalog.segment(id, s.id)?.state).toBe('Dropped');
      for (const key of Object.values(s.binlogs).flatMap((l) => l.map((b) => b.path))) expect(await h.fileExists(key)).toBe(true);
    }
    await expectLiveFilesPresent(h, id);
    expect(await h.readRows(id)).toEqual(expected);

    const good = await h.gcTick();
    expect(good.errors).toEqual([]);
    expect(good.segmentsRemoved).toBe(3);
    for (const s of dropped) {
      expect(h.engine.catalog.segment(id, s.id)).toBeUndefined();
      for (const key of filesOf(s)) expect(await h.fileExists(key), key).toBe(false);
    }
    await expectLiveFilesPresent(h, id);
    await h.restart();
    expect(await h.readRows(id)).toEqual(expected);
  });

  it('a delete that took effect but reported failure is retried harmlessly (deleting an absent key succeeds)', async () => {
    const h = await harness();
    const { id, expected, dropped } = await withDroppedSources(h);
    h.faults.setFailOn(failNth('delete', 1), 'after');
    const bad = await h.gcTick();
    h.faults.setFailOn(() => false);
    expect(bad.errors).toHaveLength(1);
    expect(bad.segmentsRemoved).toBe(2);
    expect(h.engine.catalog.segments(id).filter((s) => s.state === 'Dropped')).toHaveLength(1);
    const good = await h.gcTick();
    expect(good.errors).toEqual([]);
    expect(good.segmentsRemoved).toBe(1);
    for (const s of dropped) for (const key of filesOf(s)) expect(await h.fileExists(key)).toBe(false);
    await expectLiveFilesPresent(h, id);
    expect(await h.readRows(id)).toEqual(expected);
  });

  it('a dropped collection keeps its record until every segment of it is reclaimed', async () => {
    const h = await harness();
    const { id } = await seed(h);
    const other = await h.createCollection('other');
    await h.loadAndWait(other);
    await h.insert(other, undefined, rows(100, 4));
    await h.engine.flushCollection(other);
    await h.engine.dropCollection('default', 'f');
    h.clock.advance(h.opts.droppedGraceMs + 1);
    h.faults.setFailOn(anyFault(failNth('delete', 2), failKeysWithPrefix('delete', 'index_files/')));
    const bad = await h.gcTick();
    h.faults.setFailOn(() => false);
    expect(bad.errors.length).toBeGreaterThan(0);
    expect(bad.collectionsRemoved).toBe(0);
    expect(h.engine.catalog.collectionIncludingDropped(id)?.state).toBe('Dropped');
    expect(h.engine.catalog.segments(id).length).toBeGreaterThan(0);
    await expectLiveFilesPresent(h, other);

    const good = await h.gcTick();
    expect(good.errors).toEqual([]);
    expect(good.collectionsRemoved).toBe(1);
    expect(h.engine.catalog.collectionIncludingDropped(id)).toBeUndefined();
    expect(h.engine.catalog.segments(id)).toEqual([]);
    expect((await h.listFiles()).filter((f) => f.key.startsWith(`insert_log/${id}/`) || f.key.startsWith(`delta_log/${id}/`))).toEqual([]);
    // Nothing of the dropped collection is left anywhere (index files carry no collection id).
    pastOrphanGrace(h);
    expect((await h.gcTick()).errors).toEqual([]);
    expect(await unreferencedFiles(h)).toEqual([]);
    expect(await expectLiveFilesPresent(h, other)).toBeGreaterThan(0);
    await h.restart();
    expect(await h.readRows(other)).toEqual(rows(100, 4));
  });

  it('a failing list leaves orphans alone for this tick and reports it; the next tick reclaims them', async () => {
    const h = await harness();
    const { id, expected } = await seed(h, { index: false });
    h.faults.setFailOn(failNth('put', 2));
    await h.engine.compact(id, { force: true, wait: true });
    await h.storeIdle();
    const debris = await unreferencedFiles(h);
    expect(debris.length).toBeGreaterThan(0);
    pastOrphanGrace(h);
    h.faults.setFailOn(failKeysWithPrefix('list', ''));
    const bad = await h.gcTick();
    h.faults.setFailOn(() => false);
    expect(bad.errors.some((e) => e.includes('list'))).toBe(true);
    expect(bad.orphanFilesDeleted).toBe(0);
    expect(await unreferencedFiles(h)).toEqual(debris);
    const good = await h.gcTick();
    expect(good.errors).toEqual([]);
    expect(good.orphanFilesDeleted).toBe(debris.length);
    await expectLiveFilesPresent(h, id);
    expect(await h.readRows(id)).toEqual(expected);
  });
});

// ------------------------------------------------------------------------------------------------

type Damage = 'garbage' | 'truncated' | 'missing' | 'valueflip';
type Target = 'pk binlog' | 'vector binlog' | 'ts binlog' | 'deltalog';

function targetKey(s: SegmentRecord, target: Target): string {
  switch (target) {
    case 'pk binlog':
      return s.binlogs[PK_FIELD_ID]![0]!.path;
    case 'vector binlog':
      return s.binlogs[VECTOR_FIELD_ID]![0]!.path;
    case 'ts binlog':
      return s.binlogs[TS_FIELD_ID]![0]!.path;
    case 'deltalog':
      return s.deltalogs[0]!.path;
  }
}

async function damage(h: Harness, key: string, how: Damage): Promise<void> {
  const store = h.localStore;
  const bytes = await store.get(key);
  switch (how) {
    case 'garbage':
      await store.put(
        key,
        Uint8Array.from({ length: bytes.length }, (_, i) => (i * 131 + 7) & 0xff),
      );
      return;
    case 'truncated':
      await store.put(key, bytes.slice(0, Math.floor(bytes.length / 2)));
      return;
    case 'missing':
      await store.delete(key);
      return;
    case 'valueflip': {
      // A vector value (0.5 = 00 00 00 3f little-endian) turned into 0.25: a well-formed file whose
      // content changed, which only the column checksum can tell.
      const at = indexOf(bytes, [0x00, 0x00, 0x00, 0x3f]);
      expect(at).toBeGreaterThanOrEqual(0);
      const out = bytes.slice();
      out.set([0x00, 0x00, 0x80, 0x3e], at);
      await store.put(key, out);
      return;
    }
  }
}

function indexOf(hay: Uint8Array, needle: readonly number[]): number {
  outer: for (let i = 0; i + needle.length <= hay.length; i++) {
    for (let j = 0; j < needle.length; j++) if (hay[i + j] !== needle[j]) continue outer;
    return i;
  }
  return -1;
}

describe('damaged or missing segment files at restart', () => {
  const cases: { target: Target; how: Damage }[] = [
    ...(['pk binlog', 'vector binlog', 'ts binlog', 'deltalog'] as const).flatMap((target) =>
      (['garbage', 'truncated', 'missing'] as const).map((how) => ({ target, how })),
    ),
    { target: 'vector binlog', how: 'valueflip' },
  ];

  it.each(cases)('$target $how: the segment reports the file, reads fail naming it, no row silently disappears', async ({ target, how }) => {
    const h = await harness();
    // No index: a loaded segment would otherwise answer searches from its index file, not the binlog.
    const { id } = await seed(h, { index: false });
    // The segment holding pk 3, the one with a deltalog.
    const victim = h.engine.catalog.segments(id).find((s) => s.deltalogs.length > 0)!;
    const key = targetKey(victim, target);
    await damage(h, key, how);
    await h.restart();

    const seg = h.engine.runtime(id).segments.get(victim.id)!;
    expect(seg.error).toBeDefined();
    expect(seg.error).toContain(`segment ${victim.id}`);
    expect(seg.error).toContain(key);
    const reason = new RegExp(`segment ${victim.id}\\b.*${key.replace(/\//g, '\\/')}`);
    await expect(h.engine.query(id, { filter: '', partitionNames: [], offset: 0, limit: undefined })).rejects.toThrow(reason);
    await expect(h.engine.count(id, { filter: 'id >= 0', partitionNames: [] })).rejects.toThrow(reason);
    // Loading again does not paper over it, and compaction leaves the damaged segment alone.
    await h.loadAndWait(id);
    await expect(h.engine.count(id, { filter: '', partitionNames: [] })).rejects.toThrow(reason);
    await h.engine.compact(id, { force: true, wait: true });
    expect(h.engine.catalog.segment(id, victim.id)?.state).toBe('Flushed');
    // GC, even past every grace, keeps the damaged segment's remaining files (it is still live meta).
    pastOrphanGrace(h);
    expect((await h.gcTick()).errors).toEqual([]);
    for (const k of filesOf(victim)) if (k !== key || how !== 'missing') expect(await h.fileExists(k), k).toBe(true);
  });

  it('released collection: a damaged vector binlog is found at load, not at restart, and then fails reads naming it', async () => {
    const h = await harness();
    const { id } = await seed(h, { index: false, loaded: false });
    const victim = h.engine.catalog.segments(id)[0]!;
    const key = targetKey(victim, 'vector binlog');
    await damage(h, key, 'garbage');
    await h.restart();
    expect(h.engine.runtime(id).segments.get(victim.id)!.error).toBeUndefined();
    expect(h.engine.rowCount(id)).toBe(17);
    await h.loadAndWait(id);
    expect(h.engine.runtime(id).segments.get(victim.id)!.error).toContain(key);
    await expect(h.engine.query(id, { filter: '', partitionNames: [], offset: 0, limit: undefined })).rejects.toThrow(
      new RegExp(`segment ${victim.id}\\b.*not loaded.*${key.replace(/\//g, '\\/')}`),
    );
  });

  it('released collection: a damaged pk binlog is found at restart', async () => {
    const h = await harness();
    const { id } = await seed(h, { index: false, loaded: false });
    const victim = h.engine.catalog.segments(id)[1]!;
    const key = targetKey(victim, 'pk binlog');
    await damage(h, key, 'truncated');
    await h.restart();
    expect(h.engine.runtime(id).segments.get(victim.id)!.error).toContain(key);
    await h.loadAndWait(id);
    await expect(h.engine.count(id, { filter: '', partitionNames: [] })).rejects.toThrow(new RegExp(`segment ${victim.id}\\b`));
  });
});

// ------------------------------------------------------------------------------------------------

describe('WAL, restart and lifecycle', () => {
  it('the unflushed rows of a dropped partition stay dropped after a restart', async () => {
    const h = await harness();
    const id = await h.createCollection('f');
    await h.engine.createPartition('default', 'f', 'p1');
    await h.insert(id, 'p1', rows(0, 3));
    await h.insert(id, undefined, rows(10, 2));
    await h.engine.dropPartition('default', 'f', 'p1');
    await h.restart();
    await h.loadAndWait(id);
    expect(await h.readRows(id)).toEqual(rows(10, 2));
    await h.engine.flushCollection(id);
    expect(h.engine.catalog.segments(id).map((s) => s.partitionId)).toEqual([h.collection(id).partitions[0]!.id]);
  });

  // Regression test (a bug found by this suite, now fixed): Engine.#truncateWal only looks at the checkpoints of *dirty* collections, but #replayWal starts
  // at the minimum checkpoint of *all* live collections, and LocalWal.read throws IoKeyNotFound for a
  // position that was truncated away. A collection that was flushed once and then left alone keeps an old
  // checkpoint; once other collections' writes rotate the WAL and a background tick truncates it, the
  // engine cannot open any more (the server does not start). Repro: two collections, flush A, write B
  // until the WAL rotates, flush B, backgroundTick(), restart → "WAL position 1 ... was truncated".
  // Fix idea: in #replayWal start at max(min checkpoint, oldest retained position) (a clean collection
  // has nothing before that to replay), or advance clean collections' checkpoints when truncating.
  it('a clean collection with an old checkpoint does not keep the engine from opening after WAL truncation', async () => {
    const h = await harness({ walSegmentBytesMax: 2048 });
    const a = await h.createCollection('a');
    const b = await h.createCollection('b');
    await h.insert(a, undefined, rows(0, 1));
    await h.engine.flushCollection(a);
    for (let i = 0; i < 20; i++) await h.insert(b, undefined, rows(100 + i, 1));
    await h.engine.flushCollection(b);
    await h.engine.backgroundTick();
    await h.restart(); // throws IoKeyNotFound from LocalWal.read
    await h.loadAndWait(a);
    expect(await h.readRows(a)).toEqual(rows(0, 1));
  });

  it('WAL truncation with one collection loses nothing across restarts', async () => {
    const h = await harness({ walSegmentBytesMax: 2048 });
    const id = await h.createCollection('f');
    await h.loadAndWait(id);
    const all: Row[] = [];
    for (let round = 0; round < 3; round++) {
      for (let i = 0; i < 8; i++) {
        const r = rows(round * 100 + i, 1, round + 1);
        await h.insert(id, undefined, r);
        all.push(...r);
      }
      if (round < 2) await h.engine.flushCollection(id);
      await h.engine.backgroundTick();
      await h.restart();
      expect(await h.readRows(id)).toEqual(sortRows([...all]));
    }
  });
});

/** Holds puts under `prefix` until `open()`; `reached` resolves when the first one arrives. */
class PutGate {
  readonly reached: Promise<void>;
  #arrive!: () => void;
  #open!: () => void;
  readonly #opened: Promise<void>;
  isOpen = false;

  constructor(readonly prefix: string) {
    this.reached = new Promise((r) => (this.#arrive = r));
    this.#opened = new Promise((r) => (this.#open = r));
  }

  open(): void {
    this.isOpen = true;
    this.#open();
  }

  wrap(inner: ObjectStore): ObjectStore {
    return {
      name: inner.name,
      put: async (key, data) => {
        if (key.startsWith(this.prefix)) {
          this.#arrive();
          await this.#opened;
        }
        return inner.put(key, data);
      },
      get: (key) => inner.get(key),
      getRange: (key, offset, length) => inner.getRange(key, offset, length),
      stat: (key) => inner.stat(key),
      list: (prefix) => inner.list(prefix),
      delete: (key) => inner.delete(key),
      deletePrefix: (prefix) => inner.deletePrefix(prefix),
      copy: (src, dst) => inner.copy(src, dst),
      localPath: (key) => inner.localPath?.(key),
      close: () => inner.close(),
    };
  }
}

describe('engine lifecycle', () => {
  // Regression test (a bug found by this suite, now fixed): Engine.close() does not wait for index builds it scheduled (#scheduleIndexBuild runs
  // #buildMissingIndexes from a setImmediate and nobody keeps the promise). A build that is already
  // writing its file when close() is called carries on after close() resolved: it puts the index file and
  // commits the segment record after the caller has moved on to closing the store and the MetaKV (server
  // close, a test restart). It then fails on the closed store/meta (logged, leaves an orphan index file),
  // or, in a same-process restart, races the new engine over the same dir. STYLE.md rule 5: stop()
  // awaits the work in flight. Fix idea: keep the scheduled build promises and await them in close()
  // (builds already check #closed between segments).
  it('close() waits for an index build in flight', async () => {
    const gate = new PutGate('index_files/');
    const h = await harness({ wrapStore: (inner) => gate.wrap(inner) });
    const id = await h.createCollection('f', { index: true });
    await h.insert(id, undefined, rows(0, 4));
    await h.engine.flushCollection(id);
    await gate.reached; // the background build is putting its index file
    const closing = h.engine.close().then(() => gate.isOpen);
    // Let close() run as far as it gets without the build; then let the build finish.
    await settle(10);
    gate.open();
    const buildWasDoneWhenClosed = await closing;
    expect(buildWasDoneWhenClosed).toBe(true); // fails: close() resolved with the put still held
  });
});
