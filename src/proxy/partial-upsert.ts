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
 * `field_ops` name an op per given field: REPLACE (the default), ARRAY_APPEND (the row's array becomes its
 * old elements followed by the given ones; over `max_capacity` fails the request naming the row) and
 * ARRAY_REMOVE (every old element equal to one of the given ones is removed). For a new pk, or an old value
 * that is null, APPEND stores the given elements and REMOVE stores an empty array. The array ops apply
 * to Array fields only, and each op must name a field the rows carry.
 */
export async function partialUpsertColumns(
  query: Pick<QueryNodeApi, 'query'>,
  coll: CollectionRecord,
  req: any,
): Promise<{ columns: Map<string, Column>; numRows: number }> {
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
  const ops = arrayOps(coll, req.field_ops ?? [], given);
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
  for (const [name, op] of ops) {
    const f = coll.schema.fields.find((x) => x.name === name)!;
    const old = refs.length > 0 ? gatherColumn(refs, name) : undefined;
    columns.set(name, applyArrayOp(f, op, columns.get(name)!, old, source));
  }
  return { columns, numRows };
}

type ArrayOp = 'ARRAY_APPEND' | 'ARRAY_REMOVE';
const OP_NAMES = ['REPLACE', 'ARRAY_APPEND', 'ARRAY_REMOVE'] as const;

/** The request's array ops by field (REPLACE entries dropped), validated against the schema and the rows. */
function arrayOps(coll: CollectionRecord, fieldOps: readonly any[], given: ReadonlyMap<string, unknown>): Map<string, ArrayOp> {
  const out = new Map<string, ArrayOp>();
  const seen = new Set<string>();
  for (const fo of fieldOps) {
    const name = String(fo?.field_name ?? '');
    const op = typeof fo?.op === 'number' ? OP_NAMES[fo.op] : fo?.op === undefined ? 'REPLACE' : String(fo.op);
    if (op === undefined || !(OP_NAMES as readonly string[]).includes(op)) {
      throw quiverError('ParameterInvalid', `partial update op ${String(fo?.op)} on field ${name} is unknown; valid: ${OP_NAMES.join(', ')}`);
    }
    if (seen.has(name)) throw quiverError('ParameterInvalid', `field_ops names field ${name} more than once`);
    seen.add(name);
    const f = coll.schema.fields.find((x) => x.name === name);
    if (!f) throw quiverError('ParameterInvalid', `field_ops names field ${name}, which is not in the schema of collection ${coll.name}`);
    if (!given.has(name)) throw quiverError('ParameterInvalid', `field_ops names field ${name}, but the rows do not carry it`);
    if (op === 'REPLACE') continue;
    if (f.dataType !== 'Array') {
      throw quiverError('ParameterInvalid', `partial update op ${op} applies to Array fields only; field ${name} is ${f.dataType}`);
    }
    out.set(name, op as ArrayOp);
  }
  return out;
}

/** The stored arrays after `op`: old elements (from the live row at `source[i]`, none for a new pk) with the given ones. */
function applyArrayOp(f: FieldSchema, op: ArrayOp, given: Column, old: Column | undefined, source: readonly number[]): Column {
  if (given.kind !== 'array') throw new Error(`field ${f.name}: expected an array column`);
  const oldArr = old?.kind === 'array' ? old : undefined;
  // Float elements are stored as float32: compare at that precision, so a given 0.1 removes a stored 0.1.
  const f32 = given.elementType === 'Float';
  const key = (v: unknown) =>
    typeof v === 'bigint' ? `b${v}` : typeof v === 'string' ? `s${v}` : `n${String(f32 && typeof v === 'number' ? Math.fround(v) : v)}`;
  const valid = given.valid ? new Uint8Array(given.data.length) : undefined;
  const data = given.data.map((now, i) => {
    const s = source[i]!;
    const before = s >= 0 && oldArr && (oldArr.valid === undefined || oldArr.valid[s] === 1) ? oldArr.data[s]! : [];
    const nowValid = given.valid === undefined || given.valid[i] === 1;
    if (valid) valid[i] = 1; // an array op always leaves an array (an empty one at worst), never a null
    if (!nowValid) return before; // a null operand changes nothing
    if (op === 'ARRAY_APPEND') {
      const joined = [...before, ...now];
      if (f.maxCapacity !== undefined && joined.length > f.maxCapacity) {
        throw quiverError(
          'DataInvalid',
          `ARRAY_APPEND on field ${f.name} at row ${i}: ${before.length} + ${now.length} elements exceed max capacity ${f.maxCapacity}`,
        );
      }
      return joined;
    }
    const drop = new Set(now.map(key));
    return before.filter((v) => !drop.has(key(v)));
  });
  return { kind: 'array', elementType: given.elementType, data, valid };
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
