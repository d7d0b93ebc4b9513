/**
 * MetaKV on etcd (v3 API, through the `etcd3` client): the cluster backend.
 *
 * Why not etcd's own revisions: the MetaKV contract counts revisions per store (a fresh store is at 0,
 * every effective write bumps by exactly one, all ops of a txn share one revision, a txn may touch a
 * key several times). etcd's revision is global to the whole cluster, so several Quiver clusters (or
 * anything else) sharing one etcd would bump each other's counters, and etcd refuses a txn that puts
 * one key twice. So each store lives under a root prefix with its own counter:
 *
 *   {root}/rev        {"revision": N, "txn": "<id of the txn that wrote N>"}   (absent = revision 0)
 *   {root}/kv/{key}   envelope: tag byte, createRevision, modRevision, version (u64 LE each), value
 *
 * Writes are optimistic: (1) read the counter and every key the txn names at one etcd revision,
 * (2) evaluate the compares and apply the ops to a local overlay, (3) commit one etcd txn guarded by
 * "the counter is unchanged" that writes the new counter, the final puts and the deletes. Every
 * effective write changes the counter, so the guard serialises all writers of one store; a lost race
 * goes back to (1). A txn that changes nothing commits nothing: its read was a linearizable snapshot.
 *
 * Lost connections: reads are retried for up to `retryWindowMs`, then fail with a retriable IoFailed.
 * A write whose commit RPC failed may or may not have applied, or may still apply later. The counter
 * names the attempt that wrote it, so the next read knows: one of our attempts → it applied, return its
 * result; counter unchanged → not (yet): try again against the same counter value, so that at most one
 * attempt can ever apply and a late one is still recognised; counter moved on by someone else →
 * unknown, reject with a retriable IoFailed that says so (the caller re-reads, as after any lost CAS).
 * Never a wrong answer.
 *
 * Limits: etcd refuses a request over --max-request-bytes (default 1.5 MiB) and a txn of more than
 * --max-txn-ops ops (default 128). Both are checked before sending (ParameterTooLarge naming the
 * numbers), and deletes of a prefix are one range op, not one op per key. Scans page at
 * `scanPageKeysMax` keys per range, every page read at the revision of the first page (one snapshot).
 */

import { randomBytes } from 'node:crypto';
import { Etcd3, GRPCResourceExhastedError, isRecoverableError, type IKeyValue, type IOptions, type IRangeRequest, type IRequestOp } from 'etcd3';
import { isQuiverError, quiverError, type QuiverError } from '../common/errors.js';
import { Mutex } from '../common/mutex.js';
import {
  closedError,
  compareHolds,
  toBytes,
  validateKey,
  validatePrefix,
  validateScanOptions,
  validateTxn,
  VALUE_BYTES_MAX_DEFAULT,
  type Compare,
  type KvEntry,
  type MetaKV,
  type Op,
  type ScanOptions,
  type TxnResult,
} from './meta-kv.js';

export interface EtcdMetaKVOptions {
  /** `host:port` endpoints of one etcd cluster (http). */
  readonly hosts: readonly string[];
  /** Namespace of this store inside etcd (no leading or trailing '/'); default 'quiver'. */
  readonly root?: string | undefined;
  readonly valueBytesMax?: number | undefined;
  /** The cluster's --max-request-bytes (etcd default 1.5 MiB). */
  readonly requestBytesMax?: number | undefined;
  /** The cluster's --max-txn-ops (etcd default 128). */
  readonly txnOpsMax?: number | undefined;
  /** Keys asked for per range request of a scan. */
  readonly scanPageKeysMax?: number | undefined;
  /** Deadline of one RPC. */
  readonly requestTimeoutMs?: number | undefined;
  /** How long an operation keeps retrying a lost connection before it fails (retriable). */
  readonly retryWindowMs?: number | undefined;
  /** Connecting to a host gives up after this long. */
  readonly dialTimeoutMs?: number | undefined;
  /** Largest answer the client accepts (gRPC receive limit); a scan page over it is retried with fewer keys. */
  readonly responseBytesMax?: number | undefined;
  /** TLS to etcd (https): the CA that signed the servers' certificates, and a client certificate if required. */
  readonly tls?: { readonly ca: Buffer; readonly cert?: Buffer | undefined; readonly key?: Buffer | undefined } | undefined;
  /** etcd user authentication. */
  readonly auth?: { readonly username: string; readonly password: string } | undefined;
  /** For fault tests: a client made by `connectEtcd` (then wrapped); hosts still name the cluster in messages. */
  readonly client?: Etcd3 | undefined;
}

