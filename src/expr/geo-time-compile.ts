import { quiverError } from '../common/errors.js';
import { addInterval, parseInterval, parseTimestamptz } from '../schema/timestamptz.js';
import type { ArithOp, Expr } from './ast.js';
import type { Pred, Val } from './compile.js';
import { geoPredicate, type GeoFunction } from './geo-functions.js';
import { applyNulls, mapRows, type Vec } from './kernels.js';
import { FALSE, TRUE } from './values.js';

/**
 * Compile steps for Geometry and Timestamptz operands, kept apart from compile.ts so that file only
 * routes to them:
 * - `ISO '2025-01-01T00:00:00+08:00'` is a Timestamptz constant (microseconds UTC; without an offset the
 *   text is read in the collection's zone, else UTC); a plain string compared with a Timestamptz is read
 *   the same way.
 * - `tsz + INTERVAL 'P1D'` / `tsz - INTERVAL 'PT2H'` shift a Timestamptz by an ISO-8601 duration.
 * - `ST_*(geo, 'WKT'[, metres])` are predicates over a Geometry field (geo-functions.ts).
 * Malformed literals answer ParameterInvalid naming the text.
 */

function invalid(reason: string): Error {
  return quiverError('ExprInvalid', reason);
}

function timestampConst(us: bigint, desc: string): Val {
  const vec: Vec = { t: 'const', value: us };
  return { st: 'timestamptz', bound: Infinity, desc, isReference: false, konst: us, ev: () => vec };
}

function parseAt(text: string, pos: number, timezone: string | undefined): bigint {
  try {
    return parseTimestamptz(text, timezone);
  } catch (e) {
    throw quiverError('ParameterInvalid', `${(e as Error).message}${pos >= 0 ? ` (at position ${pos})` : ''}`);
  }
}

export function isoVal(arg: Expr & { kind: 'string' }, pos: number, timezone: string | undefined): Val {
  return timestampConst(parseAt(arg.value, arg.pos, timezone), `timestamp ISO '${arg.value}' at position ${pos}`);
}

export function intervalVal(arg: Expr & { kind: 'string' }, pos: number): Val {
  let interval;
  try {
    interval = parseInterval(arg.value);
  } catch (e) {
    throw quiverError('ParameterInvalid', `${(e as Error).message} (at position ${pos})`);
  }
  return {
    st: 'interval',
    bound: Infinity,
    desc: `INTERVAL '${arg.value}' at position ${pos}`,
    isReference: false,
    interval,
    ev: () => {
      throw invalid(`INTERVAL '${arg.value}' at position ${pos} can only be added to or subtracted from a Timestamptz`);
    },
  };
}

/** `v` as seen next to `other`: a string literal next to a Timestamptz becomes a Timestamptz constant. */
export function timestamptzOperand(v: Val, other: Val, timezone: string | undefined): Val {
  if (other.st !== 'timestamptz' || v.st !== 'string' || typeof v.konst !== 'string') return v;
  return timestampConst(parseAt(v.konst, -1, timezone), `timestamp '${v.konst}'`);
}

/** `ts ± INTERVAL` (and `INTERVAL + ts`). Anything else with an interval is refused. */
export function shiftByInterval(op: ArithOp, l: Val, r: Val, pos: number): Val {
  const ts = l.st === 'timestamptz' ? l : op === '+' && r.st === 'timestamptz' ? r : undefined;
  const iv = ts === l ? r.interval : l.interval;
  if ((op !== '+' && op !== '-') || ts === undefined || iv === undefined) {
    throw invalid(
      `'${op}' with an INTERVAL needs a Timestamptz on its left (timestamp + INTERVAL or timestamp - INTERVAL), got ${l.desc} and ${r.desc} at position ${pos}`,
    );
  }
  const sign = op === '+' ? 1 : -1;
  const desc = `Timestamptz expression at position ${pos}`;
  if (typeof ts.konst === 'bigint') return timestampConst(addInterval(ts.konst, iv, sign), desc);
  return {
    st: 'timestamptz',
    bound: Infinity,
    desc,
    isReference: false,
    ev: (ctx) => {
      const v = ts.ev(ctx);
      if (v.t !== 'big') return { t: 'num', data: new Float64Array(ctx.n), valid: new Uint8Array(ctx.n) };
      const out = new BigInt64Array(ctx.n);
      for (let i = 0; i < ctx.n; i++) out[i] = addInterval(v.data[i]!, iv, sign);
      return { t: 'big', data: out, valid: v.valid };
    },
  };
}

/** `ST_*(field, 'WKT')` and `ST_DWITHIN(field, 'POINT(..)', metres)`. */
export function geoCall(fn: GeoFunction, args: readonly Val[], pos: number): Pred {
  const name = fn.toUpperCase();
  const [target, literal, dist] = args;
  if (target === undefined || target.st !== 'geometry' || !target.isReference) {
    throw invalid(`${name} needs a Geometry field as its first argument, got ${target?.desc ?? 'nothing'} at position ${pos}`);
  }
  if (literal === undefined || typeof literal.konst !== 'string') {
    throw invalid(`${name} needs a WKT string as its second argument, got ${literal?.desc ?? 'nothing'} at position ${pos}`);
  }
  let distance: number | undefined;
  if (fn === 'st_dwithin') {
    const k = dist?.konst;
    if (typeof k !== 'number' && typeof k !== 'bigint') {
      throw invalid(`ST_DWITHIN needs a constant distance in metres as its third argument, got ${dist?.desc ?? 'nothing'} at position ${pos}`);
    }
    distance = Number(k);
  }
  const test = geoPredicate(fn, literal.konst, distance, pos);
  return {
    ev: (ctx) => {
      const v = target.ev(ctx);
      const n = ctx.n;
      if (v.t === 'str') {
        const out = new Uint8Array(n);
        const valid = v.valid;
        for (let i = 0; i < n; i++) if (valid === undefined || valid[i] !== 0) out[i] = test(v.data[i]!) ? TRUE : FALSE;
        return applyNulls(out, valid);
      }
      return mapRows(v, n, (x) => typeof x === 'string' && test(x));
    },
  };
}
