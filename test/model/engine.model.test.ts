/**
 * Model-based test of the storage engine plus GC (issue 3: "GC never deletes a file still listed by live
 * meta"). Random sequences of inserts, upserts, deletes, flushes, forced compactions, partition and
 * collection DDL, load/release, background ticks, GC ticks (with the clock moved past the dropped and
 * the orphan grace) and restarts run against a real Engine over SQLite + local files + LocalWal, and a
 * plain model of which (pk, version) rows each partition holds. Some flushes, compactions and GC ticks
 * run with the Nth store put (or delete) failing, which is what leaves orphan files for GC to find.
 * Each run starts from a new data dir with 0-3 flushed batches (so compactions have something to merge)
 * and then takes up to 25 random steps. After every step:
 *
 *   (a) the visible rows equal the model's: per partition and in total, by (pk, version), so a deleted or
 *       upserted-over row that stays visible, a lost row, or a row in the wrong partition all fail; when
 *       the collection is released, the live row counts (which need no loaded data) are compared instead;
 *   (b) every file listed by a live segment record (not Dropped, collection not Dropped) or by a Dropped
 *       one still in its grace exists in the object store, and the engine's flushed segments are
 *       exactly the catalog's Flushed records of the live collection;
 *   (c) right after a healthy GC tick run with the clock past the orphan grace: no file under
 *       insert_log/, delta_log/, stats_log/ or index_files/ is both unlisted by every segment record and
 *       older than the grace (GC leaves no garbage);
 *   (d) right after a healthy GC tick run with the clock past the dropped grace: no Dropped segment or
 *       collection record whose grace is over remains (nothing holds a reference here).
 *
 * The GC's orphan rule compares file mtimes (real time) with the injected clock; the fake clock starts at
 * Date.now() and a move "past the orphan grace" sets it to max(fake, real) + grace, so every file that
 * exists at that moment counts as old.
 *
 * Reproduce a failure: QUIVER_MODEL_SEED=<seed> npx vitest run test/model/engine.model.test.ts
 * (fast-check also prints the shrunk counterexample and its path). QUIVER_MODEL_RUNS sets the number of
 * runs, QUIVER_MODEL_STATS=1 prints coverage counters.
 */
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { segmentFiles } from '../../src/coord/gc/segment-files.js';
import { failNth } from '../../src/storage/faulty-object-store.js';
import { Harness, sortRows, type Row } from './harness.js';

const SEED = Number(process.env.QUIVER_MODEL_SEED ?? 20_240_917);
const RUNS = Number(process.env.QUIVER_MODEL_RUNS ?? 60);
const STEPS_MAX = 25;
const PK_MAX = 20;
const NAME = 'm';
const DEFAULT = '_default';


type PartitionName = 'p1' | 'p2';
type Advance = 'none' | 'dropped' | 'orphan';

type Op =
  | { readonly t: 'insert'; readonly part: number; readonly pks: readonly number[] }
  | { readonly t: 'upsert'; readonly part: number; readonly pks: readonly number[] }
  | { readonly t: 'delete'; readonly pks: readonly number[] }
  /** failPut > 0: that put of the flush fails (after it took effect when `after`). */
  | { readonly t: 'flush'; readonly failPut: number; readonly after: boolean }
  | { readonly t: 'compact'; readonly failPut: number; readonly after: boolean }
  | { readonly t: 'createPartition'; readonly name: PartitionName }
  | { readonly t: 'dropPartition'; readonly name: PartitionName }
  | { readonly t: 'dropCollection'; readonly index: boolean }
  /** failDelete > 0: that delete of the tick fails. */
  | { readonly t: 'gc'; readonly advance: Advance; readonly failDelete: number }
  | { readonly t: 'restart' }
  | { readonly t: 'background'; readonly idle: boolean }
  | { readonly t: 'release' }
  | { readonly t: 'load' };