export const ETCD_REQUEST_BYTES_MAX_DEFAULT = 1_572_864;
export const ETCD_TXN_OPS_MAX_DEFAULT = 128;
const SCAN_PAGE_KEYS_MAX_DEFAULT = 1000;
const REQUEST_TIMEOUT_MS_DEFAULT = 5_000;
const RETRY_WINDOW_MS_DEFAULT = 15_000;
const DIAL_TIMEOUT_MS_DEFAULT = 3_000;
/** Lost optimistic races before a write gives up; each loss means another writer made progress. */
const CONFLICT_ATTEMPTS_MAX = 1_000;
/** A scan restarts when etcd compacted the revision it pages at; this often at most. */
const SCAN_RESTARTS_MAX = 5;
/** What etcd adds to a request beyond keys and values (raft header, op framing), with margin. */
const REQUEST_OVERHEAD_BYTES = 1_024;
const OP_OVERHEAD_BYTES = 16;
const RETRY_DELAY_MS_MIN = 50;
const RETRY_DELAY_MS_MAX = 1_000;

const ENVELOPE_TAG = 1;
const ENVELOPE_HEADER_BYTES = 25;

const decoder = new TextDecoder('utf-8', { fatal: true });

interface Counter {
  readonly revision: number;
  /** etcd mod_revision of the counter key; 0 when absent. */
  readonly etcdModRevision: number;
  readonly txnId: string | undefined;
}

interface Snapshot {
  readonly counter: Counter;
  readonly entries: ReadonlyMap<string, KvEntry>;
  /** Number of keys under each deletePrefix prefix. */
  readonly prefixCounts: ReadonlyMap<string, number>;
}

interface Plan {
  readonly result: TxnResult;
  readonly changed: boolean;
  readonly ops: IRequestOp[];
  readonly requestBytes: number;
}

export class EtcdMetaKV implements MetaKV {
  readonly #client: Etcd3;
  readonly #hosts: readonly string[];
  readonly #rootPrefix: Buffer;
  readonly #kvPrefix: Buffer;
  readonly #counterKey: Buffer;
  readonly #valueBytesMax: number;
  readonly #requestBytesMax: number;
  readonly #txnOpsMax: number;
  readonly #scanPageKeysMax: number;
  readonly #retryWindowMs: number;
  readonly #txnIdPrefix = randomBytes(6).toString('hex');
  #txnCounter = 0;
  /**
   * Writes of this instance go one at a time: they would all contend on the counter anyway, and losing
   * optimistic races to ourselves costs a read and a commit each (8 concurrent writers ran 4x slower
   * than one). Other processes are still handled optimistically.
   */
  readonly #writeMutex = new Mutex();
  #closed = false;

