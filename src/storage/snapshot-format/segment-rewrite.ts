/**
 * Where a restored segment's files go. The coordinator (to validate a job and to tell rollback which
 * keys may exist) and the worker (to copy) must agree on every target key, so the mapping lives here as
 * pure functions of a `ResolvedMapping` (an id mapping plus the source record read from the snapshot's
 * manifest): same mapping, same keys, on any process, before or after a
 * crash. That determinism is what makes a re-executed copy idempotent.
 *
 * Rewrite rule: parse the source key with `parseSegmentKey`, replace the ids, rebuild with the paths.ts
 * builders.
 * - insert/delta/stats logs: collection, partition and segment ids become the target's; field id and
 *   log id are kept (log ids are unique per store, so two source files never meet at one target key;
 *   `copyPlanOf` still checks).
 * - index files: `index_files/{buildId}/{version}/{partition}/{segment}/{file}` carries no collection
 *   id. We keep the source build id and version and put the target partition and segment ids: the
 *   target segment id is new, so the key never collides with the source's file, and the target's
 *   `SegmentIndexFile.buildId` stays true to how the file was built (same index params, copied, never
 *   rebuilt). Consequence for GC: a build id is then shared by the source and the target segment, so
 *   index files must be reclaimed per (partition, segment) key, never by deleting `indexBuildPrefix`
 *   of a build whose source segment was dropped.
 */

import { quiverError } from '../../common/errors.js';
import type { Binlog, SegmentIndexFile, SegmentRecord } from '../../coord/records.js';
import { formatSegmentKey, parseSegmentKey } from '../paths.js';
import type { ResolvedMapping, SegmentMapping } from './copy-types.js';

export interface CopyStep {
  readonly src: string;
  readonly dst: string;
}

/** The target key of one source file. ParameterInvalid (naming the key) if it is not a segment file key. */
export function targetKeyOf(sourceKey: string, m: ResolvedMapping): string {
  const k = parseSegmentKey(sourceKey);
  if (k === undefined) {
    throw quiverError('ParameterInvalid', `restore: file ${JSON.stringify(sourceKey)} of source segment ${m.source.id} is not a segment file key`);
  }
  switch (k.kind) {
    case 'insert':
    case 'delta':
    case 'stats':
      return formatSegmentKey({
        ...k,
        collectionId: m.targetCollectionId,
        partitionId: m.targetPartitionId,
        segmentId: m.targetSegmentId,
      });
    case 'index':
      return formatSegmentKey({ ...k, partitionId: m.targetPartitionId, segmentId: m.targetSegmentId });
    default: {
      const never: never = k;
      throw quiverError('ParameterInvalid', `restore: unknown segment key ${JSON.stringify(never)}`);
    }
  }
}

/** Every file of the source segment, in a fixed order: binlogs by field id, deltalogs, statslogs, index files. */
export function sourceKeysOf(source: SegmentRecord): string[] {
  const out: string[] = [];
  const fieldIds = Object.keys(source.binlogs).sort((a, b) => Number(a) - Number(b));
  for (const f of fieldIds) for (const b of source.binlogs[f] ?? []) out.push(b.path);
  for (const b of source.deltalogs) out.push(b.path);
  for (const b of source.statslogs) out.push(b.path);
  for (const ix of source.indexes) out.push(...ix.files);
  return out;
}

/**
 * The copies one mapping needs. A file listed twice is copied once; two different source files that
 * would land on one target key are refused (ParameterInvalid naming both), since one would silently
 * overwrite the other.
 */
export function copyPlanOf(m: ResolvedMapping): CopyStep[] {
  const bySrc = new Map<string, string>();
  const byDst = new Map<string, string>();
  for (const src of sourceKeysOf(m.source)) {
    if (bySrc.has(src)) continue;
    const dst = targetKeyOf(src, m);
    const other = byDst.get(dst);
    if (other !== undefined) {
      throw quiverError(
        'ParameterInvalid',
        `restore: files ${JSON.stringify(other)} and ${JSON.stringify(src)} of source segment ${m.source.id} both map to ${JSON.stringify(dst)}`,
      );
    }
    bySrc.set(src, dst);
    byDst.set(dst, src);
  }
  return [...bySrc].map(([src, dst]) => ({ src, dst }));
}

