/**
 * Scalar index types and their parameters, with Milvus's rules for which type fits which field:
 *
 *   INVERTED   Bool, Int8..Int64, Float, Double, VarChar, Array (its elements); JSON with json_path + json_cast_type
 *   STL_SORT   Int8..Int64, Float, Double, VarChar (Milvus 2.6 accepts VarChar), Timestamptz
 *   BITMAP     Bool, Int8..Int64, VarChar, Array of those; never Float/Double, JSON or the primary key
 *   Trie       VarChar
 *   RTREE      Geometry, its only index (index/scalar/rtree-index.ts)
 *   AUTOINDEX  INVERTED (what Milvus picks for a scalar field); RTREE for Geometry
 *
 * A JSON field takes only a path index: `json_path` names a key path inside the field (`meta["a"]["b"]`)
 * and `json_cast_type` the type its values are indexed as; rows whose value does not cast are not indexed
 * (a filter still finds them by scan only if they could match, which they cannot: see expr/index-plan.ts).
 */

import { quiverError } from '../../common/errors.js';
import type { DataType, FieldSchema, ScalarType } from '../../schema/types.js';

export type ScalarIndexType = 'INVERTED' | 'STL_SORT' | 'BITMAP' | 'Trie' | 'RTREE';
export const SCALAR_INDEX_TYPES: readonly ScalarIndexType[] = ['INVERTED', 'STL_SORT', 'BITMAP', 'Trie', 'RTREE'];

export type JsonCastType = 'BOOL' | 'DOUBLE' | 'VARCHAR' | 'ARRAY_BOOL' | 'ARRAY_DOUBLE' | 'ARRAY_VARCHAR';
export const JSON_CAST_TYPES: readonly JsonCastType[] = ['BOOL', 'DOUBLE', 'VARCHAR', 'ARRAY_BOOL', 'ARRAY_DOUBLE', 'ARRAY_VARCHAR'];

/** What a scalar index record keeps to build its files (stored as the record's buildParams). */
export interface ScalarBuildParams {
  /** JSON path indexes: the key path inside the JSON field (keys as strings, array positions as numbers). */
  readonly jsonPath?: readonly (string | number)[] | undefined;
  readonly jsonCastType?: JsonCastType | undefined;
}

export interface ScalarIndexParams extends ScalarBuildParams {
  readonly type: ScalarIndexType;
}

export function isScalarIndexType(t: string): t is ScalarIndexType {
  return (SCALAR_INDEX_TYPES as readonly string[]).includes(t);
}

const INTS: readonly DataType[] = ['Int8', 'Int16', 'Int32', 'Int64'];
const NUMERIC: readonly DataType[] = [...INTS, 'Float', 'Double'];

/** The index types a field of this type (and element type, for arrays) accepts. */
export function scalarIndexTypesFor(field: Pick<FieldSchema, 'dataType' | 'elementType' | 'isPrimaryKey'>): readonly ScalarIndexType[] {
  const t = field.dataType;
  if (t === 'JSON') return ['INVERTED'];
  if (t === 'Geometry') return ['RTREE'];
  if (t === 'Array') {
    const e = field.elementType;
    return e !== undefined && bitmapElement(e) ? ['INVERTED', 'BITMAP'] : ['INVERTED'];
  }
  const out: ScalarIndexType[] = ['INVERTED'];
  if (NUMERIC.includes(t) || t === 'VarChar' || t === 'Timestamptz') out.push('STL_SORT');
  if (!field.isPrimaryKey && (t === 'Bool' || INTS.includes(t) || t === 'VarChar')) out.push('BITMAP');
  if (t === 'VarChar') out.push('Trie');
  return out;
}

function bitmapElement(e: ScalarType): boolean {
  return e === 'Bool' || INTS.includes(e) || e === 'VarChar';
}

/**
 * Validates `index_type` + params for a scalar field. Errors are ParameterInvalid naming the field, its
 * type, the type asked for and the valid choices.
 */
