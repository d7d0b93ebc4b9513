import { mkdtemp, rm } from 'node:fs/promises';
import { performance } from 'node:perf_hooks';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { DataType, ErrorCode, type MilvusClient } from '@zilliz/milvus2-sdk-node';
import { collectionDirs, indexFilePartitions } from '../data-dir.js';
import { killAllServers, spawnServerRetrying, type ServerProcess } from '../process.js';
import { WriteModel, rng, tagOf, v0Of, type ObservedRow, type WriteKind } from './write-model.js';

/**
 * kill -9 crash suite. Each round runs concurrent writers (insert / upsert / delete, one key range per
 * writer) against a real server process plus one driver for the round's operation, SIGKILLs the server's
 * whole process group at a seeded random moment inside that operation, restarts on the same data dir and
 * checks what the README promises:
 *   rows       every acknowledged write is there with its value; an op that failed or was in flight is
 *              applied or not, never half; nothing never written is visible (see write-model.ts);
 *   snapshot   each snapshot is committed (listed and describable) or absent, and an absent name can be
 *              created again; a committed one (the last acknowledged, and one the kill cut off) holds every
 *              write acknowledged before its call and none sent after it returned (restored and read);
 *   restore    the target is complete (row-for-row the snapshot) or absent with its name reusable; a job
 *              ends Completed with exact content or Failed leaving no files of its target behind (no
 *              binlogs of an unknown collection, no index files of an unknown partition);
 *   pins       once every job has ended, the source snapshot can be dropped;
 *   source     the source collection keeps its schema and the rows of the model.
 * Violations are collected (not thrown at the first) so one run lists every broken invariant; the test
 * fails at the end naming the seed and the rounds. CI: fixed seed, bounded rounds (env
 * QUIVER_CRASH_SEED / QUIVER_CRASH_ROUNDS override); `npm run test:soak` draws a fresh seed. A restart
 * refused with "data dir ... in use" (stale LOCK right after the kill) is retried and counted, not hidden.
 */

const ALL_KINDS = ['insert', 'upsert', 'delete', 'flush', 'compaction', 'createSnapshot', 'restoreSnapshot'] as const;
type Kind = (typeof ALL_KINDS)[number];
/** QUIVER_CRASH_KINDS=restoreSnapshot,createSnapshot runs only those kinds (to chase one failure). */
const KINDS: readonly Kind[] = process.env['QUIVER_CRASH_KINDS']
  ? ALL_KINDS.filter((k) => process.env['QUIVER_CRASH_KINDS']!.split(',').includes(k))
  : ALL_KINDS;

const SOAK = process.env['QUIVER_CRASH_SOAK'] === '1';
const SEED = Number(process.env['QUIVER_CRASH_SEED'] ?? (SOAK ? Math.floor(Math.random() * 2 ** 31) : 20261203));
const ROUNDS = Number(process.env['QUIVER_CRASH_ROUNDS'] ?? (SOAK ? 70 : 14));
const WRITERS = 3;
const KEYS_PER_WRITER = 250;
const DIM = 8;
const JOB_WAIT_MS = 30_000;

/** Low seal sizes and short intervals: flushes, compactions and housekeeping happen all the time. */
const BASE_ENV: Record<string, string> = {
  QUIVER_SEAL_ROWS: '150',
  QUIVER_FLUSH_IDLE_MS: '150',
  QUIVER_BACKGROUND_INTERVAL_MS: '25',
  QUIVER_COMPACTION_DELETE_RATIO: '0.1',
  QUIVER_GC_INTERVAL_MS: '100',
  QUIVER_COPY_CHECK_INTERVAL_MS: '100',
};

interface Plan {
  readonly round: number;
  readonly kind: Kind;
  /** Env of the server process the round runs against (fault hooks that stretch the operation). */
  readonly env: Record<string, string>;
  readonly killAfterMs: number;
  /** Restore rounds: kill inside the restoreSnapshot call itself, or inside the job it started. */
  readonly restorePhase: 'start' | 'job';
  readonly seed: number;
}

