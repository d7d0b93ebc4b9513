import { describe, expect, it } from 'vitest';
import { root } from './proto.js';

describe('LongArray encoder', () => {
  it('writes strings, numbers and bigints that decode to the same int64 values', () => {
    const LongArray = root.lookupType('milvus.proto.schema.LongArray');
    const values = ['0', '-1', '42', '999999999999999', '9007199254740993', '9223372036854775807', '-9223372036854775808', 7, -3, 12345678901234567n];
    const bytes = LongArray.encode(LongArray.fromObject({ data: values })).finish();
    const back = LongArray.toObject(LongArray.decode(bytes), { longs: String }) as { data: string[] };
    expect(back.data).toEqual(values.map(String));
    // Nested, as query and search answers carry it.
    const FieldData = root.lookupType('milvus.proto.schema.FieldData');
    const fd = FieldData.toObject(FieldData.decode(FieldData.encode(FieldData.fromObject({ scalars: { long_data: { data: ['5', '-6'] } } })).finish()), {
      longs: String,
    }) as { scalars: { long_data: { data: string[] } } };
    expect(fd.scalars.long_data.data).toEqual(['5', '-6']);
    expect(LongArray.encode(LongArray.fromObject({ data: [] })).finish().length).toBe(0);
  });
});

describe('LongArray toObject after the fast fromObject', () => {
  it('answers the values of a message built from strings, as the REST bridge round-trips replies', () => {
    const LongArray = root.lookupType('milvus.proto.schema.LongArray');
    const values = ['0', '-1', '9007199254740993', '9223372036854775807'];
    expect((LongArray.toObject(LongArray.fromObject({ data: values }), { longs: String }) as { data: string[] }).data).toEqual(values);
    expect((LongArray.toObject(LongArray.fromObject({ data: ['5', 6] }), { longs: Number }) as { data: number[] }).data).toEqual([5, 6]);
    const FieldData = root.lookupType('milvus.proto.schema.FieldData');
    const fd = FieldData.toObject(FieldData.fromObject({ scalars: { long_data: { data: ['5', '-6'] } } }), { longs: String }) as {
      scalars: { long_data: { data: string[] } };
    };
    expect(fd.scalars.long_data.data).toEqual(['5', '-6']);
  });
});
