/**
 * `Wal` over local files: `dir/<first position, 20 digits>.wal` segments, framed records (see
 * record-format.ts), one writer.
 *
 * Write path. `append()` frames and checksums its payloads synchronously (so checksumming overlaps the
 * fsync in flight), assigns positions in call order and queues itself. A single pump takes *everything*
 * queued, writes it with one writev (rotating segments at record boundaries), fdatasyncs once and resolves
 * the whole group: appends that arrive while an fsync is in flight wait for the next group. That is group
 * commit, and why `always` scales with concurrency. Positions are handed out before the write because a
 * position is a byte offset, independent of where segment boundaries fall.
 *
 * A failed write or fsync (ENOSPC, EIO, ...) fails its group and everything queued behind it with
 * `IoFailed`; nothing of theirs was acknowledged. Before rejecting them the log is repaired: cut back to
 * the acknowledged end (`#repair`: truncate the active segment, delete segments a failed rotation started,
 * fsync), so that no complete record of a failed append survives to be replayed after a crash. Positions
 * are handed out from that end again. Failed data is never retried: after a failed fsync the kernel may
 * have dropped the dirty pages, so fsyncing them again could acknowledge bytes that are gone; truncating
 * and rewriting never relies on them. If the repair fails too, the next append retries it before writing
 * (and fails if it cannot). So the log recovers without a restart once the cause goes away.
 *
 * Open-time recovery. Non-last segments must be contiguous (size of one = start of the next minus its
 * start); their records are verified when read. The last segment is scanned in full: anything after the
 * last good record (a torn or corrupt tail left by a crash, never acknowledged under `always`/`batch`)
 * is cut off with a warning, and appends continue from there.
 *
 * One writer: nothing stops a second process from opening the same directory; the caller owns that lock.
 */
