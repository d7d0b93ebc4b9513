import { tableFromIPC, Type } from 'apache-arrow';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isQuiverError, type ErrorKind } from '../common/errors.js';
import type { Column, ColumnKind } from '../schema/types.js';
import { decodeColumn, decodeDeltas, encodeColumn, encodeDeltas } from './binlog.js';
import { crc32, crc32Js } from './checksum.js';

const I64_MIN = -(2n ** 63n);
const I64_MAX = 2n ** 63n - 1n;

function roundTrip(c: Column): Column {
  return decodeColumn(encodeColumn(c, { fieldId: 101 }), c.kind);
}

/** Typed arrays compared element-wise by value (Object.is, so NaN and -0 count). */
function plain(c: Column): unknown {
  const data = ArrayBuffer.isView(c.data) ? Array.from(c.data as ArrayLike<unknown>) : c.data;
  return { ...c, data, valid: c.valid === undefined ? undefined : Array.from(c.valid) };
}

function decodeVector(bytes: Uint8Array): Column & { kind: 'vector' } {
  const c = decodeColumn(bytes, 'vector');
  if (c.kind !== 'vector') throw new Error(`decoded ${c.kind}`);
  return c;
}

function expectError(fn: () => unknown, kind: ErrorKind): void {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  expect(isQuiverError(caught, kind), `expected QuiverError ${kind}, got ${String(caught)}`).toBe(true);
}

const samples: readonly Column[] = [
  { kind: 'bool', data: new Uint8Array([1, 0, 1, 1, 0, 0, 0, 1, 1]) },
  { kind: 'bool', data: new Uint8Array([1, 0, 0]), valid: new Uint8Array([1, 0, 1]) },
  { kind: 'int32', data: new Int32Array([0, -1, 2147483647, -2147483648, 42]) },
  { kind: 'int32', data: new Int32Array([5, 0, 7]), valid: new Uint8Array([1, 0, 1]) },
  { kind: 'int64', data: new BigInt64Array([I64_MIN, I64_MAX, 0n, -1n, 9007199254740993n]) },
  { kind: 'int64', data: new BigInt64Array([1n, 0n]), valid: new Uint8Array([0, 1]) },
  { kind: 'float', data: new Float32Array([1.5, -0, NaN, Infinity, -Infinity, 3.4028234663852886e38, 1e-45]) },
  { kind: 'float', data: new Float32Array([1, 0]), valid: new Uint8Array([1, 0]) },
  { kind: 'double', data: new Float64Array([Math.PI, -0, NaN, Number.MAX_VALUE, Number.MIN_VALUE]) },
  { kind: 'double', data: new Float64Array([0, 2.5]), valid: new Uint8Array([0, 1]) },
  { kind: 'string', data: ['', 'plain', 'héllo wörld', '日本語', '😀 emoji 👍🏽', 'nul\0inside', 'a'.repeat(10_000), 'e\u0301'] },
  { kind: 'string', data: ['x', '', 'z'], valid: new Uint8Array([1, 0, 1]) },
  {
    kind: 'json',
    data: [{ a: 1, b: [true, null, 'ü'] }, null, undefined, 'str', 3.25, [], { nested: { deep: { x: '😀' } } }],
  },
  { kind: 'json', data: [{ a: 1 }, undefined, { b: 2 }], valid: new Uint8Array([1, 0, 1]) },
  { kind: 'array', elementType: 'Int64', data: [[I64_MIN, I64_MAX, 0n, -5n], [], [9007199254740993n]] },
  { kind: 'array', elementType: 'Int32', data: [[1, -2, 2147483647], []] },
  { kind: 'array', elementType: 'Int8', data: [[-128, 127]] },
  { kind: 'array', elementType: 'Double', data: [[1.5, NaN, Infinity, -Infinity, -1e300]] },
  { kind: 'array', elementType: 'Float', data: [[0.5], [-2]] },
  { kind: 'array', elementType: 'Bool', data: [[true, false], []] },
  {
    kind: 'array',
    elementType: 'VarChar',
    data: [
      ['a', '日本', '😀', ''],
      ['"quoted"', '\\'],
    ],
  },
  { kind: 'array', elementType: 'Int64', data: [[1n], [], [3n]], valid: new Uint8Array([1, 0, 1]) },
  { kind: 'vector', dim: 4, data: new Float32Array([1, 2, 3, 4, 5, 6, 7, 8, -0, NaN, 1e-40, 0.1]) },
  { kind: 'vector', dim: 2, data: new Float32Array([1, 2, 0, 0, 5, 6]), valid: new Uint8Array([1, 0, 1]) },
];

