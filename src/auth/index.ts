export * from './rbac/index.js';
