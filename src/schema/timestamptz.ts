import { quiverError } from '../common/errors.js';

/**
 * Timestamptz values (Milvus 2.6 `DataType.Timestamptz`): an instant, stored as int64 microseconds since
 * the Unix epoch in UTC. Users write ISO-8601 / RFC 3339 strings with a zone offset; a string without an
 * offset is read in the request's time zone (the `timezone` parameter, else the collection's
 * `collection.timezone` property, else UTC), as Milvus does. Output is RFC 3339 in the chosen zone.
 *
 * Microseconds, not milliseconds: Milvus keeps microseconds, and JS `Date` would silently drop them, so
 * the arithmetic below is done on bigints and `Date` is used only for calendar fields of whole seconds.
 */

const US_PER_MS = 1000n;
const US_PER_S = 1_000_000n;
const US_PER_MIN = 60n * US_PER_S;
const US_PER_HOUR = 60n * US_PER_MIN;
const US_PER_DAY = 24n * US_PER_HOUR;
/** JS Date range (±8.64e15 ms): instants outside it cannot be formatted or shifted by months. */
const US_ABS_MAX = 8_640_000_000_000_000n * US_PER_MS;

export const UTC = 'UTC';

const ISO =
  /^([+-]?\d{4,6})-(\d{2})-(\d{2})(?:[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?)?\s*(?:([Zz])|([+-])(\d{2})(?::?(\d{2}))?(?::?(\d{2}))?)?$/;

function bad(value: string, why: string): never {
  const shown = value.length > 80 ? `${value.slice(0, 80)}...` : value;
  throw quiverError('ParameterInvalid', `invalid Timestamptz value ${JSON.stringify(shown)}: ${why}`);
}

/** Throws ParameterInvalid unless `tz` is an IANA zone name (or a fixed offset like `+08:00`) the runtime knows. */
export function checkTimezone(tz: string): string {
  if (fixedOffsetMinutes(tz) !== undefined) return tz;
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: tz });
    return tz;
  } catch {
    throw quiverError('ParameterInvalid', `invalid timezone ${JSON.stringify(tz)}: expected an IANA time zone name such as "Asia/Shanghai" or "UTC"`);
  }
}

function fixedOffsetMinutes(tz: string): number | undefined {
  const m = /^([+-])(\d{2}):?(\d{2})$/.exec(tz);
  if (!m) return undefined;
  const mins = Number(m[2]) * 60 + Number(m[3]);
  return m[1] === '-' ? -mins : mins;
}

/** Offset of `tz` from UTC at the instant `epochMs`, in minutes (east positive). */
export function zoneOffsetMinutes(tz: string, epochMs: number): number {
  if (tz === UTC) return 0;
  const fixed = fixedOffsetMinutes(tz);
  if (fixed !== undefined) return fixed;
  const parts = new Intl.DateTimeFormat('en-US', {
    timeZone: tz,
    hourCycle: 'h23',
    year: 'numeric',
    month: 'numeric',
    day: 'numeric',
    hour: 'numeric',
    minute: 'numeric',
    second: 'numeric',
    era: 'short',
  }).formatToParts(new Date(epochMs));
  const get = (t: string): number => Number(parts.find((p) => p.type === t)?.value ?? 0);
  let year = get('year');
  if (parts.find((p) => p.type === 'era')?.value === 'BC') year = 1 - year;
  const d = new Date(0);
  d.setUTCFullYear(year, get('month') - 1, get('day'));
  d.setUTCHours(get('hour'), get('minute'), get('second'), 0);
  const wallMs = d.getTime();
  return Math.round((wallMs - Math.floor(epochMs / 1000) * 1000) / 60000);
}

/**
 * Parses an ISO-8601 timestamp (`2025-05-01T23:59:59+08:00`, `2025-05-01 23:59:59.123456Z`,
 * `2025-05-01`) into microseconds UTC. Without an offset the wall time is read in `tz`.
 */