import { mkdir, open, readdir, stat, unlink, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { systemClock, type Clock } from '../common/clock.js';
import { assert, isQuiverError, quiverError, QuiverError } from '../common/errors.js';
import { coalesce, encodeFrame, FORMAT_PAYLOAD_BYTES_MAX, HEADER_BYTES, scanRecords, writeFully, type Frame } from './record-format.js';
import type { FsyncPolicy, Wal, WalPosition, WalRecord } from './wal.js';

export interface LocalWalOptions {
  /** Default `always`. */
  readonly fsync?: FsyncPolicy;
  /** A segment is rotated before a record would take it past this size. Default 64 MiB. */
  readonly segmentBytesMax?: number;
  /** `batch` only: minimum spacing of fsyncs. Default 10 ms. */
  readonly batchWindowMs?: number;
  /** Larger payloads are refused with `ParameterTooLarge`. Default 256 MiB (format limit 1 GiB). */
  readonly payloadBytesMax?: number;
  /** Told about recovered damage (a torn tail cut off at open). Default: `process.emitWarning`. */
  readonly onWarn?: (msg: string) => void;
  /** Used for the `batch` window. */
  readonly clock?: Clock;
}

/** Counters since open; `groupCommits < appendCalls` shows that group commit is batching. */
export interface LocalWalStats {
  readonly appendCalls: number;
  readonly records: number;
  readonly payloadBytes: number;
  readonly groupCommits: number;
  readonly fsyncs: number;
}

const SEGMENT_BYTES_MAX_DEFAULT = 64 * 1024 * 1024;
const PAYLOAD_BYTES_MAX_DEFAULT = 256 * 1024 * 1024;
const BATCH_WINDOW_MS_DEFAULT = 10;
const POSITION_DIGITS = 20;
const SEGMENT_NAME = /^(\d{20})\.wal$/;

interface Segment {
  readonly start: WalPosition;
  readonly path: string;
}

interface PendingAppend {
  readonly frames: readonly Frame[];
  readonly positions: readonly WalPosition[];
  readonly resolve: (positions: WalPosition[]) => void;
  readonly reject: (e: unknown) => void;
}

export function segmentFileName(start: WalPosition): string {
  return `${String(start).padStart(POSITION_DIGITS, '0')}.wal`;
}

export async function openLocalWal(dir: string, opts: LocalWalOptions = {}): Promise<LocalWal> {
  const fsync = opts.fsync ?? 'always';
  if (fsync !== 'always' && fsync !== 'batch' && fsync !== 'none') {
    throw quiverError('ParameterInvalid', `fsync policy ${JSON.stringify(fsync)} is not always, batch or none`);
  }
  const segmentBytesMax = opts.segmentBytesMax ?? SEGMENT_BYTES_MAX_DEFAULT;
  if (!Number.isSafeInteger(segmentBytesMax) || segmentBytesMax < 1) {
    throw quiverError('ParameterInvalid', `segmentBytesMax ${segmentBytesMax} is not a positive integer`);
  }
  const batchWindowMs = opts.batchWindowMs ?? BATCH_WINDOW_MS_DEFAULT;
  if (!Number.isFinite(batchWindowMs) || batchWindowMs < 0) {
    throw quiverError('ParameterInvalid', `batchWindowMs ${batchWindowMs} is not a non-negative number`);
  }
  const payloadBytesMax = opts.payloadBytesMax ?? PAYLOAD_BYTES_MAX_DEFAULT;
  if (!Number.isSafeInteger(payloadBytesMax) || payloadBytesMax < 0 || payloadBytesMax > FORMAT_PAYLOAD_BYTES_MAX) {
    throw quiverError('ParameterInvalid', `payloadBytesMax ${payloadBytesMax} is not an integer in [0, ${FORMAT_PAYLOAD_BYTES_MAX}]`);
  }
  const onWarn = opts.onWarn ?? ((msg: string) => process.emitWarning(msg, 'QuiverWalWarning'));
  const config: LocalWalConfig = { dir, fsync, segmentBytesMax, batchWindowMs, payloadBytesMax, clock: opts.clock };

  try {
    await mkdir(dir, { recursive: true });
    const segments = await listSegments(dir);
    if (segments.length === 0) {
      const first: Segment = { start: 0, path: join(dir, segmentFileName(0)) };
      const handle = await open(first.path, 'wx');
      if (fsync !== 'none') await syncDirectory(dir);
      return new LocalWal(config, [first], handle, 0);
    }
    await checkContiguous(segments);
    const last = segments[segments.length - 1]!;
    const handle = await open(last.path, 'r+');
    try {
      const goodBytes = await recoverTail(handle, last, onWarn);
      return new LocalWal(config, segments, handle, last.start + goodBytes);
    } catch (e) {
      await handle.close();
      throw e;
    }
  } catch (e) {
    throw asIoError(e, `cannot open write-ahead log in ${dir}`);
  }
}

interface LocalWalConfig {
  readonly dir: string;
  readonly fsync: FsyncPolicy;
  readonly segmentBytesMax: number;
  readonly batchWindowMs: number;
  readonly payloadBytesMax: number;
  readonly clock: Clock | undefined;
}

export class LocalWal implements Wal {
  readonly #dir: string;
  readonly #fsync: FsyncPolicy;
  readonly #segmentBytesMax: number;
  readonly #batchWindowMs: number;
  readonly #payloadBytesMax: number;
  readonly #clock: Clock;

  /** Sorted by start; never empty; the last one is the active segment that `#handle` writes. */
  #segments: Segment[];
  #handle: FileHandle | null;
  /** Next position to hand out (includes queued, unwritten appends). */
  #nextPosition: WalPosition;
  /** End of the bytes written to the active segment. */
  #writtenEnd: WalPosition;
  /** End of the acknowledged records: what readers may see. */
  #ackedEnd: WalPosition;

  #queue: PendingAppend[] = [];
  #pumping: Promise<void> | null = null;
  #failure: QuiverError | null = null;
  #closed = false;
  #closing: Promise<void> | null = null;
  #lastSyncStartMs = Number.NEGATIVE_INFINITY;
  /** Ends the `batch` window wait early (set only while the pump waits). */
  #wakeBatch: (() => void) | null = null;
  #stats = { appendCalls: 0, records: 0, payloadBytes: 0, groupCommits: 0, fsyncs: 0 };

  /** Use `openLocalWal`, which recovers the directory first. */
  constructor(config: LocalWalConfig, segments: readonly Segment[], handle: FileHandle, end: WalPosition) {
    assert(segments.length > 0, 'a WAL has at least one segment');
    this.#dir = config.dir;
    this.#fsync = config.fsync;
    this.#segmentBytesMax = config.segmentBytesMax;
    this.#batchWindowMs = config.batchWindowMs;
    this.#payloadBytesMax = config.payloadBytesMax;
    this.#clock = config.clock ?? systemClock;
    this.#segments = [...segments];
    this.#handle = handle;
    this.#nextPosition = end;
    this.#writtenEnd = end;
    this.#ackedEnd = end;
  }

  get directory(): string {
    return this.#dir;
  }

  stats(): LocalWalStats {
    return { ...this.#stats };
  }

  endPosition(): WalPosition {
    return this.#nextPosition;
  }

  startPosition(): WalPosition {
    return this.#segments[0]?.start ?? this.#nextPosition;
  }

  /** The failure the next append will repair first (null while the log is healthy). */
  get failure(): QuiverError | null {
    return this.#failure;
  }

  append(payloads: readonly Uint8Array[]): Promise<WalPosition[]> {
    if (this.#closed) return Promise.reject(this.#closedError());
    let payloadBytes = 0;
    for (let i = 0; i < payloads.length; i++) {
      const p = payloads[i];
      if (!(p instanceof Uint8Array)) {
        return Promise.reject(quiverError('ParameterInvalid', `payload ${i} is ${typeof p}, not a Uint8Array`));
      }
      if (p.length > this.#payloadBytesMax) {
        return Promise.reject(quiverError('ParameterTooLarge', `payload ${i} has ${p.length} bytes, over the ${this.#payloadBytesMax}-byte limit`));
      }
      payloadBytes += p.length;
    }
    if (payloads.length === 0) return Promise.resolve([]);

    const frames: Frame[] = [];
    const positions: WalPosition[] = [];
    let position = this.#nextPosition;
    for (const p of payloads) {
      const frame = encodeFrame(p);
      frames.push(frame);
      positions.push(position);
      position += frame.bytes;
    }
    assert(Number.isSafeInteger(position), `WAL position ${position} overflows`);
    this.#nextPosition = position;
    this.#stats.appendCalls++;
    this.#stats.records += payloads.length;
    this.#stats.payloadBytes += payloadBytes;
    return new Promise<WalPosition[]>((resolve, reject) => {
      this.#queue.push({ frames, positions, resolve, reject });
      this.#kick();
    });
  }

  async *read(from: WalPosition): AsyncGenerator<WalRecord> {
    if (!Number.isSafeInteger(from) || from < 0) {
      throw quiverError('ParameterInvalid', `read position ${from} is not a non-negative integer`);
    }
    if (this.#closed) throw this.#closedError();
    let pos = from;
    // Whether `pos` is known to be a record boundary; until then the containing segment is scanned from
    // its start, stepping over records by their length fields.
    let aligned = false;
    for (;;) {
      const limit = this.#ackedEnd;
      if (pos >= limit) return;
      const index = this.#segmentIndexOf(pos);
      if (index < 0) {
        const oldest = this.#segments[0]!.start;
        throw quiverError('IoKeyNotFound', `WAL position ${pos} in ${this.#dir} was truncated; the oldest retained position is ${oldest}`);
      }
      const seg = this.#segments[index]!;
      const segEnd = Math.min(this.#segments[index + 1]?.start ?? Number.POSITIVE_INFINITY, limit);
      if (pos === seg.start) aligned = true;
      let handle: FileHandle;
      try {
        handle = await open(seg.path, 'r');
      } catch (e) {
        if (errnoCode(e) === 'ENOENT') {
          throw quiverError('IoKeyNotFound', `WAL segment ${seg.path} was truncated while reading position ${pos}`, e);
        }
        throw asIoError(e, `cannot open WAL segment ${seg.path}`);
      }
      try {
        const items = scanRecords(handle, {
          beginOffset: aligned ? pos - seg.start : 0,
          endOffset: segEnd - seg.start,
          yieldFromOffset: pos - seg.start,
        });
        for await (const item of items) {
          if (item.kind === 'corrupt') {
            throw quiverError(
              'IoFailed',
              `corrupt WAL record in ${seg.path} at offset ${item.offset} (position ${seg.start + item.offset}): ${item.reason}`,
            );
          }
          yield { position: seg.start + item.offset, payload: item.payload };
        }
      } catch (e) {
        throw asIoError(e, `cannot read WAL segment ${seg.path}`);
      } finally {
        await handle.close();
      }
      pos = segEnd;
      aligned = true;
    }
  }

  async truncateBefore(position: WalPosition): Promise<void> {
    if (!Number.isSafeInteger(position) || position < 0 || position > this.#nextPosition) {
      throw quiverError('ParameterInvalid', `truncate position ${position} is not an integer in [0, ${this.#nextPosition}] (the WAL end)`);
    }
    // Only acknowledged data can have been checkpointed; never drop a segment still being written.
    const limit = Math.min(position, this.#ackedEnd);
    let drop = 0;
    while (drop + 1 < this.#segments.length && this.#segments[drop + 1]!.start <= limit) drop++;
    if (drop === 0) return;
    // Forget the segments first so that no new reader opens them; a reader that already has one open
    // keeps reading it (POSIX unlink semantics).
    const dropped = this.#segments.slice(0, drop);
    this.#segments = this.#segments.slice(drop);
    for (const seg of dropped) {
      try {
        await unlink(seg.path);
      } catch (e) {
        // A leftover file is harmless: it is contiguous with the rest and simply reappears at next open.
        if (errnoCode(e) !== 'ENOENT') throw asIoError(e, `cannot delete WAL segment ${seg.path}`);
      }
    }
  }

  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    this.#closed = true;
    this.#wakeBatch?.(); // sync what is pending now rather than at the end of the window
    while (this.#pumping !== null) await this.#pumping;
    const handle = this.#handle;
    this.#handle = null;
    if (handle === null) return;
    try {
      // Under `none` a clean shutdown still leaves everything on disk.
      if (this.#failure === null && this.#fsync === 'none') await handle.datasync();
    } finally {
      await handle.close();
    }
  }

  #closedError(): QuiverError {
    return quiverError('ServiceNotReady', `write-ahead log in ${this.#dir} is closed`);
  }

  /** Index of the segment holding `pos`, or -1 if `pos` precedes the oldest retained segment. */
  #segmentIndexOf(pos: WalPosition): number {
    const segs = this.#segments;
    let lo = 0;
    let hi = segs.length - 1;
    if (pos < segs[0]!.start) return -1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >>> 1;
      if (segs[mid]!.start <= pos) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }

  #kick(): void {
    if (this.#pumping !== null) return;
    this.#pumping = this.#pump().then(() => {
      this.#pumping = null;
      // An append may have queued after the pump saw an empty queue but before this continuation ran.
      if (this.#queue.length > 0) this.#kick();
    });
  }

  /** Never rejects: failures are delivered to the appends concerned. */
  async #pump(): Promise<void> {
    // Let a synchronous burst of append() calls (e.g. Promise.all over a map) join the first group.
    await Promise.resolve();
    while (this.#queue.length > 0) {
      if (this.#failure !== null) {
        try {
          await this.#repair();
        } catch (e) {
          const failure = asIoError(
            e,
            `write-ahead log in ${this.#dir} failed (${this.#failure.message}) and cannot be repaired yet; the next append retries`,
          );
          this.#failure = failure;
          this.#rejectAll(failure, []);
          continue;
        }
      }
      const group = this.#queue.splice(0);
      try {
        await this.#commit(group);
      } catch (e) {
        const failure = asIoError(e, `write-ahead log in ${this.#dir} failed; the next append retries`);
        this.#failure = failure;
        // Cut the failed bytes off before anyone hears of the failure: a crash after a caller was told
        // its append failed must not replay it. If this repair fails too, the next append retries it.
        await this.#repair().catch(() => undefined);
        this.#rejectAll(failure, group);
        continue;
      }
      for (const a of group) a.resolve([...a.positions]);
    }
  }

  /**
   * Rejects the failed group and everything queued behind it (their positions follow the failed bytes),
   * then hands out positions from the acknowledged end again, where the log resumes.
   */
  #rejectAll(failure: QuiverError, group: readonly PendingAppend[]): void {
    for (const a of group) a.reject(failure);
    for (const a of this.#queue.splice(0)) a.reject(failure);
    this.#nextPosition = this.#ackedEnd;
  }

  /**
   * Cuts the log back to the acknowledged end: segments a failed rotation started (listed or only on
   * disk) are deleted, the segment holding the end is truncated to it and fsynced. Idempotent.
   */
  async #repair(): Promise<void> {
    const end = this.#ackedEnd;
    const old = this.#handle;
    this.#handle = null;
    await old?.close().catch(() => undefined); // its unsynced pages are about to be cut off anyway
    const keep = this.#segmentIndexOf(end);
    assert(keep >= 0, `acknowledged end ${end} precedes the oldest segment`);
    const kept = this.#segments.slice(0, keep + 1);
    const last = kept[kept.length - 1]!;
    let removed = false;
    for (const name of await readdir(this.#dir)) {
      const m = SEGMENT_NAME.exec(name);
      if (m === null || Number(m[1]) <= last.start) continue;
      await unlink(join(this.#dir, name));
      removed = true;
    }
    if (removed && this.#fsync !== 'none') await syncDirectory(this.#dir);
    const handle = await open(last.path, 'r+');
    try {
      await handle.truncate(end - last.start);
      if (this.#fsync !== 'none') await handle.datasync();
    } catch (e) {
      await handle.close().catch(() => undefined);
      throw e;
    }
    this.#segments = kept;
    this.#handle = handle;
    this.#writtenEnd = end;
    this.#failure = null;
  }

  async #awaitBatchWindow(): Promise<void> {
    if (this.#closed) return; // do not hold up shutdown
    const waitMs = this.#lastSyncStartMs + this.#batchWindowMs - this.#clock.nowMs();
    if (waitMs <= 0) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => this.#wakeBatch?.(), waitMs);
      this.#wakeBatch = () => {
        clearTimeout(timer);
        this.#wakeBatch = null;
        resolve();
      };
    });
  }

  /**
   * Writes one group, makes it durable per policy, and publishes it to readers. Under `batch` the group
   * is written at once but the fsync waits for the window, and appends that queue meanwhile are written
   * and covered by the same fsync (they are added to `group`, so a failure rejects them too).
   */
  async #commit(group: PendingAppend[]): Promise<void> {
    let end = await this.#writeGroup(group);
    if (this.#fsync === 'batch') {
      await this.#awaitBatchWindow();
      const late = this.#queue.splice(0);
      if (late.length > 0) {
        group.push(...late);
        end = await this.#writeGroup(late);
      }
    }
    await this.#sync();
    this.#stats.groupCommits++;
    this.#ackedEnd = end;
  }

  /** Writes appends in order, rotating segments at record boundaries; returns the new end of the log. */
  async #writeGroup(group: readonly PendingAppend[]): Promise<WalPosition> {
    const first = group[0];
    assert(first !== undefined, 'empty group');
    assert(first.positions[0] === this.#writtenEnd, `group starts at ${first.positions[0]}, log ends at ${this.#writtenEnd}`);
    let parts: Uint8Array[] = [];
    let partsEnd = this.#writtenEnd;
    for (const a of group) {
      for (let i = 0; i < a.frames.length; i++) {
        const frame = a.frames[i]!;
        const position = a.positions[i]!;
        assert(position === partsEnd, `record position ${position} is not contiguous with ${partsEnd}`);
        const used = position - this.#activeSegment().start;
        if (used > 0 && used + frame.bytes > this.#segmentBytesMax) {
          await this.#write(parts, partsEnd);
          parts = [];
          await this.#rotate(position);
        }
        parts.push(...frame.parts);
        partsEnd += frame.bytes;
      }
    }
    await this.#write(parts, partsEnd);
    return partsEnd;
  }

  async #write(parts: readonly Uint8Array[], end: WalPosition): Promise<void> {
    if (parts.length === 0) return;
    const handle = this.#handle;
    assert(handle !== null, 'WAL handle is open while appending');
    await writeFully(handle, coalesce(parts), this.#writtenEnd - this.#activeSegment().start);
    this.#writtenEnd = end;
  }

  async #sync(): Promise<void> {
    if (this.#fsync === 'none') return;
    const handle = this.#handle;
    assert(handle !== null, 'WAL handle is open while syncing');
    this.#lastSyncStartMs = this.#clock.nowMs();
    await handle.datasync();
    this.#stats.fsyncs++;
  }

  /** Seals the active segment (durably, if the policy asks) and starts a new one at `start`. */
  async #rotate(start: WalPosition): Promise<void> {
    assert(start === this.#writtenEnd, `rotation at ${start} but log ends at ${this.#writtenEnd}`);
    await this.#sync();
    const old = this.#handle;
    this.#handle = null;
    await old?.close();
    const seg: Segment = { start, path: join(this.#dir, segmentFileName(start)) };
    this.#handle = await open(seg.path, 'wx');
    // The new file's directory entry must be durable before records in it are acknowledged.
    if (this.#fsync !== 'none') await syncDirectory(this.#dir);
    this.#segments.push(seg);
  }

  #activeSegment(): Segment {
    return this.#segments[this.#segments.length - 1]!;
  }
}

async function listSegments(dir: string): Promise<Segment[]> {
  const segments: Segment[] = [];
  for (const name of await readdir(dir)) {
    const m = SEGMENT_NAME.exec(name);
    if (m === null) continue;
    const start = Number(m[1]);
    if (!Number.isSafeInteger(start)) {
      throw quiverError('IoFailed', `WAL segment name ${join(dir, name)} is not a valid position`);
    }
    segments.push({ start, path: join(dir, name) });
  }
  return segments.sort((a, b) => a.start - b.start);
}

/** Each non-last segment must end exactly where the next one starts, or records are missing. */
async function checkContiguous(segments: readonly Segment[]): Promise<void> {
  for (let i = 0; i + 1 < segments.length; i++) {
    const seg = segments[i]!;
    const next = segments[i + 1]!;
    const size = (await stat(seg.path)).size;
    if (seg.start + size !== next.start) {
      throw quiverError(
        'IoFailed',
        `WAL segment ${seg.path} holds ${size} bytes, but the next segment ${next.path} starts at position ` +
          `${next.start}, ${next.start - seg.start} bytes after it: records are missing or the file was damaged`,
      );
    }
  }
}

/** Scans the last segment; cuts off a torn/corrupt tail. Returns the size of the good prefix. */
async function recoverTail(handle: FileHandle, seg: Segment, onWarn: (msg: string) => void): Promise<number> {
  const size = (await handle.stat()).size;
  let good = 0;
  let damage: { offset: number; reason: string } | null = null;
  for await (const item of scanRecords(handle, { beginOffset: 0, endOffset: size, yieldFromOffset: 0 })) {
    if (item.kind === 'corrupt') damage = item;
    else good = item.offset + HEADER_BYTES + item.payload.length;
  }
  if (damage !== null) {
    onWarn(
      `WAL segment ${seg.path}: torn or corrupt tail at offset ${damage.offset} (position ${seg.start + damage.offset}): ` +
        `${damage.reason}; truncating ${size - good} bytes, the log resumes at position ${seg.start + good}`,
    );
    await handle.truncate(good);
    await handle.datasync();
  }
  return good;
}

async function syncDirectory(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

function errnoCode(e: unknown): string | undefined {
  return e instanceof Error && 'code' in e && typeof e.code === 'string' ? e.code : undefined;
}

/** QuiverErrors pass through; anything else (an fs error) becomes IoFailed with the context and cause. */
function asIoError(e: unknown, context: string): QuiverError {
  if (isQuiverError(e)) return e;
  const detail = e instanceof Error ? e.message : String(e);
  return quiverError('IoFailed', `${context}: ${detail}`, e);
}