describe('binlog columns', () => {
  it.each(samples.map((c, i) => [`${i}: ${c.kind}${c.valid ? ' nullable' : ''}`, c] as const))('round-trips %s', (_, c) => {
    expect(plain(roundTrip(c))).toEqual(plain(c));
  });

  it.each([
    { kind: 'bool', data: new Uint8Array(0) },
    { kind: 'int32', data: new Int32Array(0) },
    { kind: 'int64', data: new BigInt64Array(0), valid: new Uint8Array(0) },
    { kind: 'float', data: new Float32Array(0) },
    { kind: 'double', data: new Float64Array(0) },
    { kind: 'string', data: [] },
    { kind: 'json', data: [] },
    { kind: 'array', elementType: 'VarChar', data: [] },
    { kind: 'vector', dim: 768, data: new Float32Array(0) },
  ] satisfies Column[])('round-trips an empty $kind column', (c: Column) => {
    expect(plain(roundTrip(c))).toEqual(plain(c));
  });

  // Arrow's IPC writer drops the value buffers of a column whose rows are all null (an upsert of two
  // rows with a null Bool wrote such a WAL entry, and replay refused it).
  it.each([
    { kind: 'bool', data: new Uint8Array(2), valid: new Uint8Array(2) },
    { kind: 'int32', data: new Int32Array(2), valid: new Uint8Array(2) },
    { kind: 'int64', data: new BigInt64Array(2), valid: new Uint8Array(2) },
    { kind: 'float', data: new Float32Array(2), valid: new Uint8Array(2) },
    { kind: 'double', data: new Float64Array(2), valid: new Uint8Array(2) },
    { kind: 'string', data: ['', ''], valid: new Uint8Array(2) },
    { kind: 'json', data: [undefined, undefined], valid: new Uint8Array(2) },
    { kind: 'array', elementType: 'Int32', data: [[], []], valid: new Uint8Array(2) },
  ] satisfies Column[])('round-trips an all-null $kind column', (c: Column) => {
    expect(plain(roundTrip(c))).toEqual(plain(c));
  });

  it('keeps a nullable column with no nulls nullable, and normalises flags to 0/1', () => {
    const back = roundTrip({ kind: 'bool', data: new Uint8Array([2, 0, 255]), valid: new Uint8Array([7, 1, 1]) });
    expect(plain(back)).toEqual({ kind: 'bool', data: [1, 0, 1], valid: [1, 1, 1] });
  });

  it('writes a standard Arrow IPC file with the documented types and metadata', () => {
    const bytes = encodeColumn({ kind: 'vector', dim: 3, data: new Float32Array(6) }, { fieldId: 107 });
    const table = tableFromIPC(bytes);
    const field = table.schema.fields[0];
    expect(table.numRows).toBe(2);
    expect(field?.name).toBe('field_107');
    expect(field?.type.typeId).toBe(Type.FixedSizeList);
    expect(String(field?.type)).toBe('FixedSizeList[3]<Float32>');
    expect(field?.metadata.get('quiver.fieldId')).toBe('107');
    expect(field?.metadata.get('quiver.kind')).toBe('vector');
    expect(table.schema.metadata.get('quiver.format')).toBe('1');
    const strings = tableFromIPC(encodeColumn({ kind: 'array', elementType: 'Int64', data: [[1n, -2n]] }));
    expect(strings.getChildAt(0)?.get(0)).toBe('["1","-2"]');
    expect(strings.schema.fields[0]?.metadata.get('quiver.elementType')).toBe('Int64');
    const nullable = tableFromIPC(encodeColumn({ kind: 'int32', data: new Int32Array([1, 0]), valid: new Uint8Array([1, 0]) }));
    expect(nullable.getChildAt(0)?.toArray()).toEqual(new Int32Array([1, 0]));
    expect(nullable.getChildAt(0)?.get(1)).toBeNull();
  });

  it('decodes numeric and vector columns as views of the file bytes, and copies once when unaligned', () => {
    const bytes = encodeColumn({ kind: 'vector', dim: 8, data: new Float32Array(8 * 100).map((_, i) => i) });
    const col = decodeVector(bytes);
    expect(col.data.buffer).toBe(bytes.buffer);
    const i64 = encodeColumn({ kind: 'int64', data: new BigInt64Array([1n, 2n, 3n]) });
    const i64Col = decodeColumn(i64, 'int64');
    expect(i64Col.kind === 'int64' && i64Col.data.buffer).toBe(i64.buffer);

    const shifted = new Uint8Array(bytes.byteLength + 3);
    shifted.set(bytes, 3);
    const unaligned = decodeVector(shifted.subarray(3));
    expect(unaligned.data.buffer).not.toBe(shifted.buffer);
    expect(Array.from(unaligned.data)).toEqual(Array.from(col.data));
  });

  it('round-trips 100k x 128 vectors byte for byte (throughput is logged, not asserted)', () => {
    const dim = 128;
    const rows = 100_000;
    const data = new Float32Array(rows * dim);
    for (let i = 0; i < data.length; i++) data[i] = (i % 1000) * 0.001 - 0.5;
    const t0 = performance.now();
    const bytes = encodeColumn({ kind: 'vector', dim, data }, { fieldId: 102 });
    const t1 = performance.now();
    const back = decodeVector(bytes);
    const t2 = performance.now();
    expect(back.dim).toBe(dim);
    expect(Buffer.compare(new Uint8Array(back.data.buffer, back.data.byteOffset, back.data.byteLength), new Uint8Array(data.buffer))).toBe(0);
    const mb = data.byteLength / 1e6;
    console.log(
      `binlog 100k x 128 vectors (${mb.toFixed(1)} MB): encode ${(mb / ((t1 - t0) / 1000)).toFixed(0)} MB/s, decode ${(mb / ((t2 - t1) / 1000)).toFixed(0)} MB/s`,
    );
  });

  it('rejects corrupt input with SegmentLoadFailed', () => {
    const good = encodeColumn({ kind: 'vector', dim: 4, data: new Float32Array(4000).map((_, i) => i) });
    expectError(() => decodeColumn(new Uint8Array(0), 'vector'), 'SegmentLoadFailed');
    expectError(() => decodeColumn(new Uint8Array(100).fill(7), 'vector'), 'SegmentLoadFailed');
    expectError(() => decodeColumn(good.subarray(0, good.length - 100), 'vector'), 'SegmentLoadFailed');
    expectError(() => decodeColumn(good.subarray(0, 200), 'vector'), 'SegmentLoadFailed');
    // A flipped bit inside the vector data is caught by the checksum.
    const flipped = good.slice();
    const at = flipped.indexOf(0x40, 2000); // some byte of a float in the body
    flipped[at] = (flipped[at] ?? 0) ^ 0x01;
    expectError(() => decodeColumn(flipped, 'vector'), 'SegmentLoadFailed');
    // Garbage between valid magic markers.
    const framed = good.slice();
    framed.fill(0xee, 8, framed.length - 10);
    expectError(() => decodeColumn(framed, 'vector'), 'SegmentLoadFailed');
  });

  it('detects a flipped byte in string data and a wrong expected kind', () => {
    const good = encodeColumn({ kind: 'string', data: ['alpha', 'beta', 'gamma'] });
    const flipped = good.slice();
    const at = Buffer.from(flipped).indexOf('beta');
    flipped[at] = 'B'.charCodeAt(0);
    expectError(() => decodeColumn(flipped, 'string'), 'SegmentLoadFailed');
    expectError(() => decodeColumn(good, 'int64'), 'SegmentLoadFailed');
    expectError(() => decodeColumn(good, 'json'), 'SegmentLoadFailed');
    const err = (() => {
      try {
        decodeColumn(good, 'vector');
      } catch (e) {
        return e;
      }
    })();
    expect(String(err)).toContain('expected vector');
  });

  it('refuses malformed columns when encoding', () => {
    expectError(() => encodeColumn({ kind: 'int32', data: new Int32Array(3), valid: new Uint8Array(2) }), 'ParameterInvalid');
    expectError(() => encodeColumn({ kind: 'vector', dim: 3, data: new Float32Array(4) }), 'ParameterInvalid');
    expectError(() => encodeColumn({ kind: 'vector', dim: 0, data: new Float32Array(0) }), 'ParameterInvalid');
    expectError(() => encodeColumn({ kind: 'json', data: [{ big: 1n }] }), 'DataInvalid');
    expectError(() => encodeColumn({ kind: 'array', elementType: 'Int64', data: [[1.5]] }), 'DataInvalid');
    expectError(() => encodeColumn({ kind: 'array', elementType: 'VarChar', data: [[1]] }), 'DataInvalid');
    expectError(() => encodeColumn({ kind: 'int64', data: new Int32Array(1) as unknown as BigInt64Array }), 'ParameterInvalid');
    expectError(() => encodeColumn({ kind: 'int32', data: new Int32Array(1) }, { fieldId: 1.5 }), 'ParameterInvalid');
  });

  it('round-trips random string, json and int64-array columns (property)', () => {
    const valid = (n: number) => fc.option(fc.uint8Array({ minLength: n, maxLength: n, min: 0, max: 1 }), { nil: undefined });
    const stringCol = fc
      .array(fc.string({ unit: 'grapheme', maxLength: 8 }), { maxLength: 20 })
      .chain((data) => valid(data.length).map((v): Column => ({ kind: 'string', data: v ? data.map((s, i) => (v[i] ? s : '')) : data, valid: v })));
    const jsonCol = fc
      .array(fc.option(fc.jsonValue(), { nil: undefined }), { maxLength: 20 })
      .map((data): Column => ({ kind: 'json', data: data.map((v) => (v === undefined ? undefined : JSON.parse(JSON.stringify(v)))) }));
    const arrayCol = fc
      .array(fc.array(fc.bigInt({ min: I64_MIN, max: I64_MAX }), { maxLength: 5 }), { maxLength: 20 })
      .map((data): Column => ({ kind: 'array', elementType: 'Int64', data }));
    const kinds: [ColumnKind, fc.Arbitrary<Column>][] = [
      ['string', stringCol],
      ['json', jsonCol],
      ['array', arrayCol],
    ];
    for (const [, arb] of kinds) {
      fc.assert(
        fc.property(arb, (c) => {
          expect(plain(roundTrip(c))).toEqual(plain(c));
        }),
        { numRuns: 100, seed: 7 },
      );
    }
  });
});

