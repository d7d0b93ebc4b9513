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
  parseIndexParams,
  parseMetric,
} from './index-params.js';
