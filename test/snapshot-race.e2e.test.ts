import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DataType, ErrorCode } from '@zilliz/milvus2-sdk-node';
import { SeededRandom } from '../src/testing/index.js';
import { startTestServer, until, waitRestore, type TestServer } from './helpers.js';

/**
 * Exact point in time under concurrency (issue 13 item 7): writers insert, upsert and delete while
 * CreateSnapshot runs, with flushes and compactions firing in the background. Each write's reply carries
 * its timestamp, so the snapshot must be exactly the collection at its `create_ts` T: the ts-ordered
 * replay of the writes with ts < T. Also: every write acknowledged before the create call began has
 * ts < T, every write sent after its reply has ts > T, and the snapshot reads the same through a view
 * (`race@s{n}`), a restore (whose row count and pk checksum check must pass: it completes) and a diff
 * between consecutive snapshots. Seeded (QUIVER_RACE_SEED); a failure names the seed and the round.
 */

const SEED = Number(process.env['QUIVER_RACE_SEED'] ?? 20261203);
const ROUNDS = Number(process.env['QUIVER_RACE_ROUNDS'] ?? 8);
const WRITERS = 3;
const KEYS_PER_WRITER = 60;
const DIM = 4;

interface Op {
  readonly round: number;
  readonly ts: bigint;
  /** key → val written (undefined: deleted). */
  readonly writes: ReadonlyMap<number, number | undefined>;
  readonly ackedBeforeCall: boolean;
  readonly sentAfterReply: boolean;
  readonly what: string;
}

const tagOf = (key: number, val: number) => `k${key}v${val}`;
const vecOf = (val: number) => Array.from({ length: DIM }, (_, i) => ((val * (i + 3)) % 97) / 97);

/** The collection at T: every write with ts < T, applied in ts order. */
function stateAt(ops: readonly Op[], t: bigint): Map<number, number> {
  const out = new Map<number, number>();
  for (const op of [...ops].filter((o) => o.ts < t).sort((a, b) => (a.ts < b.ts ? -1 : a.ts > b.ts ? 1 : 0))) {
    for (const [k, v] of op.writes) {
      if (v === undefined) out.delete(k);
      else out.set(k, v);
    }
  }
  return out;
}

