/**
 * What a crash may and may not do to rows, as a model of the writes a client issued.
 *
 * Keys are written by one sequential writer each, so the ops on a key are totally ordered by issue time.
 * An acknowledged op is durable; an op whose call failed or was in flight at the kill may or may not have
 * been applied. So after a restart the value of a key is the outcome of its last acknowledged op or of
 * any op issued after it (none acknowledged), or — if no op on it was acknowledged — its settled value
 * before the round or the outcome of any of its ops. Anything else (a lost acknowledged write, a value
 * never written for that key, a key never written at all, a key visible twice) is a violation.
 */

export type WriteKind = 'insert' | 'upsert' | 'delete';

/** `undefined` = absent; a number = the `val` written by the op with that sequence number. */
export type Outcome = number | undefined;

interface KeyOp {
  readonly seq: number;
  readonly kind: WriteKind;
  acked: boolean;
}

export interface ObservedRow {
  readonly id: number;
  readonly val: number;
  readonly tag: string;
  readonly v0: number;
}

export class WriteModel {
  /** Settled values (verified after the last restart): key → val. */
  readonly #settled = new Map<number, number>();
  /** Ops issued since the last settle, per key, in issue order. */
  readonly #ops = new Map<number, KeyOp[]>();
  /** Keys with an op of unknown fate this round: no writer touches them again until settled. */
  readonly #uncertain = new Set<number>();
  #seq = 0;

  nextSeq(): number {
    return ++this.#seq;
  }

  isUncertain(key: number): boolean {
    return this.#uncertain.has(key);
  }

  /** The value of a key whose ops so far are all acknowledged (writers only pick such keys). */
  current(key: number): Outcome {
    if (this.#uncertain.has(key)) throw new Error(`assertion failed: key ${key} is uncertain`);
    const ops = this.#ops.get(key);
    const last = ops?.[ops.length - 1];
    return last ? outcomeOf(last) : this.#settled.get(key);
  }

  /** Records an op before its call is sent; returns the callback that acknowledges it. */
  begin(keys: readonly number[], kind: WriteKind, seq: number): { ack(): void; fail(): void } {
    const ops = keys.map((k) => {
      const op: KeyOp = { seq, kind, acked: false };
      const list = this.#ops.get(k) ?? [];
      list.push(op);
      this.#ops.set(k, list);
      this.#uncertain.add(k);
      return op;
    });
    return {
      ack: () => {
        for (const [i, op] of ops.entries()) {
          op.acked = true;
          this.#uncertain.delete(keys[i]!);
        }
      },
      // Stays uncertain: applied or not, nobody knows.
      fail: () => undefined,
    };
  }

  /** Every outcome the key may show after a crash. */
  allowed(key: number): Set<Outcome> {
    const ops = this.#ops.get(key) ?? [];
    let lastAcked = -1;
    for (const [i, op] of ops.entries()) if (op.acked) lastAcked = i;
    const out = new Set<Outcome>();
    if (lastAcked < 0) out.add(this.#settled.get(key));
    for (let i = Math.max(lastAcked, 0); i < ops.length; i++) out.add(outcomeOf(ops[i]!));
    return out;
  }

  /** Keys the model knows of (settled or written this round). */
  keys(): Set<number> {
    return new Set([...this.#settled.keys(), ...this.#ops.keys()]);
  }

  /** Exact content when nothing is uncertain (between rounds): key → val. */
  exact(): Map<number, number> {
    if (this.#uncertain.size > 0) throw new Error('assertion failed: exact() with uncertain keys');
    const out = new Map<number, number>();
    for (const k of this.keys()) {
      const v = this.current(k);
      if (v !== undefined) out.set(k, v);
    }
    return out;
  }

  /** Violations of the rows read after a restart against what was written. */
  check(rows: readonly ObservedRow[]): string[] {
    const problems: string[] = [];
    const seen = new Map<number, ObservedRow>();
    for (const row of rows) {
      if (seen.has(row.id)) problems.push(`key ${row.id} is visible twice (vals ${seen.get(row.id)!.val}, ${row.val})`);
      seen.set(row.id, row);
      if (row.tag !== tagOf(row.id, row.val) || Math.fround(row.v0) !== Math.fround(v0Of(row.val))) {
        problems.push(`key ${row.id}: columns disagree (val ${row.val}, tag ${row.tag}, v[0] ${row.v0})`);
      }
    }
    for (const id of seen.keys()) {
      if (!this.#settled.has(id) && !this.#ops.has(id)) problems.push(`key ${id} was never written but is visible`);
    }
    for (const key of this.keys()) {
      const got = seen.get(key)?.val;
      const allowed = this.allowed(key);
      if (!allowed.has(got)) {
        const ops = (this.#ops.get(key) ?? []).map((o) => `${o.kind} #${o.seq}${o.acked ? ' acked' : ' ?'}`);
        const history = `settled ${this.#settled.get(key) ?? 'absent'}${ops.length ? `, then ${ops.join(', ')}` : ''}`;
        problems.push(`key ${key}: shows ${got ?? 'absent'}, allowed ${[...allowed].map((a) => a ?? 'absent').join('|')} (${history})`);
      }
    }
    return problems;
  }

  /** After a check: what was observed becomes the settled truth (resolving the ops of unknown fate). */
  settle(rows: readonly ObservedRow[]): void {
    this.#settled.clear();
    for (const row of rows) this.#settled.set(row.id, row.val);
    this.#ops.clear();
    this.#uncertain.clear();
  }
}

function outcomeOf(op: KeyOp): Outcome {
  return op.kind === 'delete' ? undefined : op.seq;
}

export function tagOf(key: number, val: number): string {
  return `k${key}v${val}`;
}

/** First vector component, derived from the value so a misaligned column shows. */
export function v0Of(val: number): number {
  return (val % 1000) / 1000;
}

/** Seeded PRNG (mulberry32): the schedule of a round is replayable from the seed. */
export function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
