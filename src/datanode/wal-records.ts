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
  | {
      readonly type: 'delete';
      readonly collectionId: number;
      readonly partitionId?: number | undefined;
      readonly ts: bigint;
      readonly pks: readonly (bigint | string)[];
    };

interface Header {
  t: 'i' | 'd';
  /** 1: an upsert (delete the rows' pks, then insert). */
  u?: 1;
  c: number;
  p?: number | undefined;
  s?: number;
  ts: string;
  n?: number;
  cols?: { name: string; kind: ColumnKind; len: number }[];
  pks?: string[];
  pkKind?: 'int64' | 'string';
}

const enc = new TextEncoder();
const dec = new TextDecoder();

export function encodeWalEntry(e: WalEntry): Uint8Array {
  const bodies: Uint8Array[] = [];
  let header: Header;
  if (e.type === 'insert') {
    const cols: NonNullable<Header['cols']> = [];
    for (const [name, col] of e.columns) {
      const body = encodeColumn(col);
      bodies.push(body);
      cols.push({ name, kind: col.kind, len: body.byteLength });
    }
    header = { t: 'i', c: e.collectionId, p: e.partitionId, s: e.segmentId, ts: e.ts.toString(), n: e.numRows, cols };
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
  const columns = new Map<string, Column>();
  let off = 4 + hLen;
  for (const c of header.cols ?? []) {
    // Copy: the WAL reader may reuse its buffer, and zero-copy typed arrays would alias it.
    columns.set(c.name, decodeColumn(bytes.slice(off, off + c.len), c.kind));
    off += c.len;
  }
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
