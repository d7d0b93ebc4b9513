import { quiverError } from '../common/errors.js';
import type { CollectionRecord } from '../coord/records.js';
import type { TemplateValues } from '../expr/index.js';
import type { AnyMetricType } from '../index/typed-index-params.js';
import { lowerIsBetter } from '../index/typed-search.js';
import type { SearchHit } from '../segcore/collection-runtime.js';
import { intParam, kvList, parseSearch, resolveIds, TOPK_LIMIT, type SearchEnv } from './vector-search.js';

/**
 * HybridSearch: one search per sub-request (each over its own vector field), fused per query by a
 * ranker, then cut to [offset, offset + limit). Rankers as Milvus defines them:
 *   rrf      score = Σ 1 / (k + rank), rank from 1 in each sub-result; k in (0, 16384), default 60.
 *   weighted score = Σ w_i · norm_i(score_i), w_i in [0, 1]; norm_score (default true) maps each metric
 *            into [0, 1] with Milvus's functions: COSINE (1 + s) / 2, IP 0.5 + atan(s) / π, BM25 2·atan(s) / π, and the
 *            distances (L2, HAMMING, JACCARD) 1 - 2·atan(d) / π. With norm_score false IP/COSINE scores are
 *            used raw (distances are still normalised, so smaller stays better).
 * A hit is identified by its primary key: the same row found by several sub-requests sums its parts.
 */

/* eslint-disable @typescript-eslint/no-explicit-any */

export const SUB_REQUESTS_MAX = 1024;
export const RRF_K_DEFAULT = 60;

export function normalizeScore(metric: AnyMetricType, s: number, norm: boolean): number {
  if (lowerIsBetter(metric)) return 1 - (2 * Math.atan(s)) / Math.PI;
  if (!norm) return s;
  if (metric === 'BM25') return (2 * Math.atan(s)) / Math.PI; // BM25 scores are >= 0
  return metric === 'COSINE' ? (1 + s) / 2 : 0.5 + Math.atan(s) / Math.PI;
}

type Ranker = { kind: 'rrf'; k: number } | { kind: 'weighted'; weights: number[]; norm: boolean };

function parseRanker(rank: Record<string, string>, subs: number): Ranker {
  const strategy = (rank['strategy'] ?? 'rrf').toLowerCase();
  let params: Record<string, unknown> = {};
  if (rank['params']) {
    try {
      params = JSON.parse(rank['params']) as Record<string, unknown>;
    } catch {
      throw quiverError('ParameterInvalid', `rank params is not valid JSON: ${rank['params']}`);
    }
  }
  if (strategy === 'rrf') {
    const k = params['k'] === undefined ? RRF_K_DEFAULT : Number(params['k']);
    if (!Number.isFinite(k) || k <= 0 || k >= TOPK_LIMIT)
      throw quiverError('ParameterInvalid', `the rank params k ${String(params['k'])} should be in range (0, ${TOPK_LIMIT})`);
    return { kind: 'rrf', k };
  }
  if (strategy === 'weighted') {
    const w = params['weights'];
    if (!Array.isArray(w)) throw quiverError('ParameterInvalid', 'the weighted ranker needs params.weights, one weight per sub-request');
    if (w.length !== subs) throw quiverError('ParameterInvalid', `the weighted ranker got ${w.length} weights for ${subs} sub-requests`);
    const weights = w.map((x) => Number(x));
    for (const x of weights) if (!(x >= 0 && x <= 1)) throw quiverError('ParameterInvalid', `rank weight ${String(x)} should be in range [0, 1]`);
    const ns = params['norm_score'];
    return { kind: 'weighted', weights, norm: ns === undefined ? true : ns === true || ns === 'true' };
  }
  throw quiverError('ParameterInvalid', `rank strategy ${strategy} is not supported; supported: rrf, weighted`);
}

/**
 * The zone each sub-request's filter literals are read in: its own `timezone` search param (the SDK copies
 * the hybrid request's `params` into every sub-request), else the hybrid request's rank params, else the
 * collection's. `zoneOf` applies that order to one parameter list (proxy/timezone-output.ts).
 */
