import { tableFromIPC, Type } from 'apache-arrow';
import { describe, expect, it } from 'vitest';
import { isQuiverError } from '../common/errors.js';
import { concatColumns, takeRows } from '../schema/columns.js';
import type { Column, StructLayoutField, StructRow } from '../schema/types.js';
import { decodeColumn, encodeColumn } from './binlog.js';

const layout: readonly StructLayoutField[] = [
  { name: 'text', dataType: 'VarChar' },
  { name: 'n', dataType: 'Int8' },
  { name: 'big', dataType: 'Int64' },
  { name: 'f', dataType: 'Float' },
  { name: 'd', dataType: 'Double' },
  { name: 'ok', dataType: 'Bool' },
  { name: 'emb', dataType: 'FloatVector', dim: 3 },
];

function rows(count: number, seed: number): StructRow[] {
  return Array.from({ length: count }, (_, i) =>
    Array.from({ length: (i + seed) % 4 }, (_, k) => ({
      text: `r${i}/${k} ü`,
      n: ((i * 7 + k) % 256) - 128,
      big: -(2n ** 63n) + BigInt(i * 1000 + k),
      f: (i + k) / 4,
      d: Math.PI * (i - k),
      ok: (i + k) % 2 === 0,
      emb: Float32Array.from([i, k, -0.5]),
    })),
  );
}

function structOf(c: Column): Column & { kind: 'struct' } {
  if (c.kind !== 'struct') throw new Error(`decoded ${c.kind}`);
  return c;
}

describe('struct binlog (List<Struct<...>>)', () => {
  it('round-trips rows, nulls and every sub-field type exactly', () => {
    const data = rows(9, 1);
    const valid = Uint8Array.from(data, (_, i) => (i % 4 === 2 ? 0 : 1));
    const nulled = data.map((r, i) => (valid[i] ? r : []));
    for (const col of [
      { kind: 'struct', layout, data } as const,
      { kind: 'struct', layout, data: nulled, valid } as const,
      { kind: 'struct', layout, data: [] } as const,
    ]) {
      const back = structOf(decodeColumn(encodeColumn(col, { fieldId: 105 }), 'struct'));
      expect(back.layout).toEqual(layout);
      expect(back.data).toEqual(col.data);
      expect(back.valid === undefined ? undefined : Array.from(back.valid)).toEqual(col.valid === undefined ? undefined : Array.from(col.valid));
    }
  });

  it('is a plain Arrow List<Struct> that any Arrow reader opens', () => {
    const bytes = encodeColumn({ kind: 'struct', layout, data: rows(5, 0) }, { fieldId: 105 });
    const table = tableFromIPC(bytes);
    const field = table.schema.fields[0]!;
    expect(field.type.typeId).toBe(Type.List);
    const item = (field.type as unknown as { children: { type: { typeId: Type; children: { name: string }[] } }[] }).children[0]!.type;
    expect(item.typeId).toBe(Type.Struct);
    expect(item.children.map((c) => c.name)).toEqual(layout.map((l) => l.name));
    const row1 = table.getChildAt(0)!.get(1) as unknown as { toArray(): { text: string }[] };
    expect(row1.toArray().map((e) => e.text)).toEqual(['r1/0 ü']);
  });

  it('detects a flipped byte in a sub-field', () => {
    const bytes = encodeColumn({ kind: 'struct', layout, data: rows(6, 2) }, { fieldId: 105 });
    const marker = Buffer.from('r3/0 ü');
    const at = Buffer.from(bytes).indexOf(marker);
    expect(at).toBeGreaterThan(0);
    const bad = bytes.slice();
    bad[at] = 'x'.charCodeAt(0);
    let caught: unknown;
    try {
      decodeColumn(bad, 'struct');
    } catch (e) {
      caught = e;
    }
    expect(isQuiverError(caught, 'SegmentLoadFailed'), String(caught)).toBe(true);
  });

  it('concatenates and gathers rows (compaction and result paths)', () => {
    const a: Column = { kind: 'struct', layout, data: rows(4, 0) };
    const b: Column = { kind: 'struct', layout, data: rows(3, 2), valid: new Uint8Array([1, 0, 1]) };
    const all = structOf(concatColumns([a, b]));
    expect(all.data).toEqual([...rows(4, 0), ...rows(3, 2)]);
    expect(Array.from(all.valid!)).toEqual([1, 1, 1, 1, 1, 0, 1]);
    const picked = structOf(takeRows(all, [6, 0, 5]));
    expect(picked.data).toEqual([rows(3, 2)[2], rows(4, 0)[0], rows(3, 2)[1]]);
    expect(Array.from(picked.valid!)).toEqual([1, 1, 0]);
  });
});
