import { quiverError } from '../common/errors.js';
import type { IndexDefinition } from '../coord/types.js';
import { parseScalarIndexParams } from '../index/scalar/scalar-index-params.js';
import type { FieldSchema } from '../schema/types.js';

/**
 * CreateIndex on a scalar field: validates the type against the field (index/scalar/scalar-index-params.ts)
 * and returns the definition to store. `extra` is the request's key/values as sent, `params` the merged
 * build params (a JSON `params` entry unpacked).
 */
export function scalarIndexDefinition(
  field: FieldSchema,
  extra: Readonly<Record<string, string>>,
  params: Readonly<Record<string, string | number>>,
): IndexDefinition {
  if (field.dataType === 'ArrayOfStruct') {
    throw quiverError(
      'ParameterInvalid',
      `indexes on Array of Struct field ${field.name} or its sub-fields are not supported by Quiver (the struct is stored and returned; its sub-fields are not searched or filtered)`,
    );
  }
  const parsed = parseScalarIndexParams(field, extra['index_type'] || undefined, {
    ...params,
    ...(extra['metric_type'] ? { metric_type: extra['metric_type'] } : {}),
  });
  // Stored flat (json_path, json_cast_type as their own keys), so describe lists them as Milvus does.
  const stored: Record<string, string> = {};
  for (const [k, v] of Object.entries(extra)) if (k !== 'params') stored[k] = v;
  for (const [k, v] of Object.entries(params)) stored[k] = String(v);
  // Describe reports the type the index was built as (AUTOINDEX resolves to INVERTED, as in Milvus).
  stored['index_type'] = parsed.type;
  return {
    indexType: parsed.type,
    metric: '',
    userParams: stored,
    buildParams: parsed.jsonPath === undefined ? {} : { jsonPath: parsed.jsonPath, jsonCastType: parsed.jsonCastType },
  };
}
