import { describe, expect, it } from 'vitest';
import { DataType, ErrorCode } from '@zilliz/milvus2-sdk-node';
import { until } from './helpers.js';
import { killableServer } from './process.js';

/**
 * A partition-key insert is one atomic write: its rows hash to many hidden partitions, yet a kill -9 keeps
 * each batch whole or drops it whole, and keeps every acknowledged batch. Batches are written back to back
 * with several in flight; the server is killed once enough have been acknowledged (an event, not a sleep),
 * so some are cut mid-write. After the restart every batch's row count is 0 or all of it.
 */

const COLL = 'tenants';
const BATCH_ROWS = 64;
const IN_FLIGHT = 6;

describe('partition-key insert atomicity', () => {
  const server = killableServer('quiver-pk-atomic-');

  it('keeps every batch whole or not at all across kill -9', { timeout: 120_000 }, async () => {
    let c = (await server.start()).client;
    const created = await c.createCollection({
      collection_name: COLL,
      num_partitions: 32,
      fields: [
        { name: 'id', data_type: DataType.Int64, is_primary_key: true },
        { name: 'tenant', data_type: DataType.VarChar, max_length: 32, is_partition_key: true },
        { name: 'batch', data_type: DataType.Int64 },
        { name: 'v', data_type: DataType.FloatVector, dim: 2 },
      ],
    });
    expect(created.error_code, created.reason).toBe(ErrorCode.SUCCESS);
    const rows = (b: number) =>
      Array.from({ length: BATCH_ROWS }, (_, i) => ({ id: b * BATCH_ROWS + i, tenant: `t${(b * 7 + i) % 97}`, batch: b, v: [b, i] }));

    const acked = new Set<number>();
    let next = 0;
    let stop = false;
    const writer = async (): Promise<void> => {
      while (!stop) {
        const b = next++;
        try {
          const r = await c.insert({ collection_name: COLL, data: rows(b) });
          if (r.status.error_code === ErrorCode.SUCCESS && !stop) acked.add(b);
        } catch {
          return; // the server is gone
        }
      }
    };
    const writers = Array.from({ length: IN_FLIGHT }, () => writer());
    await until(() => acked.size >= 30, { timeoutMs: 60_000 });
    const ackedAtKill = new Set(acked);
    stop = true;
    c = (await server.restart()).client;
    await Promise.allSettled(writers);

    await c.loadCollectionSync({ collection_name: COLL });
    const res = await c.query({ collection_name: COLL, filter: 'id >= 0', output_fields: ['batch'], limit: 16_384 });
    expect(res.status.error_code, res.status.reason).toBe(ErrorCode.SUCCESS);
    const counts = new Map<number, number>();
    for (const r of res.data) counts.set(Number(r['batch']), (counts.get(Number(r['batch'])) ?? 0) + 1);
    for (const [b, n] of counts) expect(n, `batch ${b}`).toBe(BATCH_ROWS);
    for (const b of ackedAtKill) expect(counts.get(b), `acknowledged batch ${b}`).toBe(BATCH_ROWS);
    // Each batch spans many hidden partitions (what made a partial batch possible).
    const parts = await c.query({ collection_name: COLL, filter: `batch == ${[...ackedAtKill][0]}`, output_fields: ['tenant'], limit: 100 });
    expect(new Set(parts.data.map((r) => r['tenant'])).size).toBeGreaterThan(20);
  });
});
