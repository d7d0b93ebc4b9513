import type { RestRoute } from '../types.js';
import { importRoutes } from './imports.js';
import { roleRoutes } from './roles.js';
import { snapshotRoutes } from './snapshots.js';
import { userRoutes } from './users.js';

/** Every RESTful API v2 route under /v2/vectordb/ (one line per module). */
export const allRoutes: readonly RestRoute[] = [...userRoutes, ...roleRoutes, ...importRoutes, ...snapshotRoutes];
