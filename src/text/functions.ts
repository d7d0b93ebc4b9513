/**
 * Text fields and BM25 functions at the schema level: validating `enable_analyzer` / `analyzer_params` /
 * `enable_match` type params and the schema's `functions`, computing BM25 outputs on write, and the
 * analyzer of a field (cached per field record, which is immutable).
 */

import { quiverError } from '../common/errors.js';
import type { FunctionSchema } from '../schema/functions.js';
import type { CollectionSchema, Column, FieldSchema, SparseRow } from '../schema/types.js';
import { createAnalyzer, type Analyzer } from './analyzer.js';
import { termFrequencies } from './bm25.js';
import { parseMultiAnalyzerParams, type MultiAnalyzer } from './multi-analyzer.js';

/* eslint-disable @typescript-eslint/no-explicit-any */

const FUNCTIONS_MAX = 16;
const EMPTY_ROW: SparseRow = { indices: new Uint32Array(0), values: new Float32Array(0) };

function flag(f: FieldSchema, key: string): boolean {
  const v = f.typeParams[key];
  return v !== undefined && v.toLowerCase() === 'true';
}

export function analyzerEnabled(f: FieldSchema): boolean {
  return flag(f, 'enable_analyzer');
}

export function matchEnabled(f: FieldSchema): boolean {
  return flag(f, 'enable_match');
}

const analyzers = new WeakMap<FieldSchema, Analyzer>();
const multiAnalyzers = new WeakMap<FieldSchema, MultiAnalyzer>();

/** The field's multi-analyzer (`multi_analyzer_params`), if it has one. */
export function multiAnalyzerOf(f: FieldSchema): MultiAnalyzer | undefined {
  const raw = f.typeParams['multi_analyzer_params'];
  if (raw === undefined) return undefined;
  let m = multiAnalyzers.get(f);
  if (!m) {
    m = parseMultiAnalyzerParams(raw);
    multiAnalyzers.set(f, m);
  }
  return m;
}

/**
 * The field's analyzer (its `analyzer_params`, the standard analyzer when none are given); for a
 * multi-analyzer field the one `name` picks (`analyzer_name` of a search), its default without a name.
 */
export function analyzerOf(f: FieldSchema, name?: string): Analyzer {
  const multi = multiAnalyzerOf(f);
  if (multi) return multi.pick(name);
  if (name !== undefined) throw quiverError('ParameterInvalid', `analyzer_name ${name} is given, but field ${f.name} has no multi_analyzer_params`);
  let a = analyzers.get(f);
  if (!a) {
    a = createAnalyzer(f.typeParams['analyzer_params']);
    analyzers.set(f, a);
  }
  return a;
}

/**
 * Checks the text type params of one field (at create and add-field time): they belong to VarChar fields,
 * booleans are "true"/"false", and the analyzer params build an analyzer.
 */
export function validateTextParams(f: Pick<FieldSchema, 'name' | 'dataType' | 'typeParams'>): void {
  const keys = ['enable_analyzer', 'enable_match', 'analyzer_params', 'multi_analyzer_params'].filter((k) => f.typeParams[k] !== undefined);
  if (keys.length === 0) return;
  if (f.dataType !== 'VarChar')
    throw quiverError('ParameterInvalid', `${keys.join(', ')} can only be set on a VarChar field; field ${f.name} is ${f.dataType}`);
  if (f.typeParams['multi_analyzer_params'] !== undefined) {
    if (f.typeParams['analyzer_params'] !== undefined)
      throw quiverError('ParameterInvalid', `field ${f.name} sets both analyzer_params and multi_analyzer_params; give one`);
    // Milvus's text index has one analyzer per field: text_match / phrase_match need a single one.
    if (flag(f as FieldSchema, 'enable_match'))
      throw quiverError('ParameterInvalid', `field ${f.name}: enable_match cannot be combined with multi_analyzer_params (text_match needs one analyzer)`);
    try {
      parseMultiAnalyzerParams(f.typeParams['multi_analyzer_params']);
    } catch (e) {
      throw quiverError('ParameterInvalid', `field ${f.name}: ${(e as Error).message}`);
    }
  }
  for (const k of ['enable_analyzer', 'enable_match']) {
    const v = f.typeParams[k];
    if (v !== undefined && v !== 'true' && v !== 'false') throw quiverError('ParameterInvalid', `${k} of field ${f.name} must be true or false, got ${v}`);
  }
  try {
    createAnalyzer(f.typeParams['analyzer_params']);
  } catch (e) {
    throw quiverError('ParameterInvalid', `field ${f.name}: ${(e as Error).message}`);
  }
}

