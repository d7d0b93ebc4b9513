import WKTReaderImpl from 'jsts/org/locationtech/jts/io/WKTReader.js';
import WKTWriterImpl from 'jsts/org/locationtech/jts/io/WKTWriter.js';
import { quiverError } from '../common/errors.js';

/**
 * Geometry values (Milvus 2.6 `DataType.Geometry`). Users send and receive WKT; parsing and every spatial
 * predicate are jsts (the JavaScript port of JTS, the library GEOS itself is a port of), never hand-written.
 *
 * Stored form: the WKT jsts writes back for the parsed geometry (`POINT (13.39971 52.51801)`), so every
 * stored value is known to parse, output is canonical (Milvus answers GEOS's WKT of its stored WKB, which
 * has the same shape), and the binlog column is plain Utf8. See docs/ARCHITECTURE.md for why not WKB.
 */

/** The part of a jsts Geometry Quiver uses (jsts's own declarations are partial and mostly `any`). */
export interface JtsGeometry {
  isEmpty(): boolean;
  getGeometryType(): string;
  getDimension(): number;
  getCoordinate(): { x: number; y: number } | null;
  getEnvelopeInternal(): { getMinX(): number; getMaxX(): number; getMinY(): number; getMaxY(): number; isNull(): boolean };
}

interface WktReader {
  read(text: string): JtsGeometry;
}
interface WktWriter {
  write(g: JtsGeometry): string;
}

const GEOMETRY_TYPES = ['POINT', 'LINESTRING', 'POLYGON', 'MULTIPOINT', 'MULTILINESTRING', 'MULTIPOLYGON', 'GEOMETRYCOLLECTION'];
/** Longest WKT accepted, in characters (a bound, as every input has one; Milvus's own limit is its message size). */
export const WKT_CHARS_MAX = 1 << 20;

/** A reader and writer pair; stateless between calls, so one per caller is enough. */
export class WktCodec {
  readonly #reader: WktReader = new (WKTReaderImpl as unknown as new () => WktReader)();
  readonly #writer: WktWriter = new (WKTWriterImpl as unknown as new () => WktWriter)();

  /** Parses WKT or throws ParameterInvalid naming the value (`what` says where it came from). */
  parse(text: unknown, what: string): JtsGeometry {
    const shown = (s: string): string => JSON.stringify(s.length > 80 ? `${s.slice(0, 80)}...` : s);
    const bad = (why: string): never => {
      throw quiverError('ParameterInvalid', `invalid WKT ${typeof text === 'string' ? shown(text) : String(text)} ${what}: ${why}`);
    };
    if (typeof text !== 'string') return bad('expected a WKT string');
    if (text.length > WKT_CHARS_MAX) return bad(`longer than ${WKT_CHARS_MAX} characters`);
    const head = /^\s*([A-Za-z]+)/.exec(text)?.[1]?.toUpperCase();
    if (head === undefined || !GEOMETRY_TYPES.includes(head)) {
      return bad(`expected one of ${GEOMETRY_TYPES.join(', ')}`);
    }
    let g: JtsGeometry;
    try {
      g = this.#reader.read(text);
    } catch (e) {
      return bad(e instanceof Error ? e.message : String(e));
    }
    // The jsts reader stops at the end of the first geometry; trailing text would otherwise be ignored.
    if (!balanced(text)) return bad('unbalanced parentheses or trailing text');
    return g;
  }

  /** The canonical WKT stored for a value. */
  normalize(text: unknown, what: string): string {
    return this.#writer.write(this.parse(text, what));
  }
}

/** True when the parentheses balance and nothing follows the last closing one. */
function balanced(text: string): boolean {
  let depth = 0;
  let closedAt = -1;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '(') depth++;
    else if (c === ')') {
      depth--;
      if (depth < 0) return false;
      if (depth === 0) closedAt = i;
    }
  }
  if (depth !== 0) return false;
  return closedAt === -1 || text.slice(closedAt + 1).trim() === '';
}
