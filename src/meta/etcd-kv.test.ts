import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isQuiverError } from '../common/errors.js';
import { EtcdServer, etcdUnavailableReason } from '../testing/etcd-server.js';
import { freePort } from '../testing/free-port.js';
import { GRPCUnavailableError, type IRangeRequest, type ITxnRequest } from 'etcd3';
import { connectEtcd, EtcdMetaKV, type EtcdMetaKVOptions } from './etcd-kv.js';
import { decodeString } from './json.js';
import { runMetaKvConformance } from './meta-kv.conformance.js';
import { VALUE_BYTES_MAX_DEFAULT } from './meta-kv.js';

const unavailable = etcdUnavailableReason();
if (unavailable !== undefined) {
  // Visible in the test output; CI installs etcd-server (.ci/run), so there this never happens.
  console.warn(`SKIPPED etcd MetaKV tests: ${unavailable}`);
}

describe.skipIf(unavailable !== undefined)('EtcdMetaKV against a real etcd', () => {
  let server: EtcdServer | undefined;
  let rootCounter = 0;
  const opened: EtcdMetaKV[] = [];
  const open = (options: Partial<EtcdMetaKVOptions> = {}): EtcdMetaKV => {
    if (server === undefined) throw new Error('etcd not started');
    const kv = new EtcdMetaKV({ hosts: [server.endpoint], root: `test/${++rootCounter}`, ...options });
    opened.push(kv);
    return kv;
  };

  beforeAll(async () => {
    server = await EtcdServer.start();
  });
  afterAll(async () => {
    for (const kv of opened) await kv.close();
    await server?.stop();
  });

  // Small pages so that the conformance scans (25 keys) cross page boundaries.
  runMetaKvConformance('etcd', () => open({ scanPageKeysMax: 4 }));

  it('keeps stores under different roots apart, each with its own revision', async () => {
    const a = open();
    const b = open();
    await a.put('k', 'a');
    await a.put('k', 'a2');
    await b.put('k', 'b');
    expect(await a.revision()).toBe(2);
    expect(await b.revision()).toBe(1);
    expect((await a.scan('')).map(decodeString)).toEqual(['a2']);
    expect((await b.scan('')).map(decodeString)).toEqual(['b']);
  });

  it('several clients of one root race optimistically: one CAS wins, every write gets its own revision', async () => {
    const root = `shared/${++rootCounter}`;
    const clients = Array.from({ length: 4 }, () => open({ root }));
    const results = await Promise.all(
      clients.flatMap((kv, c) =>
        Array.from({ length: 5 }, (_, i) =>
          Promise.all([
            kv.txn([{ key: 'leader', target: 'version', op: '==', value: 0 }], [{ type: 'put', key: 'leader', value: `c${c}-${i}` }]),
            kv.put(`own/${c}/${i}`, 'x'),
          ]),
        ),
      ),
    );
    expect(results.filter(([cas]) => cas.succeeded)).toHaveLength(1);
    const revisions = results.flatMap(([cas, put]) => (cas.succeeded ? [cas.revision, put] : [put]));
    expect([...revisions].sort((a, b) => a - b)).toEqual(Array.from({ length: 21 }, (_, i) => i + 1));
    const first = clients[0];
    if (first === undefined) throw new Error('no client');
    expect(await first.revision()).toBe(21);
    expect(await first.scan('own/')).toHaveLength(20);
  });

  it('deletes a prefix of more keys than one etcd txn may hold, around keys put in the same txn', async () => {
    const kv = open({ txnOpsMax: 16 });
    for (let i = 0; i < 40; i += 10) {
      await kv.txn(
        [],
        Array.from({ length: 10 }, (_, j) => ({ type: 'put' as const, key: `p/${String(i + j).padStart(2, '0')}`, value: 'x' })),
      );
    }
    await kv.put('q/keep', 'y');
    const r = await kv.txn(
      [],
      [
        { type: 'deletePrefix', prefix: 'p/' },
        { type: 'put', key: 'p/05', value: 'new' },
        { type: 'put', key: 'p/20', value: 'new' },
      ],
    );
    expect(r).toEqual({ succeeded: true, revision: 6 });
    expect((await kv.scan('')).map((e) => [e.key, decodeString(e), e.version])).toEqual([
      ['p/05', 'new', 1],
      ['p/20', 'new', 1],
      ['q/keep', 'y', 1],
    ]);
  });

  it('refuses a txn over max-txn-ops or max-request-bytes before sending it, naming the limit', async () => {
    const kv = open();
    const many = Array.from({ length: 200 }, (_, i) => ({ type: 'put' as const, key: `m/${i}`, value: 'x' }));
    const tooMany = await kv.txn([], many).catch((e: unknown) => e);
    expect(isQuiverError(tooMany, 'ParameterTooLarge')).toBe(true);
    expect(String(tooMany)).toContain('max-txn-ops 128');
    const tooBig = await kv.put('big', new Uint8Array(VALUE_BYTES_MAX_DEFAULT)).catch((e: unknown) => e);
    expect(isQuiverError(tooBig, 'ParameterTooLarge')).toBe(true);
    expect(String(tooBig)).toContain('max-request-bytes');
    expect(await kv.revision()).toBe(0);
    // A value of 1 MiB fits and round-trips.
    const mib = new Uint8Array(1 << 20).map((_, i) => i & 0xff);
    await kv.put('mib', mib);
    expect(Buffer.compare((await kv.get('mib'))?.value ?? new Uint8Array(), mib)).toBe(0);
  });

  it('reads at one revision across scan pages', async () => {
    const kv = open({ scanPageKeysMax: 2 });
    for (let i = 0; i < 9; i++) await kv.put(`s/${i}`, String(i));
    const entries = await kv.scan('s/');
    expect(entries.map((e) => e.key)).toEqual(Array.from({ length: 9 }, (_, i) => `s/${i}`));
    expect((await kv.scan('s/', { limit: 5 })).map((e) => e.key)).toEqual(['s/0', 's/1', 's/2', 's/3', 's/4']);
  });

  it('shrinks scan pages whose values exceed the response limit', async () => {
    const kv = open({ scanPageKeysMax: 10, responseBytesMax: 3 << 20 });
    const mib = new Uint8Array(1 << 20).fill(7);
    for (let i = 0; i < 7; i++) await kv.put(`big/${i}`, mib);
    const entries = await kv.scan('big/');
    expect(entries.map((e) => e.key)).toEqual(Array.from({ length: 7 }, (_, i) => `big/${i}`));
    expect(entries.every((e) => e.value.byteLength === 1 << 20 && e.value[100] === 7)).toBe(true);
  });

  it('refuses a root that would overlap the key range of another root', () => {
    expect(() => open({ root: 'a/kv' })).toThrow(/segment 'kv'/);
  });

  it('a write stalled by a frozen etcd resolves once, with the right answer, when etcd resumes', async () => {
    if (server === undefined) throw new Error('etcd not started');
    const kv = open({ requestTimeoutMs: 300, retryWindowMs: 20_000 });
    await kv.put('lock', 'v0');
    const etcd = server;
    await etcd.freeze();
    let resumed = false;
    const resume = setTimeout(() => {
      etcd.thaw();
      resumed = true;
    }, 1_000);
    try {
      const [cas, got] = await Promise.all([
        kv.txn([{ key: 'lock', target: 'value', op: '==', value: 'v0' }], [{ type: 'put', key: 'lock', value: 'v1' }]),
        kv.get('lock'),
      ]);
      expect(resumed).toBe(true);
      // Whether the first commit attempt applied while etcd was frozen or a retry did, the caller sees one success.
      expect(cas).toEqual({ succeeded: true, revision: 2 });
      expect(got === undefined ? undefined : decodeString(got)).toMatch(/^v[01]$/);
      const now = await kv.get('lock');
      expect(now).toMatchObject({ version: 2, modRevision: 2 });
    } finally {
      clearTimeout(resume);
      etcd.thaw();
    }
  });

  it('concurrent create-if-absent txns across a freeze: no wrong answer, revisions stay consistent', async () => {
    if (server === undefined) throw new Error('etcd not started');
    // Four clients of one root, so that writes of different clients are in flight when etcd freezes.
    const root = `freeze/${++rootCounter}`;
    const clients = Array.from({ length: 4 }, () => open({ root, requestTimeoutMs: 200, retryWindowMs: 20_000 }));
    const kv = clients[0];
    if (kv === undefined) throw new Error('no client');
    const etcd = server;
    const writes = Array.from({ length: 40 }, (_, i) =>
      (clients[i % clients.length] ?? kv)
        .txn([{ key: `w/${i}`, target: 'version', op: '==', value: 0 }], [{ type: 'put', key: `w/${i}`, value: 'x' }])
        .then(
          (r) => ({ key: `w/${i}`, result: r, error: undefined }),
          (e: unknown) => ({ key: `w/${i}`, result: undefined, error: e }),
        ),
    );
    // Freeze while the others are between their read and their commit, or inside the commit.
    await writes[3];
    await etcd.freeze();
    const resume = setTimeout(() => etcd.thaw(), 1_000);
    try {
      const outcomes = await Promise.all(writes);
      for (const o of outcomes) {
        if (o.error !== undefined) {
          // Only an honest "outcome unknown" is allowed, never a wrong answer.
          expect(isQuiverError(o.error, 'IoFailed') && o.error.retriable, String(o.error)).toBe(true);
        } else {
          // Each key is fresh: a retry that missed its own earlier commit would report succeeded=false here.
          expect(o.result?.succeeded, o.key).toBe(true);
        }
      }
      const present = await kv.scan('w/');
      for (const o of outcomes) if (o.result !== undefined) expect(present.map((e) => e.key)).toContain(o.key);
      expect(await kv.revision()).toBe(present.length);
      const revisions = outcomes.flatMap((o) => (o.result === undefined ? [] : [o.result.revision]));
      expect(new Set(revisions).size).toBe(revisions.length);
      expect(present.every((e) => e.version === 1)).toBe(true);
    } finally {
      clearTimeout(resume);
      etcd.thaw();
    }
  });

  it('an unreachable etcd fails reads with a retriable ServiceNotReady and writes with a retriable IoFailed, naming the hosts', async () => {
    const port = await freePort();
    const kv = new EtcdMetaKV({ hosts: [`127.0.0.1:${port}`], root: 'x', retryWindowMs: 300, requestTimeoutMs: 200, dialTimeoutMs: 200 });
    opened.push(kv);
    const calls: [string, () => Promise<unknown>][] = [
      ['ServiceNotReady', () => kv.get('k')],
      ['IoFailed', () => kv.put('k', 'v')],
      ['ServiceNotReady', () => kv.scan('')],
      ['ServiceNotReady', () => kv.revision()],
    ];
    for (const [kind, call] of calls) {
      const err = await call().catch((e: unknown) => e);
      expect(isQuiverError(err, kind as 'IoFailed'), String(err)).toBe(true);
      expect((err as { retriable: boolean }).retriable).toBe(true);
      expect(String(err)).toContain(`127.0.0.1:${port}`);
    }
  });

  it('a read of a frozen etcd retries until the retry window ends (no attempt outlives it), then fails retriable naming etcd', async () => {
    const etcd = await EtcdServer.start();
    const kv = new EtcdMetaKV({ hosts: [etcd.endpoint], root: 'frozen-read', retryWindowMs: 1_500, requestTimeoutMs: 60_000 });
    opened.push(kv);
    try {
      await kv.put('k', 'v');
      await etcd.freeze();
      // A 60 s request deadline would hang the read; the window ends it.
      const err = await kv.get('k').catch((e: unknown) => e);
      expect(isQuiverError(err, 'ServiceNotReady'), String(err)).toBe(true);
      expect((err as { retriable: boolean }).retriable).toBe(true);
      expect(String(err)).toContain(`meta kv etcd (${etcd.endpoint}) unreachable`);
      etcd.thaw();
      expect(new TextDecoder().decode((await kv.get('k'))?.value)).toBe('v');
    } finally {
      etcd.thaw();
      await etcd.stop();
    }
  });
});