  constructor(options: EtcdMetaKVOptions) {
    if (options.hosts.length === 0) throw quiverError('ParameterInvalid', 'meta kv etcd: no hosts given');
    const root = options.root ?? 'quiver';
    if (root.length === 0 || root.startsWith('/') || root.endsWith('/') || root.includes('//')) {
      throw quiverError('ParameterInvalid', `meta kv etcd: root ${JSON.stringify(root)} must be non-empty, without leading, trailing or double '/'`);
    }
    // Root 'a/kv' would put its counter 'a/kv/rev' inside the key range 'a/kv/' of root 'a'.
    if (root.split('/').includes('kv')) {
      throw quiverError('ParameterInvalid', `meta kv etcd: root ${JSON.stringify(root)} must not have a segment 'kv' (reserved for the key range)`);
    }
    this.#hosts = [...options.hosts];
    this.#rootPrefix = Buffer.from(`${root}/`);
    this.#kvPrefix = Buffer.from(`${root}/kv/`);
    this.#counterKey = Buffer.from(`${root}/rev`);
    this.#valueBytesMax = options.valueBytesMax ?? VALUE_BYTES_MAX_DEFAULT;
    this.#requestBytesMax = options.requestBytesMax ?? ETCD_REQUEST_BYTES_MAX_DEFAULT;
    this.#txnOpsMax = options.txnOpsMax ?? ETCD_TXN_OPS_MAX_DEFAULT;
    this.#scanPageKeysMax = options.scanPageKeysMax ?? SCAN_PAGE_KEYS_MAX_DEFAULT;
    this.#retryWindowMs = options.retryWindowMs ?? RETRY_WINDOW_MS_DEFAULT;
    if (this.#txnOpsMax < 2 || this.#scanPageKeysMax < 1) {
      throw quiverError('ParameterInvalid', 'meta kv etcd: txnOpsMax must be >= 2 and scanPageKeysMax >= 1');
    }
    this.#client = options.client ?? connectEtcd(options);
  }

  /** The namespace prefix of this store in etcd ('{root}/'). */
  get rootPrefix(): string {
    return this.#rootPrefix.toString();
  }

  async get(key: string): Promise<KvEntry | undefined> {
    this.#checkOpen();
    validateKey(key);
    const res = await this.#retryRead('get', key, () => this.#client.kv.range({ key: this.#fullKey(key) }));
    const kv = res.kvs[0];
    return kv === undefined ? undefined : this.#decodeEntry(kv);
  }