/** The mappings with their source records; ServiceInternal naming the segment when one is missing. */
export function resolveMappings(
  mappings: readonly SegmentMapping[],
  targetCollectionId: number,
  sources: ReadonlyMap<number, SegmentRecord>,
): ResolvedMapping[] {
  return mappings.map((m) => {
    const source = sources.get(m.sourceSegmentId);
    if (source === undefined) throw quiverError('ServiceInternal', `restore: source segment ${m.sourceSegmentId} is not in the snapshot`);
    return { source, targetSegmentId: m.targetSegmentId, targetPartitionId: m.targetPartitionId, targetCollectionId };
  });
}

/**
 * Every target key a job or task may have written, whether or not its copies ran or finished: what
 * rollback must delete. Deterministic (same mappings, same list, same order); unparsable source keys
 * are skipped, since nothing can have been copied for them.
 */
export function targetKeysOf(mappings: readonly ResolvedMapping[]): string[] {
  const out = new Set<string>();
  for (const m of mappings) {
    for (const src of sourceKeysOf(m.source)) {
      try {
        out.add(targetKeyOf(src, m));
      } catch {
        // skipped: see above
      }
    }
  }
  return [...out];
}

/**
 * The target segment record: same rows and timestamps, state Importing, ids of the target, file lists
 * rewritten. Lineage (compactedFrom/To) and droppedAtMs name source segments and are not carried over.
 */
export function rewriteSegmentRecord(m: ResolvedMapping, state: SegmentRecord['state'] = 'Importing'): SegmentRecord {
  const s = m.source;
  const log = (b: Binlog): Binlog => ({ ...b, path: targetKeyOf(b.path, m) });
  const binlogs: Record<string, readonly Binlog[]> = {};
  for (const [fieldId, logs] of Object.entries(s.binlogs)) binlogs[fieldId] = logs.map(log);
  const indexes = s.indexes.map((ix): SegmentIndexFile => ({ ...ix, files: ix.files.map((f) => targetKeyOf(f, m)) }));
  return {
    id: m.targetSegmentId,
    collectionId: m.targetCollectionId,
    partitionId: m.targetPartitionId,
    state,
    numRows: s.numRows,
    binlogs,
    deltalogs: s.deltalogs.map(log),
    statslogs: s.statslogs.map(log),
    indexes,
    createdTs: s.createdTs,
  };
}

/** Why a job's id mappings cannot be executed (a source or target segment twice), or undefined. */
export function mappingsProblem(mappings: readonly SegmentMapping[]): string | undefined {
  const sources = new Set<number>();
  const targets = new Set<number>();
  for (const m of mappings) {
    if (targets.has(m.targetSegmentId)) return `target segment ${m.targetSegmentId} appears in more than one mapping`;
    if (sources.has(m.sourceSegmentId)) return `source segment ${m.sourceSegmentId} appears in more than one mapping`;
    targets.add(m.targetSegmentId);
    sources.add(m.sourceSegmentId);
  }
  return undefined;
}

/**
 * Why resolved mappings cannot be executed, or undefined when they can: target segment ids must be
 * unique, every file key must parse, and no two files may share a target key (across all of them).
 */
export function resolvedMappingsProblem(mappings: readonly ResolvedMapping[]): string | undefined {
  const targets = new Set<number>();
  const dsts = new Map<string, string>();
  for (const m of mappings) {
    if (targets.has(m.targetSegmentId)) return `target segment ${m.targetSegmentId} appears in more than one mapping`;
    targets.add(m.targetSegmentId);
    let plan: CopyStep[];
    try {
      plan = copyPlanOf(m);
    } catch (e) {
      return e instanceof Error ? e.message : String(e);
    }
    for (const { src, dst } of plan) {
      const other = dsts.get(dst);
      if (other !== undefined && other !== src) {
        return `files ${JSON.stringify(other)} and ${JSON.stringify(src)} both map to ${JSON.stringify(dst)}`;
      }
      dsts.set(dst, src);
    }
  }
  return undefined;
}
