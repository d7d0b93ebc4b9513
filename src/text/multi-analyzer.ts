/**
 * Multi-analyzer fields (Milvus `multi_analyzer_params` of an analyzed VarChar): each row is analyzed by
 * the analyzer its `by_field` value names, directly or through `alias`, and by the `default` analyzer when
 * the value names none (or is null). A BM25 search picks its query analyzer with the search param
 * `analyzer_name` (the default when absent); RunAnalyzer with `analyzer_names`.
 *
 *   {"by_field": "lang", "analyzers": {"default": {...}, "en": {...}, ...}, "alias": {"english": "en"}}
 */

import { quiverError } from '../common/errors.js';
import { createAnalyzer, parseAnalyzerParams, type Analyzer } from './analyzer.js';

/** Bounds that keep one field's analyzers small. */
const ANALYZERS_MAX = 64;
const ALIASES_MAX = 256;

export interface MultiAnalyzer {
  readonly byField: string;
  readonly analyzers: ReadonlyMap<string, Analyzer>;
  readonly alias: ReadonlyMap<string, string>;
  /** The analyzer a row value or an `analyzer_name` names (through an alias), else the default one. */
  pick(name: string | null | undefined): Analyzer;
}

function bad(reason: string): never {
  throw quiverError('ParameterInvalid', `invalid multi_analyzer_params: ${reason}`);
}

export function parseMultiAnalyzerParams(raw: unknown): MultiAnalyzer {
  const p = parseAnalyzerParams(raw);
  for (const k of Object.keys(p)) if (k !== 'by_field' && k !== 'analyzers' && k !== 'alias') bad(`unknown key ${JSON.stringify(k)}`);
  const byField = p['by_field'];
  if (typeof byField !== 'string' || byField === '') bad(`by_field must name a field, got ${JSON.stringify(byField)}`);
  const rawAnalyzers = p['analyzers'];
  if (rawAnalyzers === null || typeof rawAnalyzers !== 'object' || Array.isArray(rawAnalyzers))
    bad(`analyzers must be an object, got ${JSON.stringify(rawAnalyzers)}`);
  const entries = Object.entries(rawAnalyzers as Record<string, unknown>);
  if (entries.length > ANALYZERS_MAX) bad(`${entries.length} analyzers; at most ${ANALYZERS_MAX}`);
  const analyzers = new Map<string, Analyzer>();
  for (const [name, params] of entries) {
    if (params === null || typeof params !== 'object' || Array.isArray(params)) bad(`analyzer ${name} must be an object, got ${JSON.stringify(params)}`);
    try {
      analyzers.set(name, createAnalyzer(params));
    } catch (e) {
      bad(`analyzer ${name}: ${(e as Error).message}`);
    }
  }
  if (!analyzers.has('default')) bad('analyzers must include a "default" analyzer');
  const alias = new Map<string, string>();
  const rawAlias = p['alias'];
  if (rawAlias !== undefined) {
    if (rawAlias === null || typeof rawAlias !== 'object' || Array.isArray(rawAlias)) bad(`alias must be an object, got ${JSON.stringify(rawAlias)}`);
    const pairs = Object.entries(rawAlias as Record<string, unknown>);
    if (pairs.length > ALIASES_MAX) bad(`${pairs.length} aliases; at most ${ALIASES_MAX}`);
    for (const [from, to] of pairs) {
      if (typeof to !== 'string' || !analyzers.has(to)) bad(`alias ${from} names analyzer ${JSON.stringify(to)}, which is not in analyzers`);
      if (analyzers.has(from)) bad(`alias ${from} is also an analyzer name`);
      alias.set(from, to);
    }
  }
  const fallback = analyzers.get('default')!;
  return {
    byField: byField as string,
    analyzers,
    alias,
    pick: (name) => (name === null || name === undefined ? fallback : (analyzers.get(alias.get(name) ?? name) ?? fallback)),
  };
}