  async put(key: string, value: Uint8Array | string): Promise<number> {
    return (await this.#write('put', key, [], [{ type: 'put', key, value }], [])).revision;
  }

  async delete(key: string): Promise<boolean> {
    this.#checkOpen();
    validateKey(key);
    // Existence and the delete are decided on one snapshot inside #write; the plan says whether it changed anything.
    let existed = false;
    await this.#write('delete', key, [], [{ type: 'delete', key }], [], (plan) => {
      existed = plan.changed;
    });
    return existed;
  }

  async scan(prefix: string, opts?: ScanOptions): Promise<KvEntry[]> {
    this.#checkOpen();
    validatePrefix(prefix);
    validateScanOptions(opts);
    const full = this.#fullKey(prefix);
    const end = prefixEnd(full);
    let start = full;
    if (opts?.startAfter !== undefined) {
      const after = this.#fullKey(opts.startAfter);
      if (Buffer.compare(after, full) >= 0) start = Buffer.concat([after, Buffer.from([0])]);
    }
    const limit = opts?.limit ?? Number.POSITIVE_INFINITY;
    for (let restart = 0; ; restart++) {
      try {
        return await this.#scanPages(start, end, limit, prefix);
      } catch (e) {
        if (isCompacted(e) && restart < SCAN_RESTARTS_MAX) continue;
        throw this.#mapError('scan', prefix, e);
      }
    }
  }

  async txn(compares: readonly Compare[], success: readonly Op[], failure: readonly Op[] = []): Promise<TxnResult> {
    const first = compares[0]?.key ?? describeOp(success[0] ?? failure[0]);
    return this.#write('txn', first, compares, success, failure);
  }

  async revision(): Promise<number> {
    this.#checkOpen();
    const res = await this.#retryRead('revision', '', () => this.#client.kv.range({ key: this.#counterKey }));
    return this.#decodeCounter(res.kvs[0]).revision;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#client.close();
  }

  #checkOpen(): void {
    if (this.#closed) throw closedError(`etcd ${this.#hosts.join(',')} ${this.rootPrefix}`);
  }

  #fullKey(key: string): Buffer {
    return Buffer.concat([this.#kvPrefix, Buffer.from(key, 'utf8')]);
  }

  async #scanPages(start: Buffer, end: Buffer, limit: number, prefix: string): Promise<KvEntry[]> {
    const out: KvEntry[] = [];
    let from = start;
    let atRevision: string | undefined;
    let pageKeys = this.#scanPageKeysMax;
    while (out.length < limit) {
      const req: IRangeRequest = {
        key: from,
        range_end: end,
        limit: Math.min(pageKeys, limit - out.length),
        ...(atRevision === undefined ? {} : { revision: atRevision }),
      };
      let res;
      try {
        res = await this.#retryRead('scan', prefix, () => this.#client.kv.range(req), true);
      } catch (e) {
        // A page of large values can exceed the gRPC message limit: ask for fewer keys per page.
        if (isMessageTooLarge(e) && pageKeys > 1) {
          pageKeys = Math.max(1, Math.floor(pageKeys / 2));
          continue;
        }
        throw e;
      }
      atRevision ??= res.header.revision;
      for (const kv of res.kvs) out.push(this.#decodeEntry(kv));
      const last = res.kvs[res.kvs.length - 1];
      if (!res.more || last === undefined) break;
      from = Buffer.concat([last.key, Buffer.from([0])]);
    }
    return out;
  }

  /**
   * The optimistic write loop of the header. `onCommitted` sees the plan that took effect (delete uses
   * it to learn whether the key existed).
   */
  async #write(
    opName: string,
    target: string,
    compares: readonly Compare[],
    success: readonly Op[],
    failure: readonly Op[],
    onCommitted?: (plan: Plan) => void,
  ): Promise<TxnResult> {
    this.#checkOpen();
    validateTxn(compares, [success, failure], this.#valueBytesMax);
    return this.#writeMutex.run(() => {
      this.#checkOpen();
      return this.#writeUnlocked(opName, target, compares, success, failure, onCommitted);
    });
  }

  async #writeUnlocked(
    opName: string,
    target: string,
    compares: readonly Compare[],
    success: readonly Op[],
    failure: readonly Op[],
    onCommitted: ((plan: Plan) => void) | undefined,
  ): Promise<TxnResult> {
    this.#txnCounter += 1;
    const txnId = `${this.#txnIdPrefix}-${this.#txnCounter}`;
    /**
     * Attempts whose commit RPC failed without an answer, by attempt id: any of them may still apply, as
     * long as the counter stays at `inDoubtExpected` (the revision they all compared against: a new
     * attempt is only made while the counter is still there).
     */
    const inDoubt = new Map<string, Plan>();
    let inDoubtExpected = -1;
    const unknown = (cause?: unknown): QuiverError =>
      quiverError(
        'IoFailed',
        `meta kv etcd (${this.#hosts.join(',')}): ${opName} ${JSON.stringify(target)}: connection lost during commit` +
          `${cause === undefined ? ' and another writer committed since' : `: ${errText(cause)}`}; outcome unknown, re-read and retry`,
        cause,
      );
    const deadline = Date.now() + this.#retryWindowMs;
    for (let attempt = 1; attempt <= CONFLICT_ATTEMPTS_MAX; attempt++) {
      let snapshot: Snapshot;
      try {
        snapshot = await this.#readSnapshot(opName, target, compares, success, failure);
      } catch (e) {
        throw inDoubt.size > 0 ? unknown(e) : e;
      }
      const applied = snapshot.counter.txnId === undefined ? undefined : inDoubt.get(snapshot.counter.txnId);
      if (applied !== undefined) {
        onCommitted?.(applied);
        return applied.result;
      }
      // Someone else moved the counter: an in-doubt attempt either never applies or applied before them.
      if (inDoubt.size > 0 && snapshot.counter.etcdModRevision !== inDoubtExpected) throw unknown();
      const attemptId = `${txnId}.${attempt}`;
      const plan = this.#plan(snapshot, compares, success, failure, attemptId);
      if (!plan.changed) {
        // Nothing to write; but an in-doubt attempt could still apply, so this answer would be stale.
        if (inDoubt.size > 0) throw unknown();
        onCommitted?.(plan);
        return plan.result;
      }
      this.#checkLimits(opName, target, plan);
      try {
        const res = await this.#client.kv.txn({
          compare: [{ key: this.#counterKey, target: 'Mod', result: 'Equal', mod_revision: snapshot.counter.etcdModRevision }],
          success: plan.ops,
        });
        if (res.succeeded) {
          onCommitted?.(plan);
          return plan.result;
        }
        // Lost the race to another writer of this store (or to a late in-doubt attempt): read again.
      } catch (e) {
        if (!isConnectionError(e)) throw inDoubt.size > 0 ? unknown(e) : this.#mapError(opName, target, e);
        inDoubt.set(attemptId, plan);
        inDoubtExpected = snapshot.counter.etcdModRevision;
        if (Date.now() > deadline) throw unknown(e);
        await sleep(retryDelayMs(attempt));
      }
    }
    throw quiverError('IoFailed', `meta kv etcd: ${opName} ${JSON.stringify(target)}: lost ${CONFLICT_ATTEMPTS_MAX} optimistic races in a row`);
  }

  /** Reads the counter, every named key and the size of every deleted prefix at one etcd revision. */
  async #readSnapshot(opName: string, target: string, compares: readonly Compare[], success: readonly Op[], failure: readonly Op[]): Promise<Snapshot> {
    const keys = new Set<string>();
    const prefixes = new Set<string>();
    for (const c of compares) keys.add(c.key);
    for (const op of [...success, ...failure]) {
      if (op.type === 'deletePrefix') prefixes.add(op.prefix);
      else keys.add(op.key);
    }
    const keyList = [...keys];
    const prefixList = [...prefixes];
    const ranges: IRangeRequest[] = [
      { key: this.#counterKey },
      ...keyList.map((k) => ({ key: this.#fullKey(k) })),
      ...prefixList.map((p) => {
        const full = this.#fullKey(p);
        return { key: full, range_end: prefixEnd(full), count_only: true };
      }),
    ];
    for (let restart = 0; ; restart++) {
      try {
        const responses = await this.#readRanges(opName, target, ranges);
        const entries = new Map<string, KvEntry>();
        keyList.forEach((k, i) => {
          const kv = responses[i + 1]?.kvs[0];
          if (kv !== undefined) entries.set(k, this.#decodeEntry(kv));
        });
        const prefixCounts = new Map<string, number>();
        prefixList.forEach((p, i) => prefixCounts.set(p, Number(responses[1 + keyList.length + i]?.count ?? 0)));
        return { counter: this.#decodeCounter(responses[0]?.kvs[0]), entries, prefixCounts };
      } catch (e) {
        if (isCompacted(e) && restart < SCAN_RESTARTS_MAX) continue;
        throw this.#mapError(opName, target, e);
      }
    }
  }

  /** Range requests as txns of at most txnOpsMax ops; every chunk after the first at the first one's revision. */
  async #readRanges(opName: string, target: string, ranges: readonly IRangeRequest[]) {
    const out: { kvs: IKeyValue[]; count: string }[] = [];
    let atRevision: string | undefined;
    for (let i = 0; i < ranges.length; i += this.#txnOpsMax) {
      const chunk = ranges.slice(i, i + this.#txnOpsMax).map((r) => ({
        request_range: atRevision === undefined ? r : { ...r, revision: atRevision },
      }));
      const res = await this.#retryRead(opName, target, () => this.#client.kv.txn({ success: chunk }), true);
      atRevision ??= res.header.revision;
      for (const r of res.responses) out.push({ kvs: r.response_range.kvs, count: r.response_range.count });
    }
    return out;
  }

  /** Evaluates the txn on the snapshot and turns its effect into one etcd txn body. */
  #plan(snapshot: Snapshot, compares: readonly Compare[], success: readonly Op[], failure: readonly Op[], attemptId: string): Plan {
    const succeeded = compares.every((c) => compareHolds(c, snapshot.entries.get(c.key)));
    const revision = snapshot.counter.revision + 1;
    /** Final state of every key the txn touched: an entry, or null for deleted. */
    const overlay = new Map<string, KvEntry | null>();
    const deletedPrefixes: string[] = [];
    const lookup = (key: string): KvEntry | undefined => {
      const o = overlay.get(key);
      if (o !== undefined) return o ?? undefined;
      if (deletedPrefixes.some((p) => key.startsWith(p))) return undefined;
      return snapshot.entries.get(key);
    };
    let changed = false;
    for (const op of succeeded ? success : failure) {
      switch (op.type) {
        case 'put': {
          const prev = lookup(op.key);
          overlay.set(op.key, {
            key: op.key,
            value: toBytes(op.value),
            createRevision: prev?.createRevision ?? revision,
            modRevision: revision,
            version: (prev?.version ?? 0) + 1,
          });
          changed = true;
          break;
        }
        case 'delete':
          if (lookup(op.key) !== undefined) changed = true;
          overlay.set(op.key, null);
          break;
        case 'deletePrefix': {
          for (const [k, v] of overlay) {
            if (!k.startsWith(op.prefix)) continue;
            if (v !== null) changed = true;
            overlay.set(k, null);
          }
          // Until something changed, no snapshot key has been touched, so the snapshot count is exact.
          if (!changed && (snapshot.prefixCounts.get(op.prefix) ?? 0) > 0) changed = true;
          deletedPrefixes.push(op.prefix);
          break;
        }
      }
    }
    if (!changed) return { result: { succeeded, revision: snapshot.counter.revision }, changed, ops: [], requestBytes: 0 };

    const counterValue = Buffer.from(JSON.stringify({ revision, txn: attemptId }));
    const ops: IRequestOp[] = [{ request_put: { key: this.#counterKey, value: counterValue } }];
    let requestBytes = REQUEST_OVERHEAD_BYTES + this.#counterKey.byteLength + counterValue.byteLength;
    const putKeys: Buffer[] = [];
    // Deleted prefixes: drop those inside another, then delete each as ranges around the keys put into it
    // (etcd refuses a txn whose put overlaps one of its delete ranges).
    const prefixes = [...new Set(deletedPrefixes)].filter((p, _i, all) => !all.some((q) => q !== p && p.startsWith(q)));
    for (const [key, entry] of overlay) {
      const full = this.#fullKey(key);
      if (entry !== null) {
        const value = encodeEnvelope(entry);
        ops.push({ request_put: { key: full, value } });
        putKeys.push(full);
        requestBytes += full.byteLength + value.byteLength + OP_OVERHEAD_BYTES;
      } else if (!prefixes.some((p) => key.startsWith(p)) && snapshot.entries.has(key)) {
        ops.push({ request_delete_range: { key: full } });
        requestBytes += full.byteLength + OP_OVERHEAD_BYTES;
      }
    }
    putKeys.sort(Buffer.compare);
    for (const p of prefixes) {
      const full = this.#fullKey(p);
      const end = prefixEnd(full);
      let from = full;
      for (const k of putKeys) {
        if (Buffer.compare(k, full) < 0 || Buffer.compare(k, end) >= 0) continue;
        if (Buffer.compare(from, k) < 0) ops.push({ request_delete_range: { key: from, range_end: k } });
        from = Buffer.concat([k, Buffer.from([0])]);
      }
      if (Buffer.compare(from, end) < 0) ops.push({ request_delete_range: { key: from, range_end: end } });
      requestBytes += 2 * full.byteLength + OP_OVERHEAD_BYTES;
    }
    return { result: { succeeded, revision }, changed, ops, requestBytes };
  }

  #checkLimits(opName: string, target: string, plan: Plan): void {
    if (plan.ops.length > this.#txnOpsMax) {
      throw quiverError(
        'ParameterTooLarge',
        `meta kv etcd: ${opName} ${JSON.stringify(target)} needs ${plan.ops.length} etcd ops, over the cluster's max-txn-ops ${this.#txnOpsMax}`,
      );
    }
    if (plan.requestBytes > this.#requestBytesMax) {
      throw quiverError(
        'ParameterTooLarge',
        `meta kv etcd: ${opName} ${JSON.stringify(target)} writes about ${plan.requestBytes} bytes, over the cluster's max-request-bytes ${this.#requestBytesMax}`,
      );
    }
  }

  /** Runs an idempotent read, retrying lost connections within the retry window. */
  async #retryRead<T>(opName: string, target: string, fn: () => Promise<T>, rethrowRaw = false): Promise<T> {
    const deadline = Date.now() + this.#retryWindowMs;
    for (let attempt = 1; ; attempt++) {
      this.#checkOpen();
      try {
        return await fn();
      } catch (e) {
        if (rethrowRaw && (isCompacted(e) || isMessageTooLarge(e))) throw e;
        if (!isConnectionError(e) || Date.now() + retryDelayMs(attempt) > deadline) throw this.#mapError(opName, target, e);
        await sleep(retryDelayMs(attempt));
      }
    }
  }

  #mapError(opName: string, target: string, e: unknown): QuiverError {
    if (isQuiverError(e)) return e;
    const where = `meta kv etcd (${this.#hosts.join(',')}): ${opName} ${JSON.stringify(target)}`;
    const message = errText(e);
    if (/request is too large|too many operations in txn/.test(message)) {
      return quiverError('ParameterTooLarge', `${where}: ${message}`, e);
    }
    if (isConnectionError(e) || isCompacted(e)) return quiverError('IoFailed', `${where} failed: ${message}`, e);
    return quiverError('ServiceInternal', `${where} failed: ${message}`, e);
  }

  #decodeEntry(kv: IKeyValue): KvEntry {
    const key = decodeUtf8(kv.key.subarray(this.#kvPrefix.byteLength), kv.key);
    const v = kv.value;
    if (v.byteLength < ENVELOPE_HEADER_BYTES || v[0] !== ENVELOPE_TAG) {
      throw quiverError('ServiceInternal', `meta kv etcd: key ${JSON.stringify(key)} holds a value Quiver did not write (${v.byteLength} bytes)`);
    }
    const entry: KvEntry = {
      key,
      value: new Uint8Array(v.subarray(ENVELOPE_HEADER_BYTES)),
      createRevision: Number(v.readBigUInt64LE(1)),
      modRevision: Number(v.readBigUInt64LE(9)),
      version: Number(v.readBigUInt64LE(17)),
    };
    if (!(entry.version >= 1 && entry.createRevision >= 1 && entry.modRevision >= entry.createRevision)) {
      throw quiverError(
        'ServiceInternal',
        `meta kv etcd: key ${JSON.stringify(key)} has an impossible header ${JSON.stringify({ ...entry, value: undefined })}`,
      );
    }
    return entry;
  }

  #decodeCounter(kv: IKeyValue | undefined): Counter {
    if (kv === undefined) return { revision: 0, etcdModRevision: 0, txnId: undefined };
    let parsed: unknown;
    try {
      parsed = JSON.parse(kv.value.toString('utf8'));
    } catch {
      parsed = undefined;
    }
    const p = parsed as { revision?: unknown; txn?: unknown } | undefined;
    if (typeof p?.revision !== 'number' || !Number.isSafeInteger(p.revision) || p.revision < 1 || typeof p.txn !== 'string') {
      throw quiverError('ServiceInternal', `meta kv etcd: counter ${this.#counterKey.toString()} is corrupt: ${kv.value.toString('utf8').slice(0, 100)}`);
    }
    return { revision: p.revision, etcdModRevision: Number(kv.mod_revision), txnId: p.txn };
  }
}

