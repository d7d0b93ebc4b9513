import { quiverError } from '../common/errors.js';
import { WktCodec } from '../schema/geometry.js';
import { wkbToWkt } from '../schema/wkb.js';
import { formatTimestamptz, parseTimestamptz, UTC } from '../schema/timestamptz.js';
import type { Column, FieldSchema, ScalarValue } from '../schema/types.js';

/**
 * proto ⇄ stored values for the Geometry and Timestamptz fields (field-data.ts calls in here).
 *
 * What the Node SDK 3.0.6 sends (milvus/grpc/Data.js `buildColumnData`): a Geometry column as
 * `scalars.geometry_wkt_data` (WKT strings), a Timestamptz column as `scalars.string_data` (the strings
 * the user wrote). `timestamptz_data` (int64 microseconds, the proto's own member) is accepted too, so a
 * client that converts on its side works, and so is `geometry_data` (WKB bytes, what Milvus's proxy stores
 * and other clients may send; schema/wkb.ts turns them into WKT for jsts).
 *
 * Output: Geometry as `geometry_wkt_data`, Timestamptz as `string_data` holding RFC 3339 text (what
 * Milvus 2.6 answers and what the SDK hands the user unchanged), in UTC here and shifted to the request's
 * time zone by timezone-output.ts.
 */

/* eslint-disable @typescript-eslint/no-explicit-any */

const ACCEPTED: Readonly<Record<'Geometry' | 'Timestamptz', readonly string[]>> = {
  Geometry: ['geometry_wkt_data', 'string_data', 'geometry_data'],
  Timestamptz: ['string_data', 'timestamptz_data'],
};

export function isGeoTimeField(field: FieldSchema): field is FieldSchema & { dataType: 'Geometry' | 'Timestamptz' } {
  return field.dataType === 'Geometry' || field.dataType === 'Timestamptz';
}

/** The proto member a request sent for a Geometry / Timestamptz field, validated against what is accepted. */
export function geoTimeMember(field: FieldSchema & { dataType: 'Geometry' | 'Timestamptz' }, got: string | undefined): string {
  const ok = ACCEPTED[field.dataType];
  if (got !== undefined && ok.includes(got)) return got;
  throw quiverError('DataInvalid', `field ${field.name} expects ${field.dataType} data (${ok.join(' or ')}), got ${got}`);
}

/**
 * Converts one sent value to its stored form: canonical WKT for Geometry, microseconds (bigint) for
 * Timestamptz (`micros`: the value came as timestamptz_data, else it is text read in `timezone`). `codec`
 * is the caller's, so one request parses with one reader.
 */
export function geoTimeValue(
  field: FieldSchema,
  v: unknown,
  row: number,
  how: { readonly codec: WktCodec; readonly timezone: string; readonly micros: boolean },
): ScalarValue {
  const where = `for field ${field.name} at row ${row}`;
  // geometry_data values arrive as bytes (protobufjs Buffers), WKT as strings.
  if (field.dataType === 'Geometry') return how.codec.normalize(v instanceof Uint8Array ? wkbToWkt(v, where) : v, where);
  if (how.micros) {
    // timestamptz_data: int64 microseconds, decoded as decimal strings (protobufjs `longs: String`).
    return BigInt(v as string | number);
  }
  if (typeof v !== 'string') {
    throw quiverError('ParameterInvalid', `invalid Timestamptz value ${JSON.stringify(v)} ${where}: expected an ISO-8601 string`);
  }
  try {
    return parseTimestamptz(v, how.timezone);
  } catch (e) {
    throw quiverError('ParameterInvalid', `${(e as Error).message} (${where.slice(4)})`);
  }
}

/** The stored default of a Geometry / Timestamptz field (Timestamptz defaults persist as decimal micros). */
export function geoTimeDefault(field: FieldSchema): ScalarValue | undefined {
  const d = field.defaultValue;
  if (d === undefined) return undefined;
  return field.dataType === 'Timestamptz' ? BigInt(d as string | number | bigint) : d;
}

/** Output FieldData members for a gathered Geometry ('string') or Timestamptz ('int64') column. */
export function geoTimeOutput(field: FieldSchema, c: Column, n: number): Record<string, unknown> {
  if (field.dataType === 'Geometry' && c.kind === 'string') {
    // Null rows hold '' (valid_data says they are null); the SDK maps them to null.
    return { geometry_wkt_data: { data: c.data.slice(0, n) } };
  }
  if (field.dataType === 'Timestamptz' && c.kind === 'int64') {
    const data = new Array<string>(n);
    for (let i = 0; i < n; i++) data[i] = c.valid && c.valid[i] === 0 ? '' : formatTimestamptz(c.data[i]!, UTC);
    return { string_data: { data } };
  }
  throw new Error(`field ${field.name} (${field.dataType}) has a ${c.kind} column`);
}

/** Parses a default value sent in CreateCollection / AddCollectionField for a Geometry or Timestamptz field. */
export function parseGeoTimeDefault(dv: any, field: string, dataType: 'Geometry' | 'Timestamptz'): ScalarValue {
  const member: string = dv.data;
  const v = dv[member];
  if (dataType === 'Geometry') {
    if (member !== 'string_data' && member !== 'bytes_data') {
      throw quiverError('ParameterInvalid', `type (Geometry) of field (${field}) is not equal to the type(${member}) of default value`);
    }
    const text = member === 'bytes_data' ? Buffer.from(v as Uint8Array).toString('utf8') : String(v);
    return new WktCodec().normalize(text, `as the default value of field ${field}`);
  }
  // The Node SDK converts an RFC 3339 default into timestamptz_data microseconds itself (Schema.js).
  if (member === 'timestamptz_data' || member === 'long_data') {
    const s = String(v);
    if (!/^-?\d+$/.test(s)) throw quiverError('ParameterInvalid', `invalid Timestamptz default ${JSON.stringify(s)} of field ${field}`);
    return s;
  }
  if (member === 'string_data') return parseTimestamptz(String(v)).toString();
  throw quiverError('ParameterInvalid', `type (Timestamptz) of field (${field}) is not equal to the type(${member}) of default value`);
}

/** The default_value message describe returns. */
export function geoTimeDefaultProto(field: FieldSchema): Record<string, unknown> {
  return field.dataType === 'Timestamptz' ? { timestamptz_data: String(field.defaultValue) } : { string_data: String(field.defaultValue) };
}