/** Every kind gets the same number of rounds; the order within each block of kinds is shuffled by the seed. */
function plans(seed: number, rounds: number): Plan[] {
  const r = rng(seed);
  const out: Plan[] = [];
  while (out.length < rounds) {
    const block = [...KINDS];
    for (let i = block.length - 1; i > 0; i--) {
      const j = Math.floor(r() * (i + 1));
      [block[i], block[j]] = [block[j]!, block[i]!];
    }
    for (const kind of block) {
      if (out.length >= rounds) break;
      const env: Record<string, string> = { ...BASE_ENV };
      let killAfterMs = 150 + Math.floor(r() * 900);
      const restorePhase = r() < 0.5 ? 'start' : 'job';
      if (kind === 'createSnapshot' && r() < 0.6) env['QUIVER_FAULT_SNAPSHOT_PAUSE_MS'] = String(50 + Math.floor(r() * 300));
      if (kind === 'restoreSnapshot') {
        const delay = 30 + Math.floor(r() * 150);
        env['QUIVER_FAULT_COPY_DELAY_MS'] = String(delay);
        // 'start': within the restoreSnapshot call (tens of ms under load); 'job': into the copy. The window
        // between persisting the invisible target and the job is tiny, so random kills rarely land in it;
        // QUIVER_FAULT_RESTORE_START_PAUSE_MS is the hook (requested, not on this branch yet: unknown
        // QUIVER_* variables are ignored) that would hold the call there, as the snapshot pause does.
        if (restorePhase === 'start') env['QUIVER_FAULT_RESTORE_START_PAUSE_MS'] = '300';
        killAfterMs = restorePhase === 'start' ? Math.floor(r() * 250) : Math.floor(r() * delay * 3);
      }
      out.push({ round: out.length, kind, env, killAfterMs, restorePhase, seed: Math.floor(r() * 2 ** 31) });
    }
  }
  return out;
}

interface Violation {
  readonly round: number;
  readonly kind: Kind;
  readonly invariant: 'rows' | 'source' | 'snapshot' | 'restore' | 'pin' | 'leak' | 'restart';
  readonly detail: string;
}

const ok = (s: { error_code?: string | number } | undefined) => s?.error_code === ErrorCode.SUCCESS;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function readRows(c: MilvusClient, collection: string): Promise<ObservedRow[]> {
  await c.loadCollectionSync({ collection_name: collection });
  const q = await c.query({ collection_name: collection, filter: 'id >= 0', output_fields: ['id', 'val', 'tag', 'v'] });
  if (!ok(q.status)) throw new Error(`query ${collection}: ${q.status.reason}`);
  return q.data.map((r) => ({ id: Number(r['id']), val: Number(r['val']), tag: String(r['tag']), v0: Number((r['v'] as number[])[0]) }));
}

function rowsOf(keys: readonly number[], val: number) {
  return keys.map((id) => ({ id, val, tag: tagOf(id, val), v: [v0Of(val), ...Array.from({ length: DIM - 1 }, (_, i) => ((id * 31 + i) % 17) / 17)] }));
}

/** Polls a restore job until it ends; undefined if it never does within the wait. */
async function jobEnd(c: MilvusClient, jobId: string): Promise<{ state: string; reason: string } | undefined> {
  const end = Date.now() + JOB_WAIT_MS;
  while (Date.now() < end) {
    const s = await c.getRestoreSnapshotState({ job_id: jobId });
    const state = s.info?.state;
    if (state === 'RestoreSnapshotCompleted' || state === 'RestoreSnapshotFailed') return { state, reason: s.info.reason };
    await sleep(25);
  }
  return undefined;
}

function diffRows(expected: ReadonlyMap<number, number>, rows: readonly ObservedRow[]): string | undefined {
  const got = new Map<number, number>();
  const problems: string[] = [];
  for (const r of rows) {
    if (got.has(r.id)) problems.push(`key ${r.id} twice`);
    got.set(r.id, r.val);
    if (r.tag !== tagOf(r.id, r.val)) problems.push(`key ${r.id} tag ${r.tag}`);
  }
  for (const [k, v] of expected) if (got.get(k) !== v) problems.push(`key ${k}: ${got.get(k) ?? 'absent'} != ${v}`);
  for (const k of got.keys()) if (!expected.has(k)) problems.push(`key ${k} not in the snapshot`);
  if (problems.length === 0) return undefined;
  return `${problems.length} differences (${rows.length} rows, expected ${expected.size}): ${problems.slice(0, 5).join('; ')}`;
}

