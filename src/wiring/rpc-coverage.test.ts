import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { protoRpcs, rpcCoverageMarkdown, servedRpcs } from './rpc-coverage.js';

describe('docs/RPC-COVERAGE.md', () => {
  it('is current with the SDK proto and the handler table (regenerate: npx tsx scripts/rpc-coverage.ts)', () => {
    const file = readFileSync(new URL('../../docs/RPC-COVERAGE.md', import.meta.url), 'utf8');
    expect(file).toBe(rpcCoverageMarkdown());
  });

  it('lists every proto RPC once and serves the ones this part added', () => {
    const rpcs = protoRpcs();
    expect(new Set(rpcs).size).toBe(rpcs.length);
    const served = servedRpcs();
    for (const r of [
      'AlterCollectionSchema',
      'AddCollectionField',
      'TruncateCollection',
      'GetQuerySegmentInfo',
      'GetPersistentSegmentInfo',
      'GetMetrics',
      'GetReplicas',
      'LoadBalance',
      'AlterIndex',
      'BatchDescribeCollection',
      'FlushAll',
      'GetFlushAllState',
      'GetIndexStatistics',
    ]) {
      expect(served.has(r), r).toBe(true);
    }
  });
});
