import { decodeColumn, encodeColumn } from '../storage/binlog.js';
import type { Column, ColumnKind } from '../schema/types.js';

/**
 * WAL payloads. Layout: u32 header length, UTF-8 JSON header, then the column bodies (Arrow IPC files,
 * the same encoding as binlogs) back to back; the header lists each body's name, kind and byte length.
 */

export type WalEntry =
  | {
      readonly type: 'insert';
      readonly collectionId: number;
      readonly partitionId: number;
      readonly segmentId: number;
      readonly ts: bigint;
      readonly numRows: number;
      readonly columns: Map<string, Column>;
      /**
       * An upsert: the rows' primary keys are deleted at `ts` before the rows are inserted at `ts` (the
       * insert shares the ts, so it survives its own delete). One record, so a torn WAL tail can never keep
       * the delete without the insert.
       */
      readonly upsert?: boolean | undefined;
    }
  /**
   * One write's rows for several partitions (a partition-key insert routes a batch to several hidden
   * partitions): one record, so the batch is durable, torn or lost as a whole. Same ts for every part;
   * `upsert` as above, over the pks of every part.
   */
  | {
      readonly type: 'inserts';
      readonly collectionId: number;
      readonly ts: bigint;
      readonly upsert: boolean;
      readonly parts: readonly InsertPart[];
    }
  | {
      readonly type: 'delete';
      readonly collectionId: number;
      readonly partitionId?: number | undefined;
      readonly ts: bigint;
      readonly pks: readonly (bigint | string)[];
    };

export interface InsertPart {
  readonly partitionId: number;
  readonly segmentId: number;
  readonly numRows: number;
  readonly columns: Map<string, Column>;
}

type ColumnHeader = { name: string; kind: ColumnKind; len: number };

interface Header {
  t: 'i' | 'd' | 'm';
  /** 'm': the parts, each with its column bodies, back to back in part order. */
  parts?: { p: number; s: number; n: number; cols: ColumnHeader[] }[];
  /** 1: an upsert (delete the rows' pks, then insert). */
  u?: 1;
  c: number;
  p?: number | undefined;
  s?: number;
  ts: string;
  n?: number;
  cols?: ColumnHeader[];
  pks?: string[];
  pkKind?: 'int64' | 'string';
}

const enc = new TextEncoder();
const dec = new TextDecoder();

export function encodeWalEntry(e: WalEntry): Uint8Array {
  const bodies: Uint8Array[] = [];
  let header: Header;
  const encodeColumns = (columns: Map<string, Column>): ColumnHeader[] => {
    const cols: ColumnHeader[] = [];
    for (const [name, col] of columns) {
      const body = encodeColumn(col);
      bodies.push(body);
      cols.push({ name, kind: col.kind, len: body.byteLength });
    }
    return cols;
  };
  if (e.type === 'insert') {
    const cols = encodeColumns(e.columns);
    header = { t: 'i', c: e.collectionId, p: e.partitionId, s: e.segmentId, ts: e.ts.toString(), n: e.numRows, cols };
    if (e.upsert) header.u = 1;
  } else if (e.type === 'inserts') {
    const parts = e.parts.map((p) => ({ p: p.partitionId, s: p.segmentId, n: p.numRows, cols: encodeColumns(p.columns) }));
    header = { t: 'm', c: e.collectionId, ts: e.ts.toString(), parts };
    if (e.upsert) header.u = 1;
  } else {
    const isInt = e.pks.length > 0 && typeof e.pks[0] === 'bigint';
    header = { t: 'd', c: e.collectionId, p: e.partitionId, ts: e.ts.toString(), pks: e.pks.map(String), pkKind: isInt ? 'int64' : 'string' };
  }
  const h = enc.encode(JSON.stringify(header));
  const total = 4 + h.byteLength + bodies.reduce((s, b) => s + b.byteLength, 0);
  const out = new Uint8Array(total);
  new DataView(out.buffer).setUint32(0, h.byteLength, true);
  out.set(h, 4);
  let off = 4 + h.byteLength;
  for (const b of bodies) {
    out.set(b, off);
    off += b.byteLength;
  }
  return out;
}

export function decodeWalEntry(bytes: Uint8Array): WalEntry {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const hLen = dv.getUint32(0, true);
  const header = JSON.parse(dec.decode(bytes.subarray(4, 4 + hLen))) as Header;
  if (header.t === 'd') {
    const pks = header.pkKind === 'int64' ? (header.pks ?? []).map((p) => BigInt(p)) : (header.pks ?? []);
    return { type: 'delete', collectionId: header.c, partitionId: header.p, ts: BigInt(header.ts), pks };
  }
  let off = 4 + hLen;
  const decodeColumns = (cols: readonly ColumnHeader[]): Map<string, Column> => {
    const columns = new Map<string, Column>();
    for (const c of cols) {
      // Copy: the WAL reader may reuse its buffer, and zero-copy typed arrays would alias it.
      columns.set(c.name, decodeColumn(bytes.slice(off, off + c.len), c.kind));
      off += c.len;
    }
    return columns;
  };
  if (header.t === 'm') {
    const parts = (header.parts ?? []).map((p) => ({ partitionId: p.p, segmentId: p.s, numRows: p.n, columns: decodeColumns(p.cols) }));
    return { type: 'inserts', collectionId: header.c, ts: BigInt(header.ts), upsert: header.u === 1, parts };
  }
  const columns = decodeColumns(header.cols ?? []);
  return {
    type: 'insert',
    collectionId: header.c,
    partitionId: header.p ?? 0,
    segmentId: header.s ?? 0,
    ts: BigInt(header.ts),
    numRows: header.n ?? 0,
    columns,
    upsert: header.u === 1,
  };
}
