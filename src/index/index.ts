/** Vector indexes: exact FLAT search and HNSW (hnswlib-node), with Milvus score conventions. */

export {
  type Hits,
  type IndexType,
  type KeyRange,
  type MetricType,
  type SearchOptions,
  type VectorIndex,
  DEFAULT_EF,
  EF_MAX,
  METRIC_TYPES,
} from './types.js';
export { flatSearch } from './flat-search.js';
export { FlatIndex } from './flat-index.js';
export { EXACT_ALLOWED_FRACTION, EXACT_ALLOWED_MAX, HnswIndex } from './hnsw-index.js';
export {
  type HnswParams,
  type IndexParams,
  HNSW_EF_CONSTRUCTION_DEFAULT,
  HNSW_M_DEFAULT,
  METRIC_DEFAULT,
  type RefineType,
  type SqType,
  buildParamsOf,
  IVF_NPROBE_DEFAULT,
  parseIndexParams,
  parseMetric,
  validateForDim,
} from './index-params.js';
export { type HnswQuantization, type UsearchHnswParams, REFINE_K_MAX, UsearchHnswIndex } from './usearch-hnsw-index.js';
export { isIndexContainer } from './index-file.js';
export { type VectorSource, exactOver } from './vector-source.js';
export { IvfIndex, NPROBE_MAX, type IvfCoding, type IvfParams } from './ivf-index.js';
export {
  type IndexBuildOptions,
  type IndexExpectation,
  type PersistableIndex,
  attachVectors,
  buildIndex,
  hasIndexFiles,
  makesColumnRedundant,
  openIndexBytes,
  openIndexFile,
} from './index-factory.js';
