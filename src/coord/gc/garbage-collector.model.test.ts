/**
 * Model test: random sequences of catalog changes, orphan writes, guard changes, clock moves, store and
 * meta faults, and GC ticks (real and dry), checked after every step against a model of what is
 * referenced:
 *   (a) no file listed by a live segment (not Dropped, collection not Dropped), by a segment still in
 *       its grace, or by a referenced segment is ever deleted, nor an orphan younger than its grace,
 *       nor a file under an Importing segment of a live collection; a referenced segment keeps its meta;
 *   (b) no segment meta is removed while any of its files exists (checked at the commit itself), and no
 *       collection record while any of its segment records exists;
 *   (c) eventually (faults healed, guards ready, grace passed, a few ticks): every file left is listed
 *       by a remaining record, sits under an Importing segment, or is referenced; every Dropped segment
 *       or collection left is referenced.
 * A dry-run tick changes neither the store nor the meta.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { deltaLogKey, indexFileKey, insertLogKey, parseSegmentKey } from '../../storage/paths.js';
import type { CatalogChange } from '../catalog.js';
import type { SegmentRecord } from '../records.js';
import { GarbageCollector, type GcCatalog } from './garbage-collector.js';
import type { ReferenceGuard } from './reference-guard.js';
import { segmentFiles } from './segment-files.js';
import { PARTITION_ID } from '../../testing/index.js';
import { GcEnv } from './test-helpers.js';

const DROPPED_GRACE_MS = 100;
const ORPHAN_GRACE_MS = 1000;
const COLLECTIONS = [1, 2, 3] as const;

type Fault = 'none' | 'everyNthDelete' | 'insertLogDeletes' | 'list' | 'everyNthAny' | 'commit';

type Action =
  | { readonly t: 'create'; readonly c: number; readonly fields: number; readonly index: boolean; readonly importing: boolean }
  | { readonly t: 'dropSegment'; readonly pick: number }
  | { readonly t: 'dropCollection'; readonly c: number }
  | { readonly t: 'orphan'; readonly c: number; readonly index: boolean }
  /** An unlisted file under an existing segment's prefix (a deltalog whose meta commit never happened). */
  | { readonly t: 'strayFile'; readonly pick: number }
  | { readonly t: 'reference'; readonly pick: number; readonly build: boolean }
  | { readonly t: 'release'; readonly pick: number }
  | { readonly t: 'ready'; readonly c: number; readonly ready: boolean }
  | { readonly t: 'inUse'; readonly pick: number; readonly on: boolean }
  | { readonly t: 'advance'; readonly ms: number }
  | { readonly t: 'tick'; readonly dryRun: boolean }
  | { readonly t: 'fault'; readonly fault: Fault; readonly n: number; readonly after: boolean };

const coll = fc.constantFrom(...COLLECTIONS);
const action: fc.Arbitrary<Action> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record({
      t: fc.constant('create' as const),
      c: coll,
      fields: fc.integer({ min: 1, max: 3 }),
      index: fc.boolean(),
      importing: fc.boolean(),
    }),
  },
  { weight: 3, arbitrary: fc.record({ t: fc.constant('dropSegment' as const), pick: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('dropCollection' as const), c: coll }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('orphan' as const), c: coll, index: fc.boolean() }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('strayFile' as const), pick: fc.nat() }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('reference' as const), pick: fc.nat(), build: fc.boolean() }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('release' as const), pick: fc.nat() }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('ready' as const), c: coll, ready: fc.boolean() }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('inUse' as const), pick: fc.nat(), on: fc.boolean() }) },
  { weight: 4, arbitrary: fc.record({ t: fc.constant('advance' as const), ms: fc.constantFrom(1, 40, 99, 100, 400, 1000, 1500) }) },
  { weight: 5, arbitrary: fc.record({ t: fc.constant('tick' as const), dryRun: fc.boolean() }) },
  {
    weight: 2,
    arbitrary: fc.record({
      t: fc.constant('fault' as const),
      fault: fc.constantFrom<Fault>('none', 'everyNthDelete', 'insertLogDeletes', 'list', 'everyNthAny', 'commit'),
      n: fc.integer({ min: 1, max: 4 }),
      after: fc.boolean(),
    }),
  },
);

const config = fc.record({ maxDeletesPerTick: fc.constantFrom(3, 10, 10_000), deleteConcurrency: fc.constantFrom(1, 4, 16) });

