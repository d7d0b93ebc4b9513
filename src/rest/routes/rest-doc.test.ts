import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { allRoutes } from './index.js';
import { snapshotExtraRoutes } from './snapshots.js';

describe('docs/REST.md', () => {
  it('lists every REST endpoint the server registers', () => {
    const doc = readFileSync(new URL('../../../docs/REST.md', import.meta.url), 'utf8');
    const listed = new Set([...doc.matchAll(/`([a-z0-9_]+(?:\/[a-z0-9_]+)+)`/g)].map((m) => m[1]));
    const extra = snapshotExtraRoutes({ cancelRestoreJob: () => Promise.reject(new Error('unused')), diff: () => Promise.reject(new Error('unused')) });
    const missing = [...allRoutes, ...extra].map((r) => r.path).filter((p) => !listed.has(p));
    expect(missing).toEqual([]);
  });
});
