/**
 * SessionStore on etcd (the cluster): Milvus's `session/datanode-{id}` keys under leases.
 *
 *   {root}/session/node-id          the node-id counter (decimal); bumped by a compare-and-set txn on its
 *                                   mod_revision, so two nodes starting at once never share an id and an
 *                                   id is never handed out twice (a failed commit at worst skips one)
 *   {root}/session/datanode-{id}    JSON NodeSessionInfo, attached to the node's lease
 *
 * These are plain etcd keys beside the MetaKV's `{root}/kv/` and `{root}/rev` (EtcdMetaKV): a lease
 * must own the key itself so that etcd deletes it on expiry, which the MetaKV envelope cannot express.
 *
 * Keep-alive runs on one gRPC stream, a renewal every ttl/3 (as etcd's Go client). A renewal counts from
 * the moment its request was sent, never from when the answer came: etcd restarted the TTL no earlier
 * than that, so the node's own deadline (last acknowledged send + ttl) is never later than etcd's
 * expiry. Past that deadline without a renewal the node declares itself lost, revokes the lease (best
 * effort, so that etcd agrees at once) and must stop working: the coordinator may already have handed
 * its tasks to someone else. An answer with TTL 0 (lease expired or revoked) is lost at once.
 *
 * Watch: an etcd watch over the role's prefix only says "something changed"; every event (and every
 * (re)connection of the watch stream, after which events may have been missed) re-lists the prefix, and
 * the listener gets the full set whenever it differs from the last one delivered. Re-lists are
 * serialised, so sets arrive in order.
 */

import { Etcd3, isRecoverableError, type IDuplexStream, type ILeaseKeepAliveRequest, type ILeaseKeepAliveResponse, type Watcher } from 'etcd3';
import { systemClock, type Clock } from '../common/clock.js';
import { quiverError } from '../common/errors.js';
import { connectEtcd, type EtcdMetaKVOptions } from './etcd-kv.js';
import { byNodeId, ID_ATTEMPTS_MAX, nextNodeId, parseSessionInfo, validateRegistration } from './session-info.js';
import type { NodeSessionInfo, SessionRegistration, SessionRole, SessionStore } from './sessions.js';

export interface EtcdSessionStoreOptions extends Pick<EtcdMetaKVOptions, 'hosts' | 'requestTimeoutMs' | 'dialTimeoutMs' | 'tls' | 'auth'> {
  /** Namespace inside etcd, the same root as the MetaKV's (default 'quiver'). */
  readonly root?: string | undefined;
  readonly clock?: Clock | undefined;
  /** Pause before a failed list or keep-alive stream is tried again. */
  readonly retryDelayMs?: number | undefined;
  /** For tests: a client made by `connectEtcd`. */
  readonly client?: Etcd3 | undefined;
  /** Told when a watch cannot re-list (once per outage, not per retry). */
  readonly log?: { warn(fields: object, msg: string): void } | undefined;
}

const RETRY_DELAY_MS_DEFAULT = 250;

export class EtcdSessionStore implements SessionStore {
  readonly #client: Etcd3;
  readonly #hosts: readonly string[];
  readonly #sessionPrefix: string;
  readonly #clock: Clock;
  readonly #retryDelayMs: number;
  readonly #log: { warn(fields: object, msg: string): void } | undefined;
  readonly #registrations = new Set<EtcdSessionRegistration>();
  readonly #unwatchers = new Set<() => void>();
  #closed = false;

  constructor(options: EtcdSessionStoreOptions) {
    if (options.hosts.length === 0) throw quiverError('ParameterInvalid', 'sessions etcd: no hosts given');
    const root = options.root ?? 'quiver';
    if (root.length === 0 || root.startsWith('/') || root.endsWith('/') || root.includes('//')) {
      throw quiverError('ParameterInvalid', `sessions etcd: root ${JSON.stringify(root)} must be non-empty, without leading, trailing or double '/'`);
    }
    this.#hosts = [...options.hosts];
    this.#sessionPrefix = `${root}/session/`;
    this.#clock = options.clock ?? systemClock;
    this.#retryDelayMs = options.retryDelayMs ?? RETRY_DELAY_MS_DEFAULT;
    this.#log = options.log;
    this.#client = options.client ?? connectEtcd(options);
  }