/** A multi-analyzer field's by_field must be another VarChar field of the same schema. */
function checkByFields(fields: readonly Omit<FieldSchema, 'fieldId'>[]): void {
  for (const f of fields) {
    const raw = f.typeParams['multi_analyzer_params'];
    if (raw === undefined) continue;
    const { byField } = parseMultiAnalyzerParams(raw);
    const by = fields.find((x) => x.name === byField);
    if (!by || by.name === f.name || by.dataType !== 'VarChar') {
      throw quiverError('ParameterInvalid', `field ${f.name}: multi_analyzer_params by_field ${byField} must name another VarChar field of the collection`);
    }
  }
}

/** Parses and validates the proto `functions` of a schema against its fields. */
export function parseFunctions(raw: any[] | undefined, fields: readonly Omit<FieldSchema, 'fieldId'>[]): FunctionSchema[] {
  checkByFields(fields);
  const list = raw ?? [];
  if (list.length > FUNCTIONS_MAX) throw quiverError('ParameterInvalid', `${list.length} functions; at most ${FUNCTIONS_MAX}`);
  const out: FunctionSchema[] = [];
  const names = new Set<string>();
  const outputs = new Set<string>();
  for (const fn of list) {
    const name = String(fn?.name ?? '');
    if (name === '') throw quiverError('ParameterInvalid', 'function name should not be empty');
    if (names.has(name)) throw quiverError('ParameterInvalid', `duplicate function name ${name}`);
    names.add(name);
    const type = fn.type === 1 || fn.type === 'BM25' ? 'BM25' : undefined;
    if (!type) throw quiverError('ParameterInvalid', `function ${name}: type ${String(fn.type)} is not supported by Quiver; supported: BM25`);
    const inputs: string[] = [...(fn.input_field_names ?? [])].map(String);
    const outs: string[] = [...(fn.output_field_names ?? [])].map(String);
    if (inputs.length !== 1) throw quiverError('ParameterInvalid', `BM25 function ${name} needs exactly one input field, got ${inputs.length}`);
    if (outs.length !== 1) throw quiverError('ParameterInvalid', `BM25 function ${name} needs exactly one output field, got ${outs.length}`);
    const input = fields.find((f) => f.name === inputs[0]);
    const output = fields.find((f) => f.name === outs[0]);
    if (!input) throw quiverError('ParameterInvalid', `BM25 function ${name}: input field ${inputs[0]} not found`);
    if (!output) throw quiverError('ParameterInvalid', `BM25 function ${name}: output field ${outs[0]} not found`);
    if (input.dataType !== 'VarChar')
      throw quiverError('ParameterInvalid', `BM25 function ${name}: input field ${input.name} must be VarChar, got ${input.dataType}`);
    if (input.typeParams['enable_analyzer'] !== 'true') {
      throw quiverError('ParameterInvalid', `BM25 function ${name}: input field ${input.name} must set enable_analyzer to true`);
    }
    if (output.dataType !== 'SparseFloatVector') {
      throw quiverError('ParameterInvalid', `BM25 function ${name}: output field ${output.name} must be SparseFloatVector, got ${output.dataType}`);
    }
    if (output.isPrimaryKey || output.nullable)
      throw quiverError('ParameterInvalid', `BM25 function ${name}: output field ${output.name} cannot be nullable`);
    if (outputs.has(output.name)) throw quiverError('ParameterInvalid', `field ${output.name} is the output of two functions`);
    outputs.add(output.name);
    const params: Record<string, string> = {};
    for (const kv of fn.params ?? []) if (kv && typeof kv.key === 'string') params[kv.key] = String(kv.value ?? '');
    out.push({ name, description: String(fn.description ?? ''), type, inputFieldNames: inputs, outputFieldNames: outs, params });
  }
  for (const f of fields)
    if (outputs.has(f.name) && f.defaultValue !== undefined) throw quiverError('ParameterInvalid', `function output ${f.name} cannot have a default`);
  return out;
}

/** The function computing `field`, if it is a function output. */
export function functionOf(schema: CollectionSchema, fieldName: string): FunctionSchema | undefined {
  return schema.functions?.find((fn) => fn.outputFieldNames.includes(fieldName));
}

