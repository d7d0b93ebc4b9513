import { quiverError } from '../common/errors.js';
import type { CollectionRecord } from '../coord/records.js';
import type { QueryNodeApi } from '../querynode/types.js';
import { concatColumns, takeRows } from '../schema/columns.js';
import type { Column, FieldSchema } from '../schema/types.js';
import { columnLength, DYNAMIC_FIELD_NAME } from '../schema/types.js';
import { gatherColumn } from '../segcore/collection-runtime.js';
import { fieldDataToColumn, fillColumn } from './field-data.js';
import { requestColumns } from './write-columns.js';

/* eslint-disable @typescript-eslint/no-explicit-any */

/**
 * Partial upsert (Milvus 2.6 `partial_update`): the request carries the pk and some fields. A row whose
 * pk exists keeps the fields the request leaves out (read from the live row), and its dynamic keys are
 * merged (the request's keys win); a new pk is inserted with the left-out fields at their default or
 * null, which fails for a field that has neither, as an insert would. The merged rows then take the
 * normal upsert path, so the write is one atomic upsert at one timestamp.
 *
 * `field_ops` other than REPLACE (ARRAY_APPEND / ARRAY_REMOVE) are refused with a clear error.
 */
export async function partialUpsertColumns(
  query: Pick<QueryNodeApi, 'query'>,
  coll: CollectionRecord,
  req: any,
): Promise<{ columns: Map<string, Column>; numRows: number }> {
  for (const op of req.field_ops ?? []) {
    if (op?.op !== undefined && op.op !== 'REPLACE' && op.op !== 0) {
      throw quiverError('ParameterInvalid', `partial update op ${String(op.op)} on field ${op.field_name} is not supported by Quiver; supported: REPLACE`);
    }
  }
  const numRows = Number(req.num_rows ?? 0);
  if (!Number.isInteger(numRows) || numRows <= 0) throw quiverError('DataInvalid', `num_rows (${req.num_rows}) must be a positive integer`);
  const given = new Map<string, any>();
  for (const fd of req.fields_data ?? []) given.set(fd.is_dynamic ? DYNAMIC_FIELD_NAME : fd.field_name, fd);
  const pk = coll.schema.fields.find((f) => f.isPrimaryKey)!;
  if (!given.has(pk.name)) throw quiverError('DataInvalid', `a partial update needs the primary key field ${pk.name} in every row`);
  for (const name of given.keys()) {
    if (!coll.schema.fields.some((f) => f.name === name)) {
      throw quiverError('DataInvalid', `field ${name} is not in the schema of collection ${coll.name}`);
    }
  }
  const pkCol = fieldDataToColumn(given.get(pk.name), pk, numRows);
  const pks = Array.from(pkCol.data as ArrayLike<bigint | string>);
  // Live rows of these pks (the latest version of each: deleted and superseded rows are invisible).
  const refs = await query.query(coll.id, {
    filter: `${pk.name} in {pks}`,
    templates: { pks },
    partitionNames: req.partition_name ? [req.partition_name] : [],
    offset: 0,
    limit: undefined,
  });
  const oldPk = gatherColumn(refs, pk.name);
  const oldRow = new Map<bigint | string, number>();
  if (oldPk) Array.from(oldPk.data as ArrayLike<bigint | string>).forEach((v, i) => oldRow.set(v, i));
  const source = pks.map((v) => oldRow.get(v) ?? -1);

  // The rows as a whole request: the given fields as sent, the others filled from the old rows.
  const merged: Map<string, Column> = new Map();
  for (const f of coll.schema.fields) {
    if (f.isPrimaryKey) continue;
    const fd = given.get(f.name);
    if (fd && !f.isDynamic) continue;
    merged.set(f.name, leftOut(f, refs.length > 0 ? gatherColumn(refs, f.name) : undefined, source, fd, numRows));
  }
  // Validate the given fields by the insert rules: a request of only them, the rest supplied by `merged`.
  const { columns } = requestColumns(
    coll,
    { ...req, fields_data: (req.fields_data ?? []).filter((fd: any) => !fd.is_dynamic), num_rows: numRows },
    true,
    merged,
  );
  return { columns, numRows };
}

/** A left-out field's column: the old row's value where the pk exists, else the default or null. */
function leftOut(f: FieldSchema, old: Column | undefined, source: readonly number[], fd: any, numRows: number): Column {
  const isNew = source.some((s) => s < 0);
  if (isNew && !f.isDynamic && f.defaultValue === undefined && !f.nullable) {
    const row = source.findIndex((s) => s < 0);
    throw quiverError('DataInvalid', `partial update: row ${row} has a new primary key, so field ${f.name} (neither nullable nor defaulted) must be given`);
  }
  if (f.isDynamic) {
    const given = fd ? fieldDataToColumn(fd, f, numRows) : undefined;
    const data = source.map((s, i) => {
      const before = s >= 0 && old ? ((old.data as unknown[])[s] as Record<string, unknown> | undefined) : undefined;
      const now = given ? ((given.data as unknown[])[i] as Record<string, unknown> | undefined) : undefined;
      return { ...(before ?? {}), ...(now ?? {}) };
    });
    return { kind: 'json', data };
  }
  const fill = fillColumn(f, 1, f.defaultValue === undefined ? undefined : f.dataType === 'Int64' ? BigInt(f.defaultValue as string) : f.defaultValue);
  const pool = old ? concatColumns([old, fill]) : fill;
  const fillAt = old ? columnLength(old) : 0;
  return takeRows(
    pool,
    source.map((s) => (s >= 0 ? s : fillAt)),
  );
}