  async register(info: Omit<NodeSessionInfo, 'nodeId'>, ttlMs: number): Promise<EtcdSessionRegistration> {
    this.#checkOpen();
    validateRegistration(info, ttlMs);
    const nodeId = await this.#allocateId();
    this.#checkOpen();
    const full: NodeSessionInfo = { ...info, nodeId };
    // etcd TTLs are whole seconds; rounding up keeps the node's own deadline (ttlMs) the earlier one.
    const sentAtMs = this.#clock.nowMs();
    const grant = await this.#call('register', () => this.#client.leaseClient.leaseGrant({ TTL: Math.ceil(ttlMs / 1000) }));
    const leaseId = grant.ID;
    try {
      await this.#call('register', () =>
        this.#client.kv.put({ key: Buffer.from(this.#key(info.role, nodeId)), value: Buffer.from(JSON.stringify(full)), lease: leaseId }),
      );
    } catch (e) {
      await this.#client.leaseClient.leaseRevoke({ ID: leaseId }).catch(() => undefined);
      throw e;
    }
    const registration = new EtcdSessionRegistration({
      nodeId,
      leaseId,
      ttlMs,
      renewedAtMs: sentAtMs,
      client: this.#client,
      clock: this.#clock,
      retryDelayMs: this.#retryDelayMs,
      onEnd: (r) => this.#registrations.delete(r),
    });
    this.#registrations.add(registration);
    return registration;
  }

  async list(role: SessionRole): Promise<readonly NodeSessionInfo[]> {
    this.#checkOpen();
    const prefix = this.#rolePrefix(role);
    const res = await this.#call('list', () => this.#client.kv.range({ key: Buffer.from(prefix), range_end: prefixEnd(prefix) }));
    return byNodeId(
      res.kvs.map((kv) => {
        const key = kv.key.toString('utf8');
        const idText = key.slice(prefix.length);
        const nodeId = Number(idText);
        if (!/^[1-9]\d*$/.test(idText) || !Number.isSafeInteger(nodeId))
          throw quiverError('ServiceInternal', `sessions etcd: stray key ${JSON.stringify(key)}`);
        let value: unknown;
        try {
          value = JSON.parse(kv.value.toString('utf8'));
        } catch (e) {
          throw quiverError('ServiceInternal', `sessions etcd: ${key} is not JSON`, e);
        }
        return parseSessionInfo(key, nodeId, value);
      }),
    );
  }

  watch(role: SessionRole, onChange: (nodes: readonly NodeSessionInfo[]) => void): () => void {
    this.#checkOpen();
    let stopped = false;
    let last: string | undefined;
    let running = false;
    let dirty = false;
    let retry: AbortController | undefined;
    let watcher: Watcher | undefined;
    let failing = false;
    const relist = async (): Promise<void> => {
      if (running) {
        dirty = true;
        return;
      }
      running = true;
      try {
        do {
          dirty = false;
          let nodes: readonly NodeSessionInfo[];
          try {
            nodes = await this.list(role);
          } catch (e) {
            // etcd unreachable or a bad record: try again later; a reconnect of the watch also re-lists.
            if (!failing) this.#log?.warn({ role, err: e }, 'session watch cannot list the live nodes; keeping the last set and retrying');
            failing = true;
            if (!stopped && !this.#closed) scheduleRetry();
            return;
          }
          failing = false;
          const text = JSON.stringify(nodes);
          if (!stopped && text !== last) {
            last = text;
            onChange(nodes);
          }
        } while (dirty && !stopped);
      } finally {
        running = false;
      }
    };
    const scheduleRetry = (): void => {
      retry?.abort();
      const ctl = new AbortController();
      retry = ctl;
      void this.#clock.sleep(this.#retryDelayMs, ctl.signal).then(() => {
        if (!ctl.signal.aborted && !stopped) void relist();
      });
    };
    const startWatch = (): void => {
      const prefix = this.#rolePrefix(role);
      const w = this.#client.watch().prefix(prefix).watcher();
      watcher = w;
      w.on('connected', () => void relist());
      w.on('put', () => void relist());
      w.on('delete', () => void relist());
      // A cancelled watch (e.g. its revision was compacted during a long disconnect): start a fresh one.
      w.on('error', () => {
        void w.cancel().catch(() => undefined);
        if (stopped) return;
        void this.#clock.sleep(this.#retryDelayMs).then(() => {
          if (!stopped) startWatch();
        });
      });
    };
    startWatch();
    void relist();
    const unwatch = (): void => {
      if (stopped) return;
      stopped = true;
      retry?.abort();
      void watcher?.cancel().catch(() => undefined);
      this.#unwatchers.delete(unwatch);
    };
    this.#unwatchers.add(unwatch);
    return unwatch;
  }

  /** Deregisters the nodes registered through this store, stops its watches, closes the client. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    for (const unwatch of [...this.#unwatchers]) unwatch();
    await Promise.all([...this.#registrations].map((r) => r.close()));
    this.#closed = true;
    this.#client.close();
  }

  #rolePrefix(role: SessionRole): string {
    return `${this.#sessionPrefix}${role}-`;
  }

  #key(role: SessionRole, nodeId: number): string {
    return `${this.#rolePrefix(role)}${nodeId}`;
  }

  async #allocateId(): Promise<number> {
    const key = Buffer.from(`${this.#sessionPrefix}node-id`);
    for (let attempt = 1; attempt <= ID_ATTEMPTS_MAX; attempt++) {
      const res = await this.#call('register', () => this.#client.kv.range({ key }));
      const kv = res.kvs[0];
      const id = nextNodeId(key.toString(), kv?.value.toString('utf8'));
      const txn = await this.#call('register', () =>
        this.#client.kv.txn({
          compare: [{ key, target: 'Mod', result: 'Equal', mod_revision: kv?.mod_revision ?? 0 }],
          success: [{ request_put: { key, value: Buffer.from(String(id)) } }],
        }),
      );
      if (txn.succeeded) return id;
    }
    throw quiverError('ServiceNotReady', `sessions etcd: lost ${ID_ATTEMPTS_MAX} races for a node id in a row`);
  }

  async #call<T>(opName: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (e) {
      const message = e instanceof Error ? e.message : String(e);
      const kind = isConnectionError(e) ? 'IoFailed' : 'ServiceInternal';
      throw quiverError(kind, `sessions etcd (${this.#hosts.join(',')}): ${opName} failed: ${message}`, e);
    }
  }

  #checkOpen(): void {
    if (this.#closed) throw quiverError('ServiceNotReady', `sessions etcd (${this.#hosts.join(',')}): store is closed`);
  }
}

interface RegistrationOptions {
  readonly nodeId: number;
  readonly leaseId: string;
  readonly ttlMs: number;
  readonly renewedAtMs: number;
  readonly client: Etcd3;
  readonly clock: Clock;
  readonly retryDelayMs: number;
  readonly onEnd: (r: EtcdSessionRegistration) => void;
}

type KeepAliveStream = IDuplexStream<ILeaseKeepAliveRequest, ILeaseKeepAliveResponse>;

/**
 * One node's lease and its keep-alive loop. States: alive → lost (deadline passed, or etcd said the
 * lease is gone) or closed (deregistered); both are final and resolve `lost`.
 */
