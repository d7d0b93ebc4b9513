import { defineConfig } from 'vitest/config';

/**
 * The crash and fault suites (`npm run test:crash`; `npm run test:soak` with fresh seeds and more rounds).
 * `npm test` excludes test/crash/** because the kill -9 rounds take minutes.
 */
export default defineConfig({
  test: {
    include: [
      'test/crash/**/*.test.ts',
      'test/durability.e2e.test.ts',
      'test/snapshot-faults.e2e.test.ts',
      'test/full-disk.e2e.test.ts',
      'test/model/**/*.test.ts',
    ],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    // Servers started by tests (in process or spawned) take any free REST port, not the default 19531.
    env: { QUIVER_HTTP_PORT: '0' },
  },
});