/** The etcd3 client as EtcdMetaKV uses it: no retries of its own, a deadline on every call. */
export function connectEtcd(options: Pick<EtcdMetaKVOptions, 'hosts' | 'requestTimeoutMs' | 'dialTimeoutMs' | 'responseBytesMax' | 'tls' | 'auth'>): Etcd3 {
  // The client's own retries would resend a txn whose outcome is unknown; EtcdMetaKV retries itself.
  // Async on purpose: the client reports a failed stream (watch, lease keep-alive) by running a throwing
  // function through the policy and catching the rejection; a synchronous throw would escape its event
  // listener as an uncaught exception and kill the process.
  const passThrough = {
    execute: async (fn: (ctx: { signal: AbortSignal; attempt: number }) => unknown) => fn({ signal: new AbortController().signal, attempt: 0 }),
  };
  const policy = passThrough as unknown as NonNullable<NonNullable<IOptions['faultHandling']>['global']>;
  const requestTimeoutMs = options.requestTimeoutMs ?? REQUEST_TIMEOUT_MS_DEFAULT;
  const tls = options.tls;
  return new Etcd3({
    hosts: options.hosts.map((h) => `${tls === undefined ? 'http' : 'https'}://${h}`),
    ...(tls === undefined ? {} : { credentials: { rootCertificate: tls.ca, privateKey: tls.key, certChain: tls.cert } }),
    ...(options.auth === undefined ? {} : { auth: { username: options.auth.username, password: options.auth.password } }),
    dialTimeout: options.dialTimeoutMs ?? DIAL_TIMEOUT_MS_DEFAULT,
    faultHandling: { global: policy, host: () => policy },
    defaultCallOptions: (ctx) => (ctx.isStream ? {} : { deadline: Date.now() + requestTimeoutMs }),
    // Default: room for a snapshot read of txnOpsMax values at the 1.5 MiB limit; scans shrink pages instead.
    grpcOptions: { 'grpc.max_receive_message_length': options.responseBytesMax ?? 256 << 20 },
  });
}

