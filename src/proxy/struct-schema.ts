import { quiverError } from '../common/errors.js';
import { NUM_TO_TYPE } from './schema-proto.js';
import type { FieldSchema, ScalarType, StructSubField } from '../schema/types.js';
import { vectorDimOf } from './vector-schema.js';

/**
 * proto `schema.StructArrayFieldSchema` ⇄ an ArrayOfStruct field. The SDK sends each sub-field as a
 * FieldSchema whose data_type is Array (scalar sub-fields) or ArrayOfVector (vector sub-fields) and whose
 * element_type is the sub-field's own type; max_capacity travels in every sub-field's type_params (the
 * struct's own type_params may carry it too). Describe answers in the same shape, which the SDK turns back
 * into `{ data_type: Array, element_type: Struct, fields: [...] }`.
 */

/* eslint-disable @typescript-eslint/no-explicit-any */

const SUB_SCALARS: readonly ScalarType[] = ['Bool', 'Int8', 'Int16', 'Int32', 'Int64', 'Float', 'Double', 'VarChar'];
const CAPACITY_MAX = 4096;

function bad(reason: string): never {
  throw quiverError('ParameterInvalid', reason);
}

function kvs(list: any[] | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const kv of list ?? []) if (kv && typeof kv.key === 'string') out[kv.key] = String(kv.value ?? '');
  return out;
}

function typeName(v: unknown): string {
  return typeof v === 'number' ? (NUM_TO_TYPE[v] ?? String(v)) : String(v ?? 'None');
}

/**
 * Parses one struct array field. `validateName` is the shared name rule (passed in to keep this module
 * free of schema-proto's imports).
 */
export function parseStructArrayField(s: any, validateName: (kind: string, name: unknown) => string): Omit<FieldSchema, 'fieldId'> {
  const name = validateName('field', s.name);
  const rawSubs: any[] = s.fields ?? [];
  if (rawSubs.length === 0) bad(`struct field ${name} has no sub-fields`);
  const structParams = kvs(s.type_params);
  let maxCapacity: number | undefined;
  const takeCapacity = (raw: string | undefined, where: string): void => {
    if (raw === undefined || raw === '') return;
    const n = Number(raw);
    if (!Number.isInteger(n) || n < 1 || n > CAPACITY_MAX) bad(`invalid max_capacity ${raw} of ${where}: must be an integer in [1, ${CAPACITY_MAX}]`);
    if (maxCapacity !== undefined && n !== maxCapacity)
      bad(`sub-fields of struct field ${name} disagree on max_capacity (${maxCapacity} and ${n} at ${where})`);
    maxCapacity = n;
  };
  takeCapacity(structParams['max_capacity'], `struct field ${name}`);
  const seen = new Set<string>();
  const subs: Omit<StructSubField, 'fieldId'>[] = rawSubs.map((f) => {
    const sub = validateName('field', f.name);
    const path = `${name}[${sub}]`;
    if (seen.has(sub)) bad(`duplicated sub-field name ${sub} in struct field ${name}`);
    seen.add(sub);
    const params = kvs(f.type_params);
    takeCapacity(params['max_capacity'], `sub-field ${path}`);
    const outer = typeName(f.data_type);
    const inner = typeName(f.element_type);
    let dataType: StructSubField['dataType'];
    if (outer === 'Array' && (SUB_SCALARS as readonly string[]).includes(inner)) dataType = inner as ScalarType;
    else if (outer === 'ArrayOfVector' && inner === 'FloatVector') dataType = 'FloatVector';
    else if (outer === 'ArrayOfVector') bad(`vector type ${inner} of sub-field ${path} is not supported in a struct by Quiver; supported: FloatVector`);
    else if ((SUB_SCALARS as readonly string[]).includes(outer) || outer === 'FloatVector') dataType = outer as StructSubField['dataType'];
    else
      bad(
        `data type ${outer === 'Array' ? inner : outer} of sub-field ${path} is not supported in a struct; supported: ${SUB_SCALARS.join(', ')}, FloatVector`,
      );
    if (f.is_primary_key) bad(`sub-field ${path} cannot be a primary key`);
    if (f.is_partition_key || f.is_clustering_key) bad(`sub-field ${path} cannot be a partition or clustering key`);
    if (f.default_value?.data) bad(`sub-field ${path} cannot have a default value`);
    const { max_capacity: _ignored, ...rest } = params;
    void _ignored;
    let maxLength: number | undefined;
    let dim: number | undefined;
    if (dataType === 'VarChar') {
      const raw = params['max_length'];
      const n = Number(raw);
      if (raw === undefined || raw === '') bad(`type param(max_length) should be specified for the sub-field(${path})`);
      if (!Number.isInteger(n) || n < 1 || n > 65535) bad(`invalid max_length ${raw} of sub-field ${path}: must be an integer in [1, 65535]`);
      maxLength = n;
    }
    if (dataType === 'FloatVector') dim = vectorDimOf('FloatVector', params, path);
    return { name: sub, description: String(f.description ?? ''), dataType, maxLength, dim, typeParams: rest };
  });
  if (maxCapacity === undefined) bad(`type param(max_capacity) should be specified for the struct field(${name})`);
  return {
    name,
    description: String(s.description ?? ''),
    dataType: 'ArrayOfStruct',
    isPrimaryKey: false,
    autoId: false,
    nullable: Boolean(s.nullable),
    maxCapacity,
    structFields: subs as StructSubField[],
    isDynamic: false,
    isPartitionKey: false,
    isClusteringKey: false,
    typeParams: structParams,
  };
}

export function structFieldToProto(f: FieldSchema): Record<string, unknown> {
  const cap = String(f.maxCapacity);
  return {
    fieldID: String(f.fieldId),
    name: f.name,
    description: f.description,
    type_params: Object.entries(f.typeParams).map(([key, value]) => ({ key, value })),
    nullable: f.nullable,
    fields: (f.structFields ?? []).map((s) => ({
      fieldID: String(s.fieldId),
      name: s.name,
      is_primary_key: false,
      description: s.description,
      data_type: s.dataType === 'FloatVector' ? 'ArrayOfVector' : 'Array',
      element_type: s.dataType,
      type_params: [...Object.entries(s.typeParams).map(([key, value]) => ({ key, value })), { key: 'max_capacity', value: cap }],
      index_params: [],
      autoID: false,
      state: 'FieldCreated',
      is_dynamic: false,
      is_partition_key: false,
      is_clustering_key: false,
      nullable: f.nullable,
      is_function_output: false,
    })),
  };
}

/**
 * Refuses a `struct[sub]` path (the way Milvus names a struct's sub-field in indexes and searches) with a
 * reason saying what is not supported, instead of "field not found".
 */
export function refuseStructPath(fields: readonly FieldSchema[], path: string, what: string): void {
  const m = /^([A-Za-z_][A-Za-z0-9_]*)\[([A-Za-z_][A-Za-z0-9_]*)\]$/.exec(path);
  const struct = fields.find((f) => f.dataType === 'ArrayOfStruct' && f.name === (m ? m[1] : path));
  if (!struct) return;
  throw quiverError(
    'ParameterInvalid',
    `${what} on ${path} (Array of Struct field ${struct.name}) is not supported by Quiver: struct arrays are stored and returned, their sub-fields are not indexed, searched (embedding lists / MAX_SIM) or filtered`,
  );
}
