import { quiverError } from '../common/errors.js';
import type { VectorType } from '../schema/types.js';

/**
 * Schema rules for vector fields, as Milvus applies them: dims per type (binary dims count bits and must
 * be a multiple of 8; sparse fields have no dim), and a bound on vector fields per collection. Milvus
 * defaults that bound to 4 (proxy.maxVectorFieldNum, configurable up to 10); Quiver allows 10 so one
 * collection can hold every vector type.
 */

export const DIM_MIN = 2;
export const DIM_MAX = 32768;
export const VECTOR_FIELDS_MAX = 10;

export function vectorDimOf(t: VectorType, params: Readonly<Record<string, string>>, field: string): number | undefined {
  const raw = params['dim'];
  if (t === 'SparseFloatVector') {
    if (raw !== undefined && raw !== '') throw quiverError('ParameterInvalid', `dim should not be specified for sparse vector field ${field} (dim ${raw})`);
    return undefined;
  }
  if (raw === undefined || raw === '') throw quiverError('ParameterInvalid', `type param(dim) should be specified for the field(${field})`);
  const n = Number(raw);
  const lo = t === 'BinaryVector' ? 8 : DIM_MIN;
  if (!Number.isInteger(n) || n < lo || n > DIM_MAX) {
    throw quiverError('ParameterInvalid', `invalid dim ${raw} of ${t} field ${field}: must be an integer in [${lo}, ${DIM_MAX}]`);
  }
  if (t === 'BinaryVector' && n % 8 !== 0) {
    throw quiverError(
      'ParameterInvalid',
      `invalid dim ${raw} of BinaryVector field ${field}: a binary vector's dim counts bits and must be a multiple of 8`,
    );
  }
  return n;
}

export function checkVectorFieldCount(names: readonly string[]): void {
  if (names.length > VECTOR_FIELDS_MAX) {
    throw quiverError(
      'ParameterInvalid',
      `maximum vector field's number should be limited to ${VECTOR_FIELDS_MAX}, got ${names.length} (${names.join(', ')})`,
    );
  }
}
