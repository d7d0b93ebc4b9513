import { quiverError } from '../common/errors.js';

/**
 * WKB (OGC well-known binary) → WKT text, for Geometry values sent as `geometry_data` (the proto member
 * Milvus's own proxy stores; a client may send it instead of `geometry_wkt_data`). jsts 2.12 has no WKB
 * reader, so this decodes the byte layout only: the text is then parsed, validated and canonicalised by
 * jsts like any WKT (WktCodec), so every spatial rule stays the library's.
 *
 * Accepted: both byte orders per geometry, the seven 2D types, an EWKB SRID (ignored, as Milvus ignores
 * it). Refused with a reason: Z / M coordinates (Milvus geometries are 2D), unknown types, counts beyond
 * the bytes left, nesting deeper than NESTING_MAX, trailing bytes.
 */

const TYPES = ['', 'POINT', 'LINESTRING', 'POLYGON', 'MULTIPOINT', 'MULTILINESTRING', 'MULTIPOLYGON', 'GEOMETRYCOLLECTION'] as const;
const NESTING_MAX = 32;
const EWKB_Z = 0x80000000;
const EWKB_M = 0x40000000;
const EWKB_SRID = 0x20000000;

class WkbFailure extends Error {}

export function wkbToWkt(bytes: Uint8Array, what: string): string {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let at = 0;
  const fail = (why: string): never => {
    throw new WkbFailure(`${why} at byte ${at}`);
  };
  const need = (n: number): void => {
    if (at + n > bytes.length) fail(`${bytes.length} bytes end before ${n} more`);
  };
  const u32 = (little: boolean): number => {
    need(4);
    const v = view.getUint32(at, little);
    at += 4;
    return v;
  };
  const f64 = (little: boolean): number => {
    need(8);
    const v = view.getFloat64(at, little);
    at += 8;
    return v;
  };
  /** A count of items of at least `itemBytes` each, bounded by the bytes left (a bad count cannot allocate). */
  const count = (little: boolean, itemBytes: number): number => {
    const n = u32(little);
    if (n * itemBytes > bytes.length - at) fail(`count ${n} needs more than the ${bytes.length - at} bytes left`);
    return n;
  };
  const num = (v: number): string => {
    if (!Number.isFinite(v)) fail(`coordinate ${v} is not finite`);
    return String(v);
  };
  const points = (little: boolean): string => {
    const n = count(little, 16);
    const out: string[] = [];
    for (let i = 0; i < n; i++) out.push(`${num(f64(little))} ${num(f64(little))}`);
    return `(${out.join(', ')})`;
  };
  const geometry = (depth: number, only?: string): string => {
    if (depth > NESTING_MAX) fail(`nested deeper than ${NESTING_MAX}`);
    need(1);
    const order = bytes[at++]!;
    if (order > 1) fail(`byte order ${order} is neither 0 (big endian) nor 1 (little endian)`);
    const little = order === 1;
    const raw = u32(little);
    if (raw & (EWKB_Z | EWKB_M)) fail('Z / M coordinates are not supported (2D geometries only)');
    if (raw & EWKB_SRID) u32(little); // the SRID
    const code = raw & 0x0fffffff;
    if (code > 1000) fail(`geometry type ${code} has Z / M coordinates (2D geometries only)`);
    const type = TYPES[code];
    if (!type) return fail(`unknown geometry type ${code}`);
    if (only !== undefined && type !== only) fail(`a ${only} holds a ${type}`);
    switch (type) {
      case 'POINT': {
        const x = f64(little);
        const y = f64(little);
        // An empty point is written as NaN coordinates.
        if (Number.isNaN(x) && Number.isNaN(y)) return 'POINT EMPTY';
        return `POINT (${num(x)} ${num(y)})`;
      }
      case 'LINESTRING': {
        const p = points(little);
        return p === '()' ? 'LINESTRING EMPTY' : `LINESTRING ${p}`;
      }
      case 'POLYGON': {
        const n = count(little, 4);
        const rings: string[] = [];
        for (let i = 0; i < n; i++) rings.push(points(little));
        return n === 0 ? 'POLYGON EMPTY' : `POLYGON (${rings.join(', ')})`;
      }
      default: {
        const member = type === 'GEOMETRYCOLLECTION' ? undefined : type.slice('MULTI'.length);
        const n = count(little, 5);
        const parts: string[] = [];
        for (let i = 0; i < n; i++) {
          const part = geometry(depth + 1, member);
          parts.push(member === undefined ? part : part.slice(member.length).trim());
        }
        return n === 0 ? `${type} EMPTY` : `${type} (${parts.join(', ')})`;
      }
    }
  };
  try {
    const text = geometry(0);
    if (at !== bytes.length) fail(`${bytes.length - at} bytes follow the geometry`);
    return text;
  } catch (e) {
    if (!(e instanceof WkbFailure)) throw e;
    throw quiverError('ParameterInvalid', `invalid WKB geometry ${what}: ${e.message}`);
  }
}
