import { describe, expect, it } from 'vitest';
import type { FieldSchema } from '../schema/types.js';
import { fieldDataToColumn } from './field-data.js';
import { parseFieldSchema } from './schema-proto.js';

const varchar: FieldSchema = { fieldId: 101, name: 'title', dataType: 'VarChar', maxLength: 4 } as FieldSchema;
const tags: FieldSchema = { fieldId: 102, name: 'tags', dataType: 'Array', elementType: 'VarChar', maxLength: 4, maxCapacity: 8 } as FieldSchema;

const strings = (data: string[]) => ({ field: 'scalars', scalars: { data: 'string_data', string_data: { data } } });
const stringArrays = (rows: string[][]) => ({
  field: 'scalars',
  scalars: { data: 'array_data', array_data: { element_type: 'VarChar', data: rows.map((r) => ({ data: 'string_data', string_data: { data: r } })) } },
});

describe('VarChar max_length counts UTF-8 bytes, as Milvus does', () => {
  it('accepts a value of exactly max_length bytes and refuses one byte more', () => {
    expect(() => fieldDataToColumn(strings(['abcd']) as never, varchar, 1)).not.toThrow();
    expect(() => fieldDataToColumn(strings(['é€']) as never, varchar, 1)).toThrow(/max length/); // 2 UTF-16 units, 5 bytes
    expect(() => fieldDataToColumn(strings(['éé']) as never, varchar, 1)).not.toThrow(); // 4 bytes
    expect(() => fieldDataToColumn(strings(['😀a']) as never, varchar, 1)).toThrow(/length: 5/); // surrogate pair: 4 bytes
  });

  it('checks each element of an Array of VarChar the same way', () => {
    expect(() => fieldDataToColumn(stringArrays([['ab', 'éé']]) as never, tags, 1)).not.toThrow();
    expect(() => fieldDataToColumn(stringArrays([['ab', '€€']]) as never, tags, 1)).toThrow(/max length/);
  });

  it('checks a default value in bytes too', () => {
    const f = (v: string) => ({
      name: 'd',
      data_type: 'VarChar',
      type_params: [{ key: 'max_length', value: '4' }],
      default_value: { data: 'string_data', string_data: v },
    });
    expect(() => parseFieldSchema(f('éé'), false)).not.toThrow();
    expect(() => parseFieldSchema(f('ééé'), false)).toThrow(/max_length/);
  });
});
