/**
 * The shared test kit: record factories, seeded randomness and waiters, for unit tests, e2e tests and
 * benchmarks alike. Test-only code: nothing under src/ outside this folder imports it.
 */

export { SeededRandom, seededRandom } from './random.js';
export { clusteredVectors, vectorRows, type ClusteredOptions } from './vectors.js';
export { settle, until, waitRestore, type UntilOptions, type WaitRestoreOptions } from './wait.js';
export { collectionRecord, PARTITION_ID, segmentRecord, type SegmentSpec } from './records.js';
