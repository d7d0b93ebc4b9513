import { quiverError } from '../common/errors.js';
import { DEFAULT_DB } from '../coord/types.js';
import type { CollectionSchema, FieldSchema, SparseRow } from '../schema/types.js';
import type { AnyMetricType } from '../index/typed-index-params.js';
import { createAnalyzer, type Analyzer } from '../text/analyzer.js';
import { bm25ParamsOf, hashToken, termFrequencies } from '../text/bm25.js';
import { analyzerEnabled, analyzerOf, bm25InputOf, multiAnalyzerOf } from '../text/functions.js';
import type { CallContext, Handler, ProxyRoles } from './milvus-service.js';
import { decodePlaceholderGroup } from './proto.js';
import { OK } from './status.js';

/**
 * Full-text search at the proxy: RunAnalyzer, text queries against a BM25 output field (turned into
 * term-frequency rows here; the query node scores them with its collection statistics), and the metric
 * rules for BM25 fields (their index and searches use metric BM25, other sparse fields never do).
 */

/* eslint-disable @typescript-eslint/no-explicit-any */

const TEXTS_MAX = 1024;
const TEXT_BYTES_MAX = 1 << 20;

function textsOf(values: readonly Uint8Array[], what: string): string[] {
  if (values.length === 0) throw quiverError('ParameterInvalid', `${what} requires at least one text`);
  if (values.length > TEXTS_MAX) throw quiverError('ParameterInvalid', `${what}: ${values.length} texts; at most ${TEXTS_MAX}`);
  return values.map((b, i) => {
    if (b.byteLength > TEXT_BYTES_MAX) throw quiverError('ParameterInvalid', `${what}: text ${i} has ${b.byteLength} bytes; at most ${TEXT_BYTES_MAX}`);
    return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('utf8');
  });
}

/** The query rows of a search on a BM25 output field: the texts of a VarChar placeholder group, analyzed. */
export function bm25QueriesOf(
  input: FieldSchema,
  field: FieldSchema,
  placeholder: Uint8Array,
  /** `analyzer_name` of the search: which analyzer of a multi-analyzer input analyzes the query texts. */
  analyzerName?: string,
): { nq: number; rows: SparseRow[] } {
  const group = decodePlaceholderGroup(placeholder)[0];
  if (!group || group.values.length === 0) throw quiverError('ParameterInvalid', 'search requires at least one query text');
  if (group.type !== '21' && group.type !== 'VarChar') {
    throw quiverError(
      'ParameterInvalid',
      `field ${field.name} is the output of a BM25 function: search it with text (VarChar placeholders), got type ${group.type}`,
    );
  }
  const analyzer = analyzerOf(input, analyzerName);
  const rows = textsOf(group.values, `BM25 search on ${field.name}`).map((t) => termFrequencies(analyzer, t));
  return { nq: rows.length, rows };
}

/** The BM25 input field when `field` is a BM25 output; checks the metric either way. */
export function checkBm25Search(schema: CollectionSchema, field: FieldSchema, metric: AnyMetricType | undefined): FieldSchema | undefined {
  const input = bm25InputOf(schema, field.name);
  if (input && metric !== undefined && metric !== 'BM25') {
    throw quiverError('ParameterInvalid', `field ${field.name} is the output of a BM25 function: its metric type is BM25, got ${metric}`);
  }
  if (!input && metric === 'BM25') throw quiverError('ParameterInvalid', `metric type BM25 needs a BM25 function output field; ${field.name} is not one`);
  return input;
}

/** CreateIndex on a sparse field: BM25 outputs take metric BM25 (and valid bm25_k1 / bm25_b), others never. */
export function checkBm25Index(
  schema: CollectionSchema,
  field: FieldSchema,
  metric: AnyMetricType,
  params: Readonly<Record<string, string | number>>,
): void {
  if (field.dataType !== 'SparseFloatVector') return;
  const isOutput = bm25InputOf(schema, field.name) !== undefined;
  if (isOutput && metric !== 'BM25') {
    throw quiverError('ParameterInvalid', `field ${field.name} is the output of a BM25 function: its index needs metric_type BM25, got ${metric}`);
  }
  if (!isOutput && metric === 'BM25')
    throw quiverError('ParameterInvalid', `metric type BM25 needs a BM25 function output field; ${field.name} is not one`);
  if (isOutput) bm25ParamsOf(params);
}

/**
 * The analyzer of each text of a RunAnalyzer: the given params, or the field's analyzer; for a
 * multi-analyzer field `analyzer_names` picks one per text (or one name for all; none: the default).
 */
function analyzersFor(roles: ProxyRoles, req: any, ctx: CallContext, count: number): Analyzer[] {
  const names: string[] = [...(req.analyzer_names ?? [])].map(String);
  if (names.length === 0) return new Array<Analyzer>(count).fill(analyzerFor(roles, req, ctx, undefined));
  if (names.length !== 1 && names.length !== count) {
    throw quiverError('ParameterInvalid', `analyzer_names has ${names.length} names for ${count} texts: give one name, or one per text`);
  }
  return Array.from({ length: count }, (_, i) => analyzerFor(roles, req, ctx, names[names.length === 1 ? 0 : i]));
}

function analyzerFor(roles: ProxyRoles, req: any, ctx: CallContext, name: string | undefined): Analyzer {
  if (name !== undefined && !req.collection_name)
    throw quiverError('ParameterInvalid', 'analyzer_names needs collection_name and field_name (a multi-analyzer field)');
  if (req.collection_name) {
    const db = (typeof req.db_name === 'string' && req.db_name) || ctx.dbName || DEFAULT_DB;
    const coll = roles.coord.catalog.resolveCollection(db, String(req.collection_name));
    const f = coll.schema.fields.find((x) => x.name === req.field_name);
    if (!f) throw quiverError('FieldNotFound', `field ${String(req.field_name)} not found in collection ${coll.name}`);
    if (!analyzerEnabled(f)) throw quiverError('ParameterInvalid', `field ${f.name} of collection ${coll.name} does not enable an analyzer`);
    if (!multiAnalyzerOf(f) && name !== undefined) {
      throw quiverError('ParameterInvalid', `analyzer_names is given, but field ${f.name} of collection ${coll.name} has no multi_analyzer_params`);
    }
    return analyzerOf(f, name);
  }
  return createAnalyzer(req.analyzer_params);
}

export function createTextHandlers(roles: ProxyRoles): Record<string, Handler> {
  return {
    RunAnalyzer: (req, ctx) => {
      const texts = textsOf(req.placeholder ?? [], 'RunAnalyzer');
      const analyzers = analyzersFor(roles, req, ctx, texts.length);
      const detail = Boolean(req.with_detail);
      const withHash = Boolean(req.with_hash);
      const results = texts.map((t, i) => ({
        tokens: analyzers[i]!.analyze(t).map((tok) => ({
          token: tok.token,
          ...(detail
            ? {
                start_offset: String(tok.startOffset),
                end_offset: String(tok.endOffset),
                position: String(tok.position),
                position_length: String(tok.positionLength),
              }
            : {}),
          ...(withHash ? { hash: hashToken(tok.token) } : {}),
        })),
      }));
      return { status: OK, results };
    },
  };
}
