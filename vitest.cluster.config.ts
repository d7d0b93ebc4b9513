import { defineConfig } from 'vitest/config';

/**
 * The multi-process cluster suite (`npm run test:cluster`): etcd + s3rver + `quiver serve` + `quiver
 * datanode` processes started and killed by the tests. `npm test` excludes test/cluster/** (minutes).
 */
export default defineConfig({
  test: {
    include: ['test/cluster/**/*.test.ts'],
    testTimeout: 180_000,
    hookTimeout: 120_000,
    pool: 'forks',
    // Servers started by tests (in process or spawned) take any free REST port, not the default 19531.
    env: { QUIVER_HTTP_PORT: '0' },
    // One cluster at a time: each test file starts several processes on a 2-core machine.
    fileParallelism: false,
  },
});