/** A reference as the model holds it (what a snapshot would hold). */
interface Ref {
  readonly kind: 'segment' | 'build';
  readonly c: number;
  readonly s: number;
  readonly buildId: number;
  /** Unlisted files under the segment when the reference was taken: "its segment is referenced" keeps them. */
  readonly strays: readonly string[];
}

/**
 * The guard GC sees. While a collection is not ready its references are "not loaded": the guard then
 * answers "not referenced" for them, as an index that has not read its snapshots yet would. Only the
 * readiness check stands between GC and those files, which is what fail-closed must get right.
 */
class ModelGuard implements ReferenceGuard {
  readonly refs: Ref[] = [];
  readonly #ready = new Map<number, boolean>();

  isReady(collectionId: number): boolean {
    return this.#ready.get(collectionId) ?? true;
  }
  isSegmentReferenced(collectionId: number, segmentId: number): boolean {
    return this.isReady(collectionId) && this.refs.some((r) => r.kind === 'segment' && r.c === collectionId && r.s === segmentId);
  }
  isBuildReferenced(buildId: number): boolean {
    return this.refs.some((r) => r.kind === 'build' && r.buildId === buildId && this.isReady(r.c));
  }
  setReady(collectionId: number, ready: boolean): void {
    this.#ready.set(collectionId, ready);
  }
  setAllReady(): void {
    this.#ready.clear();
  }
}

