import { quiverError } from '../common/errors.js';
import type { CollectionRecord } from '../coord/records.js';
import { checkTimezone, formatTimestamptz, parseTimestamptz, UTC } from '../schema/timestamptz.js';

/**
 * The time zone Timestamptz values are read (strings without an offset) and written in. Milvus 2.6 takes,
 * highest first: the request's `timezone` parameter (query_params / search_params), the collection
 * property `collection.timezone`, the database property `database.timezone`, then UTC.
 */

/* eslint-disable @typescript-eslint/no-explicit-any */

export const COLLECTION_TIMEZONE = 'collection.timezone';
export const DATABASE_TIMEZONE = 'database.timezone';

/** The collection's zone (its property, else its database's, else UTC). */
export function collectionTimezone(coll: CollectionRecord, dbProperties: Readonly<Record<string, string>> = {}): string {
  return coll.properties[COLLECTION_TIMEZONE] || dbProperties[DATABASE_TIMEZONE] || UTC;
}

/** The zone of one read: the request's `timezone` parameter when set (validated), else the collection's. */
export function requestTimezone(
  coll: CollectionRecord,
  params: Readonly<Record<string, string>>,
  dbProperties: Readonly<Record<string, string>> = {},
): string {
  const tz = params['timezone'];
  if (tz !== undefined && tz !== '') return checkTimezone(tz);
  return collectionTimezone(coll, dbProperties);
}

/** Refuses a `collection.timezone` / `database.timezone` property that names no zone (at create and alter). */
export function checkTimezoneProperties(properties: Readonly<Record<string, string>>): void {
  for (const key of [COLLECTION_TIMEZONE, DATABASE_TIMEZONE]) {
    const tz = properties[key];
    if (tz === undefined) continue;
    try {
      checkTimezone(tz);
    } catch {
      throw quiverError('ParameterInvalid', `${key} ${JSON.stringify(tz)} is invalid: expected an IANA time zone name such as "Asia/Shanghai" or "UTC"`);
    }
  }
}

/**
 * Rewrites the Timestamptz columns of output FieldData (written in UTC by field-data.ts) into `tz`. Done
 * as one pass over the reply so every read path (query, search, hybrid search, iterators) gets it from
 * one call, and the columns below stay zone-free.
 */
export function localizeFieldsData(fieldsData: any[], tz: string): any[] {
  if (tz === UTC) return fieldsData;
  for (const fd of fieldsData) {
    if (fd?.type !== 'Timestamptz') continue;
    const data: string[] | undefined = fd.scalars?.string_data?.data;
    if (!data) continue;
    fd.scalars.string_data.data = data.map((s) => (s === '' ? s : formatTimestamptz(parseTimestamptz(s), tz)));
  }
  return fieldsData;
}

/** The same for a search reply (`results.fields_data`). */
export function localizeSearchReply<T>(reply: T, tz: string): T {
  const fds = (reply as any)?.results?.fields_data;
  if (Array.isArray(fds)) localizeFieldsData(fds, tz);
  return reply;
}

/** The components `time_fields` may name (Milvus 2.6), in the order a request lists them. */
export const TIME_FIELD_NAMES = ['year', 'month', 'day', 'hour', 'minute', 'second', 'microsecond'] as const;
export type TimeFieldName = (typeof TIME_FIELD_NAMES)[number];

/** The request's `time_fields` ("year, month, day"), checked; undefined when absent. */
export function timeFieldsOf(params: Readonly<Record<string, string>>): TimeFieldName[] | undefined {
  const raw = params['time_fields'];
  if (raw === undefined || raw.trim() === '') return undefined;
  const out: TimeFieldName[] = [];
  for (const part of raw.split(',')) {
    const name = part.trim().toLowerCase();
    if (!(TIME_FIELD_NAMES as readonly string[]).includes(name)) {
      throw quiverError(
        'ParameterInvalid',
        `time_fields element ${JSON.stringify(part.trim())} is invalid: expected some of ${TIME_FIELD_NAMES.join(', ')}`,
      );
    }
    out.push(name as TimeFieldName);
  }
  return out;
}

const LOCAL_TEXT = /^([+-]?\d{4,6})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,6}))?/;

/**
 * `time_fields`: each Timestamptz column of the reply (already written in the read's zone by
 * localizeFieldsData) becomes, per row, the array of the named components of its local time, as an
 * Array field of Int32 (the SDK reads it as `[2024, 12, 31]`); a null stays null.
 */
export function extractTimeFields(fieldsData: any[], names: readonly TimeFieldName[] | undefined): any[] {
  if (!names) return fieldsData;
  for (const fd of fieldsData) {
    if (fd?.type !== 'Timestamptz') continue;
    const data: string[] = fd.scalars?.string_data?.data ?? [];
    const valid: boolean[] = fd.valid_data ?? [];
    const rows = data.map((s, i) => {
      const m = valid.length > 0 && !valid[i] ? null : LOCAL_TEXT.exec(s);
      if (!m) return { int_data: { data: [] } };
      const part: Record<TimeFieldName, number> = {
        year: Number(m[1]),
        month: Number(m[2]),
        day: Number(m[3]),
        hour: Number(m[4]),
        minute: Number(m[5]),
        second: Number(m[6]),
        microsecond: Number((m[7] ?? '').padEnd(6, '0')),
      };
      return { int_data: { data: names.map((n) => part[n]) } };
    });
    fd.type = 'Array';
    fd.scalars = { array_data: { data: rows, element_type: 'Int32' } };
  }
  return fieldsData;
}

/** The same for a search reply. */
export function extractSearchTimeFields<T>(reply: T, names: readonly TimeFieldName[] | undefined): T {
  const fds = (reply as any)?.results?.fields_data;
  if (names && Array.isArray(fds)) extractTimeFields(fds, names);
  return reply;
}
