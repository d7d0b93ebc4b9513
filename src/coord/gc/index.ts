export {
  ERRORS_REPORTED_MAX,
  GarbageCollector,
  GC_DEFAULTS,
  type GcCatalog,
  type GcDeps,
  type GcMetrics,
  type GcOptions,
  type GcReport,
  type ResolvedGcOptions,
} from './garbage-collector.js';
export { InMemoryReferenceGuard } from './in-memory-reference-guard.js';
export { combineGuards, NO_REFERENCES, type ReferenceGuard } from './reference-guard.js';
export { segmentBuildIds, segmentFiles, type SegmentFile } from './segment-files.js';