async function run(cfg: { maxDeletesPerTick: number; deleteConcurrency: number }, actions: readonly Action[]): Promise<void> {
  const env = new GcEnv();
  const violations: string[] = [];
  let failCommits = false;
  // The catalog GC sees: checks (b) at the moment of each commit, and fails commits on demand.
  const catalog: GcCatalog = {
    allCollections: () => env.catalog.allCollections(),
    segments: (c) => env.catalog.segments(c),
    segmentCollections: () => env.catalog.segmentCollections(),
    commit: async (changes: readonly CatalogChange[]) => {
      for (const ch of changes) {
        if (ch.type === 'deleteSegment') {
          const rec = env.catalog.segment(ch.collectionId, ch.segmentId);
          if (rec && !(await env.hasNone(rec))) violations.push(`meta of ${ch.collectionId}/${ch.segmentId} deleted before its files`);
        }
        if (ch.type === 'deleteCollection' && env.catalog.segments(ch.id).length > 0) violations.push(`collection ${ch.id} deleted before its segments`);
      }
      if (failCommits) throw new Error('injected meta failure');
      await env.catalog.commit(changes);
    },
  };
  const inUse = new Set<string>();
  const guard = new ModelGuard();
  const refs = guard.refs;
  const gc = new GarbageCollector(
    { catalog, store: env.store, clock: env.clock, guard, isSegmentInUse: (c, s) => inUse.has(`${c}/${s}`) },
    { droppedGraceMs: DROPPED_GRACE_MS, orphanGraceMs: ORPHAN_GRACE_MS, ...cfg },
  );

  let nextId = 100;
  const created: SegmentRecord[] = [];
  /** Files copied under an Importing segment but not (yet) in its record. */
  const unlisted = new Map<string, string>();
  const orphans = new Map<string, number>();
  /** Unlisted files under an existing segment, by segment. */
  const strays = new Map<string, string[]>();
  for (const c of COLLECTIONS) await env.createCollection(c);

  const existing = (): SegmentRecord[] => COLLECTIONS.flatMap((c) => env.catalog.segments(c));
  const collectionLive = (c: number): boolean => env.catalog.collection(c) !== undefined;
  const segmentReferenced = (s: SegmentRecord): boolean =>
    refs.some(
      (r) => (r.kind === 'segment' && r.c === s.collectionId && r.s === s.id) || (r.kind === 'build' && s.indexes.some((i) => i.buildId === r.buildId)),
    );

  const checkSafety = async (where: string): Promise<void> => {
    expect(violations, where).toEqual([]);
    const now = env.clock.nowMs();
    for (const s of existing()) {
      const collRec = env.catalog.collectionIncludingDropped(s.collectionId);
      const collInGrace = collRec?.state !== 'Dropped' || now - (collRec.droppedAtMs ?? now) < DROPPED_GRACE_MS;
      const segInGrace = s.state !== 'Dropped' || now - (s.droppedAtMs ?? now) < DROPPED_GRACE_MS;
      const mustKeep = (segInGrace && collInGrace) || segmentReferenced(s);
      if (mustKeep && !(await env.hasAll(s))) throw new Error(`${where}: a file of kept segment ${s.collectionId}/${s.id} (${s.state}) was deleted`);
    }
    for (const r of refs) {
      if (r.kind === 'segment' && env.catalog.segment(r.c, r.s) === undefined) throw new Error(`${where}: referenced segment ${r.c}/${r.s} lost its meta`);
      for (const key of r.strays) if (!(await env.has(key))) throw new Error(`${where}: unlisted ${key} of referenced segment ${r.c}/${r.s} was deleted`);
    }
    for (const [key, owner] of unlisted) {
      const [c, s] = owner.split('/').map(Number) as [number, number];
      if (env.catalog.segment(c, s)?.state === 'Importing' && collectionLive(c) && !(await env.has(key))) {
        throw new Error(`${where}: unlisted file ${key} of Importing segment ${owner} was deleted`);
      }
    }
    for (const [key, writtenAtMs] of orphans) {
      if (now - writtenAtMs < ORPHAN_GRACE_MS && !(await env.has(key))) throw new Error(`${where}: orphan ${key} deleted before its grace`);
    }
    // (b) after the fact too: a segment without meta has no files left.
    for (const s of created) {
      if (env.catalog.segment(s.collectionId, s.id) === undefined && !(await env.hasNone(s))) {
        throw new Error(`${where}: segment ${s.collectionId}/${s.id} has no meta but files remain`);
      }
    }
  };

  for (const [step, a] of actions.entries()) {
    const where = `step ${step} ${JSON.stringify(a)}`;
    switch (a.t) {
      case 'create': {
        if (!collectionLive(a.c)) break;
        const id = nextId++;
        const rec = await env.createSegment({
          collectionId: a.c,
          id,
          state: a.importing ? 'Importing' : 'Flushed',
          fieldIds: [1, 100, 101].slice(0, a.fields),
          ...(a.index ? { buildId: nextId++ } : {}),
        });
        created.push(rec);
        if (a.importing) {
          const key = insertLogKey(a.c, PARTITION_ID, id, 999, 1);
          await env.memory.put(key, new Uint8Array(1));
          unlisted.set(key, `${a.c}/${id}`);
        }
        break;
      }
      case 'dropSegment': {
        const live = existing().filter((s) => s.state === 'Flushed' && collectionLive(s.collectionId));
        const s = live[a.pick % Math.max(1, live.length)];
        if (s) await env.dropSegment(s.collectionId, s.id);
        break;
      }
      case 'dropCollection':
        if (collectionLive(a.c)) await env.dropCollection(a.c);
        break;
      case 'orphan': {
        const id = nextId++;
        const key = a.index ? indexFileKey(nextId++, 1, PARTITION_ID, id, 'hnsw.bin') : insertLogKey(a.c, PARTITION_ID, id, 100, 1);
        await env.memory.put(key, new Uint8Array(2));
        orphans.set(key, env.clock.nowMs());
        break;
      }
      case 'strayFile': {
        const all = existing().filter((x) => x.state !== 'Importing');
        const s = all[a.pick % Math.max(1, all.length)];
        if (!s) break;
        const key = deltaLogKey(s.collectionId, PARTITION_ID, s.id, nextId++);
        await env.memory.put(key, new Uint8Array(1));
        orphans.set(key, env.clock.nowMs());
        const list = strays.get(`${s.collectionId}/${s.id}`) ?? [];
        list.push(key);
        strays.set(`${s.collectionId}/${s.id}`, list);
        break;
      }
      case 'reference': {
        // A snapshot references the Flushed segments of a live collection; a segment dropped since keeps
        // the reference.
        const all = existing().filter((x) => x.state === 'Flushed' && collectionLive(x.collectionId));
        const s = all[a.pick % Math.max(1, all.length)];
        if (!s) break;
        const index = s.indexes[0];
        if (a.build && index) {
          refs.push({ kind: 'build', c: s.collectionId, s: s.id, buildId: index.buildId, strays: [] });
        } else {
          const present: string[] = [];
          for (const key of strays.get(`${s.collectionId}/${s.id}`) ?? []) if (await env.has(key)) present.push(key);
          refs.push({ kind: 'segment', c: s.collectionId, s: s.id, buildId: -1, strays: present });
        }
        break;
      }
      case 'release': {
        if (refs.length > 0) refs.splice(a.pick % refs.length, 1);
        break;
      }
      case 'ready':
        guard.setReady(a.c, a.ready);
        break;
      case 'inUse': {
        const all = existing();
        const s = all[a.pick % Math.max(1, all.length)];
        if (s && a.on) inUse.add(`${s.collectionId}/${s.id}`);
        if (!a.on) inUse.clear();
        break;
      }
      case 'advance':
        env.clock.advance(a.ms);
        break;
      case 'tick': {
        if (a.dryRun) {
          const keys = await env.keys();
          const meta = (await env.kv.scan('')).map((e) => `${e.key}@${e.modRevision}`);
          const r = await gc.tick({ dryRun: true });
          expect(await env.keys(), where).toEqual(keys);
          expect(
            (await env.kv.scan('')).map((e) => `${e.key}@${e.modRevision}`),
            where,
          ).toEqual(meta);
          expect(new Set(r.wouldDelete).size, where).toBe(r.wouldDelete.length);
        } else {
          await gc.tick();
        }
        break;
      }
      case 'fault': {
        let calls = 0;
        failCommits = a.fault === 'commit';
        const when = a.after ? 'after' : 'before';
        switch (a.fault) {
          case 'none':
          case 'commit':
            env.store.setFailOn(() => false);
            break;
          case 'everyNthDelete':
            env.store.setFailOn((op) => op === 'delete' && ++calls % a.n === 0, when);
            break;
          case 'insertLogDeletes':
            env.store.setFailOn((op, key) => op === 'delete' && key.startsWith('insert_log/'), when);
            break;
          case 'list':
            env.store.setFailOn((op) => op === 'list', when);
            break;
          case 'everyNthAny':
            env.store.setFailOn(() => ++calls % a.n === 0, when);
            break;
        }
        break;
      }
    }
    await checkSafety(where);
  }

  // (c) Liveness: heal, make every guard ready, let every grace pass, and tick until the work is done.
  env.store.setFailOn(() => false);
  failCommits = false;
  guard.setAllReady();
  inUse.clear();
  env.clock.advance(ORPHAN_GRACE_MS + DROPPED_GRACE_MS);
  for (let i = 0; i < 200; i++) {
    const r = await gc.tick();
    expect(r.errors).toEqual([]);
    if (!r.budgetExhausted && r.filesDeleted + r.segmentsRemoved + r.collectionsRemoved === 0) break;
  }
  await checkSafety('final');
  const remaining = existing();
  const listed = new Set(remaining.flatMap((s) => segmentFiles(s).map((f) => f.key)));
  const importingIds = new Set(remaining.filter((s) => s.state === 'Importing').map((s) => `${s.collectionId}/${s.id}`));
  const referencedBuilds = new Set(refs.filter((r) => r.kind === 'build').map((r) => r.buildId));
  for (const key of await env.keys()) {
    if (listed.has(key)) continue;
    const k = parseSegmentKey(key);
    if (k && k.kind !== 'index' && importingIds.has(`${k.collectionId}/${k.segmentId}`)) continue;
    if (k?.kind === 'index' && referencedBuilds.has(k.buildId)) continue;
    if (k && k.kind !== 'index' && refs.some((r) => r.kind === 'segment' && r.c === k.collectionId && r.s === k.segmentId)) continue;
    throw new Error(`final: ${key} is neither listed nor referenced but survived`);
  }
  for (const s of remaining) {
    const live = s.state !== 'Dropped' && collectionLive(s.collectionId);
    if (!live && !segmentReferenced(s)) throw new Error(`final: unreferenced segment ${s.collectionId}/${s.id} survived`);
  }
  for (const c of env.catalog.allCollections()) {
    if (c.state === 'Dropped' && env.catalog.segments(c.id).length === 0) throw new Error(`final: empty dropped collection ${c.id} survived`);
  }
}

describe('GarbageCollector model', () => {
  it('never deletes what is referenced, removes meta after files, and eventually reclaims the rest', async () => {
    const seed = process.env['QUIVER_FC_SEED'] === undefined ? 20_240_611 : Number(process.env['QUIVER_FC_SEED']);
    await fc.assert(
      fc.asyncProperty(config, fc.array(action, { minLength: 1, maxLength: 80, size: 'max' }), async (cfg, actions) => run(cfg, actions)),
      { numRuns: 400, seed },
    );
  });
});