describe('a snapshot is exact at its timestamp while writes race CreateSnapshot', () => {
  let t: TestServer;
  beforeAll(async () => {
    // Small seals and short intervals: background flushes and compactions race the create too.
    t = await startTestServer({ sealRows: 40, flushIdleMs: 100, backgroundIntervalMs: 20, compactionDeleteRatio: 0.1, copyCheckIntervalMs: 50 });
    await t.client.createCollection({
      collection_name: 'race',
      fields: [
        { name: 'id', data_type: DataType.Int64, is_primary_key: true },
        { name: 'val', data_type: DataType.Int64 },
        { name: 'tag', data_type: DataType.VarChar, max_length: 32 },
        { name: 'v', data_type: DataType.FloatVector, dim: DIM },
      ],
    });
  });
  afterAll(async () => {
    await t?.close();
  });

  const read = async (collection: string): Promise<Map<number, number>> => {
    expect((await t.client.loadCollectionSync({ collection_name: collection })).error_code).toBe(ErrorCode.SUCCESS);
    const q = await t.client.query({ collection_name: collection, filter: 'id >= 0', output_fields: ['id', 'val', 'tag'], limit: 16384 });
    expect(q.status.error_code, q.status.reason).toBe(ErrorCode.SUCCESS);
    const out = new Map<number, number>();
    for (const r of q.data) {
      const id = Number(r['id']);
      const val = Number(r['val']);
      if (out.has(id)) throw new Error(`${collection}: key ${id} is visible twice`);
      if (r['tag'] !== tagOf(id, val)) throw new Error(`${collection}: key ${id} columns disagree (val ${val}, tag ${String(r['tag'])})`);
      out.set(id, val);
    }
    return out;
  };

  const mismatch = (what: string, got: Map<number, number>, want: Map<number, number>): string[] => {
    const problems: string[] = [];
    for (const [k, v] of want) if (got.get(k) !== v) problems.push(`${what}: key ${k} shows ${got.get(k) ?? 'absent'}, expected ${v}`);
    for (const [k, v] of got) if (!want.has(k)) problems.push(`${what}: key ${k} shows ${v}, expected absent`);
    return problems.slice(0, 10);
  };

  it(`holds exactly the writes before its ts, over ${ROUNDS} seeded rounds (seed ${SEED})`, async () => {
    const c = t.client;
    const rnd = new SeededRandom(SEED);
    const ops: Op[] = [];
    const problems: string[] = [];
    // Per writer: the keys it owns and their current values (a writer is sequential, so it knows them).
    const present = Array.from({ length: WRITERS }, () => new Map<number, number>());
    let nextVal = 1;
    let prev: { name: string; ts: bigint } | undefined;

    for (let round = 0; round < ROUNDS; round++) {
      const phase = { called: false, replied: false, stop: false, failed: undefined as unknown };
      let done = 0;
      const writer = (w: number, r: SeededRandom) =>
        writeLoop(w, r).catch((err: unknown) => {
          phase.failed = err;
          phase.stop = true;
        });
      const writeLoop = async (w: number, r: SeededRandom) => {
        const mine = present[w]!;
        while (!phase.stop) {
          const sentAfterReply = phase.replied;
          const n = 1 + r.int(4);
          const pick = () => w * KEYS_PER_WRITER + r.int(KEYS_PER_WRITER);
          const choice = r.next();
          const writes = new Map<number, number | undefined>();
          let ts: bigint;
          let what: string;
          if (choice < 0.35 || mine.size < 5) {
            for (let i = 0; i < n * 3; i++) {
              const k = pick();
              if (!mine.has(k) && writes.size < n) writes.set(k, nextVal++);
            }
            if (writes.size === 0) continue;
            const rows = [...writes].map(([id, val]) => ({ id, val: val!, tag: tagOf(id, val!), v: vecOf(val!) }));
            const res = await c.insert({ collection_name: 'race', data: rows });
            if (res.status.error_code !== ErrorCode.SUCCESS) throw new Error(`insert: ${res.status.reason}`);
            ts = BigInt(res.timestamp);
            what = 'insert';
          } else if (choice < 0.7) {
            for (let i = 0; i < n; i++) writes.set(pick(), nextVal++);
            const rows = [...writes].map(([id, val]) => ({ id, val: val!, tag: tagOf(id, val!), v: vecOf(val!) }));
            const res = await c.upsert({ collection_name: 'race', data: rows });
            if (res.status.error_code !== ErrorCode.SUCCESS) throw new Error(`upsert: ${res.status.reason}`);
            ts = BigInt(res.timestamp);
            what = 'upsert';
          } else {
            const keys = [...mine.keys()];
            for (let i = 0; i < n; i++) writes.set(keys[r.int(keys.length)]!, undefined);
            const res = await c.delete({ collection_name: 'race', ids: [...writes.keys()] });
            if (res.status.error_code !== ErrorCode.SUCCESS) throw new Error(`delete: ${res.status.reason}`);
            ts = BigInt(res.timestamp);
            what = 'delete';
          }
          for (const [k, v] of writes) {
            if (v === undefined) mine.delete(k);
            else mine.set(k, v);
          }
          ops.push({ round, ts, writes, ackedBeforeCall: !phase.called, sentAfterReply, what: `${what} ${[...writes.keys()].join(',')} @${ts}` });
          done++;
        }
      };
      const writers = Array.from({ length: WRITERS }, (_, w) => writer(w, new SeededRandom(SEED + 1000 * round + w)));
      const before = 4 + rnd.int(30);
      await until(() => done >= before || phase.stop, { what: `${before} writes before the create` });
      if (phase.failed) throw phase.failed;
      const name = `s${round}`;
      phase.called = true;
      const created = await c.createSnapshot({ collection_name: 'race', snapshot_name: name });
      phase.replied = true;
      const doneAtReply = done;
      await until(() => done >= doneAtReply + WRITERS * 2 || phase.stop, { what: 'writes after the reply' });
      phase.stop = true;
      await Promise.all(writers);
      if (phase.failed) throw phase.failed;
      expect(created.error_code, created.reason).toBe(ErrorCode.SUCCESS);

      const d = await c.describeSnapshot({ collection_name: 'race', snapshot_name: name });
      const ts = BigInt(d.create_ts);
      for (const op of ops) {
        if (op.round !== round) continue;
        if (op.ackedBeforeCall && op.ts >= ts)
          problems.push(`round ${round}: ${op.what} was acknowledged before the create call but is after its ts ${ts}`);
        if (op.sentAfterReply && op.ts <= ts) problems.push(`round ${round}: ${op.what} was sent after the create replied but is before its ts ${ts}`);
      }
      const want = stateAt(ops, ts);
      problems.push(...mismatch(`round ${round} view race@${name}`, await read(`race@${name}`), want));
      expect((await c.releaseCollection({ collection_name: `race@${name}` })).error_code).toBe(ErrorCode.SUCCESS);

      if (prev) {
        // The diff of two snapshots is the model's diff between their timestamps.
        const was = stateAt(ops, prev.ts);
        const expected: string[] = [];
        for (const [k, v] of want)
          if (!was.has(k)) expected.push(`insert ${k}`);
          else if (was.get(k) !== v) expected.push(`update ${k}`);
        for (const k of was.keys()) if (!want.has(k)) expected.push(`delete ${k}`);
        const diff = await t.server.extras.differ.diff('default', 'race', prev.name, name);
        const got = diff.changes.map((ch) => `${ch.op} ${String(ch.pk)}`);
        if (JSON.stringify(got.sort()) !== JSON.stringify(expected.sort())) {
          problems.push(`round ${round}: diff ${prev.name}..${name} gave ${got.length} changes, expected ${expected.length}`);
        }
      }

      if (round % 3 === 0 || round === ROUNDS - 1) {
        const target = `race_r${round}`;
        const r = await c.restoreSnapshot({ snapshot_name: name, source_collection_name: 'race', target_collection_name: target });
        expect(r.status.error_code, r.status.reason).toBe(ErrorCode.SUCCESS);
        const info = await waitRestore(c, r.job_id);
        if (info.state !== 'RestoreSnapshotCompleted') problems.push(`round ${round}: restore ended ${info.state}: ${info.reason}`);
        else problems.push(...mismatch(`round ${round} restore ${target}`, await read(target), want));
        await c.dropCollection({ collection_name: target });
      }
      prev = { name, ts };
    }
    expect(problems, `seed ${SEED}`).toEqual([]);
  });
});
