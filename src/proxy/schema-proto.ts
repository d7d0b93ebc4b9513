import { quiverError } from '../common/errors.js';
import type { CollectionRecord } from '../coord/records.js';
import type { DataType, FieldSchema, ScalarType, ScalarValue } from '../schema/types.js';
import { DYNAMIC_FIELD_NAME, isVectorType, VECTOR_TYPES } from '../schema/types.js';
import { geoTimeDefaultProto, parseGeoTimeDefault } from './geo-time-data.js';
import { checkVectorFieldCount, vectorDimOf } from './vector-schema.js';
import { parseStructArrayField, structFieldToProto } from './struct-schema.js';
import type { FunctionSchema } from '../schema/functions.js';
import { functionsToProto, parseFunctions, validateTextParams } from '../text/functions.js';

/* eslint-disable @typescript-eslint/no-explicit-any */

/**
 * proto `schema.CollectionSchema` ⇄ our schema, with Milvus's validation rules (names, one primary key,
 * dims, max_length, max_capacity, default values). Every rejection names the field and the bad value.
 */

const SUPPORTED: readonly DataType[] = [
  'Bool',
  'Int8',
  'Int16',
  'Int32',
  'Int64',
  'Float',
  'Double',
  'VarChar',
  'JSON',
  'Array',
  'Geometry',
  'Timestamptz',
  ...VECTOR_TYPES,
];
const SCALARS: readonly ScalarType[] = ['Bool', 'Int8', 'Int16', 'Int32', 'Int64', 'Float', 'Double', 'VarChar'];
const NAME_MAX = 255;

/** Collection, partition, alias, database, snapshot and field names share one rule set. */
export function validateName(kind: string, name: unknown): string {
  const bad = (why: string): never => {
    throw quiverError(kind === 'field' ? 'FieldInvalidName' : 'ParameterInvalid', `Invalid ${kind} name: ${JSON.stringify(name)}. ${why}`);
  };
  if (typeof name !== 'string' || name.trim() === '') bad(`the ${kind} name should not be empty`);
  const s = name as string;
  if (s.length > NAME_MAX) bad(`the length of a ${kind} name must be less than ${NAME_MAX} characters`);
  const first = s[0]!;
  if (!/[A-Za-z_]/.test(first)) bad(`the first character of a ${kind} name must be an underscore or letter`);
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(s)) bad(`${kind} name can only contain numbers, letters and underscores`);
  return s;
}

function dataTypeOf(v: unknown, field: string): DataType {
  const name = typeof v === 'number' ? NUM_TO_TYPE[v] : String(v);
  if (name === 'String') throw quiverError('ParameterInvalid', `string data type not supported yet, please use VarChar type instead (field ${field})`);
  if (!name || !(SUPPORTED as readonly string[]).includes(name)) {
    throw quiverError('ParameterInvalid', `data type ${name ?? v} of field ${field} is not supported by Quiver; supported: ${SUPPORTED.join(', ')}`);
  }
  return name as DataType;
}

/** The proto DataType enum's numbers by name (the SDK may send either form). */
export const NUM_TO_TYPE: Record<number, string> = {
  0: 'None',
  1: 'Bool',
  2: 'Int8',
  3: 'Int16',
  4: 'Int32',
  5: 'Int64',
  10: 'Float',
  11: 'Double',
  20: 'String',
  21: 'VarChar',
  22: 'Array',
  23: 'JSON',
  24: 'Geometry',
  25: 'Text',
  26: 'Timestamptz',
  100: 'BinaryVector',
  101: 'FloatVector',
  102: 'Float16Vector',
  103: 'BFloat16Vector',
  104: 'SparseFloatVector',
  105: 'Int8Vector',
  106: 'ArrayOfVector',
  200: 'ArrayOfStruct',
  201: 'Struct',
};

function kvs(list: any[] | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const kv of list ?? []) if (kv && typeof kv.key === 'string') out[kv.key] = String(kv.value ?? '');
  return out;
}

function intParam(params: Record<string, string>, key: string, field: string, lo: number, hi: number): number {
  const raw = params[key];
  if (raw === undefined || raw === '') throw quiverError('ParameterInvalid', `type param(${key}) should be specified for the field(${field})`);
  const n = Number(raw);
  if (!Number.isInteger(n) || n < lo || n > hi) {
    throw quiverError('ParameterInvalid', `invalid ${key} ${raw} of field ${field}: must be an integer in [${lo}, ${hi}]`);
  }
  return n;
}

