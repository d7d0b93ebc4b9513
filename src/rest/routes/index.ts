import type { RestRoute } from '../types.js';

/**
 * Every RESTful API v2 route. Each group lives in its own module (collections, entities, indexes,
 * partitions, aliases, databases here; users, roles, privilege groups, import and snapshot jobs in theirs)
 * and is listed once below.
 */
export const allRoutes: readonly RestRoute[] = [];