describe('deltalogs', () => {
  it('round-trips int64 primary keys with timestamps', () => {
    const pks = new BigInt64Array([I64_MIN, 0n, I64_MAX]);
    const ts = new BigInt64Array([449_192_031_846_318_081n, 1n, 2n]);
    const back = decodeDeltas(encodeDeltas(pks, ts));
    expect(back.pks).toBeInstanceOf(BigInt64Array);
    expect(Array.from(back.pks as BigInt64Array)).toEqual(Array.from(pks));
    expect(Array.from(back.ts)).toEqual(Array.from(ts));
  });

  it('round-trips string primary keys, and empty deltalogs', () => {
    const back = decodeDeltas(encodeDeltas(['a', '日本', ''], new BigInt64Array([3n, 2n, 1n])));
    expect(back.pks).toEqual(['a', '日本', '']);
    expect(Array.from(back.ts)).toEqual([3n, 2n, 1n]);
    const empty = decodeDeltas(encodeDeltas(new BigInt64Array(0), new BigInt64Array(0)));
    expect(empty.pks).toBeInstanceOf(BigInt64Array);
    expect(empty.pks.length).toBe(0);
    expect(decodeDeltas(encodeDeltas([], new BigInt64Array(0))).pks).toEqual([]);
  });

  it('refuses mismatched lengths and corrupt or foreign files', () => {
    expectError(() => encodeDeltas(new BigInt64Array(2), new BigInt64Array(1)), 'ParameterInvalid');
    const good = encodeDeltas(new BigInt64Array([1n, 2n]), new BigInt64Array([3n, 4n]));
    expectError(() => decodeDeltas(good.subarray(0, good.length - 8)), 'SegmentLoadFailed');
    expectError(() => decodeDeltas(encodeColumn({ kind: 'int64', data: new BigInt64Array(2) })), 'SegmentLoadFailed');
    expectError(() => decodeColumn(good, 'int64'), 'SegmentLoadFailed');
  });
});

describe('crc32', () => {
  it('matches the reference value and the JS fallback', () => {
    const bytes = new TextEncoder().encode('123456789');
    expect(crc32(bytes)).toBe(0xcbf43926);
    expect(crc32Js(bytes)).toBe(0xcbf43926);
    const data = new Float32Array(1000).map((_, i) => i * 1.25);
    expect(crc32Js(new Uint8Array(data.buffer), 17)).toBe(crc32(data, 17));
  });
});