function encodeEnvelope(e: KvEntry): Buffer {
  const out = Buffer.allocUnsafe(ENVELOPE_HEADER_BYTES + e.value.byteLength);
  out[0] = ENVELOPE_TAG;
  out.writeBigUInt64LE(BigInt(e.createRevision), 1);
  out.writeBigUInt64LE(BigInt(e.modRevision), 9);
  out.writeBigUInt64LE(BigInt(e.version), 17);
  out.set(e.value, ENVELOPE_HEADER_BYTES);
  return out;
}

/** Smallest key greater than every key that starts with `prefix` (etcd's range_end for a prefix). */
function prefixEnd(prefix: Buffer): Buffer {
  for (let i = prefix.byteLength - 1; i >= 0; i--) {
    const b = prefix[i] ?? 0xff;
    if (b < 0xff) {
      const out = Buffer.from(prefix.subarray(0, i + 1));
      out[i] = b + 1;
      return out;
    }
  }
  // Only reachable for an all-0xff prefix, which a '{root}/kv/' prefix never is.
  throw new Error('assertion failed: prefix of 0xff bytes only');
}

function decodeUtf8(bytes: Uint8Array, whole: Buffer): string {
  try {
    return decoder.decode(bytes);
  } catch (e) {
    throw quiverError('ServiceInternal', `meta kv etcd: key ${whole.toString('hex')} is not UTF-8`, e);
  }
}

function isConnectionError(e: unknown): boolean {
  if (typeof e !== 'object' || e === null) return false;
  if (isRecoverableError(e as Error)) return true;
  const name = (e as { name?: unknown }).name;
  return name === 'BrokenCircuitError' || name === 'TaskCancelledError';
}

/** gRPC RESOURCE_EXHAUSTED: an answer over the client's receive limit. */
function isMessageTooLarge(e: unknown): boolean {
  return e instanceof GRPCResourceExhastedError || /RESOURCE_EXHAUSTED|larger than max/.test(errText(e));
}

function isCompacted(e: unknown): boolean {
  return errText(e).includes('required revision has been compacted');
}

function describeOp(op: Op | undefined): string {
  if (op === undefined) return '';
  return op.type === 'deletePrefix' ? `${op.prefix}*` : op.key;
}

function retryDelayMs(attempt: number): number {
  return Math.min(RETRY_DELAY_MS_MAX, RETRY_DELAY_MS_MIN * 2 ** Math.min(attempt - 1, 10));
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function errText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
