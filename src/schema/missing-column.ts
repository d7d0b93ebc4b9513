import { bytesPerRow, structLayout, type Column, type FieldSchema, type ScalarValue, type StructRow } from './types.js';

/**
 * The column a field reads as where no data was ever written for it: rows inserted before the field was
 * added (growing segments, WAL records replayed, binlogs flushed before the schema change). Milvus fills
 * them with the field's default value, or null when it has none (an added field must be nullable or
 * carry a default, so one of the two always exists).
 */
export function missingFieldColumn(field: FieldSchema, numRows: number): Column {
  const def: ScalarValue | undefined = field.defaultValue;
  // A default makes every row present; without one every row is null.
  const valid = field.nullable || def === undefined ? new Uint8Array(numRows).fill(def === undefined ? 0 : 1) : undefined;
  switch (field.dataType) {
    case 'Bool':
      return { kind: 'bool', data: new Uint8Array(numRows).fill(def ? 1 : 0), valid };
    case 'Int8':
    case 'Int16':
    case 'Int32':
      return { kind: 'int32', data: new Int32Array(numRows).fill(Number(def ?? 0)), valid };
    case 'Int64':
      // Persisted defaults of Int64 fields are decimal strings (JSON has no int64).
      return { kind: 'int64', data: new BigInt64Array(numRows).fill(BigInt((def as string | number | bigint | undefined) ?? 0)), valid };
    case 'Float':
      return { kind: 'float', data: new Float32Array(numRows).fill(Number(def ?? 0)), valid };
    case 'Double':
      return { kind: 'double', data: new Float64Array(numRows).fill(Number(def ?? 0)), valid };
    case 'VarChar':
    case 'Geometry':
      return { kind: 'string', data: new Array<string>(numRows).fill(String(def ?? '')), valid };
    case 'Timestamptz':
      // Persisted Timestamptz defaults are decimal microseconds, like Int64 defaults.
      return { kind: 'int64', data: new BigInt64Array(numRows).fill(BigInt((def as string | number | bigint | undefined) ?? 0)), valid };
    case 'JSON':
      return { kind: 'json', data: new Array<unknown>(numRows).fill(undefined), valid: new Uint8Array(numRows) };
    case 'Array':
      return { kind: 'array', elementType: field.elementType!, data: new Array<ScalarValue[]>(numRows).fill([]), valid: new Uint8Array(numRows) };
    case 'FloatVector':
      return { kind: 'vector', dim: field.dim!, data: new Float32Array(numRows * field.dim!), valid: new Uint8Array(numRows) };
    case 'BinaryVector':
    case 'Float16Vector':
    case 'BFloat16Vector':
    case 'Int8Vector':
      return {
        kind: 'bytevec',
        vtype: field.dataType,
        dim: field.dim!,
        data: new Uint8Array(numRows * bytesPerRow(field.dataType, field.dim!)),
        valid: new Uint8Array(numRows),
      };
    case 'SparseFloatVector':
      return {
        kind: 'sparse',
        data: new Array(numRows).fill({ indices: new Uint32Array(0), values: new Float32Array(0) }),
        valid: new Uint8Array(numRows),
      };
    case 'ArrayOfStruct':
      return { kind: 'struct', layout: structLayout(field), data: new Array<StructRow>(numRows).fill([]), valid: new Uint8Array(numRows) };
  }
}