export function parseScalarIndexParams(
  field: Pick<FieldSchema, 'name' | 'dataType' | 'elementType' | 'isPrimaryKey'>,
  indexType: string | undefined,
  params: Readonly<Record<string, string | number>>,
): ScalarIndexParams {
  const raw = (indexType ?? '').trim();
  const upper = raw.toUpperCase();
  const valid = scalarIndexTypesFor(field);
  const typeName = field.dataType === 'Array' ? `Array of ${field.elementType ?? '?'}` : field.dataType;
  const auto: ScalarIndexType = field.dataType === 'Geometry' ? 'RTREE' : 'INVERTED';
  const type: ScalarIndexType | undefined = upper === '' || upper === 'AUTOINDEX' ? auto : SCALAR_INDEX_TYPES.find((s) => s.toUpperCase() === upper);
  if (type === undefined || !valid.includes(type)) {
    throw quiverError(
      'ParameterInvalid',
      `index type ${raw} is not supported for field ${field.name} (${typeName}); valid index types: ${[...valid, 'AUTOINDEX'].join(', ')}`,
    );
  }
  const metric = params['metric_type'];
  if (metric !== undefined && String(metric).trim() !== '') {
    throw quiverError(
      'ParameterInvalid',
      `metric_type ${String(metric)} is invalid for scalar field ${field.name} (${typeName}): scalar indexes take no metric`,
    );
  }
  const pathText = params['json_path'];
  const castText = params['json_cast_type'];
  if (field.dataType !== 'JSON') {
    if (pathText !== undefined || castText !== undefined) {
      throw quiverError('ParameterInvalid', `json_path and json_cast_type apply to JSON fields only; field ${field.name} is ${typeName}`);
    }
    return { type };
  }
  if (pathText === undefined || String(pathText).trim() === '' || castText === undefined || String(castText).trim() === '') {
    throw quiverError(
      'ParameterInvalid',
      `an index on JSON field ${field.name} needs json_path (e.g. ${field.name}["key"]) and json_cast_type (one of ${JSON_CAST_TYPES.join(', ')})`,
    );
  }
  const cast = String(castText).trim().toUpperCase();
  const jsonCastType = JSON_CAST_TYPES.find((c) => c === cast);
  if (jsonCastType === undefined) {
    throw quiverError(
      'ParameterInvalid',
      `json_cast_type ${String(castText)} is invalid for JSON field ${field.name}; valid: ${JSON_CAST_TYPES.join(', ')}`,
    );
  }
  return { type, jsonPath: parseJsonPath(field.name, String(pathText)), jsonCastType };
}

/**
 * Parses `field["a"][0]["b"]` (the field name, then bracketed string keys or integer positions). The field
 * name alone indexes the whole value.
 */
export function parseJsonPath(fieldName: string, text: string): (string | number)[] {
  const t = text.trim();
  const bad = (why: string): never => {
    throw quiverError(
      'ParameterInvalid',
      `json_path ${JSON.stringify(text)} is invalid for JSON field ${fieldName}: ${why}; e.g. ${fieldName}["key"]["sub"]`,
    );
  };
  if (!t.startsWith(fieldName)) bad(`it must start with the field name ${fieldName}`);
  const out: (string | number)[] = [];
  let i = fieldName.length;
  while (i < t.length) {
    if (t[i] !== '[') bad(`expected [ at offset ${i}`);
    i++;
    if (t[i] === '"') {
      let key = '';
      i++;
      while (i < t.length && t[i] !== '"') {
        if (t[i] === '\\' && i + 1 < t.length) i++;
        key += t[i];
        i++;
      }
      if (t[i] !== '"') bad('unterminated key');
      i++;
      out.push(key);
    } else {
      const m = /^\d+/.exec(t.slice(i));
      if (!m) bad(`expected a quoted key or an array position at offset ${i}`);
      out.push(Number(m![0]));
      i += m![0].length;
    }
    if (t[i] !== ']') bad(`expected ] at offset ${i}`);
    i++;
  }
  return out;
}

/** The key under which a loaded chunk keeps a scalar index: the field, plus the JSON path for path indexes. */
export function scalarIndexKey(fieldName: string, jsonPath?: readonly (string | number)[]): string {
  return jsonPath === undefined || jsonPath.length === 0 ? fieldName : `${fieldName}${JSON.stringify(jsonPath)}`;
}