export function parseTimestamptz(value: string, tz: string = UTC): bigint {
  if (typeof value !== 'string') bad(String(value), 'expected an ISO-8601 string');
  const m = ISO.exec(value.trim());
  if (!m) bad(value, 'expected an ISO-8601 / RFC 3339 timestamp such as "2025-05-01T23:59:59+08:00"');
  const [, y, mo, d, h, mi, s, frac, z, sign, oh, om, os] = m;
  const year = Number(y);
  const month = Number(mo);
  const day = Number(d);
  const hour = Number(h ?? 0);
  const minute = Number(mi ?? 0);
  const second = Number(s ?? 0);
  if (month < 1 || month > 12) bad(value, `month ${mo} is out of range`);
  const date = new Date(0);
  date.setUTCFullYear(year, month - 1, day);
  if (date.getUTCMonth() !== month - 1 || date.getUTCDate() !== day) bad(value, `day ${d} does not exist in month ${mo}`);
  if (hour > 23 || minute > 59 || second > 59) bad(value, 'time of day is out of range');
  date.setUTCHours(hour, minute, second, 0);
  if (Number.isNaN(date.getTime())) bad(value, 'year is out of range');
  const wallUs = BigInt(date.getTime()) * US_PER_MS + BigInt(((frac ?? '') + '000000').slice(0, 6));
  let offsetMin: number;
  if (z !== undefined) offsetMin = 0;
  else if (sign !== undefined) {
    if (Number(oh) > 23 || Number(om ?? 0) > 59 || Number(os ?? 0) > 59) bad(value, 'zone offset is out of range');
    offsetMin = (Number(oh) * 60 + Number(om ?? 0) + Number(os ?? 0) / 60) * (sign === '-' ? -1 : 1);
  } else {
    // A wall time in a named zone: take the offset at the wall time read as UTC, then correct it once
    // with the offset at the instant that gives (right except inside a DST gap, as in most libraries).
    const asUtcMs = date.getTime();
    const first = zoneOffsetMinutes(tz, asUtcMs);
    offsetMin = zoneOffsetMinutes(tz, asUtcMs - first * 60000);
  }
  const us = wallUs - BigInt(Math.round(offsetMin * 60)) * US_PER_S;
  if (us > US_ABS_MAX || us < -US_ABS_MAX) bad(value, 'year is out of range');
  return us;
}

const pad = (n: number, w = 2): string => String(n).padStart(w, '0');

/** RFC 3339 in `tz`: `2024-12-31T16:00:00Z` in UTC, `2025-01-01T00:00:00+08:00` in Asia/Shanghai. */
export function formatTimestamptz(us: bigint, tz: string = UTC): string {
  const subUs = ((us % US_PER_S) + US_PER_S) % US_PER_S;
  const secMs = Number((us - subUs) / US_PER_MS);
  const offsetMin = zoneOffsetMinutes(tz, secMs);
  const d = new Date(secMs + offsetMin * 60000);
  const year = d.getUTCFullYear();
  const yearText = year >= 0 && year <= 9999 ? pad(year, 4) : (year < 0 ? '-' : '+') + pad(Math.abs(year), 6);
  let text = `${yearText}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())}T${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}`;
  if (subUs !== 0n) text += `.${subUs.toString().padStart(6, '0').replace(/0+$/, '')}`;
  if (offsetMin === 0) return `${text}Z`;
  const abs = Math.abs(offsetMin);
  return `${text}${offsetMin < 0 ? '-' : '+'}${pad(Math.floor(abs / 60))}:${pad(abs % 60)}`;
}

/** An ISO-8601 duration: calendar months (years × 12 + months) and a fixed part in microseconds. */
export interface Interval {
  readonly months: number;
  readonly us: bigint;
}

const DURATION = /^([+-])?P(?:(\d+)Y)?(?:(\d+)M)?(?:(\d+)W)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)(?:[.,](\d{1,9}))?S)?)?$/i;

/** Parses `P1D`, `PT3H`, `P2DT6H30M`, `P1Y2M`, `PT0.5S` (ISO-8601 durations, as Milvus's INTERVAL takes). */
export function parseInterval(text: string): Interval {
  const m = DURATION.exec(text.trim());
  const invalidInterval = (): never => {
    throw quiverError('ParameterInvalid', `invalid INTERVAL ${JSON.stringify(text)}: expected an ISO-8601 duration such as 'P1D', 'PT3H' or 'P2DT6H'`);
  };
  if (!m || text.trim().toUpperCase().endsWith('T') || /^[+-]?P$/i.test(text.trim())) invalidInterval();
  const [, sign, y, mo, w, d, h, mi, s, frac] = m!;
  const n = (x: string | undefined): bigint => BigInt(x ?? 0);
  const months = Number(y ?? 0) * 12 + Number(mo ?? 0);
  let us = (n(w) * 7n + n(d)) * US_PER_DAY + n(h) * US_PER_HOUR + n(mi) * US_PER_MIN + n(s) * US_PER_S;
  us += BigInt(((frac ?? '') + '000000').slice(0, 6));
  if (!Number.isSafeInteger(months)) invalidInterval();
  return sign === '-' ? { months: months === 0 ? 0 : -months, us: -us } : { months, us };
}

/**
 * `t + sign × interval`. Months move the calendar date in UTC (Jan 31 + P1M is Mar 3, as `Date` rolls
 * over), then the fixed part is added exactly.
 */
export function addInterval(us: bigint, iv: Interval, sign: 1 | -1): bigint {
  let out = us;
  if (iv.months !== 0) {
    const subMs = ((us % US_PER_MS) + US_PER_MS) % US_PER_MS;
    const d = new Date(Number((us - subMs) / US_PER_MS));
    d.setUTCMonth(d.getUTCMonth() + sign * iv.months);
    // Out of the Date range: saturate to the range limit, so comparisons still order it correctly.
    if (Number.isNaN(d.getTime())) return (sign * iv.months > 0 ? 1n : -1n) * US_ABS_MAX;
    out = BigInt(d.getTime()) * US_PER_MS + subMs;
  }
  return sign === 1 ? out + iv.us : out - iv.us;
}