function defaultValueOf(dv: any, t: DataType, field: string): ScalarValue | undefined {
  if (!dv || !dv.data) return undefined;
  const v = dv[dv.data];
  const bad = (): never => {
    throw quiverError('ParameterInvalid', `type (${t}) of field (${field}) is not equal to the type(${dv.data}) of default value`);
  };
  switch (t) {
    case 'Bool':
      return dv.data === 'bool_data' ? Boolean(v) : bad();
    case 'Int8':
    case 'Int16':
    case 'Int32': {
      if (dv.data !== 'int_data') return bad();
      const bits = t === 'Int8' ? 7 : t === 'Int16' ? 15 : 31;
      const n = Number(v);
      if (n < -(2 ** bits) || n >= 2 ** bits) {
        throw quiverError('ParameterInvalid', `default value ${n} of field ${field} is out of range for ${t} [${-(2 ** bits)}, ${2 ** bits - 1}]`);
      }
      return n;
    }
    case 'Int64':
      return dv.data === 'long_data' ? BigInt(v) : bad();
    case 'Float':
      return dv.data === 'float_data' ? Number(v) : bad();
    case 'Double':
      return dv.data === 'double_data' ? Number(v) : bad();
    case 'VarChar':
      return dv.data === 'string_data' ? String(v) : bad();
    case 'Geometry':
    case 'Timestamptz':
      return parseGeoTimeDefault(dv, field, t);
    default:
      throw quiverError('ParameterInvalid', `default value is not supported for ${t} field ${field}`);
  }
}

export interface ParsedSchema {
  fields: Omit<FieldSchema, 'fieldId'>[];
  description: string;
  enableDynamicField: boolean;
  autoId: boolean;
  functions: FunctionSchema[];
}

export function parseFieldSchema(f: any, schemaAutoId: boolean): Omit<FieldSchema, 'fieldId'> {
  const name = validateName('field', f.name);
  if (name === DYNAMIC_FIELD_NAME) throw quiverError('FieldInvalidName', `field name ${name} is reserved for the dynamic field`);
  const dataType = dataTypeOf(f.data_type, name);
  const typeParams = kvs(f.type_params);
  const isPrimaryKey = Boolean(f.is_primary_key);
  const autoId = isPrimaryKey && Boolean(f.autoID || schemaAutoId);
  let dim: number | undefined;
  let maxLength: number | undefined;
  let maxCapacity: number | undefined;
  let elementType: ScalarType | undefined;
  if (isVectorType(dataType)) dim = vectorDimOf(dataType, typeParams, name);
  if (dataType === 'VarChar') maxLength = intParam(typeParams, 'max_length', name, 1, 65535);
  if (dataType === 'Array') {
    const et = dataTypeOf(f.element_type, name);
    if (!(SCALARS as readonly string[]).includes(et)) {
      throw quiverError('ParameterInvalid', `element type ${et} of array field ${name} is not supported; supported: ${SCALARS.join(', ')}`);
    }
    elementType = et as ScalarType;
    maxCapacity = intParam(typeParams, 'max_capacity', name, 1, 4096);
    if (elementType === 'VarChar') maxLength = intParam(typeParams, 'max_length', name, 1, 65535);
  }
  const nullable = Boolean(f.nullable);
  if (isPrimaryKey) {
    if (dataType !== 'Int64' && dataType !== 'VarChar') {
      throw quiverError('ParameterInvalid', `the data type of primary key ${name} should be Int64 or VarChar, got ${dataType}`);
    }
    if (nullable) throw quiverError('ParameterInvalid', `primary key field ${name} should not be nullable`);
    if (autoId && dataType !== 'Int64')
      throw quiverError('ParameterInvalid', `autoID is only supported on an Int64 primary key, field ${name} is ${dataType}`);
  }
  const defaultValue = defaultValueOf(f.default_value, dataType, name);
  if (defaultValue !== undefined && isPrimaryKey) throw quiverError('ParameterInvalid', `primary key field ${name} cannot have a default value`);
  // In UTF-8 bytes, as every VarChar value is checked.
  if (typeof defaultValue === 'string' && maxLength !== undefined && Buffer.byteLength(defaultValue, 'utf8') > maxLength) {
    throw quiverError(
      'ParameterInvalid',
      `the length (${Buffer.byteLength(defaultValue, 'utf8')} bytes) of the default value of field ${name} exceeds max_length (${maxLength})`,
    );
  }
  validateTextParams({ name, dataType, typeParams });
  return {
    name,
    description: String(f.description ?? ''),
    dataType,
    isPrimaryKey,
    autoId,
    nullable,
    defaultValue: typeof defaultValue === 'bigint' ? (defaultValue.toString() as unknown as ScalarValue) : defaultValue,
    elementType,
    maxLength,
    maxCapacity,
    dim,
    isDynamic: false,
    isPartitionKey: Boolean(f.is_partition_key),
    isClusteringKey: Boolean(f.is_clustering_key),
    typeParams,
  };
}