export class EtcdSessionRegistration implements SessionRegistration {
  readonly nodeId: number;
  /** The etcd lease owning the session key (for logs and operators' `etcdctl lease timetolive`). */
  readonly leaseId: string;
  readonly lost: Promise<void>;
  readonly #o: RegistrationOptions;
  /** Send time of the last renewal etcd acknowledged. */
  #renewedAtMs: number;
  #paused = false;
  #ended = false;
  #resolveLost!: () => void;
  readonly #stop = new AbortController();
  #stream: KeepAliveStream | undefined;
  /** Receives the answer to the renewal in flight (one at a time). */
  #answer: ((res: ILeaseKeepAliveResponse | undefined) => void) | undefined;
  #closing: Promise<void> | undefined;
  readonly #loop: Promise<void>;

  constructor(options: RegistrationOptions) {
    this.nodeId = options.nodeId;
    this.leaseId = options.leaseId;
    this.#o = options;
    this.#renewedAtMs = options.renewedAtMs;
    this.lost = new Promise((resolve) => (this.#resolveLost = resolve));
    this.#loop = this.#keepAlive();
  }

  /** Stops renewing, as if the process froze (tests of failure detection); the node still declares itself lost at its deadline. */
  pauseKeepAlive(): void {
    this.#paused = true;
  }

  resumeKeepAlive(): void {
    this.#paused = false;
  }

  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    const wasLive = !this.#ended;
    this.#end();
    await this.#loop;
    if (wasLive) await this.#o.client.leaseClient.leaseRevoke({ ID: this.#o.leaseId }).catch(() => undefined);
  }

  /** Final: stops the loop and resolves `lost`. */
  #end(): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#stop.abort();
    this.#dropStream();
    this.#resolveLost();
    this.#o.onEnd(this);
  }

