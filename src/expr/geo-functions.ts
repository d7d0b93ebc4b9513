import RelateOp from 'jsts/org/locationtech/jts/operation/relate/RelateOp.js';
import DistanceOp from 'jsts/org/locationtech/jts/operation/distance/DistanceOp.js';
import { quiverError } from '../common/errors.js';
import { WktCodec, type JtsGeometry } from '../schema/geometry.js';

/**
 * The spatial filter functions of Milvus 2.6 (`ST_EQUALS(geo, 'WKT')` ...), each a DE-9IM test computed
 * by jsts's RelateOp with the row's geometry as A and the literal as B, so `ST_CONTAINS(geo, 'POINT..')`
 * is "the row contains the point" and `ST_WITHIN(geo, 'POLYGON..')` is "the row lies in the polygon".
 *
 * `ST_DWITHIN(geo, 'POINT(lon lat)', metres)`: Milvus takes coordinates as longitude/latitude and the
 * distance in metres, and B must be a point. The distance is the great-circle (haversine) distance on a
 * sphere of the mean Earth radius from B to the point of A nearest to B (nearest in degrees, which is
 * exact for points, the common case, and close for small shapes).
 */

export type GeoFunction = 'st_equals' | 'st_touches' | 'st_overlaps' | 'st_crosses' | 'st_contains' | 'st_intersects' | 'st_within' | 'st_dwithin';

export const GEO_FUNCTIONS: readonly GeoFunction[] = [
  'st_equals',
  'st_touches',
  'st_overlaps',
  'st_crosses',
  'st_contains',
  'st_intersects',
  'st_within',
  'st_dwithin',
];

/** IUGG mean Earth radius in metres. */
export const EARTH_RADIUS_M = 6_371_008.8;

interface IntersectionMatrix {
  isEquals(dimA: number, dimB: number): boolean;
  isTouches(dimA: number, dimB: number): boolean;
  isOverlaps(dimA: number, dimB: number): boolean;
  isCrosses(dimA: number, dimB: number): boolean;
  isContains(): boolean;
  isWithin(): boolean;
  isIntersects(): boolean;
}
interface Coordinate {
  x: number;
  y: number;
}

const relate = (a: JtsGeometry, b: JtsGeometry): IntersectionMatrix =>
  (RelateOp as unknown as { relate(a: unknown, b: unknown): IntersectionMatrix }).relate(a, b);
const nearestPoints = (a: JtsGeometry, b: JtsGeometry): Coordinate[] =>
  (DistanceOp as unknown as { nearestPoints(a: unknown, b: unknown): Coordinate[] }).nearestPoints(a, b);

/** Great-circle distance in metres between two lon/lat points (degrees). */
export function haversineMetres(lon1: number, lat1: number, lon2: number, lat2: number): number {
  const rad = Math.PI / 180;
  const dLat = (lat2 - lat1) * rad;
  const dLon = (lon2 - lon1) * rad;
  const h = Math.sin(dLat / 2) ** 2 + Math.cos(lat1 * rad) * Math.cos(lat2 * rad) * Math.sin(dLon / 2) ** 2;
  return 2 * EARTH_RADIUS_M * Math.asin(Math.min(1, Math.sqrt(h)));
}

function envelopesMeet(a: JtsGeometry, b: JtsGeometry): boolean {
  const ea = a.getEnvelopeInternal();
  const eb = b.getEnvelopeInternal();
  if (ea.isNull() || eb.isNull()) return false;
  return !(ea.getMaxX() < eb.getMinX() || eb.getMaxX() < ea.getMinX() || ea.getMaxY() < eb.getMinY() || eb.getMaxY() < ea.getMinY());
}

/**
 * Builds the per-row test of one spatial function call. `wkt` is the literal (malformed: ParameterInvalid
 * naming it); `distance` only for st_dwithin. The returned function takes a row's stored WKT.
 */
export function geoPredicate(fn: GeoFunction, wkt: string, distance: number | undefined, pos: number): (rowWkt: string) => boolean {
  const codec = new WktCodec();
  const b = codec.parse(wkt, `in ${fn.toUpperCase()} at position ${pos}`);
  const rowGeom = (text: string): JtsGeometry | undefined => {
    // Stored values are canonical WKT written by jsts (schema/geometry.ts), so this parse does not fail;
    // a null row holds '' and never reaches here (its validity bit is 0).
    try {
      return codec.parse(text, 'stored');
    } catch {
      return undefined;
    }
  };
  const dimB = b.getDimension();
  if (fn === 'st_dwithin') {
    if (b.getGeometryType() !== 'Point' || b.isEmpty()) {
      throw quiverError('ParameterInvalid', `ST_DWITHIN at position ${pos} needs a POINT as its second argument, got ${JSON.stringify(wkt)}`);
    }
    if (distance === undefined || !Number.isFinite(distance) || distance < 0) {
      throw quiverError('ParameterInvalid', `ST_DWITHIN at position ${pos} needs a non-negative distance in metres, got ${String(distance)}`);
    }
    const q = b.getCoordinate()!;
    return (text) => {
      const a = rowGeom(text);
      if (a === undefined || a.isEmpty()) return false;
      const near = nearestPoints(a, b)[0]!;
      return haversineMetres(near.x, near.y, q.x, q.y) <= distance;
    };
  }
  const test = (m: IntersectionMatrix, dimA: number): boolean => {
    switch (fn) {
      case 'st_equals':
        return m.isEquals(dimA, dimB);
      case 'st_touches':
        return m.isTouches(dimA, dimB);
      case 'st_overlaps':
        return m.isOverlaps(dimA, dimB);
      case 'st_crosses':
        return m.isCrosses(dimA, dimB);
      case 'st_contains':
        return m.isContains();
      case 'st_within':
        return m.isWithin();
      case 'st_intersects':
        return m.isIntersects();
      default: {
        const never: never = fn;
        throw new Error(`unknown spatial function ${String(never)}`);
      }
    }
  };
  return (text) => {
    const a = rowGeom(text);
    // Every one of these relations needs a common point, so disjoint envelopes answer without DE-9IM.
    if (a === undefined || a.isEmpty() || b.isEmpty() || !envelopesMeet(a, b)) return false;
    return test(relate(a, b), a.getDimension());
  };
}