export function hybridTimezones(req: any, zoneOf: (params: Record<string, string>) => string): { subs: string[]; output: string } {
  const rank = kvList(req.rank_params);
  const subs = ((req.requests ?? []) as any[]).map((s) => {
    const own = kvList(s.search_params);
    return zoneOf(own['timezone'] ? own : rank);
  });
  return { subs, output: rank['timezone'] ? zoneOf(rank) : (subs[0] ?? zoneOf(rank)) };
}

export async function runHybridSearch(
  env: SearchEnv,
  coll: CollectionRecord,
  req: any,
  templates: (m: any) => TemplateValues | undefined,
  timezones?: readonly string[],
): Promise<any> {
  const subsRaw: any[] = req.requests ?? [];
  if (subsRaw.length === 0) throw quiverError('ParameterInvalid', 'hybrid search needs at least one sub-request');
  if (subsRaw.length > SUB_REQUESTS_MAX)
    throw quiverError('ParameterInvalid', `hybrid search got ${subsRaw.length} sub-requests, at most ${SUB_REQUESTS_MAX}`);
  const rank = kvList(req.rank_params);
  const limit = intParam(rank['limit'], 'limit', 10, 1, TOPK_LIMIT);
  const offset = intParam(rank['offset'], 'offset', 0, 0, TOPK_LIMIT);
  if (limit + offset > TOPK_LIMIT)
    throw quiverError('TopKTooLarge', `limit + offset (${limit} + ${offset} = ${limit + offset}) should be in range [1, ${TOPK_LIMIT}]`);
  const roundDecimal = intParam(rank['round_decimal'], 'round_decimal', -1, -1, 6);
  const ranker = parseRanker(rank, subsRaw.length);
  const indexes = env.indexes(coll.id);
  const parsed = subsRaw.map((s, i) => {
    const p = parseSearch(coll, { ...s, partition_names: s.partition_names?.length ? s.partition_names : req.partition_names }, indexes, templates, {
      hybridSub: true,
    });
    const timezone = timezones?.[i];
    return timezone === undefined ? p : { ...p, params: { ...p.params, timezone } };
  });
  const seen = new Map<string, number>();
  parsed.forEach((p, i) => {
    const prev = seen.get(p.params.field.name);
    if (prev !== undefined)
      throw quiverError(
        'ParameterInvalid',
        `hybrid search sub-requests ${prev} and ${i} both search field ${p.params.field.name}; each field may appear once`,
      );
    seen.set(p.params.field.name, i);
  });
  const nq = parsed[0]!.params.nq;
  for (const [i, p] of parsed.entries()) {
    if (p.params.nq !== nq)
      throw quiverError('ParameterInvalid', `hybrid search sub-request ${i} has nq ${p.params.nq}, sub-request 0 has ${nq}: they must be equal`);
  }
  const pk = coll.schema.fields.find((f) => f.isPrimaryKey)!;
  const results = await Promise.all(
    parsed.map(async (p) => {
      const params = await resolveIds(env.query, coll, p);
      return env.query.search(coll.id, params);
    }),
  );
  const fused: SearchHit[][] = [];
  for (let q = 0; q < nq; q++) {
    const acc = new Map<string, { hit: SearchHit; score: number }>();
    results.forEach((r, i) => {
      const list = r.hits[q] ?? [];
      list.forEach((h, rankIdx) => {
        const key = String((h.chunk.columns.get(pk.name)!.data as ArrayLike<unknown>)[h.row]);
        const part = ranker.kind === 'rrf' ? 1 / (ranker.k + rankIdx + 1) : ranker.weights[i]! * normalizeScore(r.metric, h.score, ranker.norm);
        const cur = acc.get(key);
        if (cur) cur.score += part;
        else acc.set(key, { hit: h, score: part });
      });
    });
    const ranked = [...acc.values()].sort((a, b) => b.score - a.score);
    fused.push(
      ranked.slice(offset, offset + limit).map(({ hit, score }) => {
        const s = roundDecimal >= 0 ? Math.round(score * 10 ** roundDecimal) / 10 ** roundDecimal : score;
        return { chunk: hit.chunk, row: hit.row, score: s };
      }),
    );
  }
  return env.results(coll, fused, req.output_fields ?? [], limit);
}