const pks = fc.array(fc.integer({ min: 0, max: PK_MAX }), { minLength: 1, maxLength: 8 });
const partName = fc.constantFrom<PartitionName>('p1', 'p2');
/** Mostly healthy; sometimes the nth call fails. */
const faultAt = (max: number) => fc.oneof({ weight: 4, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.integer({ min: 1, max }) });
const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 8, arbitrary: fc.record({ t: fc.constant('insert' as const), part: fc.nat(5), pks }) },
  { weight: 3, arbitrary: fc.record({ t: fc.constant('upsert' as const), part: fc.nat(5), pks }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('delete' as const), pks }) },
  { weight: 6, arbitrary: fc.record({ t: fc.constant('flush' as const), failPut: faultAt(5), after: fc.boolean() }) },
  { weight: 4, arbitrary: fc.record({ t: fc.constant('compact' as const), failPut: faultAt(6), after: fc.boolean() }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('createPartition' as const), name: partName }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('dropPartition' as const), name: partName }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('dropCollection' as const), index: fc.boolean() }) },
  {
    weight: 3,
    arbitrary: fc.record({ t: fc.constant('gc' as const), advance: fc.constantFrom<Advance>('none', 'dropped', 'orphan'), failDelete: faultAt(4) }),
  },
  { weight: 2, arbitrary: fc.constant<Op>({ t: 'restart' }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('background' as const), idle: fc.boolean() }) },
  { weight: 1, arbitrary: fc.constant<Op>({ t: 'release' }) },
  { weight: 1, arbitrary: fc.constant<Op>({ t: 'load' }) },
);
/** `preload`: flushed batches written before the random steps, so that compactions have something to merge. */
const scenario = fc.record({
  index: fc.boolean(),
  preload: fc.integer({ min: 0, max: 3 }),
  ops: fc.array(opArb, { minLength: 5, maxLength: STEPS_MAX, size: 'max' }),
});

interface ModelRow extends Row {
  readonly part: string;
}

interface Model {
  id: number;
  partitions: string[];
  rows: ModelRow[];
  loaded: boolean;
  nextVersion: number;
}

/** Coverage counters, printed with QUIVER_MODEL_STATS=1 (to see that the runs exercise what they claim). */
const stats = new Map<string, number>();
function count(what: string, n = 1): void {
  stats.set(what, (stats.get(what) ?? 0) + n);
}

async function newCollection(h: Harness, index: boolean, nextVersion: number): Promise<Model> {
  const id = await h.createCollection(NAME, { index });
  await h.loadAndWait(id);
  return { id, partitions: [DEFAULT], rows: [], loaded: true, nextVersion };
}

function rowsOf(m: Model, part?: string): Row[] {
  return sortRows(m.rows.filter((r) => part === undefined || r.part === part).map((r) => ({ pk: r.pk, version: r.version })));
}

