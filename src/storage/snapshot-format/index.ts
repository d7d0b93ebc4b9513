/** On-storage formats of collection snapshots: Avro segment manifests and the metadata JSON. */

export {
  MANIFEST_AVRO_SCHEMA,
  MANIFEST_BYTES_MAX,
  MANIFEST_SCHEMA_VERSION,
  decodeManifest,
  encodeManifest,
  type IndexParams,
  type ManifestEntry,
} from './manifest.js';
export {
  NO_INDEX_DIGEST,
  formatManifestKey,
  indexDigest,
  manifestKey,
  parseManifestKey,
  sharedManifestsPrefix,
  writeManifests,
  type ManifestKeyParts,
  type WriteManifestsOptions,
} from './manifest-store.js';
export {
  METADATA_BYTES_MAX,
  METADATA_FORMAT_VERSION,
  decodeMetadata,
  encodeMetadata,
  manifestRef,
  summarizeEntries,
  type SnapshotMetadata,
} from './metadata.js';
export { readSnapshot, readSnapshotMetadata, readSnapshotSegments, type ReadSnapshotOptions, type SnapshotContents } from './read-snapshot.js';
