import type { RestRoute } from '../types.js';
import { aliasRoutes } from './aliases.js';
import { collectionRoutes } from './collections.js';
import { databaseRoutes } from './databases.js';
import { entityRoutes } from './entities.js';
import { importRoutes } from './imports.js';
import { indexRoutes } from './indexes.js';
import { partitionRoutes } from './partitions.js';
import { roleRoutes } from './roles.js';
import { snapshotRoutes } from './snapshots.js';
import { userRoutes } from './users.js';

/**
 * Every RESTful API v2 route. Each group lives in its own module (collections, entities, indexes,
 * partitions, aliases, databases here; users, roles, privilege groups, import and snapshot jobs in theirs)
 * and is listed once below.
 */
export const allRoutes: readonly RestRoute[] = [
  ...collectionRoutes,
  ...entityRoutes,
  ...indexRoutes,
  ...partitionRoutes,
  ...aliasRoutes,
  ...databaseRoutes,
  ...userRoutes,
  ...roleRoutes,
  ...importRoutes,
  ...snapshotRoutes,
];
