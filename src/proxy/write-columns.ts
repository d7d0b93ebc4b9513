import { quiverError } from '../common/errors.js';
import type { CollectionRecord } from '../coord/records.js';
import type { Column } from '../schema/types.js';
import { DYNAMIC_FIELD_NAME } from '../schema/types.js';
import { computeFunctionOutputs, functionOf } from '../text/functions.js';
import { fieldDataToColumn } from './field-data.js';

/* eslint-disable @typescript-eslint/no-explicit-any */

/**
 * The columns of an Insert/Upsert request (`fields_data`, `num_rows`), validated by the insert rules.
 * Bulk import builds the same request shape from file rows and validates it here too, so a file row is
 * accepted exactly when the same row sent by `insert` would be.
 */
export function requestColumns(
  coll: CollectionRecord,
  req: any,
  upsert: boolean,
  /** Columns of fields the request leaves out, supplied by the caller (a partial upsert's old values). */
  supplied?: ReadonlyMap<string, Column>,
  /** The zone a Timestamptz string without an offset is read in (proxy/timezone-output.ts); UTC when absent. */
  timezone?: string,
): { columns: Map<string, Column>; numRows: number } {
  const numRows = Number(req.num_rows ?? 0);
  const fieldsData: any[] = req.fields_data ?? [];
  const byName = new Map<string, any>();
  for (const fd of fieldsData) {
    const name = fd.is_dynamic ? DYNAMIC_FIELD_NAME : fd.field_name;
    if (byName.has(name)) throw quiverError('DataInvalid', `duplicated field ${name} in fields_data`);
    byName.set(name, fd);
  }
  if (!Number.isInteger(numRows) || numRows <= 0) throw quiverError('DataInvalid', `num_rows (${req.num_rows}) must be a positive integer`);
  const columns = new Map<string, Column>();
  for (const f of coll.schema.fields) {
    const fd = byName.get(f.name);
    byName.delete(f.name);
    const fn = functionOf(coll.schema, f.name);
    if (fn) {
      // The server computes function outputs (BM25) from their inputs; a client value would disagree with them.
      if (fd)
        throw quiverError(
          'ParameterInvalid',
          `field ${f.name} is the output of function ${fn.name}: it is computed from ${fn.inputFieldNames[0]}, do not send it`,
        );
      continue;
    }
    if (f.isPrimaryKey && f.autoId && !upsert) {
      if (fd && coll.properties['allow_insert_auto_id'] !== 'true') {
        throw quiverError(
          'DataInvalid',
          `the value of primary key field ${f.name} should not be specified when autoID is enabled; set collection property allow_insert_auto_id=true to allow it`,
        );
      }
      if (!fd) continue;
    }
    const given = fd ? undefined : supplied?.get(f.name);
    if (given) {
      columns.set(f.name, given);
      continue;
    }
    if (f.isDynamic && !fd) {
      columns.set(f.name, { kind: 'json', data: new Array(numRows).fill({}) });
      continue;
    }
    columns.set(f.name, fieldDataToColumn(fd, f, numRows, timezone));
  }
  for (const name of byName.keys()) {
    throw quiverError(
      'DataInvalid',
      `field ${name} is not in the schema of collection ${coll.name}${coll.schema.enableDynamicField ? '' : ' (dynamic field is disabled)'}`,
    );
  }
  computeFunctionOutputs(coll.schema, columns, numRows);
  const dyn = columns.get(DYNAMIC_FIELD_NAME);
  if (dyn && dyn.kind === 'json') {
    const names = new Set(coll.schema.fields.map((f) => f.name));
    dyn.data.forEach((v, i) => {
      if (v === undefined) return;
      if (v === null || typeof v !== 'object' || Array.isArray(v)) throw quiverError('DataInvalid', `dynamic field data at row ${i} must be a JSON object`);
      for (const k of Object.keys(v)) if (names.has(k)) throw quiverError('DataInvalid', `dynamic field key ${k} at row ${i} duplicates a schema field`);
    });
  }
  return { columns, numRows };
}
