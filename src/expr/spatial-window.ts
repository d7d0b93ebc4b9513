import { WktCodec } from '../schema/geometry.js';
import { EARTH_RADIUS_M, type GeoFunction } from './geo-functions.js';
import type { SpatialWindow } from './index-plan.js';

/**
 * The envelope a row's geometry must meet for `fn(row, literal[, metres])` to be TRUE, for the RTREE index
 * (index/scalar/rtree-index.ts); undefined when no finite window bounds it (the filter then scans).
 *
 * - The DE-9IM functions all need a common point, so the literal's own envelope bounds every match.
 * - ST_DWITHIN (expr/geo-functions.ts) compares the haversine distance from the literal point Q to the
 *   row's point nearest it with d metres; that point lies in the row's envelope. With δ = d / R, every
 *   point within d of Q has |Δlat| ≤ δ, and from hav(δ) ≥ cos²(φmax)·hav(Δlon), |Δlon| ≤ 2·asin(sin(δ/2) /
 *   cos φmax), φmax the largest |lat| in the band. Near a pole, or across the antimeridian, longitude is
 *   left unbounded. The window is widened by a relative 1e-9 so float rounding cannot drop a row the
 *   predicate keeps, and it is `geodesic`: valid only over lon/lat coordinates, which the index checks.
 */
export function spatialWindow(fn: GeoFunction, wkt: string, metres: number | undefined): SpatialWindow | undefined {
  let g;
  try {
    g = new WktCodec().parse(wkt, 'in a spatial filter');
  } catch {
    return undefined; // the compiled filter reports the malformed literal
  }
  if (g.isEmpty()) return undefined;
  const env = g.getEnvelopeInternal();
  if (fn !== 'st_dwithin') return { minX: env.getMinX(), minY: env.getMinY(), maxX: env.getMaxX(), maxY: env.getMaxY(), geodesic: false };
  if (metres === undefined || !Number.isFinite(metres) || metres < 0 || g.getGeometryType() !== 'Point') return undefined;
  const lon = env.getMinX();
  const lat = env.getMinY();
  if (Math.abs(lon) > 180 || Math.abs(lat) > 90) return undefined;
  const slack = (x: number): number => x * (1 + 1e-9) + 1e-12;
  const delta = metres / EARTH_RADIUS_M;
  if (delta >= Math.PI / 2) return undefined;
  const dLatDeg = slack((delta * 180) / Math.PI);
  const latMax = Math.abs(lat) + dLatDeg;
  const all = { minX: -Infinity, maxX: Infinity };
  let lonWindow = all;
  if (latMax < 90) {
    const s = Math.sin(delta / 2) / Math.cos((latMax * Math.PI) / 180);
    if (s < 1) {
      const dLonDeg = slack((2 * Math.asin(s) * 180) / Math.PI);
      if (lon - dLonDeg >= -180 && lon + dLonDeg <= 180) lonWindow = { minX: lon - dLonDeg, maxX: lon + dLonDeg };
    }
  }
  return { ...lonWindow, minY: lat - dLatDeg, maxY: lat + dLatDeg, geodesic: true };
}
