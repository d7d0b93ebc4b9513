/**
 * SessionStore in one process (the embedded server, and unit tests of the coordinator's registry).
 *
 * Leases live in memory, under an injected Clock. The node-id counter lives in the MetaKV (key
 * `session/node-id`, bumped by compare-and-set), so ids are never reused across a restart of the
 * embedded server either: a task fenced with an old id can never be mistaken for a new node's.
 *
 * Keep-alive: a registration in this process renews for as long as the process runs, so it cannot miss
 * a renewal on its own. `pauseKeepAlive()` models a frozen node (SIGSTOP, a long GC pause): from then on
 * the lease is not renewed, and the first `tick()` at or past `ttlMs` after the pause expires it, exactly
 * as etcd would. Tests drive `tick()` with a FakeClock; nothing in the embedded server pauses a lease,
 * so it needs no expiry loop.
 */

import { systemClock, type Clock } from '../common/clock.js';
import { quiverError } from '../common/errors.js';
import { decodeString } from './json.js';
import type { MetaKV } from './meta-kv.js';
import { byNodeId, ID_ATTEMPTS_MAX, nextNodeId, validateRegistration } from './session-info.js';
import type { NodeSessionInfo, SessionRegistration, SessionRole, SessionStore } from './sessions.js';

export const NODE_ID_KEY = 'session/node-id';

export interface MemorySessionStoreOptions {
  /** Holds the node-id counter (so ids survive a restart). */
  readonly meta: MetaKV;
  readonly clock?: Clock | undefined;
}

interface Lease {
  readonly info: NodeSessionInfo;
  readonly ttlMs: number;
  /** Clock time of the last renewal; only meaningful while paused (a running keep-alive renews continuously). */
  renewedAtMs: number;
  paused: boolean;
  readonly registration: MemorySessionRegistration;
}

type Watcher = { readonly role: SessionRole; readonly onChange: (nodes: readonly NodeSessionInfo[]) => void };

export class MemorySessionStore implements SessionStore {
  readonly #meta: MetaKV;
  readonly #clock: Clock;
  readonly #leases = new Map<number, Lease>();
  readonly #watchers = new Set<Watcher>();
  #closed = false;

  constructor(options: MemorySessionStoreOptions) {
    this.#meta = options.meta;
    this.#clock = options.clock ?? systemClock;
  }

  async register(info: Omit<NodeSessionInfo, 'nodeId'>, ttlMs: number): Promise<MemorySessionRegistration> {
    this.#checkOpen();
    validateRegistration(info, ttlMs);
    const nodeId = await this.#allocateId();
    this.#checkOpen();
    const full: NodeSessionInfo = { ...info, nodeId };
    const registration = new MemorySessionRegistration(nodeId, {
      close: () => this.#remove(nodeId),
      pause: () => {
        const lease = this.#leases.get(nodeId);
        if (lease !== undefined && !lease.paused) {
          lease.paused = true;
          lease.renewedAtMs = this.#clock.nowMs();
        }
      },
      resume: () => {
        const lease = this.#leases.get(nodeId);
        if (lease !== undefined) lease.paused = false;
      },
    });
    this.#leases.set(nodeId, { info: full, ttlMs, renewedAtMs: this.#clock.nowMs(), paused: false, registration });
    this.#notify(info.role);
    return registration;
  }

  async list(role: SessionRole): Promise<readonly NodeSessionInfo[]> {
    this.#checkOpen();
    return this.#live(role);
  }

  watch(role: SessionRole, onChange: (nodes: readonly NodeSessionInfo[]) => void): () => void {
    this.#checkOpen();
    const watcher: Watcher = { role, onChange };
    this.#watchers.add(watcher);
    onChange(this.#live(role));
    return () => {
      this.#watchers.delete(watcher);
    };
  }

  /** Expires every paused lease not renewed for its TTL (what etcd's lessor does on its own). */
  async tick(): Promise<void> {
    const now = this.#clock.nowMs();
    for (const lease of [...this.#leases.values()]) {
      if (lease.paused && now - lease.renewedAtMs >= lease.ttlMs) this.#remove(lease.info.nodeId);
    }
  }

  /** Deregisters every node of this store; watchers stop. Idempotent. The MetaKV stays open (it is not ours). */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#watchers.clear();
    for (const nodeId of [...this.#leases.keys()]) this.#remove(nodeId);
  }

  #live(role: SessionRole): NodeSessionInfo[] {
    return byNodeId([...this.#leases.values()].filter((l) => l.info.role === role).map((l) => l.info));
  }

  #remove(nodeId: number): void {
    const lease = this.#leases.get(nodeId);
    if (lease === undefined) return;
    this.#leases.delete(nodeId);
    lease.registration.markLost();
    this.#notify(lease.info.role);
  }

  #notify(role: SessionRole): void {
    const nodes = this.#live(role);
    for (const w of [...this.#watchers]) if (w.role === role) w.onChange(nodes);
  }

  async #allocateId(): Promise<number> {
    for (let attempt = 1; attempt <= ID_ATTEMPTS_MAX; attempt++) {
      const entry = await this.#meta.get(NODE_ID_KEY);
      const id = nextNodeId(NODE_ID_KEY, entry === undefined ? undefined : decodeString(entry));
      const res = await this.#meta.txn(
        [{ key: NODE_ID_KEY, target: 'modRevision', op: '==', value: entry?.modRevision ?? 0 }],
        [{ type: 'put', key: NODE_ID_KEY, value: String(id) }],
      );
      if (res.succeeded) return id;
    }
    throw quiverError('ServiceNotReady', `session: lost ${ID_ATTEMPTS_MAX} races for a node id in a row`);
  }

  #checkOpen(): void {
    if (this.#closed) throw quiverError('ServiceNotReady', 'session store is closed');
  }
}

interface RegistrationHooks {
  readonly close: () => void;
  readonly pause: () => void;
  readonly resume: () => void;
}

export class MemorySessionRegistration implements SessionRegistration {
  readonly nodeId: number;
  readonly lost: Promise<void>;
  readonly #hooks: RegistrationHooks;
  #resolveLost!: () => void;

  constructor(nodeId: number, hooks: RegistrationHooks) {
    this.nodeId = nodeId;
    this.#hooks = hooks;
    this.lost = new Promise((resolve) => (this.#resolveLost = resolve));
  }

  /** Stops renewing the lease, as if the node froze (tests of failure detection). */
  pauseKeepAlive(): void {
    this.#hooks.pause();
  }

  /** Renews again; a lease that already expired stays gone (the node must register anew). */
  resumeKeepAlive(): void {
    this.#hooks.resume();
  }

  async close(): Promise<void> {
    this.#hooks.close();
  }

  /** Called by the store when the session is gone (expired or closed). */
  markLost(): void {
    this.#resolveLost();
  }
}
