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
