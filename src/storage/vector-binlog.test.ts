import { tableFromIPC, tableToIPC, Type } from 'apache-arrow';
import { describe, expect, it } from 'vitest';
import type { Column } from '../schema/types.js';
import { decodeColumn, encodeColumn } from './binlog.js';

const sparse: Column = {
  kind: 'sparse',
  data: [
    { indices: Uint32Array.from([1, 7, 4_000_000_000]), values: Float32Array.from([0.5, -2, 3]) },
    { indices: new Uint32Array(0), values: new Float32Array(0) },
    { indices: Uint32Array.from([2]), values: Float32Array.from([1]) },
  ],
  valid: Uint8Array.from([1, 0, 1]),
};
const binary: Column = { kind: 'bytevec', vtype: 'BinaryVector', dim: 16, data: Uint8Array.from([1, 2, 3, 4, 255, 0]) };
const f16: Column = { kind: 'bytevec', vtype: 'Float16Vector', dim: 2, data: Uint8Array.from([0, 60, 0, 64, 0, 0, 0, 0]), valid: Uint8Array.from([1, 0]) };

describe('vector binlogs (bytevec, sparse)', () => {
  it('round-trips binary, 16-bit float and sparse columns with their validity', () => {
    for (const col of [sparse, binary, f16]) {
      const back = decodeColumn(encodeColumn(col, { fieldId: 101 }), col.kind);
      expect(back).toEqual({ ...col, valid: col.valid });
    }
  });

  it('writes natural Arrow types: FixedSizeBinary for byte vectors, List<Struct<index, value>> for sparse', () => {
    const b = tableFromIPC(encodeColumn(binary)).schema.fields[0]!;
    expect(b.type.typeId).toBe(Type.FixedSizeBinary);
    expect((b.type as unknown as { byteWidth: number }).byteWidth).toBe(2);
    expect(b.metadata.get('quiver.vtype')).toBe('BinaryVector');
    const s = tableFromIPC(encodeColumn(sparse)).schema.fields[0]!;
    expect(s.type.typeId).toBe(Type.List);
    expect(String(s.type)).toBe('List<Struct<{index:Uint32, value:Float32}>>');
  });

  it('refuses an unknown vector format version and a flipped byte', () => {
    const table = tableFromIPC(encodeColumn(binary));
    table.schema.fields[0]!.metadata.set('quiver.vectorFormat', '2');
    const bumped = tableToIPC(table, 'file');
    expect(() => decodeColumn(bumped, 'bytevec')).toThrow(/vector format 2, expected 1/);
    const flipped = Uint8Array.from(encodeColumn(sparse));
    const valuesAt = Buffer.from(flipped).indexOf(Buffer.from(Float32Array.from([-2]).buffer));
    flipped[valuesAt] = flipped[valuesAt]! ^ 1;
    expect(() => decodeColumn(flipped, 'sparse')).toThrow(/checksum mismatch/);
  });
});