/** Refuses dropping a field a function reads or writes (the function would lose its input or output). */
export function checkNotFunctionField(schema: CollectionSchema, ref: { readonly name?: string | undefined; readonly id?: number | undefined }): void {
  const f = schema.fields.find((x) => (ref.id !== undefined ? x.fieldId === ref.id : x.name === ref.name));
  if (!f) return;
  const fn = schema.functions?.find((x) => x.inputFieldNames.includes(f.name) || x.outputFieldNames.includes(f.name));
  if (fn) throw quiverError('ParameterInvalid', `field ${f.name} is used by function ${fn.name} and cannot be dropped`);
}

/** The BM25 function whose output is `fieldName` and its analyzed input field. */
export function bm25InputOf(schema: CollectionSchema, fieldName: string): FieldSchema | undefined {
  const fn = functionOf(schema, fieldName);
  if (!fn || fn.type !== 'BM25') return undefined;
  return schema.fields.find((f) => f.name === fn.inputFieldNames[0]);
}

/**
 * Fills every function output column from its input column (writes): a null input text gives an empty
 * row. The caller has already refused output columns the user sent.
 */
export function computeFunctionOutputs(schema: CollectionSchema, columns: Map<string, Column>, numRows: number): void {
  for (const fn of schema.functions ?? []) {
    const input = schema.fields.find((f) => f.name === fn.inputFieldNames[0])!;
    const col = columns.get(input.name);
    if (!col || col.kind !== 'string') throw new Error(`assertion failed: BM25 input column ${input.name} is missing or not a string column`);
    const rows: SparseRow[] = new Array<SparseRow>(numRows);
    const multi = multiAnalyzerOf(input);
    if (multi) {
      // Each row by the analyzer its by_field value names (a null value: the default analyzer).
      const by = columns.get(multi.byField);
      if (!by || by.kind !== 'string') throw new Error(`assertion failed: by_field column ${multi.byField} is missing or not a string column`);
      for (let i = 0; i < numRows; i++) {
        const name = by.valid && by.valid[i] === 0 ? null : by.data[i]!;
        rows[i] = col.valid && col.valid[i] === 0 ? EMPTY_ROW : termFrequencies(multi.pick(name), col.data[i]!);
      }
    } else {
      const analyzer = analyzerOf(input);
      for (let i = 0; i < numRows; i++) rows[i] = col.valid && col.valid[i] === 0 ? EMPTY_ROW : termFrequencies(analyzer, col.data[i]!);
    }
    columns.set(fn.outputFieldNames[0]!, { kind: 'sparse', data: rows });
  }
}

/**
 * The output column of function output `field` for rows written before the function was added (Milvus
 * backfills them by compaction; Quiver computes them where they are read, from the same input text, so a
 * BM25 field added to a collection covers every row at once). Undefined when `field` is no function output.
 */
export function backfillFunctionOutput(schema: CollectionSchema, field: FieldSchema, input: Column | undefined, numRows: number): Column | undefined {
  const fn = functionOf(schema, field.name);
  if (!fn) return undefined;
  const inputField = schema.fields.find((f) => f.name === fn.inputFieldNames[0]);
  if (!inputField || !input || input.kind !== 'string') {
    throw new Error(`assertion failed: input ${fn.inputFieldNames[0]} of function ${fn.name} is missing or not a string column`);
  }
  const columns = new Map<string, Column>([[inputField.name, input]]);
  computeFunctionOutputs({ ...schema, functions: [fn] }, columns, numRows);
  return columns.get(field.name)!;
}

export function functionsToProto(schema: CollectionSchema, fieldIdOf: (name: string) => number | undefined): Record<string, unknown>[] {
  return (schema.functions ?? []).map((fn, i) => ({
    name: fn.name,
    id: String(i + 1),
    description: fn.description,
    type: fn.type,
    input_field_names: fn.inputFieldNames,
    input_field_ids: fn.inputFieldNames.map((n) => String(fieldIdOf(n) ?? 0)),
    output_field_names: fn.outputFieldNames,
    output_field_ids: fn.outputFieldNames.map((n) => String(fieldIdOf(n) ?? 0)),
    params: Object.entries(fn.params).map(([key, value]) => ({ key, value })),
  }));
}
