import { describe, expect, it } from 'vitest';
import { keyHash, keyPartitionName, validateKeyedSchema } from './partition-key.js';

describe('partition key', () => {
  const pk = { name: 'id', data_type: 'Int64', is_primary_key: true };
  const v = { name: 'v', data_type: 'FloatVector' };

  it('validates key type, primary key, nullability and num_partitions with the value in the reason', () => {
    const check =
      (fields: object[], n = 0, props: Record<string, string> = {}) =>
      () =>
        validateKeyedSchema({ fields }, n, props);
    expect(check([pk, { name: 'k', data_type: 'Float', is_partition_key: true }, v])).toThrow(/k is Float: a partition key must be Int64 or VarChar/);
    expect(check([{ ...pk, is_partition_key: true }, v])).toThrow(/primary key id cannot also be the partition key/);
    expect(check([pk, { name: 'k', data_type: 'Int64', is_partition_key: true, nullable: true }, v])).toThrow(/k cannot be nullable/);
    expect(check([pk, { name: 'k', data_type: 'Int64', is_partition_key: true }, v], 0, { 'partitionkey.isolation': 'maybe' })).toThrow(
      /"maybe" is invalid/,
    );
    expect(check([pk, { name: 'a', data_type: 'Int64', is_clustering_key: true }, { name: 'b', data_type: 'Int64', is_clustering_key: true }, v])).toThrow(
      /more than one clustering key: a, b/,
    );
    expect(check([pk, { name: 'k', data_type: 'VarChar', is_partition_key: true }, v], 64)).not.toThrow();
  });

  it('hashes keys stably (the hash decides where rows are stored)', () => {
    expect(keyHash('')).toBe(0x811c9dc5);
    expect(keyHash('a')).toBe(0xe40c292c); // FNV-1a reference value
    expect(keyHash(0n)).toBe(keyHash(0n));
    expect(keyPartitionName(-1n, 16)).toBe(keyPartitionName(-1n, 16));
    const seen = new Set<string>();
    for (let i = 0n; i < 1000n; i++) seen.add(keyPartitionName(i, 16));
    expect(seen.size).toBe(16);
  });
});
