/**
 * Data types, schemas and columnar field data. These are the shapes every layer shares: the server maps
 * proto messages into them, the WAL and binlogs persist them, the expression evaluator and the vector
 * indexes read them.
 */

import type { FunctionSchema } from './functions.js';

export type ScalarType = 'Bool' | 'Int8' | 'Int16' | 'Int32' | 'Int64' | 'Float' | 'Double' | 'VarChar';
/** Vector types stored as fixed-size byte rows (see `bytesPerRow`). */
export type ByteVectorType = 'BinaryVector' | 'Float16Vector' | 'BFloat16Vector' | 'Int8Vector';
export type VectorType = 'FloatVector' | ByteVectorType | 'SparseFloatVector';
/**
 * Geometry is stored as canonical WKT (a 'string' column, see schema/geometry.ts); Timestamptz as int64
 * microseconds UTC (an 'int64' column, see schema/timestamptz.ts).
 */
export type DataType = ScalarType | 'JSON' | 'Array' | 'Geometry' | 'Timestamptz' | VectorType | 'ArrayOfStruct';

/**
 * One sub-field of an Array of Struct field (Milvus StructArrayFieldSchema): every element of the array is
 * a struct holding one value of each sub-field. Scalars and FloatVector (an "embedding list") are stored.
 */
export interface StructSubField {
  readonly fieldId: number;
  readonly name: string;
  readonly description: string;
  readonly dataType: ScalarType | 'FloatVector';
  /** VarChar maximum length in UTF-8 bytes. */
  readonly maxLength?: number | undefined;
  readonly dim?: number | undefined;
  /** type_params as sent (without max_capacity, which is the struct field's). */
  readonly typeParams: Readonly<Record<string, string>>;
}

export const VECTOR_TYPES: readonly VectorType[] = ['FloatVector', 'BinaryVector', 'Float16Vector', 'BFloat16Vector', 'Int8Vector', 'SparseFloatVector'];
export const BYTE_VECTOR_TYPES: readonly ByteVectorType[] = ['BinaryVector', 'Float16Vector', 'BFloat16Vector', 'Int8Vector'];

export function isVectorType(t: DataType): t is VectorType {
  return (VECTOR_TYPES as readonly string[]).includes(t);
}

export function isByteVectorType(t: DataType): t is ByteVectorType {
  return (BYTE_VECTOR_TYPES as readonly string[]).includes(t);
}

/** Bytes one row of a byte vector takes: dim bits for binary, 2 bytes per element for the 16-bit floats. */
export function bytesPerRow(t: ByteVectorType, dim: number): number {
  switch (t) {
    case 'BinaryVector':
      return dim / 8;
    case 'Float16Vector':
    case 'BFloat16Vector':
      return dim * 2;
    case 'Int8Vector':
      return dim;
  }
}

/** One sparse row: strictly increasing indices and their (finite) values. */
export interface SparseRow {
  readonly indices: Uint32Array;
  readonly values: Float32Array;
}

/** A single scalar value as users see it: int64 values are bigint. */
export type ScalarValue = boolean | number | bigint | string;

export interface FieldSchema {
  readonly fieldId: number;
  readonly name: string;
  readonly description: string;
  readonly dataType: DataType;
  readonly isPrimaryKey: boolean;
  readonly autoId: boolean;
  readonly nullable: boolean;
  /** Default used when a row leaves the field null/missing. */
  readonly defaultValue?: ScalarValue | undefined;
  /** Array element type. */
  readonly elementType?: ScalarType | undefined;
  /** VarChar (and Array of VarChar) maximum length in characters. */
  readonly maxLength?: number | undefined;
  /** Array maximum number of elements. */
  readonly maxCapacity?: number | undefined;
  /** Vector dimension (bits for BinaryVector; none for SparseFloatVector). */
  readonly dim?: number | undefined;
  /** ArrayOfStruct: the struct's sub-fields (maxCapacity bounds the elements per row). */
  readonly structFields?: readonly StructSubField[] | undefined;
  /** The `$meta` column that holds dynamic keys. */
  readonly isDynamic: boolean;
  readonly isPartitionKey: boolean;
  readonly isClusteringKey: boolean;
  /** type_params as sent, kept so describe returns them unchanged. */
  readonly typeParams: Readonly<Record<string, string>>;
  /**
   * The schema version that added this field (AddCollectionField); undefined for fields the collection
   * was created with. Data written before that version has no column for it and reads as its default or null.
   */
  readonly addedInVersion?: number | undefined;
}

export interface CollectionSchema {
  readonly name: string;
  readonly description: string;
  readonly autoId: boolean;
  readonly enableDynamicField: boolean;
  readonly fields: readonly FieldSchema[];
  /** Bumped by every field added or dropped (0 or undefined: as created). */
  readonly version?: number | undefined;
  /** BM25 functions (schema/functions.ts); undefined or empty: none. */
  readonly functions?: readonly FunctionSchema[] | undefined;
}

export const DYNAMIC_FIELD_NAME = '$meta';

/**
 * One column of `numRows` values. Int64 is a BigInt64Array (Milvus ids exceed 2^53). Int8/16/32 widen to
 * Int32Array. JSON holds parsed values (undefined = null). `valid` (1 = present) exists only for
 * nullable fields; a null slot holds a zero/empty value in `data`.
 */