export function parseCollectionSchema(s: any): ParsedSchema {
  const rawFields: any[] = s.fields ?? [];
  if (rawFields.length === 0) throw quiverError('ParameterInvalid', 'schema has no fields');
  const fields = rawFields.filter((f) => !f.is_dynamic).map((f) => parseFieldSchema(f, Boolean(s.autoID)));
  for (const sf of s.struct_array_fields ?? []) fields.push(parseStructArrayField(sf, validateName));
  const seen = new Set<string>();
  for (const f of fields) {
    if (seen.has(f.name)) throw quiverError('ParameterInvalid', `duplicated field name ${f.name} found`);
    seen.add(f.name);
  }
  const pks = fields.filter((f) => f.isPrimaryKey);
  if (pks.length === 0) throw quiverError('ParameterInvalid', 'schema does not contain a primary key field');
  if (pks.length > 1) throw quiverError('ParameterInvalid', `there are more than one primary key, field names: ${pks.map((f) => f.name).join(', ')}`);
  checkVectorFieldCount(fields.filter((f) => isVectorType(f.dataType)).map((f) => f.name));
  if (!fields.some((f) => isVectorType(f.dataType))) throw quiverError('ParameterInvalid', 'schema does not contain a vector field');
  if (fields.filter((f) => f.isPartitionKey).length > 1) throw quiverError('ParameterInvalid', 'there are more than one partition key');
  const enableDynamicField = Boolean(s.enable_dynamic_field);
  if (enableDynamicField) {
    fields.push({
      name: DYNAMIC_FIELD_NAME,
      description: 'dynamic schema',
      dataType: 'JSON',
      isPrimaryKey: false,
      autoId: false,
      nullable: false,
      isDynamic: true,
      isPartitionKey: false,
      isClusteringKey: false,
      typeParams: {},
    });
  }
  const functions = parseFunctions(s.functions, fields);
  return { fields, description: String(s.description ?? ''), enableDynamicField, autoId: pks[0]!.autoId, functions };
}

/** The ValueField member a scalar field's default value travels in (Geometry / Timestamptz: see geoTimeDefaultProto). */
export const DEFAULT_VALUE_MEMBER: Readonly<Record<string, string>> = {
  Bool: 'bool_data',
  Int8: 'int_data',
  Int16: 'int_data',
  Int32: 'int_data',
  Int64: 'long_data',
  Float: 'float_data',
  Double: 'double_data',
  VarChar: 'string_data',
};

export function fieldToProto(f: FieldSchema, indexParams: Record<string, string>): Record<string, unknown> {
  const out: Record<string, unknown> = {
    fieldID: String(f.fieldId),
    name: f.name,
    is_primary_key: f.isPrimaryKey,
    description: f.description,
    data_type: f.dataType,
    type_params: Object.entries(f.typeParams).map(([key, value]) => ({ key, value })),
    index_params: Object.entries(indexParams).map(([key, value]) => ({ key, value })),
    autoID: f.autoId,
    state: 'FieldCreated',
    element_type: f.elementType ?? 'None',
    is_dynamic: f.isDynamic,
    is_partition_key: f.isPartitionKey,
    is_clustering_key: f.isClusteringKey,
    nullable: f.nullable,
    is_function_output: false,
  };
  if (f.defaultValue !== undefined && (f.dataType === 'Geometry' || f.dataType === 'Timestamptz')) {
    out['default_value'] = geoTimeDefaultProto(f);
  } else if (f.defaultValue !== undefined) {
    const m = DEFAULT_VALUE_MEMBER[f.dataType]!;
    out['default_value'] = { [m]: f.dataType === 'Int64' ? String(f.defaultValue) : f.defaultValue };
  }
  return out;
}

export function schemaToProto(coll: CollectionRecord, indexParamsByField: Map<number, Record<string, string>>): Record<string, unknown> {
  const outputs = new Set((coll.schema.functions ?? []).flatMap((fn) => fn.outputFieldNames));
  return {
    name: coll.name,
    description: coll.schema.description,
    autoID: coll.schema.autoId,
    fields: coll.schema.fields
      .filter((f) => !f.isDynamic && f.dataType !== 'ArrayOfStruct')
      .map((f) => ({ ...fieldToProto(f, indexParamsByField.get(f.fieldId) ?? {}), is_function_output: outputs.has(f.name) })),
    enable_dynamic_field: coll.schema.enableDynamicField,
    properties: [],
    functions: functionsToProto(coll.schema, (n) => coll.schema.fields.find((f) => f.name === n)?.fieldId),
    struct_array_fields: coll.schema.fields.filter((f) => f.dataType === 'ArrayOfStruct').map(structFieldToProto),
    dbName: '',
    version: 0,
  };
}
