import type { WalPosition } from '../wal/wal.js';
import type { Segment } from '../segcore/segment.js';

/**
 * A write becomes visible to reads only once it is durable, and a failed write leaves no trace in memory.
 *
 * The write path allocates the timestamp and calls `Wal.append` synchronously (ts order = WAL order), and
 * only applies the rows or deletes to memory after the append resolved, through `run()`: per collection,
 * in the order the writes were issued, each after every earlier one was applied or failed. So memory is
 * always exactly what replaying the durable WAL would rebuild: apply order = WAL order, and an append
 * that fails (ENOSPC, EIO) is simply never applied; there is nothing to undo. An insert reserves its
 * segment when it is issued (the WAL record names it) and its rows go into that segment even if a flush
 * sealed it meanwhile, as replay does.
 *
 * A flush seals, then waits on `settled()`: every write issued before the seal has then been applied (or
 * failed), and it resolves to the WAL position of the last durable one, the flush's checkpoint. Deletes
 * applied later (issued after the seal, ts above the flush's) stay pending for the next flush:
 * `takeDeletesBefore`.
 */
export class DurableApply {
  /** Per collection: settles once every write issued so far is applied or failed, to the last durable position. */
  readonly #tails = new Map<number, Promise<WalPosition | undefined>>();

  /**
   * Runs `apply` once `appended` resolves, after every earlier write of the collection; resolves to its
   * result. If the append fails, `apply` never runs and the append's error is returned.
   */
  run<T>(collectionId: number, appended: Promise<WalPosition>, apply: () => T): Promise<T> {
    const prev = this.settled(collectionId);
    const outcome = prev.then(async (prevPos) => {
      let pos: WalPosition;
      try {
        pos = await appended;
      } catch (err) {
        return { pos: prevPos, failed: { err } };
      }
      try {
        return { pos, value: apply() };
      } catch (err) {
        // A bug, not an I/O failure: the record is durable but not in memory. Crash loudly to the caller.
        return { pos, failed: { err } };
      }
    });
    this.#tails.set(
      collectionId,
      outcome.then((o) => o.pos),
    );
    return outcome.then((o) => {
      if ('failed' in o && o.failed) throw o.failed.err;
      return (o as { value: T }).value;
    });
  }

  /** Settles once every write of the collection issued before this call is applied or failed. Never rejects. */
  settled(collectionId: number): Promise<WalPosition | undefined> {
    return this.#tails.get(collectionId) ?? Promise.resolve(undefined);
  }

  /** WAL replay applied a record of the collection at `position` (recovery, before any new write). */
  replayed(collectionId: number, position: WalPosition): void {
    this.#tails.set(collectionId, Promise.resolve(position));
  }

  /** The collection was dropped: writes still in flight find its runtime gone and apply nothing. */
  forget(collectionId: number): void {
    this.#tails.delete(collectionId);
  }

  /** Settles once every write issued so far, of any collection, is applied or failed (close). */
  async settledAll(): Promise<void> {
    await Promise.all([...this.#tails.values()]);
  }
}

/**
 * Takes the pending deletes with ts < `ts` (those a flush sealed at `ts` covers) out of every segment, by
 * segment id; later ones stay pending for the next flush.
 */
export function takeDeletesBefore(segments: Iterable<Segment>, ts: bigint): Map<number, { pks: (bigint | string)[]; ts: bigint[] }> {
  const out = new Map<number, { pks: (bigint | string)[]; ts: bigint[] }>();
  for (const seg of segments) {
    const pending = seg.pendingDeletes;
    if (pending.pks.length === 0) continue;
    const take: { pks: (bigint | string)[]; ts: bigint[] } = { pks: [], ts: [] };
    const keep: { pks: (bigint | string)[]; ts: bigint[] } = { pks: [], ts: [] };
    for (let i = 0; i < pending.pks.length; i++) {
      const into = pending.ts[i]! < ts ? take : keep;
      into.pks.push(pending.pks[i]!);
      into.ts.push(pending.ts[i]!);
    }
    if (take.pks.length === 0) continue;
    out.set(seg.id, take);
    seg.pendingDeletes = keep;
  }
  return out;
}