export type Column =
  | { readonly kind: 'bool'; readonly data: Uint8Array; readonly valid?: Uint8Array | undefined }
  | { readonly kind: 'int32'; readonly data: Int32Array; readonly valid?: Uint8Array | undefined }
  | { readonly kind: 'int64'; readonly data: BigInt64Array; readonly valid?: Uint8Array | undefined }
  | { readonly kind: 'float'; readonly data: Float32Array; readonly valid?: Uint8Array | undefined }
  | { readonly kind: 'double'; readonly data: Float64Array; readonly valid?: Uint8Array | undefined }
  | { readonly kind: 'string'; readonly data: readonly string[]; readonly valid?: Uint8Array | undefined }
  | { readonly kind: 'json'; readonly data: readonly unknown[]; readonly valid?: Uint8Array | undefined }
  | {
      readonly kind: 'array';
      readonly elementType: ScalarType;
      /** Each row's elements (int64 elements as bigint); null rows are empty arrays with valid=0. */
      readonly data: readonly (readonly ScalarValue[])[];
      readonly valid?: Uint8Array | undefined;
    }
  | {
      readonly kind: 'vector';
      readonly dim: number;
      /** Row-major rows; empty when `lazy` serves them instead. */
      readonly data: Float32Array;
      readonly valid?: Uint8Array | undefined;
      /** Rows read on demand from the segment's binlog (a quantized index made the resident copy redundant). */
      readonly lazy?: VectorRowReader | undefined;
    }
  | {
      /** Binary / Float16 / BFloat16 / Int8 vectors: `bytesPerRow(vtype, dim)` raw bytes per row, as the wire sends them. */
      readonly kind: 'bytevec';
      readonly vtype: ByteVectorType;
      readonly dim: number;
      readonly data: Uint8Array;
      readonly valid?: Uint8Array | undefined;
    }
  | { readonly kind: 'sparse'; readonly data: readonly SparseRow[]; readonly valid?: Uint8Array | undefined }
  | {
      /**
       * Array of Struct: each row's struct elements (sub-field name → value; FloatVector sub-fields as
       * Float32Array). A null row is an empty array with valid=0. Binlogs store it as Arrow List<Struct<...>>.
       */
      readonly kind: 'struct';
      /** The sub-fields every element holds, in schema order. */
      readonly layout: readonly StructLayoutField[];
      readonly data: readonly StructRow[];
      readonly valid?: Uint8Array | undefined;
    };

export interface StructLayoutField {
  readonly name: string;
  readonly dataType: ScalarType | 'FloatVector';
  readonly dim?: number | undefined;
}

/** One element of an Array of Struct row. */
export type StructElement = Readonly<Record<string, ScalarValue | Float32Array>>;
export type StructRow = readonly StructElement[];

/**
 * The rows of a FloatVector column that are not resident: read from the segment's immutable binlog when a
 * path needs them (refine, output fields, exact search of a selective filter).
 */
export interface VectorRowReader {
  readonly rows: number;
  readonly dim: number;
  /** The given rows (any order, repeats allowed), row i of the result being rows[i]. */
  gather(rows: ArrayLike<number>): Float32Array;
  /** Every row, as a transient copy (for the rare paths that scan a whole column). */
  readAll(): Float32Array;
}

export type ColumnKind = Column['kind'];

export function columnKindOf(dataType: DataType): ColumnKind {
  switch (dataType) {
    case 'Bool':
      return 'bool';
    case 'Int8':
    case 'Int16':
    case 'Int32':
      return 'int32';
    case 'Int64':
      return 'int64';
    case 'Float':
      return 'float';
    case 'Double':
      return 'double';
    case 'VarChar':
    case 'Geometry':
      return 'string';
    case 'Timestamptz':
      return 'int64';
    case 'JSON':
      return 'json';
    case 'Array':
      return 'array';
    case 'FloatVector':
      return 'vector';
    case 'BinaryVector':
    case 'Float16Vector':
    case 'BFloat16Vector':
    case 'Int8Vector':
      return 'bytevec';
    case 'SparseFloatVector':
      return 'sparse';
    case 'ArrayOfStruct':
      return 'struct';
    default: {
      const never: never = dataType;
      throw new Error(`unknown data type ${String(never)}`);
    }
  }
}

export function columnLength(c: Column): number {
  if (c.kind === 'vector') return c.lazy ? c.lazy.rows : c.data.length / c.dim;
  if (c.kind === 'bytevec') return c.data.length / bytesPerRow(c.vtype, c.dim);
  return c.data.length;
}

/** A set of equally long columns keyed by field name (the dynamic column under `$meta`). */
export interface ColumnBatch {
  readonly numRows: number;
  column(fieldName: string): Column | undefined;
}

export class MapBatch implements ColumnBatch {
  readonly numRows: number;
  readonly columns: ReadonlyMap<string, Column>;
  constructor(numRows: number, columns: ReadonlyMap<string, Column>) {
    this.numRows = numRows;
    this.columns = columns;
  }
  column(fieldName: string): Column | undefined {
    return this.columns.get(fieldName);
  }
}

/** The element layout of an ArrayOfStruct field's column. */
export function structLayout(field: FieldSchema): readonly StructLayoutField[] {
  return (field.structFields ?? []).map((f) => ({ name: f.name, dataType: f.dataType, dim: f.dim }));
}

/** Gives the sub-fields of struct fields ids after `nextId` (top-level fields keep theirs). */
export function assignSubFieldIds(fields: FieldSchema[], nextId: number): FieldSchema[] {
  let id = nextId;
  return fields.map((f) => (f.structFields ? { ...f, structFields: f.structFields.map((s) => ({ ...s, fieldId: id++ })) } : f));
}

/** The largest id a field or sub-field holds. */
export function maxFieldId(fields: readonly FieldSchema[]): number {
  return Math.max(99, ...fields.flatMap((f) => [f.fieldId, ...(f.structFields ?? []).map((s) => s.fieldId)]));
}
