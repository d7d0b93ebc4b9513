/**
 * Persisted data-node tasks other than restore copies (index builds; compaction merges later): one small
 * record per task in MetaKV, written before every dispatch so that the node id and dispatch epoch
 * (version) an answer must carry are durable, and updated only by compare-and-set.
 *
 * Task states:
 *
 *      submit                (1) persisted with node + version+1, then CreateTask
 *   ─────────▶ Waiting ───────────────────────────────────────────────▶ Dispatched
 *                │   ▲                                                    │  │  │
 *                │   └──── (2) lost (session gone / node says UNKNOWN) ───┘  │  │
 *                │              or timed out, attempts < attemptsMax        │  │
 *                │ (5) job timeout                   (3) COMPLETED, same version │
 *                ▼                                                           ▼  │
 *              Failed ◀──── (4) FAILED, or attempts used up, or job timeout ── Completed
 *
 * (1) Waiting → Dispatched: a Healthy node has a free slot; the record names it before the RPC.
 * (2) Dispatched → Waiting: confirmed loss or a run over `taskTimeoutMs` (then DropTask on the node);
 *     `attempts` counts these.
 * (3) Dispatched → Completed: the node answered COMPLETED for the record's version (older versions are
 *     fenced: ignored).
 * (4) Dispatched → Failed: the node failed it, or the last attempt was lost or timed out.
 * (5) Waiting → Failed: no node took it before `jobTimeoutMs`.
 * Terminal records are deleted once the waiter has the outcome; a coordinator restart drops the records
 * it finds (the index scheduler rebuilds what has no index, under new build ids).
 */

import { quiverError } from '../../common/errors.js';
import { decodeJson, encodeJson } from '../../meta/json.js';
import type { MetaKV } from '../../meta/meta-kv.js';
import type { CompactionMergeParams } from '../../taskrpc/protocol.js';

export type NodeTaskState = 'Waiting' | 'Dispatched' | 'Completed' | 'Failed';

export const NODE_TASK_TRANSITIONS: Readonly<Record<NodeTaskState, readonly NodeTaskState[]>> = {
  Waiting: ['Dispatched', 'Failed'], // (1), (5)
  Dispatched: ['Waiting', 'Completed', 'Failed'], // (2), (3), (4)
  Completed: [],
  Failed: [],
};

export function assertNodeTaskTransition(from: NodeTaskState, to: NodeTaskState): void {
  if (from !== to && !NODE_TASK_TRANSITIONS[from].includes(to)) throw new Error(`assertion failed: illegal node task transition ${from} → ${to}`);
}

export interface IndexBuildTaskParams {
  readonly collectionId: number;
  readonly segmentId: number;
  readonly indexId: number;
}

/** What a task does: ids for a build; keys, kinds and kept-row ranges for a merge (bounded by the caller). */
export type NodeTaskSpec =
  { readonly type: 'index-build'; readonly params: IndexBuildTaskParams } | { readonly type: 'compaction-merge'; readonly params: CompactionMergeParams };

export type NodeTaskType = NodeTaskSpec['type'];

export type NodeTaskRecord = NodeTaskSpec & {
  readonly id: number;
  readonly state: NodeTaskState;
  /** The node of the current dispatch ('' while Waiting before the first one). */
  readonly nodeId: string;
  /** Dispatch epoch: bumped before every dispatch; answers about another version are ignored. */
  readonly version: number;
  /** Dispatches that ended in a loss or a timeout. */
  readonly attempts: number;
  readonly reason: string;
  readonly createdAtMs: number;
  readonly dispatchedAtMs: number;
};

const PREFIX = 'quiver/nodetask/';

function keyOf(id: number): string {
  return `${PREFIX}${id}`;
}

function check(r: NodeTaskRecord, key: string): NodeTaskRecord {
  const ok =
    Number.isSafeInteger(r.id) &&
    r.id > 0 &&
    keyOf(r.id) === key &&
    (r.type === 'index-build' || r.type === 'compaction-merge') &&
    r.state in NODE_TASK_TRANSITIONS &&
    Number.isSafeInteger(r.version) &&
    r.version >= 0 &&
    Number.isSafeInteger(r.attempts) &&
    typeof r.nodeId === 'string' &&
    (r.state !== 'Dispatched' || r.nodeId !== '');
  if (!ok) throw quiverError('ServiceInternal', `corrupt node task record at ${key}`);
  return r;
}

export class NodeTaskStore {
  readonly #kv: MetaKV;

  constructor(kv: MetaKV) {
    this.#kv = kv;
  }

  async create(rec: NodeTaskRecord): Promise<void> {
    const key = keyOf(rec.id);
    check(rec, key);
    const r = await this.#kv.txn([{ key, target: 'version', op: '==', value: 0 }], [{ type: 'put', key, value: encodeJson(rec) }]);
    if (!r.succeeded) throw new Error(`assertion failed: node task ${rec.id} exists already`);
  }

  /**
   * Compare-and-set: applies `patch` only if the record is still in `expected` state at `expectedVersion`.
   * Returns false when it moved on (another pass, or it was deleted): losing is normal.
   */
  async update(
    id: number,
    expected: NodeTaskState,
    expectedVersion: number,
    patch: Partial<Omit<NodeTaskRecord, 'id' | 'type'>>,
  ): Promise<NodeTaskRecord | undefined> {
    const key = keyOf(id);
    const e = await this.#kv.get(key);
    if (e === undefined) return undefined;
    const cur = check(decodeJson<NodeTaskRecord>(e), key);
    if (cur.state !== expected || cur.version !== expectedVersion) return undefined;
    const next = { ...cur, ...patch } as NodeTaskRecord;
    assertNodeTaskTransition(cur.state, next.state);
    check(next, key);
    const r = await this.#kv.txn([{ key, target: 'modRevision', op: '==', value: e.modRevision }], [{ type: 'put', key, value: encodeJson(next) }]);
    return r.succeeded ? next : undefined;
  }

  async list(): Promise<NodeTaskRecord[]> {
    return (await this.#kv.scan(PREFIX)).map((e) => check(decodeJson<NodeTaskRecord>(e), e.key));
  }

  async delete(id: number): Promise<void> {
    await this.#kv.delete(keyOf(id));
  }
}
