import { describe, expect, it } from 'vitest';
import type { FieldSchema } from '../schema/types.js';
import { columnToFieldData, fieldDataToColumn } from './field-data.js';
import { parseFieldSchema } from './schema-proto.js';
import { localizeFieldsData } from './timezone-output.js';

const geo = { fieldId: 101, name: 'geo', dataType: 'Geometry', nullable: true, typeParams: {} } as unknown as FieldSchema;
const tsz = { fieldId: 102, name: 'tsz', dataType: 'Timestamptz', nullable: false, typeParams: {} } as unknown as FieldSchema;

const scalars = (member: string, data: unknown[], valid: boolean[] = []) => ({
  field: 'scalars',
  scalars: { data: member, [member]: { data } },
  valid_data: valid,
});

describe('Geometry and Timestamptz field data', () => {
  it('stores canonical WKT and keeps nulls, refusing malformed WKB with a reason', () => {
    const col = fieldDataToColumn(scalars('geometry_wkt_data', ['POINT(1   2)', 'LINESTRING(0 0,1 1)'], [true, false, true]) as never, geo, 3);
    expect(col).toMatchObject({ kind: 'string', data: ['POINT (1 2)', '', 'LINESTRING (0 0, 1 1)'], valid: new Uint8Array([1, 0, 1]) });
    const out = columnToFieldData(geo, col, 3) as { scalars: { geometry_wkt_data: { data: string[] } }; valid_data: boolean[] };
    expect(out.scalars.geometry_wkt_data.data).toEqual(['POINT (1 2)', '', 'LINESTRING (0 0, 1 1)']);
    expect(out.valid_data).toEqual([true, false, true]);
    expect(() => fieldDataToColumn(scalars('geometry_data', [Buffer.from([1])]) as never, geo, 1)).toThrow(/WKB/);
    expect(() => fieldDataToColumn(scalars('geometry_wkt_data', ['POINT(1)']) as never, geo, 1)).toThrow(/POINT\(1\)/);
  });

  it('reads ISO strings (zone offsets, or the given zone) and int64 microseconds; writes RFC 3339', () => {
    const col = fieldDataToColumn(scalars('string_data', ['2025-01-01T08:00:00+08:00', '2025-01-01 00:00:00']) as never, tsz, 2, 'Asia/Shanghai');
    expect(col.kind === 'int64' && [...col.data]).toEqual([1735689600000000n, 1735660800000000n]);
    const micros = fieldDataToColumn(scalars('timestamptz_data', ['1735689600000001']) as never, tsz, 1);
    const fd = columnToFieldData(tsz, micros, 1);
    expect(fd).toMatchObject({ type: 'Timestamptz', scalars: { string_data: { data: ['2025-01-01T00:00:00.000001Z'] } } });
    expect(localizeFieldsData([fd], 'America/New_York')[0]).toMatchObject({ scalars: { string_data: { data: ['2024-12-31T19:00:00.000001-05:00'] } } });
    expect(() => fieldDataToColumn(scalars('string_data', ['not a time']) as never, tsz, 1)).toThrow(/"not a time".*row 0/);
    // Digits are microseconds only in timestamptz_data; as text they are no timestamp.
    expect(() => fieldDataToColumn(scalars('string_data', ['1735689600000001']) as never, tsz, 1)).toThrow(/1735689600000001/);
  });

  it('takes defaults as the SDK sends them and fills missing rows', () => {
    const f = parseFieldSchema(
      { name: 'due', data_type: 'Timestamptz', default_value: { data: 'timestamptz_data', timestamptz_data: '1735689600000000' } },
      false,
    );
    const col = fieldDataToColumn(scalars('string_data', ['2025-06-01T00:00:00Z', ''], [true, false]) as never, { ...f, fieldId: 9 } as FieldSchema, 2);
    expect(col.kind === 'int64' && [...col.data]).toEqual([1748736000000000n, 1735689600000000n]);
    const g = parseFieldSchema({ name: 'g', data_type: 'Geometry', default_value: { data: 'string_data', string_data: 'POINT(0 0)' } }, false);
    expect(g.defaultValue).toBe('POINT (0 0)');
    expect(() => parseFieldSchema({ name: 'g', data_type: 'Geometry', default_value: { data: 'string_data', string_data: 'POINT(' } }, false)).toThrow(
      /POINT\(/,
    );
    expect(() => parseFieldSchema({ name: 't', data_type: 'Timestamptz', default_value: { data: 'string_data', string_data: 'soon' } }, false)).toThrow(
      /soon/,
    );
  });
});