/**
 * Deterministic commit faults: the client's calls go through a mock that forwards to a real etcd and
 * loses the answer of chosen commits (a txn with a compare is a commit; snapshot reads have none).
 */
describe.skipIf(unavailable !== undefined)('EtcdMetaKV commit faults (scripted)', () => {
  let server: EtcdServer | undefined;
  let rootCounter = 0;
  const toClose: { close(): unknown }[] = [];
  beforeAll(async () => {
    server = await EtcdServer.start();
  });
  afterAll(async () => {
    for (const c of toClose) await c.close();
    await server?.stop();
  });

  type Fault = (commit: () => Promise<unknown>, n: number) => Promise<unknown>;
  /** A store whose n-th commit (1-based) runs through `fault`; other calls go straight to etcd. */
  function faultyStore(fault: Fault): { kv: EtcdMetaKV; root: string } {
    if (server === undefined) throw new Error('etcd not started');
    const hosts = [server.endpoint];
    const real = connectEtcd({ hosts });
    const client = connectEtcd({ hosts });
    toClose.push(real, client);
    let commits = 0;
    const exec = async (service: string, method: string, params: unknown): Promise<unknown> => {
      if (service !== 'KV' || (method !== 'range' && method !== 'txn')) throw new Error(`unexpected ${service}.${method}`);
      const call = () => (method === 'range' ? real.kv.range(params as IRangeRequest) : real.kv.txn(params as ITxnRequest));
      const isCommit = method === 'txn' && ((params as ITxnRequest).compare?.length ?? 0) > 0;
      return isCommit ? fault(call, ++commits) : call();
    };
    client.mock({ exec: exec as Parameters<typeof client.mock>[0]['exec'] });
    const root = `faults/${++rootCounter}`;
    const kv = new EtcdMetaKV({ hosts, root, client, retryWindowMs: 5_000 });
    toClose.push(kv);
    return { kv, root };
  }
  const lost = (): Error => new GRPCUnavailableError('injected: connection lost');
  const createIfAbsent = (kv: EtcdMetaKV) => kv.txn([{ key: 'job', target: 'version', op: '==', value: 0 }], [{ type: 'put', key: 'job', value: 'mine' }]);

  it('fast path: a write after its own write is one RPC, and another writer in between is never missed', async () => {
    let rpcs = 0;
    // `a` and `b` are plain stores on the same root; `c` counts its RPCs.
    const { kv: a, root } = faultyStore(async (commit) => commit());
    const b = new EtcdMetaKV({ hosts: [server!.endpoint], root });
    toClose.push(b);
    const client = connectEtcd({ hosts: [server!.endpoint] });
    const real = connectEtcd({ hosts: [server!.endpoint] });
    toClose.push(client, real);
    client.mock({
      exec: (async (_service: string, method: string, params: unknown) => {
        rpcs++;
        return method === 'range' ? real.kv.range(params as IRangeRequest) : real.kv.txn(params as ITxnRequest);
      }) as Parameters<typeof client.mock>[0]['exec'],
    });
    const c = new EtcdMetaKV({ hosts: [server!.endpoint], root, client });
    toClose.push(c);

    await c.put('k', '1'); // nothing known yet: read + commit
    rpcs = 0;
    await c.put('k', '2');
    await c.txn([{ key: 'k', target: 'version', op: '==', value: 2 }], [{ type: 'put', key: 'k', value: '3' }]);
    await c.put('fresh', 'x'); // never seen: guessed absent, guarded by a compare
    expect(rpcs).toBe(3);
    expect(await c.get('k')).toMatchObject({ version: 3, modRevision: 3 });

    // Another writer moves the counter: c's memory is stale and must not decide anything.
    await b.delete('k');
    expect(await c.txn([{ key: 'k', target: 'version', op: '==', value: 0 }], [{ type: 'put', key: 'k', value: 'again' }])).toMatchObject({
      succeeded: true,
    });
    expect(await b.get('k')).toMatchObject({ version: 1, createRevision: 6, modRevision: 6 });
    await b.put('fresh', 'y');
    // c still believes 'fresh' is x at version 1: a compare that fails only on the stale view.
    expect(await c.txn([{ key: 'fresh', target: 'version', op: '==', value: 2 }], [{ type: 'put', key: 'fresh', value: 'z' }])).toMatchObject({
      succeeded: true,
    });
    expect(decodeString((await b.get('fresh'))!.value)).toBe('z');
    // A guessed-absent key that exists (written by b) is not overwritten as if new.
    await b.put('other', 'b');
    expect(await c.txn([{ key: 'other', target: 'version', op: '==', value: 0 }], [{ type: 'put', key: 'other', value: 'c' }])).toMatchObject({
      succeeded: false,
    });
    expect(decodeString((await a.get('other'))!.value)).toBe('b');
  });

  it('a commit that applied but whose answer was lost is recognised, not applied twice', async () => {
    const { kv } = faultyStore(async (commit, n) => {
      const res = await commit();
      if (n === 1) throw lost();
      return res;
    });
    expect(await createIfAbsent(kv)).toEqual({ succeeded: true, revision: 1 });
    expect(await kv.get('job')).toMatchObject({ version: 1, modRevision: 1 });
    expect(await kv.revision()).toBe(1);
  });

  it('a commit lost before it reached etcd is retried', async () => {
    const { kv } = faultyStore(async (commit, n) => {
      if (n === 1) throw lost();
      return commit();
    });
    expect(await createIfAbsent(kv)).toEqual({ succeeded: true, revision: 1 });
    expect(await kv.get('job')).toMatchObject({ version: 1 });
  });

  it('a lost commit that applies late, after the retry was planned, is still recognised', async () => {
    let late: (() => Promise<unknown>) | undefined;
    const { kv } = faultyStore(async (commit, n) => {
      if (n === 1) {
        late = commit; // held in the network...
        throw lost();
      }
      await late?.(); // ...and delivered just before the retry's commit, which then loses the race
      return commit();
    });
    expect(await createIfAbsent(kv)).toEqual({ succeeded: true, revision: 1 });
    expect(await kv.get('job')).toMatchObject({ version: 1 });
    expect(await kv.revision()).toBe(1);
  });

  it('when another writer commits after a lost commit, the outcome is reported unknown, never guessed', async () => {
    if (server === undefined) throw new Error('etcd not started');
    const endpoint = server.endpoint;
    let other: EtcdMetaKV | undefined;
    const { kv, root } = faultyStore(async (commit, n) => {
      const res = await commit();
      if (n === 1) {
        other = new EtcdMetaKV({ hosts: [endpoint], root });
        toClose.push(other);
        await other.put('other', 'x');
        throw lost();
      }
      return res;
    });
    const err = await createIfAbsent(kv).catch((e: unknown) => e);
    expect(isQuiverError(err, 'IoFailed'), String(err)).toBe(true);
    expect((err as { retriable: boolean }).retriable).toBe(true);
    expect(String(err)).toContain('outcome unknown');
    // It did apply: the caller's re-read sees it.
    expect(await kv.get('job')).toMatchObject({ version: 1, modRevision: 1 });
  });
});