async function apply(h: Harness, m: Model, op: Op): Promise<Model> {
  const e = h.engine;
  switch (op.t) {
    case 'insert':
    case 'upsert': {
      const part = m.partitions[op.part % m.partitions.length]!;
      const keys = op.t === 'upsert' ? [...new Set(op.pks)] : op.pks;
      const rows = keys.map((pk) => ({ pk: BigInt(pk), version: m.nextVersion++ }));
      await h.insert(m.id, part, rows, op.t === 'upsert');
      // An upsert deletes the pk in every partition, then inserts into this one.
      if (op.t === 'upsert') m.rows = m.rows.filter((r) => !keys.includes(Number(r.pk)));
      m.rows.push(...rows.map((r) => ({ ...r, part })));
      return m;
    }
    case 'delete': {
      await h.deletePks(m.id, op.pks.map(BigInt));
      m.rows = m.rows.filter((r) => !op.pks.includes(Number(r.pk)));
      return m;
    }
    case 'flush': {
      if (op.failPut === 0) {
        count('segments flushed', (await e.flushCollection(m.id)).segmentIds.length);
        return m;
      }
      await h.settle(m.id);
      h.faults.setFailOn(failNth('put', op.failPut), op.after ? 'after' : 'before');
      const failed = await e.flushCollection(m.id).then(
        () => false,
        () => true,
      );
      await h.storeIdle();
      h.faults.setFailOn(() => false);
      if (failed) {
        count('flushes failed');
      }
      return m;
    }
    case 'compact': {
      await h.settle(m.id);
      count(`compact with ${Math.min(e.flushedSegments(m.id).length, 3)}+ flushed segments`);
      if (op.failPut > 0) h.faults.setFailOn(failNth('put', op.failPut), op.after ? 'after' : 'before');
      const task = await e.compact(m.id, { force: true, wait: true });
      await h.storeIdle();
      h.faults.setFailOn(() => false);
      for (const p of task.plans) {
        // A failed plan leaves its sources as they were: (a) checks that no row moved.
        if (op.failPut === 0) expect(p.state, `compaction plan ${JSON.stringify(p)}`).toBe('Completed');
        else expect(p.state).not.toBe('Executing');
        count(`compaction plans ${p.state}`);
      }
      return m;
    }
    case 'createPartition':
      if (m.partitions.includes(op.name)) return m;
      await e.createPartition('default', NAME, op.name);
      m.partitions.push(op.name);
      return m;
    case 'dropPartition': {
      if (!m.partitions.includes(op.name)) return m;
      if (m.loaded) await e.release(m.id);
      await e.dropPartition('default', NAME, op.name);
      if (m.loaded) await h.loadAndWait(m.id);
      m.partitions = m.partitions.filter((p) => p !== op.name);
      m.rows = m.rows.filter((r) => r.part !== op.name);
      return m;
    }
    case 'dropCollection':
      await h.settle(m.id);
      await e.dropCollection('default', NAME);
      return newCollection(h, op.index, m.nextVersion);
    case 'gc':
      return m; // run by the caller, which checks its report
    case 'restart':
      await h.restart();
      // The load state is persisted: a loaded collection is loaded again by recovery, without a load call.
      expect(h.collection(m.id).loaded).toBe(m.loaded);
      return m;
    case 'background':
      if (op.idle) h.clock.advance(h.opts.flushIdleMs);
      await e.backgroundTick();
      return m;
    case 'release':
      if (!m.loaded) return m;
      await e.release(m.id);
      m.loaded = false;
      return m;
    case 'load':
      await h.loadAndWait(m.id);
      m.loaded = true;
      return m;
    default: {
      const never: never = op;
      throw new Error(`unknown op ${JSON.stringify(never)}`);
    }
  }
}

async function runGc(h: Harness, m: Model, advance: Advance, failDelete: number): Promise<void> {
  await h.settle(m.id);
  if (advance === 'dropped') h.clock.advance(h.opts.droppedGraceMs + 1);
  if (advance === 'orphan') h.clock.set(Math.max(h.clock.nowMs(), Date.now()) + h.opts.orphanGraceMs + 1000);
  if (failDelete > 0) h.faults.setFailOn(failNth('delete', failDelete));
  const report = await h.gcTick();
  h.faults.setFailOn(() => false);
  count('gc files deleted', report.filesDeleted);
  count('gc orphan files deleted', report.orphanFilesDeleted);
  count('gc segments removed', report.segmentsRemoved);
  count('gc collections removed', report.collectionsRemoved);
  count('gc errors', report.errors.length);
  expect(report.skippedNotReady).toEqual([]);
  if (failDelete > 0) {
    // At most the one injected fault, reported, not thrown.
    expect(report.errors.length).toBeLessThanOrEqual(1);
    return;
  }
  expect(report.errors, 'gc errors').toEqual([]);
  const now = h.clock.nowMs();
  const cat = h.engine.catalog;
  if (advance !== 'none') {
    // (d) Everything Dropped whose grace is over has been reclaimed.
    for (const c of cat.allCollections()) {
      if (c.state === 'Dropped') expect(now - (c.droppedAtMs ?? now), `dropped collection ${c.id} left`).toBeLessThan(h.opts.droppedGraceMs);
    }
    for (const cid of cat.segmentCollections()) {
      for (const s of cat.segments(cid)) {
        if (s.state === 'Dropped') expect(now - (s.droppedAtMs ?? now), `dropped segment ${cid}/${s.id} left`).toBeLessThan(h.opts.droppedGraceMs);
      }
    }
  }
  if (advance === 'orphan') {
    // (c) No unlisted file older than the orphan grace survives a tick.
    const refs = h.referencedKeys();
    const garbage = (await h.listFiles()).filter((f) => !refs.has(f.key) && now - f.lastModifiedMs >= h.opts.orphanGraceMs).map((f) => f.key);
    expect(garbage, 'unreferenced files older than the orphan grace').toEqual([]);
  }
}

