import { quiverError } from '../common/errors.js';
import type { IndexDefinition } from '../coord/types.js';
import { validateForDim } from '../index/index.js';
import { buildParamsOfTyped, parseFieldIndexParams } from '../index/typed-index-params.js';
import type { CollectionSchema, FieldSchema } from '../schema/types.js';
import { isVectorType } from '../schema/types.js';
import { scalarIndexDefinition } from './scalar-index-request.js';
import { checkBm25Index } from './text-service.js';

/**
 * The index definition a CreateIndex request's `extra_params` (index_type, metric_type, params as JSON and
 * loose keys) asks for on `field`, validated against the field (type, dim, BM25 input). One place for
 * CreateIndex and for the bound index of a function field added by AlterCollectionSchema.
 */
export function indexDefinitionOf(schema: CollectionSchema, field: FieldSchema, extra: Readonly<Record<string, string>>): IndexDefinition {
  let userParams: Record<string, string | number> = {};
  if (extra['params']) {
    try {
      userParams = JSON.parse(extra['params']) as Record<string, string | number>;
    } catch {
      throw quiverError('ParameterInvalid', `index params is not valid JSON: ${extra['params']}`);
    }
  }
  const all: Record<string, string | number> = { ...userParams };
  for (const [k, v] of Object.entries(extra)) if (k !== 'params' && k !== 'index_type' && k !== 'metric_type') all[k] = v;
  if (!isVectorType(field.dataType)) return scalarIndexDefinition(field, extra, all);
  const parsed = parseFieldIndexParams(field.dataType, field.name, extra['index_type'] || undefined, {
    ...all,
    ...(extra['metric_type'] ? { metric_type: extra['metric_type'] } : {}),
  });
  validateForDim(parsed, field.dim!);
  checkBm25Index(schema, field, parsed.metric, all);
  const stored: Record<string, string> = { ...extra };
  if (!stored['index_type']) stored['index_type'] = parsed.type;
  stored['metric_type'] = parsed.metric;
  return { indexType: parsed.type, metric: parsed.metric, userParams: stored, buildParams: buildParamsOfTyped(parsed) };
}