describe('kill -9 crash suite', () => {
  const dirs: string[] = [];
  afterAll(async () => {
    killAllServers();
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });

  it(`keeps every promise across ${ROUNDS} kill -9 rounds (seed ${SEED})`, { timeout: 60_000 + ROUNDS * 30_000 }, async () => {
    const schedule = plans(SEED, ROUNDS);
    const dir = await mkdtemp(join(tmpdir(), 'quiver-crash-'));
    dirs.push(dir);
    const violations: Violation[] = [];
    const confirmed = new Map<Kind, { rounds: number; inside: number }>(KINDS.map((k) => [k, { rounds: 0, inside: 0 }]));
    let inUseRetries = 0;
    const model = new WriteModel();
    /** Collections whose files may legitimately stay under objects/ (GC grace): the source and dropped targets. */
    const knownCollectionIds = new Set<number>();
    /** Partitions whose index files may stay (same reason). */
    const knownPartitionIds = new Set<number>();
    const remember = async (c: MilvusClient, collection: string) => {
      knownCollectionIds.add(Number((await c.describeCollection({ collection_name: collection })).collectionID));
      for (const id of (await c.listPartitions({ collection_name: collection })).partitionIDs) knownPartitionIds.add(Number(id));
    };
    /** Snapshots a round could not drop (already reported): later rounds must not report them again. */
    const lingering = new Set<string>();

    let srv: ServerProcess;
    {
      const started = await spawnServerRetrying(dir, schedule[0]?.env ?? BASE_ENV);
      srv = started.server;
      const c = srv.client;
      const created = await c.createCollection({
        collection_name: 'src',
        fields: [
          { name: 'id', data_type: DataType.Int64, is_primary_key: true },
          { name: 'val', data_type: DataType.Int64 },
          { name: 'tag', data_type: DataType.VarChar, max_length: 64 },
          { name: 'v', data_type: DataType.FloatVector, dim: DIM },
        ],
      });
      expect(ok(created)).toBe(true);
      // An index makes compaction and restore do more (index files are rebuilt / copied).
      await c.createIndex({ collection_name: 'src', field_name: 'v', index_type: 'HNSW', metric_type: 'L2', params: { M: 8, efConstruction: 64 } });
      for (let w = 0; w < WRITERS; w++) {
        const keys = Array.from({ length: KEYS_PER_WRITER / 2 }, (_, i) => w * KEYS_PER_WRITER + i);
        const seq = model.nextSeq();
        const op = model.begin(keys, 'insert', seq);
        const r = await c.insert({ collection_name: 'src', data: rowsOf(keys, seq) });
        expect(ok(r.status)).toBe(true);
        op.ack();
      }
      await c.flushSync({ collection_names: ['src'] });
      const rows = await readRows(c, 'src');
      expect(model.check(rows)).toEqual([]);
      model.settle(rows);
      await remember(c, 'src');
    }
    const srcFields = (await srv.client.describeCollection({ collection_name: 'src' })).schema.fields.map((f) => `${f.name}:${f.data_type}`);

    console.log(`crash suite: seed ${SEED}, ${ROUNDS} rounds of ${KINDS.join(', ')} (QUIVER_CRASH_SEED=${SEED} QUIVER_CRASH_ROUNDS=${ROUNDS} to replay)`);
    const summarize = () => violations.map((v) => `round ${v.round} (${v.kind}) ${v.invariant}: ${v.detail}`).join('\n');
    let current = 'setup';
    try {
      for (const plan of schedule) {
        const { round, kind } = plan;
        current = `round ${round} (${kind})`;
        const note = (invariant: Violation['invariant'], detail: string) => violations.push({ round, kind, invariant, detail });
        const r = rng(plan.seed);
        const c = srv.client;
        const stats = confirmed.get(kind)!;
        stats.rounds++;

        // ---- restore rounds: a snapshot of a quiescent source, whose exact content the model knows.
        const base = `b${round}`;
        const target = `t${round}`;
        let expected: Map<number, number> | undefined;
        if (kind === 'restoreSnapshot') {
          expected = model.exact();
          const s = await c.createSnapshot({ collection_name: 'src', snapshot_name: base });
          expect(ok(s), `round ${round}: create ${base}: ${s.reason}`).toBe(true);
        }

        // ---- the state at the round start (settled, exact) and a timed log of the round's writes: what a
        //      snapshot taken during the round must contain is bounded by them (see the snapshot step).
        const startRows: ObservedRow[] = [...model.exact()].map(([id, val]) => ({ id, val, tag: tagOf(id, val), v0: v0Of(val) }));
        const roundLog: { keys: readonly number[]; kind: WriteKind; seq: number; sentAt: number; ackedAt?: number }[] = [];
        let killAt = Infinity;

        // ---- drivers
        let stop = false;
        const inflight: Record<Kind | 'restoreStart', number> = {
          insert: 0,
          upsert: 0,
          delete: 0,
          flush: 0,
          compaction: 0,
          createSnapshot: 0,
          restoreSnapshot: 0,
          restoreStart: 0,
        };
        const writer = async (w: number) => {
          const wr = rng(plan.seed + 1 + w);
          const range = Array.from({ length: KEYS_PER_WRITER }, (_, i) => w * KEYS_PER_WRITER + i);
          while (!stop) {
            const bias: WriteKind | undefined = kind === 'insert' || kind === 'upsert' || kind === 'delete' ? kind : undefined;
            const weights: [WriteKind, number][] = [
              ['insert', 0.4],
              ['upsert', 0.35],
              ['delete', 0.25],
            ].map(([k, p]) => [k as WriteKind, (p as number) * (k === bias ? 4 : 1)]);
            let pick = wr() * weights.reduce((n, [, p]) => n + p, 0);
            let op: WriteKind = 'insert';
            for (const [k, p] of weights)
              if ((pick -= p) <= 0) {
                op = k;
                break;
              }
            const certain = range.filter((k) => !model.isUncertain(k));
            let candidates = certain.filter((k) => (model.current(k) === undefined) === (op === 'insert'));
            if (candidates.length === 0) {
              op = op === 'insert' ? 'upsert' : 'insert';
              candidates = certain.filter((k) => (model.current(k) === undefined) === (op === 'insert'));
            }
            if (candidates.length === 0) break;
            const n = 1 + Math.floor(wr() * 8);
            const keys = [...new Set(Array.from({ length: n }, () => candidates[Math.floor(wr() * candidates.length)]!))];
            const seq = model.nextSeq();
            const handle = model.begin(keys, op, seq);
            const logged: (typeof roundLog)[number] = { keys, kind: op, seq, sentAt: performance.now() };
            roundLog.push(logged);
            inflight[op]++;
            try {
              const res =
                op === 'delete'
                  ? await c.delete({ collection_name: 'src', ids: keys })
                  : op === 'insert'
                    ? await c.insert({ collection_name: 'src', data: rowsOf(keys, seq) })
                    : await c.upsert({ collection_name: 'src', data: rowsOf(keys, seq) });
              if (ok(res.status)) {
                logged.ackedAt = performance.now();
                handle.ack();
              } else handle.fail();
            } catch {
              handle.fail(); // transport error: keep going, the key stays uncertain
            } finally {
              inflight[op]--;
            }
          }
        };
        const createdSnapshots: { name: string; acked: boolean; sentAt: number; returnedAt?: number }[] = [];
        let compactionId: string | undefined;
        let jobId: string | undefined;
        let restoreSent = false;
        const driver = async () => {
          switch (kind) {
            case 'insert':
            case 'upsert':
            case 'delete':
            case 'restoreSnapshot':
              if (kind !== 'restoreSnapshot') return;
              await sleep(Math.floor(r() * 50));
              restoreSent = true;
              inflight.restoreStart++;
              try {
                const res = await c.restoreSnapshot({ snapshot_name: base, source_collection_name: 'src', target_collection_name: target });
                if (ok(res.status)) jobId = res.job_id;
                else note('restore', `restore start refused: ${res.status.reason}`);
              } catch {
                // in flight at the kill
              } finally {
                inflight.restoreStart--;
              }
              return;
            case 'flush':
              while (!stop) {
                inflight.flush++;
                await c.flushSync({ collection_names: ['src'] }).catch(() => undefined);
                inflight.flush--;
                await sleep(Math.floor(r() * 30));
              }
              return;
            case 'compaction':
              while (!stop) {
                const res = await c.compact({ collection_name: 'src' }).catch(() => undefined);
                if (res && ok(res.status)) compactionId = String(res.compactionID);
                await sleep(20);
              }
              return;
            case 'createSnapshot':
              for (let i = 0; !stop; i++) {
                const entry: (typeof createdSnapshots)[number] = { name: `s${round}_${i}`, acked: false, sentAt: performance.now() };
                createdSnapshots.push(entry);
                inflight.createSnapshot++;
                const res = await c.createSnapshot({ collection_name: 'src', snapshot_name: entry.name }).catch(() => undefined);
                inflight.createSnapshot--;
                if (performance.now() < killAt) entry.returnedAt = performance.now();
                entry.acked = ok(res);
                await sleep(Math.floor(r() * 40));
              }
              return;
            default: {
              const never: never = kind;
              throw new Error(`unknown kind ${String(never)}`);
            }
          }
        };
        const running = [...Array.from({ length: WRITERS }, (_, w) => writer(w)), driver()];

        // ---- the kill, and whether it landed inside the operation (read right before the kill)
        if (kind === 'restoreSnapshot' && plan.restorePhase === 'start') {
          while (!restoreSent) await sleep(1);
        }
        await sleep(plan.killAfterMs);
        let inside = false;
        let where = '';
        const deadline = Date.now() + 4000;
        while (Date.now() < deadline) {
          if (kind === 'compaction') {
            if (compactionId !== undefined) {
              const s = await c.getCompactionState({ compactionID: compactionId }).catch(() => undefined);
              if (s && String(s.state) === 'Executing') {
                inside = true;
                where = `compaction ${compactionId} Executing`;
              }
            }
          } else if (kind === 'restoreSnapshot') {
            if (inflight.restoreStart > 0) {
              inside = true;
              where = 'restoreSnapshot call in flight';
            } else if (jobId !== undefined) {
              const s = await c.getRestoreSnapshotState({ job_id: jobId }).catch(() => undefined);
              const st = s?.info?.state;
              inside = st === 'RestoreSnapshotPending' || st === 'RestoreSnapshotExecuting';
              where = `job ${jobId} ${st}`;
              if (!inside) break; // the job already ended: this round's kill is after it, not inside
            }
            if (!restoreSent) {
              await sleep(1);
              continue;
            }
          } else if (inflight[kind] > 0) {
            inside = true;
            where = `${inflight[kind]} ${kind} call(s) in flight`;
          }
          if (inside) break;
          await sleep(1);
        }
        stop = true;
        killAt = performance.now();
        await srv.kill9();
        if (inside) stats.inside++;
        await Promise.race([Promise.all(running), sleep(15_000)]);

        // ---- restart on the same data dir (the next round's fault hooks already on) and check
        const nextEnv = schedule[round + 1]?.env ?? BASE_ENV;
        try {
          const restarted = await spawnServerRetrying(dir, nextEnv);
          srv = restarted.server;
          inUseRetries += restarted.inUseRetries;
        } catch (err) {
          note('restart', (err as Error).message.slice(0, 2000));
          break;
        }
        const c2 = srv.client;
        const step = async (invariant: Violation['invariant'], fn: () => Promise<void>) => {
          try {
            await fn();
          } catch (err) {
            note(invariant, `threw: ${(err as Error).message}`);
          }
        };

        await step('rows', async () => {
          const rows = await readRows(c2, 'src');
          for (const p of model.check(rows)) note('rows', p);
          model.settle(rows);
        });
        await step('source', async () => {
          const d = await c2.describeCollection({ collection_name: 'src' });
          const fields = d.schema.fields.map((f) => `${f.name}:${f.data_type}`);
          if (fields.join() !== srcFields.join()) note('source', `schema changed: ${fields.join()} != ${srcFields.join()}`);
        });

        /**
         * README: a snapshot "contains every write acknowledged before the call ... and nothing written after
         * it". Writes acknowledged before the call was sent must be in it, writes sent after it returned (or
         * after the kill, for a call the kill cut off) must not; writes in flight meanwhile are in it or not.
         */
        const snapshotContentProblems = async (cl: MilvusClient, s: (typeof createdSnapshots)[number], into: string): Promise<string[]> => {
          const m = new WriteModel();
          m.settle(startRows);
          const until = s.returnedAt ?? killAt;
          for (const op of roundLog) {
            if (op.sentAt > until) continue;
            const h = m.begin(op.keys, op.kind, op.seq);
            if (op.ackedAt !== undefined && op.ackedAt < s.sentAt) h.ack();
          }
          const res = await cl.restoreSnapshot({ snapshot_name: s.name, source_collection_name: 'src', target_collection_name: into });
          if (!ok(res.status)) return [`restore refused: ${res.status.reason}`];
          const e = await jobEnd(cl, res.job_id);
          if (e?.state !== 'RestoreSnapshotCompleted') return [`restore ${e ? `${e.state} ${e.reason}` : 'never ended'}`];
          const problems = m.check(await readRows(cl, into));
          await remember(cl, into);
          await cl.releaseCollection({ collection_name: into });
          await cl.dropCollection({ collection_name: into });
          return problems;
        };

        await step('snapshot', async () => {
          const listed = new Set((await c2.listSnapshots({ collection_name: 'src' })).snapshots);
          const made = new Set(createdSnapshots.map((s) => s.name));
          for (const name of listed) {
            if (!made.has(name) && name !== base && !lingering.has(name)) note('snapshot', `snapshot ${name} is listed but was never created`);
          }
          // Content of the last acknowledged snapshot and of one committed by the call the kill cut off.
          const lastAcked = createdSnapshots.filter((s) => s.acked).pop();
          for (const s of createdSnapshots) {
            const d = await c2.describeSnapshot({ collection_name: 'src', snapshot_name: s.name });
            const described = ok(d.status);
            if (described && (s === lastAcked || !s.acked)) {
              const problems = await snapshotContentProblems(c2, s, `v${round}_${s.name}`);
              if (problems.length > 0)
                note(
                  'snapshot',
                  `${s.name} (${s.acked ? 'acknowledged' : 'cut off by the kill'}) content: ${problems.length} problem(s): ${problems.slice(0, 4).join('; ')}`,
                );
            }
            if (listed.has(s.name) !== described) note('snapshot', `${s.name}: listed ${listed.has(s.name)} but describable ${described} (half snapshot)`);
            if (s.acked && !described) note('snapshot', `${s.name}: acknowledged create is gone after restart`);
            if (!described) {
              // Absent: the name must be free again right away.
              const again = await c2.createSnapshot({ collection_name: 'src', snapshot_name: s.name });
              if (!ok(again)) note('snapshot', `${s.name}: absent after the crash but re-create fails: ${again.reason}`);
            }
            const drop = await c2.dropSnapshot({ collection_name: 'src', snapshot_name: s.name });
            if (!ok(drop)) {
              note('pin', `${s.name}: drop refused: ${drop.reason}`);
              lingering.add(s.name);
            }
          }
        });

        if (kind === 'restoreSnapshot' && expected) {
          await step('restore', async () => {
            const jobs = new Set((await c2.listRestoreSnapshotJobs({ collection_name: target })).jobs.map((j) => j.job_id));
            if (jobId !== undefined && !jobs.has(jobId)) note('restore', `acknowledged job ${jobId} is not listed after restart`);
            if (jobId !== undefined) jobs.add(jobId);
            let completed = 0;
            let ended = true;
            for (const id of jobs) {
              const e = await jobEnd(c2, id);
              if (!e) {
                ended = false;
                note('restore', `job ${id} did not end within ${JOB_WAIT_MS} ms after restart`);
              } else if (e.state === 'RestoreSnapshotCompleted') completed++;
            }
            const visible = (await c2.hasCollection({ collection_name: target })).value === true;
            if (ended && visible !== completed > 0) note('restore', `target visible ${visible} but ${completed} completed job(s) of ${jobs.size}`);
            if (visible) {
              const diff = diffRows(expected!, await readRows(c2, target));
              if (diff) note('restore', `completed target is not the snapshot: ${diff}`);
              await remember(c2, target);
              await c2.releaseCollection({ collection_name: target });
              await c2.dropCollection({ collection_name: target });
            } else {
              // Absent: the name must be reusable, and a fresh restore must be exact.
              const again = await c2.restoreSnapshot({ snapshot_name: base, source_collection_name: 'src', target_collection_name: target });
              if (!ok(again.status)) {
                note('restore', `target ${target} absent after the crash but its name is not reusable: ${again.status.reason}`);
              } else {
                const e = await jobEnd(c2, again.job_id);
                if (e?.state !== 'RestoreSnapshotCompleted') note('restore', `re-restore into ${target}: ${e ? `${e.state} ${e.reason}` : 'never ended'}`);
                else {
                  const diff = diffRows(expected!, await readRows(c2, target));
                  if (diff) note('restore', `re-restored target is not the snapshot: ${diff}`);
                  await remember(c2, target);
                  await c2.releaseCollection({ collection_name: target });
                  await c2.dropCollection({ collection_name: target });
                }
              }
            }
          });
          await step('pin', async () => {
            const drop = await c2.dropSnapshot({ collection_name: 'src', snapshot_name: base });
            if (!ok(drop)) {
              note('pin', `every job ended but the source snapshot ${base} cannot be dropped: ${drop.reason}`);
              lingering.add(base);
            } else if ((await c2.listSnapshots({ collection_name: 'src' })).snapshots.includes(base)) note('pin', `${base} still listed after drop`);
          });
        }

        await step('leak', async () => {
          // A failed (rolled back) restore leaves no file of its invisible target behind.
          const owners = [...(await collectionDirs(dir))].filter((id) => !knownCollectionIds.has(id));
          if (owners.length > 0) note('leak', `files of unknown collection id(s) ${owners.join(', ')} under objects/`);
          const partitions = (await indexFilePartitions(dir)).filter((id) => !knownPartitionIds.has(id));
          if (partitions.length > 0) note('leak', `index files of unknown partition id(s) ${partitions.join(', ')} under objects/index_files/`);
        });

        const mine = violations.filter((v) => v.round === round);
        console.log(
          `round ${round} ${kind}${kind === 'restoreSnapshot' ? `/${plan.restorePhase}` : ''}: kill after ${plan.killAfterMs} ms, ${inside ? `inside (${where})` : `NOT confirmed inside${where ? ` (${where})` : ''}`}` +
            `${
              mine.length
                ? `; ${mine.length} violation(s): ${mine
                    .map((v) => `${v.invariant}: ${v.detail}`)
                    .join(' | ')
                    .slice(0, 600)}`
                : ''
            }`,
        );
      }
    } catch (err) {
      // An unexpected failure mid-round: still say which seed and round, and what was found before it.
      throw new Error(
        `seed ${SEED} (QUIVER_CRASH_SEED=${SEED} QUIVER_CRASH_ROUNDS=${ROUNDS}): ${current} failed; violations before it:\n${summarize()}\n${(err as Error).stack ?? String(err)}`,
      );
    }
    await srv.stop();

    const table = KINDS.map((k) => `${k} ${confirmed.get(k)!.inside}/${confirmed.get(k)!.rounds}`).join(', ');
    console.log(`crash suite seed ${SEED}: kills confirmed inside the operation: ${table}; restarts refused with "data dir in use": ${inUseRetries}`);
    expect(violations, `seed ${SEED} (QUIVER_CRASH_SEED=${SEED} QUIVER_CRASH_ROUNDS=${ROUNDS}):\n${summarize()}`).toEqual([]);
    // A suite whose kills never land inside an operation proves nothing about it.
    for (const k of KINDS) {
      const s = confirmed.get(k)!;
      if (s.rounds >= 2) expect(s.inside, `seed ${SEED}: no ${k} round killed the server inside a ${k}`).toBeGreaterThan(0);
    }
  });
});