  async #keepAlive(): Promise<void> {
    const { clock, ttlMs } = this.#o;
    const intervalMs = Math.max(1, Math.floor(ttlMs / 3));
    while (!this.#ended) {
      const deadlineMs = this.#renewedAtMs + ttlMs;
      const now = clock.nowMs();
      if (now >= deadlineMs) {
        // Past the TTL without an acknowledged renewal: etcd may have expired the lease already.
        this.#end();
        void this.#o.client.leaseClient.leaseRevoke({ ID: this.#o.leaseId }).catch(() => undefined);
        return;
      }
      const renewOk = this.#paused ? undefined : await this.#renewOnce(Math.min(intervalMs, deadlineMs - now));
      if (this.#ended) return;
      if (renewOk === 'gone') {
        this.#end();
        return;
      }
      const waitMs = renewOk === 'ok' ? intervalMs : Math.min(this.#o.retryDelayMs, intervalMs);
      await clock.sleep(Math.min(waitMs, Math.max(0, this.#renewedAtMs + ttlMs - clock.nowMs())), this.#stop.signal);
    }
  }

  /**
   * One renewal on the stream: ok, gone (TTL 0: etcd no longer knows the lease) or failed (try again).
   * One deadline covers opening the stream and the answer, so a hung connection never holds the loop
   * past the node's own deadline.
   */
  async #renewOnce(timeoutMs: number): Promise<'ok' | 'gone' | 'failed'> {
    const sentAtMs = this.#o.clock.nowMs();
    const timeout = new AbortController();
    const timedOut = this.#o.clock.sleep(timeoutMs, timeout.signal).then(() => undefined);
    try {
      let stream = this.#stream;
      if (stream === undefined) {
        stream = await Promise.race([this.#openStream().catch(() => undefined), timedOut]);
        if (stream === undefined || this.#ended) return 'failed';
      }
      const open = stream;
      const answer = await new Promise<ILeaseKeepAliveResponse | undefined>((resolve) => {
        const finish = (res: ILeaseKeepAliveResponse | undefined): void => {
          this.#answer = undefined;
          resolve(res);
        };
        this.#answer = finish;
        void timedOut.then(() => finish(undefined));
        try {
          open.write({ ID: this.#o.leaseId });
        } catch {
          finish(undefined);
        }
      });
      // A stream that failed or did not answer in time is replaced, so a late answer is never taken for a newer request.
      if (answer === undefined) {
        this.#dropStream();
        return 'failed';
      }
      if (answer.TTL === '0' || !(Number(answer.TTL) > 0)) return 'gone';
      this.#renewedAtMs = Math.max(this.#renewedAtMs, sentAtMs);
      return 'ok';
    } finally {
      timeout.abort();
    }
  }

  async #openStream(): Promise<KeepAliveStream> {
    const stream = await this.#o.client.leaseClient.leaseKeepAlive();
    if (this.#ended) {
      cancelStream(stream);
      throw new Error('registration ended');
    }
    // Only the current stream may answer: a replaced one's late answer belongs to an older request.
    const fail = (): void => {
      if (this.#stream === stream) this.#dropStream();
    };
    stream.on('data', (res) => {
      if (this.#stream === stream) this.#answer?.(res);
    });
    stream.on('error', fail);
    stream.on('end', fail);
    this.#stream = stream;
    return stream;
  }

  /** Cancels the current stream; a renewal waiting on it fails at once. */
  #dropStream(): void {
    const s = this.#stream;
    this.#stream = undefined;
    if (s !== undefined) cancelStream(s);
    this.#answer?.(undefined);
  }
}

function cancelStream(s: KeepAliveStream): void {
  // Errors after the cancel still reach the listener added in #openStream (or this one), never an unhandled 'error'.
  s.on('error', () => undefined);
  try {
    s.cancel();
  } catch {
    // already closed
  }
}

/** Smallest key greater than every key that starts with `prefix` (etcd's range_end for a prefix). */
function prefixEnd(prefix: string): Buffer {
  const out = Buffer.from(prefix);
  // A prefix that is a Quiver key ends in a printable ASCII byte, never 0xff.
  const last = out.byteLength - 1;
  out[last] = (out[last] ?? 0) + 1;
  return out;
}

function isConnectionError(e: unknown): boolean {
  if (typeof e !== 'object' || e === null) return false;
  if (isRecoverableError(e as Error)) return true;
  const name = (e as { name?: unknown }).name;
  return name === 'BrokenCircuitError' || name === 'TaskCancelledError';
}