async function check(h: Harness, m: Model): Promise<void> {
  const e = h.engine;
  const cat = e.catalog;
  count('checks');
  count('rows checked', m.rows.length);
  // (a) Rows.
  if (m.loaded) {
    expect(await h.readRows(m.id), 'all rows').toEqual(rowsOf(m));
    for (const p of m.partitions) expect(await h.readRows(m.id, p), `rows of ${p}`).toEqual(rowsOf(m, p));
    expect(await e.count(m.id, { filter: '', partitionNames: [] }), 'count').toBe(m.rows.length);
  } else {
    expect(e.rowCount(m.id), 'row count (released)').toBe(m.rows.length);
    for (const p of m.partitions) expect(e.rowCount(m.id, p), `row count of ${p} (released)`).toBe(rowsOf(m, p).length);
  }
  // (b) Files of every live segment record, and of every Dropped one still in its grace, exist. (Past its
  // grace a Dropped record may be half reclaimed: GC deletes files first, the record last.)
  const now = h.clock.nowMs();
  const missing: string[] = [];
  for (const cid of cat.segmentCollections()) {
    const coll = cat.collectionIncludingDropped(cid);
    const collInGrace = coll?.state === 'Created' || (coll?.state === 'Dropped' && now - (coll.droppedAtMs ?? now) < h.opts.droppedGraceMs);
    for (const s of cat.segments(cid)) {
      const inGrace = s.state !== 'Dropped' || now - (s.droppedAtMs ?? now) < h.opts.droppedGraceMs;
      if (!collInGrace || !inGrace) continue;
      for (const f of segmentFiles(s)) if (!(await h.fileExists(f.key))) missing.push(`${cid}/${s.id} (${s.state}): ${f.key}`);
    }
  }
  expect(missing, 'files listed by live segment records but absent').toEqual([]);
  // (b) The engine serves exactly the catalog's Flushed segments of the live collection.
  const rt = e.runtime(m.id);
  const served = [...rt.segments.values()].filter((s) => s.phase === 'flushed').map((s) => `${s.id}:${s.numRows}:${s.error ?? ''}`).sort();
  const listed = cat.segments(m.id).filter((s) => s.state === 'Flushed').map((s) => `${s.id}:${s.numRows}:`).sort();
  expect(served, 'runtime flushed segments vs catalog').toEqual(listed);
}

describe('engine + GC model', () => {
  afterAll(() => {
    if (process.env.QUIVER_MODEL_STATS) console.log(Object.fromEntries([...stats].sort()));
  });

  it(`keeps rows, files and meta consistent over random histories (seed ${SEED}, ${RUNS} runs)`, async () => {
    const property = fc.asyncProperty(scenario, async ({ index, preload, ops }) => {
      const h = await Harness.create({ faulty: true, sealRows: 24 });
      try {
        let m = await newCollection(h, index, 1);
        for (let b = 0; b < preload; b++) {
          m = await apply(h, m, { t: 'insert', part: 0, pks: [b * 3, b * 3 + 1, b * 3 + 2, b * 3 + 3] });
          m = await apply(h, m, { t: 'flush', failPut: 0, after: false });
        }
        await check(h, m);
        for (let i = 0; i < ops.length; i++) {
          const op = ops[i]!;
          try {
            count(`op ${op.t}`);
            m = await apply(h, m, op);
            if (op.t === 'gc') await runGc(h, m, op.advance, op.failDelete);
            await check(h, m);
          } catch (err) {
            (err as Error).message = `step ${i} ${JSON.stringify(op)}: ${(err as Error).message}`;
            throw err;
          }
        }
      } finally {
        await h.destroy();
      }
    });
    try {
      await fc.assert(property, { seed: SEED, numRuns: RUNS });
    } catch (err) {
      console.error(`engine model failed; reproduce with QUIVER_MODEL_SEED=${SEED}`);
      throw err;
    }
  }, 120_000);
});
