import { describe, expect, it } from 'vitest';
import type { Column } from '../schema/types.js';
import { decodeWalEntry, encodeWalEntry, type WalEntry } from './wal-records.js';

function insertEntry(upsert: boolean): WalEntry {
  const columns = new Map<string, Column>([
    ['id', { kind: 'int64', data: BigInt64Array.from([1n, 2n, 3n]) }],
    ['v', { kind: 'vector', data: Float32Array.from([1, 2, 3, 4, 5, 6]), dim: 2 }],
  ]);
  return { type: 'insert', collectionId: 7, partitionId: 8, segmentId: 9, ts: 123456789n, numRows: 3, columns, upsert };
}

describe('WAL records', () => {
  it('an upsert is one record that carries its delete (the rows own pks), so a torn tail cannot split it', () => {
    const bytes = encodeWalEntry(insertEntry(true));
    const back = decodeWalEntry(bytes);
    expect(back.type).toBe('insert');
    if (back.type !== 'insert') return;
    expect(back.upsert).toBe(true);
    expect(back.ts).toBe(123456789n);
    expect(Array.from(back.columns.get('id')!.data as BigInt64Array)).toEqual([1n, 2n, 3n]);
  });

  it('a plain insert decodes as no upsert', () => {
    const back = decodeWalEntry(encodeWalEntry(insertEntry(false)));
    expect(back.type === 'insert' && back.upsert).toBe(false);
  });

  it('a batch over several partitions is one record holding every part', () => {
    const part = (p: number, ids: bigint[]) => ({
      partitionId: p,
      segmentId: p + 100,
      numRows: ids.length,
      columns: new Map<string, Column>([
        ['id', { kind: 'int64', data: BigInt64Array.from(ids) }],
        ['s', { kind: 'string', data: ids.map(String) }],
      ]),
    });
    const entry: WalEntry = { type: 'inserts', collectionId: 7, ts: 99n, upsert: true, parts: [part(1, [1n, 2n]), part(2, [3n]), part(3, [4n, 5n, 6n])] };
    const back = decodeWalEntry(encodeWalEntry(entry));
    expect(back.type).toBe('inserts');
    if (back.type !== 'inserts') return;
    expect([back.collectionId, back.ts, back.upsert]).toEqual([7, 99n, true]);
    expect(back.parts.map((p) => [p.partitionId, p.segmentId, p.numRows])).toEqual([
      [1, 101, 2],
      [2, 102, 1],
      [3, 103, 3],
    ]);
    expect(back.parts.map((p) => Array.from(p.columns.get('id')!.data as BigInt64Array))).toEqual([[1n, 2n], [3n], [4n, 5n, 6n]]);
    expect(back.parts.map((p) => p.columns.get('s')!.data)).toEqual([['1', '2'], ['3'], ['4', '5', '6']]);
  });
});
